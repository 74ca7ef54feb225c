#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The netbump benchmark: one command, one run on this machine, about 4 minutes.
#
#   bench/run.sh [BUILD_DIR]        (default: ./build; run `ninja -C build` first)
#
# Measures, in two private network namespaces joined by a veth (tests/integration/lib.sh), with
# iperf3 over IPv4:
#   1. rate accuracy: a cgroup limited to 1, 10, 100, 1000 mbit, upload and download (-R), 4 flows;
#      the link-layer rate is the slope of the rule's class bytes (`netbumpctl list --json`, sampled
#      every 0.1 s from about 1 s after the first byte to about 5.7 s; least squares), the delta
#      of the first and last sample over their time is shown too;
#      also iperf3's goodput and the first second's bytes against rate x 1 s + burst;
#   2. overhead on unlimited traffic: one flow from a cgroup without a rule, (a) without netbumpd,
#      (b) with netbumpd and 200 cgroup rules, alternated over several rounds; each (b) round starts
#      netbumpd and sets the 200 rules, which times the control plane.
# Writes bench/results/latest.json (raw samples and derived numbers) and regenerates its section of
# BENCHMARKS.md (between <!-- bench/run.sh: begin/end --> markers; the rest of the page is left
# alone) with bench/report.py. Environment:
#   BENCH_RATES="1mbit 10mbit 100mbit 1000mbit"  BENCH_ROUNDS=10  BENCH_RULES=200
#   BENCH_OUT=DIR      write latest.json and BENCHMARKS.md there instead of the tree
#   BENCH_TC_DUMP=DIR  after each rate test, save `tc -s qdisc/class` of ns a there (diagnosis)
# Exit status: 0 when everything was measured (goals met or not: see the summary), 1 otherwise.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench

read -r -a RATES <<<"${BENCH_RATES:-1mbit 10mbit 100mbit 1000mbit}"
ROUNDS=${BENCH_ROUNDS:-10}
NRULES=${BENCH_RULES:-200}
OUT_DIR=${BENCH_OUT:-}
FLOWS=4
PORT=5201

# rate accuracy: data starts at T0; samples at T0 + WARM and T0 + END; iperf3 runs -O 1 -t 5
RATE_OMIT=1
RATE_SECS=5
WARM=1.0
END=5.7
# below SLOW_BPS the window is longer: at 1 mbit 4.7 s hold only ~390 frames, and TCP's own
# unevenness moves the rate of such a window by about 1% (fitted slopes over 4-5 s windows of one
# 1mbit transfer: 0.988 to 1.009; over 9.5 s: 1.004)
SLOW_BPS=5000000 SLOW_SECS=11 SLOW_END=10.7
SERIES_STEP=0.1        # seconds between the samples of the class bytes in that window
# overhead: one flow, -O 1 -t 3 per direction and variant; the client pinned to CPU 0 and the
# server to CPU 1 (-A 0,1), which narrows the spread of veth throughput on a 2-CPU machine
OVH_OMIT=1
OVH_SECS=3
OVH_AFFINITY=()
if (($(nproc) >= 2)); then OVH_AFFINITY=(-A "0,1"); fi

nb_require_daemon
for _c in python3 git; do
        command -v "$_c" >/dev/null 2>&1 || nb_skip "'$_c' is not installed"
done
if [[ -n ${BENCH_TC_DUMP:-} ]]; then mkdir -p "$BENCH_TC_DUMP"; fi

