#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# netbumpctl against a stand-in daemon (fake-netbumpd.py): what set sends for each option, the
# words it refuses before sending anything, and how list draws nested rules.
#
#   test-netbumpctl.sh NETBUMPCTL FAKE-NETBUMPD
set -uo pipefail

ctl=$1 fake=$2
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed"; exit 77; }

tmp=$(mktemp -d)
fake_pid=
cleanup() {
        [[ -n $fake_pid ]] && kill "$fake_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
sock=$tmp/netbumpd.sock log=$tmp/requests rules=$tmp/rules.json
: >"$log"
echo '[]' >"$rules"
python3 "$fake" "$sock" "$log" "$rules" &
fake_pid=$!
for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { echo "the stand-in daemon did not start"; exit 1; }

passed=0 failed=0
ok() {
        echo "ok   $1"
        passed=$((passed + 1))
}
fail() {
        echo "FAIL $1"
        failed=$((failed + 1))
}

# sends ARGS REQUEST OUTPUT: set ARGS exits 0, having sent exactly REQUEST ("Set {json}") and
# printed OUTPUT
sends() {
        local args=$1 want=$2 want_out=$3 out rc got
        local -a argv
        read -ra argv <<<"$args"
        out=$("$ctl" --socket "$sock" set "${argv[@]}" 2>&1)
        rc=$?
        got=$(tail -n 1 "$log")
        if [[ $rc == 0 && $got == "$want" && $out == "$want_out" ]]; then
                ok "set $args sends $want"
        else
                fail "set $args: exit $rc, sent '$got' (expected '$want'), printed '$out' (expected '$want_out')"
        fi
}

# refuses ARGS MESSAGE: set ARGS exits 2 with MESSAGE on stderr and sends nothing
refuses() {
        local args=$1 want=$2 err rc before after
        local -a argv
        read -ra argv <<<"$args"
        before=$(wc -l <"$log")
        err=$("$ctl" --socket "$sock" set "${argv[@]}" 2>&1 >/dev/null)
        rc=$?
        after=$(wc -l <"$log")
        if [[ $rc == 2 && $err == *"$want"* && $before == "$after" ]]; then
                ok "set $args refused: $want"
        else
                fail "set $args: exit $rc (expected 2), said '$err' (expected '$want'), $((after - before)) requests sent"
        fi
}

# --- set: only what was given ----------------------------------------------------------------------
sends "user@0 5mbit" 'Set {"down": 5000000, "target": "user@0", "up": 5000000}' \
        "user@0: up 5mbit, down 5mbit, inside all"
sends "all 100mbit" 'Set {"down": 100000000, "target": "all", "up": 100000000}' "all: up 100mbit, down 100mbit"
sends "user@0 --down 8mbit --min 1mbit --priority high" \
        'Set {"down": 8000000, "min_down": 1000000, "min_up": 1000000, "priority": "high", "target": "user@0"}' \
        "user@0: up unlimited (min 1mbit), down 8mbit (min 1mbit), priority high, inside all"
# a minimum or a priority alone changes just that on an existing rule
sends "user@0 --priority low" 'Set {"priority": "low", "target": "user@0"}' \
        "user@0: up unlimited, down unlimited, priority low, inside all"
sends "user@0 --priority=normal" 'Set {"priority": "normal", "target": "user@0"}' \
        "user@0: up unlimited, down unlimited, inside all"
sends "user@0 --min-up=2mbit --up 4mbit" 'Set {"min_up": 2000000, "target": "user@0", "up": 4000000}' \
        "user@0: up 4mbit (min 2mbit), down unlimited, inside all"
sends "user@0 --min-down 3mbit" 'Set {"min_down": 3000000, "target": "user@0"}' \
        "user@0: up unlimited, down unlimited (min 3mbit), inside all"
sends "user@0 --min none" 'Set {"min_down": 0, "min_up": 0, "target": "user@0"}' \
        "user@0: up unlimited, down unlimited, inside all"
sends "user@0 --min 0 --min-up 1mbit" 'Set {"min_down": 0, "min_up": 1000000, "target": "user@0"}' \
        "user@0: up unlimited (min 1mbit), down unlimited, inside all"
# a minimum equal to the limit, or under no limit of its own (the rules around it bound it)
sends "user@0 4mbit --min 4mbit" \
        'Set {"down": 4000000, "min_down": 4000000, "min_up": 4000000, "target": "user@0", "up": 4000000}' \
        "user@0: up 4mbit (min 4mbit), down 4mbit (min 4mbit), inside all"
sends "user@0 --up unlimited --min 5mbit" 'Set {"min_down": 5000000, "min_up": 5000000, "target": "user@0", "up": 0}' \
        "user@0: up unlimited (min 5mbit), down unlimited (min 5mbit), inside all"
sends "user@0 --down 4mbit --min-up 5mbit" 'Set {"down": 4000000, "min_up": 5000000, "target": "user@0"}' \
        "user@0: up unlimited (min 5mbit), down 4mbit, inside all"
sends "user@0 unlimited --priority high" 'Set {"down": 0, "priority": "high", "target": "user@0", "up": 0}' \
        "user@0: up unlimited, down unlimited, priority high, inside all"

# --- set: refused before sending -----------------------------------------------------------------
refuses "user@0 4mbit --min 5mbit" "netbumpctl: --min 5mbit is above the limit 4mbit"
refuses "user@0 --min 5mbit 4mbit" "netbumpctl: --min 5mbit is above the limit 4mbit"
refuses "user@0 --up 4mbit --min 5mbit" "netbumpctl: --min 5mbit is above the upload limit 4mbit"
refuses "user@0 --down 4000kbit --min-down 5mbit" "netbumpctl: --min-down 5mbit is above the download limit 4000kbit"
refuses "user@0 8mbit --down 4mbit --min 5mbit" "netbumpctl: --min 5mbit is above the download limit 4mbit"
refuses "user@0 --priority urgent" "netbumpctl: invalid priority 'urgent' (expected high, normal or low)"
refuses "user@0 --priority High" "invalid priority 'High'"
refuses "user@0 --priority" "netbumpctl: --priority needs high, normal or low"
refuses "user@0 --min" "netbumpctl: --min needs a rate"
refuses "user@0 --min-up fast" "invalid minimum rate 'fast'"
refuses "user@0 --min unlimited" "--min takes a rate or 'none' (no guaranteed minimum), not 'unlimited'"
refuses "user@0 --minimum 1mbit" "unknown option '--minimum' for set"
refuses "user@0" "usage: set TARGET"
refuses "user@0 unlimited" "'unlimited' as the only rate would limit nothing: use unset"
refuses "all: 5mbit" "invalid target 'all:'"

# --- list: the tree ------------------------------------------------------------------------------
# rule TARGET PARENT UP DOWN [MIN_UP MIN_DOWN PRIORITY]: one rule object as List has it
rule() {
        local parent=null
        [[ $2 != - ]] && parent="\"$2\""
        printf '{"target": "%s", "kind": "x", "class": "6e62:10", "up": %s, "down": %s, "min_up": %s,
                 "min_down": %s, "priority": "%s", "parent": %s, "complete": true, "future": [1],
                 "up_stats": {"rate": 1000, "bytes": 2048, "packets": 3, "drops": 0, "backlog": 0},
                 "down_stats": {"rate": 0, "bytes": 0, "packets": 0, "drops": 0, "backlog": 0}}' \
                "$1" "$3" "$4" "${5:-0}" "${6:-0}" "${7:-normal}" "$parent"
}
# lists NAME ARGS EXPECTED: list ARGS prints EXPECTED exactly
lists() {
        local name=$1 args=$2 want=$3 out
        local -a argv
        read -ra argv <<<"$args"
        out=$("$ctl" --socket "$sock" list "${argv[@]}" 2>&1)
        if [[ $out == "$want" ]]; then
                ok "list $args: $name"
        else
                fail "list $args: $name:"
                diff <(printf '%s\n' "$want") <(printf '%s\n' "$out") | sed 's/^/    /'
        fi
}

