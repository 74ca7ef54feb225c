#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A restart after SIGKILL with 10,000 rules, while limited transfers run:
#   - BENCH_USERS (10,000) user@ rules of uids without processes (loaded on one Varlink connection,
#     as bench/control.sh does) and an 8mbit rule on each of two cgroups, a download (-R) in one
#     and an upload in the other;
#   - SIGKILL of netbumpd 4 s into the transfers and a new start at once, twice:
#       adopt    the new run takes over the pinned programs, maps and classes (src/netbumpd/bpf.c);
#       rebuild  the pins are removed between the kill and the start, so the new run cannot take
#                anything over: the old path, which makes every class again from the state file;
#   - measured: from the launch until `Status` answers and until `List` holds every rule; each
#     limited flow's worst 100 ms and 500 ms around the kill, and what passed above the limit
#     ("unshaped bytes"); whether each rule's class counter went back (a class made anew starts
#     from 0) and kept its class id.
# The flows' bytes come from the server side of each TCP connection (`ss -ti` in ns b: bytes_acked
# of the download's sender, bytes_received of the upload's receiver), sampled every 0.1 s: unlike
# the class counters they exist in both cases, also while there is no class. Payload bytes count
# as link-layer bytes x 1514/1448 (full frames).
#
#   bench/restart.sh [BUILD_DIR]            (default ./build; about 3-4 minutes)
#
# Writes bench/results/restart.json and its section of BENCHMARKS.md.
# Environment: BENCH_USERS=10000 BENCH_RATE=8mbit BENCH_LOAD_BUDGET=120 (seconds: loading stops
#   at the next 1000 after that) BENCH_OUT=DIR; BENCH_REPORT_ONLY=JSON writes the section again.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench-restart

USERS=${BENCH_USERS:-10000}
RATE=${BENCH_RATE:-8mbit}
PACE=${BENCH_PACE:-200mbit}
BUDGET=${BENCH_LOAD_BUDGET:-120}
KILL_AT=4       # seconds into the transfers
AFTER=3         # seconds of transfer after the restarted run holds every rule
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/restart.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

nb_require_daemon
command -v python3 >/dev/null || nb_skip "python3 is not installed"

if [[ -n ${BENCH_REPORT_ONLY:-} ]]; then
        json_out=$BENCH_REPORT_ONLY
        [[ -s $json_out ]] || nb_fail "no results in $json_out"
else
nb_setup
bench_private_binaries
nb_start_iperf_servers 5201 5202
make_cgroup down >/dev/null
make_cgroup up >/dev/null
TD=cgroup:$(cgroup_rel down) TU=cgroup:$(cgroup_rel up)

cat >"$NB_TMP/vl.py" <<'PY'
# vl.py SOCKET users FIRST COUNT BPS BUDGET   Set user@UID for COUNT uids from FIRST, one connection
# vl.py SOCKET rules TARGET...                 one List: the count, and each TARGET's class and bytes
# vl.py SOCKET wait COUNT TIMEOUT TARGET...    reads the launch time (epoch s) from stdin, then times
#                                              until Status answers and until List holds COUNT rules,
#                                              with each TARGET's class and bytes in that List
import json, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

class Conn:
    def __init__(self, s):
        self.s, self.buf = s, b""
    def call(self, method, params):
        self.s.sendall(json.dumps({"method": "io.netbump.Manager." + method, "parameters": params}).encode() + b"\0")
        while b"\0" not in self.buf:
            d = self.s.recv(1 << 20)
            if not d:
                raise ConnectionError("connection closed")
            self.buf += d
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

def rules(c):
    return c.call("List", {}).get("parameters", {}).get("rules", [])

def targets(rs, names):
    by = {r["target"]: r for r in rs}
    return {t: {"class": by[t]["class"], "up": by[t]["up_stats"]["bytes"], "down": by[t]["down_stats"]["bytes"]}
            for t in names if t in by}

path, cmd = sys.argv[1], sys.argv[2]
if cmd == "users":
    first, count, bps, budget = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    c = Conn(connect(path))
    t0, n, errors = time.monotonic(), 0, {}
    for i in range(count):
        if i and i % 1000 == 0 and time.monotonic() - t0 > budget:
            break
        r = c.call("Set", {"target": f"user@{first + i}", "up": bps, "down": bps})
        if "error" in r:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
        else:
            n += 1
    print(json.dumps({"asked": count, "set": n, "seconds": time.monotonic() - t0, "errors": errors}))
