#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Control plane and scale of the rule set, items 5 and 6 (memory) of the benchmark issue:
#   - Set calls per second through netbumpd's Varlink socket, back to back on ONE persistent
#     connection (bench/control.sh's own python3 client, not one netbumpctl per call), new rules
#     and then changes of existing ones, with the latency of each call (p50/p99/max);
#   - 10,000 rules (BENCH_RULES) on 10,000 cgroups: daemon RSS and kernel memory per 1000 rules
#     (/proc/meminfo Slab + Percpu + KernelStack deltas, cgroups made before the baseline);
#   - restart: SIGKILL netbumpd with the rules loaded, start it again and time until List shows
#     every rule (the new run takes the killed run's classes over: bench/restart.sh);
#   - nesting: BENCH_NEST (2000) new rules and then changes of them where every rule nests inside
#     an `all` rule and a parent cgroup's rule (cgroups /p/K under /p), against the same on
#     cgroups /f/K without those two rules, on a fresh daemon each, BENCH_NEST_ROUNDS (4) rounds
#     in the order flat nested, nested flat, ...
#
#   bench/control.sh [BUILD_DIR]            (default ./build; about 2-3 minutes)
#
# Goals: >= 1000 Set/s, p99 of one Set <= 10 ms, RSS <= 20 MB with 10,000 rules.
# Writes bench/results/control.json and its section of BENCHMARKS.md.
# Environment: BENCH_RULES=10000 BENCH_OUT=DIR BENCH_LOAD_BUDGET=60 (seconds: loading stops at the
#   next 1000 after that, and the rest of the run uses the rules loaded by then) BENCH_NEST=2000
#   BENCH_NEST_ROUNDS=4

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/section.sh
source "$BENCH_DIR/section.sh"
TOP=$(cd "$BENCH_DIR/.." && pwd)
NETBUMP_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$TOP/build}}
# shellcheck source=tests/integration/lib.sh
source "$TOP/tests/integration/lib.sh"
NB_TEST_NAME=bench-control

RULES=${BENCH_RULES:-10000}
NEST=${BENCH_NEST:-2000}
NEST_ROUNDS=${BENCH_NEST_ROUNDS:-4}
OUT_DIR=${BENCH_OUT:-}
json_out=${OUT_DIR:-$BENCH_DIR/results}/control.json
md_out=${OUT_DIR:-$TOP}/BENCHMARKS.md

nb_require_daemon
command -v python3 >/dev/null || nb_skip "python3 is not installed"

if [[ -n ${BENCH_REPORT_ONLY:-} ]]; then
        json_out=$BENCH_REPORT_ONLY
        [[ -s $json_out ]] || nb_fail "no results in $json_out"
else
nb_setup
bench_private_binaries

cat >"$NB_TMP/vl.py" <<'PY'
# vl.py SOCKET set PREFIX FIRST COUNT RATE_BASE | list | count: Varlink calls on one connection
import json, socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
buf = b""
def call(method, params):
    global buf
    sock.sendall(json.dumps({"method": "io.netbump.Manager." + method, "parameters": params}).encode() + b"\0")
    while b"\0" not in buf:
        d = sock.recv(1 << 20)
        if not d:
            raise SystemExit("connection closed")
        buf += d
    msg, buf = buf.split(b"\0", 1)
    return json.loads(msg)
if sys.argv[2] == "set":
    prefix, first, count, base = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    budget = float(sys.argv[7]) if len(sys.argv) > 7 else 1e9
    lat, errors, blocks = [], {}, []
    t0 = tb = time.monotonic()
    for i in range(first, first + count):
        if i > first and (i - first) % 1000 == 0:
            now = time.monotonic()
            blocks.append({"upto": i, "per_second": 1000 / (now - tb)})
            tb = now
            if now - t0 > budget:
                break
        bps = (base + i % 50) * 1000000
        a = time.monotonic()
        r = call("Set", {"target": f"cgroup:{prefix}/{i}", "up": bps, "down": bps})
        lat.append((time.monotonic() - a) * 1000)
        if "error" in r:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    el = time.monotonic() - t0
    count = len(lat)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(json.dumps({"calls": count, "seconds": el, "per_second": count / el, "p50_ms": q(0.5),
                      "p99_ms": q(0.99), "max_ms": lat[-1], "errors": errors, "blocks": blocks}))
