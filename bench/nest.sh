#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Nested limits, with real traffic through the nested classes:
#   a. accuracy at each level of a three-level nest: cgroups /a, /a/b, /a/b/c with rules of
#      30mbit, 12mbit and 4mbit (both directions); one bulk transfer (iperf3 -P 2) in each of /a
#      (its own traffic), /a/b (its own) and /a/b/c at once, upload then download (-R). Each rule's
#      class counts its own traffic and that of the rules inside it, so the goal is: c's class
#      within 2% of 4mbit, b's (b and c) within 2% of 12mbit, a's (all three) within 2% of 30mbit;
#   b. a priority over time: `all --up 20mbit`, a UDP "call" at 3 Mbit/s (1400-byte datagrams) at
#      --priority high in one cgroup from t = 2 s to 8 s, a bulk TCP "backup" at --priority low in
#      another from 0 to 12 s. Goals: the call within 5% of its 3 Mbit/s at the link layer while
#      both run, and the backup at >= 95% of 20mbit <= 1 s after the call's end.
# Rates count link-layer bytes, as tc does: the least-squares slope of each rule's class bytes
# (`netbumpctl --json list`, up_stats/down_stats.bytes) sampled every 0.1 s, each sample timed
# around its call (as bench/run.sh does).
#
#   bench/nest.sh [BUILD_DIR]               (default ./build; about 1 minute)
#
# Writes bench/results/nest.json, bench/results/nest-priority.png (gnuplot, when installed:
# apt-get install gnuplot-nox) and its section of BENCHMARKS.md.
# Environment: BENCH_OUT=DIR; BENCH_REPORT_ONLY=JSON measures nothing and writes the section (and
# plot) again from that JSON.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench-nest

OUT_DIR=${BENCH_OUT:-}
out_dir=${OUT_DIR:-$BENCH_DIR/results}
json_out=$out_dir/nest.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md
# a: rates of /a, /a/b, /a/b/c; the transfers' length; the sampled window from their start
RATE_A=30mbit RATE_B=12mbit RATE_C=4mbit
A_SECS=11 A_FROM=2 A_TO=11.7
# b: all's upload limit; the call's rate and datagram; when it starts and how long it lasts; the
# backup's length
ALL=20mbit CALL_RATE=3mbit CALL_LEN=1400 CALL_AT=2 CALL_SECS=6 BACKUP_SECS=12

nb_require_daemon
command -v python3 >/dev/null || nb_skip "python3 is not installed"

if [[ -n ${BENCH_REPORT_ONLY:-} ]]; then
        json_out=$BENCH_REPORT_ONLY
        [[ -s $json_out ]] || nb_fail "no results in $json_out"
        out_dir=$(dirname "$json_out")
        NB_TMP=$(mktemp -d)
else
nb_setup
bench_private_binaries
PORTS=(5201 5202 5203 5204)
nb_start_iperf_servers "${PORTS[@]}"
for cg in a/b/c call backup; do make_cgroup "$cg" >/dev/null; done
TA=cgroup:$(cgroup_rel a) TB=cgroup:$(cgroup_rel a/b) TC=cgroup:$(cgroup_rel a/b/c)
TCALL=cgroup:$(cgroup_rel call) TBACKUP=cgroup:$(cgroup_rel backup)

# sampler.py CTL SOCKET OUT SECONDS STEP TARGET...: every STEP s for SECONDS, one
# `netbumpctl --json list`; a line "TIME up:bytes down:bytes ..." per sample with the two
# counters of each TARGET in order, TIME the middle of the call (seconds since the epoch)
cat >"$NB_TMP/sampler.py" <<'PY'
import json, subprocess, sys, time
ctl, sock, out, secs, step = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
targets = sys.argv[6:]
start = time.time()
k = 0
with open(out, "w") as f:
    while True:
        a = time.time()
        p = subprocess.run([ctl, "--socket", sock, "--json", "list"], capture_output=True, timeout=10)
        b = time.time()
        if p.returncode == 0:
            rules = {r["target"]: r for r in json.loads(p.stdout)["rules"]}
            row = [f"{(a + b) / 2:.6f}"]
            for t in targets:
                r = rules.get(t)
                row += [str(r["up_stats"]["bytes"]), str(r["down_stats"]["bytes"])] if r else ["-1", "-1"]
            f.write(" ".join(row) + "\n")
            f.flush()
        # never behind the clock: a slow sample moves the next one, not the end
        k = max(k + 1, int((time.time() - start) / step) + 1)
        nxt = start + k * step
        if nxt > start + secs:
            break
        time.sleep(max(0.0, nxt - time.time()))
