#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Clients that try to stall netbumpd or make it hold memory, with 200 rules loaded (root's, on
# cgroups delegated to uid 1000, so that each of uid 1000's List replies carries all 200):
#   - as uid 1000, 16 connections pipeline 2500 List calls each and never read a reply; as uid
#     1001, 1500 `List sock:PID:FD` (netbumpd's own descriptors: sockets, other files, fds not
#     open) in one write; as uid 1001, targets with control characters (a newline and "<0>",
#     an escape sequence), bytes that are not UTF-8 and \u0000;
#   - meanwhile root's `netbumpctl status` answers within STATUS_MAX each time (10 tries), and
#     netbumpd's RSS grows by less than RSS_MAX_KIB;
#   - each flooding connection is dropped once it has taken none of its replies for 10 s
#     (CLIENT_WRITE_TIMEOUT_USEC: between DROP_MIN and DROP_MAX s after the flood began);
#   - the 1500 sock:PID:FD answers are one and the same PermissionDenied: nothing tells a
#     socket from another file or from a closed fd; the bad strings are refused naming the
#     parameter; every reply is UTF-8 JSON;
#   - the log has no raw control character, no byte that is not UTF-8, no forged line, and the
#     hostile targets in it escaped;
#   - out of descriptors (prlimit on the running daemon, more idle connections than it may
#     open): netbumpd uses less than CPU_MAX_S of CPU over 2 s instead of spinning on accept(2),
#     and root's status, started while it cannot accept, is answered once the connections close;
# afterwards the rules are as they were and the daemon alive.

source "$(dirname "$0")/lib.sh"

USER_ID=1000            # delegated the cgroups; floods List
OTHER_ID=1001           # owns nothing; probes other users' descriptors (no passwd entry needed)
N_RULES=200
N_CONN=16               # the most one uid may hold
N_LIST=2500             # List calls per connection
N_SOCK=1500             # List sock:PID:FD calls in one write
STATUS_TRIES=10
STATUS_MAX=0.5          # seconds for root's status during the flood
RSS_MAX_KIB=$((32 * 1024))
DROP_MIN=9              # the write timeout is 10 s, counted from the last byte a client took
DROP_MAX=25
CPU_MAX_S=0.2           # CPU seconds netbumpd may use in 2 s while out of descriptors
IDLE=40                 # idle connections when out of descriptors
FD_HEADROOM=12          # descriptors left to the daemon beyond what it has open

nb_require_daemon
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
getent passwd "$USER_ID" >/dev/null || nb_skip "no user with uid $USER_ID"
command -v prlimit >/dev/null 2>&1 || nb_skip "'prlimit' is not installed"
nb_setup
chmod 0755 "$NB_TMP"
install -d -o "$USER_ID" -g "$USER_ID" -m 0777 "$NB_TMP/u"
LOG=$NB_TMP/netbumpd.log

make_cgroup f >/dev/null
for ((i = 0; i < N_RULES; i++)); do
        d=$(make_cgroup "$(printf 'f/c%03d' "$i")")
        chown "$USER_ID:$USER_ID" "$d"
done
nb_start_netbumpd
DPID=$NB_DAEMON_PID

cat >"$NB_TMP/flood.py" <<'PY'
import json, os, select, socket, sys, threading, time

path, mode = sys.argv[1], sys.argv[2]

