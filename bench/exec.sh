#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What exe: rules cost everyone else's exec: the exec hook (bpf/exe.bpf.h, attached while an exe:
# rule exists) looks every new image up in a hash map, once per exec.
#
#   bench/exec.sh [BUILD_DIR]        (default ./build; about 2 minutes)
#
# One netbumpd (private namespaces and cgroup root, tests/integration/lib.sh; on CPU 1, and given
# time to finish each switch of rules before a run); bench/exec-loop.c (compiled here, static
# where the toolchain can) forks and execs itself in a tight loop for BENCH_SECS seconds on CPU 0,
# from a cgroup under netbumpd's root, alternately
#   0     no exe: rule: the hook is not attached
#   100   100 exe: rules on 100 other programs (copies of /bin/true at paths of the run's own):
#         the hook runs and finds nothing, what every exec not of a limited program pays
# for BENCH_ROUNDS rounds (default 20), the order within a round alternating too. Reported: execs/s
# of each variant (median, spread), the ratio 100 / 0 of the medians and of each round's pair
# (the goal: at least 0.95), and the hook's own time per exec (kernel.bpf_stats_enabled=1 over
# one extra run with the rules, restored afterwards).
# Writes bench/results/exec.json and the "exe: rules: cost of exec" section of BENCHMARKS.md.
# Environment: BENCH_ROUNDS=20 BENCH_SECS=1.5 BENCH_RULES=100 BENCH_OUT=DIR
#   BENCH_REPORT_ONLY=JSON   measure nothing: write the section again from an earlier JSON

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench-exec

ROUNDS=${BENCH_ROUNDS:-20}
SECS=${BENCH_SECS:-1.5}
NRULES=${BENCH_RULES:-100}
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/exec.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

