#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every benchmark in sequence, one after the other (never in parallel: they would measure each
# other), each bounded in time; each rewrites its own marked section of BENCHMARKS.md and its
# bench/results/*.json. The single command behind BENCHMARKS.md:
#
#   bench/all.sh [BUILD_DIR]                (default ./build; about 35 minutes)
#
# Environment: BENCH_ONLY="latency convergence" runs just those; other BENCH_* variables pass
# through to the scripts. Exit status: 0 when every script ran (a missed goal is a result, not a
# failure), 1 when one failed; 77 (skipped) counts as ran.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-$BENCH_DIR/../build}
SCRIPTS=(run accounting generator latency convergence nest control restart scale peers exec scope)
[[ -n ${BENCH_ONLY:-} ]] && read -r -a SCRIPTS <<<"$BENCH_ONLY"

failed=()
for s in "${SCRIPTS[@]}"; do
        f=$BENCH_DIR/$s.sh
        if [[ ! -x $f ]]; then
                echo "== bench/$s.sh: not present, skipped"
                continue
        fi
        echo "== bench/$s.sh ($(date -u +%T))"
        rc=0
        # 10 minutes at most each; the scripts' own traps clean up on SIGTERM
        arg=$BUILD
        # generator.sh takes the generator binary, the others the build directory
        [[ $s == generator ]] && arg=$BUILD/generators/netbump-generator
        timeout -k 30 600 "$f" "$arg" || rc=$?
        case $rc in
        0) echo "== bench/$s.sh: done" ;;
        77) echo "== bench/$s.sh: skipped" ;;
        *) echo "== bench/$s.sh: FAILED (exit $rc)"; failed+=("$s") ;;
        esac
done
leftover=$(ip netns list | grep -c '^nbt-' || :)
((leftover == 0)) || echo "warning: $leftover test namespaces left behind: $(ip netns list | grep '^nbt-' | tr '\n' ' ')"
if ((${#failed[@]})); then
        echo "failed: ${failed[*]}"
        exit 1
fi
echo "all benchmarks ran; results in BENCHMARKS.md and bench/results/"
