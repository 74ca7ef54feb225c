#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Fault injection: acknowledged rules survive SIGKILL at any moment, and nothing is orphaned.
#   - a client (python3) storms set/unset of 11 targets through netbumpctl: 4 cgroups of the test
#     root, user@1001..1003 and pid: of a sleep in cgroup p0 as root; user@1000, a cgroup
#     delegated to uid 1000 and pid: of a sleep uid 1000 runs in cgroup u1 mostly as uid 1000
#     (setpriv), else as root (who then mostly unsets: root's set takes a rule over). Rates vary. It records every call and its outcome, in order:
#     exit 0 is acknowledged; exit 1 a refusal (the daemon answered: nothing changed); anything
#     else (daemon down, killed mid-call) is unknown and the call is retried until answered;
#   - netbumpd is SIGKILLed $CYCLES times at a random moment while the client storms it; every
#     other cycle it is first launched once more and SIGKILLed 50-400 ms after that launch, so
#     the kill may land in its start-up (cleaning up, restoring);
#   - after each kill the client pauses (between calls, or between tries of an unanswered one)
#     and netbumpd is started; then, every time:
#       a. `list` answers within $RESTORE_MAX s of the launch and shows exactly the acknowledged
#          rules (a call unanswered at the kill may show either way). netbumpd puts the rules
#          back before it serves anyone, so what the kernel has at that answer is the restored
#          state: the HTB classes on veth-a (upload) and on its IFB (download) are exactly the
#          listed rules' classes, by class id and rate;
#       b. nothing is orphaned while it runs: no class or leaf qdisc without a rule, one root HTB
#          each, one IFB, one ingress filter, as many cgroup BPF programs as the first run had,
#          no cgroup under <root>/netbump but the listed pid: rules', each pid: process in its
#          rule's cgroup and the others in the cgroup they started in;
#   - at the end (client stopped) `list` matches the model; SIGTERM then puts the pid: processes
#     back where they started and leaves the host as before the test (no qdisc, class, IFB,
#     filter, program, pin or cgroup left).

source "$(dirname "$0")/lib.sh"

CYCLES=16
RESTORE_MAX=1           # seconds from launch to the restored rules listed, every time
USER_ID=1000
SEED=${NB_SEED:-$RANDOM}

nb_require_daemon
# the system's python3: the client runs netbumpctl as uid 1000 too
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
getent passwd "$USER_ID" >/dev/null || nb_skip "no user with uid $USER_ID"
nb_setup
# the socket is 0666, but the directory holding it is mktemp's 0700
chmod 0755 "$NB_TMP"
targets=()
for i in 0 1 2 3; do
        make_cgroup "c$i" >/dev/null
        targets+=("root=cgroup:$(cgroup_rel "c$i")")
done
targets+=(root=user@1001 root=user@1002 root=user@1003)
deleg=$(make_cgroup deleg)
# delegated to uid 1000 as systemd does it for user@UID.service
chown "$USER_ID:$USER_ID" "$deleg" "$deleg/cgroup.procs" "$deleg/cgroup.subtree_control" "$deleg/cgroup.threads"
targets+=("user=user@$USER_ID" "user=cgroup:$(cgroup_rel deleg)")
make_cgroup p0 >/dev/null
make_cgroup u1 >/dev/null
snap=$NB_TMP/snapshot
host_snapshot "$snap.before"

# the processes of the pid: targets (ended by the teardown)
_nb_argv -g p0
"${_NB_ARGV[@]}" sleep 600 &
P0=$!
_nb_argv -g u1 -u "$USER_ID"
"${_NB_ARGV[@]}" sleep 600 &
P1=$!
nb_track_pid "$P0"
nb_track_pid "$P1"
proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }
_in_cgroup() { [[ $(proc_cgroup "$1") == "$2" ]]; }
nb_wait_until 5 _in_cgroup "$P0" "$(cgroup_rel p0)" || nb_fail "sleep $P0 never reached p0"
nb_wait_until 5 _in_cgroup "$P1" "$(cgroup_rel u1)" || nb_fail "sleep $P1 never reached u1"
targets+=("root=pid:$P0" "user=pid:$P1")
# where each pid: target's process belongs when no rule holds it
homes="$P0=$(cgroup_rel p0),$P1=$(cgroup_rel u1)"

nb_info "seed $SEED (NB_SEED=$SEED reproduces the client's and the killer's choices)"
RANDOM=$SEED

cat >"$NB_TMP/storm.py" <<'PY'
import json, os, random, re, subprocess, sys, time

