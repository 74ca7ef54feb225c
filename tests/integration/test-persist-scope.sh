#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Scoped limits and deny/allow in the rules files (netbump.rules(5)), with real traffic:
#   1. a hand-written file with `user@1000 8mbit --remote B/32` and `deny user@1001 --remote B/32`
#      is in force after start: uid 1001's connect to B fails with EPERM within 1 s while it
#      reaches C (a second address of the server); uid 1000's upload to B is held at 8mbit (within
#      5%) and to C unlimited; list names each rule's file and line;
#   2. `deny --persistent` and `set --persistent --remote` write their lines into
#      50-netbumpctl.rules and are in force; a plain unset of a rule of a file is refused naming
#      the file and line;
#   3. reload with one bad line (a deny that covers loopback) is refused naming FILE:LINE, nothing
#      lost (the deny still refuses);
#   4. reload with the hand-written lines gone removes the scoped rule and the deny (uid 1001
#      connects, uid 1000's upload to B unlimited); unset --persistent removes the others and
#      their lines.

source "$(dirname "$0")/lib.sh"

USER_ID=1000
DENIED_ID=1001
THIRD_ID=1002
PORT=5301
RATE=8mbit
TOL=5
FREE_MIN=500000000

nb_require_daemon
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
TRAFFIC=$NB_LIB_DIR/deny-traffic.py
nb_setup
chmod 0755 "$NB_TMP"
NB_C4=198.18.$NB_NET.3
ip -n "$NB_NS_B" addr add "$NB_C4/24" dev "$NB_IF_B"
nb_start_iperf_servers 5201
nsenter --net="$NB_NETNS_B" "$PY" "$TRAFFIC" sink "$PORT" >"$NB_TMP/sink.log" 2>&1 &
nb_track_pid $!
_sink_ready() { grep -q ready "$NB_TMP/sink.log"; }
nb_wait_until 5 _sink_ready || nb_fail "sink did not start: $(cat "$NB_TMP/sink.log")"
make_cgroup users >/dev/null
CONF=$NB_TMP/etc
RULES=$CONF/rules.d
OWN=$RULES/50-netbumpctl.rules
LOCAL=$RULES/10-local.rules
mkdir -p "$RULES"

try() { run_in_cgroup -u "$1" users "$PY" "$TRAFFIC" connect "$2" "$PORT"; }

expect_refused() {
        local out
        out=$(try "$1" "$2")
        if [[ $out == "err EPERM "* ]] && awk -v s="${out##* }" 'BEGIN { exit !(s < 1.0) }'; then
                nb_say "uid $1 connect $2 refused: ok ($out)"
        else
                nb_record_failure "uid $1 connect $2: expected EPERM within 1 s, got '$out'"
        fi
}

expect_ok() {
        local out
        out=$(try "$1" "$2")
        if [[ $out == "ok "* ]]; then
                nb_say "uid $1 connect $2 goes through: ok ($out)"
        else
                nb_record_failure "uid $1 connect $2: expected to go through, got '$out'"
        fi
}

refused() {
        local msg=$1 want=$2 out rc=0
        shift 2
        out=$(nbctl "$@" 2>&1) || rc=$?
        if ((rc != 0)) && [[ $out == *"$want"* ]]; then
                nb_say "$msg: refused ('$out'): ok"
        else
                nb_record_failure "$msg: exit $rc, '$out' (expected a refusal naming '$want')"
        fi
}

up_rate() {
        measure_goodput -g users -u "$USER_ID" -t 4 "$1" 5201 || nb_fail "iperf3 of uid $USER_ID to $1 failed"
}

# field of the scoped rule or access rule on TARGET with SCOPE in list --json
rule_src() {
        nbctl --json list | jq -r --arg t "$1" --arg r "$2" '.rules[] | select(.target == $t and .remote == $r) | .source // ""'
}
access_src() {
        nbctl --json list | jq -r --arg t "$1" --arg r "$2" '.access[] | select(.target == $t and .remote == $r) | "\(.action) \(.source // "")"'
}