nb_require_daemon
STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
restore_stats() { echo "$STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || :; }
# shellcheck disable=SC2154
trap '_rc=$?; set +e; restore_stats; (exit $_rc); _nb_teardown' EXIT

if [[ -n ${BENCH_REPORT_ONLY:-} ]]; then
        json_out=$BENCH_REPORT_ONLY
        [[ -s $json_out ]] || nb_fail "no results in $json_out"
else
        command -v gcc >/dev/null 2>&1 || nb_skip "'gcc' is not installed"
        nb_setup
        bench_private_binaries
        LOOP=$NB_TMP/exec-loop
        linkage=static
        gcc -O2 -static -o "$LOOP" "$BENCH_DIR/exec-loop.c" 2>/dev/null || {
                linkage=dynamic
                gcc -O2 -o "$LOOP" "$BENCH_DIR/exec-loop.c" || nb_fail "cannot build bench/exec-loop.c"
        }
        mkdir -p "$NB_TMP/exes"
        for ((i = 0; i < NRULES; i++)); do cp "$(readlink -f /bin/true)" "$NB_TMP/exes/t$i"; done
        CG=$(make_cgroup loop)
        RAW=$NB_TMP/raw.jsonl
        : >"$RAW"
        nb_start_netbumpd >/dev/null
        # the daemon on the other CPU than the loop, where there are two
        (($(nproc) >= 2)) && taskset -a -p -c 1 "$NB_DAEMON_PID" >/dev/null

        rules_on() {
                local i
                for ((i = 0; i < NRULES; i++)); do nbctl set "exe:$NB_TMP/exes/t$i" 1mbit >/dev/null || nb_fail "set exe: $i"; done
        }
        rules_off() {
                local i
                for ((i = 0; i < NRULES; i++)); do nbctl unset "exe:$NB_TMP/exes/t$i" >/dev/null || nb_fail "unset exe: $i"; done
        }
        n_exe_rules() { nbctl --json list | jq '[.rules[] | select(.kind == "exe" or (.target | startswith("exe:")))] | length'; }
        # run_loop: "execs/s execs/CPU-s" of one run, on CPU 0, in the loop cgroup
        run_loop() {
                local out
                _nb_argv -g "$CG"
                out=$("${_NB_ARGV[@]}" taskset -c 0 "$LOOP" "$SECS") || nb_fail "exec-loop failed"
                awk '{ printf "%.1f %.1f\n", $1 / $2, $1 / $3 }' <<<"$out"
        }

        run_loop >/dev/null # warm-up: page cache, the loop's first forks
        state=0
        for ((round = 1; round <= ROUNDS; round++)); do
                order=(0 "$NRULES")
                ((round % 2 == 0)) && order=("$NRULES" 0)
                for v in "${order[@]}"; do
                        if [[ $v != "$state" ]]; then
                                if ((v > 0)); then rules_on; else rules_off; fi
                                state=$v
                        fi
                        n=$(n_exe_rules)
                        [[ $n == "$v" ]] || nb_fail "round $round: $n exe: rules in force, wanted $v"
                        # the daemon done with the toggle (the rules' small-packet leaves come a
                        # moment after them), so that its work does not fall in the next run
                        nb_wait_until 10 _nb_all_complete || nb_fail "round $round: rules still incomplete"
                        sleep 1
                        read -r val cpu < <(run_loop)
                        nb_say "round $round, $v exe: rules: $val execs/s, $cpu execs per CPU-second"
                        printf '{"kind":"loop","round":%d,"rules":%d,"execs_per_s":%s,"execs_per_cpu_s":%s}\n' \
                                "$round" "$v" "$val" "$cpu" >>"$RAW"
                done
        done

        # the hook's own time per exec, from the kernel's counters (this netbumpd's program only)
        ((state > 0)) || rules_on
        # (the newest nb_exec: this netbumpd's, loaded last; bpftool may not list the owning pids)
        hook_id=$(bpftool -j prog show 2>/dev/null | jq -r '[.[] | select(.name == "nb_exec") | .id] | max // empty')
        if [[ -n $hook_id ]] && echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null; then
                read -r t0 c0 < <(bpftool -j prog show id "$hook_id" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"')
                read -r val _ < <(run_loop)
                read -r t1 c1 < <(bpftool -j prog show id "$hook_id" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"')
                restore_stats
                printf '{"kind":"hook","execs_per_s":%s,"run_time_ns":%d,"run_cnt":%d}\n' "$val" "$((t1 - t0))" "$((c1 - c0))" >>"$RAW"
                nb_say "hook: $((c1 - c0)) runs, $((t1 - t0)) ns"
        else
                nb_say "hook time not measured (no nb_exec of this netbumpd found, or no kernel.bpf_stats_enabled)"
        fi
        rules_off

        mkdir -p "$(dirname "$json_out")"
        jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
                --arg cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" --argjson nproc "$(nproc)" \
                --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
                --argjson rounds "$ROUNDS" --argjson secs "$SECS" --argjson nrules "$NRULES" --arg linkage "$linkage" '
                def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
                def spread: if length == 0 then null else ((max - min) / (. | median)) end;
                . as $all
                | ([$all[] | select(.kind == "loop" and .rules == 0) | .execs_per_s]) as $off
                | ([$all[] | select(.kind == "loop" and .rules > 0) | .execs_per_s]) as $on
                | def pairs(f): [range(1; $rounds + 1) as $r
                    | ([$all[] | select(.kind == "loop" and .round == $r and .rules > 0) | f][0]) as $a
                    | ([$all[] | select(.kind == "loop" and .round == $r and .rules == 0) | f][0]) as $b
                    | select($a != null and $b != null and $b > 0) | $a / $b];
                  (pairs(.execs_per_s)) as $pairs
                | (pairs(.execs_per_cpu_s)) as $cpairs
                | ([$all[] | select(.kind == "loop" and .rules == 0) | .execs_per_cpu_s]) as $coff
                | ([$all[] | select(.kind == "loop" and .rules > 0) | .execs_per_cpu_s]) as $con
                | {date: $date, kernel: $kernel, cpu: $cpu, nproc: $nproc, commit: $commit, rounds: $rounds,
                   seconds: $secs, rules: $nrules, linkage: $linkage,
                   off: $off, on: $on, off_median: ($off | median), on_median: ($on | median),
                   off_spread: ($off | spread), on_spread: ($on | spread),
                   ratio: (if ($off | median) then (($on | median) / ($off | median)) else null end),
                   paired: $pairs, paired_median: ($pairs | median), paired_min: ($pairs | min), paired_max: ($pairs | max),
                   per_cpu_second: {off: $coff, on: $con, off_median: ($coff | median), on_median: ($con | median),
                         off_spread: ($coff | spread), on_spread: ($con | spread),
                         ratio: (if ($coff | median) then (($con | median) / ($coff | median)) else null end),
                         paired_median: ($cpairs | median), paired_min: ($cpairs | min), paired_max: ($cpairs | max)},
                   hook: ([$all[] | select(.kind == "hook")
                           | . + {ns_per_exec: (if .run_cnt > 0 then .run_time_ns / .run_cnt else null end)}][0])}' \
                "$RAW" >"$json_out" || nb_fail "cannot summarize the results"
fi

section=$(jq -r '
        def r(n): . * pow(10; n) | round / pow(10; n);
        def pct: if . == null then "-" else "\(. * 100 | r(1))%" end;
        "## exe: rules: cost of exec",
        "",
        "`bench/exec.sh`, \(.date), kernel \(.kernel), \(.cpu) (\(.nproc) CPUs), commit \(.commit).",
        "A tight fork+exec loop (`bench/exec-loop.c`, \(.linkage), on CPU 0, from a cgroup under netbumpd'"'"'s",
        "root) with netbumpd running, with no exe: rule (the exec hook is not attached) and with \(.rules)",
        "exe: rules on other programs (the hook looks every exec up and finds nothing: what every exec",
        "of an unlimited program pays), alternated over \(.rounds) rounds of \(.seconds) s, one daemon.",
        "",
        "| exe: rules | execs/s (median) | spread | runs |",
        "|---|---|---|---|",
        "| 0 | \(.off_median | r(1)) | \(.off_spread | pct) | \(.off | map(r(0)) | join(", ")) |",
        "| \(.rules) | \(.on_median | r(1)) | \(.on_spread | pct) | \(.on | map(r(0)) | join(", ")) |",
        "",
        "Per CPU-second of the loop and its children (user and system time, less disturbed by other",
        "load than the wall clock): \(.per_cpu_second.off_median | r(1)) execs with no rule (spread \(.per_cpu_second.off_spread | pct)),",
        "\(.per_cpu_second.on_median | r(1)) with \(.rules) (spread \(.per_cpu_second.on_spread | pct)); ratio \(.per_cpu_second.ratio | r(3)) of the medians,",
        "\(.per_cpu_second.paired_median | r(3)) (\(.per_cpu_second.paired_min | r(3))-\(.per_cpu_second.paired_max | r(3))) of the same round'"'"'s pair.",
        "",
        "Ratio \(.rules) / 0, execs/s: \(.ratio | r(3)) of the medians; \(.paired_median | r(3)) (\(.paired_min | r(3))-\(.paired_max | r(3))) of the same round'"'"'s pair. Goal: at least 0.95 — " +
          (if (.paired_median // .ratio) >= 0.95 then "met." else "missed." end),
        "",
        (if .hook and .hook.ns_per_exec then
           "The hook itself (`kernel.bpf_stats_enabled=1`, one more run with the rules): \(.hook.ns_per_exec | r(0)) ns per exec over \(.hook.run_cnt) execs, against \(1e9 / .off_median | r(0)) ns for a whole fork+exec+wait here: by its own time the ratio would be \(1 - .hook.ns_per_exec * .off_median / 1e9 | r(4)); the ratios measured differ from 1 by the noise of the machine (the spreads above), not by the hook."
         else "The hook'"'"'s own time was not measured." end),
        ""' "$json_out")

bench_write_section exec "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the exec section of $md_out"
nb_finish
