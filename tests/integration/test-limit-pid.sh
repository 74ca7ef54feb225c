#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `netbumpctl set pid:PID` limits a running process, its open connections included:
#   - a 10 s iperf3 transfer (in a test cgroup) runs unlimited; ~2 s in, `set pid:<iperf3> 8mbit`;
#     ~7 s in, `unset`. Receiver's per-second intervals: from 1 s after the set until the unset on
#     average within 10% of the 8 Mbit/s goodput; before the set and from 1 s after the unset
#     faster than 100 Mbit/s. Upload and download (-R), IPv4.
#   - while limited the process is in <root>/netbump/pid-PID, `list pid:PID` names the rule;
#     after `unset` it is back in its original cgroup.
#   - a child started after the rule (a `sh` is limited; it starts iperf3 1.5 s later) is in the
#     rule's cgroup, falls under the rule and is limited (within 10%); the rule ends when the
#     shell and its child have exited.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=10
SET_AT=1.9              # seconds after the client started
UNSET_AT=6.9
TOL=10                  # percent
FREE_MIN=100000000      # bits/s an unlimited transfer must exceed

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup c1 >/dev/null
orig_cg=$(cgroup_rel c1)
expected=$(expected_goodput "$RATE" 4)

nb_start_netbumpd

# proc_cgroup PID: the cgroup v2 path of PID ("/a/b")
proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }

# _comm_is PID NAME
_comm_is() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]; }

# _in_cgroup PID CG: PID is in CG (a path as /proc/PID/cgroup shows it)
_in_cgroup() { [[ $(proc_cgroup "$1") == "$2" ]]; }

# child_pid PARENT NAME: the PID of PARENT's child once it runs NAME (5 s at most)
child_pid() {
        local parent=$1 name=$2 p i
        for ((i = 0; i < 100; i++)); do
                for p in $(pgrep -P "$parent"); do
                        _comm_is "$p" "$name" && { echo "$p"; return 0; }
                done
                sleep 0.05
        done
        return 1
}

# sleep_until T0 AT: sleep until AT seconds after T0
sleep_until() {
        sleep "$(awk -v t0="$1" -v now="$(nb_now)" -v at="$2" \
                'BEGIN { d = t0 + at - now; if (d < 0) d = 0; printf "%.3f", d }')"
}

# rel T0 T: T - T0 in seconds
rel() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# rule_applying TARGET: the rule `list TARGET` says the target falls under ("" for none)
rule_applying() { nbctl --json list "$1" | jq -r '.applies // ""'; }

no_rule() { [[ $(nbctl --json list | jq '.rules | length') == 0 ]]; }

