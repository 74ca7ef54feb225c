# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A real systemd for the integration tests: sourced after lib.sh.
#
# sd_boot starts the host's own OS as a container, with systemd as its PID 1 (this host's PID 1
# may be anything):
#
#   systemd-nspawn -D / --volatile=yes -b          root: a fresh tmpfs; /usr: the host's, read-only
#     --network-namespace-path=/run/netns/<ns a>   the container's network is lib.sh's ns a
#     --bind-ro=$SD_UNITDIR:/etc/systemd/system     units and drop-ins the test writes (host side)
#     --bind=$SD_OUTDIR:/run/netbump-test           files the container's units write, read here
#     --bind=$SD_KMSG:/dev/kmsg                     the container's kernel log, a file read here
#     --bind-ro=<build file>:<installed path>       the build under test over what is installed
#     --bind-ro=<build generator>:/etc/systemd/system-generators/<name>
#
# SD_NSPAWN_ARGS adds options, SD_BIND_UNITDIR=0 leaves out the unit directory: test-package.sh
# puts the host's /usr, /etc and /var under overlays whose changes stay in its temporary
# directory, so dpkg can install there (nspawn refuses --volatile=overlay on the host's root).
#
# What had to be found out (systemd 252, Debian 12, hybrid cgroup host):
# - /usr/local is inside /usr, so an installed netbump (meson install, prefix /usr/local) is there,
#   and so are the units in /lib/systemd/system (/lib -> usr/lib). /etc is empty: nothing is
#   enabled but what $SD_UNITDIR enables, and `systemctl enable` fails (read-only): sd_enable
#   makes the [Install] symlink in $SD_UNITDIR before the boot. Commands that are links into
#   /etc/alternatives (awk) are missing inside: parse on the host side.
# - nspawn keeps CAP_NET_ADMIN (even with a network namespace of our own), CAP_BPF and
#   CAP_PERFMON out of the container's bounding set and its seccomp filter refuses bpf(2) (EPERM,
#   whatever the capabilities): --capability=... --system-call-filter=bpf.
# - With --keep-unit --register=no nspawn stays in the cgroup it was started in, making
#   payload/ (the container) and supervisor/ (itself) below it. We start it in
#   $NB_CGROOT/machine, so the container's root cgroup, the one netbumpd attaches its programs at,
#   is $NB_CGROOT/machine/payload on the host: inside the test subtree. It has a cgroup namespace
#   of its own and sees that cgroup as / on a cgroup2 /sys/fs/cgroup. On a hybrid host nspawn
#   also makes the same path in the name=systemd v1 hierarchy; neither is removed when it ends.
# - When /run is not a tmpfs, nspawn will not remove /run/systemd/nspawn/propagate/NAME ("we
#   can't allow that"); the teardown does.
# - `systemctl poweroff` inside ends it in about a second; netbumpd is stopped on the way.
# - nspawn gives the container no /dev/kmsg (a FIFO in its place would block the writers when
#   nothing reads it). A regular file bound there takes what is written to the kernel log, as
#   /dev/kmsg does: the generators' messages ("<PRIORITY>name: text", one record per write), and
#   journald's own. Writers that open it anew start at offset 0, so read it with grep, not tail.
#
# Usage (after lib.sh):
#   source "$(dirname "$0")/systemd-lib.sh"
#   sd_require; sd_setup; sd_enable netbumpd.socket; sd_boot
#   sd_systemctl start x.service; sd_run netbumpctl status; ...; nb_finish

# Globals below are read by the tests that source this file.
# shellcheck disable=SC2034

