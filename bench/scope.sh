#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What remote scopes (--remote, bpf/scope.bpf.h) cost.
#
#   bench/scope.sh [BUILD_DIR]        (default ./build; about 3 minutes)
#
# 1. per packet, in isolation: bench/scope-cost.c (compiled here against the build's skeleton)
#    times nb_ingress through BPF_PROG_TEST_RUN with a scoped rule of 1, 100 and 10,000 CIDRs on
#    the socket's user, against none: the per-socket cache hit (same remote every packet) and the
#    full walk (the remote changing on every packet);
# 2. unlimited throughput with 10,000 CIDRs loaded against without: netbumpd in two private
#    namespaces joined by a veth (tests/integration/lib.sh), one iperf3 flow of uid 1000 from a
#    cgroup under its root (client CPU 0, server CPU 1), per workload
#      tcp-up, tcp-down    bulk TCP, bits/s received
#      udp-up              64-byte UDP datagrams as fast as iperf3 sends them, datagrams/s
#    with no rule ("none"), with 8 scoped limits on user@1000 of one host CIDR each ("8": the
#    scoped path and HTB classes on the interface, no table to speak of) and with 8 scoped limits
#    of 1,250 host CIDRs each ("10k": 10,000 CIDRs), none of them the server's, so the flow stays
#    unlimited but every packet goes through the scoped path; the variants in a rotating order
#    for BENCH_ROUNDS rounds (default 5), a fresh netbumpd each. The ratio that answers "what do
#    10,000 CIDRs cost" is 10k / 8, paired within each round; 8 / none is what having scoped
#    limit rules at all costs.
# Writes bench/results/scope.json and the "Remote scopes" section of BENCHMARKS.md.
# Environment: BENCH_ROUNDS=5  BENCH_SECS=3  BENCH_REPEAT=1000000  BENCH_OUT=DIR

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
# shellcheck source=bench/rounds.sh
source "$BENCH_DIR/rounds.sh"
NB_TEST_NAME=bench-scope

ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-3}
PORT=5201
USER_ID=1000
WORKLOADS=(tcp-up tcp-down udp-up)
OUT_DIR=${BENCH_OUT:-}
AFFINITY=()
if (($(nproc) >= 2)); then AFFINITY=(-A "0,1"); fi
json_out=${OUT_DIR:-$BENCH_DIR/results}/scope.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

nb_require_daemon
nb_setup
bench_private_binaries
nb_start_iperf_servers "$PORT"
CG=$(make_cgroup bench)
RAW=$NB_TMP/raw.jsonl
: >"$RAW"

# --- 1. per packet ------------------------------------------------------------------------------
gcc -O2 -D_GNU_SOURCE -I"$TOP/include" -I"$NETBUMP_BUILD_DIR/bpf" -I"$TOP/src/shared" \
        -o "$NB_TMP/scope-cost" "$BENCH_DIR/scope-cost.c" -lbpf || nb_fail "cannot build bench/scope-cost.c"
"$NB_TMP/scope-cost" "${BENCH_REPEAT:-1000000}" >"$NB_TMP/scope-cost.json" || nb_fail "bench/scope-cost failed"
nb_say "per packet (BPF_PROG_TEST_RUN): $(cat "$NB_TMP/scope-cost.json")"

# --- 2. throughput --------------------------------------------------------------------------------
# scope_k K: 1,250 host CIDRs in 198.19.0.0/16 (the server is in 198.18.0.0/16)
scope_k() {
        local k=$1 i out=''
        for ((i = k * 1250 + 1; i <= (k + 1) * 1250; i++)); do
                out+="${out:+,}198.19.$((i >> 8)).$((i & 255))/32"
        done
        printf '%s\n' "$out"
}

start_variant() {
        local k n want
        nb_start_netbumpd >/dev/null
        case $1 in
        none) return 0 ;;
        8) want=8 ;;
        10k) want=10000 ;;
        esac
        for ((k = 0; k < 8; k++)); do
                if [[ $1 == 8 ]]; then
                        nbctl set "user@$USER_ID" --remote "198.19.200.$((k + 1))/32" 1gbit >/dev/null
                else
                        nbctl set "user@$USER_ID" --remote "$(scope_k "$k")" 1gbit >/dev/null
                fi || nb_fail "cannot load scope $k"
        done
        n=$(nbctl --json list | jq '[.rules[] | select(.remote != null) | .remote | split(",") | length] | add')
        [[ $n == "$want" ]] || nb_fail "loaded $n CIDRs, wanted $want"
}

# the variants of round R, in a rotating order (called by bench_rounds)
# shellcheck disable=SC2317
order_for() {
        case $(($1 % 3)) in
        1) order=(none 8 10k) ;;
        2) order=(10k none 8) ;;
        0) order=(8 10k none) ;;
        esac
}
bench_rounds "$ROUNDS" order_for "" "" -g bench -u "$USER_ID"

