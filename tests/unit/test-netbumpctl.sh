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
sends "unit:backup 5mbit --persistent" \
        'Set {"down": 5000000, "persistent": true, "target": "unit:backup.service", "up": 5000000}' \
        "unit:backup.service: up 5mbit, down 5mbit, inside all"
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
# a target with an escape sequence is named escaped: nothing a terminal acts on goes out raw
err=$("$ctl" --socket "$sock" set $'cgroup:/a\e[31mb' 4mbit 2>&1 >/dev/null)
if [[ $err == *'\x1b[31m'* && $err != *$'\e'* ]]; then
        ok "set of a target with ESC: named escaped ($err)"
else
        fail "set of a target with ESC: '$err' (expected \\x1b, no raw ESC)"
fi
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

# --- set: words that are nearly right --------------------------------------------------------------
refuses "user@0 5 mbit" "rate '5' has its unit 'mbit' apart: write them as one word, '5mbit'"
refuses "user@0 --down 5 mbit" "download rate '5' has its unit 'mbit' apart"
refuses "user@0 5" "rate '5' has no unit, so it counts bit/s, out of range (8bit to 10tbit): give a unit, e.g. '5kbit' or '5mbit'"
refuses "unit:backup.timer 5mbit" "cannot limit 'unit:backup.timer': a valid unit, but timers, targets"
refuses "unit:getty@.service 5mbit" "cannot limit 'unit:getty@.service': a template unit runs nothing itself"
refuses "unit:a/b 5mbit" "invalid target 'unit:a/b': invalid unit name"
# a unit named as systemctl takes it: without a suffix it is a service
sends "unit:backup 5mbit" 'Set {"down": 5000000, "target": "unit:backup.service", "up": 5000000}' \
        "unit:backup.service: up 5mbit, down 5mbit, inside all"
# a bare number is bit/s, as in tc(8), with a warning
sends "user@0 500" 'Set {"down": 500, "target": "user@0", "up": 500}' \
        "netbumpctl: warning: '500' has no unit: 500 bit/s (did you mean 500kbit or 500mbit?)
user@0: up 500bit, down 500bit, inside all"
# the cgroup2 mount's own path, as --cgroup-root takes it, is the path below the mount
mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } }' \
        /proc/self/mountinfo)
if [[ -n $mnt && $mnt != / ]]; then
        sends "cgroup:$mnt/a/b 1mbit" 'Set {"down": 1000000, "target": "cgroup:/a/b", "up": 1000000}' \
                "cgroup:/a/b: up 1mbit, down 1mbit, inside all"
        sends "cgroup:$mnt 1mbit" 'Set {"down": 1000000, "target": "cgroup:/", "up": 1000000}' \
                "cgroup:/: up 1mbit, down 1mbit, inside all"
else
        echo "note: no cgroup2 mount to strip here"
fi

# --- unset says what it did, as set does ----------------------------------------------------------
out=$("$ctl" --socket "$sock" unset unit:backup 2>&1)
rc=$?
got=$(tail -n 1 "$log")
if [[ $rc == 0 && $out == "unit:backup.service: rule removed, no limit of its own." &&
        $got == 'Unset {"target": "unit:backup.service"}' ]]; then
        ok "unset unit:backup removes unit:backup.service and says so"
else
        fail "unset unit:backup: exit $rc, printed '$out', sent '$got'"
fi

