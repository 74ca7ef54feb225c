#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Bad input gets a clear error naming the bad word, a non-zero exit, and changes nothing:
#   - netbumpctl: unknown target kind, missing cgroup, cgroup outside the root, unknown user,
#     garbage and overflowing rates, a rate apart from its unit, a timer unit, a unit where systemd
#     does not run, unset of a rule that does not exist;
#   - the socket: garbage, a non-object, an unknown method, wrong parameter types, a message over
#     the size bound, a half message left hanging; other clients are served throughout.
# After all of it the rule list is exactly what it was.

source "$(dirname "$0")/lib.sh"

nb_require_daemon
command -v python3 >/dev/null 2>&1 || nb_skip "'python3' is not installed"
nb_setup
nb_start_netbumpd
make_cgroup kept >/dev/null
kept="cgroup:$(cgroup_rel kept)"
nbctl_ok set "$kept" --up 3mbit --down 7mbit
nbctl_ok set user@1000 5mbit

rules() { nbctl --json list | jq -c '[.rules[] | {target, up, down, class}]'; }
before=$(rules)

# expect_error EXIT WORD CMD...: netbumpctl exits EXIT, prints one line on stderr naming WORD
expect_error() {
        local want=$1 word=$2 rc=0 err
        shift 2
        err=$(nbctl "$@" 2>&1 >/dev/null) || rc=$?
        if ((rc != want)); then
                nb_record_failure "netbumpctl $*: exit $rc, expected $want (stderr: $err)"
        elif [[ $err != *"$word"* ]]; then
                nb_record_failure "netbumpctl $*: error does not name '$word': $err"
        elif (($(wc -l <<<"$err") != 1)); then
                nb_record_failure "netbumpctl $*: error is not one line: $err"
        else
                nb_say "netbumpctl $*: exit $rc, '$err': ok"
        fi
}

expect_error 2 "bogus:1" set bogus:1 5mbit
expect_error 2 "cgroup" set cgroup 5mbit
expect_error 2 "cgroup:/a/../b" set cgroup:/a/../b 5mbit
expect_error 1 "$(cgroup_rel nope)" set "cgroup:$(cgroup_rel nope)" 5mbit
expect_error 1 "outside" set cgroup:/ 5mbit
expect_error 1 "no-such-user-nb" set user@no-such-user-nb 5mbit
expect_error 2 "user@4294967295" set user@4294967295 5mbit
expect_error 2 "5xbit" set "$kept" 5xbit
expect_error 2 "-5mbit" set "$kept" -- -5mbit
expect_error 2 "99999tbit" set "$kept" 99999tbit
expect_error 2 "1e999mbit" set "$kept" --up 1e999mbit
expect_error 2 "0bit" set "$kept" 0bit
expect_error 2 "--sideways" set "$kept" --sideways 5mbit
expect_error 2 "frobnicate" frobnicate
expect_error 1 "user@4242" unset user@4242
expect_error 1 "unset" set "$kept" --up unlimited --down unlimited
# words that are nearly right: a rate and its unit apart, a unit that runs no processes, a unit
# target where systemd is not the service manager
expect_error 2 "'5mbit'" set "$kept" 5 mbit
expect_error 2 "cannot limit 'unit:backup.timer'" set unit:backup.timer 5mbit
if [[ ! -d /run/systemd/system ]]; then
        expect_error 1 "systemd is not running on this host" set unit:nbtest-nothing 5mbit
fi

# a rate in bytes per second works, with a warning saying what it means
err=$(nbctl set user@1001 1mbps 2>&1 >/dev/null) || nb_record_failure "set user@1001 1mbps failed: $err"
assert_true "1mbps warns that it is 8mbit: '$err'" grep -q "8mbit" <<<"$err"
assert_true "1mbps is stored as 8 Mbit/s" test "$(nbctl --json list | jq '.rules[] | select(.target == "user@1001") | .up')" = 8000000
nbctl_ok unset user@1001

# the socket itself
python3 - "$NB_SOCK" <<'PY' >&3 || nb_record_failure "protocol checks failed (see above)"
import json, socket, sys, time

