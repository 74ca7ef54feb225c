#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbumpd started with `ip netns exec NS`, which remounts /sys in a mount namespace of its own (no
# cgroup2, no bpffs below it): netbumpd mounts cgroup2 for itself alone, at the path the host has
# it, says so in one notice, and shapes as under nsenter --net: a cgroup's upload and download at
# 8mbit within 5%. The host's mounts are as they were, during the run and after it, and a SIGTERM
# leaves ns a's qdiscs as they were.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=4
TOL=5   # percent

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup limited >/dev/null

# the host's mounts below /sys (other test runs mount and unmount elsewhere meanwhile)
mounts() { awk '$5 ~ /^\/sys/ { print $5, $(NF - 2) }' /proc/self/mountinfo | sort; }
mounts >"$NB_TMP/mounts-before"
tc -n "$NB_NS_A" qdisc show >"$NB_TMP/qdiscs-before"

NB_DAEMON_ENTER="ip netns exec $NB_NS_A" nb_start_netbumpd
grep -F "/sys was remounted (as 'ip netns exec' does) and had no cgroup2: mounted it at" "$NB_TMP/netbumpd.log" \
        >/dev/null && nb_say "netbumpd said why it mounted cgroup2: ok" ||
        nb_record_failure "no notice about the private cgroup2 mount: $(tail -n 5 "$NB_TMP/netbumpd.log")"
host_mount=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2") { print $5; exit } }' \
        /proc/self/mountinfo)
got_mount=$(nbctl --json status | jq -r .cgroup_mount)
assert_true "netbumpd's cgroup2 is at the host's path ($got_mount, host $host_mount)" test "$got_mount" = "$host_mount"
mounts >"$NB_TMP/mounts-during"
assert_true "the host's mounts are unchanged while it runs" cmp -s "$NB_TMP/mounts-before" "$NB_TMP/mounts-during"

nbctl_ok set "cgroup:$(cgroup_rel limited)" "$RATE"
expected=$(expected_goodput "$RATE" 4)
bps=$(measure_goodput -g limited -t "$SECS" "$NB_B4" 5201) || nb_fail "limited upload failed"
assert_within "$bps" "$expected" "$TOL" "cgroup upload under a netbumpd from ip netns exec"
bps=$(measure_goodput -g limited -t "$SECS" -R -O 2 "$NB_B4" 5201) || nb_fail "limited download failed"
assert_within "$bps" "$expected" "$TOL" "cgroup download under a netbumpd from ip netns exec"

nb_stop_netbumpd
assert_true "netbumpd exited 0 on SIGTERM (status $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
mounts >"$NB_TMP/mounts-after"
assert_true "the host's mounts are as they were" cmp -s "$NB_TMP/mounts-before" "$NB_TMP/mounts-after"
tc -n "$NB_NS_A" qdisc show >"$NB_TMP/qdiscs-after"
assert_true "ns a's qdiscs are as they were" cmp -s "$NB_TMP/qdiscs-before" "$NB_TMP/qdiscs-after"

nb_finish
