#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Times netbump-generator on 1000 generated units (a benchmark, not a test; goal: well under 10 ms).
#
#   bench/generator.sh [GENERATOR]      (default: ./build/generators/netbump-generator)
#
# The units go to a directory under /tmp (a disk file system, page-cached, as /usr/lib/systemd/system
# is after the first read); the drop-ins to a directory on tmpfs (/dev/shm), as
# /run/systemd/generator is tmpfs. One unit in ten has a drop-in directory with a .conf file that
# does not limit. For each number of limited units the generator runs BENCH_RUNS times into an
# emptied output directory; printed are the minimum, median and maximum of
#   inner: the generator's own time from reading the path to the last drop-in (it logs it at debug);
#   wall:  the same plus fork, exec and dynamic linking, as systemd pays it.
# Environment: BENCH_UNITS=1000  BENCH_RUNS=30  BENCH_LIMITED="0 100 1000"
set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
GEN=${1:-$TOP/build/generators/netbump-generator}
UNITS=${BENCH_UNITS:-1000}
RUNS=${BENCH_RUNS:-30}
read -ra LIMITED <<<"${BENCH_LIMITED:-0 100 1000}"

[[ -x $GEN ]] || { echo "generator.sh: $GEN is not built (ninja -C build)" >&2; exit 1; }
shm=/dev/shm
[[ -d $shm && -w $shm ]] || shm=/tmp
T=$(mktemp -d /tmp/netbump-bench-generator.XXXXXX)
O=$(mktemp -d "$shm/netbump-bench-generator.XXXXXX")
trap 'rm -rf "$T" "$O"' EXIT

# stats VALUES...: "min median max"
stats() {
        printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%6d %6d %6d", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

printf '%-8s %-8s  %-22s  %-22s\n' units limited "inner us (min med max)" "wall us (min med max)"
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
        inner=() wall=()
        for ((r = 0; r <= RUNS; r++)); do
                rm -rf "${O:?}"/*
                start=$EPOCHREALTIME
                SYSTEMD_LOG_LEVEL=debug NETBUMP_GENERATOR_LOG=stderr SYSTEMD_UNIT_PATH=$T \
                        "$GEN" "$O" "$O" "$O" 2>"$O.log" || { cat "$O.log" >&2; exit 1; }
                end=$EPOCHREALTIME
                ((r == 0)) && continue # warm-up
                wall+=($((${end/./} - ${start/./})))
                inner+=("$(sed -n 's/.* in \([0-9]*\) us$/\1/p' "$O.log")")
        done
        rm -f "$O.log"
        n=$(find "$O" -name 50-netbump.conf | wc -l)
        ((n == lim)) || { echo "generator.sh: $n drop-ins written, expected $lim" >&2; exit 1; }
        printf '%-8s %-8s  %-22s  %-22s\n' "$UNITS" "$lim" "$(stats "${inner[@]}")" "$(stats "${wall[@]}")"
done
