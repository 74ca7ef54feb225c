#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Fault injection: acknowledged rules survive SIGKILL at any moment.
#   - a client (python3) storms set/unset of 10 targets (6 cgroups of the test root, user@1000..1003,
#     rates varied) through netbumpctl and records every call and its outcome, in order: exit 0
#     is acknowledged; exit 1 is a refusal (the daemon answered: nothing changed); anything else
#     (daemon down, killed mid-call) is unknown and the call is retried until answered;
#   - meanwhile netbumpd is SIGKILLed $CYCLES times, each time at a random moment 50-400 ms after
#     it was launched (odd cycles: the kill may land in its start-up) or after it was ready (even
#     cycles), and launched again;
#   - every $CHECK_EVERY-th cycle the client pauses between calls, the daemon is killed and
#     started, and the first `list` must show exactly the acknowledged rules; the time from launch
#     to that list must be under 1 s at least once;
#   - each even cycle lists the rules once the daemon is ready; at the end these lists are checked
#     against the calls made until then (a call overlapping the list may or may not show);
#   - at the end (daemon up) `list` must match the model: per target, the last acknowledged
#     state, or the effect of an unacknowledged call made after it (the call in flight at a kill);
#   - SIGTERM then leaves the host as before the test (no qdisc, class, IFB, filter, program, pin
#     or cgroup left).

source "$(dirname "$0")/lib.sh"

CYCLES=15
CHECK_EVERY=5
RESTORE_MAX=1           # seconds from launch to the rules listed, at least once
SEED=${NB_SEED:-$RANDOM}

nb_require_daemon
command -v python3 >/dev/null 2>&1 || nb_skip "'python3' is not installed"
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
nb_setup
targets=()
for i in 0 1 2 3 4 5; do
        make_cgroup "c$i" >/dev/null
        targets+=("cgroup:$(cgroup_rel "c$i")")
done
targets+=(user@1000 user@1001 user@1002 user@1003)
snap=$NB_TMP/snapshot
host_snapshot "$snap.before"
nb_info "seed $SEED (NB_SEED=$SEED reproduces the client's and the killer's choices)"
RANDOM=$SEED

cat >"$NB_TMP/storm.py" <<'PY'
import json, os, random, subprocess, sys, time

def model(calls, at=None):
    """Per target, the set of states the daemon may be in after these calls (in order), or, with
    at=(L0, L1), when it answered a list asked at L0 and received at L1: calls that ended before
    L0 have taken effect if acknowledged, one that overlaps the list may have or not (the client
    makes one call at a time), later ones have not. States: "absent" or "UP/DOWN" in bit/s."""
    poss = {}
    for c in calls:
        if at and c["t0"] > at[1]:
            break
        t = c["target"]
        p = poss.setdefault(t, {"absent"})
        effect = "absent" if c["op"] == "unset" else f'{c["up"]}/{c["down"]}'
        if at and c["t1"] >= at[0]:
            p.add(effect)       # overlaps the list
        elif c["rc"] == 0:
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
    got = {}
    for r in json.load(open(path))["rules"]:
        got[r["target"]] = f'{r["up"]}/{r["down"]}'
    return got

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

if sys.argv[1] == "run":
    ctl, sock, log, stop, pause, paused, seed = sys.argv[2:9]
    targets = sys.argv[9:]
    rnd = random.Random(int(seed))
    rates = [1, 2, 3, 5, 8, 13, 20, 40]
    calls = []
    deadline = time.monotonic() + 120
    with open(log, "w") as f:
        while not os.path.exists(stop) and time.monotonic() < deadline:
            if os.path.exists(pause):
                # between calls: what the daemon must show now
                tmp = paused + ".tmp"
                json.dump({t: sorted(p) for t, p in model(calls).items()}, open(tmp, "w"))
                os.rename(tmp, paused)
                while os.path.exists(pause) and time.monotonic() < deadline:
                    time.sleep(0.01)
                continue
            t = rnd.choice(targets)
            if rnd.random() < 0.35:
                op, up, down, args = "unset", 0, 0, ["unset", t]
            else:
                up = rnd.choice(rates) * 1000000
                down = up if rnd.random() < 0.5 else rnd.choice(rates) * 1000000
                op, args = "set", ["set", t, "--up", str(up), "--down", str(down)]
            # the same call again until the daemon answers it (bounded by the deadline)
            while True:
                t0 = time.time()
                try:
                    p = subprocess.run([ctl, "--socket", sock] + args, capture_output=True, text=True,
                                       timeout=5)
                    rc, err = p.returncode, p.stderr.strip()
                except subprocess.TimeoutExpired:
                    rc, err = -1, "timed out"
                c = {"target": t, "op": op, "up": up, "down": down, "rc": rc, "err": err,
                     "t0": t0, "t1": time.time()}
                calls.append(c)
                f.write(json.dumps(c) + "\n")
                f.flush()
                if rc in (0, 1) or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
    sys.exit(0)

if sys.argv[1] == "check-paused":
    # check-paused PAUSED_JSON LIST_JSON TARGET...: the list equals the model at the pause
    poss = {t: set(p) for t, p in json.load(open(sys.argv[2])).items()}
    bad, _ = compare(poss, listed(sys.argv[3]), sys.argv[4:])
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)

