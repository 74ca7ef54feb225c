#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The bash completion of netbumpctl: verbs, options, target kinds and what they name, rates,
# top's groupings, and the colon readline splits words at. Runs the completion function the way
# bash does (COMP_LINE/COMP_POINT) in this shell; needs nothing but bash.
set -uo pipefail

src=${1:-$(dirname "$0")/../../completions/netbumpctl}
# shellcheck source=completions/netbumpctl
source "$src" || { echo "cannot source $src"; exit 1; }
COMP_WORDBREAKS=${COMP_WORDBREAKS:-$' \t\n"'"'"'><=;|&(:'}

passed=0 failed=0
# expect LINE WORD...: completing LINE offers every WORD
expect() {
        local line=$1 w miss=()
        shift
        COMP_LINE=$line
        COMP_POINT=${#line}
        COMPREPLY=()
        _netbumpctl
        for w in "$@"; do
                printf '%s\n' "${COMPREPLY[@]}" | grep -qxF -- "$w" || miss+=("$w")
        done
        if ((${#miss[@]} == 0)); then
                echo "ok   '$line' offers $*"
                passed=$((passed + 1))
        else
                echo "FAIL '$line' does not offer ${miss[*]} (offers: ${COMPREPLY[*]:0:20})"
                failed=$((failed + 1))
        fi
}
# expect_only LINE WORD...: completing LINE offers exactly the WORDs (in any order)
expect_only() {
        local line=$1 got want
        shift
        COMP_LINE=$line
        COMP_POINT=${#line}
        COMPREPLY=()
        _netbumpctl
        got=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
        want=$(printf '%s\n' "$@" | sort)
        if [[ $got == "$want" ]]; then
                echo "ok   '$line' offers exactly $*"
                passed=$((passed + 1))
        else
                echo "FAIL '$line' offers ${COMPREPLY[*]:0:20}, expected exactly $*"
                failed=$((failed + 1))
        fi
}
# expect_none LINE: nothing to offer
expect_none() {
        COMP_LINE=$1
        COMP_POINT=${#1}
        COMPREPLY=()
        _netbumpctl
        if ((${#COMPREPLY[@]} == 0)); then
                echo "ok   '$1' offers nothing"
                passed=$((passed + 1))
        else
                echo "FAIL '$1' offers ${COMPREPLY[*]:0:20}"
                failed=$((failed + 1))
        fi
}

expect "netbumpctl " set unset list status top run
expect "netbumpctl st" status
expect "netbumpctl --" --help --socket --json
expect "netbumpctl set " cgroup:/ user@ pid: unit: sock: all
expect_only "netbumpctl set a" all
expect "netbumpctl list al" all
expect "netbumpctl set --priority high " cgroup:/ all
expect "netbumpctl unset u" user@ unit:
expect "netbumpctl --socket /run/x.sock list " cgroup:/ user@
# after a colon readline replaces only what follows it
expect "netbumpctl set pid:" "$$"
expect "netbumpctl set pid:$$" "$$"
expect "netbumpctl set sock:" "$$:"
expect "netbumpctl set user@" user@root
expect "netbumpctl set user@ro" user@root
# a cgroup below the cgroup2 mount, by the first letter of its name
mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } }' \
        /proc/self/mountinfo)
first=
for d in "${mnt:-/nonexistent}"/*/; do
        [[ -d $d ]] && { first=$(basename "$d"); break; }
done
if [[ -n $first ]]; then
        expect "netbumpctl set cgroup:/${first:0:1}" "/$first/"
        expect "netbumpctl set cgroup:" "/$first/"
else
        echo "note: no cgroup2 directory to complete here"
fi
expect "netbumpctl set user@0 " 5mbit unlimited --up --down --min --min-up --min-down --priority
expect "netbumpctl set all " 100mbit --min --priority
expect_only "netbumpctl set user@0 --" --up --down --min --min-up --min-down --priority --json
expect_only "netbumpctl set user@0 --min" --min --min-up --min-down
# priorities, also as --priority=WORD (readline replaces what follows the '=')
expect_only "netbumpctl set user@0 --priority " high normal low
expect_only "netbumpctl set user@0 --priority l" low
expect_only "netbumpctl set user@0 --priority=h" high
expect "netbumpctl set user@0 --priority low " 5mbit --min
# a minimum: rates, and "none" rather than "unlimited"
expect "netbumpctl set user@0 --min " 1mbit none
expect "netbumpctl set user@0 --min-up 3" 3mbit 3kbit
expect "netbumpctl set user@0 --min-down=2" 2mbit
expect_none "netbumpctl set user@0 --min=u"
expect "netbumpctl set user@0 --down=" 8mbit unlimited
expect "netbumpctl set user@0 --min 1mbit " 5mbit --up --priority
expect "netbumpctl set user@0 --down " 8mbit unlimited
expect "netbumpctl set user@0 --up 5mbit --" --down
# a number gets tc(8)'s bit units, a number and a letter those that start so
expect "netbumpctl set user@0 7" 7kbit 7mbit 7gbit 7tbit 7bit 7mibit
expect "netbumpctl set user@0 7m" 7mbit 7mibit
expect "netbumpctl set user@0 2.5" 2.5mbit 2.5gbit
expect "netbumpctl set user@0 --down 12" 12kbit 12mbit 12gbit
expect "netbumpctl run 3" 3mbit
expect_only "netbumpctl set user@0 7g" 7gbit 7gibit
expect_only "netbumpctl set user@0 7mbit" 7mbit
# unit names from systemctl (a stand-in here: PID 1 need not be systemd)
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
cat >"$stub/systemctl" <<'STUB'
#!/bin/sh
# list-units --all --no-legend --plain --type=...: UNIT LOAD ACTIVE SUB DESCRIPTION
[ "$1" = list-units ] || exit 1
printf '%s\n' 'backup.service loaded active running Nightly backup' \
        'backup-db.service loaded inactive dead Backup of the database' \
        'session-3.scope loaded active running Session 3 of user x' 'user.slice loaded active active User slice'
STUB
chmod +x "$stub/systemctl"
PATH=$stub:$PATH expect "netbumpctl set unit:" backup.service backup-db.service session-3.scope user.slice
PATH=$stub:$PATH expect_only "netbumpctl set unit:backup" backup.service backup-db.service
PATH=$stub:$PATH expect_only "netbumpctl unset unit:sess" session-3.scope
PATH=$stub:$PATH expect "netbumpctl list unit:u" user.slice
expect "netbumpctl top " --once --group --json
expect "netbumpctl top --group " process user unit rule
expect "netbumpctl top --group r" rule
expect "netbumpctl run " 5mbit
expect "netbumpctl run 5mbit -- bas" bash
expect_none "netbumpctl unset user@0 "
expect_none "netbumpctl frobnicate "

echo "$passed passed, $failed failed"
((failed == 0))
