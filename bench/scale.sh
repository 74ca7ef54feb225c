#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Scale, items 4 and 6 of the benchmark issue: with netbumpd holding BENCH_RULES (10,000) rules,
#   - unlimited traffic (a cgroup without a rule) against no netbumpd at all: throughput ratio,
#     upload and download, and the time in each BPF program per run (kernel.bpf_stats_enabled);
#   - one limited target among them against the same target alone (1 rule): accuracy unchanged?
# Sequence (one iperf3 flow, BENCH_SECS s, first second omitted, each):
#   none (daemon stopped) -> 1 rule -> load rules -> N rules -> none again
# the two "none" runs bracket the others, their difference is the drift/noise to read ratios against.
# Single runs of CPU-bound veth traffic spread by 10-20%, so with N rules the unlimited flow also
# alternates BENCH_ROUNDS (5) times with the same flow over a second veth pair in namespaces of its
# own, which netbumpd does not see (no qdisc, no BPF): medians of the two, taken side by side.
# Loading is slow at many rules (see bench/control.sh's section): it stops after BENCH_LOAD_BUDGET
# seconds (default 100) at the next 1000 and the run goes on with the rules loaded by then.
#
#   bench/scale.sh [BUILD_DIR]              (default ./build; about 4-5 minutes)
#
# Goals: unlimited throughput >= 98% of no netbump; the target's accuracy within 2 points of alone.
# Writes bench/results/scale.json and its section of BENCHMARKS.md.
# Environment: BENCH_RULES=10000 BENCH_RATE=50mbit BENCH_SECS=4 BENCH_LOAD_BUDGET=100 BENCH_ROUNDS=5
#              BENCH_OUT=DIR

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench-scale

RULES=${BENCH_RULES:-10000}
RATE=${BENCH_RATE:-50mbit}
SECS=${BENCH_SECS:-4}
BUDGET=${BENCH_LOAD_BUDGET:-100}
ROUNDS=${BENCH_ROUNDS:-5}
PORT=5201
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/scale.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