elif cmd == "rules":
    t = time.time()   # the counters are read as the call begins
    rs = rules(Conn(connect(path)))
    print(json.dumps({"count": len(rs), "t": t, "targets": targets(rs, sys.argv[3:])}))
elif cmd == "wait":
    want, timeout = int(sys.argv[3]), float(sys.argv[4])
    launch = float(sys.stdin.readline())
    end = launch + timeout
    res = {"launch": launch, "status": None, "list": None, "count": None, "connect_attempts": 0, "targets": {}}
    c = None
    while time.time() < end:
        try:
            c = Conn(connect(path))
            res["connect_attempts"] += 1
            c.s.settimeout(max(1.0, end - time.time()))
            c.call("Status", {})
            res["status"] = time.time()
            break
        except (OSError, ConnectionError, ValueError):
            res["connect_attempts"] += 1
            c = None
            time.sleep(0.005)
    while c and time.time() < end:
        rs = rules(c)
        res["count"] = len(rs)
        if len(rs) >= want:
            res["list"] = time.time()
            res["targets"] = targets(rs, sys.argv[5:])
            break
        time.sleep(0.05)
    print(json.dumps(res))
PY
vl() { timeout -k 2 400 python3 "$NB_TMP/vl.py" "$NB_SOCK" "$@"; }

# ss.py OUT SECONDS: in ns b, every 0.1 s "TIME DOWN UP": bytes_acked of the server sockets on
# port 5201 (the download's sender) and bytes_received of those on 5202 (the upload's receiver)
cat >"$NB_TMP/ss.py" <<'PY'
import re, subprocess, sys, time
out, secs = sys.argv[1], float(sys.argv[2])
start, k = time.time(), 0
with open(out, "w") as f:
    while time.time() < start + secs:
        a = time.time()
        p = subprocess.run(["ss", "-Htin", "state", "established", "( sport = :5201 or sport = :5202 )"],
                           capture_output=True, text=True, timeout=5)
        b = time.time()
        down = up = 0
        port = None
        for line in p.stdout.splitlines():
            m = re.match(r"\s*\d+\s+\d+\s+\S+:(\d+)\s", line)
            if m:
                port = int(m.group(1))
                continue
            if port == 5201:
                down += int((re.search(r"bytes_acked:(\d+)", line) or [0, 0])[1])
            elif port == 5202:
                up += int((re.search(r"bytes_received:(\d+)", line) or [0, 0])[1])
        f.write(f"{(a + b) / 2:.6f} {down} {up}\n")
        f.flush()
        k = max(k + 1, int((time.time() - start) / 0.1) + 1)
        time.sleep(max(0.0, start + k * 0.1 - time.time()))
PY

_servers_idle() { [[ -z $(nsenter --net="$NB_NETNS_B" ss -Htn state established "( sport = :5201 or sport = :5202 )") ]]; }

# pin_dir: where netbumpd pins (bpf.c pin_dir_prepare()): /sys/fs/bpf/netbump-<FNV-1a of the state
# directory> on a host whose /sys/fs/bpf is a bpffs, else the bpffs it mounts in its state directory
pin_dir() {
        if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]]; then
                python3 -c 'import sys
h = 1469598103934665603
for c in sys.argv[1].encode(): h = ((h ^ c) * 1099511628211) & (2**64 - 1)
print("/sys/fs/bpf/netbump-%016x" % h)' "$NB_STATE"
        else
                echo "$NB_STATE/bpf"
        fi
}

# unpin: remove what netbumpd pinned (a bpffs of its own also holds files of the kernel's, which stay)
unpin() {
        local p
        for p in sock_rules cgroup_rules uid_rules sk_tags ifaces acct events bss \
                link_sock_create link_egress link_sock_release; do
                rm -f "$PINS/$p"
        done
}

# launch: netbumpd in ns a as nb_start_netbumpd starts it, without waiting for it
launch() {
        echo "=== start $(date +%T.%N) ===" >>"$NB_TMP/netbumpd.log"
        nsenter --net="$NB_NETNS_A" "$NB_NETBUMPD" --foreground --socket "$NB_SOCK" \
                --state-dir "$NB_STATE" --cgroup-root "$NB_CGROOT" >>"$NB_TMP/netbumpd.log" 2>&1 &
        NB_DAEMON_PID=$!
        nb_track_pid "$NB_DAEMON_PID"
}

