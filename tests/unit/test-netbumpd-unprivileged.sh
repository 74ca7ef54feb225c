#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# netbumpd without the capabilities it needs says so in one line and touches nothing: no state
# directory, no socket, no word from libbpf. Run as another user (setpriv, when this is root) and as
# root without CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN. Should the check ever let it through, it meets an
# empty network namespace and a cgroup root that does not exist, and so fails before any change.
#
#   test-netbumpd-unprivileged.sh NETBUMPD
set -uo pipefail

netbumpd=$1
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# refused NAME PREFIX...: PREFIX netbumpd ... exits 1 with one line naming what is missing, and
# leaves neither the state directory nor the socket
refused() {
        local name=$1 out rc lines
        shift
        out=$("$@" "$netbumpd" --state-dir "$tmp/state" --socket "$tmp/sock" \
                --cgroup-root /nonexistent-netbump-test 2>&1)
        rc=$?
        lines=$(printf '%s\n' "$out" | wc -l)
        if [[ $rc == 1 && $lines == 1 && $out == *"Must run as root"*"lacks CAP_"*"nothing was changed."* &&
                ! -e $tmp/state && ! -e $tmp/sock ]]; then
                echo "ok   $name: $out"
                passed=$((passed + 1))
        else
                echo "FAIL $name: exit $rc, $lines lines:"
                printf '%s\n' "$out" | sed 's/^/    /'
                [[ -e $tmp/state ]] && echo "    and it made $tmp/state"
                failed=$((failed + 1))
        fi
}

if (($(id -u) != 0)); then
        refused "as uid $(id -u)"
elif command -v setpriv >/dev/null && command -v unshare >/dev/null; then
        refused "as nobody" unshare --net setpriv --reuid 65534 --regid 65534 --clear-groups
        refused "as root without CAP_BPF" unshare --net setpriv --inh-caps=-all \
                --bounding-set=-bpf,-perfmon,-sys_admin
else
        echo "SKIP: setpriv or unshare missing"
        exit 77
fi

echo "$passed passed, $failed failed"
((failed == 0))