if sys.argv[1] == "check":
    # check CALLS_LOG LISTS LIST_JSON TARGET...: LISTS has "L0 L1 FILE" per list taken during the
    # storm (times of the question and the answer); LIST_JSON is the final list
    calls = [json.loads(l) for l in open(sys.argv[2])]
    targets = sys.argv[5:]
    failed = 0
    for line in open(sys.argv[3]):
        l0, l1, path = line.split()
        bad, _ = compare(model(calls, (float(l0), float(l1))), listed(path), targets)
        n = len(listed(path))
        print(f"list {os.path.basename(path)}: {n} rule(s): {'ok' if not bad else 'MISMATCH'}")
        for b in bad:
            print("    MISMATCH " + b)
        failed += bool(bad)
    poss = model(calls)
    bad, ambiguous = compare(poss, listed(sys.argv[4]), targets)
    n = len(calls)
    acked = sum(c["rc"] == 0 for c in calls)
    refused = sum(c["rc"] == 1 for c in calls)
    print(f"client: {n} calls: {acked} acknowledged, {refused} refused, {n - acked - refused} unanswered "
          f"(daemon down or killed mid-call); {ambiguous} target(s) ended with an unacknowledged call")
    for b in bad:
        print("final list: MISMATCH " + b)
    sys.exit(1 if bad or failed else 0)
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

ready() { nbctl status >/dev/null 2>&1; }

# rand_sleep: 50-400 ms
rand_sleep() { sleep "$(awk -v r=$((RANDOM % 351 + 50)) 'BEGIN { printf "%.3f", r / 1000 }')"; }

stop=$NB_TMP/stop pause=$NB_TMP/pause paused=$NB_TMP/paused
: >"$NB_TMP/calls.log"
nb_start_netbumpd
python3 "$NB_TMP/storm.py" run "$NB_NETBUMPCTL" "$NB_SOCK" "$NB_TMP/calls.log" "$stop" "$pause" "$paused" \
        "$SEED" "${targets[@]}" >"$NB_TMP/storm.out" 2>&1 &
client=$!
nb_track_pid "$client"

restore_times=()
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
        nb_alive "$client" || nb_fail "the client died: $(cat "$NB_TMP/storm.out")"
        if ((cycle % CHECK_EVERY == 0)); then
                # paused: kill, start, and the first list must show the acknowledged rules
                rm -f "$paused"
                touch "$pause"
                nb_wait_until 10 test -e "$paused" || nb_fail "cycle $cycle: the client did not pause"
                nb_stop_netbumpd KILL
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
                if out=$(python3 "$NB_TMP/storm.py" check-paused "$paused" "$NB_TMP/list.json" "${targets[@]}"); then
                        nb_say "cycle $cycle: after SIGKILL and restart, list shows the $n acknowledged rule(s), $dt s after launch: ok"
                else
                        nb_record_failure "cycle $cycle: after SIGKILL and restart ($dt s after launch), list differs from the acknowledged rules:"
                        sed 's/^/    /' <<<"$out" >&3
                fi
                rm -f "$pause"
                continue
        fi
        if ((cycle % 2 == 0)); then
                nb_wait_until 10 ready || nb_fail "cycle $cycle: netbumpd (pid $NB_DAEMON_PID) not ready within 10 s"
                # what it restored, checked at the end against the calls made until then
                l0=$EPOCHREALTIME
                if nbctl --json list >"$NB_TMP/list-$cycle.json" 2>/dev/null; then
                        echo "$l0 $EPOCHREALTIME $NB_TMP/list-$cycle.json" >>"$NB_TMP/lists"
                fi
                when="after it was ready"
        else
                when="after its launch"
        fi
        rand_sleep
        nb_stop_netbumpd KILL 3>/dev/null
        nb_say "cycle $cycle: SIGKILL $when; $(wc -l <"$NB_TMP/calls.log") calls so far"
        launch
done

nb_wait_until 10 ready || nb_fail "netbumpd not ready at the end"
touch "$stop"
nb_wait_pid "$client" 30 || nb_fail "the client did not stop"
wait "$client" || nb_record_failure "the client failed: $(cat "$NB_TMP/storm.out")"
nbctl --json list >"$NB_TMP/list.json" || nb_fail "list failed at the end"
touch "$NB_TMP/lists"
if out=$(python3 "$NB_TMP/storm.py" check "$NB_TMP/calls.log" "$NB_TMP/lists" "$NB_TMP/list.json" "${targets[@]}"); then
        sed 's/^/    /' <<<"$out" >&3
        nb_say "lists after restarts and the final list ($(jq '.rules | length' "$NB_TMP/list.json") rules) match the acknowledged calls: ok"
else
        nb_record_failure "a list does not match the acknowledged calls:"
        sed 's/^/    /' <<<"$out" >&3
fi

best=$(printf '%s\n' "${restore_times[@]}" | sort -n | head -n 1)
assert_true "rules listed within $RESTORE_MAX s of a restart at least once (times: ${restore_times[*]} s)" \
        awk -v b="$best" -v m="$RESTORE_MAX" 'BEGIN { exit !(b != "" && b < m) }'

nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
host_snapshot "$snap.after"
assert_same_snapshot "$snap.before" "$snap.after" "nothing left after the storm and SIGTERM"
nb_finish