SD_NAME=nbt-$NB_ID                        # machine name (hostname in the container)
SD_NSPAWN_PID=                            # the systemd-nspawn process (a child of this shell)
SD_PID=                                   # the container's systemd, as the host sees it
SD_CG=$NB_CGROOT/machine                  # the cgroup nspawn runs in
SD_CGROOT=$SD_CG/payload                  # the container's root cgroup
SD_UNITDIR=                               # /etc/systemd/system in the container
SD_OUTDIR=                                # /run/netbump-test in the container
SD_OUT=/run/netbump-test                  # ... as the container sees it
SD_KMSG=                                  # the container's /dev/kmsg (a file), on the host
SD_BINDS=()                               # --bind-ro= of the build's files
SD_BOOT_TIMEOUT=30                        # seconds
SD_STOP_TIMEOUT=30                        # seconds for poweroff (netbumpd has 30 s to stop)
SD_CAPS=CAP_NET_ADMIN,CAP_BPF,CAP_PERFMON # beyond nspawn's default set
SD_BIND_UNITDIR=1                         # $SD_UNITDIR is the container's /etc/systemd/system
SD_NSPAWN_ARGS=()                         # more options for nspawn (--overlay=, --tmpfs=, ...)
declare -A SD_INSTALLED=()                # basename -> installed path (from the build's meta data)
SD_GENERATORS=()                          # the build's generators, in the container's search path
_SD_NSPAWN_DIR_EXISTED=()                 # /run/systemd/nspawn and its propagate/ before the boot
_SD_BOOTED=                               # sd_boot started nspawn

# ---------------------------------------------------------------------------------------------
# preconditions

