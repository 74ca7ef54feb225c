#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbump-wrap and `netbumpctl run` limit a command from its first packet and then get out of the
# way:
#   - `netbump-wrap --rate 8mbit -- iperf3 ...` and `NETBUMP_RATE=8mbit netbump-wrap iperf3 ...`:
#     goodput within 5% of the 8 Mbit/s goodput, upload and download; `netbumpctl run 8mbit --
#     iperf3 ...` the same (upload). While it runs, the command has the wrapper's PID and sits in
#     the rule's cgroup.
#   - asymmetric: `netbump-wrap --up 8mbit --down 24mbit -- iperf3 ...` and, the other way round,
#     NETBUMP_UP_RATE=24mbit NETBUMP_DOWN_RATE=8mbit: the rule has those limits and each
#     direction's goodput is within 5% of its own rate's goodput.
#   - run by an unprivileged user (uid 1000) for its own command: the same (upload).
#   - as the main process of a systemd unit ($INVOCATION_ID set, cgroup "*.service"): the command
#     stays in its cgroup, which gets a transient rule (goodput within 5%); the rule ends with it.
#   - `netbump-wrap ... sh -c 'exit 7'` and `netbumpctl run ... sh -c 'exit 7'` exit 7; a wrapped
#     `sh -c 'kill -TERM $$'` dies of SIGTERM; a SIGTERM sent to a wrapped `sleep` ends it.
#   - after every command no rule is left (within 5 s).
#   - a wrong socket, or a rule the daemon refuses: exit 1, one line on stderr, command not run.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
TOL=5
NB_WRAP=$NB_BUILD_DIR/src/netbump-wrap/netbump-wrap

nb_require_daemon
[[ -x $NB_WRAP ]] || nb_fail "netbump-wrap not found at $NB_WRAP"
command -v python3 >/dev/null 2>&1 || nb_skip "'python3' is not installed"
nb_setup
nb_start_iperf_servers 5201
make_cgroup c1 >/dev/null
make_cgroup wrap-test.service >/dev/null
expected=$(expected_goodput "$RATE" 4)

nb_start_netbumpd

rules() { nbctl --json list | jq -c '[.rules[].target]'; }
no_rule() { [[ $(nbctl --json list | jq '.rules | length') == 0 ]]; }

# assert_no_rule_left WHAT: within 5 s no rule is left
assert_no_rule_left() {
        if nb_wait_until 5 no_rule; then
                nb_say "$1: no rule left: ok"
        else
                nb_record_failure "$1: rules left 5 s after the command ended: $(rules)"
        fi
}

_comm_is() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]; }
proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }

# wrapped_iperf NAME CG DIR WRAPPER...: runs `WRAPPER iperf3 -c ... [-R]` in ns a in cgroup CG in
# the background (as iperf_client_start does); checks that the process keeps its PID from the
# wrapper to iperf3, where it sits meanwhile and which rule there is; sets WRAP_BPS to the
# receiver's goodput and WRAP_LIMITS to the rule's "UP DOWN" bits/s. CG "*.service": it must stay there, under a cgroup: rule; otherwise it must
# be in netbump/pid-<its PID>, under a pid: rule. (Not in $(...): it records failures.)
wrapped_iperf() {
        local name=$1 cg=$2 dir=$3 json tpid pid want want_rule got
        shift 3
        WRAP_BPS='' WRAP_LIMITS=''
        json=$NB_TMP/wrap-$name-$dir.json
        local args=(iperf3 -c "$NB_B4" -p 5201 -t 4 -J --get-server-output --connect-timeout 3000)
        # downloads: 2 s omitted, as test-limit-cgroup does (the receive window opening and the
        # landing take the first second and more: with 1 s omitted a 24mbit download read -5.0%)
        if [[ $dir == down ]]; then args+=(-R -O 2); else args+=(-O 1); fi
        _nb_argv -g "$cg"
        (exec timeout -k 5 30 "${_NB_ARGV[@]}" "$@" "${args[@]}" >"$json" 2>"$json.err") &
        tpid=$!
        nb_track_pid "$tpid"
        NB_BG_JSON[$tpid]=$json
        pid=$(nb_child_pid "$tpid" iperf3) || { nb_say "$name $dir: no iperf3 below timeout $tpid"; return 1; }
        if [[ $cg == *.service ]]; then
                want=$(cgroup_rel "$cg") want_rule=cgroup:$(cgroup_rel "$cg")
        else
                want=$NB_CGROOT_REL/netbump/pid-$pid want_rule=pid:$pid
                # a user's pid rule: a cgroup of its own inside the one the command was in
                [[ $name == user ]] && want=$(cgroup_rel "$cg")/netbump-pid-$pid
        fi
        got=$(proc_cgroup "$pid")
        assert_true "$name $dir: iperf3 ($pid, the wrapper's PID) is in $want (is in $got)" test "$got" = "$want"
        got=$(rules)
        assert_true "$name $dir: the rules while it runs are [\"$want_rule\"] (are $got)" \
                test "$got" = "[\"$want_rule\"]"
        WRAP_LIMITS=$(nbctl --json list | jq -r '.rules[0] | "\(.up) \(.down)"')
        if [[ $cg == *.service ]]; then
                got=$(nbctl --json list | jq -r '.rules[0].transient')
                assert_true "$name $dir: the cgroup rule is transient (transient: $got)" test "$got" = true
        fi
        iperf_client_wait "$tpid" || return 1
        WRAP_BPS=$(goodput_from_json "$json")
}

# --- goodput -------------------------------------------------------------------------------
for dir in up down; do
        wrapped_iperf flag c1 "$dir" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- ||
                nb_fail "netbump-wrap --rate: iperf3 failed ($dir)"
        assert_within "$WRAP_BPS" "$expected" "$TOL" "netbump-wrap --rate $RATE -- iperf3 ($dir)"
        assert_no_rule_left "netbump-wrap --rate ($dir)"

        wrapped_iperf env c1 "$dir" env NETBUMP_SOCKET="$NB_SOCK" NETBUMP_RATE="$RATE" "$NB_WRAP" ||
                nb_fail "NETBUMP_RATE=$RATE netbump-wrap: iperf3 failed ($dir)"
        assert_within "$WRAP_BPS" "$expected" "$TOL" "NETBUMP_RATE=$RATE netbump-wrap iperf3 ($dir)"
        assert_no_rule_left "NETBUMP_RATE netbump-wrap ($dir)"
done

wrapped_iperf run c1 up "$NB_NETBUMPCTL" --socket "$NB_SOCK" run "$RATE" -- ||
        nb_fail "netbumpctl run: iperf3 failed"
assert_within "$WRAP_BPS" "$expected" "$TOL" "netbumpctl run $RATE -- iperf3 (up)"
assert_no_rule_left "netbumpctl run"

