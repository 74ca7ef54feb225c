# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced by bench/accounting.sh and bench/scope.sh (after tests/integration/lib.sh): the
# throughput rounds they share. One iperf3 flow at a time from ns a to the server in ns b on
# PORT, for SECS seconds after BENCH_OMIT (1) omitted, CPUs as AFFINITY says; the caller sets
# PORT, SECS, AFFINITY, WORKLOADS and RAW, and defines start_variant VARIANT (a fresh netbumpd).

BENCH_OMIT=${BENCH_OMIT:-1}
BENCH_ERRORS=0

# bench_server_idle: no connection left on the server's port (the last run's has closed)
bench_server_idle() {
        [[ -z $(nsenter --net="$NB_NETNS_B" ss -Htn state established "( sport = :$PORT )") ]]
}

# bench_run_workload W JSON ARGS...: one iperf3 client of workload W (tcp-up, tcp-down, udp-up,
# udp-down: 64-byte datagrams as fast as it sends them) run as _nb_argv ARGS... says (-g CGROUP,
# -u UID), its JSON in JSON; prints bits/s received (tcp) or datagrams/s received (udp), "null"
# and returns 1 when it failed
bench_run_workload() {
        local w=$1 json=$2 args=(-c "$NB_B4" -p "$PORT" -t "$SECS" -O "$BENCH_OMIT" "${AFFINITY[@]}")
        shift 2
        case $w in *-down) args+=(-R) ;; esac
        case $w in udp-*) args+=(-u -b 0 -l 64) ;; esac
        nb_wait_until 15 bench_server_idle || nb_fail "iperf3 server still busy"
        _nb_argv "$@"
        if ! timeout -k 5 $((SECS + BENCH_OMIT + 20)) "${_NB_ARGV[@]}" iperf3 -J --connect-timeout 3000 "${args[@]}" \
                >"$json" 2>"$json.err"; then
                nb_say "iperf3 $w failed: $(jq -r '.error // empty' "$json" 2>/dev/null) $(cat "$json.err")"
                echo null
                return 1
        fi
        case $w in
        tcp-*) jq -r '.end.sum_received.bits_per_second | floor' "$json" ;;
        udp-*) jq -r '.end.sum | ((.packets - .lost_packets) / .seconds) | floor' "$json" ;;
        esac
}

# bench_rounds ROUNDS ORDER_FN LABEL KIND ARGS...: ROUNDS rounds; ORDER_FN ROUND sets the array
# `order` to the variants of that round in the order they run; each variant gets start_variant,
# every workload once (bench_run_workload W JSON ARGS...), then netbumpd stopped. One line per
# run in RAW: {"kind":KIND (when not empty),"round","variant","workload","value"}. LABEL goes
# before the variant in the log ("accounting " gives "round 1, accounting on, tcp-up: ...").
# Failed runs are counted in BENCH_ERRORS.
bench_rounds() {
        local rounds=$1 order_fn=$2 label=$3 kind=$4 round v w val order=()
        shift 4
        for ((round = 1; round <= rounds; round++)); do
                "$order_fn" "$round"
                for v in "${order[@]}"; do
                        start_variant "$v"
                        for w in "${WORKLOADS[@]}"; do
                                val=$(bench_run_workload "$w" "$NB_TMP/$w-$v-$round.json" "$@") ||
                                        BENCH_ERRORS=$((BENCH_ERRORS + 1))
                                printf '{%s"round":%d,"variant":"%s","workload":"%s","value":%s}\n' \
                                        "${kind:+\"kind\":\"$kind\",}" "$round" "$v" "$w" "${val:-null}" >>"$RAW"
                                nb_say "round $round, $label$v, $w: $val"
                        done
                        nb_stop_netbumpd >/dev/null || :
                done
        done
}
