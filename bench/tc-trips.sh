#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# rtnetlink sendmsg()s per rule change of a netbumpd build: the daemon runs under strace in a
# private network namespace (a veth, no traffic) with a private cgroup root; N `user@` rules are
# made, changed, nested under an `all` rule and back, and removed, and the netlink sends of each
# phase counted (strace -yy names the socket). Run it with --no-small-first too (extra args go
# to netbumpd): that is how rules past the first 1000 are made.
#
#   bench/tc-trips.sh NETBUMPD [N] [NETBUMPD ARGS...]     (root; N: 200)
set -euo pipefail

d=$1 n=${2:-200}
shift $(( $# >= 2 ? 2 : 1 ))
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } }' /proc/self/mountinfo)
ns=nbtrips$$ t=$(mktemp -d) cg=$cg2/nbtrips$$
ip netns add "$ns"
ip -n "$ns" link add va type veth peer name vb
ip -n "$ns" link set va up
ip -n "$ns" link set vb up
mkdir -p "$cg"
nsenter --net="/run/netns/$ns" strace -f -yy -e trace=sendto,sendmsg -o "$t/trace" "$d" --foreground \
        --socket "$t/s" --state-dir "$t/st" --cgroup-root "$cg" --interface va "$@" >"$t/log" 2>&1 &
pid=$!
for _ in $(seq 200); do [[ -S $t/s ]] && break; sleep 0.05; done
python3 - "$t/s" "$n" "$t/trace" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
n, trace = int(sys.argv[2]), sys.argv[3]
buf = b""
def call(method, params):
    global buf
    s.sendall(json.dumps({"method": "io.netbump.Manager." + method, "parameters": params}).encode() + b"\0")
    while b"\0" not in buf:
        buf += s.recv(65536)
    msg, _, buf = buf.partition(b"\0")
    r = json.loads(msg)
    if "error" in r:
        sys.exit("%s failed: %s" % (method, r))
    return r
def sends():
    time.sleep(1.5)  # the small-packet leaves are made at the latest a second after
    with open(trace) as f:
        return sum(1 for l in f if "NETLINK" in l and "ROUTE" in l)
out, last = {}, sends()
def phase(name, calls):
    global last
    for c in calls:
        call(*c)
    now = sends()
    out[name] = round((now - last) / len(calls), 2)
    last = now
phase("make", [("Set", {"target": "user@%d" % (30000 + u), "up": 4000000, "down": 4000000}) for u in range(n)])
phase("change", [("Set", {"target": "user@%d" % (30000 + u), "up": 6000000, "down": 6000000}) for u in range(n)])
phase("nest (all, per rule moved)", [("Set", {"target": "all", "up": 900000000, "down": 900000000})])
out["nest (all, per rule moved)"] = round(out["nest (all, per rule moved)"] / n, 2)
phase("unnest (all, per rule moved)", [("Unset", {"target": "all"})])
out["unnest (all, per rule moved)"] = round(out["unnest (all, per rule moved)"] / n, 2)
phase("unmake", [("Unset", {"target": "user@%d" % (30000 + u)}) for u in range(n)])
print(json.dumps({"rules": n, "netlink_sends_per_request": out}))
PY
kill $(pgrep -P "$pid") # the daemon, which strace then follows out
wait "$pid" || :
ip netns del "$ns"
rmdir "$cg/netbump" 2>/dev/null || :
rmdir "$cg"
rm -rf "$t"
