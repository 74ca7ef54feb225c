#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The bash completions of netbumpctl and netbump-wrap: verbs, options, target kinds and what they
# name, the rules that exist (from a stand-in daemon), rates, top's options, and the characters
# readline splits words at (':', '=', '@' of COMP_WORDBREAKS). First the completion functions as
# bash calls them (COMP_LINE/COMP_POINT, bash's own COMP_WORDBREAKS); then an interactive bash on
# a pseudo-terminal, where readline itself splits the line and puts the completion in.
#
#   test-completion.sh COMPLETIONS-DIR [NETBUMPCTL FAKE-NETBUMPD]
set -uo pipefail

dir=${1:-$(dirname "$0")/../../completions}
ctl=${2:-} fake=${3:-}
# shellcheck source=completions/netbumpctl
source "$dir/netbumpctl" || { echo "cannot source $dir/netbumpctl"; exit 1; }
# shellcheck source=completions/netbump-wrap
source "$dir/netbump-wrap" || { echo "cannot source $dir/netbump-wrap"; exit 1; }
# bash's own (it has '@'), unless this shell has none
[[ -n ${COMP_WORDBREAKS:-} ]] || COMP_WORDBREAKS=$' \t\n"\'@><=;|&(:'

tmp=$(mktemp -d)
fake_pid=
cleanup() {
        [[ -n $fake_pid ]] && kill "$fake_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

passed=0 failed=0
# complete_line LINE: what the completion of LINE's command offers, as readline would get it
complete_line() {
        COMP_LINE=$1
        COMP_POINT=${#1}
        COMPREPLY=()
        case $1 in
        netbump-wrap*) _netbump_wrap ;;
        *) _netbumpctl ;;
        esac
}
# expect LINE WORD...: completing LINE offers every WORD
expect() {
        local line=$1 w miss=()
        shift
        complete_line "$line"
        for w in "$@"; do
                # not grep -q: exiting at the first match, it would leave printf a closed pipe
                # (SIGPIPE), which pipefail counts as a miss when there are many words
                printf '%s\n' "${COMPREPLY[@]}" | grep -xF -- "$w" >/dev/null || miss+=("$w")
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
        complete_line "$line"
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
        complete_line "$1"
        if ((${#COMPREPLY[@]} == 0)); then
                echo "ok   '$1' offers nothing"
                passed=$((passed + 1))
        else
                echo "FAIL '$1' offers ${COMPREPLY[*]:0:20}"
                failed=$((failed + 1))
        fi
}

expect "netbumpctl " set unset list status top run reload
expect_only "netbumpctl rel" reload
expect_only "netbumpctl reload --" --json --help
expect_only "netbumpctl unset --" --persistent --json --help
expect "netbumpctl set --persistent " cgroup:/ user@ unit: all
expect "netbumpctl st" status
expect "netbumpctl --" --help --socket --json
expect "netbumpctl set " cgroup:/ user@ pid: unit: machine: container: sock: exe:/ all
expect_only "netbumpctl set a" all
expect "netbumpctl list al" all
expect "netbumpctl set --priority high " cgroup:/ all
expect "netbumpctl unset u" user@ unit:
expect "netbumpctl --socket /run/x.sock list " cgroup:/ user@
# after a colon readline replaces only what follows it
expect "netbumpctl set pid:" "$$"
expect "netbumpctl set pid:$$" "$$"
expect "netbumpctl set sock:" "$$:"
# a program by its absolute path: directories to descend into, executable files
expect_only "netbumpctl set exe:" /
expect_only "netbumpctl set exe:/bin/true" /bin/true
expect_only "netbumpctl set exe:/et" /etc/
# and from an '@' on, which bash keeps in the word it completes (user@ro -> @root; user@root would
# become useruser@root)
expect "netbumpctl set user@" @root
expect_only "netbumpctl set user@ro" @root
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
expect_only "netbumpctl set user@0 --" --up --down --min --min-up --min-down --priority --persistent --json --help
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
stub=$tmp/stub && mkdir "$stub"
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
expect "netbumpctl top " --once --group --json --sort --bytes --filter
expect "netbumpctl top --group " process user unit rule
expect "netbumpctl top --group r" rule
expect_only "netbumpctl top --sort " rate total name
expect_only "netbumpctl help " set unset list status top run reload help
expect_only "netbumpctl help u" unset
expect "netbumpctl run " 5mbit
expect "netbumpctl run 5mbit -- bas" bash
expect_none "netbumpctl unset user@0 "
expect_none "netbumpctl frobnicate "


# --- netbump-wrap -----------------------------------------------------------------------------------
expect_only "netbump-wrap --" --rate --up --down --socket --help --version --
expect "netbump-wrap --rate " 5mbit 1gbit
expect "netbump-wrap --up 7" 7mbit 7kbit
expect_only "netbump-wrap --down=7g" 7gbit 7gibit
expect "netbump-wrap --rate 5mbit bas" bash
expect "netbump-wrap --rate 5mbit -- bas" bash
expect_none "netbump-wrap --rate 5mbit bash --norc"

# --- unset and list: the rules there are ------------------------------------------------------------
if [[ -n $ctl && -n $fake ]] && command -v python3 >/dev/null 2>&1; then
        rules=$tmp/rules.json
        cat >"$rules" <<'JSON'
[{"target": "all", "up": 100000000, "down": 0, "parent": null},
 {"target": "user@4000000", "up": 1000000, "down": 0, "parent": "all"},
 {"target": "cgroup:/system.slice/long-name.service", "up": 1000000, "down": 0, "parent": "all"},
 {"target": "unit:backup.service", "up": 1000000, "down": 0, "parent": "all"}]
JSON
        python3 "$fake" "$tmp/sock" "$tmp/log" "$rules" &
        fake_pid=$!
        for ((i = 0; i < 100; i++)); do [[ -S $tmp/sock ]] && break; sleep 0.05; done
        PATH=$(dirname "$ctl"):$PATH
        export NETBUMP_SOCKET=$tmp/sock
        expect_only "netbumpctl unset " all user@4000000 cgroup:/system.slice/long-name.service unit:backup.service
        # after ':' or '@', only what follows it
        expect_only "netbumpctl unset user@4" @4000000
        expect_only "netbumpctl unset cgroup:/sys" /system.slice/long-name.service
        expect_only "netbumpctl unset unit:b" backup.service
        expect_only "netbumpctl list a" all
        # list takes any target: by kind too, once one is being typed
        expect "netbumpctl list pid:" "$$"
        # the daemon named on the line is asked
        expect_only "netbumpctl --socket $tmp/sock unset a" all
        NETBUMP_SOCKET=$tmp/none expect_only "netbumpctl --socket $tmp/sock unset u" user@4000000 unit:backup.service
        # a daemon that does not answer: the target kinds, quietly
        NETBUMP_SOCKET=$tmp/none expect "netbumpctl unset " cgroup:/ user@ pid: unit: all

        # --- readline itself -----------------------------------------------------------------------
        cat >"$tmp/setup.sh" <<SETUP
source "$dir/netbumpctl"
source "$dir/netbump-wrap"
netbumpctl() { local IFS='|'; printf 'WORDS<%s>\n' "\$*"; }
netbump-wrap() { local IFS='|'; printf 'WORDS<%s>\n' "\$*"; }
SETUP
        if out=$(printf '%s\t%s\n' \
                "netbumpctl set user@roo" "set|user@root" \
                "netbumpctl set user@nob" "set|user@nobody" \
                "netbumpctl set user@root --prio" "set|user@root|--priority" \
                "netbumpctl set user@root --priority=h" "set|user@root|--priority=high" \
                "netbumpctl set user@root 5mb" "set|user@root|5mbit" \
                "netbumpctl set al" "set|all" \
                "netbumpctl unset user@4" "unset|user@4000000" \
                "netbumpctl unset cgroup:/system.slice/lo" "unset|cgroup:/system.slice/long-name.service" \
                "netbumpctl unset unit:ba" "unset|unit:backup.service" \
                "netbumpctl list al" "list|all" \
                "netbumpctl top --gr" "top|--group" \
                "netbumpctl top --group ru" "top|--group|rule" \
                "netbumpctl help se" "help|set" \
                "netbump-wrap --ra" "--rate" \
                "netbump-wrap --rate 5mb" "--rate|5mbit" \
                "netbump-wrap --up=7mb" "--up=7mbit" |
                python3 "$(dirname "$0")/completion-pty.py" "$tmp/setup.sh" 2>&1); then
                printf '%s\n' "$out" | grep -v '^[0-9]* passed'
                passed=$((passed + 1))
        else
                printf '%s\n' "$out"
                failed=$((failed + 1))
        fi
else
        echo "note: no netbumpctl or python3: the rules and readline are not checked"
fi

echo "$passed passed, $failed failed"
((failed == 0))
