#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hostile clients on the socket, as root and as uid 1000 (the socket is 0666), with one rule set:
#   - 200 idle connections held open at once: a new `netbumpctl status` still answers (< 2 s);
#   - half a message, then nothing: the daemon closes the connection after its read timeout
#     (5 s, checked every second: closed between 4.5 and 8 s), and serves others meanwhile;
#   - 8 MiB of random bytes from 4 clients at once: each client gets only error replies, or
#     is disconnected;
#   - every place it may hold busy (half a message on each: 16 connections for uid 1000, all 128
#     for root): one more connection gets an io.netbump.Manager.TooManyConnections error with a
#     reason before it is closed, and `netbumpctl status` says why it failed;
# afterwards the rule list is what it was, the daemon is alive and a fresh client is served.

source "$(dirname "$0")/lib.sh"

USER_ID=1000
IDLE=200
STATUS_MAX=2            # seconds for `status` behind the idle connections
STALL_MIN=4.5           # seconds: the read timeout is 5 s
STALL_MAX=8

nb_require_daemon
# the system's python3: one under root's home (pyenv) is not for uid 1000
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
getent passwd "$USER_ID" >/dev/null || nb_skip "no user with uid $USER_ID"
nb_setup
# the socket is 0666, but the directory holding it is mktemp's 0700
chmod 0755 "$NB_TMP"
# and uid 1000's files go where it may write
install -d -o "$USER_ID" -g "$USER_ID" "$NB_TMP/u"
make_cgroup kept >/dev/null
nb_start_netbumpd
nbctl_ok set "cgroup:$(cgroup_rel kept)" --up 3mbit --down 7mbit

rules() { nbctl --json list | jq -c '[.rules[] | {target, up, down, owner, class}]'; }
before=$(rules)

cat >"$NB_TMP/hostile.py" <<'PY'
import json, os, random, socket, sys, threading, time

path, mode = sys.argv[1], sys.argv[2]