PY
# sampler_start PIDVAR FILE SECONDS TARGET...
sampler_start() {
        local __v=$1 file=$2 secs=$3
        shift 3
        python3 "$NB_TMP/sampler.py" "$NB_NETBUMPCTL" "$NB_SOCK" "$file" "$secs" 0.1 "$@" &
        nb_track_pid $!
        printf -v "$__v" '%s' "$!"
}

# client_start PIDVAR JSON CG IPERF3-ARGS...: an iperf3 client in ns a, in cgroup CG, in the
# background (bounded by timeout(1))
client_start() {
        local __v=$1 json=$2 cg=$3
        shift 3
        _nb_argv -g "$cg"
        (exec timeout -k 5 40 "${_NB_ARGV[@]}" iperf3 -J --connect-timeout 3000 "$@" >"$json" 2>"$json.err") &
        nb_track_pid $!
        printf -v "$__v" '%s' "$!"
}
_servers_idle() {
        [[ -z $(nsenter --net="$NB_NETNS_B" ss -Htun state established "( sport >= :5201 and sport <= :5204 )") ]]
}
# the receiver's bits/s of a finished client's JSON (iperf3 may print a line before the JSON)
goodput() { sed -n '/^{/,$p' "$1" | jq -r '.end.sum_received.bits_per_second // .end.sum.bits_per_second // null'; }

nb_start_netbumpd >/dev/null
RAW=$NB_TMP/raw.jsonl
: >"$RAW"

# --- a. three levels
nbctl set "$TA" "$RATE_A" >/dev/null || nb_fail "set $TA failed"
nbctl set "$TB" "$RATE_B" >/dev/null || nb_fail "set $TB failed"
nbctl set "$TC" "$RATE_C" >/dev/null || nb_fail "set $TC failed"
nb_wait_complete "three levels" || :
tree=$(nbctl --json list | jq -c --arg a "$TA" --arg b "$TB" --arg c "$TC" \
        '[.rules[] | select(.target == $a or .target == $b or .target == $c) | {target, class, parent}]')
nb_say "tree: $tree"
for dir in up down; do
        nb_wait_until 15 _servers_idle || nb_fail "iperf3 servers still busy"
        flag=()
        [[ $dir == down ]] && flag=(-R)
        sampler_start sp "$NB_TMP/a-$dir.txt" $((A_SECS + 2)) "$TA" "$TB" "$TC"
        sleep 0.3
        t0=$EPOCHREALTIME
        k=0
        pids=()
        for cg in a a/b a/b/c; do
                client_start pid "$NB_TMP/a-$dir-$k.json" "$cg" -c "$NB_B4" -p "${PORTS[k]}" -P 2 -t "$A_SECS" -O 1 "${flag[@]}"
                pids+=("$pid")
                k=$((k + 1))
        done
        for pid in "${pids[@]}"; do wait "$pid" || nb_say "an iperf3 client ($dir) exited non-zero"; done
        wait "$sp" || :
        jq -nc --arg dir "$dir" --argjson t0 "$t0" --rawfile s "$NB_TMP/a-$dir.txt" \
                --argjson gp "[$(goodput "$NB_TMP/a-$dir-0.json"),$(goodput "$NB_TMP/a-$dir-1.json"),$(goodput "$NB_TMP/a-$dir-2.json")]" \
                '{kind: "levels", dir: $dir, t0: $t0, goodput_bps: {a: $gp[0], b: $gp[1], c: $gp[2]},
                  samples: [$s | split("\n")[] | select(length > 0) | split(" ") | map(tonumber)]}' >>"$RAW"
        nb_say "levels, $dir: $(wc -l <"$NB_TMP/a-$dir.txt") samples"
done
for t in "$TC" "$TB" "$TA"; do nbctl unset "$t" >/dev/null || nb_fail "unset $t failed"; done

