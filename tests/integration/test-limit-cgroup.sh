#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `netbumpctl set cgroup:/... 8mbit` limits a cgroup's TCP goodput to what an 8 Mbit/s link gives,
# upload and download, IPv4 and IPv6 (within 5%); meanwhile a client in a sibling cgroup is not
# limited (> 500 Mbit/s).

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=4                  # measured seconds, after 1 omitted second
TOL=5                   # percent
FREE_MIN=500000000      # bits/s an unlimited client must exceed

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201 5202
make_cgroup limited >/dev/null
make_cgroup free >/dev/null

nb_start_netbumpd
nbctl_ok set "cgroup:$(cgroup_rel limited)" "$RATE"

for fam in 4 6; do
        if [[ $fam == 4 ]]; then addr=$NB_B4; else addr=$NB_B6; fi
        expected=$(expected_goodput "$RATE" "$fam")
        for dir in up down; do
                opts=(-t "$SECS")
                [[ $dir == down ]] && opts+=(-R)
                # IPv4: an unlimited client in the sibling cgroup runs at the same time, same direction
                free_pid='' free_bps=''
                if [[ $fam == 4 ]]; then
                        measure_goodput_bg free_pid -g free "${opts[@]}" "$addr" 5202
                fi
                bps=$(measure_goodput -g limited "${opts[@]}" "$addr" 5201) ||
                        nb_fail "limited iperf3 client failed ($dir v$fam)"
                assert_within "$bps" "$expected" "$TOL" "cgroup $dir v$fam"
                if [[ -n $free_pid ]]; then
                        measure_goodput_wait "$free_pid" free_bps ||
                                nb_fail "unlimited iperf3 client failed ($dir v$fam)"
                        assert_above "$free_bps" "$FREE_MIN" "sibling cgroup $dir v$fam (concurrent, unlimited)"
                fi
        done
done

nb_finish
