#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Latency under load: the round-trip time of a small TCP request/response (one byte each way, a
# TCP_RR done by bench/latency.sh's own python3 client) through a target that 8 bulk iperf3 flows
# saturate, netbump against what a user would set up instead: plain HTB with its default pfifo
# leaf (txqueuelen packets) at the same rate on the sending side of the veth.
#
#   bench/latency.sh [BUILD_DIR]            (default ./build; about 2 minutes)
#
# Per direction (up: bulk and requests leave ns a; down: iperf3 -R, the bulk comes into ns a) and
# variant, alternated over BENCH_ROUNDS rounds (default 2): idle RTT, then RTT while the 8 flows
# run (BENCH_SECS, default 8). Added p99 = loaded p99 - idle p99 of the same round and variant.
# Goal: netbump adds <= 5 ms at the 99th percentile at 100mbit.
# Writes bench/results/latency.json and its section of BENCHMARKS.md (between its markers).
# Environment: BENCH_ROUNDS=2 BENCH_SECS=8 BENCH_RATE=100mbit BENCH_OUT=DIR

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench-latency

ROUNDS=${BENCH_ROUNDS:-2}
SECS=${BENCH_SECS:-8}
RATE=${BENCH_RATE:-100mbit}
PORT=5201
RR_PORT=7007
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/latency.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

nb_require_daemon
command -v python3 >/dev/null || nb_skip "python3 is not installed"

nb_setup
bench_private_binaries
nb_start_iperf_servers "$PORT"
CG=$(make_cgroup target)
RAW=$NB_TMP/raw.jsonl
: >"$RAW"

# the request/response pair: the server echoes each byte; the client sends one byte, waits for it,
# records the time, pauses 5 ms, for SECS seconds, and prints p50/p90/p99/max in ms
cat >"$NB_TMP/rr.py" <<'PY'
import json, socket, sys, time
if sys.argv[1] == "server":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], int(sys.argv[3])))
    s.listen(8)
    while True:
        c, _ = s.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(30)
        try:
            while True:
                b = c.recv(1)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        c.close()
else:
    addr, port, secs = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    c = socket.create_connection((addr, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts, lost, end = [], 0, time.monotonic() + secs
    while time.monotonic() < end:
        t0 = time.monotonic()
        c.sendall(b"x")
        if c.recv(1) != b"x":
            lost += 1
            break
        rtts.append((time.monotonic() - t0) * 1000)
        time.sleep(0.005)
    rtts.sort()
    q = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))] if rtts else None
    print(json.dumps({"n": len(rtts), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": rtts[-1] if rtts else None}))
PY
nsenter --net="$NB_NETNS_B" python3 "$NB_TMP/rr.py" server "$NB_B4" "$RR_PORT" >"$NB_TMP/rr-server.log" 2>&1 &
nb_track_pid $!
nb_wait_until 5 eval '[[ -n $(nsenter --net="$NB_NETNS_B" ss -Hltn "sport = :$RR_PORT") ]]' || nb_fail "rr server does not listen"

rr() { # rr SECS: one RR client in the target cgroup, prints its JSON
        run_in_cgroup "$CG" timeout -k 2 $(($1 + 10)) python3 "$NB_TMP/rr.py" client "$NB_B4" "$RR_PORT" "$1"
}

_server_idle() { [[ -z $(nsenter --net="$NB_NETNS_B" ss -Htn state established "( sport = :$PORT )") ]]; }

# variant VARIANT on|off
htb_on() { # plain HTB, default pfifo leaf: the sender's side of the veth
        local ns=$1 dev=$2
        ip netns exec "$ns" tc qdisc replace dev "$dev" root handle 1: htb default 10
        ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:10 htb rate "$RATE"
        ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:10 handle 10: pfifo
}
htb_off() { ip netns exec "$1" tc qdisc del dev "$2" root 2>/dev/null || :; }

variant_on() {
        case $1 in
        netbump)
                nb_start_netbumpd >/dev/null
                nbctl set "cgroup:$(cgroup_rel "$CG")" "$RATE" >/dev/null || nb_fail "netbumpctl set failed"
                ;;
        htb) htb_on "$NB_NS_A" "$NB_IF_A"; htb_on "$NB_NS_B" "$NB_IF_B" ;;
        esac
}
variant_off() {
        case $1 in
        netbump) nb_stop_netbumpd >/dev/null || : ;;
        htb) htb_off "$NB_NS_A" "$NB_IF_A"; htb_off "$NB_NS_B" "$NB_IF_B" ;;
        esac
}