def model(calls):
    """Per target, the set of states the daemon may be in after these calls (in order). States:
    "absent" or "UP/DOWN" in bit/s."""
    poss = {}
    for c in calls:
        t = c["target"]
        p = poss.setdefault(t, {"absent"})
        effect = "absent" if c["op"] == "unset" else f'{c["up"]}/{c["down"]}'
        if c["rc"] == 0:
            poss[t] = {effect}
        elif c["rc"] == 1:
            # the daemon answered and refused: nothing changed; an unset refused for want of a
            # rule says there was none
            if c["op"] == "unset" and "no rule" in c["err"]:
                poss[t] = {"absent"} if "absent" in p else {"CONTRADICTION: acknowledged rule missing"}
        else:
            p.add(effect)       # in flight at a kill: it may or may not have been applied
    return poss

def listed(path):
    return {r["target"]: f'{r["up"]}/{r["down"]}' for r in json.load(open(path))["rules"]}

def compare(poss, got, targets):
    bad, ambiguous = [], 0
    for t in targets:
        p = poss.get(t, {"absent"})
        g = got.get(t, "absent")
        ambiguous += len(p) > 1
        if g not in p:
            bad.append(f"{t}: listed {g}, expected {' or '.join(sorted(p))}")
    for t in got:
        if t not in targets:
            bad.append(f"{t}: listed {got[t]}, not a target of the storm")
    return bad, ambiguous

def rate(s):
    m = re.fullmatch(r"([0-9.]+)(bit|Kbit|Mbit|Gbit|Tbit)", s)
    return round(float(m.group(1)) * {"bit": 1, "Kbit": 1e3, "Mbit": 1e6, "Gbit": 1e9, "Tbit": 1e12}[m.group(2)])

def tc(ns, *args):
    return subprocess.run(["tc", "-n", ns] + list(args), capture_output=True, text=True, check=True).stdout

INHERITED = 100_000_000_000  # the ceiling of a direction a rule does not limit itself (nest.h)

def kernel(ns, dev):
    """netbump's HTB classes {classid: (ceil bit/s, parent)} and the problems among its qdiscs on dev"""
    classes, problems, roots = {}, [], 0
    for line in tc(ns, "class", "show", "dev", dev).splitlines():
        w = line.split()
        if w[:2] == ["class", "htb"] and w[2].startswith("6e62:"):
            classes[w[2]] = (rate(w[w.index("ceil") + 1]), w[w.index("parent") + 1] if "parent" in w else "root")
    for line in tc(ns, "qdisc", "show", "dev", dev).splitlines():
        w = line.split()
        if len(w) < 4 or w[0] != "qdisc":
            continue
        if w[3] == "root":
            roots += 1
            if w[1:3] != ["htb", "6e62:"]:
                problems.append(f"{dev}: root qdisc {w[1]} {w[2]}, not netbump's HTB")
        elif w[3] == "parent" and w[4].startswith("6e62:") and w[4] not in classes:
            problems.append(f"{dev}: leaf qdisc {w[1]} {w[2]} under {w[4]}, which is no class")
    if roots != 1:
        problems.append(f"{dev}: {roots} root qdiscs")
    return classes, problems