# --- help: the whole, and each verb's ---------------------------------------------------------------
# helps ARGS FIRST-LINE: netbumpctl ARGS exits 0 and its first line is FIRST-LINE
helps() {
        local out rc
        # shellcheck disable=SC2086 # ARGS are words
        out=$("$ctl" $1 2>&1)
        rc=$?
        if [[ $rc == 0 && ${out%%$'\n'*} == "$2" ]]; then
                ok "$1: $2"
        else
                fail "$1: exit $rc, first line '${out%%$'\n'*}' (expected '$2')"
        fi
}
helps "help" "Usage: netbumpctl [OPTIONS] VERB [ARGS]"
helps "--help" "Usage: netbumpctl [OPTIONS] VERB [ARGS]"
helps "help set" "Usage: netbumpctl set TARGET RATE | TARGET [--up R] [--down R] [--min R] [--min-up R] [--min-down R] [--priority P] [--remote SCOPE] [--persistent]"
helps "set --help" "Usage: netbumpctl set TARGET RATE | TARGET [--up R] [--down R] [--min R] [--min-up R] [--min-down R] [--priority P] [--remote SCOPE] [--persistent]"
helps "set user@0 -h" "Usage: netbumpctl set TARGET RATE | TARGET [--up R] [--down R] [--min R] [--min-up R] [--min-down R] [--priority P] [--remote SCOPE] [--persistent]"
helps "unset --help" "Usage: netbumpctl unset [--persistent] TARGET [--remote SCOPE]"
helps "list --help" "Usage: netbumpctl list [TARGET]"
helps "top --help" "Usage: netbumpctl top [--once] [--group process|user|unit|rule|connection] [--sort rate|total|name] [--bytes] [--filter TEXT]"
helps "help run" "Usage: netbumpctl run RATE -- CMD [ARGS...] | [--up R] [--down R] -- CMD [ARGS...]"
helps "help status" "Usage: netbumpctl status"
# every verb the help lists has help of its own
for v in $("$ctl" help | awk '/^Verbs/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'); do
        "$ctl" help "$v" >/dev/null 2>&1 && ok "help $v" || fail "help $v fails"
done
err=$("$ctl" help frobnicate 2>&1)
[[ $? == 2 && $err == "netbumpctl: no verb 'frobnicate' (see netbumpctl help)" ]] && ok "help frobnicate refused" ||
        fail "help frobnicate: '$err'"

# --- JSON: errors found before any reply are JSON too ----------------------------------------------
# json_error EXIT NAME REASON ARGS...: netbumpctl --json ARGS exits EXIT, prints on stdout one JSON
# error named NAME whose reason contains REASON
json_error() {
        local want_rc=$1 name=$2 reason=$3 out rc
        shift 3
        out=$("$ctl" "$@" 2>/dev/null)
        rc=$?
        if [[ $rc == "$want_rc" ]] && jq -e --arg n "$name" --arg r "$reason" --argjson c "$want_rc" \
                '.error == $n and (.parameters.reason | contains($r)) and .parameters.exit_code == $c' \
                <<<"$out" >/dev/null 2>&1; then
                ok "$* prints the JSON error $name"
        else
                fail "$*: exit $rc (expected $want_rc), printed '$out'"
        fi
}
if command -v jq >/dev/null 2>&1; then
        json_error 2 io.netbump.Client.InvalidArgument "invalid target 'all:'" --socket "$sock" --json set all: 5mbit
        json_error 2 io.netbump.Client.InvalidArgument "rate '5' has its unit" --socket "$sock" set user@0 5 mbit --json
        json_error 2 io.netbump.Client.InvalidArgument "missing verb" --json
        json_error 2 io.netbump.Client.InvalidArgument "unknown verb 'frob'" --json frob
        json_error 3 io.netbump.Client.Unreachable "cannot reach netbumpd at $tmp/nothing" --socket "$tmp/nothing" --json list
        # the daemon's own error: its Varlink error, once
        out=$("$ctl" --socket "$sock" --json status 2>/dev/null)
        [[ $(jq -r .error <<<"$out") == org.varlink.service.MethodNotFound && $(jq -s length <<<"$out") == 1 ]] &&
                ok "a daemon's error is printed once, as it came" || fail "daemon error in JSON: '$out'"
else
        echo "note: jq is not installed, JSON errors not checked"
fi

