#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Set rate of two netbumpd builds, one after the other in one run: N `user@` Sets (uids without
# processes) on one Varlink connection against each build's netbumpd in a private network
# namespace (a veth, no traffic) and a private cgroup root, timed per thousand.
#
#   bench/set-ab.sh OLD_NETBUMPD NEW_NETBUMPD [N]        (root; N: 3000)
set -euo pipefail

old=$1 new=$2 n=${3:-3000}
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } }' /proc/self/mountinfo)

run() {
        local d=$1 ns=nbsetab$$ t cg pid
        t=$(mktemp -d)
        cg=$cg2/nbsetab$$
        ip netns add "$ns"
        ip -n "$ns" link add va type veth peer name vb
        ip -n "$ns" link set va up
        ip -n "$ns" link set vb up
        mkdir -p "$cg"
        nsenter --net="/run/netns/$ns" "$d" --foreground --socket "$t/s" --state-dir "$t/st" --cgroup-root "$cg" \
                --interface va >"$t/log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do [[ -S $t/s ]] && break; sleep 0.05; done
        python3 - "$t/s" "$n" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
buf = b""
def call(method, params):
    global buf
    s.sendall(json.dumps({"method": "io.netbump.Manager." + method, "parameters": params}).encode() + b"\0")
    while b"\0" not in buf:
        buf += s.recv(65536)
    msg, _, buf = buf.partition(b"\0")
    return json.loads(msg)
n, t0, marks = int(sys.argv[2]), time.time(), []
for u in range(n):
    r = call("Set", {"target": "user@%d" % (30000 + u), "up": 4000000, "down": 4000000})
    if "error" in r:
        sys.exit("Set failed: %s" % r)
    if (u + 1) % 1000 == 0:
        marks.append(round(time.time() - t0, 2))
print(json.dumps({"sets": n, "seconds_at_each_thousand": marks}))
PY
        kill "$pid"
        wait "$pid" || :
        ip netns del "$ns"
        rmdir "$cg/netbump" 2>/dev/null || :
        rmdir "$cg"
        rm -rf "$t"
}

echo "old $old: $(run "$old")"
echo "new $new: $(run "$new")"