def check_host(list_path, ns, veth, cgroot, cgroot_rel, progs, homes):
    """The kernel and the cgroup tree hold exactly what the list says (see the test's header)."""
    rules = json.load(open(list_path))["rules"]
    bad = []
    links = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True, text=True,
                           check=True).stdout
    ifbs = [l.split(": ")[1].split("@")[0] for l in links.splitlines() if l.split(": ")[1].startswith("nbifb")]
    if len(ifbs) != 1:
        bad.append(f"IFBs in ns a: {ifbs or 'none'}, expected one")
        return bad
    up, p_up = kernel(ns, veth)
    down, p_down = kernel(ns, ifbs[0])
    bad += p_up + p_down
    # Each rule class 6e62:M (M <= 0x3fff) has its two leaf classes, bulk 6e62:M+0x4000 and small
    # packets 6e62:M+0x8000 (the caller waited for the list to say they are made), under it and with
    # its ceiling; those are checked here and left out of the comparison with the list below.
    for dev, got in ((veth, up), (ifbs[0], down)):
        leaves = {c: got.pop(c) for c in list(got) if int(c.split(":")[1], 16) > 0x3fff}
        for c, (ceil, _) in got.items():
            m = int(c.split(":")[1], 16)
            b, s = f"6e62:{m + 0x4000:x}", f"6e62:{m + 0x8000:x}"
            if b not in leaves or s not in leaves:
                bad.append(f"{dev}: class {c} lacks its leaf classes {b} and {s}")
            elif leaves[b] != (ceil, c) or leaves[s] != (ceil, c):
                bad.append(f"{dev}: leaf classes of {c} (ceil {ceil}) are {leaves[b]} and {leaves[s]}")
        for c in leaves:
            if f"6e62:{int(c.split(':')[1], 16) & 0x3fff:x}" not in got:
                bad.append(f"{dev}: leaf class {c} of no rule class (orphan)")
    # A rule has a class in each direction it or an enclosing rule limits ("shaped"), with its own
    # limit as ceiling (or the inherited one), inside its parent's class where the parent has one.
    by_target = {r["target"]: r for r in rules}
    def want(direction):
        w = {}
        for r in rules:
            if not r[f"shaped_{direction}"]:
                continue
            p = by_target.get(r["parent"]) if r["parent"] else None
            parent = p["class"] if p and p[f"shaped_{direction}"] else "root"
            w[r["class"]] = (r[direction] or INHERITED, parent)
        return w
    for dev, wanted, got in ((veth, want("up"), up), (ifbs[0], want("down"), down)):
        for c in sorted(set(wanted) | set(got)):
            if c not in got:
                bad.append(f"{dev}: no class {c} for rule {[r['target'] for r in rules if r['class'] == c]}")
            elif c not in wanted:
                bad.append(f"{dev}: class {c} (ceil, parent) {got[c]} belongs to no rule (orphan)")
            elif wanted[c] != got[c]:
                bad.append(f"{dev}: class {c} (ceil, parent) is {got[c]}, its rule says {wanted[c]}")
    filters = tc(ns, "filter", "show", "dev", veth, "ingress").count(" netbump ")
    if filters != 1:
        bad.append(f"{veth}: {filters} netbump ingress filters, expected one")
    n = len(json.loads(subprocess.run(["bpftool", "-j", "cgroup", "show", cgroot], capture_output=True,
                                      text=True, check=True).stdout or "[]"))
    if n != progs:
        bad.append(f"{n} BPF programs attached at the cgroup root, expected {progs} as in the first run")
    own = os.path.join(cgroot, "netbump")
    dirs = sorted(d for d in os.listdir(own) if os.path.isdir(os.path.join(own, d))) if os.path.isdir(own) else []
    # root's pid rules have their cgroup in netbump/, a user's in the cgroup its process was in
    want_dirs = sorted(r["cgroup"].rsplit("/", 1)[1] for r in rules
                       if r["kind"] == "pid" and r["cgroup"].startswith(f"{cgroot_rel}/netbump/"))
    if dirs != want_dirs:
        bad.append(f"cgroups under {own}: {dirs}, expected those of the pid: rules {want_dirs}")
    for h in homes.split(","):
        pid, home = h.split("=")
        now = next((l.split(":", 2)[2].strip() for l in open(f"/proc/{pid}/cgroup") if l.startswith("0::")), "?")
        rule = next((r for r in rules if r["target"] == f"pid:{pid}"), None)
        want = rule["cgroup"] if rule else home
        if rule and rule["cgroup"] not in (f"{cgroot_rel}/netbump/pid-{pid}", f"{home}/netbump-pid-{pid}"):
            bad.append(f"pid:{pid}: its rule's cgroup is {rule['cgroup']}")
        # a user's rule's cgroup in the process's home goes with the rule
        home_dir = cgroot + home[len(cgroot_rel):]
        for d in (os.listdir(home_dir) if os.path.isdir(home_dir) else []):
            if d.startswith("netbump-pid-") and not (rule and rule["cgroup"] == f"{home}/{d}"):
                bad.append(f"{home}/{d} is left over")
        if now != want:
            bad.append(f"process {pid} is in {now}, expected {want} ({'its rule' if rule else 'no rule: where it started'})")
    return bad

