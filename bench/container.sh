#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A systemd-nspawn container (--network-veth) routed through the namespace netbumpd runs in
# (tests/integration/netns-lib.sh: container in ns a, iperf3 servers in ns b), in one run:
#   without    no netbumpd: the container's unlimited upload and download (one TCP flow each);
#   running    netbumpd running with a rule on another cgroup: the same unlimited transfers, now
#              through netbumpd's forwarding-path programs (nb_fwd_egress on veth-a, the FIB and
#              socket lookups of nb_ingress) and its HTB;
#   limited    netbumpd with `set cgroup:<the container's cgroup> BENCH_RATE` (default 8mbit):
#              goodput against the expected goodput at that rate (1448/1514 of it for IPv4).
# Each for BENCH_SECS (default 5) s, IPv4, alternated over BENCH_ROUNDS (default 3) rounds (order
# reversed in even rounds); the median per mode and direction is reported.
#
#   bench/container.sh [BUILD_DIR]          (default ./build; about 2 minutes)
#
# Writes bench/results/container.json and its section of BENCHMARKS.md.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
# shellcheck source=tests/integration/netns-lib.sh
source "$TOP/tests/integration/netns-lib.sh"
NB_TEST_NAME=bench-container

RATE=${BENCH_RATE:-8mbit}
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/container.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

command -v systemd-nspawn >/dev/null || nb_skip "systemd-nspawn is not installed (package systemd-container)"
nb_require_daemon
nb_setup
bench_private_binaries
nsl_forwarding
nb_start_iperf_servers 5201
make_cgroup ctr >/dev/null
make_cgroup other >/dev/null
ctr_start 1 ctr
RAW=$NB_TMP/raw.jsonl
: >"$RAW"

mode_on() {
        case $1 in
        without) : ;;
        running)
                nb_start_netbumpd >/dev/null
                nbctl set "cgroup:$(cgroup_rel other)" "$RATE" >/dev/null ;;
        limited)
                nb_start_netbumpd >/dev/null
                nbctl set "cgroup:$(cgroup_rel ctr)" "$RATE" >/dev/null
                nb_wait_complete "cgroup:$(cgroup_rel ctr)" ;;
        esac
}
mode_off() { [[ $1 == without ]] || nb_stop_netbumpd >/dev/null; }

MODES=(without running limited)
for ((round = 1; round <= ROUNDS; round++)); do
        order=("${MODES[@]}")
        ((round % 2 == 0)) && order=(limited running without)
        for mode in "${order[@]}"; do
                mode_on "$mode"
                for dir in up down; do
                        opts=(-O 1)
                        [[ $dir == down ]] && opts+=(-R)
                        json=$NB_TMP/$mode-$dir-$round.json
                        ctr_iperf 1 "$json" "$SECS" "${opts[@]}" "$NB_B4" || nb_say "$mode $dir: iperf3 failed"
                        bps=$(goodput_from_json "$json" 2>/dev/null) || bps=0
                        nb_say "round $round $mode $dir: $(nb_mbit "$bps") Mbit/s"
                        jq -nc --argjson r "$round" --arg m "$mode" --arg d "$dir" --argjson b "$bps" \
                                '{round: $r, mode: $m, dir: $d, bps: $b}' >>"$RAW"
                done
                mode_off "$mode"
        done
done

expected=$(expected_goodput "$RATE" 4)
mkdir -p "$(dirname "$json_out")"
jq -s --arg rate "$RATE" --argjson secs "$SECS" --argjson exp "$expected" --arg kernel "$(uname -r)" \
        --arg cpus "$(nproc)" '
        def median: sort | if length == 0 then 0 else .[(length - 1) / 2 | floor] end;
        { rate: $rate, secs: $secs, expected_bps: $exp, kernel: $kernel, cpus: ($cpus | tonumber),
          raw: .,
          median: (group_by(.mode + " " + .dir) | map({ key: (.[0].mode + "_" + .[0].dir),
                   value: (map(.bps) | median) }) | from_entries) }' "$RAW" >"$json_out"

m() { jq -r ".median.$1" "$json_out"; }
gb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
err() { awk -v a="$1" -v e="$expected" 'BEGIN { printf "%+.1f%%", (a - e) * 100 / e }'; }
section="## A container routed through netbumpd's namespace (\`bench/container.sh\`)

A systemd-nspawn container (\`--network-veth\`, its own network namespace) forwarded through the
namespace netbumpd runs in, one TCP flow (iperf3, IPv4, ${SECS} s, median of $ROUNDS alternated
rounds), $(nproc) CPUs, kernel $(uname -r). *running*: netbumpd up with a rule on another cgroup,
so the container's packets pass its forwarding-path programs (the FIB and socket lookups, the
egress program) and its HTB unlimited.

| | upload | download |
|---|---|---|
| without netbumpd | $(gb "$(m without_up)") Gbit/s | $(gb "$(m without_down)") Gbit/s |
| netbumpd running, container unlimited | $(gb "$(m running_up)") Gbit/s ($(ratio "$(m running_up)" "$(m without_up)")x) | $(gb "$(m running_down)") Gbit/s ($(ratio "$(m running_down)" "$(m without_down)")x) |
| container limited to $RATE | $(nb_mbit "$(m limited_up)") Mbit/s ($(err "$(m limited_up)") of $(nb_mbit "$expected")) | $(nb_mbit "$(m limited_down)") Mbit/s ($(err "$(m limited_down)") of $(nb_mbit "$expected")) |

Expected goodput at $RATE: $(nb_mbit "$expected") Mbit/s (1448 payload bytes per 1514-byte frame).
Unlimited rounds ranged $(jq -r '[.raw[] | select(.mode != "limited") | .bps] | "\(min / 1e9 * 100 | floor / 100)-\(max / 1e9 * 100 | floor / 100)"' "$json_out") Gbit/s
across modes and rounds: on a shared machine the ratio is within that noise.
Raw numbers: \`bench/results/container.json\`."
bench_write_section container "$section" "$md_out"
nb_say "$section"
nb_finish
