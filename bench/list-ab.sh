#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# List time of two netbumpd builds, one after the other in one run: N `cgroup:` rules (cgroups
# with one process each, so that every rule's processes are looked at for the network namespaces
# they run in) in a private network namespace (a veth, no traffic) and a private cgroup root; then
# `List` 20 times on one Varlink connection, timed, and the reply's size.
#
#   bench/list-ab.sh OLD_NETBUMPD NEW_NETBUMPD [N]        (root; N: 1000)
set -euo pipefail

old=$1 new=$2 n=${3:-1000}
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } }' /proc/self/mountinfo)

run() {
        local d=$1 ns=nblistab$$ t cg pid k sleepers=()
        t=$(mktemp -d)
        cg=$cg2/nblistab$$
        ip netns add "$ns"
        ip -n "$ns" link add va type veth peer name vb
        ip -n "$ns" link set va up
        ip -n "$ns" link set vb up
        mkdir -p "$cg"
        for ((k = 0; k < n; k++)); do
                mkdir "$cg/c$k"
                # shellcheck disable=SC2016
                sh -c 'echo $$ > "$0/cgroup.procs" && exec sleep 600' "$cg/c$k" &
                sleepers+=($!)
        done
        nsenter --net="/run/netns/$ns" "$d" --foreground --socket "$t/s" --state-dir "$t/st" --cgroup-root "$cg" \
                --no-small-first >"$t/log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do [[ -S $t/s ]] && break; sleep 0.05; done
        python3 - "$t/s" "$n" "${cg#"$cg2"}" <<'PY'
import json, socket, statistics, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
buf = b""
def call(method, params):
    global buf
    s.sendall(json.dumps({"method": "io.netbump.Manager." + method, "parameters": params}).encode() + b"\0")
    while b"\0" not in buf:
        buf += s.recv(1 << 20)
    msg, _, buf = buf.partition(b"\0")
    return msg
n, root = int(sys.argv[2]), sys.argv[3]
for k in range(n):
    r = json.loads(call("Set", {"target": "cgroup:%s/c%d" % (root, k), "up": 4000000, "down": 4000000}))
    if "error" in r:
        sys.exit("Set failed: %s" % r)
times, size = [], 0
for _ in range(20):
    t0 = time.perf_counter()
    size = len(call("List", {}))
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"rules": n, "list_ms_median": round(statistics.median(times), 1),
                  "list_ms_max": round(max(times), 1), "reply_kib": round(size / 1024)}))
PY
        kill "$pid"
        wait "$pid" || :
        kill "${sleepers[@]}" 2>/dev/null || :
        wait 2>/dev/null || :
        ip netns del "$ns"
        for ((k = 0; k < n; k++)); do rmdir "$cg/c$k"; done
        rmdir "$cg/netbump" 2>/dev/null || :
        rmdir "$cg"
        rm -rf "$t"
}

echo "old $old: $(run "$old")"
echo "new $new: $(run "$new")"