def conn(timeout=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s

def call(method, params=None):
    m = {"method": "io.netbump.Manager." + method}
    if params is not None:
        m["parameters"] = params
    return json.dumps(m).encode() + b"\0"

def read_replies(s, n, deadline=30):
    """n replies, each checked to be UTF-8 JSON; the raw bytes of any that is not"""
    buf, out, bad = b"", [], []
    end = time.monotonic() + deadline
    while len(out) + len(bad) < n and time.monotonic() < end:
        c = s.recv(1 << 20)
        if not c:
            break
        buf += c
        while b"\0" in buf and len(out) + len(bad) < n:
            msg, buf = buf.split(b"\0", 1)
            try:
                out.append(json.loads(msg.decode("utf-8", errors="strict")))
            except (UnicodeDecodeError, ValueError):
                bad.append(msg[:200])
    return out, bad

if mode == "set":
    # root: one rule per cgroup, pipelined on one connection
    targets = sys.argv[3:]
    s = conn(60)
    s.sendall(b"".join(call("Set", {"target": t, "up": 10000000, "down": 20000000}) for t in targets))
    replies, bad = read_replies(s, len(targets), 60)
    errors = [r for r in replies if "error" in r]
    print(f"{len(replies)} replies, {len(errors)} errors {errors[:2]}, {len(bad)} not JSON")
    sys.exit(0 if len(replies) == len(targets) and not errors and not bad else 1)

if mode == "flood":
    # N connections, each sends COUNT List calls and never reads; prints when the daemon
    # dropped each (POLLHUP/POLLERR, seen without reading) as JSON once all are gone
    n, count, ready = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    blob = call("List") * count
    socks = [conn() for _ in range(n)]
    sent = [0] * n

    def writer(k):
        s = socks[k]
        try:
            while sent[k] < len(blob):
                sent[k] += s.send(blob[sent[k]:sent[k] + 65536])
        except OSError:
            pass

    t0 = time.monotonic()
    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    open(ready, "w").write("ready\n")
    poller = select.poll()
    for s in socks:
        poller.register(s.fileno(), 0)   # no POLLIN: hang-ups and errors only
    dropped = {}
    while len(dropped) < n and time.monotonic() - t0 < 60:
        for fd, ev in poller.poll(200):
            if fd not in dropped:
                dropped[fd] = round(time.monotonic() - t0, 2)
                poller.unregister(fd)
    print(json.dumps({"dropped": sorted(dropped.values()), "sent_calls": [x // len(call("List")) for x in sent]}))
    sys.exit(0)

if mode == "sockflood":
    # COUNT List sock:PID:FD in one write, over the descriptors given; the replies, summarized
    pid, fds, count = sys.argv[3], sys.argv[4].split(","), int(sys.argv[5])
    s = conn(60)
    targets = [f"sock:{pid}:{fds[k % len(fds)]}" for k in range(count)]
    s.sendall(b"".join(call("List", {"target": t}) for t in targets))
    replies, bad = read_replies(s, count, 60)
    kinds = {}
    for r in replies:
        key = (r.get("error"), (r.get("parameters") or {}).get("reason"))
        kinds[key] = kinds.get(key, 0) + 1
    print(json.dumps({"replies": len(replies), "not_json": len(bad),
                      "kinds": [{"error": e, "reason": why, "n": k} for (e, why), k in kinds.items()]}))
    sys.exit(0)

if mode == "hostile":
    # hostile strings as targets of Set and List; each reply as JSON
    raw = [
        b'{"method":"io.netbump.Manager.Set","parameters":{"target":"cgroup:/x\\n<0>netbumpd: FORGED-NL","up":8000}}',
        b'{"method":"io.netbump.Manager.Set","parameters":{"target":"\\r\\n<0>FORGED-CRLF","up":8000}}',
        b'{"method":"io.netbump.Manager.Set","parameters":{"target":"cgroup:/\\u001b[31mRED\\u001b]0;TITLE\\u0007","up":8000}}',
        b'{"method":"io.netbump.Manager.Unset","parameters":{"target":"user@x\\u001b[2J"}}',
        b'{"method":"io.netbump.Manager.Set","parameters":{"target":"cgroup:/\xff\xfe\xc0\xaf","up":8000}}',
        b'{"method":"io.netbump.Manager.Set","parameters":{"target":"pid:1\\u0000junk","up":8000}}',
        b'{"method":"io.netbump.Manager.List","parameters":{"target":"all\\u0000"}}',
        b'{"method":"io.netbump.Manager.Set","parameters":{"target\\u0000x":"all","up":8000}}',
    ]
    s = conn()
    s.sendall(b"\0".join(raw) + b"\0")
    replies, bad = read_replies(s, len(raw))
    for r in replies:
        print(json.dumps(r))
    for b in bad:
        print("NOT-JSON " + repr(b))
    sys.exit(0)

if mode == "idle":
    # N connections held without a word until stdin closes
    n, ready = int(sys.argv[3]), sys.argv[4]
    socks = [conn() for _ in range(n)]
    open(ready, "w").write("ready\n")
    sys.stdin.read()
    sys.exit(0)

sys.exit(2)
PY
chmod 0644 "$NB_TMP/flood.py"

as() {
        local who=$1
        shift
        if [[ $who == root ]]; then
                "$@"
        else
                setpriv --reuid "$who" --regid "$who" --clear-groups -- "$@"
        fi
}
flood() { as "$1" timeout -k 2 90 "$PY" "$NB_TMP/flood.py" "$NB_SOCK" "${@:2}"; }

# jqe ARGS...: jq -e, quiet (for assert_true)
jqe() { jq -e "$@" >/dev/null; }
rules() { nbctl --json list | jq -c '[.rules[] | {target, up, down, owner, class}] | sort_by(.target)'; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DPID/status"; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$DPID/stat"; }

# root's status, timed: "SECONDS RC"
timed_status() {
        local t0 t1 rc=0
        t0=$(nb_now)
        nbctl status >/dev/null 2>&1 || rc=$?
        t1=$(nb_now)
        echo "$(nb_rel "$t0" "$t1") $rc"
}

# --- the rules -----------------------------------------------------------------------------------
targets=()
for ((i = 0; i < N_RULES; i++)); do
        targets+=("cgroup:$(cgroup_rel "$(printf 'f/c%03d' "$i")")")
done
t=$(nb_now)
out=$(flood root set "${targets[@]}") || nb_fail "setting $N_RULES rules: $out"
nb_say "$N_RULES rules set in $(nb_rel "$t" "$(nb_now)") s: $out"
nb_wait_complete "before the flood" || :
before=$(rules)
assert_true "$N_RULES rules listed" test "$(jq length <<<"$before")" = "$N_RULES"
n_user=$(as "$USER_ID" "$NB_NETBUMPCTL" --socket "$NB_SOCK" --json list | jq '.rules | length')
assert_true "uid $USER_ID sees all $N_RULES rules (on cgroups delegated to it): $n_user" test "$n_user" = "$N_RULES"
# warm: a List of root and of uid 1000 have made their buffers once
nbctl --json list >/dev/null
rss0=$(rss_kib)
nb_say "netbumpd RSS before the flood: $rss0 KiB"

# --- the flood -----------------------------------------------------------------------------------
(
        while [[ ! -e $NB_TMP/rss-stop ]]; do
                rss_kib
                sleep 0.1
        done
) >"$NB_TMP/rss" 2>/dev/null &
rss_sampler=$!
nb_track_pid "$rss_sampler"

ready=$NB_TMP/u/flood-ready
t_flood=$(nb_now)
flood "$USER_ID" flood "$N_CONN" "$N_LIST" "$ready" >"$NB_TMP/flood.out" 2>&1 &
flood_pid=$!
nb_track_pid "$flood_pid"
# descriptors of netbumpd: sockets and other files, and numbers not open
sock_fds=$(find "/proc/$DPID/fd" -lname 'socket:*' -printf '%f\n' | head -n 4 | paste -sd,)
file_fds=$(find "/proc/$DPID/fd" ! -lname 'socket:*' -type l -printf '%f\n' | head -n 4 | paste -sd,)
fds="$sock_fds,$file_fds,4000,4001"
flood "$OTHER_ID" sockflood "$DPID" "$fds" "$N_SOCK" >"$NB_TMP/sockflood.out" 2>&1 &
sock_pid=$!
nb_track_pid "$sock_pid"
nb_wait_until 10 test -e "$ready" || nb_fail "the flooding connections were not made: $(cat "$NB_TMP/flood.out")"

worst=0
lat=()
for ((k = 0; k < STATUS_TRIES; k++)); do
        read -r dt rc < <(timed_status)
        lat+=("$dt")
        if ((rc != 0)); then
                nb_record_failure "root's status during the flood: exit $rc"
        fi
        worst=$(awk -v a="$worst" -v b="$dt" 'BEGIN { print (b > a) ? b : a }')
        sleep 0.3
done
nb_say "root's status during the flood: ${lat[*]} s"
assert_true "root's status answered within $STATUS_MAX s each time during the flood (worst $worst s)" \
        awk -v d="$worst" -v m="$STATUS_MAX" 'BEGIN { exit !(d < m) }'

flood "$OTHER_ID" hostile >"$NB_TMP/hostile.out" 2>&1 || nb_record_failure "the hostile client failed: $(cat "$NB_TMP/hostile.out")"

wait "$sock_pid" || nb_record_failure "the sock: flood failed: $(cat "$NB_TMP/sockflood.out")"
wait "$flood_pid" || nb_record_failure "the flood failed: $(cat "$NB_TMP/flood.out")"
touch "$NB_TMP/rss-stop"
wait "$rss_sampler" || :
t_done=$(nb_now)
nb_say "flood over after $(nb_rel "$t_flood" "$t_done") s"

# --- what the flood got --------------------------------------------------------------------------
rss_max=$(sort -n "$NB_TMP/rss" | tail -n 1)
grow=$((rss_max - rss0))
assert_true "netbumpd's RSS grew by $grow KiB at most during the flood ($rss0 -> $rss_max KiB; max $RSS_MAX_KIB)" \
        test "$grow" -lt "$RSS_MAX_KIB"

dropped=$(jq -c '.dropped' "$NB_TMP/flood.out" 2>/dev/null) || dropped=
nb_say "flooding connections dropped at (s after they began): $dropped; List calls each got out: $(jq -c '.sent_calls' "$NB_TMP/flood.out" 2>/dev/null)"
n_dropped=$(jq '.dropped | length' "$NB_TMP/flood.out" 2>/dev/null) || n_dropped=0
assert_true "all $N_CONN flooding connections dropped ($n_dropped)" test "$n_dropped" = "$N_CONN"
assert_true "each dropped between $DROP_MIN and $DROP_MAX s after the flood began (write timeout 10 s): $dropped" \
        jqe --argjson lo "$DROP_MIN" --argjson hi "$DROP_MAX" 'all(.dropped[]; . >= $lo and . <= $hi)' "$NB_TMP/flood.out"
n_logged=$(grep -c "Client uid $USER_ID has left .* bytes of replies unread for 10 s; disconnecting" "$LOG" || :)
assert_true "the log says why each was dropped ($n_logged lines)" test "$n_logged" -ge "$N_CONN"

nb_say "sock:PID:FD answers: $(cat "$NB_TMP/sockflood.out")"
assert_true "all $N_SOCK sock:PID:FD calls answered, as JSON" \
        jqe --argjson n "$N_SOCK" '.replies == $n and .not_json == 0' "$NB_TMP/sockflood.out"
assert_true "one and the same PermissionDenied for sockets, other files and closed fds of netbumpd ($fds)" \
        jqe '(.kinds | length) == 1 and .kinds[0].error == "io.netbump.Manager.PermissionDenied"' \
        "$NB_TMP/sockflood.out"

nb_say "hostile strings, the replies:"
sed 's/^/    /' "$NB_TMP/hostile.out" >&3
assert_true "every hostile string got an error, as UTF-8 JSON" \
        test "$(grep -c '"error"' "$NB_TMP/hostile.out")" = 8 -a "$(grep -c NOT-JSON "$NB_TMP/hostile.out" || :)" = 0
assert_true "bytes that are not UTF-8, and \\u0000, refused naming the parameter 'target'" \
        test "$(grep -c '"error": "org.varlink.service.InvalidParameter", "parameters": {"parameter": "target"' \
                "$NB_TMP/hostile.out")" = 3
assert_true "\\u0000 in a member name refused" grep -q 'a member name contains NUL' "$NB_TMP/hostile.out"

# the log, byte by byte
if "$PY" - "$LOG" <<'PY'; then
import re, sys
data = open(sys.argv[1], "rb").read()
bad = [m.start() for m in re.finditer(rb"[\x00-\x09\x0b-\x1f\x7f]", data)]
try:
    text = data.decode("utf-8")
    utf8 = True
except UnicodeDecodeError as e:
    utf8, text = False, ""
forged = [l for l in text.split("\n") if l.startswith("<") or "FORGED" in l.split(":")[0]]
print(f"    log: {len(data)} bytes, {len(bad)} raw control characters, UTF-8: {utf8}, forged lines: {forged[:3]}")
sys.exit(0 if not bad and utf8 and not forged else 1)
PY
        nb_say "the log has no raw control character, no byte that is not UTF-8, no forged line: ok"
else
        nb_record_failure "the log has raw control characters, bytes that are not UTF-8 or a forged line"
fi
for want in 'cgroup:/x\n<0>netbumpd: FORGED-NL' '\r\n<0>FORGED-CRLF' 'cgroup:/\x1b[31mRED\x1b]0;TITLE\x07' \
        'user@x\x1b[2J'; do
        assert_true "the log has the target escaped: $want" grep -qF "$want" "$LOG"
done

after=$(rules)
assert_true "the rules are as before the flood" test "$before" = "$after"
assert_true "netbumpd alive after the flood" nb_alive "$DPID"

# --- out of descriptors --------------------------------------------------------------------------
nfd=$(find "/proc/$DPID/fd" -mindepth 1 | wc -l)
limit=$((nfd + FD_HEADROOM))
prlimit --pid "$DPID" --nofile="$limit:$limit"
nb_say "netbumpd has $nfd descriptors open; its limit is now $limit"
fifo=$NB_TMP/idle-fifo
mkfifo "$fifo"
flood root idle "$IDLE" "$NB_TMP/idle-ready" <"$fifo" >"$NB_TMP/idle.out" 2>&1 &
idle_pid=$!
nb_track_pid "$idle_pid"
exec 4>"$fifo"
nb_wait_until 10 test -e "$NB_TMP/idle-ready" || nb_fail "the idle connections were not made: $(cat "$NB_TMP/idle.out")"
# until netbumpd has run out (it says so once)
nb_wait_until 5 grep -q 'Cannot accept a connection (Too many open files)' "$LOG" ||
        nb_record_failure "netbumpd did not run out of descriptors with $IDLE idle connections and $limit descriptors"
c0=$(cpu_ticks)
sleep 2
c1=$(cpu_ticks)
cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
assert_true "netbumpd used $cpu s of CPU in 2 s while out of descriptors (max $CPU_MAX_S)" \
        awk -v c="$cpu" -v m="$CPU_MAX_S" 'BEGIN { exit !(c < m) }'
# root asks while nothing can be accepted; the idle connections close a second later
(
        exec 4>&- # the idle client's stdin is for this shell alone to close
        t0=$(nb_now)
        rc=0
        timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" status >/dev/null 2>"$NB_TMP/starved-status.err" || rc=$?
        echo "$rc $t0 $(nb_now)"
) >"$NB_TMP/starved-status" &
st_pid=$!
nb_track_pid "$st_pid"
sleep 1
t_close=$(nb_now)
exec 4>&-
wait "$idle_pid" || :
wait "$st_pid" || :
read -r rc t0 t1 <"$NB_TMP/starved-status"
nb_say "root's status while out of descriptors: exit $rc, answered $(nb_rel "$t_close" "$t1") s after the idle connections closed ($(nb_rel "$t0" "$t1") s in all)"
assert_true "root's status answered once the connections closed (exit $rc, $(cat "$NB_TMP/starved-status.err"))" \
        test "$rc" = 0
assert_true "... within 2 s of the close" awk -v d="$(nb_rel "$t_close" "$t1")" 'BEGIN { exit !(d < 2) }'

after=$(rules)
assert_true "the rules are as before, after running out of descriptors" test "$before" = "$after"
assert_true "netbumpd alive" nb_alive "$DPID"
nb_finish
