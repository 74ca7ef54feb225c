#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Times netbump-generator on 1000 generated units (a benchmark, not a test; goal: well under 10 ms).
#
#   bench/generator.sh [GENERATOR]      (default: ./build/generators/netbump-generator; seconds)
#
# The units go to a directory under /tmp (a disk file system, page-cached, as /usr/lib/systemd/system
# is after the first read); the drop-ins to a directory on tmpfs (/dev/shm), as
# /run/systemd/generator is tmpfs. One unit in ten has a drop-in directory with a .conf file that
# does not limit. For each number of limited units the generator runs BENCH_RUNS times into an
# emptied output directory (after one warm-up run); recorded are the minimum, median and maximum of
#   inner: the generator's own time from reading the path to the last drop-in (it logs it at debug);
#   wall:  the same plus fork, exec and dynamic linking, as systemd pays it;
# and, as the floors this machine sets: open, read and close of the same files, timed inside one
# python3 process (what any reader of the files pays), and the wall time of /bin/true (fork, exec,
# exit: what any generator pays before its first instruction).
# Writes bench/results/generator.json and its section of BENCHMARKS.md.
# Environment: BENCH_UNITS=1000  BENCH_RUNS=30  BENCH_LIMITED="0 100 1000"  BENCH_OUT=DIR (for the
# JSON and BENCHMARKS.md instead of bench/results/ and the top directory)
set -eu

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
GEN=${1:-$TOP/build/generators/netbump-generator}
UNITS=${BENCH_UNITS:-1000}
RUNS=${BENCH_RUNS:-30}
read -ra LIMITED <<<"${BENCH_LIMITED:-0 100 1000}"
GOAL_US=10000
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/generator.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