if sys.argv[1] == "run":
    ctl, sock, log, stop, pause, paused, seed, uid = sys.argv[2:10]
    spec = [t.split("=", 1) for t in sys.argv[10:]]
    rnd = random.Random(int(seed))
    rates = [1, 2, 3, 5, 8, 13, 20, 40]
    as_user = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--"]
    calls = []
    deadline = time.monotonic() + 150

    def hold():
        """the test asked for a pause: write what the daemon must show now, wait for the go"""
        if not os.path.exists(pause):
            return
        tmp = paused + ".tmp"
        json.dump({t: sorted(p) for t, p in model(calls).items()}, open(tmp, "w"))
        os.rename(tmp, paused)
        while os.path.exists(pause) and time.monotonic() < deadline:
            time.sleep(0.01)

    with open(log, "w") as f:
        while not os.path.exists(stop) and time.monotonic() < deadline:
            hold()
            who, t = rnd.choice(spec)
            caller = "user" if who == "user" and rnd.random() < 0.85 else "root"
            # root's set takes a rule of uid 1000's over (uid 1000 may then only watch): on
            # those targets root mostly unsets, so that uid 1000 gets them back
            if rnd.random() < (0.6 if who == "user" and caller == "root" else 0.35):
                op, up, down, args = "unset", 0, 0, ["unset", t]
            else:
                up = rnd.choice(rates) * 1000000
                down = up if rnd.random() < 0.5 else rnd.choice(rates) * 1000000
                op, args = "set", ["set", t, "--up", str(up), "--down", str(down)]
            # the same call again until the daemon answers it (bounded by the deadline)
            while True:
                t0 = time.time()
                try:
                    p = subprocess.run((as_user if caller == "user" else []) + [ctl, "--socket", sock] + args,
                                       capture_output=True, text=True, timeout=5)
                    rc, err = p.returncode, p.stderr.strip()
                except subprocess.TimeoutExpired:
                    rc, err = -1, "timed out"
                c = {"target": t, "op": op, "up": up, "down": down, "rc": rc, "err": err, "caller": caller,
                     "t0": t0, "t1": time.time()}
                calls.append(c)
                f.write(json.dumps(c) + "\n")
                f.flush()
                if rc in (0, 1) or time.monotonic() > deadline:
                    break
                hold()
                time.sleep(0.02)
    sys.exit(0)

if sys.argv[1] == "check-paused":
    # check-paused PAUSED_JSON LIST_JSON TARGET...: the list equals the model at the pause
    poss = {t: set(p) for t, p in json.load(open(sys.argv[2])).items()}
    bad, ambiguous = compare(poss, listed(sys.argv[3]), sys.argv[4:])
    for b in bad:
        print(b)
    if not bad:
        print(f"{ambiguous} target(s) with a call unanswered at the kill")
    sys.exit(1 if bad else 0)

if sys.argv[1] == "check-host":
    # check-host LIST_JSON NS VETH CGROOT CGROOT_REL PROGS HOMES
    bad = check_host(*sys.argv[2:7], int(sys.argv[7]), sys.argv[8])
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)

if sys.argv[1] == "check":
    # check CALLS_LOG LIST_JSON TARGET...: the final list against all the calls
    calls = [json.loads(l) for l in open(sys.argv[2])]
    targets = sys.argv[4:]
    bad, ambiguous = compare(model(calls), listed(sys.argv[3]), targets)
    n = len(calls)
    acked = sum(c["rc"] == 0 for c in calls)
    refused = sum(c["rc"] == 1 for c in calls)
    by_user = sum(c["rc"] == 0 and c["caller"] == "user" for c in calls)
    print(f"client: {n} calls: {acked} acknowledged ({by_user} of uid 1000's), {refused} refused, "
          f"{n - acked - refused} unanswered (daemon down or killed mid-call); {ambiguous} target(s) ended "
          f"with an unacknowledged call")
    for b in bad:
        print("final list: MISMATCH " + b)
    sys.exit(1 if bad else 0)
sys.exit(2)
PY

# launch: start netbumpd in ns a as nb_start_netbumpd does, without waiting for it
launch() {
        echo "=== start $(date +%T.%N) (launch) ===" >>"$NB_TMP/netbumpd.log"
        nsenter --net="$NB_NETNS_A" "$NB_NETBUMPD" --foreground --socket "$NB_SOCK" \
                --state-dir "$NB_STATE" --cgroup-root "$NB_CGROOT" >>"$NB_TMP/netbumpd.log" 2>&1 &
        NB_DAEMON_PID=$!
        nb_track_pid "$NB_DAEMON_PID"
}

# rand_sleep MIN MAX: MIN-MAX ms
rand_sleep() {
        sleep "$(awk -v r=$((RANDOM % ($2 - $1 + 1) + $1)) 'BEGIN { printf "%.3f", r / 1000 }')"
}

names=("${targets[@]#*=}")
stop=$NB_TMP/stop pause=$NB_TMP/pause paused=$NB_TMP/paused
: >"$NB_TMP/calls.log"
nb_start_netbumpd
progs=$(bpftool -j cgroup show "$NB_CGROOT" | jq length)
nb_say "first run: $progs BPF program(s) attached at the test's cgroup root"
"$PY" "$NB_TMP/storm.py" run "$NB_NETBUMPCTL" "$NB_SOCK" "$NB_TMP/calls.log" "$stop" "$pause" "$paused" \
        "$SEED" "$USER_ID" "${targets[@]}" >"$NB_TMP/storm.out" 2>&1 &