# Without minimums or priorities: the columns as they always were, the rules by target.
{
        echo '['
        rule user@1000 - 2000000 0
        echo ,
        rule cgroup:/b - 5000000 5000000
        echo ']'
} >"$rules"
lists "no MIN and PRIO columns" "" "$(cat <<'EOF'
TARGET                           DIR       LIMIT         RATE      BYTES    PACKETS    DROPS  BACKLOG
cgroup:/b                        up        5mbit        1kbit     2.0KiB          3        0       0B
                                 down      5mbit            0         0B          0        0       0B
user@1000                        up        2mbit        1kbit     2.0KiB          3        0       0B
                                 down          -            0         0B          0        0       0B
EOF
)"

# Nested: each rule under its parent, siblings by target ("pid:9" before "pid:10"), a rule whose
# parent the caller cannot see at the top.
{
        echo '['
        rule pid:10 cgroup:/a/b 1000000 0
        echo ,
        rule cgroup:/a all 20000000 20000000 0 5000000 high
        echo ,
        rule user@1000 all 2000000 0 0 0 low
        echo ,
        rule all - 100000000 100000000
        echo ,
        rule pid:9 cgroup:/a/b 0 1000000
        echo ,
        rule cgroup:/a/b cgroup:/a 0 10000000 1000000 0
        echo ,
        rule cgroup:/z cgroup:/hidden 3000000 0
        echo ']'
} >"$rules"
lists "a tree with MIN and PRIO" "" "$(cat <<'EOF'
TARGET                           DIR       LIMIT        MIN PRIO           RATE      BYTES    PACKETS    DROPS  BACKLOG
all                              up      100mbit          - normal        1kbit     2.0KiB          3        0       0B
                                 down    100mbit          -                   0         0B          0        0       0B
  cgroup:/a                      up       20mbit          - high          1kbit     2.0KiB          3        0       0B
                                 down     20mbit      5mbit                   0         0B          0        0       0B
    cgroup:/a/b                  up            -      1mbit normal        1kbit     2.0KiB          3        0       0B
                                 down     10mbit          -                   0         0B          0        0       0B
      pid:9                      up            -          - normal        1kbit     2.0KiB          3        0       0B
                                 down      1mbit          -                   0         0B          0        0       0B
      pid:10                     up        1mbit          - normal        1kbit     2.0KiB          3        0       0B
                                 down          -          -                   0         0B          0        0       0B
  user@1000                      up        2mbit          - low           1kbit     2.0KiB          3        0       0B
                                 down          -          -                   0         0B          0        0       0B
