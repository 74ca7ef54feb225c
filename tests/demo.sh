#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Quick start demo: a download that gets limited, re-limited and released
# while it runs. Everything happens in two private network namespaces and a
# private cgroup, made here and removed on exit.
#
#   tests/demo.sh [BUILD_DIR]     (installed netbumpd/netbumpctl are preferred)

NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$(cd "$(dirname "$0")/.." && pwd)/build}}
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/integration/lib.sh"
NB_TEST_NAME=demo

if command -v netbumpd >/dev/null && command -v netbumpctl >/dev/null; then
        NB_NETBUMPD=$(command -v netbumpd)
        NB_NETBUMPCTL=$(command -v netbumpctl)
fi
nb_require_daemon

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&3; }
show() { printf '$ netbumpctl %s\n' "$*" >&3; nbctl "$@" >&3; }

step "Two network namespaces joined by a veth; an iperf3 server on the far side"
nb_setup
nb_start_iperf_servers 5201

step "netbumpd in the near namespace ($NB_NETBUMPD)"
nb_start_netbumpd
show status
cg=$(make_cgroup downloader)
target=cgroup:$(cgroup_rel "$cg")

step "A 16-second download starts, unlimited (rates are what the receiver gets, every second)"
_nb_argv -g "$cg"
# a read loop, not awk: mawk would buffer the lines we want to see as they come
"${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p 5201 -R -t 16 -i 1 -f m --forceflush 2>&1 |
        while IFS= read -r line; do
                [[ $line == *bits/sec* && $line != *sender* && $line != *receiver* ]] && printf '    %s\n' "$line" >&3
        done &
dl=$!
nb_track_pid "$dl"

sleep 3.5
step "Limit it to 20mbit while it runs"
show set "$target" 20mbit
sleep 4
step "Change the limit to 5mbit"
show set "$target" 5mbit
sleep 2
show list
sleep 2
step "Lift it"
show unset "$target"
wait "$dl" || :

step "Stop netbumpd: it removes everything it added"
nb_stop_netbumpd
nb_say "qdiscs left on $NB_IF_A: $(ip -n "$NB_NS_A" -o link show | grep -c nbifb || :) IFB, $(nsenter --net="$NB_NETNS_A" tc qdisc show dev "$NB_IF_A" | awk '{print $2}' | paste -sd' ')"
nb_say ""
nb_say "20mbit of link-layer bytes is about 19.1 Mbit/s of TCP payload, 5mbit about 4.8 (see README)."
nb_finish