client=$!
nb_track_pid "$client"

restore_times=()
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
        nb_alive "$client" || nb_fail "the client died: $(cat "$NB_TMP/storm.out")"
        # the client storms the running daemon for a while; SIGKILL lands wherever it is
        rand_sleep 300 1000
        nb_stop_netbumpd KILL 3>/dev/null
        how="SIGKILL while serving"
        if ((cycle % 2 == 1)); then
                # once more, killed early: in its start-up (cleanup, restore) or soon after
                launch
                rand_sleep 50 400
                nb_stop_netbumpd KILL 3>/dev/null
                how="$how, launched again and SIGKILLed in or soon after its start-up"
        fi
        calls=$(wc -l <"$NB_TMP/calls.log")

        # the client pauses between calls or between tries; the next start is checked
        rm -f "$paused"
        touch "$pause"
        nb_wait_until 10 test -e "$paused" || nb_fail "cycle $cycle: the client did not pause"
        t0=$(nb_now)
        launch
        ok=0
        for ((i = 0; i < 200; i++)); do
                if nbctl --json list >"$NB_TMP/list.json" 2>/dev/null; then
                        ok=1
                        break
                fi
                nb_alive "$NB_DAEMON_PID" || break
                sleep 0.02
        done
        t1=$(nb_now)
        ((ok)) || nb_fail "cycle $cycle: netbumpd did not answer list within 4 s of its launch"
        dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        restore_times+=("$dt")
        n=$(jq '.rules | length' "$NB_TMP/list.json")
        nb_say "cycle $cycle: $how ($calls calls so far); restarted, $n rule(s) listed $dt s after the launch"
        awk -v d="$dt" -v m="$RESTORE_MAX" 'BEGIN { exit !(d < m) }' ||
                nb_record_failure "cycle $cycle: the restored rules were listed $dt s after the launch, more than $RESTORE_MAX s"
        if out=$("$PY" "$NB_TMP/storm.py" check-paused "$paused" "$NB_TMP/list.json" "${names[@]}"); then
                nb_say "    the list is the acknowledged rules ($out): ok"
        else
                nb_record_failure "cycle $cycle: the list differs from the acknowledged rules:"
                sed 's/^/    /' <<<"$out" >&3
        fi
        # the small-packet leaf classes come a moment after their rules (netbump(7), Classes):
        # wait until the list says every rule is complete, then compare once (the client is paused)
        nb_wait_complete "cycle $cycle" || :
        nbctl --json list >"$NB_TMP/list-complete.json" || nb_fail "cycle $cycle: list failed"
        if out=$("$PY" "$NB_TMP/storm.py" check-host "$NB_TMP/list-complete.json" "$NB_NS_A" "$NB_IF_A" \
                "$NB_CGROOT" "$NB_CGROOT_REL" "$progs" "$homes"); then
                nb_say "    classes on $NB_IF_A and its IFB are the listed ones, nothing orphaned, pid: processes where they belong: ok"
        else
                nb_record_failure "cycle $cycle: the host does not match the list:"
                sed 's/^/    /' <<<"$out" >&3
        fi
        rm -f "$pause"
done

touch "$stop"
nb_wait_pid "$client" 30 || nb_fail "the client did not stop"
wait "$client" || nb_record_failure "the client failed: $(cat "$NB_TMP/storm.out")"
nbctl --json list >"$NB_TMP/list.json" || nb_fail "list failed at the end"
if out=$("$PY" "$NB_TMP/storm.py" check "$NB_TMP/calls.log" "$NB_TMP/list.json" "${names[@]}"); then
        sed 's/^/    /' <<<"$out" >&3
        nb_say "the final list ($(jq '.rules | length' "$NB_TMP/list.json") rules) matches the acknowledged calls: ok"
else
        nb_record_failure "the final list does not match the acknowledged calls:"
        sed 's/^/    /' <<<"$out" >&3
fi
slowest=$(printf '%s\n' "${restore_times[@]}" | sort -n | tail -n 1)
nb_say "restore times (launch to list): ${restore_times[*]} s; slowest $slowest s"

nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
assert_true "after SIGTERM sleep $P0 is back in p0 (is in $(proc_cgroup "$P0"))" _in_cgroup "$P0" "$(cgroup_rel p0)"
assert_true "after SIGTERM sleep $P1 is back in u1 (is in $(proc_cgroup "$P1"))" _in_cgroup "$P1" "$(cgroup_rel u1)"
host_snapshot "$snap.after"
assert_same_snapshot "$snap.before" "$snap.after" "nothing left after the storm and SIGTERM"
nb_finish