nb_start_netbumpd >/dev/null
nbctl set "$TD" "$RATE" >/dev/null || nb_fail "set $TD failed"
nbctl set "$TU" "$RATE" >/dev/null || nb_fail "set $TU failed"
nb_info "loading $USERS user rules"
load=$(vl users 20000 "$USERS" 4000000 "$BUDGET") || nb_fail "loading failed"
nb_say "loaded: $load"
NB_COMPLETE_WAIT=60 nb_wait_complete "after loading" || :
HAVE=$(vl rules | jq .count)
PINS=$(pin_dir)
nb_say "$HAVE rules; pins in $PINS: $(ls "$PINS" 2>/dev/null | tr '\n' ' ')"
RAW=$NB_TMP/raw.jsonl
: >"$RAW"

for mode in adopt rebuild; do
        nb_wait_until 15 _servers_idle || nb_fail "iperf3 servers still busy"
        nsenter --net="$NB_NETNS_B" python3 "$NB_TMP/ss.py" "$NB_TMP/ss-$mode.txt" 400 &
        ssp=$!
        nb_track_pid "$ssp"
        sleep 0.3
        t0=$EPOCHREALTIME
        # long enough for any restart; ended (SIGTERM, which timeout(1) passes on) once it is over
        _nb_argv -g down
        (exec timeout -k 5 400 "${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p 5201 -R -t 380 -b "$(rate_to_bps "$PACE")" >/dev/null 2>&1) &
        cd=$!
        nb_track_pid "$cd"
        _nb_argv -g up
        (exec timeout -k 5 400 "${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p 5202 -t 380 -b "$(rate_to_bps "$PACE")" >/dev/null 2>&1) &
        cu=$!
        nb_track_pid "$cu"
        nb_sleep_until "$t0" "$KILL_AT"
        before=$(vl rules "$TD" "$TU")
        fifo=$NB_TMP/launch-$mode
        mkfifo "$fifo"
        (exec timeout -k 2 400 python3 "$NB_TMP/vl.py" "$NB_SOCK" wait "$HAVE" 300 "$TD" "$TU" <"$fifo" >"$NB_TMP/wait-$mode.json") &
        waiter=$!
        nb_track_pid "$waiter"
        exec 4>"$fifo"
        t_kill=$EPOCHREALTIME
        kill -KILL "$NB_DAEMON_PID"
        wait "$NB_DAEMON_PID" 2>/dev/null || :
        NB_DAEMON_PID=
        # the old path: nothing left to take over (the links go with their last pin)
        [[ $mode == rebuild ]] && unpin
        t_launch=$EPOCHREALTIME
        launch
        echo "$t_launch" >&4
        exec 4>&-
        wait "$waiter" || nb_fail "$mode: waiting for the restarted netbumpd failed"
        w=$(cat "$NB_TMP/wait-$mode.json")
        nb_say "$mode: $w"
        [[ $(jq -r .list <<<"$w") != null ]] || nb_record_failure "$mode: not all $HAVE rules back within 300 s"
        nb_alive "$NB_DAEMON_PID" || nb_fail "$mode: the restarted netbumpd exited"
        sleep "$AFTER"
        after=$(vl rules "$TD" "$TU")
        t_end=$EPOCHREALTIME
        kill -TERM "$cd" "$cu" 2>/dev/null || :
        wait "$cd" "$cu" 2>/dev/null || :
        kill -TERM "$ssp" 2>/dev/null || :
        wait "$ssp" 2>/dev/null || :
        jq -nc --arg mode "$mode" --argjson t0 "$t0" --argjson t_kill "$t_kill" --argjson t_launch "$t_launch" \
                --argjson t_end "$t_end" --argjson wait "$w" --argjson before "$before" --argjson after "$after" \
                --rawfile s "$NB_TMP/ss-$mode.txt" \
                '{mode: $mode, t0: $t0, t_kill: $t_kill, t_launch: $t_launch, t_end: $t_end, wait: $wait,
                  before: $before, after: $after,
                  samples: [$s | split("\n")[] | select(length > 0) | split(" ") | map(tonumber)]}' >>"$RAW"
done
classes=$(tc -n "$NB_NS_A" class show dev "$NB_IF_A" | grep -c . || :)
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$NB_DAEMON_PID/status")
# SIGKILL, as bench/control.sh ends: a SIGTERM removes every class one by one; the namespaces go
# with the teardown, the pins here
kill -KILL "$NB_DAEMON_PID"
wait "$NB_DAEMON_PID" 2>/dev/null || :
NB_DAEMON_PID=
unpin
if [[ $PINS == /sys/fs/bpf/* ]]; then rmdir "$PINS" 2>/dev/null || :; fi

mkdir -p "$(dirname "$json_out")"
python3 - "$RAW" "$json_out" "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(rate_to_bps "$RATE")" \
        "$USERS" "$HAVE" "$load" "$classes" "$rss" "$TD" "$TU" "$(rate_to_bps "$PACE")" <<'PY'
import bisect, json, sys, time
raw, out, commit, limit, users, have, load, classes, rss, td, tu, pace = sys.argv[1:13]
limit, have, pace = int(limit), int(have), int(pace)
LL = 1514 / 1448          # link-layer bytes per payload byte of a full frame
runs = [json.loads(l) for l in open(raw) if l.strip()]

def at(pts, t):
    """a counter at time t, linear between the samples around it"""
    i = bisect.bisect_left(pts, (t,))
    if i <= 0:
        return pts[0][1]
    if i >= len(pts):
        return pts[-1][1]
    (t1, b1), (t2, b2) = pts[i - 1], pts[i]
    return b1 + (b2 - b1) * (t - t1) / (t2 - t1)

def worst(pts, a, b, w):
    """the worst window of w seconds starting at a sample in [a, b - w]: (start, bits/s, bytes
    above limit x w)"""
    best = None
    for t, _ in pts:
        if t < a or t + w > b:
            continue
        by = (at(pts, t + w) - at(pts, t)) * LL
        if best is None or by > best[1]:
            best = (t, by)
    if best is None:
        return None
    return {"at_s": best[0], "bps": best[1] * 8 / w, "ratio": best[1] * 8 / w / limit,
            "unshaped_bytes": max(0.0, best[1] - limit / 8 * w)}

def excess(pts, a, b):
    """the most bytes above the limit over any stretch between two samples in [a, b]"""
    p = [(t, v * LL) for t, v in pts if a <= t <= b]
    best, low = 0.0, None
    for t, v in p:
        x = v - limit / 8 * (t - a)    # bytes above the limit's line; its rise is the excess
        if low is not None:
            best = max(best, x - low)
        low = x if low is None else min(low, x)
    return best

res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit, "limit_bps": limit, "pace_bps": pace,
       "users_asked": int(users), "rules": have, "load": json.loads(load), "htb_classes_on_veth": int(classes),
       "rss_kib_after": int(rss or 0), "runs": []}
for run in runs:
    s, w = run["samples"], run["wait"]
    t0, tk, tl = run["t0"], run["t_kill"], run["t_launch"]
    ready = max(x for x in (w["status"], w["list"], tl) if x is not None)
    span = (tk - 1.0, ready + 2.0)            # around the kill
    quiet = (t0 + 1.5, tk - 0.3)              # before it: what the windows read without a kill
    r = {"mode": run["mode"], "kill_to_launch_s": tl - tk,
         "status_s": None if w["status"] is None else w["status"] - tl,
         "list_all_s": None if w["list"] is None else w["list"] - tl,
         "listed": w["count"], "span_s": [round(span[0] - t0, 3), round(span[1] - t0, 3)], "flows": {}}
    for name, col, tgt, key in (("download", 1, td, "down"), ("upload", 2, tu, "up")):
        pts = [(x[0], x[col]) for x in s]
        # the class before the kill, in the first List that held every rule, and 3 s later
        b, a, later = (run["before"]["targets"].get(tgt), w.get("targets", {}).get(tgt),
                       run["after"]["targets"].get(tgt))
        # 0.1 s steps above 1.5 x the limit: the first and the end of the last, from the kill
        above = [t for t, _ in pts if span[0] <= t and t + 0.1 <= span[1]
                 and (at(pts, t + 0.1) - at(pts, t)) * LL * 8 / 0.1 > 1.5 * limit]
        f = {"worst_100ms": worst(pts, *span, 0.1), "worst_500ms": worst(pts, *span, 0.5),
             "unshaped_bytes": excess(pts, *span),
             "above_1_5x_s": [round(above[0] - tk, 2), round(above[-1] + 0.1 - tk, 2)] if above else None,
             "quiet_worst_100ms": worst(pts, *quiet, 0.1), "quiet_worst_500ms": worst(pts, *quiet, 0.5),
             "quiet_unshaped_bytes": excess(pts, *quiet),
             "class_before": b, "class_restored": a, "class_3s_later": later,
             "class_counter_went_back": None if not (a and b) else a[key] < b[key],
             "class_id_kept": None if not (a and b) else a["class"] == b["class"]}
        # what the class counted from before the kill to 3 s after the restore, against what the
        # flow passed then: 1 when one class counted it all, less when the class is younger
        if b and later:
            tb, tl = run["before"]["t"], run["after"]["t"]
            f["class_over_flow"] = (later[key] - b[key]) / ((at(pts, tl) - at(pts, tb)) * LL)
        for k in ("worst_100ms", "worst_500ms", "quiet_worst_100ms", "quiet_worst_500ms"):
            if f[k]:
                f[k]["at_s"] = round(f[k]["at_s"] - tk, 3)   # from the kill
        r["flows"][name] = f
    r["series"] = [[round(x[0] - tk, 3), x[1], x[2]] for x in s]
    res["runs"].append(r)
by = {r["mode"]: r for r in res["runs"]}
if "adopt" in by and "rebuild" in by:
    def ratio(k):
        a, b = by["adopt"][k], by["rebuild"][k]
        return None if not a or b is None else b / a
    res["rebuild_over_adopt"] = {"status_s": ratio("status_s"), "list_all_s": ratio("list_all_s")}
json.dump(res, open(out, "w"), indent=1)
PY
fi

section=$(jq -r '
        def r(n): if . == null then "-" else . * pow(10; n) | round / pow(10; n) end;
        def mb: if . == null then "-" else . / 1e6 | r(2) end;
        def kb: if . == null then "-" elif . >= 1e6 then "\(. / 1e6 | r(1)) MB" else "\(. / 1e3 | r(1)) kB" end;
        def yn: if . == null then "-" elif . then "yes" else "no" end;
        def win: if . == null then "-" else "\(.bps | mb) (\(.ratio | r(2)))" end;
        ([.runs[] | {key: .mode, value: .}] | from_entries) as $m
        | def ratio(f; n): (($m.adopt | f) as $a | ($m.rebuild | f) as $b
                | if $a == null or $b == null or $a == 0 then "-" else $b / $a | r(n) end);
        def both(f): "\($m.adopt | f) | \($m.rebuild | f)";
        "## Restart after SIGKILL with \(.rules) rules (`bench/restart.sh`)",
        "",
        "\(.date), commit \(.commit). \(.rules) rules: \(.load.set) `user@` rules of uids without processes (\(.users_asked) asked,",
        "loaded on one Varlink connection in \(.load.seconds | r(0)) s\(if .load.set < .users_asked then ", stopping at a time budget" else "" end)) and a rule of \(.limit_bps / 1e6)mbit on each",
        "of two cgroups, one running a download (`iperf3 -R`), the other an upload, each sender paced at",
        "\(.pace_bps / 1e6) Mbit/s (a link faster than the limit; unpaced, two flows over the veth take both CPUs at",
        "10+ Gbit/s when unshaped, and slow everything down, the restart included); \(.htb_classes_on_veth) HTB classes",
        "on the veth. SIGKILL 4 s into the transfers, and \($m.adopt.kill_to_launch_s * 1000 | r(0)) ms later netbumpd starts again. adopt: the",
        "new run takes over the pinned programs, maps and classes. rebuild: the pins are removed between",
        "the kill and the start, so there is nothing to take over and every class is made again from the",
        "state file (the path of a restart before the take-over). Times are from the launch.",
        "",
        "The flows are counted at the server end of each TCP connection (`ss -ti` every 0.1 s: bytes the",
        "download'"'"'s receiver acknowledged, bytes received from the upload) as link-layer bytes (× 1514/1448):",
        "unlike a class these counters are there the whole time. Around the kill: from 1 s before it to 2 s",
        "after `List` held every rule. A window'"'"'s unshaped bytes: those above limit × window; in all: the",
        "most bytes above the limit'"'"'s line over any stretch of that span. Before the kill: the same over",
        "the seconds before it, what the transfer reads with no kill. Class: each rule'"'"'s class counter",
        "before the kill against the first `List` that held every rule (a class made anew starts from 0),",
        "and what it counted from before the kill to 3 s after that against what the flow passed meanwhile",
        "(1: one class counted all of it; a class made again counts less, though a new rule'"'"'s class may",
        "pass more than the limit at first: netbumpd lets a running download through for a moment to",
        "measure it, then lands, src/netbumpd/ramp.c). iperf3 -b paces to its average since the start:",
        "once unshaped it first catches up at full speed, which the worst windows of rebuild show.",
        "",
        "| measurement | adopt | rebuild | rebuild / adopt |",
        "|---|---:|---:|---:|",
        "| launch → `Status` answers, s | \(both(.status_s | r(3))) | \(ratio(.status_s; 0)) |",
        "| launch → `List` holds all \(.rules) rules, s | \(both(.list_all_s | r(3))) | \(ratio(.list_all_s; 0)) |",
        (["download", "upload"][] as $d
         | "| \($d): worst 100 ms around the kill, Mbit/s (× limit) | \(both(.flows[$d].worst_100ms | win)) | |",
           "| \($d): worst 500 ms around the kill, Mbit/s (× limit) | \(both(.flows[$d].worst_500ms | win)) | |",
           "| \($d): unshaped bytes in the worst 100 ms / 500 ms | \(both(.flows[$d] | "\(.worst_100ms.unshaped_bytes | kb) / \(.worst_500ms.unshaped_bytes | kb)")) | |",
           "| \($d): unshaped bytes around the kill, in all | \(both(.flows[$d].unshaped_bytes | kb)) | \(ratio(.flows[$d].unshaped_bytes; 0)) |",
           "| \($d): above 1.5 × limit (0.1 s steps), s after the kill | \(both(.flows[$d].above_1_5x_s | if . == null then "never" else "\(.[0]) to \(.[1])" end)) | |",
           "| \($d), before the kill: worst 100 ms / 500 ms (× limit), unshaped in all | \(both(.flows[$d] | "\(.quiet_worst_100ms.ratio | r(2)) / \(.quiet_worst_500ms.ratio | r(2)), \(.quiet_unshaped_bytes | kb)")) | |",
           "| \($d): class counter went back / class id kept / class counted ÷ flow passed | \(both(.flows[$d] | "\(.class_counter_went_back | yn) / \(.class_id_kept | yn) / \(.class_over_flow | r(3))")) | |"),
        "",
        (if .load.set < .users_asked then
          "Only \(.load.set) of the \(.users_asked) user rules asked for were loaded within the time budget: new rules came at",
          "\(.load.set / .load.seconds | r(0))/s on average here; each makes classes on the veth and its IFB, and the kernel'"'"'s cost of",
          "making one grows with the classes already there (see the control-plane section), so that a rebuild of all",
          "of them would have taken longer than this benchmark may."
         else empty end),
        "In rebuild the upload went unshaped as the pins went (the cgroup programs go with their last link), the",
        "download \($m.rebuild.flows.download.above_1_5x_s[0] // "-") s after the kill, when the new run removed the killed run'"'"'s qdiscs and IFB as",
        "leftovers; both until their rules came back, after the `user@` rules (rules come back outermost first).",
        ([$m.adopt.flows[] | (.worst_100ms.ratio <= .quiet_worst_100ms.ratio + 0.05 and .worst_500ms.ratio <= .quiet_worst_500ms.ratio + 0.05)] | all) as $calm
        | if $calm then "In adopt no flow'"'"'s worst window around the kill is more than 0.05 × the limit above its worst before the kill."
          else "In adopt a flow'"'"'s worst window around the kill is more than 0.05 × the limit above its worst before the kill (table)." end,
        "netbumpd RSS after the second restart: \(.rss_kib_after / 1024 | r(1)) MiB.",
        ""' "$json_out")

bench_write_section restart "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the restart section of $md_out"
nb_finish