def conn(timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s

def closed_by_peer(s):
    """True if the daemon closed s (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.settimeout(10)

if mode == "idle":
    # hold IDLE connections open without a word until stdin closes
    n, ready = int(sys.argv[3]), sys.argv[4]
    socks = [conn() for _ in range(n)]
    open(ready, "w").write("ready\n")
    sys.stdin.read()
    time.sleep(0.2)
    gone = sum(closed_by_peer(s) for s in socks)
    print(f"idle: {n} connections held; the daemon closed {gone} of them (oldest idle first at its limit)")
    sys.exit(0)

if mode == "stall":
    # half a message, then nothing: seconds until the daemon closes the connection
    s = conn(timeout=15)
    s.sendall(b'{"method":"io.netbump.Manager.Sta')
    t0 = time.monotonic()
    # meanwhile another client is served
    f = conn()
    f.sendall(b'{"method":"io.netbump.Manager.Status"}\0')
    buf = b""
    while not buf.endswith(b"\0"):
        c = f.recv(65536)
        if not c:
            break
        buf += c
    served = buf.endswith(b"\0") and "interfaces" in json.loads(buf[:-1]).get("parameters", {})
    f.close()
    try:
        rest = s.recv(100)
    except ConnectionResetError:
        rest = b""
    except socket.timeout:
        rest = None
    dt = time.monotonic() - t0
    print(f"{'closed' if rest == b'' else 'open' if rest is None else 'answered ' + repr(rest[:60])} "
          f"{dt:.2f} {'served' if served else 'not-served'}")
    sys.exit(0)

if mode == "noise":
    # CLIENTS clients send TOTAL bytes of random data between them, at once; each reads what
    # comes back meanwhile. Verdict per client: only error replies and/or a disconnect.
    clients, total = int(sys.argv[3]), int(sys.argv[4])
    per = total // clients
    results = [None] * clients

    def one(k):
        rnd = random.Random(1000 + k)
        s = conn(timeout=20)
        replies, errors, bad = 0, 0, []
        done = threading.Event()

        def reader():
            nonlocal replies, errors
            buf = b""
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    buf += c
                    while b"\0" in buf:
                        msg, buf = buf.split(b"\0", 1)
                        replies += 1
                        try:
                            j = json.loads(msg)
                        except ValueError:
                            bad.append(msg[:80])
                            continue
                        if isinstance(j, dict) and isinstance(j.get("error"), str):
                            errors += 1
                        else:
                            bad.append(msg[:80])
            except (ConnectionResetError, socket.timeout, OSError):
                pass
            done.set()

        t = threading.Thread(target=reader)
        t.start()
        sent, disconnected = 0, False
        try:
            while sent < per:
                chunk = rnd.randbytes(min(64 * 1024, per - sent))
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            disconnected = True
        disconnected = disconnected or done.is_set()
        # our end of the stream: the daemon answers what it has and closes
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        done.wait(20)
        s.close()
        results[k] = (sent, replies, errors, bad, disconnected)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    failed = 0
    for k, r in enumerate(results):
        if r is None:
            print(f"noise client {k}: did not finish")
            failed += 1
            continue
        sent, replies, errors, bad, disc = r
        ok = not bad and (errors > 0 or disc)
        print(f"noise client {k}: sent {sent} bytes, {replies} replies ({errors} errors), "
              f"{'disconnected while sending' if disc else 'connected to the end'}"
              f"{'' if not bad else ', NON-ERROR REPLIES: ' + repr(bad[:3])}: {'ok' if ok else 'FAIL'}")
        failed += not ok
    sys.exit(1 if failed else 0)

if mode == "busy":
    # hold N busy connections (half a message on each: never idle, so never given up for a
    # newcomer) until stdin closes; once the daemon has them, one more connection: print what
    # the daemon sent it as JSON ({"reply": MESSAGE or null, "raw": what came})
    n, ready = int(sys.argv[3]), sys.argv[4]
    socks = []
    for _ in range(n):
        s = conn()
        s.sendall(b'{"method":"io.netbump.Manager.Sta')
        socks.append(s)
    time.sleep(0.5)
    x = conn()
    buf = b""
    try:
        while not buf.endswith(b"\0"):
            c = x.recv(65536)
            if not c:
                break
            buf += c
    except (ConnectionResetError, socket.timeout):
        pass
    reply = None
    if buf.endswith(b"\0"):
        try:
            reply = json.loads(buf[:-1])
        except ValueError:
            pass
    print(json.dumps({"reply": reply, "raw": buf[:300].decode(errors="replace")}), flush=True)
    open(ready, "w").write("ready\n")
    sys.stdin.read()
    sys.exit(0)

if mode == "status":
    # a fresh client: one Status call answered
    s = conn()
    s.sendall(b'{"method":"io.netbump.Manager.Status"}\0')
    buf = b""
    while not buf.endswith(b"\0"):
        c = s.recv(65536)
        if not c:
            break
        buf += c
    ok = buf.endswith(b"\0") and "interfaces" in json.loads(buf[:-1]).get("parameters", {})
    sys.exit(0 if ok else 1)
sys.exit(2)
PY
chmod 0644 "$NB_TMP/hostile.py"

# as WHO (root or uid 1000), in ns a
as() {
        local who=$1
        shift
        if [[ $who == root ]]; then
                nsenter --net="$NB_NETNS_A" "$@"
        else
                run_as_uid "$who" "$@"
        fi
}

hostile() { as "$1" timeout -k 2 90 "$PY" "$NB_TMP/hostile.py" "$NB_SOCK" "${@:2}"; }

for who in root "$USER_ID"; do
        nb_say "--- as $who"

        # 1. idle connections do not lock others out
        ready=$NB_TMP/u/idle-ready-$who
        fifo=$NB_TMP/idle-fifo-$who
        mkfifo -m 0666 "$fifo"
        hostile "$who" idle "$IDLE" "$ready" <"$fifo" >"$NB_TMP/idle-$who.out" 2>&1 &
        idle_pid=$!
        nb_track_pid "$idle_pid"
        exec 4>"$fifo"
        nb_wait_until 10 test -e "$ready" || nb_fail "$who: the $IDLE idle connections were not made"
        t0=$(nb_now)
        rc=0
        out=$(as "$who" timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" status 2>&1) || rc=$?
        t1=$(nb_now)
        dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        if ((rc == 0)) && awk -v d="$dt" -v m="$STATUS_MAX" 'BEGIN { exit !(d < m) }'; then
                nb_say "$who: status answered in $dt s with $IDLE idle connections open: ok"
        else
                nb_record_failure "$who: status with $IDLE idle connections open: exit $rc after $dt s (max $STATUS_MAX s): $out"
        fi
        exec 4>&-
        wait "$idle_pid" || nb_record_failure "$who: the idle client failed: $(cat "$NB_TMP/idle-$who.out")"
        sed 's/^/    /' "$NB_TMP/idle-$who.out" >&3

        # 2. half a message, then a stall
        read -r verdict dt served < <(hostile "$who" stall) || nb_fail "$who: the stalling client failed"
        if [[ $verdict == closed ]] &&
                awk -v d="$dt" -v lo="$STALL_MIN" -v hi="$STALL_MAX" 'BEGIN { exit !(d >= lo && d <= hi) }'; then
                nb_say "$who: half a message: disconnected after $dt s (read timeout 5 s): ok"
        else
                nb_record_failure "$who: half a message: $verdict after $dt s, expected closed within $STALL_MIN..$STALL_MAX s"
        fi
        assert_true "$who: another client served during the stall ($served)" test "$served" = served

        # 3. random bytes
        if hostile "$who" noise 4 $((8 * 1024 * 1024)) >"$NB_TMP/noise-$who.out" 2>&1; then
                nb_say "$who: 8 MiB of random bytes from 4 clients: each got errors or was disconnected: ok"
        else
                nb_record_failure "$who: 8 MiB of random bytes from 4 clients: a client got something else (see below)"
        fi
        sed 's/^/    /' "$NB_TMP/noise-$who.out" >&3

        # 4. every place busy: the next client is told why it is turned away
        [[ $who == root ]] && n=128 || n=16
        ready=$NB_TMP/u/busy-ready-$who
        fifo=$NB_TMP/busy-fifo-$who
        mkfifo -m 0666 "$fifo"
        hostile "$who" busy "$n" "$ready" <"$fifo" >"$NB_TMP/busy-$who.out" 2>&1 &
        busy_pid=$!
        nb_track_pid "$busy_pid"
        exec 4>"$fifo"
        nb_wait_until 10 test -e "$ready" || nb_fail "$who: the $n busy connections were not made"
        rc=0
        out=$(as "$who" timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" status 2>&1) || rc=$?
        exec 4>&-
        wait "$busy_pid" || nb_record_failure "$who: the busy client failed: $(cat "$NB_TMP/busy-$who.out")"
        got=$(jq -c '.reply' "$NB_TMP/busy-$who.out" 2>/dev/null) || got=
        err=$(jq -r '.reply.error // ""' "$NB_TMP/busy-$who.out" 2>/dev/null) || err=
        why=$(jq -r '.reply.parameters.reason // ""' "$NB_TMP/busy-$who.out" 2>/dev/null) || why=
        if [[ $err == io.netbump.Manager.TooManyConnections && $why == *connections* ]]; then
                nb_say "$who: with $n busy connections the next one is told: $got: ok"
        else
                nb_record_failure "$who: with $n busy connections the next one got $(cat "$NB_TMP/busy-$who.out"), expected a TooManyConnections error with a reason"
        fi
        if ((rc != 0)) && [[ $out == *"$why"* && -n $why ]]; then
                nb_say "$who: netbumpctl status meanwhile: exit $rc, '$out': ok"
        else
                nb_record_failure "$who: netbumpctl status with $n busy connections: exit $rc, '$out' (expected failure naming: $why)"
        fi

        # afterwards
        after=$(rules)
        assert_true "$who: rule list unchanged ($after)" test "$before" = "$after"
        assert_true "$who: netbumpd alive" nb_alive "$NB_DAEMON_PID"
        assert_true "$who: a fresh client is served" hostile "$who" status
done

nb_say "daemon log: $(grep -c 'stalled; disconnecting' "$NB_TMP/netbumpd.log" || :) stall disconnect(s), $(grep -c 'Dropping client' "$NB_TMP/netbumpd.log" || :) client(s) dropped"
nb_finish