LEAF=
for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2)); then order=(netbump htb); else order=(htb netbump); fi
        for v in "${order[@]}"; do
                variant_on "$v"
                [[ $v == netbump && -z $LEAF ]] && LEAF=$(nbctl --json status | jq -r '.leaf_qdisc // "?"')
                for dir in up down; do
                        idle=$(rr 2) || nb_fail "rr client failed"
                        nb_wait_until 15 _server_idle || nb_fail "iperf3 server still busy"
                        args=(-P 8 -t $((SECS + 2)) -O 0)
                        [[ $dir == down ]] && args+=(-R)
                        _nb_argv -g "$CG"
                        timeout -k 5 $((SECS + 25)) "${_NB_ARGV[@]}" iperf3 -J --connect-timeout 3000 -c "$NB_B4" -p "$PORT" "${args[@]}" \
                                >"$NB_TMP/bulk-$v-$dir-$round.json" 2>&1 &
                        bulk=$!
                        sleep 1.5
                        loaded=$(rr "$SECS") || nb_fail "rr client failed"
                        wait "$bulk" || nb_say "iperf3 bulk exited non-zero"
                        bps=$(jq -r '.end.sum_received.bits_per_second // 0 | floor' "$NB_TMP/bulk-$v-$dir-$round.json" 2>/dev/null || echo 0)
                        retr=$(jq -r '.end.sum_sent.retransmits // 0' "$NB_TMP/bulk-$v-$dir-$round.json" 2>/dev/null || echo 0)
                        printf '{"round":%d,"variant":"%s","dir":"%s","idle":%s,"loaded":%s,"bulk_bps":%s,"retransmits":%s}\n' \
                                "$round" "$v" "$dir" "$idle" "$loaded" "$bps" "$retr" >>"$RAW"
                        nb_say "round $round $v $dir: idle $(jq -c . <<<"$idle") loaded $(jq -c . <<<"$loaded") bulk $(nb_mbit "$bps") Mbit/s"
                        if [[ $v == netbump && $round == 1 ]]; then
                                { echo "== $dir"; ip netns exec "$NB_NS_A" tc -s qdisc show; } >>"$NB_TMP/tc-netbump.txt" 2>&1
                        fi
                done
                variant_off "$v"
        done
done

mkdir -p "$(dirname "$json_out")"
jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" --arg rate "$RATE" \
        --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" --arg leaf "$LEAF" \
        --arg cc "$(cat /proc/sys/net/ipv4/tcp_congestion_control)" --argjson secs "$SECS" --arg tc "$(cat "$NB_TMP/tc-netbump.txt" 2>/dev/null)" '
        {date: $date, kernel: $kernel, commit: $commit, rate: $rate, leaf: $leaf, cc: $cc, seconds: $secs,
         runs: map(. + {added_p99: (.loaded.p99 - .idle.p99), added_p50: (.loaded.p50 - .idle.p50)}), tc_netbump: $tc}' \
        "$RAW" >"$json_out"

section=$(jq -r '
        def r(n): if . == null then "-" else . * pow(10; n) | round / pow(10; n) end;
        . as $root
        | ([.runs[] | select(.variant == "netbump") | .added_p99] | max) as $worst
        | "## Latency under load (`bench/latency.sh`)",
        "",
        "\(.date), kernel \(.kernel), commit \(.commit), TCP \(.cc). A cgroup limited to \(.rate) both ways; 8 bulk",
        "iperf3 flows (`-P 8`) from it saturate the limit while a TCP request/response client in the same",
        "cgroup (1 byte each way, TCP_NODELAY, 5 ms pause) measures the round trip for \(.seconds) s. Idle: the",
        "same client before the bulk starts. netbump (leaf: \(.leaf)) against plain HTB at the same rate",
        "with its default pfifo leaf (1000 packets) on the sending side of the veth, alternated per round.",
        "Added = loaded - idle of the same round.",
        "",
        "| round | variant | dir | idle p50 ms | loaded p50 ms | loaded p99 ms | added p99 ms | bulk Mbit/s | retransmits |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
        (.runs[] | "| \(.round) | \(.variant) | \(.dir) | \(.idle.p50 | r(3)) | \(.loaded.p50 | r(2)) | \(.loaded.p99 | r(2)) | \(.added_p99 | r(2)) | \(.bulk_bps / 1e6 | r(1)) | \(.retransmits) |"),
        "",
        ( [.runs[] | select(.dir == "up" or .dir == "down")] as $x
          | ["up", "down"][] as $d
          | ([$x[] | select(.variant == "netbump" and .dir == $d) | .added_p99]) as $n
          | ([$x[] | select(.variant == "htb" and .dir == $d) | .added_p99]) as $h
          | "- \($d): added p99 netbump \($n | min | r(2))-\($n | max | r(2)) ms, plain HTB+pfifo \($h | min | r(2))-\($h | max | r(2)) ms"),
        "",
        "Goal: added p99 <= 5 ms at \(.rate) with netbump: **\(if $worst != null and $worst <= 5 then "pass" else "MISS" end)** (worst \($worst | r(2)) ms).",
        ""' "$json_out")
# how: the leaves netbump put under the rule's class, and how long the bulk one holds at the rate
leaf_limit=$(jq -r '.tc_netbump' "$json_out" | awk '/qdisc bfifo .* parent 6e62:/ { for (i = 1; i <= NF; i++) if ($i == "limit") { sub(/b$/, "", $(i + 1)); print $(i + 1); exit } }')
if [[ -n $leaf_limit ]]; then
        bps=$(rate_to_bps "$RATE")
        qms=$(awk -v l="$leaf_limit" -v b="$bps" 'BEGIN { printf "%.0f", l * 8 * 1000 / b }')
        section+=$'\n'"How: this kernel has no fq_codel (nor sfq, fq, cake, prio), so the bulk queue of a class is a
byte FIFO sized to about 50 ms at the class rate (here \`bfifo limit ${leaf_limit}b\` = ${qms} ms at $RATE),
which the 8 flows keep full: the plain HTB's 1000-packet pfifo shows what a packet waits behind it.
netbump's rule class has two HTB leaves that share its rate (src/netbumpd/iface.c): packets of at most
256 bytes (\`NB_SMALL_LEN\`: the requests and replies here, TCP ACKs, DNS, keystrokes) go to one that
HTB serves first, and wait behind at most the frame being sent; everything else to the bulk FIFO.
The bulk flows' rate is unchanged (bulk Mbit/s column)."$'\n'
fi

bench_write_section latency "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the latency section of $md_out"
nb_finish