# --- list: the tree ------------------------------------------------------------------------------
# rule TARGET PARENT UP DOWN [MIN_UP MIN_DOWN PRIORITY]: one rule object as List has it, made by
# root, its class 6e62:N for the Nth rule made
nth_rule=15
rule() {
        local parent=null
        [[ $2 != - ]] && parent="\"$2\""
        nth_rule=$((nth_rule + 1))
        printf '{"target": "%s", "kind": "x", "class": "6e62:%x", "owner": 0, "up": %s, "down": %s, "min_up": %s,
                 "min_down": %s, "priority": "%s", "parent": %s, "complete": true, "future": [1],
                 "up_stats": {"rate": 1000, "bytes": 2048, "packets": 3, "drops": 0, "backlog": 0},
                 "down_stats": {"rate": 0, "bytes": 0, "packets": 0, "drops": 0, "backlog": 0}}' \
                "$1" "$nth_rule" "$3" "$4" "${5:-0}" "${6:-0}" "${7:-normal}" "$parent"
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
        rule user@4000000 - 2000000 0
        echo ,
        rule cgroup:/b - 5000000 5000000
        echo ']'
} >"$rules"
lists "no MIN and PRIO columns" "" "$(cat <<'EOF'
TARGET        DIR       LIMIT      RATE    BYTES  PACKETS  DROPS  BACKLOG  CLASS    OWNER
cgroup:/b     up        5mbit  1.00kbit  2.00KiB        3      0       0B  6e62:11  root
              down      5mbit      0bit       0B        0      0       0B
user@4000000  up        2mbit  1.00kbit  2.00KiB        3      0       0B  6e62:10  root
              down  unlimited      0bit       0B        0      0       0B
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
        rule user@4000000 all 2000000 0 0 0 low
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
TARGET           DIR       LIMIT    MIN  PRIO        RATE    BYTES  PACKETS  DROPS  BACKLOG  CLASS    OWNER
all              up      100mbit   none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:15  root
                 down    100mbit   none              0bit       0B        0      0       0B
  cgroup:/a      up       20mbit   none  high    1.00kbit  2.00KiB        3      0       0B  6e62:13  root
                 down     20mbit  5mbit              0bit       0B        0      0       0B
    cgroup:/a/b  up    unlimited  1mbit  normal  1.00kbit  2.00KiB        3      0       0B  6e62:17  root
                 down     10mbit   none              0bit       0B        0      0       0B
      pid:9      up    unlimited   none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:16  root
                 down      1mbit   none              0bit       0B        0      0       0B
      pid:10     up        1mbit   none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:12  root
                 down  unlimited   none              0bit       0B        0      0       0B
  user@4000000   up        2mbit   none  low     1.00kbit  2.00KiB        3      0       0B  6e62:14  root
                 down  unlimited   none              0bit       0B        0      0       0B
cgroup:/z        up        3mbit   none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:18  root
                 down  unlimited   none              0bit       0B        0      0       0B
EOF
)"
lists "the rule and those around it" "pid:10" "$(cat <<'EOF'
pid:10 falls under pid:10, inside cgroup:/a/b, inside cgroup:/a, inside all
TARGET           DIR       LIMIT    MIN  PRIO        RATE    BYTES  PACKETS  DROPS  BACKLOG  CLASS    OWNER
all              up      100mbit   none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:15  root
                 down    100mbit   none              0bit       0B        0      0       0B
  cgroup:/a      up       20mbit   none  high    1.00kbit  2.00KiB        3      0       0B  6e62:13  root
                 down     20mbit  5mbit              0bit       0B        0      0       0B
    cgroup:/a/b  up    unlimited  1mbit  normal  1.00kbit  2.00KiB        3      0       0B  6e62:17  root
                 down     10mbit   none              0bit       0B        0      0       0B
      pid:10     up        1mbit   none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:12  root
                 down  unlimited   none              0bit       0B        0      0       0B
EOF
)"
lists "only the columns the shown rules need" "user@4000000" "$(cat <<'EOF'
user@4000000 falls under user@4000000, inside all
TARGET          DIR       LIMIT   MIN  PRIO        RATE    BYTES  PACKETS  DROPS  BACKLOG  CLASS    OWNER
all             up      100mbit  none  normal  1.00kbit  2.00KiB        3      0       0B  6e62:15  root
                down    100mbit  none              0bit       0B        0      0       0B
  user@4000000  up        2mbit  none  low     1.00kbit  2.00KiB        3      0       0B  6e62:14  root
                down  unlimited  none              0bit       0B        0      0       0B
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
TARGET       DIR   LIMIT      RATE    BYTES  PACKETS  DROPS  BACKLOG  CLASS    OWNER
cgroup:/p    up    1mbit  1.00kbit  2.00KiB        3      0       0B  6e62:19  root
             down  1mbit      0bit       0B        0      0       0B
  cgroup:/q  up    2mbit  1.00kbit  2.00KiB        3      0       0B  6e62:1a  root
             down  2mbit      0bit       0B        0      0       0B
