#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# No silent no-op. With netbumpd shaping a cgroup at 8mbit in ns a (its upload measured first):
#   1. a second veth pair (veth-a2) carries someone else's root qdisc (tbf) from before the start:
#      netbumpd leaves it alone, and `set` warns, `list`, `status` and `--json list` show per rule
#      that traffic through veth-a2 is not shaped, naming the qdisc and how to remove it. Once it
#      is removed, netbumpd shapes veth-a2 within seconds: the rule's upload over veth-a2 is then
#      limited too.
#   2. a second netbumpd in ns a (another socket, state dir) refuses to start, names the pid of the
#      one that holds the namespace, and touches nothing: same qdiscs, classes and links.
#   3. `netbumpd --interface nosuch0` in ns a, and in ns b (where no netbumpd runs): refused at
#      start, naming the interfaces there are; nothing touched (no state directory, no qdiscs).
# After 2 and 3 the first daemon's shaping is unchanged: the cgroup's upload is measured again.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=4
TOL=5                   # percent
FREE_MIN=500000000      # bits/s through an unshaped interface

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup limited >/dev/null

IF_A2=veth-a2
IF_B2=veth-b2
A2=198.19.$NB_NET.1
B2=198.19.$NB_NET.2
ip -n "$NB_NS_A" link add "$IF_A2" type veth peer name "$IF_B2" netns "$NB_NS_B"
ip -n "$NB_NS_A" addr add "$A2/24" dev "$IF_A2"
ip -n "$NB_NS_B" addr add "$B2/24" dev "$IF_B2"
ip -n "$NB_NS_A" link set "$IF_A2" up
ip -n "$NB_NS_B" link set "$IF_B2" up
nb_wait_until 5 _nb_link_up "$NB_NS_A" "$IF_A2" || nb_fail "$IF_A2 did not come up"
# someone else's shaping: a tbf far above the test's rates, so only netbumpd's absence shows
tc -n "$NB_NS_A" qdisc add dev "$IF_A2" root handle 77: tbf rate 10gbit burst 1mb latency 50ms

nb_start_netbumpd
CG=$(cgroup_rel limited)
set_err=$(nbctl set "cgroup:$CG" "$RATE" 2>&1 >/dev/null) || nb_fail "netbumpctl set failed: $set_err"
expected=$(expected_goodput "$RATE" 4)

# --- 1. someone else's root qdisc ------------------------------------------------------------
assert_true "set warns that $IF_A2 is not shaped, naming tbf 77: and the way to remove it ($set_err)" \
        eval '[[ $set_err == *"$IF_A2"*"not shaped"*"tbf 77:"*"tc qdisc del dev $IF_A2 root"* ]]'
js=$(nbctl --json list)
assert_true "--json list: the rule's path through $IF_A2 is shaped: false with the reason" \
        eval 'jq -e --arg i "$IF_A2" ".rules[0].paths[] | select(.interface == \$i) | .shaped == false and (.reason | test(\"tbf 77:\"))" <<<"$js" >/dev/null'
assert_true "--json list: the rule's path through $NB_IF_A is shaped" \
        eval 'jq -e --arg i "$NB_IF_A" ".rules[0].paths[] | select(.interface == \$i) | .shaped == true" <<<"$js" >/dev/null'
assert_true "--json list: unshaped is 1" eval 'jq -e ".rules[0].unshaped == 1" <<<"$js" >/dev/null'
list=$(nbctl list)
assert_true "list says $IF_A2 is not shaped for the rule" eval '[[ $list == *"cgroup:$CG: traffic through interface $IF_A2 is not shaped"* ]]'
status=$(nbctl status)
assert_true "status says $IF_A2 is not shaped, and for the rule" \
        eval '[[ $status == *"interface $IF_A2: not shaped"*"tbf 77:"* && $status == *"! cgroup:$CG: traffic through interface $IF_A2"* ]]'

bps=$(measure_goodput -g limited -t "$SECS" "$NB_B4" 5201) || nb_fail "iperf3 over $NB_IF_A failed"
assert_within "$bps" "$expected" "$TOL" "limited upload over $NB_IF_A before"
bps2=$(measure_goodput -g limited -t 2 "$B2" 5201) || nb_fail "iperf3 over $IF_A2 failed"
assert_above "$bps2" "$FREE_MIN" "the rule's upload over $IF_A2 under someone else's tbf (not shaped, as said)"

