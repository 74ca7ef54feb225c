#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the libFuzzer harnesses with clang in their own build dir (made when
# missing) and runs each on a copy of its seed corpus for a bounded time.
# Exits 1 on any finding (crash, sanitizer report, broken invariant, hang,
# memory blow-up) and prints the input that caused it; 77 when clang cannot
# build libFuzzer programs here.
#
#   tests/fuzz/run.sh [NAME...]   NAME: varlink rate target unit-file request (default all)
#   FUZZ_SECONDS    seconds per fuzzer (default 60; 0 runs each seed once)
#   FUZZ_JOBS       fuzzers run at once (default 2)
#   FUZZ_BUILD_DIR  the clang build dir (default build-fuzz/ in the source tree)
#
# The committed corpus is never written to: each run starts from a fresh copy
# in $FUZZ_BUILD_DIR/fuzz-out/NAME/corpus/, next to fuzz.log and any crash-*,
# leak-*, timeout-* or oom-* input.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}

# Longest input per fuzzer: a few requests over the largest buffer max the
# header byte picks (8 KiB); the longest rate that is not "too long" (64 bytes
# of number and a unit); a cgroup path just over TARGET_PATH_MAX; a unit file
# with a few sections and continuation lines.
# a request: one message of a few targets and rates (fuzz-request takes 4096 bytes at most);
# a rules file of a few lines.
declare -A max_len=([varlink]=8192 [rate]=128 [target]=4608 [unit-file]=4096 [request]=1024 [rules]=4096)
all=(varlink rate target unit-file request rules)

skip() {
        echo "SKIP: $*"
        exit 77
}

[[ $seconds =~ ^[0-9]+$ ]] || { echo "FUZZ_SECONDS must be a number of seconds: $seconds" >&2; exit 2; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_JOBS must be a positive number: $jobs" >&2; exit 2; }

names=("$@")
if ((${#names[@]} == 0)); then
        for n in "${all[@]}"; do
                [[ -f $src/tests/fuzz/fuzz-$n.c ]] && names+=("$n")
        done
fi
for n in "${names[@]}"; do
        [[ -n ${max_len[$n]:-} && -f $src/tests/fuzz/fuzz-$n.c ]] || { echo "No fuzzer named '$n'" >&2; exit 2; }
done

command -v clang >/dev/null 2>&1 || skip "clang is not installed"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"$probe/p.c"
clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >/dev/null 2>&1 ||
        skip "clang cannot link libFuzzer programs (Debian: install libclang-rt-14-dev)"

# Configure once; an existing dir gets the option turned on (a no-op when it is).
if [[ ! -f $build/build.ninja ]]; then
        if ! CC=clang meson setup "$build" "$src" -Dfuzz=true -Db_lundef=false >"$probe/setup.log" 2>&1; then
                cat "$probe/setup.log"
                exit 1
        fi
elif ! meson configure "$build" -Dfuzz=true >"$probe/setup.log" 2>&1; then
        cat "$probe/setup.log"
        exit 1
fi
targets=()
for n in "${names[@]}"; do
        targets+=("tests/fuzz/fuzz-$n")
done
ninja -C "$build" "${targets[@]}" >"$probe/build.log" 2>&1 || { cat "$probe/build.log"; exit 1; }

run_one() {
        local n=$1 out=$build/fuzz-out/$1 dict=$src/tests/fuzz/$1.dict
        local args=(-max_len="${max_len[$n]}" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/"
                    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1)

        rm -rf "$out"
        mkdir -p "$out/corpus"
        cp -r "$src/tests/fuzz/corpus/$n/." "$out/corpus/"
        [[ -f $dict ]] && args+=(-dict="$dict")
        if ((seconds == 0)); then
                args+=(-runs=0)
        else
                args+=(-max_total_time="$seconds")
        fi
        exec "$build/tests/fuzz/fuzz-$n" "${args[@]}" "$out/corpus" >"$out/fuzz.log" 2>&1
}

summary() {
        local n=$1 log=$build/fuzz-out/$1/fuzz.log last runs rate seeds
        last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        seeds=$(find "$src/tests/fuzz/corpus/$n" -type f | wc -l)
        echo "fuzz-$n: ok: ${runs:-?} runs, ${rate:-?}/s, $seeds seeds;" \
             "$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' <<<"$last" || echo "$last")"
}

declare -A pid
failed=0
cleanup() {
        for p in "${pid[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        rm -rf "$probe"
}
trap cleanup EXIT

for ((i = 0; i < ${#names[@]}; i += jobs)); do
        batch=("${names[@]:i:jobs}")
        for n in "${batch[@]}"; do
                run_one "$n" &
                pid[$n]=$!
        done
        for n in "${batch[@]}"; do
                rc=0
                wait "${pid[$n]}" || rc=$?
                unset "pid[$n]"
                if ((rc == 0)); then
                        summary "$n"
                        continue
                fi
                failed=1
                log=$build/fuzz-out/$n/fuzz.log
                echo "fuzz-$n: FINDING (exit $rc); the end of $log:"
                tail -n 60 "$log" | sed 's/^/    /'
                input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
                if [[ -n $input ]]; then
                        echo "fuzz-$n: input: $input"
                        echo "fuzz-$n: reproduce: $build/tests/fuzz/fuzz-$n $input"
                fi
        done
done
exit "$failed"