elif sys.argv[2] == "count":
    print(len(call("List", {}).get("parameters", {}).get("rules", [])))
PY
vl() { timeout -k 2 300 python3 "$NB_TMP/vl.py" "$NB_SOCK" "$@"; }

# kernel memory now, KiB: Slab + Percpu + KernelStack + PageTables (the others on the machine add noise)
kmem() { awk '/^(Slab|Percpu|KernelStack|PageTables):/ { s += $2 } END { print s }' /proc/meminfo; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$NB_DAEMON_PID/status"; }

# the cgroups first, so that the baseline holds them
nb_info "making $RULES cgroups"
mkdir -p "$NB_CGROOT/r"
(cd "$NB_CGROOT/r" && seq 0 $((RULES - 1)) | xargs mkdir)
PREFIX=$(cgroup_rel "$NB_CGROOT/r")

# --- nested against flat, each on a fresh daemon
mkdir -p "$NB_CGROOT/p" "$NB_CGROOT/f"
(cd "$NB_CGROOT/p" && seq 0 $((NEST - 1)) | xargs mkdir)
(cd "$NB_CGROOT/f" && seq 0 $((NEST - 1)) | xargs mkdir)
NEST_RAW=$NB_TMP/nest.jsonl
: >"$NEST_RAW"
for ((round = 1; round <= NEST_ROUNDS; round++)); do
        order=(flat nested)
        ((round % 2 == 0)) && order=(nested flat)
        for variant in "${order[@]}"; do
                nb_start_netbumpd >/dev/null
                if [[ $variant == nested ]]; then
                        nbctl set all 1gbit >/dev/null || nb_fail "set all failed"
                        nbctl set "cgroup:$(cgroup_rel "$NB_CGROOT/p")" 900mbit >/dev/null || nb_fail "set /p failed"
                        nprefix=$(cgroup_rel "$NB_CGROOT/p")
                else
                        nprefix=$(cgroup_rel "$NB_CGROOT/f")
                fi
                n_new=$(vl set "$nprefix" 0 "$NEST" 1) || nb_fail "set failed"
                n_change=$(vl set "$nprefix" 0 "$NEST" 51) || nb_fail "set failed"
                # where the last rule sits: its parent, and how many rules are above it
                parent=$(nbctl --json list | jq -c --arg t "cgroup:$nprefix/$((NEST - 1))" \
                        '(.rules | map({key: .target, value: .parent}) | from_entries) as $p
                         | [$t | recurse($p[.] // empty)] | {parent: .[1], depth: length}')
                t0=$EPOCHREALTIME
                kill -TERM "$NB_DAEMON_PID"
                # a clean stop removes every class, one by one: bounded, and never a SIGKILL here,
                # which would leave pins for the next start to take over
                nb_wait_pid "$NB_DAEMON_PID" 120 || nb_fail "netbumpd did not stop within 120 s of SIGTERM"
                wait "$NB_DAEMON_PID" 2>/dev/null || :
                NB_DAEMON_PID=
                stop_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
                jq -nc --arg v "$variant" --argjson round "$round" --argjson new "$n_new" --argjson change "$n_change" \
                        --argjson where "$parent" --argjson stop "$stop_s" \
                        '{variant: $v, round: $round, new: $new, change: $change, last_rule: $where, stop_s: $stop}' >>"$NEST_RAW"
                nb_say "$variant, round $round: new $(jq -c '{per_second, p99_ms}' <<<"$n_new"), changes $(jq -c '{per_second, p99_ms}' <<<"$n_change"), last rule $parent, stop ${stop_s}s"
        done
done
nest=$(jq -s -c 'if length > 0 then . else null end' "$NEST_RAW")

sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || :
nb_start_netbumpd >/dev/null
sleep 0.5
k0=$(kmem) rss0=$(rss)
FIRST=$((RULES < 2000 ? RULES : 2000))
new=$(vl set "$PREFIX" 0 "$FIRST" 1) || nb_fail "set failed"
nb_say "new rules, first $FIRST: $new"
change=$(vl set "$PREFIX" 0 "$FIRST" 51) || nb_fail "set failed"
nb_say "changes of $FIRST: $change"
t0=$EPOCHREALTIME
rest=null
((RULES > FIRST)) && { rest=$(vl set "$PREFIX" "$FIRST" $((RULES - FIRST)) 1 "${BENCH_LOAD_BUDGET:-60}") || nb_fail "set failed"; }
t1=$EPOCHREALTIME
nb_say "the other $((RULES - FIRST)): $rest"
sleep 1.5
k1=$(kmem) rss1=$(rss)
have=$(vl count)
nb_say "$have rules; RSS $rss0 -> $rss1 KiB; kernel $k0 -> $k1 KiB"
classes=$(ip netns exec "$NB_NS_A" tc class show dev "$NB_IF_A" | grep -c . || :)
# 300 changes are enough for a p99 here, and each is slow with many rules (see the finding)
change_10k=$(vl set "$PREFIX" 0 300 101) || nb_fail "set failed"
nb_say "changes of 300 with $have loaded: $change_10k"

# restart after SIGKILL
nb_kill_netbumpd
tk=$EPOCHREALTIME
nb_start_netbumpd >/dev/null
_all_back() { [[ $(vl count 2>/dev/null) == "$have" ]]; }
nb_wait_until 90 _all_back || nb_record_failure "not all $have rules back within 90 s"
tr=$EPOCHREALTIME
rss2=$(rss)
# SIGKILL again: a SIGTERM would remove every class one by one first, which takes longer than the
# harness waits with thousands of rules; the namespaces go with the teardown anyway
nb_kill_netbumpd
ts0=0 ts1=0
mkdir -p "$(dirname "$json_out")"
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --argjson rules "$RULES" --argjson have "$have" --argjson new "$new" --argjson change "$change" \
        --argjson rest "$rest" --argjson change_10k "$change_10k" --argjson classes "$classes" --argjson nest "$nest" \
        --argjson k0 "$k0" --argjson k1 "$k1" --argjson rss0 "$rss0" --argjson rss1 "$rss1" --argjson rss2 "${rss2:-0}" \
        --argjson load_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        --argjson restore_s "$(awk -v a="$tk" -v b="$tr" 'BEGIN { print b - a }')" \
        --argjson start_s "$(awk -v a="$ts0" -v b="$ts1" 'BEGIN { print b - a }')" '
        {date: $date, commit: $commit, rules: $rules, rules_listed: $have, set_new: $new, set_change: $change,
         set_rest: $rest, set_change_loaded: $change_10k, htb_classes_on_veth: $classes,
         kmem_kib: {before: $k0, after: $k1, per_1000_rules: (($k1 - $k0) * 1000 / $have)},
         rss_kib: {empty: $rss0, loaded: $rss1, after_restore: $rss2},
         restore_after_sigkill_s: $restore_s, start_with_state_s: $start_s,
         nest: (if $nest == null then null else {runs: $nest}
                | def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
                .summary = ([["new", "change"][] as $k | ["flat", "nested"][] as $v
                        | [.runs[] | select(.variant == $v) | .[$k]] as $x
                        | {key: "\($k)_\($v)", value: {per_second: ($x | map(.per_second) | med), p99_ms: ($x | map(.p99_ms) | med)}}]
                        | from_entries) end)}' >"$json_out"
fi

section=$(jq -r '
        def r(n): if . == null then "-" else . * pow(10; n) | round / pow(10; n) end;
        def pf(c): if c then "pass" else "**MISS**" end;
        ([.set_new, .set_change, .set_change_loaded] | map(.per_second) | min) as $ops
        | ([.set_new, .set_change, .set_change_loaded] | map(.p99_ms) | max) as $p99
        | "## Control plane and rule-set scale (`bench/control.sh`)",
        "",
        "\(.date), commit \(.commit). One python3 Varlink client on one persistent connection sends `Set` calls",
        "back to back (each waits for its reply) on `cgroup:` targets, both directions; \(.rules) cgroups are made",
        "before the daemon starts so that the memory baseline already holds them. Kernel memory: Slab + Percpu",
        "+ KernelStack + PageTables from /proc/meminfo (machine-wide: other work adds noise).",
        "",
        "| measurement | calls | Set/s | p50 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---|",
        (["new rules (empty daemon)", .set_new], ["changes of those rules", .set_change],
         ["new rules, \(.set_new.calls) → \(.rules_listed) (time budget)", .set_rest], ["changes with \(.rules_listed) loaded", .set_change_loaded]
         | select(.[1] != null)
         | "| \(.[0]) | \(.[1].calls) | \(.[1].per_second | r(0)) | \(.[1].p50_ms | r(2)) | \(.[1].p99_ms | r(2)) | \(.[1].max_ms | r(1)) | \(.[1].errors | tostring) |"),
        "",
        "| measurement | value | goal |",
        "|---|---:|---|",
        "| Set calls per second (worst row above) | \($ops | r(0)) | ≥ 1000: \(pf($ops >= 1000)) |",
        "| p99 of one Set (worst row above) | \($p99 | r(2)) ms | ≤ 10 ms: \(pf($p99 <= 10)) |",
        "| rules listed after loading | \(.rules_listed) of \(.rules) | |",
        "| HTB classes on the veth | \(.htb_classes_on_veth) | |",
        "| netbumpd RSS, empty → \(.rules_listed) rules | \(.rss_kib.empty / 1024 | r(1)) → \(.rss_kib.loaded / 1024 | r(1)) MiB | ≤ 20 MB: \(pf(.rss_kib.loaded <= 20000)) |",
        "| netbumpd RSS after the restore below | \(.rss_kib.after_restore / 1024 | r(1)) MiB | ≤ 20 MB: \(pf(.rss_kib.after_restore <= 20000)) |",
        "| kernel memory per 1000 rules | \(.kmem_kib.per_1000_rules / 1024 | r(2)) MiB | |",
        "| SIGKILL with \(.rules_listed) rules → all listed again | \(.restore_after_sigkill_s | r(2)) s | |",
        "",
        (if .set_rest != null and (.set_rest.blocks | length) > 0 then
          "New rules per second as the rule set grows (per block of 1000): " +
          ([.set_rest.blocks[] | "\(.upto): \(.per_second | r(0))/s"] | join(", ")) + "." else empty end),
        ""' "$json_out")
section+=$'\n'"Where a Set's time goes (\`perf record\` on netbumpd while rules load): the daemon's own work is a
few percent since the state file takes only the changed rule's lines (src/netbumpd/state.c) and class
statistics find their rule by class id. Every change is one batch of acknowledged netlink requests
(src/netbumpd/tc-plan.c, one sendmsg() for the classes and queues on the veth and the IFB). A new rule makes classes, and the kernel's cost
of making one grows with the classes already on the host: \`tc_bind_tclass()\` walks every class of the
qdisc (\`htb_walk\`, a mutex per class in \`__tcf_get_next_chain\`), and binding the class's filter block
walks a list of every block on the host in \`flow_indr_dev_setup_offload()\`. With thousands of rules
those two are most of the time, which is why new rules slow down as the set grows while changes do not.
The first 1000 rules have three classes per direction (the small-packet leaves, see bench/latency.sh),
later ones one (the rule class is the leaf, until a rule is nested in it: then it is made again with
its bulk leaf); a Set is answered once the rule class and its bulk leaf exist, and the small-packet
leaf follows when no request has come for 50 ms (at the latest a second after the first rule waiting
for it), which is why a burst of new rules is not slowed by it. The restore time below was measured
before a restart took over the killed run's classes (bench/restart.sh measures that one): it is what
a start that cannot take over (no bpffs, or maps of another version) still takes."$'\n'

nested=$(jq -r '
        def r(n): if . == null then "-" else . * pow(10; n) | round / pow(10; n) end;
        def pf(c): if c then "pass" else "**MISS**" end;
        if .nest then
          (.nest.runs[0].new.calls) as $n | .nest.summary as $s
          | def ratio(a; b): if a == null or b == null or a == 0 then "-" else b / a | r(2) end;
          "### Nested rules against flat ones",
          "",
          "\($n) new rules and then \($n) changes of them, as above, on a fresh daemon each time. nested: each on",
          "a cgroup /p/K, inside the rule of cgroup /p (900mbit), inside `all` (1gbit): three rule levels, each",
          "rule'"'"'s class a child of /p'"'"'s; flat: the same on cgroups /f/K with no rule on /f and no `all`. Rounds",
          "alternate the order (flat nested, nested flat). Stop: SIGTERM until the exit, every class removed.",
          "",
          "| variant | round | new: Set/s | p50 ms | p99 ms | max ms | changes: Set/s | p50 ms | p99 ms | max ms | last rule: parent, levels | stop s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
          (.nest.runs | sort_by(.round, .variant)[]
           | "| \(.variant) | \(.round) | \(.new.per_second | r(0)) | \(.new.p50_ms | r(2)) | \(.new.p99_ms | r(2)) | \(.new.max_ms | r(1)) | \(.change.per_second | r(0)) | \(.change.p50_ms | r(2)) | \(.change.p99_ms | r(2)) | \(.change.max_ms | r(1)) | \(.last_rule.parent // "none" | sub("cgroup:/netbump-test-[^/]*"; "cgroup:")), \(.last_rule.depth) | \(.stop_s | r(2)) |"),
          "",
          "| median of the rounds | flat | nested | nested / flat | goal (nested) |",
          "|---|---:|---:|---:|---|",
          "| new rules, Set/s | \($s.new_flat.per_second | r(0)) | \($s.new_nested.per_second | r(0)) | \(ratio($s.new_flat.per_second; $s.new_nested.per_second)) | ≥ 1000: \(pf($s.new_nested.per_second >= 1000)) |",
          "| new rules, p99 ms | \($s.new_flat.p99_ms | r(2)) | \($s.new_nested.p99_ms | r(2)) | \(ratio($s.new_flat.p99_ms; $s.new_nested.p99_ms)) | ≤ 10 ms: \(pf($s.new_nested.p99_ms <= 10)) |",
          "| changes, Set/s | \($s.change_flat.per_second | r(0)) | \($s.change_nested.per_second | r(0)) | \(ratio($s.change_flat.per_second; $s.change_nested.per_second)) | ≥ 1000: \(pf($s.change_nested.per_second >= 1000)) |",
          "| changes, p99 ms | \($s.change_flat.p99_ms | r(2)) | \($s.change_nested.p99_ms | r(2)) | \(ratio($s.change_flat.p99_ms; $s.change_nested.p99_ms)) | ≤ 10 ms: \(pf($s.change_nested.p99_ms <= 10)) |",
          "",
          (if $s.new_nested.per_second < 1000 and $s.new_flat.per_second < 1000 then
            "Flat rules in the same run miss the 1000 Set/s goal for new rules too (\($s.new_flat.per_second | r(0))/s), as does the first row of",
            "the table above: on this machine new rules miss it with or without nesting; the ratio is what nesting costs.",
            ""
           else empty end)
        else empty end' "$json_out")
[[ -n $nested ]] && section+=$'\n'"$nested"$'\n'

bench_write_section control "$section" "$md_out"
printf '%s\n' "$section" >&3
nb_say "wrote $json_out and the control section of $md_out"
nb_finish