# --- b. priorities over time
nbctl set all --up "$ALL" >/dev/null || nb_fail "set all failed"
nbctl set "$TCALL" --priority high >/dev/null || nb_fail "set $TCALL failed"
nbctl set "$TBACKUP" --priority low >/dev/null || nb_fail "set $TBACKUP failed"
nb_wait_complete "priorities" || :
nb_wait_until 15 _servers_idle || nb_fail "iperf3 servers still busy"
sampler_start sp "$NB_TMP/prio.txt" $((BACKUP_SECS + 2)) "$TCALL" "$TBACKUP" all
sleep 0.3
t0=$EPOCHREALTIME
client_start backup "$NB_TMP/backup.json" backup -c "$NB_B4" -p 5201 -t "$BACKUP_SECS" -O 0
nb_sleep_until "$t0" "$CALL_AT"
t_call=$EPOCHREALTIME
client_start call "$NB_TMP/call.json" call -c "$NB_B4" -p 5204 -u -b "$(rate_to_bps "$CALL_RATE")" -l "$CALL_LEN" -t "$CALL_SECS"
wait "$call" || nb_say "the call's iperf3 exited non-zero: $(head -c 300 "$NB_TMP/call.json.err")"
t_call_exit=$EPOCHREALTIME
wait "$backup" || nb_say "the backup's iperf3 exited non-zero"
wait "$sp" || :
lost=$(sed -n '/^{/,$p' "$NB_TMP/call.json" | jq -r '.end.sum.lost_percent // null') || lost=null
jq -nc --argjson t0 "$t0" --argjson t_call "$t_call" --argjson t_call_exit "$t_call_exit" --argjson lost "${lost:-null}" \
        --rawfile s "$NB_TMP/prio.txt" \
        '{kind: "priority", t0: $t0, t_call_start: $t_call, t_call_exit: $t_call_exit, call_lost_percent: $lost,
          samples: [$s | split("\n")[] | select(length > 0) | split(" ") | map(tonumber)]}' >>"$RAW"
nb_say "priority: $(wc -l <"$NB_TMP/prio.txt") samples, call lost ${lost}%"
LEAF=$(nbctl --json status | jq -r '.leaf_qdisc // "?"')
nb_stop_netbumpd >/dev/null || :

mkdir -p "$out_dir"
python3 - "$RAW" "$json_out" "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$LEAF" "$tree" \
        "$(rate_to_bps "$RATE_A")" "$(rate_to_bps "$RATE_B")" "$(rate_to_bps "$RATE_C")" "$A_FROM" "$A_TO" \
        "$(rate_to_bps "$ALL")" "$(rate_to_bps "$CALL_RATE")" "$CALL_LEN" "$CALL_AT" "$CALL_SECS" "$BACKUP_SECS" \
        "$(nsenter --net="$NB_NETNS_A" cat /proc/sys/net/ipv4/tcp_congestion_control)" <<'PY'
import json, sys, time
(raw, out, commit, leaf, tree, ra, rb, rc, a_from, a_to, all_bps, call_bps, call_len, call_at, call_secs,
 backup_secs, cc) = sys.argv[1:18]
ra, rb, rc, all_bps, call_bps, call_len = int(ra), int(rb), int(rc), int(all_bps), int(call_bps), int(call_len)
a_from, a_to = float(a_from), float(a_to)
runs = [json.loads(l) for l in open(raw) if l.strip()]

def slope(pts):
    """least-squares slope of bytes over time, bit/s"""
    if len(pts) < 3:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mb = sum(b for _, b in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    return 8 * sum((t - mt) * (b - mb) for t, b in pts) / var if var > 0 else None

def at(pts, t):
    """a counter at time t, linear between the samples around it"""
    if t <= pts[0][0]:
        return pts[0][1]
    for (t1, b1), (t2, b2) in zip(pts, pts[1:]):
        if t2 >= t:
            return b1 + (b2 - b1) * (t - t1) / (t2 - t1)
    return pts[-1][1]

def rate(pts, a, b):
    return (at(pts, b) - at(pts, a)) * 8 / (b - a)

res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit, "leaf": leaf,
       "tcp_congestion_control": cc, "tree": json.loads(tree), "levels": [], "priority": None}