# ---------------------------------------------------------------------------------------------
nb_say "--- 1. a scoped limit and a deny from a hand-written file at start"
cat >"$LOCAL" <<EOF
# written by hand
user@$USER_ID $RATE --remote $NB_B4/32
deny user@$DENIED_ID --remote $NB_B4/32
EOF
nb_start_netbumpd --config-dir "$CONF"
nb_wait_complete "scoped rule"
assert_true "the scoped rule's source is $LOCAL:2 ($(rule_src "user@$USER_ID" "$NB_B4/32"))" \
        test "$(rule_src "user@$USER_ID" "$NB_B4/32")" = "$LOCAL:2"
assert_true "the deny's source is $LOCAL:3 ($(access_src "user@$DENIED_ID" "$NB_B4/32"))" \
        test "$(access_src "user@$DENIED_ID" "$NB_B4/32")" = "deny $LOCAL:3"
expect_refused "$DENIED_ID" "$NB_B4"
expect_ok "$DENIED_ID" "$NB_C4"
assert_within "$(up_rate "$NB_B4")" "$(expected_goodput "$RATE" 4)" "$TOL" "uid $USER_ID up to $NB_B4 (scoped $RATE from the file)"
assert_above "$(up_rate "$NB_C4")" "$FREE_MIN" "uid $USER_ID up to $NB_C4 (out of scope)"

# ---------------------------------------------------------------------------------------------
nb_say "--- 2. deny --persistent, set --persistent --remote; plain unset refused"
nbctl_ok deny --persistent "user@$THIRD_ID" --remote "$NB_C4/32"
nbctl_ok set --persistent "user@$USER_ID" 4mbit --remote "$NB_C4/32"
own=$(grep -v '^#' "$OWN")
want="deny user@$THIRD_ID --remote $NB_C4/32
user@$USER_ID 4mbit --remote $NB_C4/32"
assert_true "50-netbumpctl.rules has both lines ($(paste -sd'|' <<<"$own"))" test "$own" = "$want"
expect_refused "$THIRD_ID" "$NB_C4"
expect_ok "$THIRD_ID" "$NB_B4"
assert_true "the deny's source is $OWN:3" test "$(access_src "user@$THIRD_ID" "$NB_C4/32")" = "deny $OWN:3"
refused "plain unset of the file's deny" "$LOCAL:3" unset "user@$DENIED_ID" --remote "$NB_B4/32"
refused "plain unset of the file's scoped rule" "$LOCAL:2" unset "user@$USER_ID" --remote "$NB_B4/32"
refused "unset --persistent of a hand-written line" "$LOCAL:3" unset --persistent "user@$DENIED_ID" --remote "$NB_B4/32"

# ---------------------------------------------------------------------------------------------
nb_say "--- 3. reload with a bad line: refused naming FILE:LINE, nothing lost"
before=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote, .up]], [.access[] | [.target, .remote, .action]]')
echo "deny user@$DENIED_ID --remote 127.0.0.0/8" >>"$LOCAL"
refused "reload with a deny covering loopback" "$LOCAL:4" reload
after=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote, .up]], [.access[] | [.target, .remote, .action]]')
assert_true "nothing in force changed" test "$before" = "$after"
expect_refused "$DENIED_ID" "$NB_B4"

# ---------------------------------------------------------------------------------------------
nb_say "--- 4. reload without the hand-written lines removes them; unset --persistent"
echo "# nothing here now" >"$LOCAL"
nbctl_ok reload
got=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote]], [.access[] | [.target, .remote]]' | paste -sd' ')
assert_true "after reload: only 50-netbumpctl.rules' rules ($got)" \
        test "$got" = "[[\"user@$USER_ID\",\"$NB_C4/32\"]] [[\"user@$THIRD_ID\",\"$NB_C4/32\"]]"
expect_ok "$DENIED_ID" "$NB_B4"
assert_above "$(up_rate "$NB_B4")" "$FREE_MIN" "uid $USER_ID up to $NB_B4 (its scoped rule gone)"
nbctl_ok unset --persistent "user@$THIRD_ID" --remote "$NB_C4/32"
nbctl_ok unset --persistent "user@$USER_ID" --remote "$NB_C4/32"
expect_ok "$THIRD_ID" "$NB_C4"
own=$(grep -v '^#' "$OWN" || :)
assert_true "50-netbumpctl.rules has no rule left ('$own')" test -z "$own"
got=$(nbctl --json list | jq -c '[.rules[]] + [.access[]] | length')
assert_true "no rule left in force ($got)" test "$got" = 0

nb_finish