# --- 2. a second netbumpd in the same namespace ---------------------------------------------
snap_before=$NB_TMP/snap-before
snap_after=$NB_TMP/snap-after
# snapshot FILE: host_snapshot without HTB's count of packets sent unclassified (an ARP or a
# neighbour solicitation of the veth's own may pass meanwhile; no daemon of this test makes one)
snapshot() {
        host_snapshot "$1"
        sed -i -E 's/direct_packets_stat [0-9]+/direct_packets_stat N/' "$1"
}
snapshot "$snap_before"
classes_before=$(tc -n "$NB_NS_A" class show dev "$NB_IF_A" | sort)
rc=0
out=$(timeout 20 nsenter --net="$NB_NETNS_A" "$NB_NETBUMPD" --socket "$NB_TMP/second.sock" \
        --state-dir "$NB_TMP/second-state" --cgroup-root "$NB_CGROOT" 2>&1) || rc=$?
nb_say "second netbumpd: exit $rc: $out"
assert_true "a second netbumpd exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
assert_true "... naming the pid of the one running ($NB_DAEMON_PID)" \
        eval '[[ $out == *"Another netbumpd runs in this network namespace"*"pid $NB_DAEMON_PID"* ]]'
assert_true "... and its socket" eval '[[ $out == *"socket $NB_SOCK"* ]]'
assert_true "... made no state directory" test ! -e "$NB_TMP/second-state"
assert_true "... nor socket" test ! -e "$NB_TMP/second.sock"
snapshot "$snap_after"
assert_same_snapshot "$snap_before" "$snap_after" "after a second netbumpd in ns a"
assert_true "the first netbumpd's classes on $NB_IF_A are as they were" \
        eval '[[ $(tc -n "$NB_NS_A" class show dev "$NB_IF_A" | sort) == "$classes_before" ]]'

# --- 3. --interface naming nothing ----------------------------------------------------------
for ns in "$NB_NETNS_A" "$NB_NETNS_B"; do
        rc=0
        out=$(timeout 20 nsenter --net="$ns" "$NB_NETBUMPD" --socket "$NB_TMP/third.sock" \
                --state-dir "$NB_TMP/third-state" --cgroup-root "$NB_CGROOT" --interface nosuch0 2>&1) || rc=$?
        nb_say "netbumpd --interface nosuch0 in $ns: exit $rc: $out"
        assert_true "--interface nosuch0 in $ns: exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
        assert_true "... saying so and naming what there is" \
                eval '[[ $out == *"--interface nosuch0: no such interface"*"there are: "* ]]'
        assert_true "... made no state directory" test ! -e "$NB_TMP/third-state"
done
# whole outputs, then matched: `tc | grep -q` fails under pipefail when grep quits first (SIGPIPE)
qb=$(tc -n "$NB_NS_B" qdisc show)
assert_true "ns b has no qdisc of netbumpd's" eval '[[ $qb != *"6e62:"* ]]'
snapshot "$snap_after"
assert_same_snapshot "$snap_before" "$snap_after" "after netbumpd --interface nosuch0"

bps=$(measure_goodput -g limited -t "$SECS" "$NB_B4" 5201) || nb_fail "iperf3 over $NB_IF_A failed"
assert_within "$bps" "$expected" "$TOL" "limited upload over $NB_IF_A after the refused daemons"

# --- 1, continued: the foreign qdisc removed, netbumpd takes the interface -----------------
tc -n "$NB_NS_A" qdisc del dev "$IF_A2" root
_a2_shaped() {
        nbctl --json list | jq -e --arg i "$IF_A2" \
                '.rules[0].paths[] | select(.interface == $i) | .shaped == true' >/dev/null
}
assert_true "within 5 s of the removal the rule's path through $IF_A2 is shaped" nb_wait_until 5 _a2_shaped
nb_wait_complete "after $IF_A2 was taken"
qa2=$(tc -n "$NB_NS_A" qdisc show dev "$IF_A2")
assert_true "$IF_A2 has netbumpd's HTB now ($qa2)" eval '[[ $qa2 == "qdisc htb 6e62: root"* ]]'
bps2=$(measure_goodput -g limited -t "$SECS" "$B2" 5201) || nb_fail "iperf3 over $IF_A2 failed"
assert_within "$bps2" "$expected" "$TOL" "limited upload over $IF_A2 once the foreign qdisc is gone"

nb_finish