limits = {"a": ra, "b": rb, "c": rc}
for run in runs:
    s = run["samples"]
    if run["kind"] == "levels":
        col = 1 if run["dir"] == "up" else 2     # each target: up, down
        t0 = run["t0"]
        win = [x for x in s if t0 + a_from <= x[0] <= t0 + a_to]
        lv = {"dir": run["dir"], "window_s": [a_from, a_to], "samples_in_window": len(win),
              "goodput_bps": run["goodput_bps"], "classes": {}}
        for k, name in enumerate("abc"):
            r = slope([(x[0], x[col + 2 * k]) for x in win])
            lv["classes"][name] = {"limit_bps": limits[name], "rate_bps": r, "ratio": r / limits[name],
                                   "pass": abs(r / limits[name] - 1) <= 0.02}
        lv["own_bps"] = {"a": lv["classes"]["a"]["rate_bps"] - lv["classes"]["b"]["rate_bps"],
                         "b": lv["classes"]["b"]["rate_bps"] - lv["classes"]["c"]["rate_bps"],
                         "c": lv["classes"]["c"]["rate_bps"]}
        lv["series"] = [[round(x[0] - t0, 3)] + [x[col + 2 * k] for k in range(3)] for x in s]
        res["levels"].append(lv)
    else:
        t0 = run["t0"]
        call = [(x[0], x[1]) for x in s]          # up bytes of call, backup, all
        backup = [(x[0], x[3]) for x in s]
        allc = [(x[0], x[5]) for x in s]
        c0, cN = call[0][1], call[-1][1]
        # the call's first and last bytes, as its class saw them: it started before the first sample
        # that moved, and ended after the last sample below its final count (conservative: the
        # recovery below is timed from there)
        i0 = next(i for i, x in enumerate(call) if x[1] > c0)
        iN = max(i for i, x in enumerate(call) if x[1] < cN)
        cs, ce = call[i0 - 1][0], call[iN][0]
        ll = call_bps * (call_len + 42) / call_len   # + UDP 8, IP 20, Ethernet 14 per datagram
        ov = (cs + 0.5, ce - 0.5)
        call_r = slope([p for p in call if ov[0] <= p[0] <= ov[1]])
        backup_r = slope([p for p in backup if ov[0] <= p[0] <= ov[1]])
        all_r = slope([p for p in allc if ov[0] <= p[0] <= ov[1]])
        before_r = slope([p for p in backup if t0 + 1 <= p[0] <= cs - 0.1])
        # recovered: the first sample time T >= the call's end from which the backup's next 0.5 s
        # carry >= 95% of all's limit; 0.1 s sampling
        W = 0.5
        recovered = None
        for tT, _ in backup:
            if tT < ce or tT + W > backup[-1][0]:
                continue
            if rate(backup, tT, tT + W) >= 0.95 * all_bps:
                recovered = tT - ce
                break
        after_r = slope([p for p in backup if ce + 1 <= p[0] <= t0 + float(backup_secs) - 0.3])
        # 0.5 s windows centred on each sample, for the plot
        series = []
        for tT, _ in call:
            if tT - W / 2 < call[0][0] or tT + W / 2 > call[-1][0]:
                continue
            series.append([round(tT - t0, 3), rate(call, tT - W / 2, tT + W / 2), rate(backup, tT - W / 2, tT + W / 2),
                           rate(allc, tT - W / 2, tT + W / 2)])
        res["priority"] = {
            "all_bps": all_bps, "call_bps": call_bps, "call_datagram": call_len, "call_link_layer_bps": ll,
            "call_start_s": round(cs - t0, 3), "call_end_s": round(ce - t0, 3),
            "call_exit_s": round(run["t_call_exit"] - t0, 3), "call_lost_percent": run["call_lost_percent"],
            "overlap_s": [round(ov[0] - t0, 3), round(ov[1] - t0, 3)],
            "call_rate_bps": call_r, "call_ratio": call_r / ll, "call_pass": abs(call_r / ll - 1) <= 0.05,
            "backup_rate_bps": backup_r, "backup_expected_bps": all_bps - ll, "all_rate_bps": all_r,
            "backup_before_bps": before_r, "backup_after_bps": after_r,
            "recovered_s": recovered, "recovered_pass": recovered is not None and recovered <= 1.0,
            "window_s": W,
            "samples": [[round(x[0] - t0, 3), x[1], x[3], x[5]] for x in s],
            "series_bps": series}
json.dump(res, open(out, "w"), indent=1)
PY
fi

# the plot: the two classes' rates (0.5 s windows) over time
jq -r '.priority.series_bps[] | "\(.[0]) \(.[1] / 1e6) \(.[2] / 1e6) \(.[3] / 1e6)"' "$json_out" >"$NB_TMP/prio.dat"
if command -v gnuplot >/dev/null; then
        read -r cs ce all ll < <(jq -r '.priority | "\(.call_start_s) \(.call_end_s) \(.all_bps / 1e6) \(.call_link_layer_bps / 1e6)"' "$json_out")
        gnuplot <<GP || nb_say "gnuplot failed; no plot"
set terminal pngcairo size 800,400 noenhanced
set output "$out_dir/nest-priority.png"
set title "all --up ${all}mbit: a call at high priority (${cs}-${ce} s) and a backup at low priority"
set xlabel "seconds since the backup began"
set ylabel "Mbit/s (link layer, 0.5 s windows)"
set yrange [0:*]
set key center right
set grid
set arrow from $cs, graph 0 to $cs, graph 1 nohead dashtype 2 linecolor rgb "gray"
set arrow from $ce, graph 0 to $ce, graph 1 nohead dashtype 2 linecolor rgb "gray"
plot "$NB_TMP/prio.dat" using 1:3 with lines linewidth 2 title "backup (low)", \
     "$NB_TMP/prio.dat" using 1:2 with lines linewidth 2 title "call (high)", \
     $all with lines linecolor rgb "black" dashtype 2 title "all's limit", \
     $ll with lines linecolor rgb "gray" dashtype 2 title "the call's rate"
