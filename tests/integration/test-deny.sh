#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# deny and allow by remote scope, IPv4 and IPv6, with real connections:
#   - `deny user@1000 --remote B` refuses uid 1000's TCP connects and UDP sends to B within 1 s
#     with an error (EPERM), while root reaches B and uid 1000 reaches a second address C on the
#     same link; each refusal is logged with uid, pid and remote, counted in list, and marked
#     DENIED in `top --group connection`;
#   - `unset user@1000 --remote B` lifts it at once;
#   - the allow-list: `deny all --remote B` + `allow user@1000 --remote B`: uid 1000 connects,
#     root and uid 1001 are refused; uid 1000 itself may deny its own traffic, but neither deny
#     for all nor allow itself past root's deny;
#   - a deny set while a connection is open stops it within 1 s (the sender gets an error);
#   - bad scopes (loopback, host bits, empty) and a clash with a limit are refused, nothing lost;
#   - a restart keeps the deny; while a SIGKILLed netbumpd is down, connect()/sendmsg() are still
#     refused with EPERM within 1 s (the pinned links); the next start takes the links over (one
#     program per hook), and a clean stop leaves no pin and no program.

source "$(dirname "$0")/lib.sh"

USER_ID=1000
OTHER_ID=1001
PORT=5301

nb_require_daemon
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
TRAFFIC=$NB_LIB_DIR/deny-traffic.py
nb_setup
chmod 0755 "$NB_TMP"
NB_C4=198.18.$NB_NET.3
NB_C6=fd18::$NB_NET:3
ip -n "$NB_NS_B" addr add "$NB_C4/24" dev "$NB_IF_B"
ip -n "$NB_NS_B" addr add "$NB_C6/64" dev "$NB_IF_B" nodad
nsenter --net="$NB_NETNS_B" "$PY" "$TRAFFIC" sink "$PORT" >"$NB_TMP/sink.log" 2>&1 &
nb_track_pid $!
_sink_ready() { grep -q ready "$NB_TMP/sink.log"; }
nb_wait_until 5 _sink_ready || nb_fail "sink did not start: $(cat "$NB_TMP/sink.log")"
make_cgroup users >/dev/null
nb_start_netbumpd

# try [-u UID] connect|udp ADDR: what deny-traffic.py says, run in the users cgroup
try() {
        local uid=0
        if [[ $1 == -u ]]; then uid=$2; shift 2; fi
        run_in_cgroup -u "$uid" users "$PY" "$TRAFFIC" "$1" "$2" "$PORT"
}

# expect_refused UID KIND ADDR: an error (EPERM) within 1 s
expect_refused() {
        local out
        out=$(try -u "$1" "$2" "$3")
        if [[ $out == "err EPERM "* ]] && awk -v s="${out##* }" 'BEGIN { exit !(s < 1.0) }'; then
                nb_say "uid $1 $2 $3 refused: ok ($out)"
        else
                nb_record_failure "uid $1 $2 $3: expected EPERM within 1 s, got '$out'"
        fi
}

expect_ok() {
        local out
        out=$(try -u "$1" "$2" "$3")
        if [[ $out == "ok "* ]]; then
                nb_say "uid $1 $2 $3 goes through: ok ($out)"
        else
                nb_record_failure "uid $1 $2 $3: expected to go through, got '$out'"
        fi
}