EOF
)"

# A 70-character target widens its column: every column still starts where its header does, on
# every line, and a limit such as 123.457mbit fits under LIMIT.
long=cgroup:/system.slice/some-very-long-service-name-for-testing@instance.service
long=${long}$(printf 'x%.0s' $(seq $((70 - ${#long}))))
{
        echo '['
        rule "$long" all 123457000 0
        echo ,
        rule all - 100000000 100000000
        echo ,
        rule user@4000000 all 2000000 4995000 0 0 low
        echo ']'
} >"$rules"
out=$("$ctl" --socket "$sock" list 2>&1)
# aligned OUT: the left-aligned columns start, and the right-aligned ones end, where their headers do
aligned() {
        awk '
        NR == 1 {
                n = split("DIR CLASS OWNER PRIO", left, " ")
                for (i = 1; i <= n; i++) start[left[i]] = index($0, left[i])
                m = split("LIMIT MIN RATE BYTES PACKETS DROPS BACKLOG", right, " ")
                for (i = 1; i <= m; i++) if (index($0, right[i])) stop[right[i]] = index($0, right[i]) + length(right[i]) - 1
                next
        }
        {
                # DIR: "up" or "down" at its column
                d = substr($0, start["DIR"], 4)
                if (d !~ /^(up  |down)$/) { print "line " NR ": DIR column holds \"" d "\""; bad = 1 }
                for (c in stop) {
                        e = stop[c]
                        if (substr($0, e, 1) == " " || (e < length($0) && substr($0, e + 1, 1) != " ")) {
                                print "line " NR ": " c " does not end at column " e; bad = 1
                        }
                }
                if (length($0) >= start["CLASS"] && substr($0, start["CLASS"] - 1, 1) != " ") {
                        print "line " NR ": CLASS does not start at column " start["CLASS"]; bad = 1
                }
        }
        END { exit bad }' <<<"$1"
}
if why=$(aligned "$out") && [[ $out == *"$long  up  "*"123.457mbit"* ]]; then
        ok "list: a 70-character target and 123.457mbit keep every column aligned"
else
        fail "list: columns out of line with a 70-character target: $why"
        printf '%s\n' "$out" | sed 's/^/    /'
fi
# the same numbers in one form: three significant digits and a unit, an idle rate is 0bit
rates=$(awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "RATE") c = i; next }
        $1 == "up" { print $(c - 1) } $2 == "up" { print $c } $1 == "down" { print $(c - 2) }' <<<"$out" | sort | xargs)
[[ $rates == "0bit 0bit 0bit 1.00kbit 1.00kbit 1.00kbit" ]] && ok "list: rates in one form, an idle one 0bit" ||
        fail "list: rates: $rates"
[[ $out == *"6e62:"*"root"* ]] && ok "list: class id and owner shown" || fail "list: no class or owner: $out"

if command -v jq >/dev/null 2>&1; then
        {
                echo '['
                rule pid:10 cgroup:/a/b 1000000 0
                echo ,
                rule cgroup:/a all 20000000 20000000
                echo ,
                rule all - 100000000 100000000
                echo ,
                rule cgroup:/a/b cgroup:/a 0 10000000
                echo ,
                rule user@4000000 all 2000000 0
                echo ']'
        } >"$rules"
        # list TARGET --json: the rules text mode shows (the one that applies and those around it)
        out=$("$ctl" --socket "$sock" list pid:10 --json)
        [[ $(jq -c '[.target, .applies, [.rules[].target]]' <<<"$out") == \
                '["pid:10","pid:10",["all","cgroup:/a","cgroup:/a/b","pid:10"]]' ]] &&
                ok "list pid:10 --json: the rule that applies and those around it" ||
                fail "list pid:10 --json: $(jq -c '[.target, .applies, [.rules[].target]]' <<<"$out")"
        out=$("$ctl" --socket "$sock" list pid:77 --json)
        [[ $(jq -c '[.target, .applies, .rules]' <<<"$out") == '["pid:77",null,[]]' ]] &&
                ok "list pid:77 --json: applies null, no rules" || fail "list pid:77 --json: $out"
        # slashes as they are
        out=$("$ctl" --socket "$sock" --json list)
        [[ $out != *'\/'* && $out == *'"cgroup:/a/b"'* ]] && ok "list --json: slashes not escaped" ||
                fail "list --json escapes slashes: $(grep -m1 -F 'cgroup' <<<"$out")"
        out=$("$ctl" --socket "$sock" --json set cgroup:/a/b 1mbit)
        [[ $out != *'\/'* && $(jq -r .rule.target <<<"$out") == cgroup:/a/b ]] && ok "set --json: slashes not escaped" ||
                fail "set --json: $out"
fi

# --- top --once: as wide as COLUMNS says, sorted, filtered, in bytes -----------------------------------
echo '[]' >"$rules"
long_cmd="/usr/bin/backup-tool --source /srv/data/with/a/long/path --target remote:/archive/with/another/long/path"
cat >"$rules.top" <<JSON
[{"pid": 101, "comm": "backup-tool", "cmdline": "$long_cmd", "uid": 0, "user": "root", "cgroup": "/a",
  "unit": null, "unit_cgroup": null, "rule": null, "up": 0, "down": 0, "up_rate": 8000000, "down_rate": 0,
  "up_bytes": 1000, "down_bytes": 0, "up_packets": 1, "down_packets": 0},
 {"pid": 102, "comm": "apt", "cmdline": "apt-get update", "uid": 0, "user": "root", "cgroup": "/b",
  "unit": null, "unit_cgroup": null, "rule": null, "up": 0, "down": 0, "up_rate": 1000, "down_rate": 2000,
  "up_bytes": 5000000, "down_bytes": 9000000, "up_packets": 1, "down_packets": 0}]
JSON
widest() { awk '{ if (length($0) > w) w = length($0) } END { print w + 0 }'; }
w=$(COLUMNS=200 "$ctl" --socket "$sock" top --once | widest)
out=$(COLUMNS=200 "$ctl" --socket "$sock" top --once)
((w > 132 && w <= 200)) && [[ $out == *"/archive/with"* ]] && ok "top --once with COLUMNS=200 uses the 200 columns ($w)" ||
        fail "top --once with COLUMNS=200: widest line $w: $out"
w=$(env -u COLUMNS "$ctl" --socket "$sock" top --once | widest)
((w <= 132)) && ok "top --once in a pipe without COLUMNS: 132 columns at most ($w)" || fail "top --once: widest line $w"
order() { "$ctl" --socket "$sock" top --once "$@" | awk 'NR > 1 { print $1 }' | xargs; }
[[ $(order) == "101 102" ]] && ok "top --once: by rate" || fail "top --once by rate: $(order)"
[[ $(order --sort total) == "102 101" ]] && ok "top --once --sort total" || fail "top --sort total: $(order --sort total)"
[[ $(order --sort=name) == "101 102" && $(order --sort name --filter apt) == 102 ]] &&
        ok "top --once --sort name, --filter apt" || fail "top --sort name / --filter apt: $(order --sort name --filter apt)"
[[ $(order --filter ROOT) == "101 102" && -z $(order --filter nothing-like-it) ]] &&
        ok "top --once --filter: case-insensitive, on the user too" || fail "top --filter ROOT: $(order --filter ROOT)"
out=$("$ctl" --socket "$sock" top --once --bytes)
[[ $out == *" 1.00MB/s "* && $out == *" 0B/s "* ]] && ok "top --once --bytes: rates in bytes per second" ||
        fail "top --once --bytes: $out"
out=$("$ctl" --socket "$sock" top --once)
[[ $out == *" 8.00mbit "* && $out == *" 0bit "* ]] && ok "top --once: rates as list writes them" || fail "top --once: $out"
json_error 2 io.netbump.Client.InvalidArgument "unknown order 'size'" --socket "$sock" --json top --once --sort size
rm -f "$rules.top"

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

# Persistent rules: a SOURCE column (the file's name and line), "(changed)" when a set changed the
# rule since its line was read; none on a rule made at run time.
nth_rule=0
{
        echo '{"rules": ['
        rule user@4000000 - 2000000 0
        echo ,
        rule cgroup:/b - 5000000 5000000
        echo ,
        rule cgroup:/c - 1000000 1000000
        echo "]}"
} >"$rules.full"
sed -i -e 's|{"target": "user@4000000",|&"persistent": true, "source": "/etc/netbump/rules.d/10-local.rules:3", "overridden": true,|' \
        -e 's|{"target": "cgroup:/b",|&"persistent": true, "source": "/etc/netbump/rules.d/50-netbumpctl.rules:4",|' "$rules.full"
python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["rules"], open(sys.argv[2], "w"))' "$rules.full" "$rules"
lists "a SOURCE column for persistent rules" "" "$(cat <<'EOF'
TARGET        DIR       LIMIT      RATE    BYTES  PACKETS  DROPS  BACKLOG  CLASS   OWNER  SOURCE
cgroup:/b     up        5mbit  1.00kbit  2.00KiB        3      0       0B  6e62:2  root   50-netbumpctl.rules:4
              down      5mbit      0bit       0B        0      0       0B
cgroup:/c     up        1mbit  1.00kbit  2.00KiB        3      0       0B  6e62:3  root
              down      1mbit      0bit       0B        0      0       0B
user@4000000  up        2mbit  1.00kbit  2.00KiB        3      0       0B  6e62:1  root   10-local.rules:3 (changed)
              down  unlimited      0bit       0B        0      0       0B
EOF
)"
# Unshaped paths and waiting targets: one "!" line each under the table; a container named by an
# ID: which one that is.
cat >"$rules" <<'JSON'
[{"id": 1, "target": "container:3f2a", "kind": "container", "class": "6e62:10", "up": 8000000, "down": 0,
  "up_stats": {"bytes": 0, "packets": 0, "drops": 0, "backlog": 0, "rate": 0},
  "down_stats": {"bytes": 0, "packets": 0, "drops": 0, "backlog": 0, "rate": 0},
  "owner": 0, "parent": null, "complete": true, "min_up": 0, "min_down": 0, "priority": "normal",
  "container": {"runtime": "docker", "id": "3f2a9c0d5e6f708192a3", "name": "web", "cgroup": "/system.slice/x"},
  "paths": [{"interface": "eth0", "shaped": true},
            {"interface": "eth1", "shaped": false, "reason": "someone else's root qdisc tbf 1: is on eth1"},
            {"namespace": "net:[4026532]", "shaped": false, "reason": "forwarded"}],
  "unshaped": 2},
 {"id": 2, "target": "machine:db", "kind": "machine", "class": "6e62:11", "up": 8000000, "down": 0,
  "up_stats": {"bytes": 0, "packets": 0, "drops": 0, "backlog": 0, "rate": 0},
  "down_stats": {"bytes": 0, "packets": 0, "drops": 0, "backlog": 0, "rate": 0},
  "owner": 0, "parent": null, "complete": true, "min_up": 0, "min_down": 0, "priority": "normal",
  "waiting": "not running: the limit applies when it starts", "paths": [], "unshaped": 0}]
JSON
out=$("$ctl" --socket "$sock" list 2>&1)
for want in "container:3f2a is docker container web (3f2a9c0d5e6f)" \
        "! container:3f2a: traffic through interface eth1 is not shaped: someone else's root qdisc tbf 1: is on eth1" \
        "! container:3f2a: traffic through network namespace net:[4026532] is not shaped: forwarded" \
        "! machine:db: not limited now: not running: the limit applies when it starts"; do
        [[ $out == *"$want"* ]] && ok "list says: $want" || fail "list does not say '$want': $out"
done
[[ $out != *"eth0"* ]] && ok "list says nothing of a shaped path" || fail "list mentions the shaped eth0: $out"

echo "$passed passed, $failed failed"
((failed == 0))
