#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Debian package (debian/), made and used by the four commands of README.md's "Debian package"
# section, read from there: build and lintian on this host, install and purge in a real systemd
# (systemd-lib.sh's container on ns a).
#   1. `dpkg-buildpackage -us -uc -b` in a copy of the tree (the tree is left as it was) builds
#      netbump_VERSION_ARCH.deb, VERSION meson.build's, after the unit suite; lintian reports no
#      error (warnings are shown).
#   2. the .deb holds the programs, the units and the generator where systemd's pkg-config file
#      says, the bash completion, a manual page for each program, and the copyright file;
#      netbumpd.service runs /usr/sbin/netbumpd.
#   3. `dpkg -i` in the container: netbumpd.socket is enabled and listening at once (postinst),
#      netbumpd.service is not enabled and not running until the package's netbumpctl, found
#      first in PATH, asks; then it is.
#   4. the package's netbumpctl limits a real transfer: `set unit:NAME 8mbit`, then NAME runs
#      iperf3: its upload is what 8mbit gives (5%); a unit with a NetbumpRate=8mbit drop-in (the
#      package's generator, whose drop-in runs the package's netbumpctl): its download (10%).
#   5. `dpkg -i` again (an upgrade) leaves the running netbumpd alone (a stop would remove its
#      rules): the same MainPID, the socket enabled and active, the rule still listed.
#   6. the manual pages render without a warning; the completion completes a verb.
#   7. `dpkg --purge netbump` with a rule set and netbumpd running: no file of the package is
#      left, nothing named netbump in /usr, /etc, /var or /run, no unit of it known to systemd,
#      dpkg has no record of it, and ns a, the host and the container's cgroup tree are as they
#      were before the install (qdiscs, IFBs, cgroups, BPF programs and pins).
#
# The container: /usr, /etc and /var are the host's under overlays whose changes stay in this
# run's temporary directory, so dpkg installs into a copy of this host. /usr/local is hidden (an
# install from .ci/setup is there) and so is /etc/systemd/system (the host's enabled services do
# not start); what .ci/setup's meson install put in /usr, and a policy-rc.d (a container image's
# way to keep maintainer scripts from starting services), are removed from the container's copy
# before the install.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/systemd-lib.sh"

RATE=8mbit
SECS=4                  # measured seconds, after OMIT omitted ones
OMIT=2                  # as test-systemd.sh: a download limited from its first packet
TOL=5                   # percent, upload
TOL_DOWN=10             # percent, download (test-systemd.sh says why)
SRC=$(cd "$NB_LIB_DIR/../.." && pwd)

for c in dpkg-buildpackage dh lintian dpkg-deb; do
        command -v "$c" >/dev/null 2>&1 ||
                nb_skip "'$c' is not installed (Debian packages dpkg-dev, debhelper, lintian: .ci/setup)"
done
command -v systemd-nspawn >/dev/null 2>&1 || nb_skip "systemd-nspawn is not installed (Debian package systemd-container)"
[[ -x /usr/lib/systemd/systemd ]] || nb_skip "no systemd in this host's /usr to boot"
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
[[ -f $SRC/debian/control && -f $SRC/README.md ]] || nb_fail "no debian/control or README.md in $SRC"