path = sys.argv[1]
failed = 0

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s

def recv_msg(s):
    buf = b""
    while not buf.endswith(b"\0"):
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf[:-1])

def check(name, ok, detail=""):
    global failed
    print(f"protocol: {name}: {'ok' if ok else 'FAIL ' + str(detail)}")
    if not ok:
        failed += 1

def call(s, method, params=None):
    m = {"method": method}
    if params is not None:
        m["parameters"] = params
    s.sendall(json.dumps(m).encode() + b"\0")
    return recv_msg(s)

# a half message left hanging on one connection must not block anyone
idle = conn()
idle.sendall(b'{"method":"io.netbump.Manager.Li')

s = conn()
for raw, what in [(b"garbage\0", "garbage"), (b"[1,2,3]\0", "an array"), (b'{"method":1}\0', "method not a string"),
                  (b'{"method":"io.netbump.Manager.List"} trailing\0', "trailing bytes")]:
    s.sendall(raw)
    r = recv_msg(s)
    check(f"{what} -> InvalidRequest", r and r.get("error") == "io.netbump.Manager.InvalidRequest", r)
r = call(s, "io.netbump.Manager.Explode")
check("unknown method -> MethodNotFound", r and r.get("error") == "org.varlink.service.MethodNotFound", r)
r = call(s, "io.netbump.Manager.Set", {"target": 5, "up": 1000000})
check("target not a string -> InvalidParameter", r and r.get("error") == "org.varlink.service.InvalidParameter", r)
r = call(s, "io.netbump.Manager.Set", {"target": "user@1000", "up": "fast"})
check("rate not a number -> InvalidParameter", r and r.get("error") == "org.varlink.service.InvalidParameter", r)
r = call(s, "io.netbump.Manager.Set", {"target": "user@1000", "up": -5})
check("negative rate -> InvalidParameter", r and r.get("error") == "org.varlink.service.InvalidParameter", r)
r = call(s, "io.netbump.Manager.Set", {"target": "user@1000", "up": 2**62})
check("huge rate -> InvalidParameter", r and r.get("error") == "io.netbump.Manager.InvalidParameter", r)
r = call(s, "io.netbump.Manager.Set", {"target": "user@1000", "up": 1000000, "colour": "red"})
check("unknown parameter -> InvalidParameter", r and r.get("error") == "org.varlink.service.InvalidParameter", r)
r = call(s, "io.netbump.Manager.List")
check("same connection still served after errors", r and "rules" in r.get("parameters", {}), r)

# a message over the 64 KiB bound: an error, then the connection is closed
big = conn()
try:
    big.sendall(b"{" + b" " * (200 * 1024))
except (BrokenPipeError, ConnectionResetError):
    pass
r = None
try:
    r = recv_msg(big)
except (ConnectionResetError, socket.timeout):
    pass
check("oversized message -> error", r is not None and r.get("error") == "io.netbump.Manager.InvalidRequest", r)
try:
    rest = big.recv(10)
except ConnectionResetError:
    rest = b""
check("oversized message -> disconnected", rest == b"", rest)

# megabytes of random bytes with NULs sprinkled in: errors or a disconnect, nothing else
import random
rnd = random.Random(7)
noise = conn()
try:
    for _ in range(32):
        noise.sendall(bytes(rnd.getrandbits(8) for _ in range(32 * 1024)))
except (BrokenPipeError, ConnectionResetError, socket.timeout):
    pass
noise.close()

fresh = conn()
r = call(fresh, "io.netbump.Manager.Status")
check("a new client is served while the idle one hangs", r and "interfaces" in r.get("parameters", {}), r)
idle.close()
sys.exit(1 if failed else 0)
PY

after=$(rules)
if [[ $before == "$after" ]]; then
        nb_say "rules unchanged after all bad input: ok"
else
        nb_record_failure "rules changed: before $before, after $after"
fi
nb_alive "$NB_DAEMON_PID" || nb_record_failure "netbumpd died"
nb_finish
