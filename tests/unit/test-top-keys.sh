#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# netbumpctl top's keys against a stand-in daemon, in tmux: '/' filters, 's' sorts by rate, total
# and name, 'b' shows bytes per second, and Esc closes a prompt at once (well under ncurses' default
# second).
#
#   test-top-keys.sh NETBUMPCTL FAKE-NETBUMPD
set -uo pipefail

ctl=$1 fake=$2
command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux is not installed"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is not installed"; exit 77; }

tmp=$(mktemp -d)
fake_pid=
tm() { tmux -L "nbkeys-$$" -f /dev/null "$@"; }
cleanup() {
        tm kill-server 2>/dev/null
        [[ -n $fake_pid ]] && kill "$fake_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
sock=$tmp/sock rules=$tmp/rules.json
echo '[]' >"$rules"
cat >"$rules.top" <<'JSON'
[{"pid": 5120, "comm": "rsync", "cmdline": "rsync -a /srv/ nas:/pool/", "uid": 0, "user": "root",
  "cgroup": "/a", "rule": null, "up": 0, "down": 0, "up_rate": 8000000, "down_rate": 0,
  "up_bytes": 1000, "down_bytes": 0, "up_packets": 1, "down_packets": 0},
 {"pid": 4242, "comm": "curl", "cmdline": "curl -O https://example.org/x.iso", "uid": 0, "user": "root",
  "cgroup": "/b", "rule": null, "up": 0, "down": 0, "up_rate": 1000, "down_rate": 2000,
  "up_bytes": 5000000, "down_bytes": 9000000, "up_packets": 1, "down_packets": 0}]
JSON
python3 "$fake" "$sock" "$tmp/log" "$rules" &
fake_pid=$!
for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.05; done

passed=0 failed=0
check() {
        if "${@:2}"; then
                echo "ok   $1"
                passed=$((passed + 1))
        else
                echo "FAIL $1: $(screen | head -4 | tr '\n' '|')"
                failed=$((failed + 1))
        fi
}
screen() { tm capture-pane -p -t top; }
# until SECONDS CMD...: CMD succeeds within SECONDS (polled every 20 ms)
until_true() {
        local n=$(($1 * 50)) i
        shift
        for ((i = 0; i < n; i++)); do
                "$@" && return 0
                sleep 0.02
        done
        return 1
}
first_pid() { screen | awk 'NR > 2 && NF { print $1; exit }'; }
first_is() { [[ $(first_pid) == "$1" ]]; }
has() { screen | grep -qF -- "$1"; }

tm new-session -d -s top -x 120 -y 20 "$ctl --socket $sock top; sleep 5"
until_true 5 first_is 5120
check "by rate: rsync first" first_is 5120
tm send-keys -t top s
check "s: sorted by total, curl first" until_true 3 first_is 4242
check "s: the header says so" has "sorted by total"
tm send-keys -t top s
check "s again: by name, curl first" until_true 3 has "sorted by name"
check "by name: curl before rsync" first_is 4242
tm send-keys -t top b
check "b: rates in bytes per second" until_true 3 has "1.00MB/s"
tm send-keys -t top /
until_true 3 has "Show rows containing"
tm send-keys -t top -l rsync
tm send-keys -t top Enter
check "/rsync: only rsync's row" until_true 3 eval '[[ $(first_pid) == 5120 ]] && ! has curl'
tm send-keys -t top /
until_true 3 has "Show rows containing"
tm send-keys -t top C-u Enter
check "/ and an empty text: every row again" until_true 3 has curl
tm send-keys -t top d
until_true 3 has "Download limit of"
t0=$EPOCHREALTIME
tm send-keys -t top Escape
until_true 3 has "Cancelled."
ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
# ncurses waits 1000 ms by default; what is left here is tmux and this loop
check "Esc cancels in $ms ms (under 500)" test "$ms" -lt 500
tm send-keys -t top q

echo "$passed passed, $failed failed"
((failed == 0))