# ctl_user ARGS...: netbumpctl as uid 1000
ctl_user() { run_as_uid "$USER_ID" timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" "$@"; }

# --- a user denies its own traffic -----------------------------------------------------------------
out=$(ctl_user deny "user@$USER_ID" --remote "$NB_C4/32" 2>&1) || nb_fail "uid $USER_ID cannot deny its own traffic: $out"
nb_say "uid $USER_ID denies its own traffic to $NB_C4: ok ($out)"
expect_refused "$USER_ID" connect "$NB_C4"
expect_ok "$OTHER_ID" connect "$NB_C4"
out=$(ctl_user deny all --remote "$NB_C6/128" 2>&1) && nb_record_failure "uid $USER_ID denied for all: $out" ||
        nb_say "uid $USER_ID may not deny for all: ok ($out)"
out=$(ctl_user unset "user@$USER_ID" --remote "$NB_C4/32" 2>&1) || nb_fail "uid $USER_ID cannot unset its deny: $out"
expect_ok "$USER_ID" connect "$NB_C4"

# --- deny for a user --------------------------------------------------------------------------
nbctl_ok deny "user@$USER_ID" --remote "$NB_B4/32,$NB_B6/128"
for b in "$NB_B4" "$NB_B6"; do
        expect_refused "$USER_ID" connect "$b"
        expect_refused "$USER_ID" udp "$b"
        expect_ok 0 connect "$b"
        expect_ok "$OTHER_ID" connect "$b"
done
expect_ok "$USER_ID" connect "$NB_C4"
expect_ok "$USER_ID" connect "$NB_C6"
_logged() { grep -q "Denied: uid $USER_ID pid [0-9]* connect to $NB_B4 port $PORT" "$NB_TMP/netbumpd.log"; }
nb_wait_until 3 _logged
assert_true "the refusal is logged with uid, pid and remote: $(grep -m1 'Denied:' "$NB_TMP/netbumpd.log")" _logged
got=$(nbctl --json list | jq '[.access[] | select(.target == "user@'"$USER_ID"'") | .denied_packets] | .[0]')
assert_true "list counts the refusals (denied $got)" test "$got" -ge 4
top=$(COLUMNS=250 nbctl top --once --group connection 2>&1)
assert_true "top marks the refused flows: $(grep -m1 DENIED <<<"$top")" \
        grep -qE "$NB_B4:$PORT.*DENIED \(deny user@$USER_ID --remote " <<<"$top"
text=$(nbctl list)
assert_true "list shows the deny" grep -qE "^deny +user@$USER_ID +$NB_B4/32,$NB_B6/128" <<<"$text"

# --- unset lifts it at once -----------------------------------------------------------------------
nbctl_ok unset "user@$USER_ID" --remote "$NB_B6/128,$NB_B4/32"
expect_ok "$USER_ID" connect "$NB_B4"
expect_ok "$USER_ID" connect "$NB_B6"

# --- only uid 1000 may reach B -------------------------------------------------------------------
for b in "$NB_B4" "$NB_B6"; do
        [[ $b == *:* ]] && cidr=$b/128 || cidr=$b/32
        nbctl_ok deny all --remote "$cidr"
        # a user never allows what root denied, not even for itself
        out=$(ctl_user allow "user@$USER_ID" --remote "$cidr" 2>&1) &&
                nb_record_failure "uid $USER_ID allowed itself past root's deny: $out" ||
                nb_say "uid $USER_ID may not allow itself past root's deny: ok ($out)"
        nbctl_ok allow "user@$USER_ID" --remote "$cidr"
        expect_ok "$USER_ID" connect "$b"
        expect_refused 0 connect "$b"
        expect_refused "$OTHER_ID" connect "$b"
        expect_ok 0 connect "$([[ $b == *:* ]] && echo "$NB_C6" || echo "$NB_C4")"
        # uid 1000 may not allow what root denied for someone else, nor deny for all
        out=$(ctl_user allow "user@$OTHER_ID" --remote "$cidr" 2>&1) &&
                nb_record_failure "uid $USER_ID allowed user@$OTHER_ID: $out" || nb_say "uid $USER_ID may not allow for user@$OTHER_ID: ok ($out)"
        nbctl_ok unset "user@$USER_ID" --remote "$cidr"
        nbctl_ok unset all --remote "$cidr"
        expect_ok 0 connect "$b"
done

# --- a deny set while a connection is open stops it ---------------------------------------------
for b in "$NB_B4" "$NB_B6"; do
        [[ $b == *:* ]] && cidr=$b/128 || cidr=$b/32
        out=$NB_TMP/stream-$RANDOM.log
        run_in_cgroup -u "$USER_ID" users "$PY" "$TRAFFIC" stream "$b" "$PORT" 8 >"$out" 2>&1 &
        spid=$!
        nb_track_pid "$spid"
        _connected() { grep -q connected "$1"; }
        nb_wait_until 5 _connected "$out" || nb_fail "stream to $b did not connect: $(cat "$out")"
        sleep 0.5
        t0=$(nb_now)
        nbctl_ok deny "user@$USER_ID" --remote "$cidr"
        wait "$spid" || :
        res=$(tail -n 1 "$out")
        if [[ $res == "err "* ]]; then
                dt=$(nb_rel "$t0" "${res##* }")
                if awk -v d="$dt" 'BEGIN { exit !(d < 1.0) }'; then
                        nb_say "open connection to $b stopped ${dt} s after the deny: ok ($res)"
                else
                        nb_record_failure "open connection to $b stopped only ${dt} s after the deny ($res)"
                fi
        else
                nb_record_failure "open connection to $b went on after the deny: '$res'"
        fi
        nbctl_ok unset "user@$USER_ID" --remote "$cidr"
done

# --- refused: nothing in force lost --------------------------------------------------------------
nbctl_ok deny "user@$USER_ID" --remote "$NB_B4/32"
before=$(nbctl --json list | jq -c '[.access[] | [.target, .remote, .action]]')
bad() {
        local want=$1 out rc=0
        shift
        out=$(nbctl "$@" 2>&1) || rc=$?
        if ((rc != 0)) && grep -qF -- "$want" <<<"$out"; then
                nb_say "refused $*: ok ($out)"
        else
                nb_record_failure "$*: exit $rc, expected a refusal saying '$want': $out"
        fi
}
bad "covers loopback" deny all --remote 127.0.0.0/8
bad "covers loopback" deny "user@$USER_ID" --remote 0.0.0.0/0
bad "covers loopback" deny "user@$USER_ID" --remote ::/0
bad "host bits set" deny "user@$USER_ID" --remote 198.18.0.1/15
bad "empty scope" deny "user@$USER_ID" --remote ""
bad "has a deny or allow" set "user@$USER_ID" --remote "$NB_B4/32" 1mbit
bad "usage" deny "user@$USER_ID"
after=$(nbctl --json list | jq -c '[.access[] | [.target, .remote, .action]]')
assert_true "nothing in force changed by the refusals ($after)" test "$before" = "$after"
expect_refused "$USER_ID" connect "$NB_B4"

# --- a restart keeps the deny ---------------------------------------------------------------------
nb_stop_netbumpd
nb_start_netbumpd
expect_refused "$USER_ID" connect "$NB_B4"
expect_ok 0 connect "$NB_B4"

# --- killed: the pinned connect/sendmsg links still refuse at once; a restart takes them over ----
nb_kill_netbumpd
expect_refused "$USER_ID" connect "$NB_B4"
expect_refused "$USER_ID" udp "$NB_B4"
expect_ok 0 connect "$NB_B4"
expect_ok "$USER_ID" connect "$NB_C4"
nb_start_netbumpd
expect_refused "$USER_ID" connect "$NB_B4"
expect_refused "$USER_ID" udp "$NB_B4"
expect_ok 0 connect "$NB_B4"
links=$(bpftool -j cgroup show "$NB_CGROOT" | jq -c '[.[] | .attach_type] | sort')
assert_true "one program per hook after the takeover ($links)" \
        test "$(jq '[group_by(.)[] | length] | max' <<<"$links")" = 1
# while running, the four are pinned beside the others (/sys/fs/bpf/netbump-STATE-DIR where the
# host has a bpffs there, else the bpffs netbumpd mounts at STATE_DIR/bpf)
pins=/sys/fs/bpf/netbump$(realpath "$NB_STATE" | tr /. -_)
[[ -d $pins ]] || pins=$NB_STATE/bpf
got=$(ls "$pins" 2>&1 | grep -cE '^link_(connect|sendmsg)[46]$' || :)
assert_true "the connect/sendmsg links are pinned in $pins ($got)" test "$got" = 4
# a clean stop leaves no pinned link or program behind
nb_stop_netbumpd
assert_true "no pins left in $pins: $(ls "$pins" 2>&1 | paste -sd' ')" test ! -e "$pins"
left=$(bpftool -j cgroup show "$NB_CGROOT" | jq -s 'map(length) | add // 0')
assert_true "no program left at the cgroup root ($left)" test "$left" = 0
out=$(try -u "$USER_ID" connect "$NB_B4")
assert_true "with netbumpd stopped, nothing refuses ($out)" test "${out%% *}" = ok

nb_finish