# --- a running transfer, limited by PID and released ---------------------------------------
for dir in up down; do
        opts=(-g c1 -t "$SECS" -O 0 -i 1)
        [[ $dir == down ]] && opts+=(-R)
        json=$NB_TMP/pid-$dir.json
        t0=$(nb_now)
        iperf_client_start tpid "$json" "${opts[@]}" "$NB_B4" 5201
        ipid=$(child_pid "$tpid" iperf3) || nb_fail "$dir: no iperf3 process below timeout $tpid"
        nb_wait_until 5 _in_cgroup "$ipid" "$orig_cg" || nb_fail "$dir: iperf3 $ipid never reached $orig_cg"

        sleep_until "$t0" "$SET_AT"
        ts0=$(nb_now)
        nbctl_ok set "pid:$ipid" "$RATE"
        ts1=$(nb_now)
        cg=$(proc_cgroup "$ipid")
        assert_true "$dir: iperf3 ($ipid) is in the rule's cgroup while limited (is in $cg)" \
                test "$cg" = "$NB_CGROOT_REL/netbump/pid-$ipid"
        applies=$(rule_applying "pid:$ipid")
        assert_true "$dir: list pid:$ipid says it falls under pid:$ipid (says '$applies')" \
                test "$applies" = "pid:$ipid"

        sleep_until "$t0" "$UNSET_AT"
        tu0=$(nb_now)
        nbctl_ok unset "pid:$ipid"
        tu1=$(nb_now)
        cg=$(proc_cgroup "$ipid")
        assert_true "$dir: iperf3 ($ipid) is back in $orig_cg after unset (is in $cg)" test "$cg" = "$orig_cg"
        iperf_client_wait "$tpid" || nb_fail "iperf3 client failed ($dir)"

        s0=$(rel "$t0" "$ts0") s1=$(rel "$t0" "$ts1") u0=$(rel "$t0" "$tu0") u1=$(rel "$t0" "$tu1")
        nb_say "$dir: set between $s0 s and $s1 s, unset between $u0 s and $u1 s"
        receiver_intervals "$json" >"$NB_TMP/intervals-$dir"
        # full intervals only
        awk -v s0="$s0" -v s1="$s1" -v u0="$u0" -v u1="$u1" '{
                tag = "     "
                if ($2 - $1 < 0.5) tag = "(partial, ignored)"
                else if ($2 <= s0) tag = "before"
                else if ($1 >= s1 + 1 && $2 <= u0) tag = "limited"
                else if ($1 >= u1 + 1) tag = "after"
                printf "    %5.2f-%5.2f s  %8.2f Mbit/s  %s\n", $1, $2, $3 / 1e6, tag
        }' "$NB_TMP/intervals-$dir" >&3
        before=$(awk -v s0="$s0" '$2 - $1 >= 0.5 && $2 <= s0 { print $3 }' "$NB_TMP/intervals-$dir")
        limited=$(awk -v s1="$s1" -v u0="$u0" '$2 - $1 >= 0.5 && $1 >= s1 + 1 && $2 <= u0 { print $3 }' \
                "$NB_TMP/intervals-$dir")
        after=$(awk -v u1="$u1" '$2 - $1 >= 0.5 && $1 >= u1 + 1 { print $3 }' "$NB_TMP/intervals-$dir")
        mean() { awk '{ s += $1; n++ } END { printf "%.0f", s / n }'; }
        [[ -n $before ]] || nb_fail "$dir: no full interval before the set"
        [[ -n $limited ]] || nb_fail "$dir: no full interval from 1 s after the set until the unset"
        [[ -n $after ]] || nb_fail "$dir: no full interval from 1 s after the unset"
        assert_above "$(mean <<<"$before")" "$FREE_MIN" "$dir before set, mean of $(wc -l <<<"$before") interval(s)"
        assert_within "$(mean <<<"$limited")" "$expected" "$TOL" \
                "$dir limited by pid:, mean of $(wc -l <<<"$limited") intervals ($RATE)"
        assert_above "$(mean <<<"$after")" "$FREE_MIN" "$dir after unset, mean of $(wc -l <<<"$after") interval(s)"
        nb_wait_until 5 no_rule || nb_record_failure "$dir: rules left after unset: $(nbctl --json list | jq -c '[.rules[].target]')"
done

# --- a child born after the rule -----------------------------------------------------------
json=$NB_TMP/child.json
_nb_argv -g c1
# "; exit $?": the shell must fork iperf3, not exec it (dash execs a last simple command)
# shellcheck disable=SC2016
(exec timeout -k 5 40 "${_NB_ARGV[@]}" sh -c 'sleep 1.5; iperf3 "$@"; exit $?' sh \
        -c "$NB_B4" -p 5201 -t 4 -O 1 -J --get-server-output --connect-timeout 3000 >"$json" 2>"$json.err") &
tpid=$!
nb_track_pid "$tpid"
NB_BG_JSON[$tpid]=$json
shpid=$(child_pid "$tpid" sh) || nb_fail "child: no sh below timeout $tpid"
nb_wait_until 5 _in_cgroup "$shpid" "$orig_cg" || nb_fail "child: sh $shpid never reached $orig_cg"
nbctl_ok set "pid:$shpid" "$RATE"
ipid=$(child_pid "$shpid" iperf3) || nb_fail "child: sh $shpid did not start iperf3"
cg=$(proc_cgroup "$ipid")
assert_true "child: iperf3 ($ipid), started after the rule, is in pid:$shpid's cgroup (is in $cg)" \
        test "$cg" = "$NB_CGROOT_REL/netbump/pid-$shpid"
applies=$(rule_applying "pid:$ipid")
assert_true "child: list pid:$ipid says it falls under pid:$shpid (says '$applies')" test "$applies" = "pid:$shpid"
iperf_client_wait "$tpid" || nb_fail "child: iperf3 client failed"
assert_within "$(goodput_from_json "$json")" "$expected" "$TOL" "child: upload of a child started after the rule"
if nb_wait_until 5 no_rule; then
        nb_say "child: the rule ended with the shell and its child: ok"
else
        nb_record_failure "child: rules left 5 s after the shell ended: $(nbctl --json list | jq -c '[.rules[].target]')"
fi

nb_finish