[[ -x $GEN ]] || { echo "generator.sh: $GEN is not built (ninja -C build)" >&2; exit 1; }
command -v jq >/dev/null || { echo "generator.sh: jq is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "generator.sh: python3 is not installed" >&2; exit 1; }
shm=/dev/shm
[[ -d $shm && -w $shm ]] || shm=/tmp
T=$(mktemp -d /tmp/netbump-bench-generator.XXXXXX)
O=$(mktemp -d "$shm/netbump-bench-generator.XXXXXX")
R=$(mktemp /tmp/netbump-bench-generator.XXXXXX.jsonl)
trap 'rm -rf "$T" "$O" "$R" "$O.log"' EXIT

# stats VALUES...: {"min": N, "median": N, "max": N}
stats() {
        printf '%s\n' "$@" | jq -s 'sort | {min: .[0], median: .[(length - 1) / 2 | floor], max: .[-1]}'
}

printf '%-8s %-8s  %-22s  %-22s  %s\n' units limited "inner us (min med max)" "wall us (min med max)" \
        "read, true: us (med)"
for lim in "${LIMITED[@]}"; do
        rm -rf "${T:?}"/*
        # every (UNITS / lim)-th unit is limited
        step=$((lim > 0 ? UNITS / lim : UNITS + 1))
        for ((i = 0; i < UNITS; i++)); do
                {
                        printf '[Unit]\nDescription=bench unit %d\nAfter=network.target\n\n' "$i"
                        printf '[Service]\nExecStart=/bin/sleep infinity\nUser=nobody\nRestart=on-failure\n'
                        ((i % step == 0 && lim > 0)) && printf 'X-NetbumpRate=%dkbit\n' $((i + 8))
                        printf '\n[Install]\nWantedBy=multi-user.target\n'
                } >"$T/bench$i.service"
                if ((i % 10 == 5)); then
                        mkdir "$T/bench$i.service.d"
                        printf '[Service]\nNice=5\n' >"$T/bench$i.service.d/nice.conf"
                fi
        done
        inner=() wall=() truew=()
        for ((r = 0; r <= RUNS; r++)); do
                rm -rf "${O:?}"/*
                start=$EPOCHREALTIME
                SYSTEMD_LOG_LEVEL=debug NETBUMP_GENERATOR_LOG=stderr SYSTEMD_UNIT_PATH=$T \
                        "$GEN" "$O" "$O" "$O" 2>"$O.log" || { cat "$O.log" >&2; exit 1; }
                end=$EPOCHREALTIME
                s2=$EPOCHREALTIME
                /bin/true
                s3=$EPOCHREALTIME
                ((r == 0)) && continue # warm-up
                wall+=($((${end/./} - ${start/./})))
                inner+=("$(sed -n 's/.* in \([0-9]*\) us$/\1/p' "$O.log")")
                truew+=($((${s3/./} - ${s2/./})))
        done
        # the reading floor: each unit file and drop-in opened, read, closed; microseconds per pass
        read -ra readw < <(python3 - "$T" "$RUNS" <<'EOF'
import os, sys, time
top, runs = sys.argv[1], int(sys.argv[2])
files = [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
out = []
for r in range(runs + 1):
    t = time.perf_counter()
    for f in files:
        fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
        os.read(fd, 65536)
        os.close(fd)
    if r:  # the first pass warms up
        out.append(round((time.perf_counter() - t) * 1e6))
print(*out)
EOF
)
        n=$(find "$O" -name 50-netbump.conf | wc -l)
        ((n == lim)) || { echo "generator.sh: $n drop-ins written, expected $lim" >&2; exit 1; }
        jq -cn --argjson units "$UNITS" --argjson limited "$lim" \
                --argjson inner "$(stats "${inner[@]}")" --argjson wall "$(stats "${wall[@]}")" \
                --argjson read "$(stats "${readw[@]}")" --argjson true "$(stats "${truew[@]}")" \
                '{units: $units, limited: $limited, inner_us: $inner, wall_us: $wall, read_us: $read,
                  true_wall_us: $true}' >>"$R"
        jq -r '"\(.units)\t\(.limited)\t\(.inner_us | "\(.min) \(.median) \(.max)")\t\(.wall_us | "\(.min) \(.median) \(.max)")\t\(.read_us.median) \(.true_wall_us.median)"' \
                <(tail -n 1 "$R") | awk -F'\t' '{ printf "%-8s %-8s  %-22s  %-22s  %s\n", $1, $2, $3, $4, $5 }'
done

mkdir -p "$(dirname "$json_out")"
jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
        --arg cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" --argjson nproc "$(nproc)" \
        --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --arg fs "$(stat -f -c %T "$T")" --arg outfs "$(stat -f -c %T "$O")" \
        --argjson runs "$RUNS" --argjson goal "$GOAL_US" '
        {date: $date, kernel: $kernel, cpu: $cpu, nproc: $nproc, commit: $commit, runs: $runs,
         units_fs: $fs, output_fs: $outfs, goal_wall_us: $goal, results: .}' "$R" >"$json_out"

section=$(jq -r '
        def ms: . / 1000 | . * 100 | round / 100 | tostring + " ms";
        "## netbump-generator: 1000 units (`bench/generator.sh`)",
        "",
        "`bench/generator.sh`, \(.date), kernel \(.kernel), \(.cpu) (\(.nproc) CPUs), commit \(.commit).",
        "\(.results[0].units) service units (\(.units_fs), page-cached), one in ten with a drop-in directory, some",
        "of them limited; drop-ins written to \(.output_fs), as /run/systemd/generator is. \(.runs) runs per row",
        "after a warm-up. Inner: the generator'"'"'s own time from reading the unit path to the last drop-in",
        "(it logs it at debug level); wall: the same with fork, exec and dynamic linking, as systemd pays it.",
        "The floors this machine sets, measured next to the runs: read, opening, reading and closing the same",
        "files inside one process (python3), what any reader pays; true, the wall time of `/bin/true` (fork,",
        "exec, exit), what any generator pays before its first instruction.",
        "",
        "| units | limited | inner min / median / max | wall min / median / max | floor: read / true, median | goal: wall median < 5 ms (\"well under 10 ms\") |",
        "|---:|---:|---|---|---|---|",
        (.goal_wall_us as $g | .results[] |
         "| \(.units) | \(.limited) | \(.inner_us.min | ms) / \(.inner_us.median | ms) / \(.inner_us.max | ms) | \(.wall_us.min | ms) / \(.wall_us.median | ms) / \(.wall_us.max | ms) | \(.read_us.median | ms) / \(.true_wall_us.median | ms) | \(if .wall_us.median < $g / 2 then "pass" elif .wall_us.median < $g then "**MISS** (< 10 ms)" else "**MISS**" end) |"),
        "",
        (.goal_wall_us as $g | ([.results[] | select(.limited == 100)] + .results)[0] |
         (.read_us.median + .true_wall_us.median) as $floor |
         "With \(.limited) of \(.units) units limited the generator takes \(.inner_us.median / .read_us.median * 10 | round / 10)× the reading floor,",
         "and its wall time is \(.wall_us.median - .inner_us.median | ms) above its inner time. Reading the files and starting a",
         "process alone take \($floor | ms) here: \(if $floor >= $g then "the goal cannot be met on this machine by any generator that reads every unit file" else "\($g - $floor | ms) of the goal are left to the generator" end).")
        ' "$json_out")

bench_write_section generator "$section" "$md_out"
echo "wrote $json_out and the generator section of $md_out"