# readme_commands: the lines of the first code block of README.md's "Debian package" section,
# comments cut
readme_commands() {
        awk '/^## Debian package$/ { s = 1; next }
             s && /^## / { exit }
             s && /^```/ { if (b) exit; b = 1; next }
             b' "$SRC/README.md" | sed -E 's/[[:space:]]+#.*$//; /^[[:space:]]*$/d'
}
mapfile -t CMDS < <(readme_commands)
if ((${#CMDS[@]} != 4)) || [[ ${CMDS[0]} != "dpkg-buildpackage "* || ${CMDS[1]} != "lintian "* ||
        ${CMDS[2]} != "dpkg -i "* || ${CMDS[3]} != "dpkg --purge "* ]]; then
        nb_fail "README.md's \"Debian package\" block is not build, lintian, install, purge: $(printf '[%s] ' "${CMDS[@]}")"
fi
VERSION=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRC/meson.build")
[[ -n $VERSION ]] || nb_fail "no version in $SRC/meson.build"
expected=$(expected_goodput "$RATE" 4)

# took T0: seconds since T0, "12.3"
took() { awk -v a="$1" -v b="$(nb_now)" 'BEGIN { printf "%.1f", b - a }'; }

# tree_state: what git says is changed or new in the source tree ("" outside a git tree)
tree_state() {
        git -C "$SRC" status --porcelain --untracked-files=all 2>/dev/null || :
}

sd_setup
T_START=$(nb_now)

# ---------------------------------------------------------------------------------------------
nb_say "--- 1. build and lintian (README.md: ${CMDS[0]}; ${CMDS[1]})"

# the copy lies in the directory the container sees as $SD_OUT: the .deb lands in its parent
COPY=$SD_OUTDIR/src
mkdir -p "$COPY"
before_tree=$(tree_state)
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # what is tracked and what is new but not ignored, as it is in the tree now
        (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
                tar --null -T - -cf -) | tar -xf - -C "$COPY"
else
        (cd "$SRC" && tar --exclude-vcs --exclude='./build*' --exclude='./obj-*' -cf - .) | tar -xf - -C "$COPY"
fi
t0=$(nb_now)
rc=0
(cd "$COPY" && bash -c "${CMDS[0]}") >"$NB_TMP/build.log" 2>&1 || rc=$?
nb_say "${CMDS[0]}: exit $rc in $(took "$t0") s"
if ((rc != 0)); then
        tail -n 40 "$NB_TMP/build.log" | sed 's/^/    /' >&3
        nb_fail "the package did not build"
fi
grep -E '^(Ok|Fail): ' "$NB_TMP/build.log" | sed 's/^/    unit suite in the build: /' >&3 || :
assert_true "the source tree is as it was (git status)" test "$(tree_state)" = "$before_tree"

debs=("$SD_OUTDIR"/netbump_*.deb)
[[ -f ${debs[0]} ]] || nb_fail "no netbump_*.deb in $SD_OUTDIR: $(ls "$SD_OUTDIR")"
((${#debs[@]} == 1)) || nb_fail "more than one netbump_*.deb: ${debs[*]}"
DEB=${debs[0]}
nb_say "built $(basename "$DEB") ($(stat -c %s "$DEB") bytes)"
assert_true "the file name has meson.build's version $VERSION" \
        test "$(basename "$DEB")" = "netbump_${VERSION}_$(dpkg --print-architecture).deb"
assert_true "its Version is meson.build's" test "$(dpkg-deb -f "$DEB" Version)" = "$VERSION"

t0=$(nb_now)
rc=0
out=$(cd "$COPY" && bash -c "${CMDS[1]}" 2>&1) || rc=$?
tags=$(grep -E '^[EWIPX]: ' <<<"$out" || :)
nb_say "${CMDS[1]}: exit $rc in $(took "$t0") s, $(grep -c '^E: ' <<<"$tags" || :) errors," \
        "$(grep -c '^W: ' <<<"$tags" || :) warnings"
[[ -n $tags ]] && sed 's/^/    /' <<<"$tags" >&3
assert_true "lintian reports no error (exit $rc)" test "$rc" = 0 -a -z "$(grep '^E: ' <<<"$tags")"

# ---------------------------------------------------------------------------------------------
nb_say "--- 2. what the package holds"

unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null) || unitdir=/lib/systemd/system
gendir=$(pkg-config --variable=systemdsystemgeneratordir systemd 2>/dev/null) || gendir=/lib/systemd/system-generators
compdir=$(pkg-config --variable=completionsdir bash-completion 2>/dev/null) || compdir=/usr/share/bash-completion/completions
contents=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed 's#^\./#/#')
for f in /usr/sbin/netbumpd /usr/bin/netbumpctl /usr/bin/netbump-wrap \
        "$unitdir/netbumpd.service" "$unitdir/netbumpd.socket" "$unitdir/netbump.slice" \
        "$gendir/netbump-generator" "$compdir/netbumpctl" /usr/share/doc/netbump/copyright \
        /usr/share/man/man7/netbump.7.gz; do
        assert_true "the package has $f" grep -qxF "$f" <<<"$contents"
done
# a manual page for each program, the generator's included
for f in $(grep -E '^/usr/s?bin/[^/]+$|^'"$gendir"'/[^/]+$' <<<"$contents"); do
        name=$(basename "$f")
        assert_true "the package has a manual page for $f" \
                grep -qE "^/usr/share/man/man[18]/$name\.[18]\.gz$" <<<"$contents"
done
execstart=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ".$unitdir/netbumpd.service" | sed -n 's/^ExecStart=//p')
assert_true "netbumpd.service runs /usr/sbin/netbumpd (ExecStart=$execstart)" test "$execstart" = /usr/sbin/netbumpd

# ---------------------------------------------------------------------------------------------
nb_say "--- 3. dpkg -i in a booted systemd (README.md: ${CMDS[2]})"

mkdir -p "$NB_TMP/overlay/usr" "$NB_TMP/overlay/etc" "$NB_TMP/overlay/var"
# shellcheck disable=SC2034 # read by systemd-lib.sh
SD_BIND_UNITDIR=0
# shellcheck disable=SC2034 # read by systemd-lib.sh
SD_NSPAWN_ARGS=(
        --overlay="/usr:$NB_TMP/overlay/usr:/usr"
        --overlay="/etc:$NB_TMP/overlay/etc:/etc"
        --overlay="/var:$NB_TMP/overlay/var:/var"
        --tmpfs=/usr/local:mode=0755
        --tmpfs=/etc/systemd/system:mode=0755
)
nb_start_iperf_servers 5201 5202
sd_boot
ETC=/proc/$SD_PID/root/etc/systemd/system       # the container's, from here

# sd_sh SCRIPT: sh -c SCRIPT in the container, 120 s at most
sd_sh() { timeout -k 5 120 nsenter -t "$SD_PID" -a sh -c "$1" </dev/null; }

# netbump_files: every file whose name has "netbump" in the container's /usr, /etc, /var and
# /run (but this run's $SD_OUT), sorted
netbump_files() {
        sd_sh "find /usr /etc /var /run -path $SD_OUT -prune -o -name '*netbump*' -print 2>/dev/null | LC_ALL=C sort"
}

if [[ $(sd_sh "dpkg-query -W -f='\${db:Status-Status}' netbump 2>/dev/null" || :) == installed ]]; then
        nb_say "the host has the netbump package: purged in the container first"
        sd_sh "dpkg --purge netbump" >/dev/null 2>&1 || nb_fail "cannot purge the host's netbump package in the container"
fi
left=$(sd_sh "find /usr -name '*netbump*' 2>/dev/null" || :)
if [[ -n $left ]]; then
        nb_say "removed from the container's /usr (a meson install's): ${left//$'\n'/ }"
        sd_sh "find /usr -name '*netbump*' -exec rm -rf {} +" || nb_fail "cannot remove them"
fi
if sd_sh "test -e /usr/sbin/policy-rc.d"; then
        nb_say "removed from the container's /usr: /usr/sbin/policy-rc.d (it refuses every start)"
        sd_sh "rm /usr/sbin/policy-rc.d"
fi
sd_systemctl daemon-reload || nb_fail "daemon-reload failed"
files_before=$(netbump_files)
[[ -z $files_before ]] || nb_say "files named netbump before the install (kept): ${files_before//$'\n'/ }"
snap=$NB_TMP/snapshot
sd_snapshot "$snap.before"

t0=$(nb_now)
rc=0
sd_sh "cd $SD_OUT/src && ${CMDS[2]}" >"$NB_TMP/install.log" 2>&1 || rc=$?
nb_say "${CMDS[2]}: exit $rc in $(took "$t0") s"
sed 's/^/    /' "$NB_TMP/install.log" >&3
((rc == 0)) || nb_fail "the package did not install"
pkg_files=$(sd_sh "dpkg -L netbump" | while read -r f; do
        sd_sh "test -d '$f'" || printf '%s\n' "$f"
done)
nb_say "dpkg -L netbump: $(wc -l <<<"$pkg_files") files"

assert_true "netbumpd.socket is enabled" test "$(sd_systemctl is-enabled netbumpd.socket 2>&1)" = enabled
assert_true "netbumpd.socket is active (started by postinst)" test "$(sd_systemctl is-active netbumpd.socket 2>&1)" = active
listen=$(sd_prop netbumpd.socket Listen)
assert_true "netbumpd.socket listens on /run/netbump/netbumpd.sock ($listen)" \
        test "$listen" = "/run/netbump/netbumpd.sock (Stream)" -a -S "/proc/$SD_PID/root/run/netbump/netbumpd.sock"
state=$(sd_systemctl is-enabled netbumpd.service 2>&1 || :)
assert_true "netbumpd.service is not enabled ($state)" test "$state" = disabled
state=$(sd_prop netbumpd.service ActiveState)
assert_true "netbumpd.service is not running before the first request ($state)" test "$state" = inactive
NBCTL=$(sd_sh 'command -v netbumpctl' || :)
assert_true "netbumpctl in the container's PATH is the package's ($NBCTL)" test "$NBCTL" = /usr/bin/netbumpctl
NBCTL=/usr/bin/netbumpctl
out=$(timeout -k 2 15 nsenter -t "$SD_PID" -a "$NBCTL" status 2>&1) || nb_fail "netbumpctl status failed: $out"
nb_say "netbumpctl status: ${out%%$'\n'*}"
_active() { [[ $(sd_prop netbumpd.service ActiveState) == active ]]; }
assert_true "netbumpd.service is active after the request (socket activation)" nb_wait_until 5 _active

# ---------------------------------------------------------------------------------------------
nb_say "--- 4. the package's netbumpctl and generator limit real transfers"

# transfer_unit NAME PORT up|down: a oneshot unit running one iperf3 client to ns b, its JSON in
# $SD_OUT/NAME.json
transfer_unit() {
        local args=(/usr/bin/iperf3 -c "$NB_B4" -p "$2" -t "$SECS" -O "$OMIT" -J --get-server-output
                --connect-timeout 3000 --logfile "$SD_OUT/$1.json")
        [[ $3 == down ]] && args+=(-R)
        cat >"$ETC/$1.service" <<EOF
[Unit]
Description=netbump package test: iperf3 $3
[Service]
Type=oneshot
ExecStart=${args[*]}
TimeoutStartSec=$((SECS + OMIT + 30))
EOF
}

# measure NAME MSG TOL: start the unit (returns when it is done) and assert its goodput
measure() {
        local bps err
        sd_systemctl start "$1.service" 2>&1 | sed 's/^/    /' >&3 || :
        err=$(jq -r '.error // empty' "$SD_OUTDIR/$1.json" 2>/dev/null) || err="no JSON output"
        if [[ -n $err ]] || ! bps=$(goodput_from_json "$SD_OUTDIR/$1.json"); then
                nb_record_failure "$2: no measurement ($err)"
                sd_journal "$1.service"
                return
        fi
        assert_within "$bps" "$expected" "$3" "$2"
}

transfer_unit nbtest-pkg-up 5201 up
transfer_unit nbtest-pkg-down 5202 down
mkdir -p "$ETC/nbtest-pkg-down.service.d"
cat >"$ETC/nbtest-pkg-down.service.d/50-limit.conf" <<EOF
[X-Netbump]
NetbumpRate=$RATE
EOF
sd_systemctl daemon-reload || nb_fail "daemon-reload failed"
dropins=$(sd_prop nbtest-pkg-down.service DropInPaths)
assert_true "the package's generator made a drop-in ($dropins)" grep -q /run/systemd/generator <<<"$dropins"

out=$(timeout -k 2 15 nsenter -t "$SD_PID" -a "$NBCTL" set unit:nbtest-pkg-up.service "$RATE" 2>&1) ||
        nb_record_failure "netbumpctl set unit:nbtest-pkg-up.service $RATE: $out"
measure nbtest-pkg-up "netbumpctl set unit: $RATE, up v4" "$TOL"
measure nbtest-pkg-down "NetbumpRate=$RATE drop-in, down v4" "$TOL_DOWN"
# a rule is still set for the purge to take away
rules=$(timeout -k 2 15 nsenter -t "$SD_PID" -a "$NBCTL" list 2>&1 || :)
assert_true "netbumpctl list shows the unit: rule" grep -q '^unit:nbtest-pkg-up\.service' <<<"$rules"

# ---------------------------------------------------------------------------------------------
nb_say "--- 5. dpkg -i again, an upgrade, while netbumpd runs with a rule"

pid_before=$(sd_prop netbumpd.service MainPID)
t0=$(nb_now)
rc=0
sd_sh "cd $SD_OUT/src && ${CMDS[2]}" >"$NB_TMP/upgrade.log" 2>&1 || rc=$?
nb_say "${CMDS[2]} again: exit $rc in $(took "$t0") s"
((rc == 0)) || { sed 's/^/    /' "$NB_TMP/upgrade.log" >&3; nb_record_failure "the package did not install over itself"; }
pid_after=$(sd_prop netbumpd.service MainPID)
assert_true "netbumpd.service is neither stopped nor restarted (MainPID $pid_before, then $pid_after)" \
        test "$pid_before" != 0 -a "$pid_after" = "$pid_before"
assert_true "netbumpd.socket is still enabled and active" \
        test "$(sd_systemctl is-enabled netbumpd.socket 2>&1) $(sd_systemctl is-active netbumpd.socket 2>&1)" = "enabled active"
rules=$(timeout -k 2 15 nsenter -t "$SD_PID" -a "$NBCTL" list 2>&1 || :)
assert_true "netbumpctl list, through the socket, still shows the unit: rule" \
        grep -q '^unit:nbtest-pkg-up\.service' <<<"$rules"

# ---------------------------------------------------------------------------------------------
nb_say "--- 6. manual pages and completion"

for f in $(grep '^/usr/share/man/' <<<"$pkg_files"); do
        out=$(sd_sh "LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $f 2>&1 >/dev/null" 2>&1 || echo "man failed")
        assert_true "$f renders without a warning${out:+: $out}" test -z "$out"
done
where=$(sd_sh 'man -w netbumpd' 2>&1 || :)
assert_true "man finds netbumpd(8) in the package ($where)" test "$where" = /usr/share/man/man8/netbumpd.8.gz
# shellcheck disable=SC2016
out=$(sd_sh "bash -c '. $compdir/netbumpctl; COMP_LINE=\"netbumpctl se\"; COMP_POINT=13; _netbumpctl; printf \"%s\\n\" \"\${COMPREPLY[@]}\"'" 2>&1 || :)
assert_true "the bash completion completes 'netbumpctl se' to set (${out//$'\n'/ })" grep -qx set <<<"$out"

# ---------------------------------------------------------------------------------------------
nb_say "--- 7. dpkg --purge (README.md: ${CMDS[3]})"

t0=$(nb_now)
rc=0
sd_sh "cd $SD_OUT/src && ${CMDS[3]}" >"$NB_TMP/purge.log" 2>&1 || rc=$?
nb_say "${CMDS[3]}: exit $rc in $(took "$t0") s"
sed 's/^/    /' "$NB_TMP/purge.log" >&3
((rc == 0)) || nb_record_failure "dpkg --purge failed"
rm -rf "$ETC"/nbtest-pkg-*
sd_systemctl daemon-reload || nb_fail "daemon-reload failed"

still=$(while read -r f; do
        [[ -n $f ]] && sd_sh "test -e '$f' -o -L '$f'" && printf '%s ' "$f"
done <<<"$pkg_files" || :)
assert_true "none of the package's files is left${still:+: $still}" test -z "$still"
files_after=$(netbump_files)
assert_true "no file named netbump in /usr /etc /var /run that was not there before${files_after:+: ${files_after//$'\n'/ }}" \
        test "$files_after" = "$files_before"
assert_true "no /run/netbump" sd_sh '! test -e /run/netbump'
assert_true "no netbumpd process in the container" sd_sh '! pgrep -x netbumpd'
# (list-unit-files exits 1 when it lists none)
units=$(sd_systemctl list-units --all --no-legend --plain 'netbump*' 2>&1
        sd_systemctl list-unit-files --no-legend 'netbump*' 2>&1 || :)
assert_true "systemd knows no netbump unit${units:+: ${units//$'\n'/ }}" test -z "$units"
status=$(sd_sh "dpkg-query -W -f='\${db:Status-Status}' netbump 2>/dev/null" || :)
assert_true "dpkg has no record of netbump (status '${status:-none}')" test -z "$status" -o "$status" = not-installed
sd_snapshot "$snap.purged"
assert_same_snapshot "$snap.before" "$snap.purged" "ns a, the host and the container's cgroups as before the install"

nb_say "whole test: $(took "$T_START") s"
nb_finish