BENCH_T0=$(nb_now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
        nb_say "warning: load average $LOAD_START: the machine is busy, overhead numbers will be noisy"
fi
nb_setup
bench_private_binaries
RAW=$NB_TMP/raw.jsonl
: >"$RAW"
nb_start_iperf_servers "$PORT"

# record JSON: append one JSONL record (built by the caller with jq -nc)
record() { printf '%s\n' "$1" >>"$RAW"; }

# elapsed T0 T1: seconds between two nb_now stamps
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

# sleep_until T: sleep until the nb_now stamp T (at once if it is past)
sleep_until() {
        local d
        d=$(awk -v t="$1" -v n="$(nb_now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
        sleep "$d"
}

# sample TARGET FIELD: one `netbumpctl list --json`; sets S_T (the middle of the call, which is a
# few ms long), S_BYTES and S_DROPS of the rule's FIELD (up_stats or down_stats)
sample() {
        local t0 t1 out
        t0=$(nb_now)
        out=$(nbctl list --json) || nb_fail "netbumpctl list --json failed"
        t1=$(nb_now)
        S_T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (a + b) / 2 }')
        read -r S_BYTES S_DROPS < <(jq -r --arg t "$1" --arg f "$2" \
                '.rules[] | select(.target == $t) | .[$f] | "\(.bytes) \(.drops)"' <<<"$out")
        [[ -n $S_BYTES ]] || nb_fail "no rule $1 in netbumpctl list --json"
}

_server_idle() {
        [[ -z $(nsenter --net="$NB_NETNS_B" ss -Htn state established "( sport = :$PORT )") ]]
}

# wait_server_idle: the iperf3 server has closed every connection of the last test (it refuses a
# new one as "busy" until then, which takes a while after a slow test with full queues)
wait_server_idle() {
        nb_wait_until 15 _server_idle || nb_fail "iperf3 server on port $PORT still busy after 15 s"
}

# bench_iperf_start PIDVAR JSON CG IPERF3-ARGS...: iperf3 -c in ns a in cgroup CG, in the
# background, bounded by timeout(1); collect with iperf_client_wait. (lib.sh's iperf_client_start
# has no -P.)
bench_iperf_start() {
        local __pidvar=$1 json=$2 cg=$3 secs=30
        shift 3
        _nb_argv -g "$cg"
        (exec timeout -k 5 "$secs" "${_NB_ARGV[@]}" iperf3 -J --get-server-output \
                --connect-timeout 3000 "$@" >"$json" 2>"$json.err") &
        nb_track_pid $!
        NB_BG_JSON[$!]=$json
        printf -v "$__pidvar" '%s' "$!"
}

# iperf_summary JSON: {goodput_bps, retransmits} of a finished client
iperf_summary() {
        jq -c '{goodput_bps: (.end.sum_received.bits_per_second | floor),
                retransmits: (.end.sum_sent.retransmits // null)}' "$1"
}

tc_dump() {
        [[ -n ${BENCH_TC_DUMP:-} ]] || return 0
        local f=$BENCH_TC_DUMP/$1.txt dev
        {
                for dev in $(ip -n "$NB_NS_A" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
                        [[ $dev == lo ]] && continue
                        echo "### $dev"
                        tc -n "$NB_NS_A" -s qdisc show dev "$dev"
                        tc -n "$NB_NS_A" -s class show dev "$dev"
                done
        } >"$f" 2>&1
}

# ---------------------------------------------------------------------------------------------
# 1. rate accuracy

# rate_test RATE DIR: one measurement, one record
rate_test() {
        local rate=$1 dir=$2 bps cg target field pid json args i
        local base base_drops t_prev t_first b_first t1 b1 t2 b2 d2 summary
        bps=$(rate_to_bps "$rate")
        cg=$(make_cgroup "rate-$rate-$dir")
        target=cgroup:$(cgroup_rel "$cg")
        field=${dir}_stats
        nbctl set "$target" "$rate" >/dev/null || nb_fail "netbumpctl set $target $rate failed"

        sample "$target" "$field"
        base=$S_BYTES base_drops=$S_DROPS t_prev=$S_T
        json=$NB_TMP/rate-$rate-$dir.json
        local secs=$RATE_SECS end=$END
        ((bps < SLOW_BPS)) && secs=$SLOW_SECS end=$SLOW_END
        args=(-c "$NB_B4" -p "$PORT" -P "$FLOWS" -t "$secs" -O "$RATE_OMIT")
        [[ $dir == down ]] && args+=(-R)
        wait_server_idle
        bench_iperf_start pid "$json" "$cg" "${args[@]}"

        # the first sample that moved: data started between t_prev and it (at most ~5 s)
        t_first=
        for ((i = 0; i < 500; i++)); do
                sample "$target" "$field"
                if ((S_BYTES > base)); then
                        t_first=$S_T b_first=$S_BYTES
                        break
                fi
                t_prev=$S_T
                sleep 0.01
        done
        if [[ -z $t_first ]]; then
                iperf_client_wait "$pid" || :
                nb_fail "no traffic in $target within 5 s ($rate $dir)"
        fi
        sleep_until "$(awk -v t="$t_prev" -v w="$WARM" 'BEGIN { printf "%.6f", t + w }')"
        sample "$target" "$field"
        t1=$S_T b1=$S_BYTES
        # and every SERIES_STEP s until the end: the fitted slope of these is the rate (see below)
        local series=("[$t1,$b1]") tend next
        tend=$(awk -v t="$t_prev" -v w="$end" 'BEGIN { printf "%.6f", t + w }')
        next=$t1
        while :; do
                # a sample can take longer than a step on a busy machine: never fall behind the clock
                next=$(awk -v t="$next" -v s="$SERIES_STEP" -v n="$(nb_now)" 'BEGIN { t += s; printf "%.6f", (t > n ? t : n) }')
                awk -v a="$next" -v b="$tend" 'BEGIN { exit !(a < b - 0.05) }' || break
                sleep_until "$next"
                sample "$target" "$field"
                series+=("[$S_T,$S_BYTES]")
        done
        sleep_until "$tend"
        sample "$target" "$field"
        t2=$S_T b2=$S_BYTES d2=$S_DROPS
        series+=("[$t2,$b2]")
        tc_dump "rate-$rate-$dir"

        if iperf_client_wait "$pid"; then
                summary=$(iperf_summary "$json")
        else
                summary=null
                BENCH_ERRORS=$((BENCH_ERRORS + 1))
        fi
        wait_server_idle
        nbctl unset "$target" >/dev/null || nb_fail "netbumpctl unset $target failed"

        record "$(jq -nc --arg rate "$rate" --argjson bps "$bps" --arg dir "$dir" --argjson flows "$FLOWS" \
                --argjson t_prev "$t_prev" --argjson t_first "$t_first" --argjson t1 "$t1" --argjson t2 "$t2" \
                --argjson base "$base" --argjson b_first "$b_first" --argjson b1 "$b1" --argjson b2 "$b2" \
                --argjson drops "$((d2 - base_drops))" --argjson iperf "$summary" --argjson mtu 1500 \
                --argjson series "[$(IFS=,; echo "${series[*]}")]" \
                '{kind: "rate", rate: $rate, rate_bps: $bps, direction: $dir, flows: $flows, family: 4,
                  mtu: $mtu, t_prev: $t_prev, t_first: $t_first, t1: $t1, t2: $t2, bytes_base: $base,
                  bytes_first: $b_first, bytes_t1: $b1, bytes_t2: $b2, drops: $drops, iperf: $iperf,
                  series: $series}')"
        nb_say "rate $rate $dir: $(awk -v b1="$b1" -v b2="$b2" -v t1="$t1" -v t2="$t2" -v r="$bps" \
                'BEGIN { a = (b2 - b1) * 8 / (t2 - t1); printf "%.3f Mbit/s link layer, ratio %.4f", a / 1e6, a / r }')"
}

BENCH_ERRORS=0
nb_say "== rate accuracy: ${RATES[*]}, up and down, $FLOWS flows, IPv4"
nb_start_netbumpd
for rate in "${RATES[@]}"; do
        for dir in up down; do
                rate_test "$rate" "$dir"
        done
done
# probed when the first rule was set
LEAF=$(nbctl status --json | jq -r '.leaf_qdisc // "unknown"')
nb_stop_netbumpd

# ---------------------------------------------------------------------------------------------
# 2. overhead on unlimited traffic, and the control plane

make_cgroup free >/dev/null
RULE_CGS=()
for ((i = 1; i <= NRULES; i++)); do
        RULE_CGS+=("cgroup:$(cgroup_rel "$(make_cgroup "$(printf 'rules/r%03d' "$i")")")")
done

root_qdisc() {
        tc -n "$NB_NS_A" qdisc show dev "$NB_IF_A" root | awk 'NR == 1 { print $2 }'
}

# overhead_runs VARIANT ROUND: one upload and one download by the unlimited client
overhead_runs() {
        local variant=$1 round=$2 dir pid json args summary qd
        qd=$(root_qdisc)
        for dir in up down; do
                json=$NB_TMP/ovh-$variant-$round-$dir.json
                args=(-c "$NB_B4" -p "$PORT" -t "$OVH_SECS" -O "$OVH_OMIT" "${OVH_AFFINITY[@]}")
                [[ $dir == down ]] && args+=(-R)
                wait_server_idle
                bench_iperf_start pid "$json" free "${args[@]}"
                if iperf_client_wait "$pid"; then
                        summary=$(iperf_summary "$json")
                else
                        summary=null
                        BENCH_ERRORS=$((BENCH_ERRORS + 1))
                fi
                record "$(jq -nc --arg v "$variant" --argjson r "$round" --arg d "$dir" --arg qd "$qd" \
                        --argjson iperf "$summary" \
                        '{kind: "overhead", variant: $v, round: $r, direction: $d, root_qdisc: $qd, iperf: $iperf}')"
                nb_say "overhead round $round ($variant) $dir: $(jq -r '(.goodput_bps // 0) / 1e7 | floor / 100' <<<"$summary") Gbit/s (root qdisc $qd)"
        done
}

# with_rules ROUND: start netbumpd, set the rules (timed one by one), measure, stop it (timed)
with_rules() {
        local round=$1 t0 t1 tt0 tt1 tgt times=() list_ms=() classes_up classes_down ready_s stop_s
        t0=$(nb_now)
        nb_start_netbumpd
        t1=$(nb_now)
        ready_s=$(elapsed "$t0" "$t1")
        tt0=$(nb_now)
        for tgt in "${RULE_CGS[@]}"; do
                t0=$(nb_now)
                nbctl set "$tgt" 10mbit >/dev/null || nb_fail "netbumpctl set $tgt 10mbit failed"
                t1=$(nb_now)
                times+=("$(elapsed "$t0" "$t1")")
        done
        tt1=$(nb_now)
        for _ in 1 2 3; do
                t0=$(nb_now)
                nbctl list --json >/dev/null || nb_fail "netbumpctl list --json failed"
                t1=$(nb_now)
                list_ms+=("$(elapsed "$t0" "$t1")")
        done
        classes_up=$(tc -n "$NB_NS_A" class show dev "$NB_IF_A" | grep -c '^class htb' || :)
        classes_down=$(tc -n "$NB_NS_A" class show dev "$(nbctl status --json | jq -r '.interfaces[0].ifb')" |
                grep -c '^class htb' || :)
        nb_say "round $round: $NRULES rules set in $(elapsed "$tt0" "$tt1") s; HTB classes: $classes_up up, $classes_down down"

        overhead_runs b "$round"

        t0=$(nb_now)
        nb_stop_netbumpd
        t1=$(nb_now)
        stop_s=$(elapsed "$t0" "$t1")
        record "$(jq -nc --argjson r "$round" --argjson n "$NRULES" --argjson total "$(elapsed "$tt0" "$tt1")" \
                --argjson ready "$ready_s" --argjson stop "$stop_s" --argjson cu "$classes_up" \
                --argjson cd "$classes_down" --args '$ARGS.positional | map(tonumber) as $v |
                {kind: "control", round: $r, rules: $n, set_total_s: $total, daemon_ready_s: $ready,
                 daemon_stop_s: $stop, classes_up: $cu, classes_down: $cd,
                 set_s: $v[0:$n], list_s: $v[$n:]}' "${times[@]}" "${list_ms[@]}")"
}

nb_say "== overhead: $ROUNDS rounds of (a) no netbumpd / (b) netbumpd + $NRULES rules, alternating"
for ((round = 1; round <= ROUNDS; round++)); do
        # a b, b a, a b, ...: a drift of the machine's load hits both variants alike
        if ((round % 2 == 1)); then
                overhead_runs a "$round"
                with_rules "$round"
        else
                with_rules "$round"
                overhead_runs a "$round"
        fi
done

# ---------------------------------------------------------------------------------------------
# 3. the machine, and the report

BENCH_T1=$(nb_now)
# the binaries come from the build directory's source tree: its commit, and whether the tree
# differs from it in what goes into them
src_dir=$(jq -r '.directories.source // empty' "$NB_BUILD_DIR/meson-info/meson-info.json" 2>/dev/null) || :
src_dir=${src_dir:-$TOP}
commit=$(git -C "$src_dir" rev-parse HEAD 2>/dev/null || echo unknown)
if git -C "$src_dir" diff --quiet HEAD -- src bpf include meson.build 2>/dev/null &&
        [[ -z $(git -C "$src_dir" status --porcelain --untracked-files=normal -- src bpf include 2>/dev/null) ]]; then
        dirty=false
else
        dirty=true
fi
record "$(jq -nc --arg commit "$commit" --argjson dirty "$dirty" --arg kernel "$(uname -r)" \
        --arg build "$(cd "$NB_BUILD_DIR" && pwd)" --arg sha "$(sha256sum "$NB_NETBUMPD" | cut -c1-16)" \
        --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" --argjson nproc "$(nproc)" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg iperf "$(iperf3 --version | head -n1)" \
        --arg leaf "$LEAF" --arg load0 "$LOAD_START" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
        --arg affinity "${OVH_AFFINITY[*]}" \
        --arg cc_a "$(nsenter --net="$NB_NETNS_A" cat /proc/sys/net/ipv4/tcp_congestion_control)" \
        --arg cc_b "$(nsenter --net="$NB_NETNS_B" cat /proc/sys/net/ipv4/tcp_congestion_control)" \
        --argjson secs "$(elapsed "$BENCH_T0" "$BENCH_T1")" \
        --argjson rs "$RATE_SECS" --argjson ro "$RATE_OMIT" --argjson warm "$WARM" --argjson send "$END" \
        --argjson slow_bps "$SLOW_BPS" --argjson slow_t "$SLOW_SECS" --argjson slow_end "$SLOW_END" \
        --argjson os "$OVH_SECS" --argjson oo "$OVH_OMIT" --argjson rounds "$ROUNDS" --argjson n "$NRULES" \
        '{kind: "meta", date: $date, duration_s: $secs,
          git: {commit: $commit, dirty_tree: $dirty}, build_dir: $build, netbumpd_sha256_16: $sha,
          machine: {kernel: $kernel, cpu: $cpu, nproc: $nproc, loadavg_start: $load0, loadavg_end: $load},
          iperf3: $iperf, leaf_qdisc: $leaf,
          tcp_congestion_control: {client_ns: $cc_a, server_ns: $cc_b},
          method: {rate: {iperf3_t: $rs, iperf3_O: $ro, sample_start_s: $warm, sample_end_s: $send,
                          slow: {below_bps: $slow_bps, iperf3_t: $slow_t, sample_end_s: $slow_end}},
                   overhead: {iperf3_t: $os, iperf3_O: $oo, iperf3_A: $affinity, rounds: $rounds,
                              rules: $n}}}')"

json_out=${OUT_DIR:-$BENCH_DIR/results}/latest.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md
mkdir -p "$(dirname "$json_out")"
python3 "$BENCH_DIR/report.py" --raw "$RAW" --json "$json_out" --md "$md_out" >&3 ||
        nb_fail "bench/report.py failed"
nb_say "wrote $json_out and $md_out"
((BENCH_ERRORS == 0)) || nb_fail "$BENCH_ERRORS iperf3 run(s) failed"
nb_finish
