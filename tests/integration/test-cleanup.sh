#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbumpd leaves its namespace and the host as it found them:
#   1. start, set two rules, transfer, SIGTERM: snapshot equals the one taken before;
#   2. start, set rules, SIGKILL: leftovers remain (qdisc, filter or IFB; proves step 3 matters);
#   3. start again on those leftovers (clean or adopt them), limit still works, SIGTERM: snapshot
#      equals the one taken before.
# The transfers only check that the limit is in effect (within 25%); test-limit-* check accuracy.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
USER_ID=1000
TOL=25                  # "the limit is in effect"; accuracy is test-limit-*'s business

nb_require_daemon
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
nb_setup
nb_start_iperf_servers 5201
make_cgroup limited >/dev/null
make_cgroup other >/dev/null
limited="cgroup:$(cgroup_rel limited)"
expected=$(expected_goodput "$RATE" 4)

snap=$NB_TMP/snapshot
host_snapshot "$snap.before"

set_rules() {
        nbctl_ok set "$limited" "$RATE"
        nbctl_ok set "user@$USER_ID" --up 4mbit --down 6mbit
}

# --- 1. clean stop
nb_start_netbumpd
set_rules
host_snapshot "$snap.running"
assert_different_snapshot "$snap.before" "$snap.running" "running netbumpd changed the snapshot"
bps=$(measure_goodput -g limited -t 3 "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 1)"
assert_within "$bps" "$expected" "$TOL" "step 1: cgroup up v4"
bps=$(measure_goodput -g limited -t 3 -R "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 1)"
assert_within "$bps" "$expected" "$TOL" "step 1: cgroup down v4"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "step 1: exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
host_snapshot "$snap.after-term"
assert_same_snapshot "$snap.before" "$snap.after-term" "step 1: nothing left after SIGTERM"

# --- 2. crash
nb_start_netbumpd
set_rules
nb_kill_netbumpd
host_snapshot "$snap.after-kill"
assert_different_snapshot "$snap.before" "$snap.after-kill" "step 2: SIGKILL leaves state behind"
leftovers=$( { snapshot_section "$snap.after-kill" "tc qdisc dev" | grep -vE '^qdisc noqueue 0: root' || :
               snapshot_section "$snap.after-kill" "tc filter dev" || :
               snapshot_section "$snap.after-kill" "links in ns a" | grep -E '^[0-9]+: nbifb' || : ; } )
if [[ -n $leftovers ]]; then
        nb_say "step 2: leftovers after SIGKILL (qdiscs, filters, IFBs):"
        sed 's/^/    /' <<<"$leftovers" >&3
else
        nb_record_failure "step 2: no qdisc, filter or IFB left after SIGKILL; the restart step proves nothing"
fi

# --- 3. restart on leftovers
nb_start_netbumpd
set_rules
bps=$(measure_goodput -g limited -t 3 "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 3)"
assert_within "$bps" "$expected" "$TOL" "step 3: cgroup up v4 after restart"
bps=$(measure_goodput -g limited -t 3 -R "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 3)"
assert_within "$bps" "$expected" "$TOL" "step 3: cgroup down v4 after restart"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "step 3: exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
host_snapshot "$snap.after-restart"
assert_same_snapshot "$snap.before" "$snap.after-restart" "step 3: nothing left after restart + SIGTERM"

nb_finish
