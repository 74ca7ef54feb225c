#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A restart after SIGKILL takes over what the killed run left, with no unshaped moment:
#   - 1000 rules (998 user@ rules of uids without processes, and an 8mbit rule on each of two
#     cgroups), a download in one cgroup and an upload in the other, both limited;
#   - SIGKILL of netbumpd in the middle of the transfers, and a new start at once;
#   - the classes of both transfers (HTB counters on veth-a and its IFB, sampled every ~100 ms)
#     never pass 1.5 x 8mbit in any half second from the first second to the end, and their
#     counters never go back (the classes were kept, not made anew);
#   - the restarted netbumpd lists all 1000 rules within 2 s of its launch, with the same class
#     ids as before the kill;
#   - SIGTERM then leaves the host as before the test (no qdisc, class, IFB, filter, program, pin,
#     mount or cgroup left).

source "$(dirname "$0")/lib.sh"

RATE=8mbit
N_USERS=998
LIST_MAX=2

nb_require_daemon
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
nb_setup
nb_start_iperf_servers 5201 5202
make_cgroup down >/dev/null
make_cgroup up >/dev/null
snap=$NB_TMP/snapshot
host_snapshot "$snap.before"

nb_start_netbumpd
nbctl_ok set "cgroup:$(cgroup_rel down)" "$RATE"
nbctl_ok set "cgroup:$(cgroup_rel up)" "$RATE"
t=$(nb_now)
for ((u = 0; u < N_USERS; u++)); do
        nbctl set "user@$((20000 + u))" 4mbit >/dev/null || nb_fail "set user@$((20000 + u)) failed"
done
nb_say "$N_USERS user rules set in $(nb_rel "$t" "$(nb_now)") s"
nb_wait_complete "before the kill"
nbctl --json list | jq -r '.rules[] | "\(.target) \(.class)"' | sort >"$NB_TMP/classes.before"
dcls=$(awk -v t="cgroup:$(cgroup_rel down)" '$1 == t { print $2 }' "$NB_TMP/classes.before")
ucls=$(awk -v t="cgroup:$(cgroup_rel up)" '$1 == t { print $2 }' "$NB_TMP/classes.before")
IFB=$(nb_ifb_of "$NB_IF_A")

tc_sampler_start sampler "$NB_TMP/tc" 14 "$NB_IF_A" "$IFB"
t0=$(nb_now)
measure_goodput_bg cd -g down -R -t 11 -O 0 "$NB_B4" 5201
measure_goodput_bg cu -g up -t 11 -O 0 "$NB_B4" 5202
nb_sleep_until "$t0" 4
nb_kill_netbumpd
t_kill=$(nb_now)
nb_start_netbumpd
n=$(nbctl --json list | jq '.rules | length')
t_list=$(nb_now)
nb_say "restarted: $n rules listed $(nb_rel "$t_kill" "$t_list") s after the kill"
assert_true "all $((N_USERS + 2)) rules listed within $LIST_MAX s of the kill (got $n)" \
        awk -v n="$n" -v w="$((N_USERS + 2))" -v d="$(nb_rel "$t_kill" "$t_list")" -v m="$LIST_MAX" \
        'BEGIN { exit !(n == w && d < m) }'
nbctl --json list | jq -r '.rules[] | "\(.target) \(.class)"' | sort >"$NB_TMP/classes.after"
assert_true "every rule kept its class id across the kill" cmp -s "$NB_TMP/classes.before" "$NB_TMP/classes.after"
measure_goodput_wait "$cd" bd || nb_fail "the download failed"
measure_goodput_wait "$cu" bu || nb_fail "the upload failed"
t_end=$(nb_now)
tc_sampler_stop "$sampler"

limit=$(rate_to_bps "$RATE")
for what in download upload; do
        if [[ $what == download ]]; then dev=$IFB cls=$dcls; else dev=$NB_IF_A cls=$ucls; fi
        tc_class_series "$NB_TMP/tc" "$dev" "$cls" >"$NB_TMP/series-$what"
        if out=$(series_monotonic "$NB_TMP/series-$what"); then
                nb_say "$what: the class's counters never went back (kept across the kill): ok"
        else
                nb_record_failure "$what: the class's counters went back $out (made anew?)"
        fi
        worst=$(series_worst "$NB_TMP/series-$what" "$t0" "$t_end")
        assert_below "$worst" "$(awk -v l="$limit" 'BEGIN { print 1.5 * l }')" \
                "$what: its worst half second, the kill and restart included (limit $RATE)"
        series_table "$NB_TMP/series-$what" "$t_kill" 0.5 8 -2 | sed "s/^/    $what /" >&3
done
assert_within "$bd" "$(expected_goodput "$RATE" 4)" 10 "the download over the whole transfer"
assert_within "$bu" "$(expected_goodput "$RATE" 4)" 10 "the upload over the whole transfer"

nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
host_snapshot "$snap.after"
assert_same_snapshot "$snap.before" "$snap.after" "nothing left after SIGKILL, restart and SIGTERM"
assert_true "no mount left in the state directory" \
        eval '! awk -v d="$NB_TMP/" "index(\$5, d) == 1" /proc/self/mountinfo | grep -q .'
nb_finish