mkdir -p "$(dirname "$json_out")"
jq -s --slurpfile cost "$NB_TMP/scope-cost.json" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --arg kernel "$(uname -r)" --arg cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
        --argjson nproc "$(nproc)" --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --argjson rounds "$ROUNDS" --argjson secs "$SECS" '
        def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        . as $all
        | {date: $date, kernel: $kernel, cpu: $cpu, nproc: $nproc, commit: $commit, rounds: $rounds, seconds: $secs,
           test_run: $cost[0],
           throughput: ([$all[].workload] | unique | map(. as $w
                | def vals($v): [$all[] | select(.workload == $w and .variant == $v) | .value | select(. != null)];
                  def paired($x; $y): [range(1; $rounds + 1) as $r
                        | ([$all[] | select(.workload == $w and .round == $r and .variant == $x) | .value][0]) as $a
                        | ([$all[] | select(.workload == $w and .round == $r and .variant == $y) | .value][0]) as $b
                        | select($a != null and $b != null and $b > 0) | $a / $b];
                  def spread: if length > 0 then ((max - min) / median) else null end;
                {workload: $w, unit: (if ($w | startswith("udp")) then "datagrams/s" else "bit/s" end),
                   none: vals("none"), s8: vals("8"), k10: vals("10k"),
                   none_median: (vals("none") | median), s8_median: (vals("8") | median), k10_median: (vals("10k") | median),
                   k10_vs_8: (paired("10k"; "8") | median), k10_vs_8_all: paired("10k"; "8"),
                   s8_vs_none: (paired("8"; "none") | median), s8_vs_none_all: paired("8"; "none"),
                   spread: ([vals("none"), vals("8"), vals("10k")] | map(spread) | map(select(. != null)) | max)}))}' \
        "$RAW" >"$json_out" || nb_fail "cannot summarize the results"

section=$(jq -r '
        def r(n): . * pow(10; n) | round / pow(10; n);
        def fmt(u): if . == null then "-" elif u == "bit/s" then "\(. / 1e9 | r(2)) Gbit/s" else "\(. / 1e3 | r(1)) k/s" end;
        "## Remote scopes: cost of --remote, deny and allow",
        "",
        "`bench/scope.sh`, \(.date), kernel \(.kernel), \(.cpu) (\(.nproc) CPUs), commit \(.commit).",
        "",
        "Per packet, in isolation (`bench/scope-cost.c`: `nb_ingress` through `BPF_PROG_TEST_RUN` on a",
        "64-byte UDP frame for a tagged socket whose user has one scoped rule of N host CIDRs in the LPM",
        "trie). *Cached*: the same remote every packet, the per-socket cache answers (TCP, connected",
        "UDP): mean of \(.test_run.repeat) runs, best of 5. *Walk*: the remote alternates on every packet",
        "(an unconnected socket with many peers), so each packet walks the keys and the trie: mean of",
        "\(.test_run.singles) single runs, against no scoped rule timed the same way.",
        "",
        "| CIDRs | cached | added (cached) | walk | added (walk) |",
        "|---|---|---|---|---|",
        "| none | \(.test_run.none.cached_ns) ns | - | \(.test_run.none.single_ns) ns | - |",
        (.test_run as $t | $t.scoped[] | "| \(.cidrs) | \(.cached_ns) ns | \(.cached_ns - $t.none.cached_ns | r(1)) ns | \(.walk_ns) ns | \(.walk_ns - $t.none.single_ns | r(1)) ns |"),
        "",
        "Unlimited throughput: one iperf3 flow of uid 1000 over a veth (client CPU 0, server CPU 1),",
        "with no rule, with 8 scoped limits of one CIDR each on the flow'"'"'s user (8) and with 8 of",
        "1,250 each (10,000 CIDRs); none covers the server, so every packet takes the scoped path and",
        "stays unlimited. \(.rounds) rounds of \(.seconds) s, the three in a rotating order, a fresh netbumpd",
        "each; ratios are medians of the ratios within a round. UDP: 64-byte datagrams.",
        "",
        "| workload | none | 8 CIDRs | 10,000 CIDRs | 10,000 / 8 | 8 / none | spread |",
        "|---|---|---|---|---|---|---|",
        (.throughput[] | .unit as $u
         | "| \(.workload) | \(.none_median | fmt($u)) | \(.s8_median | fmt($u)) | \(.k10_median | fmt($u)) | \(.k10_vs_8 | if . == null then "-" else r(3) end) | \(.s8_vs_none | if . == null then "-" else r(3) end) | \(.spread | if . == null then "-" else "\(. * 100 | r(1))%" end) |"),
        "",
        "Spread: the largest (max - min) / median of one variant'"'"'s runs, the noise the ratios are to be",
        "read against.",
        ""' "$json_out")
bench_write_section scope "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_finish
