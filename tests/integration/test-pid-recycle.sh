#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A pid: rule is about a process, not a number: once its PID is recycled, the new process with
# that PID is not limited.
#   A. `set pid:P` on a process, kill it: the rule ends with it (within 5 s); `set pid:P` now fails
#      with "no such process"; then a new process is made to get PID P (P-1 written to
#      /proc/sys/kernel/ns_last_pid right before the fork, retried a bounded number of times): it
#      stays in its own cgroup, falls under no rule and uploads faster than 100 Mbit/s.
#   B. the rule outlives P because a child of P lives on in the rule's cgroup; P is recycled while
#      the rule is still there: the new process is not moved, not limited (> 100 Mbit/s) and
#      `list pid:P` does not put it under the old rule. Killing the child ends the rule.
# The daemon sees host PIDs, so the PID is forced in the host's PID namespace.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
FREE_MIN=100000000
TRIES=100
LAST_PID=/proc/sys/kernel/ns_last_pid

nb_require_daemon
[[ -w $LAST_PID ]] || nb_skip "$LAST_PID is not writable: cannot choose the PID of a new process"
nb_setup
nb_start_iperf_servers 5201
make_cgroup c1 >/dev/null
c1=$(cgroup_rel c1)
nb_start_netbumpd

proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }
_comm_is() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]; }
_in_cgroup() { [[ $(proc_cgroup "$1") == "$2" ]]; }
rules() { nbctl --json list | jq -c '[.rules[].target]'; }
_no_rule_named() { [[ $(nbctl --json list | jq --arg t "$1" '[.rules[] | select(.target == $t)] | length') == 0 ]]; }
_rule_named() { ! _no_rule_named "$1"; }
applies_to() { nbctl --json list "$1" | jq -r '.applies // ""'; }

_nb_argv -g c1
fifo=$NB_TMP/go
mkfifo "$fifo"

# recycled_upload P NAME: starts an iperf3 upload in ns a, cgroup c1, as a process with PID P (it
# waits on a FIFO until it has that PID; tries with another PID are killed before they run), then
# checks where it is, what `list pid:P` says, and its goodput
recycled_upload() {
        local p=$1 name=$2 try got json=$NB_TMP/recycled-$2.json rc=0 cg applies bps
        for ((try = 1; try <= TRIES; try++)); do
                # no fork between the write and the job's fork: echo is a builtin
                echo $((p - 1)) >"$LAST_PID"
                # shellcheck disable=SC2016
                "${_NB_ARGV[@]}" sh -c 'read -r _ < "$0" && exec "$@"' "$fifo" \
                        iperf3 -c "$NB_B4" -p 5201 -t 3 -O 1 -J --get-server-output --connect-timeout 3000 \
                        >"$json" 2>"$json.err" &
                got=$!
                [[ $got == "$p" ]] && break
                kill -KILL "$got" 2>/dev/null
                wait "$got" 2>/dev/null || :
        done
        if [[ $got != "$p" ]]; then
                nb_record_failure "$name: could not make a new process get PID $p in $TRIES tries (last got $got)"
                return 1
        fi
        nb_track_pid "$got"
        nb_say "$name: a new process got PID $p (try $try)"
        nb_wait_until 5 _in_cgroup "$p" "$c1" || :
        # shellcheck disable=SC2016
        timeout 5 sh -c 'echo go > "$0"' "$fifo" || nb_fail "$name: the new process did not take the go"
        nb_wait_until 5 _comm_is "$p" iperf3 || nb_fail "$name: PID $p did not become iperf3"
        cg=$(proc_cgroup "$p")
        assert_true "$name: the new process $p stays in $c1 (is in $cg)" test "$cg" = "$c1"
        applies=$(applies_to "pid:$p")
        assert_true "$name: list pid:$p says it falls under no rule (says '${applies:-none}')" test -z "$applies"
        wait "$got" || rc=$?
        if ((rc != 0)) || ! bps=$(goodput_from_json "$json"); then
                nb_record_failure "$name: iperf3 as PID $p failed (exit $rc): $(cat "$json.err") $(jq -r '.error // empty' "$json" 2>/dev/null)"
                return 1
        fi
        assert_above "$bps" "$FREE_MIN" "$name: upload of the new process with PID $p"
}

# --- A: the rule ends with the process; the recycled PID is free ---------------------------
"${_NB_ARGV[@]}" sleep 60 &
P=$!
nb_track_pid "$P"
nb_wait_until 5 _comm_is "$P" sleep || nb_fail "A: sleep ($P) did not start"
nb_wait_until 5 _in_cgroup "$P" "$c1" || nb_fail "A: sleep ($P) never reached $c1"
nbctl_ok set "pid:$P" "$RATE"
assert_true "A: $P is in its rule's cgroup" test "$(proc_cgroup "$P")" = "$NB_CGROOT_REL/netbump/pid-$P"
kill -KILL "$P"
wait "$P" 2>/dev/null || :
if nb_wait_until 5 _no_rule_named "pid:$P"; then
        nb_say "A: the rule ended with process $P: ok"
else
        nb_record_failure "A: rule pid:$P still listed 5 s after the process was killed: $(rules)"
fi
assert_true "A: the rule's cgroup is gone" test ! -d "$NB_CGROOT/netbump/pid-$P"

# a dead PID cannot be limited (PIDs are allocated cyclically: P is not reused this soon)
if kill -0 "$P" 2>/dev/null; then
        nb_say "A: PID $P already belongs to another process; skipping the dead-PID check"
else
        rc=0
        err=$(nbctl set "pid:$P" "$RATE" 2>&1) || rc=$?
        if ((rc == 1)) && [[ $err == *"no such process"* && $err == *"$P"* ]]; then
                nb_say "A: set pid:$P for the dead process: exit 1, '$err': ok"
        else
                nb_record_failure "A: set pid:$P for the dead process: exit $rc, '$err' (expected 1 and 'no such process: $P')"
        fi
        assert_true "A: no rule after the refused set (rules: $(rules))" _no_rule_named "pid:$P"
fi

recycled_upload "$P" A

# --- B: the rule outlives P; P is recycled meanwhile ---------------------------------------
# shellcheck disable=SC2016
"${_NB_ARGV[@]}" sh -c 'sleep 60 & wait' &
P=$!
nb_track_pid "$P"
S=$(nb_child_pid "$P" sleep) || nb_fail "B: sh ($P) did not start its sleep"
nb_track_pid "$S"
nb_wait_until 5 _in_cgroup "$P" "$c1" || nb_fail "B: sh ($P) never reached $c1"
nbctl_ok set "pid:$P" "$RATE"
kill -KILL "$P"
wait "$P" 2>/dev/null || :
sleep 1
assert_true "B: the rule pid:$P lives on while its child $S does (rules: $(rules))" \
        _rule_named "pid:$P"
assert_true "B: the child $S is in the rule's cgroup" test "$(proc_cgroup "$S")" = "$NB_CGROOT_REL/netbump/pid-$P"

recycled_upload "$P" B

kill -TERM "$S"
if nb_wait_until 5 _no_rule_named "pid:$P"; then
        nb_say "B: the rule ended with the last process in its cgroup: ok"
else
        nb_record_failure "B: rule pid:$P still listed 5 s after its last process was killed: $(rules)"
fi

nb_finish
