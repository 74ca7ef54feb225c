#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the per-process accounting (the acct map of the BPF data path, for `netbumpctl top`) costs
# unlimited traffic: netbumpd with the counters against netbumpd --no-accounting, which loads the
# same programs with the load-time constant nb_account false (the verifier drops that code).
#
#   bench/accounting.sh [BUILD_DIR]        (default ./build; about 4 minutes)
#
# In two private namespaces joined by a veth (tests/integration/lib.sh), from a cgroup under
# netbumpd's root without any rule, one iperf3 flow pinned to CPU 0 (server CPU 1), per workload:
#   tcp-up, tcp-down    bulk TCP (GSO/GRO: one program run per super-packet), bits/s received
#   udp-up, udp-down    64-byte UDP datagrams as fast as iperf3 sends them: one program run per
#                       packet, the worst case for a per-packet cost; datagrams/s received
# 1. throughput: the two variants alternated for BENCH_ROUNDS rounds (default 5), each round a
#    fresh netbumpd; the ratio of the medians, with the spread of the runs of each variant;
# 2. CPU time in the programs: one run per variant and workload with kernel.bpf_stats_enabled=1
#    (restored afterwards), run_time_ns / run_cnt of nb_egress and nb_ingress of this run's
#    netbumpd (found by its cgroup root and its veth);
# 3. per packet, without the noise of traffic: bench/acct-cost.c (compiled here against the build's
#    skeleton) times both programs through BPF_PROG_TEST_RUN, 1e6 runs, with and without.
# Needs gcc and libbpf-dev (build dependencies) for 3.
# Writes bench/results/accounting.json and the "Per-process accounting" section of BENCHMARKS.md
# (replaced between its markers, appended when absent; the rest of the file is left alone).
# Environment: BENCH_ROUNDS=5  BENCH_SECS=3  BENCH_REPEAT=1000000 (test runs of 3.)
#   BENCH_OUT=DIR                 write both files there instead
#   BENCH_REPORT_ONLY=JSON        measure nothing: write the section again from an earlier JSON

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
# shellcheck source=bench/rounds.sh
source "$BENCH_DIR/rounds.sh"
NB_TEST_NAME=bench-accounting

ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-3}
PORT=5201
WORKLOADS=(tcp-up tcp-down udp-up udp-down)
OUT_DIR=${BENCH_OUT:-}
AFFINITY=()
if (($(nproc) >= 2)); then AFFINITY=(-A "0,1"); fi

nb_require_daemon
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
[[ -r /proc/sys/kernel/bpf_stats_enabled ]] || nb_skip "no kernel.bpf_stats_enabled"

STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled)
restore_stats() { echo "$STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || :; }
# our restore first, then lib.sh's teardown with the exit status it expects in $? (set +e: a
# failing (exit N) must not end the trap before the teardown)
# shellcheck disable=SC2154
trap '_rc=$?; set +e; restore_stats; (exit $_rc); _nb_teardown' EXIT

ERRORS=0
json_out=${OUT_DIR:-$BENCH_DIR/results}/accounting.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

if [[ -n ${BENCH_REPORT_ONLY:-} ]]; then
        # only the section again, from the results of an earlier run
        json_out=$BENCH_REPORT_ONLY
        [[ -s $json_out ]] || nb_fail "no results in $json_out"
else
        nb_setup
        bench_private_binaries
        nb_start_iperf_servers "$PORT"
        CG=$(make_cgroup unlimited)
        RAW=$NB_TMP/raw.jsonl
        : >"$RAW"

        # start_variant on|off: netbumpd with or without the counters
        start_variant() {
                if [[ $1 == on ]]; then nb_start_netbumpd >/dev/null; else nb_start_netbumpd --no-accounting >/dev/null; fi
                local acc
                acc=$(nbctl --json status | jq -r '.accounting')
                [[ $acc == "$([[ $1 == on ]] && echo true || echo false)" ]] ||
                        nb_fail "netbumpd accounting is '$acc', wanted $1"
        }

        # prog_ids: "name id" of this run's nb_egress (attached to its cgroup root) and nb_ingress (its tc
        # filter on the veth in ns a); other netbumpds on the machine have programs of the same names
        prog_ids() {
                bpftool -j cgroup tree "$NB_CGROOT" 2>/dev/null | jq -r --arg cg "$NB_CGROOT" '
                        .[]? | select(.cgroup == $cg) | .programs[]? | select(.name == "nb_egress") | "nb_egress \(.id)"'
                nsenter --net="$NB_NETNS_A" bpftool -j net show dev "$NB_IF_A" 2>/dev/null | jq -r '
                        [.[]?.tc[]? | select(.kind == "clsact/ingress") | .id][0] // empty | "nb_ingress \(.)"'
        }

        # prog_stats: "name run_time_ns run_cnt" of those programs
        prog_stats() {
                local name id
                while read -r name id; do
                        bpftool -j prog show id "$id" 2>/dev/null |
                                jq -r --arg n "$name" '"\($n) \(.run_time_ns // 0) \(.run_cnt // 0)"'
                done < <(prog_ids)
        }

        # --- 1. throughput, alternating ------------------------------------------------------------------
        nb_info "throughput: $ROUNDS rounds x ${#WORKLOADS[@]} workloads x 2 variants, ${SECS} s each"
        # alternate which variant goes first, so drift over time does not favour one (called by
        # bench_rounds)
        # shellcheck disable=SC2317
        order_for() { if (($1 % 2)); then order=(off on); else order=(on off); fi; }
        bench_rounds "$ROUNDS" order_for "accounting " throughput -g "$CG"
        ERRORS=$((ERRORS + BENCH_ERRORS))

        # --- 2. time in the programs ---------------------------------------------------------------------
        echo 1 >/proc/sys/kernel/bpf_stats_enabled || nb_fail "cannot enable kernel.bpf_stats_enabled"
        for v in off on; do
                start_variant "$v"
                for w in "${WORKLOADS[@]}"; do
                        before=$(prog_stats)
                        val=$(bench_run_workload "$w" "$NB_TMP/$w-$v-stats.json" -g "$CG") || ERRORS=$((ERRORS + 1))
                        after=$(prog_stats)
                        for p in nb_egress nb_ingress; do
                                t0=0 c0=0 t1=0 c1=0
                                read -r _ t0 c0 < <(grep "^$p " <<<"$before") || :
                                read -r _ t1 c1 < <(grep "^$p " <<<"$after") || :
                                printf '{"kind":"bpf_stats","variant":"%s","workload":"%s","program":"%s","run_time_ns":%d,"run_cnt":%d}\n' \
                                        "$v" "$w" "$p" "$((${t1:-0} - ${t0:-0}))" "$((${c1:-0} - ${c0:-0}))" >>"$RAW"
                        done
                        nb_say "bpf_stats, accounting $v, $w: $(grep -c . <<<"$after") programs sampled"
                done
                nb_stop_netbumpd >/dev/null || :
        done
        restore_stats

        # --- 3. per packet, in isolation -----------------------------------------------------------------
        gcc -O2 -D_GNU_SOURCE -I"$TOP/include" -I"$NETBUMP_BUILD_DIR/bpf" -I"$TOP/src/shared" \
                -o "$NB_TMP/acct-cost" "$BENCH_DIR/acct-cost.c" -lbpf || nb_fail "cannot build bench/acct-cost.c"
        "$NB_TMP/acct-cost" "${BENCH_REPEAT:-1000000}" >"$NB_TMP/acct-cost.json" || nb_fail "bench/acct-cost failed"
        printf '{"kind":"test_run",%s\n' "$(cut -c2- "$NB_TMP/acct-cost.json")" >>"$RAW"
        nb_say "per packet (BPF_PROG_TEST_RUN): $(cat "$NB_TMP/acct-cost.json")"

        # --- report ---------------------------------------------------------------------------------------
        mkdir -p "$(dirname "$json_out")"
        jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
                --arg cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" --argjson nproc "$(nproc)" \
                --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
                --argjson rounds "$ROUNDS" --argjson secs "$SECS" '
                def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
                        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
                def spread: if length == 0 then null else ((max - min) / (. | median)) end;
                . as $all
                | {date: $date, kernel: $kernel, cpu: $cpu, nproc: $nproc, commit: $commit, rounds: $rounds,
                   seconds: $secs,
                   throughput: ([$all[] | select(.kind == "throughput") | .workload] | unique | map(. as $w |
                        ([$all[] | select(.kind == "throughput" and .workload == $w and .variant == "off") | .value
                          | select(. != null)]) as $off
                      | ([$all[] | select(.kind == "throughput" and .workload == $w and .variant == "on") | .value
                          | select(. != null)]) as $on
                      | ([range(1; $rounds + 1) as $r
                          | ([$all[] | select(.kind == "throughput" and .workload == $w and .round == $r)]) as $x
                          | ([$x[] | select(.variant == "on") | .value][0]) as $a
                          | ([$x[] | select(.variant == "off") | .value][0]) as $b
                          | select($a != null and $b != null and $b > 0) | $a / $b]) as $pairs
                      | {workload: $w, unit: (if ($w | startswith("udp")) then "datagrams/s" else "bit/s" end),
                         paired: $pairs, paired_median: ($pairs | median),
                         paired_min: ($pairs | min), paired_max: ($pairs | max),
                         off: $off, on: $on, off_median: ($off | median), on_median: ($on | median),
                         ratio: (if ($off | median) then (($on | median) / ($off | median)) else null end),
                         off_spread: ($off | spread), on_spread: ($on | spread)})),
                   bpf_stats: [$all[] | select(.kind == "bpf_stats")
                        | . + {ns_per_run: (if .run_cnt > 0 then .run_time_ns / .run_cnt else null end)}],
                   test_run: ([$all[] | select(.kind == "test_run") | del(.kind)][0])}' \
                "$RAW" >"$json_out" || nb_fail "cannot summarize the results"
fi

section=$(jq -r '. as $root
        | def r(n): . * pow(10; n) | round / pow(10; n);
        def fmt(u): if . == null then "-" elif u == "bit/s" then "\(. / 1e9 | r(2)) Gbit/s"
                else "\(. / 1e3 | r(1)) k/s" end;
        def pct: if . == null then "-" else "\(. * 100 | r(1))%" end;
        "## Per-process accounting: cost on unlimited traffic",
        "",
        "`bench/accounting.sh`, \(.date), kernel \(.kernel), \(.cpu) (\(.nproc) CPUs), commit \(.commit).",
        "One unlimited iperf3 flow (client on CPU 0, server on CPU 1) from a cgroup without a rule under",
        "netbumpd'"'"'s root, over a veth; netbumpd with the per-process counters (`on`) against",
        "`netbumpd --no-accounting` (`off`: the same programs loaded with `nb_account` false), alternated",
        "over \(.rounds) rounds of \(.seconds) s, a fresh daemon each. UDP: 64-byte datagrams, one program",
        "run per packet (the worst case); TCP: GSO/GRO packets.",
        "",
        "| workload | off (median) | on (median) | on / off, medians | on / off, same round: median (min-max) | spread off | spread on |",
        "|---|---|---|---|---|---|---|",
        (.throughput[] | . as $t
         | "| \($t.workload) | \($t.off_median | fmt($t.unit)) | \($t.on_median | fmt($t.unit)) | \($t.ratio | if . == null then "-" else r(3) end) | \($t.paired_median | if . == null then "-" else r(3) end) (\($t.paired_min | if . == null then "-" else r(2) end)-\($t.paired_max | if . == null then "-" else r(2) end)) | \($t.off_spread | pct) | \($t.on_spread | pct) |"),
        "",
        "Spread: (max - min) / median of the runs of one variant, the noise the ratios are to be read",
        "against; the same-round ratios pair the two runs made next to each other in time.",
        "",
        ([.throughput[] | .paired_median // .ratio | select(. != null)]) as $rs
        | ([.throughput[] | .off_spread, .on_spread | select(. != null)]) as $ss
        | ([.throughput[] | select((.paired_median // .ratio) != null and .off_spread != null and .on_spread != null)
            | select(((.paired_median // .ratio) - 1 | fabs) > ([.off_spread, .on_spread] | min))]) as $beyond
        | if ($rs | length) == 0 then "No throughput ratio was measured."
          else "Throughput, with against without: ratios \($rs | min | r(3)) to \($rs | max | r(3)) (same round), while the runs of one variant spread by \($ss | min | pct) to \($ss | max | pct): " +
               (if ($beyond | length) == 0 then "no difference stands out of the noise on this machine."
                else "\($beyond | map(.workload) | join(", ")) differ by more than their spread." end)
          end,
        "",
        "Per packet, in isolation (`bench/acct-cost.c`: `BPF_PROG_TEST_RUN`, mean of \(.test_run.repeat) runs,",
        "best of 5 loops; a 64-byte UDP packet of a socket tagged at creation):",
        "",
        "| program | off | on | added |",
        "|---|---|---|---|",
        (.test_run as $t | ["egress_ns", "nb_egress, managed interface"], ["egress_unmanaged_ns", "nb_egress, unmanaged interface"],
            ["ingress_ns", "nb_ingress"] | . as [$k, $name]
         | "| \($name) | \($t[$k].off) ns | \($t[$k].on) ns | \($t[$k].on - $t[$k].off | r(1)) ns |"),
        "",
        "Time in the programs with real traffic (`kernel.bpf_stats_enabled=1`, one run per variant; a",
        "run is one packet, or one GSO/GRO packet for TCP):",
        "",
        "| program | workload | ns/run off | ns/run on | runs on |",
        "|---|---|---|---|---|",
        ([$root.bpf_stats[] | select(.variant == "on")] | sort_by(.program, .workload)[] as $on
         | ([$root.bpf_stats[] | select(.variant == "off" and .program == $on.program and .workload == $on.workload)][0]) as $off
         | select($on.run_cnt > 0)
         | "| \($on.program) | \($on.workload) | \($off.ns_per_run // null | if . == null then "-" else r(1) end) | \($on.ns_per_run | r(1)) | \($on.run_cnt) |"),
        ""' "$json_out")

bench_write_section accounting "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the accounting section of $md_out"
((ERRORS == 0)) || nb_fail "$ERRORS iperf3 run(s) failed"
nb_finish