nb_require_daemon
command -v python3 >/dev/null || nb_skip "python3 is not installed"
command -v bpftool >/dev/null || nb_skip "'bpftool' is not installed"
STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled)
restore_stats() { echo "$STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || :; }
# shellcheck disable=SC2154
# the side-by-side pair: the same addresses as the managed one, in two namespaces of its own
NS_C=nbt-$NB_ID-c NS_D=nbt-$NB_ID-d
side_teardown() {
        local ns
        for ns in "$NS_C" "$NS_D"; do
                ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
                ip netns del "$ns" 2>/dev/null
        done
}
# shellcheck disable=SC2154
trap '_rc=$?; set +e; restore_stats; side_teardown; (exit $_rc); _nb_teardown' EXIT

nb_setup
ip netns add "$NS_C" && ip netns add "$NS_D" || nb_fail "cannot make the side-by-side namespaces"
ip -n "$NS_C" link add veth-c type veth peer name veth-d netns "$NS_D"
ip -n "$NS_C" addr add "$NB_A4/24" dev veth-c
ip -n "$NS_D" addr add "$NB_B4/24" dev veth-d
for ns in "$NS_C" "$NS_D"; do ip -n "$ns" link set lo up; done
ip -n "$NS_C" link set veth-c up
ip -n "$NS_D" link set veth-d up
ip netns exec "$NS_D" iperf3 -s -p "$PORT" -D >/dev/null 2>&1 || nb_fail "cannot start the side-by-side iperf3 server"
_side_up() { _nb_link_up "$NS_C" veth-c && _nb_link_up "$NS_D" veth-d &&
        [[ -n $(ip netns exec "$NS_D" ss -Hltn "sport = :$PORT") ]]; }
nb_wait_until 10 _side_up || nb_fail "the side-by-side pair does not answer"
bench_private_binaries
nb_start_iperf_servers "$PORT"
CG_T=$(make_cgroup target)
CG_U=$(make_cgroup unlimited)
mkdir -p "$NB_CGROOT/r"
(cd "$NB_CGROOT/r" && seq 0 $((RULES - 1)) | xargs mkdir)
PREFIX=$(cgroup_rel "$NB_CGROOT/r")
AFF=()
(($(nproc) >= 2)) && AFF=(-A "0,1")

cat >"$NB_TMP/load.py" <<'PY'
# load.py SOCKET PREFIX COUNT BUDGET: Set cgroup:PREFIX/i for i < COUNT on one Varlink connection,
# stopping at the next 1000 after BUDGET seconds; prints how many
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
prefix, count, budget = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
buf, t0, n = b"", time.monotonic(), 0
for i in range(count):
    if i and i % 1000 == 0 and time.monotonic() - t0 > budget:
        break
    bps = (1 + i % 50) * 1000000
    s.sendall(json.dumps({"method": "io.netbump.Manager.Set",
                          "parameters": {"target": f"cgroup:{prefix}/{i}", "up": bps, "down": bps}}).encode() + b"\0")
    while b"\0" not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit("connection closed")
        buf += d
    msg, buf = buf.split(b"\0", 1)
    if b'"error"' not in msg:
        n += 1
print(n)
PY

_server_idle() { [[ -z $(nsenter --net="$NB_NETNS_B" ss -Htn state established "( sport = :$PORT )") ]]; }
# run CG DIR: one iperf3 flow, prints the receiver's bits/s
run() {
        local cg=$1 dir=$2 json=$NB_TMP/iperf-$RANDOM.json args=(-c "$NB_B4" -p "$PORT" -t "$SECS" -O 1 "${AFF[@]}")
        [[ $dir == down ]] && args+=(-R)
        nb_wait_until 15 _server_idle || nb_fail "iperf3 server still busy"
        _nb_argv -g "$cg"
        timeout -k 5 $((SECS + 20)) "${_NB_ARGV[@]}" iperf3 -J --connect-timeout 3000 "${args[@]}" >"$json" 2>&1 || { echo null; return 0; }
        jq -r '.end.sum_received.bits_per_second // null | if . == null then null else floor end' "$json"
}
_side_idle() { [[ -z $(ip netns exec "$NS_D" ss -Htn state established "( sport = :$PORT )") ]]; }
# run_side DIR: the same flow over the pair netbumpd does not see, from this script's own cgroup
run_side() {
        local json=$NB_TMP/iperf-side-$RANDOM.json args=(-c "$NB_B4" -p "$PORT" -t "$SECS" -O 1 "${AFF[@]}")
        [[ $1 == down ]] && args+=(-R)
        nb_wait_until 15 _side_idle || nb_fail "side-by-side iperf3 server still busy"
        timeout -k 5 $((SECS + 20)) ip netns exec "$NS_C" iperf3 -J --connect-timeout 3000 "${args[@]}" >"$json" 2>&1 ||
                { echo null; return 0; }
        jq -r '.end.sum_received.bits_per_second // null | if . == null then null else floor end' "$json"
}
prog_stats() { # "name run_time_ns run_cnt" of this run's programs
        local name id
        {
                bpftool -j cgroup tree "$NB_CGROOT" 2>/dev/null | jq -r --arg cg "$NB_CGROOT" '
                        .[]? | select(.cgroup == $cg) | .programs[]? | "\(.name) \(.id)"'
                nsenter --net="$NB_NETNS_A" bpftool -j net show dev "$NB_IF_A" 2>/dev/null | jq -r '
                        .[]?.tc[]? | "\(.name // "tc") \(.id)"'
        } | while read -r name id; do
                bpftool -j prog show id "$id" 2>/dev/null | jq -r '"\(.name) \(.run_time_ns // 0) \(.run_cnt // 0)"'
        done
}
RAW=$NB_TMP/raw.jsonl
: >"$RAW"
rec() { printf '%s\n' "$1" >>"$RAW"; nb_say "$1"; }

phase() { # phase NAME: unlimited up/down (+ target up/down when the daemon runs)
        local name=$1 d v
        for d in up down; do
                v=$(run "$CG_U" "$d")
                rec "{\"phase\":\"$name\",\"what\":\"unlimited\",\"dir\":\"$d\",\"bps\":$v}"
        done
        [[ -n $NB_DAEMON_PID ]] || return 0
        for d in up down; do
                v=$(run "$CG_T" "$d")
                rec "{\"phase\":\"$name\",\"what\":\"target\",\"dir\":\"$d\",\"bps\":$v}"
        done
}

phase none1
nb_start_netbumpd >/dev/null
nbctl set "cgroup:$(cgroup_rel "$CG_T")" "$RATE" >/dev/null || nb_fail "set failed"
rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$NB_DAEMON_PID/status")
phase one
t0=$EPOCHREALTIME
loaded=$(timeout -k 2 $((BUDGET + 120)) python3 "$NB_TMP/load.py" "$NB_SOCK" "$PREFIX" "$RULES" "$BUDGET") || nb_fail "loading failed"
t1=$EPOCHREALTIME
rssn=$(awk '/^VmRSS:/ { print $2 }' "/proc/$NB_DAEMON_PID/status")
IDLE=20 # seconds: the periodic statistics may be 10 s apart
cpu0=$(awk '{ print $14 + $15 }' "/proc/$NB_DAEMON_PID/stat")
sleep "$IDLE"
cpu1=$(awk '{ print $14 + $15 }' "/proc/$NB_DAEMON_PID/stat")
nb_say "loaded $loaded rules in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; RSS $rss1 -> $rssn KiB; idle daemon CPU $(( (cpu1 - cpu0) / IDLE )) ticks/s"
echo 1 >/proc/sys/kernel/bpf_stats_enabled || nb_fail "cannot enable bpf_stats"
b0=$(prog_stats)
phase many
# side by side: managed (unlimited cgroup) and unmanaged pair, alternating which goes first
for ((k = 1; k <= ROUNDS; k++)); do
        for d in up down; do
                if ((k % 2)); then order=(managed side); else order=(side managed); fi
                for w in "${order[@]}"; do
                        if [[ $w == managed ]]; then v=$(run "$CG_U" "$d"); else v=$(run_side "$d"); fi
                        rec "{\"phase\":\"alt\",\"what\":\"$w\",\"dir\":\"$d\",\"round\":$k,\"bps\":$v}"
                done
        done
done
b1=$(prog_stats)
restore_stats
nb_stop_netbumpd >/dev/null || :
phase none2

mkdir -p "$(dirname "$json_out")"
stats=$(join <(sort <<<"$b0") <(sort <<<"$b1") | jq -R -s 'split("\n") | map(select(length > 0) | split(" ")
        | {program: .[0], run_time_ns: ((.[3] | tonumber) - (.[1] | tonumber)), run_cnt: ((.[4] | tonumber) - (.[2] | tonumber))}
        | . + {ns_per_run: (if .run_cnt > 0 then .run_time_ns / .run_cnt else null end)})')
jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --argjson rules "$RULES" --argjson loaded "$loaded" --arg rate "$RATE" --argjson exp "$(expected_goodput "$RATE" 4)" \
        --argjson load_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" --argjson rss1 "$rss1" --argjson rssn "$rssn" \
        --argjson cpu "$(awk -v t="$((cpu1 - cpu0))" -v s="$IDLE" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 100 / s / hz }')" --argjson stats "$stats" '
        . as $all
        | def v(p; w; d): [$all[] | select(.phase == p and .what == w and .dir == d) | .bps][0];
        def med: map(select(. != null)) | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
        def alt(w; d): [$all[] | select(.phase == "alt" and .what == w and .dir == d) | .bps];
        {date: $date, commit: $commit, rules_asked: $rules, rules_loaded: ($loaded + 1), rate: $rate, expected_goodput: $exp,
         load_seconds: $load_s, rss_kib: {one: $rss1, many: $rssn}, idle_cpu_percent_many: $cpu, bpf_stats: $stats,
         runs: $all,
         unlimited: [["up", "down"][] as $d | (((v("none1"; "unlimited"; $d)) + (v("none2"; "unlimited"; $d))) / 2) as $base
                | {dir: $d, none1: v("none1"; "unlimited"; $d), none2: v("none2"; "unlimited"; $d),
                   one: v("one"; "unlimited"; $d), many: v("many"; "unlimited"; $d),
                   ratio_one: (v("one"; "unlimited"; $d) / $base), ratio_many: (v("many"; "unlimited"; $d) / $base),
                   noise: ((v("none1"; "unlimited"; $d) - v("none2"; "unlimited"; $d)) / $base | fabs)}],
         side_by_side: [["up", "down"][] as $d
                | {dir: $d, managed: alt("managed"; $d), side: alt("side"; $d),
                   managed_median: (alt("managed"; $d) | med), side_median: (alt("side"; $d) | med),
                   ratio: ((alt("managed"; $d) | med) / (alt("side"; $d) | med)),
                   round_ratios: [range(0; [alt("managed"; $d), alt("side"; $d)] | map(length) | min) as $i
                        | (alt("managed"; $d)[$i] / alt("side"; $d)[$i])],
                   spread_side: ((alt("side"; $d) | (max - min)) / (alt("side"; $d) | med))}],
         target: [["up", "down"][] as $d
                | {dir: $d, alone: (v("one"; "target"; $d) / $exp), among: (v("many"; "target"; $d) / $exp)}]}' \
        "$RAW" >"$json_out"

section=$(jq -r '
        def r(n): if . == null then "-" else . * pow(10; n) | round / pow(10; n) end;
        def pf(c): if c then "pass" else "**MISS**" end;
        "## Scale: 10,000 rules, unlimited traffic and one target among them (`bench/scale.sh`)",
        "",
        "\(.date), commit \(.commit). \(.rules_loaded) rules loaded (\(.rules_asked) asked; loading took \(.load_seconds | r(0)) s",
        "and stops after a time budget, see the control-plane section), each on its own cgroup. One iperf3 flow",
        "(first second omitted) from a cgroup without a rule (unlimited) and from a cgroup limited to \(.rate)",
        "(target), in the order: no netbumpd, 1 rule, \(.rules_loaded) rules, no netbumpd again. Unlimited",
        "ratios are against the mean of the two no-netbump runs; noise = their difference.",
        "",
        "| dir | no netbump, before / after Gbit/s | 1 rule / none | \(.rules_loaded) rules / none | noise |",
        "|---|---|---:|---:|---:|",
        (.unlimited[] | "| \(.dir) | \(.none1 / 1e9 | r(2)) / \(.none2 / 1e9 | r(2)) | \(.ratio_one | r(3)) | \(.ratio_many | r(3)) | \(.noise | r(3)) |"),
        "",
        "Side by side with \(.rules_loaded) rules: the unlimited flow through netbump (veth with netbump'"'"'s HTB,",
        "its IFB and BPF) and the same flow over a second veth pair netbumpd does not see, alternating, \(.side_by_side[0].managed | length) rounds:",
        "",
        "| dir | through netbump, median Gbit/s | unmanaged pair, median Gbit/s | ratio of medians | per-round ratios | spread of the unmanaged runs | goal ≥ 0.98 |",
        "|---|---:|---:|---:|---|---:|---|",
        (.side_by_side[] | "| \(.dir) | \(.managed_median / 1e9 | r(2)) | \(.side_median / 1e9 | r(2)) | \(.ratio | r(3)) | \([.round_ratios[] | r(2) | tostring] | join(", ")) | \(.spread_side * 100 | r(1))% | \(pf(.ratio >= 0.98)) |"),
        "",
        "| dir | target goodput / expected, alone (1 rule) | among \(.rules_loaded) rules | goal: within 0.02 |",
        "|---|---:|---:|---|",
        (.target[] | "| \(.dir) | \(.alone | r(3)) | \(.among | r(3)) | \(pf(((.alone - .among) | fabs) <= 0.02)) |"),
        "",
        "Time in the BPF programs while the \(.rules_loaded)-rule runs went (kernel.bpf_stats_enabled=1):",
        "",
        "| program | runs | ns per run |",
        "|---|---:|---:|",
        (.bpf_stats[] | select(.run_cnt > 0) | "| \(.program) | \(.run_cnt) | \(.ns_per_run | r(1)) |"),
        "",
        "netbumpd RSS: \(.rss_kib.one / 1024 | r(1)) MiB with 1 rule, \(.rss_kib.many / 1024 | r(1)) MiB with \(.rules_loaded) (goal ≤ 20 MB:",
        "\(pf(.rss_kib.many <= 20000))). netbumpd CPU while idle with \(.rules_loaded) rules: \(.idle_cpu_percent_many)% of one CPU",
        "(the periodic class statistics, one netlink dump of every class of the veth and the IFB, are",
        "taken at most every 100 times what one takes, up to 10 s apart).",
        ""' "$json_out")

bench_write_section scale "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the scale section of $md_out"
nb_finish