# --- asymmetric limits -----------------------------------------------------------------------
LOW=8mbit
HIGH=24mbit
for dir in up down; do
        # --up LOW --down HIGH
        want=$LOW
        [[ $dir == down ]] && want=$HIGH
        wrapped_iperf updown c1 "$dir" "$NB_WRAP" --socket "$NB_SOCK" --up "$LOW" --down "$HIGH" -- ||
                nb_fail "netbump-wrap --up $LOW --down $HIGH: iperf3 failed ($dir)"
        assert_true "netbump-wrap --up $LOW --down $HIGH: the rule's limits (up down) are $WRAP_LIMITS" \
                test "$WRAP_LIMITS" = "$(rate_to_bps "$LOW") $(rate_to_bps "$HIGH")"
        assert_within "$WRAP_BPS" "$(expected_goodput "$want" 4)" "$TOL" "netbump-wrap --up $LOW --down $HIGH ($dir: $want)"
        assert_no_rule_left "netbump-wrap --up/--down ($dir)"

        # NETBUMP_UP_RATE=HIGH NETBUMP_DOWN_RATE=LOW: the other way round
        want=$HIGH
        [[ $dir == down ]] && want=$LOW
        wrapped_iperf updown-env c1 "$dir" env NETBUMP_SOCKET="$NB_SOCK" NETBUMP_UP_RATE="$HIGH" \
                NETBUMP_DOWN_RATE="$LOW" "$NB_WRAP" ||
                nb_fail "NETBUMP_UP_RATE=$HIGH NETBUMP_DOWN_RATE=$LOW netbump-wrap: iperf3 failed ($dir)"
        assert_true "NETBUMP_UP_RATE=$HIGH NETBUMP_DOWN_RATE=$LOW: the rule's limits (up down) are $WRAP_LIMITS" \
                test "$WRAP_LIMITS" = "$(rate_to_bps "$HIGH") $(rate_to_bps "$LOW")"
        assert_within "$WRAP_BPS" "$(expected_goodput "$want" 4)" "$TOL" \
                "NETBUMP_UP_RATE=$HIGH NETBUMP_DOWN_RATE=$LOW netbump-wrap ($dir: $want)"
        assert_no_rule_left "NETBUMP_UP_RATE/NETBUMP_DOWN_RATE netbump-wrap ($dir)"
done

# as the main process of a unit: stays in its cgroup, which the rule limits while it lives
wrapped_iperf unit wrap-test.service up env INVOCATION_ID=0123456789abcdef0123456789abcdef \
        "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- || nb_fail "netbump-wrap in a unit's cgroup: iperf3 failed"
assert_within "$WRAP_BPS" "$expected" "$TOL" "netbump-wrap in wrap-test.service (transient cgroup rule, up)"
assert_no_rule_left "netbump-wrap in wrap-test.service"

# a user limits a command of its own (netbumpd checks the caller's uid); the socket's directory
# must let it through
chmod 711 "$NB_TMP"
wrapped_iperf user c1 up setpriv --reuid 1000 --regid 1000 --clear-groups -- \
        "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- || nb_fail "netbump-wrap as uid 1000: iperf3 failed"
assert_within "$WRAP_BPS" "$expected" "$TOL" "netbump-wrap as uid 1000 (up)"
assert_no_rule_left "netbump-wrap as uid 1000"

# --- exit status and signals ---------------------------------------------------------------
# exit_status CMD...: how CMD ended, as its parent's wait status says: "exit N" or "signal N"
# (Python as the parent, with a 15 s bound: timeout(1) in between would blur the difference)
exit_status() {
        python3 -c '
import subprocess, sys
try:
    r = subprocess.run(sys.argv[1:], timeout=15).returncode
except subprocess.TimeoutExpired:
    print("timed out"); sys.exit(0)
print("signal %d" % -r if r < 0 else "exit %d" % r)' "$@"
}