GP
fi

section=$(jq -r '
        def r(n): if . == null then "-" else . * pow(10; n) | round / pow(10; n) end;
        def pf(c): if c then "pass" else "**MISS**" end;
        def m: . / 1e6 | r(3);
        .priority as $p
        | "## Nested limits and priorities (`bench/nest.sh`)",
        "",
        "\(.date), commit \(.commit), leaf \(.leaf), TCP \(.tcp_congestion_control). Rates count link-layer bytes as tc does: the",
        "least-squares slope of each rule'"'"'s class bytes (`netbumpctl --json list`, `up_stats`/`down_stats`)",
        "sampled every 0.1 s, each sample timed around its call. A rule'"'"'s class counts its own traffic and",
        "that of the rules nested in it.",
        "",
        "### Three levels",
        "",
        "Cgroups /a, /a/b, /a/b/c with rules of 30mbit, 12mbit and 4mbit (both directions; `list` puts",
        "each inside the one before); one `iperf3 -P 2 -O 1 -t 11` in each of the three at once, so /a",
        "and /a/b carry traffic of their own besides their children'"'"'s. Window: \(.levels[0].window_s[0]) to \(.levels[0].window_s[1]) s after",
        "the transfers began. Goal: each class within 2% of its limit. Own = a class less the class inside it.",
        "",
        "| dir | class | limit | achieved Mbit/s | achieved / limit | goal | own traffic Mbit/s | iperf3 goodput Mbit/s |",
        "|---|---|---:|---:|---:|---|---:|---:|",
        (.levels[] as $l | ["a", "b", "c"][] as $k | $l.classes[$k]
         | "| \($l.dir) | /a\({"a": "", "b": "/b", "c": "/b/c"}[$k]) | \(.limit_bps / 1e6)mbit | \(.rate_bps | m) | \(.ratio | r(4)) | \(pf(.pass)) | \($l.own_bps[$k] | m) | \($l.goodput_bps[$k] | m) |"),
        "",
        "### A call at high priority beside a backup at low priority",
        "",
        "`all --up \($p.all_bps / 1e6)mbit`; a UDP call (`iperf3 -u -b \($p.call_bps / 1e6)M -l \($p.call_datagram)`) from a cgroup",
        "with `--priority high` and a bulk TCP backup from another with `--priority low`, both without a limit",
        "of their own. The call'"'"'s \($p.call_bps / 1e6) Mbit/s of payload is \($p.call_link_layer_bps | m) Mbit/s at the link layer (42 bytes of",
        "UDP, IP and Ethernet per datagram). Call: \($p.call_start_s) to \($p.call_end_s) s after the backup began, as its class",
        "counted it; overlap: \($p.overlap_s[0]) to \($p.overlap_s[1]) s. Recovered: the first sample time T from the call'"'"'s end",
        "such that the backup carries ≥ 95% of \($p.all_bps / 1e6)mbit in [T, T + \($p.window_s) s]; the samples are 0.1 s apart,",
        "so 0 means within the first of them.",
        "",
        "| measurement | value | goal |",
        "|---|---:|---|",
        "| call during the overlap | \($p.call_rate_bps | m) Mbit/s = \($p.call_ratio | r(4)) × \($p.call_link_layer_bps | m) | within 5%: \(pf($p.call_pass)) |",
        "| call datagrams lost (iperf3) | \($p.call_lost_percent | r(2))% | |",
        "| backup during the overlap | \($p.backup_rate_bps | m) Mbit/s (all less the call: \($p.backup_expected_bps | m)) | |",
        "| both together during the overlap (all'"'"'s class) | \($p.all_rate_bps | m) Mbit/s | |",
        "| backup before the call / from 1 s after it | \($p.backup_before_bps | m) / \($p.backup_after_bps | m) Mbit/s | |",
        "| call'"'"'s end → backup at ≥ 95% of \($p.all_bps / 1e6)mbit | \($p.recovered_s | r(2)) s | ≤ 1 s: \(pf($p.recovered_pass)) |",
        ""' "$json_out")
[[ -f $out_dir/nest-priority.png ]] && section+=$'\n\n''![nest-priority](bench/results/nest-priority.png)'$'\n'

bench_write_section nest "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the nest section of $md_out"
nb_finish