# _sd_installed_map: SD_INSTALLED[name] = where `meson install` puts that file, and SD_BINDS for
# those of the build's executables, units and generators that are installed under /usr (the
# only host directory the container shares): the container then runs what was built, at the
# installed paths the units name, even if the install is older than the build. Generators are
# bound into /etc/systemd/system-generators, so they need no install.
_sd_installed_map() {
        local json=$NB_BUILD_DIR/meson-info/intro-installed.json src dst real
        [[ -f $json ]] || return 0
        while IFS=$'\t' read -r src dst; do
                case $dst in
                */system-generators/*)
                        # installed or not: /etc/systemd/system-generators comes first in the
                        # search path, and a generator there hides one of the same name in /usr
                        [[ -x $src ]] || continue
                        SD_GENERATORS+=("$(basename "$dst")")
                        SD_BINDS+=("--bind-ro=$src:/etc/systemd/system-generators/$(basename "$dst")")
                        continue
                        ;;
                */bin/* | */sbin/* | */systemd/system/*) ;;
                *) continue ;;
                esac
                SD_INSTALLED[$(basename "$dst")]=$dst
                real=$(realpath -e "$dst" 2>/dev/null) || continue
                [[ $real == /usr/* && -f $src ]] || continue
                cmp -s "$src" "$real" ||
                        nb_info "installed $dst differs from the build's: testing the build's (bound over it)"
                SD_BINDS+=("--bind-ro=$src:$real")
        done < <(jq -r 'to_entries[] | "\(.key)\t\(.value)"' "$json")
}

# sd_setup: lib.sh's nb_setup, and this run's unit and output directories
sd_setup() {
        nb_setup
        SD_UNITDIR=$NB_TMP/units
        SD_OUTDIR=$NB_TMP/out
        SD_KMSG=$NB_TMP/kmsg
        mkdir -p "$SD_UNITDIR" "$SD_OUTDIR"
        : >"$SD_KMSG"
}

# sd_has_generator NAME: the build has generator NAME and the container runs it
sd_has_generator() {
        [[ " ${SD_GENERATORS[*]} " == *" $1 "* ]]
}

# sd_path NAME DEFAULT: the path of an installed file (by basename) inside the container
sd_path() {
        printf '%s\n' "${SD_INSTALLED[$1]:-$2}"
}

# sd_require: skip unless nspawn can boot this host's systemd; fail if netbump is not installed
sd_require() {
        command -v systemd-nspawn >/dev/null 2>&1 ||
                nb_skip "systemd-nspawn is not installed (Debian package systemd-container)"
        [[ -x /usr/lib/systemd/systemd ]] || nb_skip "no systemd in this host's /usr to boot"
        _sd_installed_map
        local f
        for f in "$(sd_path netbumpd /usr/local/sbin/netbumpd)" "$(sd_path netbumpctl /usr/local/bin/netbumpctl)" \
                "$(sd_path netbumpd.service /lib/systemd/system/netbumpd.service)" \
                "$(sd_path netbumpd.socket /lib/systemd/system/netbumpd.socket)"; do
                [[ -e $f ]] || nb_fail "$f is not installed: run 'meson install -C $NB_BUILD_DIR' first"
                [[ $(realpath "$f") == /usr/* ]] || nb_skip "$f is outside /usr: the container cannot see it"
        done
}

# ---------------------------------------------------------------------------------------------
# units

# sd_unit_file NAME: write stdin to NAME in the container's /etc/systemd/system (NAME may be
# "x.service.d/y.conf"); the container sees it at once, systemd after sd_systemctl daemon-reload
sd_unit_file() {
        mkdir -p "$(dirname "$SD_UNITDIR/$1")"
        cat >"$SD_UNITDIR/$1"
}

# sd_enable UNIT [TARGET]: what `systemctl enable UNIT` does for WantedBy=TARGET (the first
# WantedBy= of the installed unit if not given); before sd_boot, or followed by daemon-reload
sd_enable() {
        local unit=$1 target=${2:-} path
        path=$(sd_path "$unit" "/lib/systemd/system/$unit")
        [[ -f $path ]] || path=$SD_UNITDIR/$unit
        if [[ -z $target ]]; then
                target=$(awk -F= '/^WantedBy=/ { split($2, t, " "); print t[1]; exit }' "$path")
                [[ -n $target ]] || nb_fail "sd_enable: $unit has no WantedBy="
        fi
        mkdir -p "$SD_UNITDIR/$target.wants"
        ln -sf "$path" "$SD_UNITDIR/$target.wants/$unit"
}

# ---------------------------------------------------------------------------------------------
# running things in the container

# sd_run CMD...: run CMD in every namespace of the container (bounded by the caller)
sd_run() {
        [[ -n $SD_PID ]] || { echo "sd_run: the container is not running" >&2; return 1; }
        nsenter -t "$SD_PID" -a "$@"
}

# sd_systemctl ARGS...: systemctl in the container, 60 s at most
sd_systemctl() {
        timeout -k 5 60 nsenter -t "$SD_PID" -a systemctl "$@"
}

# sd_nbctl ARGS...: netbumpctl in the container, at its default socket, 15 s at most
sd_nbctl() {
        timeout -k 2 15 nsenter -t "$SD_PID" -a "$(sd_path netbumpctl /usr/local/bin/netbumpctl)" "$@"
}

# sd_prop UNIT PROPERTY: the value of a unit property
sd_prop() {
        sd_systemctl show -P "$2" "$1"
}

# sd_journal UNIT [LINES]: the last lines of a unit's journal, indented, to the test's output
sd_journal() {
        sd_run timeout 10 journalctl --no-pager -q -o short-monotonic -n "${2:-20}" -u "$1" 2>&1 |
                sed 's/^/    /' >&3 || :
}

# ---------------------------------------------------------------------------------------------
# boot and poweroff

_sd_find_pid1() {
        SD_PID=$(pgrep -P "$SD_NSPAWN_PID" -x systemd | head -n 1)
        [[ -n $SD_PID ]]
}

_sd_console_tail() {
        nb_say "--- last lines of the container's console ---"
        tail -n 20 "$NB_TMP/console.log" | sed 's/^/    /' >&3
}

# sd_boot: boot the container; returns when the boot has finished (running or degraded)
sd_boot() {
        [[ -n $SD_UNITDIR && -e $NB_NETNS_A ]] || nb_fail "sd_boot: call sd_setup first"
        [[ -z $SD_NSPAWN_PID ]] || nb_fail "sd_boot: the container is already running"
        local d t0 t1 state binds=()
        if ((SD_BIND_UNITDIR)); then
                binds+=("--bind-ro=$SD_UNITDIR:/etc/systemd/system")
        fi
        for d in /run/systemd/nspawn /run/systemd/nspawn/propagate; do
                [[ -d $d ]] && _SD_NSPAWN_DIR_EXISTED+=("$d")
        done
        mkdir -p "$SD_CG"
        _SD_BOOTED=1
        t0=$(nb_now)
        # moves itself into $SD_CG, then becomes nspawn: $! is nspawn's PID. No registration with
        # machined, no scope of its own: the host's PID 1 need not be systemd
        # shellcheck disable=SC2016
        SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_LOG_COLOR=0 \
                sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$SD_CG" \
                systemd-nspawn --quiet --register=no --keep-unit -D / --volatile=yes -M "$SD_NAME" \
                --network-namespace-path="$NB_NETNS_A" \
                --capability="$SD_CAPS" --system-call-filter=bpf \
                "${binds[@]}" --bind="$SD_OUTDIR:$SD_OUT" \
                --bind="$SD_KMSG:/dev/kmsg" \
                "${SD_BINDS[@]}" "${SD_NSPAWN_ARGS[@]}" \
                -b systemd.firstboot=off systemd.show_status=false \
                </dev/null >"$NB_TMP/console.log" 2>&1 &
        SD_NSPAWN_PID=$!
        if ! nb_wait_until 10 _sd_find_pid1; then
                _sd_console_tail
                nb_fail "the container's systemd did not start within 10 s"
        fi
        # systemctl needs the manager's private socket, made a moment after PID 1 starts
        nb_wait_until 10 test -S "/proc/$SD_PID/root/run/systemd/private" ||
                nb_fail "the container's systemd made no /run/systemd/private within 10 s"
        state=$(timeout -k 2 "$SD_BOOT_TIMEOUT" nsenter -t "$SD_PID" -a systemctl is-system-running --wait 2>&1) || :
        t1=$(nb_now)
        case $state in
        running) ;;
        degraded)
                nb_say "container: boot finished degraded; failed units:"
                sd_systemctl --failed --no-legend --plain 2>&1 | sed 's/^/    /' >&3 || :
                ;;
        *)
                _sd_console_tail
                nb_fail "container: system state '$state' ${SD_BOOT_TIMEOUT} s after the start"
                ;;
        esac
        nb_say "container $SD_NAME: systemd $(sd_run systemctl --version | awk 'NR == 1 { print $2 }') is $state" \
                "(pid $SD_PID on the host, in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)," \
                "root cgroup ${SD_CGROOT#"$NB_CGROUP2"}"
}

# _sd_v1_dirs: this run's directories in cgroup v1 hierarchies (nspawn mirrors its cgroup in the
# name=systemd one on a hybrid host)
_sd_v1_dirs() {
        awk '{
                for (i = 7; i <= NF; i++) if ($i == "-") break
                if ($(i + 1) == "cgroup" && $4 == "/") print $5
        }' /proc/self/mountinfo | while read -r mnt; do
                [[ -d $mnt$NB_CGROOT_REL ]] && printf '%s\n' "$mnt$NB_CGROOT_REL"
        done
}

# _sd_rmdir_tree DIR: remove a cgroup directory tree, deepest first (5 s at most); 1 if it stays
_sd_rmdir_tree() {
        local i
        for ((i = 0; i < 50; i++)); do
                find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
                [[ -d $1 ]] || return 0
                sleep 0.1
        done
        return 1
}

# sd_poweroff: `systemctl poweroff` in the container (SIGTERM to nspawn if systemctl cannot) and
# wait for nspawn to end ($SD_STOP_TIMEOUT s); then SIGKILL, and cgroup.kill for whatever is
# left. Prints nspawn's exit status. Returns 1 if the container did not end by itself. (No
# machine to unregister: --register=no.)
sd_poweroff() {
        local rc=0 clean=0
        [[ -n $SD_NSPAWN_PID ]] || return 0
        if nb_alive "$SD_NSPAWN_PID"; then
                # SIGTERM makes nspawn ask systemd for the same clean poweroff (SIGRTMIN+3): the
                # way when systemctl cannot (too early in the boot)
                if [[ -z $SD_PID ]] ||
                        ! timeout -k 2 10 nsenter -t "$SD_PID" -a systemctl poweroff --no-block >/dev/null 2>&1; then
                        kill -TERM "$SD_NSPAWN_PID" 2>/dev/null
                fi
                if ! nb_wait_pid "$SD_NSPAWN_PID" "$SD_STOP_TIMEOUT"; then
                        clean=1
                        nb_say "container: still running $SD_STOP_TIMEOUT s after poweroff; SIGKILL to nspawn"
                        kill -KILL "$SD_NSPAWN_PID" 2>/dev/null
                        nb_wait_pid "$SD_NSPAWN_PID" 5
                fi
        fi
        # whatever outlived nspawn (nothing, normally; cgroup.kill: Linux >= 5.14)
        if [[ -f $SD_CG/cgroup.kill ]]; then
                echo 1 >"$SD_CG/cgroup.kill" 2>/dev/null
        elif [[ -d $SD_CG ]]; then
                local pids
                pids=$(find "$SD_CG" -name cgroup.procs -exec cat {} + 2>/dev/null)
                # shellcheck disable=SC2086
                [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
        fi
        { wait "$SD_NSPAWN_PID" || rc=$?; } 2>/dev/null
        nb_say "container: nspawn exited with status $rc"
        SD_NSPAWN_PID=
        SD_PID=
        return "$clean"
}

# _sd_teardown: the container's part of the EXIT trap, before lib.sh's; records what is left
_sd_teardown() {
        local left=() d
        [[ -n $_SD_BOOTED ]] || return 0
        if [[ -n $SD_NSPAWN_PID ]]; then
                sd_poweroff || left+=("a container that had to be killed")
        fi
        if [[ -d $SD_CG ]] && ! _sd_rmdir_tree "$SD_CG"; then
                left+=("cgroup $SD_CG ($(find "$SD_CG" -name cgroup.procs -exec cat {} + 2>/dev/null | wc -l) processes)")
        fi
        for d in $(_sd_v1_dirs); do
                _sd_rmdir_tree "$d" || left+=("cgroup v1 $d")
        done
        d=/run/systemd/nspawn/propagate/$SD_NAME
        if [[ -e $d ]]; then
                rm -rf "$d"
                [[ -e $d ]] && left+=("$d")
        fi
        for d in /run/systemd/nspawn/propagate /run/systemd/nspawn; do
                [[ " ${_SD_NSPAWN_DIR_EXISTED[*]} " == *" $d "* ]] || rmdir "$d" 2>/dev/null
        done
        # nspawn mounts in a namespace of its own; nothing of it may show in ours
        d=$(awk -v t="${NB_TMP:-/nonexistent}" -v n="/run/systemd/nspawn/propagate/$SD_NAME" \
                'index($4, t) == 1 || index($5, t) == 1 || index($5, n) == 1 { print $5 }' /proc/self/mountinfo)
        [[ -n $d ]] && left+=("mounts: ${d//$'\n'/ }")
        if ((${#left[@]} > 0)); then
                nb_say "FAIL: container teardown left: ${left[*]}"
                _SD_TEARDOWN_FAILED=1
        fi
}

_sd_exit_trap() {
        local rc=$?
        set +e
        _sd_teardown
        if [[ -n ${_SD_TEARDOWN_FAILED:-} ]] && ((rc == 0 || rc == 77)); then
                rc=1
        fi
        # lib.sh's teardown reads the status from $?
        _sd_return "$rc"
        _nb_teardown
}

_sd_return() { return "$1"; }

trap _sd_exit_trap EXIT

# ---------------------------------------------------------------------------------------------
# snapshots

# sd_snapshot FILE: host_snapshot's sections about ns a and the host's namespace, the cgroups
# netbumpd makes in the container's tree (its own "netbump", scopes "netbump-*") and what is
# attached to the container's cgroup tree except systemd's own programs (sd_*), whose services
# come and go; a clean stop of netbumpd compares equal
sd_snapshot() {
        local f=$1 cgids s
        host_snapshot "$f.full"
        {
                for s in "links in ns a" "tc " "bpftool net show in ns a" "host:"; do
                        awk -v p="### $s" 'index($0, "### ") == 1 { on = index($0, p) == 1 } on' "$f.full"
                done
                echo "### netbump's cgroups in the container's tree"
                (cd "$SD_CGROOT" 2>/dev/null &&
                        find . -type d \( -name netbump -o -name 'netbump-*' \) | LC_ALL=C sort) || :
                echo "### programs attached in the container's cgroup tree (but systemd's)"
                bpftool -j cgroup tree "$SD_CGROOT" 2>/dev/null | jq -r --arg root "$SD_CGROOT" '
                        .[]? | (.cgroup | ltrimstr($root)) as $cg | .programs[]? |
                        select((.name // "") | startswith("sd_") | not) |
                        "\(if $cg == "" then "/" else $cg end) \(.attach_type) \(.name // "-")"' | sort || :
                echo "### bpf links on the container's cgroups"
                cgids=$(find "$SD_CGROOT" -type d -printf '%i\n' 2>/dev/null | paste -sd, -)
                bpftool -j link show 2>/dev/null | jq -r --arg cg "[${cgids}]" '
                        ($cg | fromjson) as $ids | .[]? |
                        select(.cgroup_id? as $c | $c != null and ($ids | index($c) != null)) |
                        "link \(.type) \(.attach_type // "-")"' | sort || :
        } >"$f"
}