_nb_argv -g c1
st=$(exit_status "${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- sh -c 'exit 7')
assert_true "netbump-wrap --rate $RATE -- sh -c 'exit 7': $st" test "$st" = "exit 7"
# shellcheck disable=SC2016
st=$(exit_status "${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- sh -c 'kill -TERM $$')
assert_true "netbump-wrap --rate $RATE -- sh -c 'kill -TERM \$\$' ends by SIGTERM: $st" test "$st" = "signal 15"
# and the shell as its parent sees that: 128 + 15
rc=0
# shellcheck disable=SC2016
# (2>/dev/null: bash's own "Terminated" notice)
{ "${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- sh -c 'kill -TERM $$' || rc=$?; } 2>/dev/null
assert_true "... and bash reports status $rc (143)" test "$rc" = 143
st=$(exit_status "${_NB_ARGV[@]}" "$NB_NETBUMPCTL" --socket "$NB_SOCK" run "$RATE" -- sh -c 'exit 7')
assert_true "netbumpctl run $RATE -- sh -c 'exit 7': $st" test "$st" = "exit 7"

# a signal sent from outside reaches the command: no wrapper process in between
"${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- sleep 30 &
spid=$!
nb_track_pid "$spid"
nb_wait_until 5 _comm_is "$spid" sleep ||
        nb_fail "the wrapped sleep ($spid) did not start"
assert_true "wrapped sleep has the wrapper's PID $spid and is in its rule's cgroup" \
        test "$(proc_cgroup "$spid")" = "$NB_CGROOT_REL/netbump/pid-$spid"
kill -TERM "$spid"
rc=0
t0=$(nb_now)
wait "$spid" 2>/dev/null || rc=$?
took=$(awk -v a="$t0" -v b="$(nb_now)" 'BEGIN { printf "%.2f", b - a }')
assert_true "SIGTERM to the wrapped sleep ends it (status $rc after $took s)" test "$rc" = 143
assert_no_rule_left "exit status and signal checks"

# --- failures: exit 1, one line, command not run -------------------------------------------
marker=$NB_TMP/ran
# expect_refusal WHAT WORD CMD...: exit 1, one line on stderr naming WORD, $marker not created
expect_refusal() {
        local what=$1 word=$2 rc=0 err
        shift 2
        rm -f "$marker"
        err=$("$@" 2>&1 >/dev/null) || rc=$?
        if ((rc != 1)); then
                nb_record_failure "$what: exit $rc, expected 1 (stderr: $err)"
        elif [[ -e $marker ]]; then
                nb_record_failure "$what: the command ran although the limit was not set"
        elif [[ $err != *"$word"* || $(wc -l <<<"$err") != 1 ]]; then
                nb_record_failure "$what: expected one line naming '$word', got: $err"
        else
                nb_say "$what: exit 1, not run, '$err': ok"
        fi
}
expect_refusal "netbump-wrap with a wrong socket" "$NB_TMP/nosuch.sock" \
        timeout 15 "${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_TMP/nosuch.sock" --rate "$RATE" -- touch "$marker"
expect_refusal "NETBUMP_SOCKET pointing nowhere" "$NB_TMP/nosuch.sock" \
        timeout 15 "${_NB_ARGV[@]}" env NETBUMP_SOCKET="$NB_TMP/nosuch.sock" NETBUMP_RATE="$RATE" "$NB_WRAP" touch "$marker"
# a unit's cgroup outside the daemon's cgroup root: the daemon refuses the transient rule
unit_cg=$NB_CGROUP2/netbump-test-$NB_ID-outside.service
mkdir "$unit_cg"
# shellcheck disable=SC2016
expect_refusal "netbump-wrap in a unit outside the daemon's cgroup root" "outside" \
        timeout 15 nsenter --net="$NB_NETNS_A" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$unit_cg" \
        env INVOCATION_ID=0123456789abcdef0123456789abcdef "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- touch "$marker"
rmdir "$unit_cg" || nb_record_failure "cannot remove $unit_cg"
rc=0
err=$(timeout 15 "${_NB_ARGV[@]}" "$NB_NETBUMPCTL" --socket "$NB_TMP/nosuch.sock" run "$RATE" -- touch "$marker" 2>&1) || rc=$?
assert_true "netbumpctl run with a wrong socket: exit $rc (3: unreachable), not run: $err" \
        test "$rc" = 3 -a ! -e "$marker"
rc=0
err=$(timeout 15 "${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- /nonexistent/cmd 2>&1) || rc=$?
assert_true "netbump-wrap -- /nonexistent/cmd: exit $rc (127): $err" test "$rc" = 127
rc=0
err=$(timeout 15 "${_NB_ARGV[@]}" "$NB_WRAP" --socket "$NB_SOCK" --rate "$RATE" -- "$NB_TMP" 2>&1) || rc=$?
assert_true "netbump-wrap -- <a directory>: exit $rc (126): $err" test "$rc" = 126
assert_no_rule_left "failure checks"

nb_finish