cgroup:/z                        up        3mbit          - normal        1kbit     2.0KiB          3        0       0B
                                 down          -          -                   0         0B          0        0       0B
EOF
)"
lists "the rule and those around it" "pid:10" "$(cat <<'EOF'
pid:10 falls under pid:10, inside cgroup:/a/b, inside cgroup:/a, inside all
TARGET                           DIR       LIMIT        MIN PRIO           RATE      BYTES    PACKETS    DROPS  BACKLOG
all                              up      100mbit          - normal        1kbit     2.0KiB          3        0       0B
                                 down    100mbit          -                   0         0B          0        0       0B
  cgroup:/a                      up       20mbit          - high          1kbit     2.0KiB          3        0       0B
                                 down     20mbit      5mbit                   0         0B          0        0       0B
    cgroup:/a/b                  up            -      1mbit normal        1kbit     2.0KiB          3        0       0B
                                 down     10mbit          -                   0         0B          0        0       0B
      pid:10                     up        1mbit          - normal        1kbit     2.0KiB          3        0       0B
                                 down          -          -                   0         0B          0        0       0B
EOF
)"
lists "only the columns the shown rules need" "user@1000" "$(cat <<'EOF'
user@1000 falls under user@1000, inside all
TARGET                           DIR       LIMIT        MIN PRIO           RATE      BYTES    PACKETS    DROPS  BACKLOG
all                              up      100mbit          - normal        1kbit     2.0KiB          3        0       0B
                                 down    100mbit          -                   0         0B          0        0       0B
  user@1000                      up        2mbit          - low           1kbit     2.0KiB          3        0       0B
                                 down          -          -                   0         0B          0        0       0B
EOF
)"
lists "a target under no rule" "pid:77" "pid:77 falls under no rule: unlimited."

# Parents that go round in a circle still print every rule once.
{
        echo '['
        rule cgroup:/p cgroup:/q 1000000 1000000
        echo ,
        rule cgroup:/q cgroup:/p 2000000 2000000
        echo ']'
} >"$rules"
lists "parents in a circle" "" "$(cat <<'EOF'
TARGET                           DIR       LIMIT         RATE      BYTES    PACKETS    DROPS  BACKLOG
cgroup:/p                        up        1mbit        1kbit     2.0KiB          3        0       0B
                                 down      1mbit            0         0B          0        0       0B
  cgroup:/q                      up        2mbit        1kbit     2.0KiB          3        0       0B
                                 down      2mbit            0         0B          0        0       0B
EOF
)"

# list --json: the daemon's objects, fields it does not know included, unchanged
if "$ctl" --socket "$sock" --json list | python3 -c '
import json, sys
got = json.load(sys.stdin)
want = json.load(open(sys.argv[1]))
sys.exit(0 if got == {"rules": want} else 1)' "$rules"; then
        ok "list --json passes the rules through"
else
        fail "list --json changed the rules"
fi

echo "$passed passed, $failed failed"
((failed == 0))
