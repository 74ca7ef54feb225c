#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbump under a real systemd (this host's systemd booted in a container on ns a: systemd-lib.sh),
# with the units as `meson install` installs them:
#   1. netbumpd.socket enabled: netbumpd.service stays inactive until the first `netbumpctl
#      status` starts it by socket activation; Type=notify: it turns active (not stuck activating)
#      with the STATUS= text netbumpd sent; `systemctl stop` ends it with status 0 within
#      TimeoutStopSec and leaves ns a, the host and the container's cgroup tree as they were.
#   2. the socket is every user's (0666): uid 1000's `netbumpctl status` starts netbumpd by
#      socket activation, its `list` works and hides root's rule, and netbumpd refuses it root's
#      process, root's unit and root's rule, saying why (the rule stays).
#   3. `systemd-run -p Environment=NETBUMP_RATE=8mbit netbump-wrap iperf3 ...`: the transient
#      unit's goodput is what 8mbit gives (within 5%), upload and download, IPv4.
#   4. a unit with `[X-Netbump] NetbumpRate=8mbit` in a drop-in: after daemon-reload it has the
#      generator's drop-in (SourcePath= its unit file) and is limited (5%), upload and download;
#      its rule ends when it stops. A bad rate in another unit's drop-in: the generator logs it to
#      /dev/kmsg as an error and leaves that unit without a drop-in.
#   5. `netbumpctl set unit:NAME 8mbit` while NAME is not running, then start it: limited (5%).
#   6. restarts: two long-running (Type=simple) services, one limited by a NetbumpRate= drop-in,
#      one by `netbumpctl set unit:NAME`, each limited (5%) before and after `systemctl restart`
#      (a new cgroup), upload and download, their rules still listed.
#   7. `systemctl stop netbumpd` while those two are shaped and a cgroup: rule is set: status 0,
#      and ns a, the host and the container's cgroup tree are as before netbumpd first started.
#   8. under the unit's capability bounding set, another user's running transfer: `set pid:PID`
#      moves it into a transient scope and limits its open connection (10%); sock:PID:FD of its
#      socket resolves (both read that user's /proc/PID/fd).
#   9. poweroff: the container ends by itself and netbumpd leaves nothing behind.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/systemd-lib.sh"

RATE=8mbit
SECS=4                  # measured seconds, after OMIT omitted ones
# A download limited from its first packet came out 5-6% short (7.20-7.25 of 7.65 Mbit/s) in 2 of
# about 8 runs with one second omitted, as if its slow start's losses took longer than that second to
# recover from (shaped at the receiver's side, the sender learns of them a round trip late). Two
# omitted seconds leave that out of the window; on a failure the receiver's intervals are shown.
OMIT=2
TOL=5                   # percent
# Downloads limited from their first packet came out 4.4-5.9% short of 7.65 Mbit/s in 3 of about 12
# runs here (the receiver's count over a few seconds; the shaper's accuracy is test-limit-*'s and
# bench/run.sh's business): 10% for them.
TOL_DOWN=10
PID_SECS=6              # part 8: transfer length; the pid: rule is set ~0.2 s in
PID_FROM=2              # part 8: receiver intervals from this second on must be limited
PID_TOL=10
USER_ID=1000
LOOP_RUNS=20            # part 6: iperf3 runs per service start at most

nb_require_daemon
sd_require
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
IPERF=$(command -v iperf3)
[[ $(realpath "$IPERF") == /usr/* ]] || nb_skip "iperf3 ($IPERF) is outside /usr: the container cannot run it"
WRAP=$(sd_path netbump-wrap /usr/local/bin/netbump-wrap)
NBCTL=$(sd_path netbumpctl /usr/local/bin/netbumpctl)
# the build has all of these: missing is a failure, not a reason to skip
[[ -e $WRAP ]] || nb_fail "netbump-wrap is not built or not installed ($WRAP)"
sd_has_generator netbump-generator || nb_fail "the build has no netbump-generator"
expected=$(expected_goodput "$RATE" 4)

sd_setup
nb_start_iperf_servers 5201 5202 5203 5204 5205
sd_enable netbumpd.socket
sd_boot
snap=$NB_TMP/snapshot

# iperf_args NAME up|down [SECS]: IPERF_ARGS, an iperf3 client to ns b, JSON with the server's
# side in $SD_OUTDIR/NAME.json. A log file, not stdout: the generator's ExecStartPre= and
# ExecStopPost= share the unit's stdout, and StandardOutput=truncate: would truncate it again.
iperf_args() {
        rm -f "$SD_OUTDIR/$1.json"
        IPERF_ARGS=("$IPERF" -c "$NB_B4" -p 5201 -t "${3:-$SECS}" -O "$OMIT" -J --get-server-output
                --connect-timeout 3000 --logfile "$SD_OUT/$1.json")
        [[ $2 == down ]] && IPERF_ARGS+=(-R)
        :
}

# run_transient NAME SYSTEMD-RUN-ARGS...: systemd-run --wait in the container; stderr goes to
# $SD_OUTDIR/NAME.err (bounded twice: in the container and here)
run_transient() {
        local name=$1
        shift
        timeout -k 5 $((SECS + 45)) nsenter -t "$SD_PID" -a systemd-run --wait --quiet --collect \
                -p RuntimeMaxSec=$((SECS + 30)) -p StandardError="truncate:$SD_OUT/$name.err" "$@"
}

# assert_goodput BPS NAME MSG: BPS within TOL of the expected goodput; if not, the receiver's
# intervals of $SD_OUTDIR/NAME.json are shown
assert_goodput() {
        local failed=$NB_FAILED tol=$TOL
        [[ $(jq -r '.start.test_start.reverse // 0' "$SD_OUTDIR/$2.json" 2>/dev/null) == 1 ]] && tol=$TOL_DOWN
        assert_within "$1" "$expected" "$tol" "$3"
        if ((NB_FAILED > failed)) && [[ -s $SD_OUTDIR/$2.json ]]; then
                nb_say "    the receiver's intervals (start end bits/s):"
                receiver_intervals "$SD_OUTDIR/$2.json" | sed 's/^/        /' >&3 || :
        fi
}

# unit_goodput NAME: the receiver's bits/s from $SD_OUTDIR/NAME.json; 1 with the reason shown
unit_goodput() {
        local f=$SD_OUTDIR/$1.json err
        err=$(jq -r '.error // empty' "$f" 2>/dev/null) || err="no JSON output"
        if [[ -n $err ]]; then
                nb_say "$1: iperf3 failed: $err"
                [[ -s $SD_OUTDIR/$1.err ]] && sed 's/^/    /' "$SD_OUTDIR/$1.err" >&3
                return 1
        fi
        goodput_from_json "$f"
}

# oneshot_unit NAME.service up|down: a unit running one iperf3 client, output to $SD_OUT/NAME.json
oneshot_unit() {
        local name=${1%.service}
        iperf_args "$name" "$2"
        sd_unit_file "$1" <<EOF
[Unit]
Description=netbump test: iperf3 $2
[Service]
Type=oneshot
ExecStart=${IPERF_ARGS[*]}
StandardError=append:$SD_OUT/$name.err
TimeoutStartSec=$((SECS + 30))
EOF
}

# start_and_measure UNIT LABEL: start a oneshot unit (returns when it is done), assert its goodput
start_and_measure() {
        local bps
        if ! sd_systemctl start "$1" 2>&1 | sed 's/^/    /' >&3; then
                nb_record_failure "$2: systemctl start $1 failed"
        fi
        if bps=$(unit_goodput "${1%.service}"); then
                assert_goodput "$bps" "${1%.service}" "$2"
        else
                nb_record_failure "$2: no measurement"
                sd_journal "$1"
        fi
}

# rule_listed PATTERN: `netbumpctl list` shows a line matching PATTERN
rule_listed() {
        sd_nbctl list 2>/dev/null | grep -qE -- "$1"
}

# lacks PATTERN TEXT: no line of TEXT matches PATTERN
lacks() {
        ! grep -q -- "$1" <<<"$2"
}

# nbctl_as UID ARGS...: netbumpctl in the container as UID (no groups), 15 s at most
nbctl_as() {
        local uid=$1
        shift
        timeout -k 2 15 nsenter -t "$SD_PID" -a setpriv --reuid "$uid" --regid "$uid" --clear-groups -- \
                "$NBCTL" "$@"
}

# loop_unit NAME.service up|down: a long-running unit that runs iperf3 clients one after the
# other (at most $LOOP_RUNS) to the port in $SD_OUT/NAME.port when it starts, run N of each start
# writing $SD_OUT/NAME-INVOCATION-N.json. A port per start: the server whose client a restart
# killed may stay busy until its --rcv-timeout.
loop_unit() {
        local name=${1%.service} args
        args=("$IPERF" -c "$NB_B4" -t "$SECS" -O "$OMIT" -J --get-server-output --connect-timeout 3000)
        [[ $2 == down ]] && args+=(-R)
        sd_unit_file "$1" <<EOF
[Unit]
Description=netbump test: iperf3 $2, again and again
[Service]
Type=simple
ExecStart=/bin/sh $SD_OUT/loop.sh $SD_OUT/$name ${args[*]}
StandardError=append:$SD_OUT/$name.err
RuntimeMaxSec=120
EOF
}

# loop.sh PREFIX CMD...: CMD -p PORT --logfile PREFIX-$INVOCATION_ID-N.json for N = 0, 1, ...,
# PORT read from PREFIX.port at the start (a second's pause after a failure, so that it does not
# spin); systemd sets INVOCATION_ID anew on every start
cat >"$SD_OUTDIR/loop.sh" <<EOF
prefix=\$1
shift
port=\$(cat "\$prefix.port")
n=0
while [ \$n -lt $LOOP_RUNS ]; do
        "\$@" -p "\$port" --logfile "\$prefix-\$INVOCATION_ID-\$n.json" || sleep 1
        n=\$((n + 1))
done
EOF

_json_complete() {
        jq -es 'length == 1 and (.[0] | has("end"))' "$1" >/dev/null 2>&1
}

# loop_goodput NAME INVOCATION: the receiver's bits/s of the first run of that start of NAME that
# did not fail (of its second and third); 1 with the reason shown. Not the first: it starts with
# the unit, while a unit: rule learns of the unit's new cgroup from systemd (D-Bus) only once that
# exists, so its first packets may pass before the rule follows, and the cut that follows made the
# receiver's count of that run 12% high in 1 of 3 runs (catch-up after the drops).
loop_goodput() {
        local n f err
        for n in 1 2; do
                f=$SD_OUTDIR/$1-$2-$n.json
                if ! nb_wait_until $((SECS + 20)) _json_complete "$f"; then
                        nb_say "$1: run $n after start $2 did not end within $((SECS + 20)) s"
                        [[ -s $SD_OUTDIR/$1.err ]] && tail -n 5 "$SD_OUTDIR/$1.err" | sed 's/^/    /' >&3
                        return 1
                fi
                err=$(jq -r '.error // empty' "$f")
                [[ -z $err ]] && { goodput_from_json "$f"; return; }
                nb_say "$1: run $n after start $2 failed ($err)"
        done
        return 1
}

# cgroup_ino UNIT: the inode (cgroup id) of a running unit's cgroup, seen from the host
cgroup_ino() {
        stat -c %i "$SD_CGROOT$(sd_prop "$1" ControlGroup)" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
nb_say "--- 1. socket activation, Type=notify, clean stop"

assert_true "netbumpd.socket is enabled" test "$(sd_systemctl is-enabled netbumpd.socket 2>&1)" = enabled
assert_true "netbumpd.socket is listening" test "$(sd_systemctl is-active netbumpd.socket 2>&1)" = active
state=$(sd_prop netbumpd.service ActiveState)
assert_true "netbumpd.service is not running before the first call (ActiveState=$state)" test "$state" = inactive
sd_snapshot "$snap.before"

out=$(sd_nbctl status 2>&1) || nb_fail "netbumpctl status (by socket activation) failed: $out"
nb_say "netbumpctl status answered: ${out%%$'\n'*}"
# READY=1 goes out before netbumpd answers, but systemd may read it a moment later
_active() { [[ $(sd_prop netbumpd.service ActiveState) == active ]]; }
if nb_wait_until 5 _active; then
        nb_say "netbumpd.service is active after the call: ok"
else
        nb_record_failure "netbumpd.service is $(sd_prop netbumpd.service ActiveState)/$(sd_prop netbumpd.service SubState) 5 s after the call (Type=notify: no READY=1?)"
fi
assert_true "Type=notify" test "$(sd_prop netbumpd.service Type)" = notify
status_text=$(sd_prop netbumpd.service StatusText)
assert_true "STATUS= from sd_notify reached systemd ('$status_text')" test -n "$status_text"
main_pid=$(sd_prop netbumpd.service MainPID)
assert_true "MainPID $main_pid is netbumpd" test "$(sd_run cat "/proc/$main_pid/comm" 2>/dev/null)" = netbumpd
sd_snapshot "$snap.running"
assert_different_snapshot "$snap.before" "$snap.running" "running netbumpd shapes veth-a"

stop_limit=$(sd_prop netbumpd.service TimeoutStopUSec)
t0=$(nb_now)
sd_systemctl stop netbumpd.service 2>/dev/null || nb_record_failure "systemctl stop netbumpd.service failed"
t1=$(nb_now)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
res="$(sd_prop netbumpd.service Result) $(sd_prop netbumpd.service ExecMainCode) $(sd_prop netbumpd.service ExecMainStatus)"
# ExecMainCode 1: CLD_EXITED
assert_true "stopped in $took s (TimeoutStopSec=$stop_limit), Result ExecMainCode ExecMainStatus: $res" \
        test "$res" = "success 1 0"
assert_true "stopped within TimeoutStopSec" awk -v t="$took" -v l="${stop_limit%s}" 'BEGIN { exit !(t < l) }'
assert_true "netbumpd.service is inactive after stop" test "$(sd_prop netbumpd.service ActiveState)" = inactive
sd_snapshot "$snap.stopped"
assert_same_snapshot "$snap.before" "$snap.stopped" "nothing left in ns a, the host or the container's cgroups after stop"
assert_true "netbumpd.socket still listens" test "$(sd_systemctl is-active netbumpd.socket 2>&1)" = active

# ---------------------------------------------------------------------------------------------
nb_say "--- 2. the socket is every user's; netbumpd decides by uid"

mode=$(sd_run stat -c %a /run/netbump/netbumpd.sock 2>&1)
assert_true "the socket is mode 0666 ($mode)" test "$mode" = 666
state=$(sd_prop netbumpd.service ActiveState)
assert_true "netbumpd.service is not running before uid $USER_ID calls (ActiveState=$state)" test "$state" = inactive
rc=0
out=$(nbctl_as "$USER_ID" status 2>&1) || rc=$?
assert_true "uid $USER_ID: netbumpctl status answered by socket activation (exit $rc: ${out%%$'\n'*})" \
        test "$rc" = 0 -a "${out%% *}" = netbumpd
nb_wait_until 5 _active || nb_record_failure "netbumpd.service is not active after uid $USER_ID's call"
out=$(sd_nbctl set unit:nbtest-root.service "$RATE" 2>&1) || nb_record_failure "root: netbumpctl set unit:nbtest-root.service: $out"
rc=0
out=$(nbctl_as "$USER_ID" list 2>&1) || rc=$?
assert_true "uid $USER_ID: netbumpctl list works (exit $rc: ${out%%$'\n'*})" test "$rc" = 0
assert_true "uid $USER_ID: root's rule on another unit is not shown" lacks nbtest-root "$out"
# refused, and why: the daemon's "not-owner: ..." on stderr, a non-zero exit
for args in "set pid:1 1mbit" "set unit:nbtest-root.service 1mbit" "set cgroup:/system.slice 1mbit"; do
        rc=0
        # shellcheck disable=SC2086
        out=$(nbctl_as "$USER_ID" $args 2>&1) || rc=$?
        assert_true "uid $USER_ID: netbumpctl $args is refused (exit $rc: $out)" \
                test "$rc" != 0 -a -n "$(grep 'not-owner: .*uid [0-9]' <<<"$out")"
done
rc=0
out=$(nbctl_as "$USER_ID" unset unit:nbtest-root.service 2>&1) || rc=$?
assert_true "uid $USER_ID: netbumpctl unset of root's rule is refused (exit $rc: $out)" test "$rc" != 0 -a -n "$out"
assert_true "root's rule is still there, unchanged" rule_listed "^unit:nbtest-root\.service +up +$RATE"
sd_nbctl unset unit:nbtest-root.service >/dev/null 2>&1 || nb_record_failure "root: netbumpctl unset unit:nbtest-root.service failed"

# ---------------------------------------------------------------------------------------------
nb_say "--- 3. systemd-run -p Environment=NETBUMP_RATE=$RATE netbump-wrap iperf3"

for dir in up down; do
        iperf_args "wrap-$dir" "$dir"
        rc=0
        run_transient "wrap-$dir" -p Environment=NETBUMP_RATE="$RATE" "$WRAP" "${IPERF_ARGS[@]}" || rc=$?
        assert_true "systemd-run netbump-wrap iperf3 ($dir) exited 0 (got $rc)" test "$rc" = 0
        if bps=$(unit_goodput "wrap-$dir"); then
                assert_goodput "$bps" "wrap-$dir" "netbump-wrap in a transient unit, $dir v4"
        else
                nb_record_failure "netbump-wrap $dir: no measurement"
        fi
done

# ---------------------------------------------------------------------------------------------
nb_say "--- 4. [X-Netbump] NetbumpRate=$RATE in a drop-in (netbump-generator)"

for dir in up down; do
        unit=nbtest-gen-$dir.service
        oneshot_unit "$unit" "$dir"
        sd_unit_file "$unit.d/50-limit.conf" <<EOF
[X-Netbump]
NetbumpRate=$RATE
EOF
done
# a bad rate: logged, the unit left alone
sd_unit_file nbtest-gen-bad.service <<EOF
[Service]
Type=oneshot
ExecStart=/bin/true
EOF
sd_unit_file nbtest-gen-bad.service.d/50-limit.conf <<EOF
[X-Netbump]
NetbumpRate=fivembit
EOF
sd_systemctl daemon-reload || nb_fail "daemon-reload failed"
for dir in up down; do
        unit=nbtest-gen-$dir.service
        dropins=$(sd_prop "$unit" DropInPaths)
        assert_true "$unit has a drop-in from the generator ($dropins)" \
                grep -q '/run/systemd/generator' <<<"$dropins"
        src=$(sd_prop "$unit" SourcePath)
        assert_true "the drop-in's SourcePath= reached systemd ($src)" test "$src" = "/etc/systemd/system/$unit"
        start_and_measure "$unit" "unit with NetbumpRate=$RATE, $dir v4"
        if rule_listed "$unit"; then
                nb_record_failure "the rule for $unit is still listed after it stopped"
        else
                nb_say "no rule left for $unit after it stopped: ok"
        fi
done
# <27>: LOG_DAEMON | LOG_ERR (syslog(3)), as /dev/kmsg reads a record's priority
want="<27>netbump-generator: nbtest-gen-bad.service: /etc/systemd/system/nbtest-gen-bad.service.d/50-limit.conf:2: invalid rate 'fivembit' in NetbumpRate="
if grep -aqF -- "$want" "$SD_KMSG"; then
        nb_say "the bad rate is in the container's /dev/kmsg, priority err: ok"
else
        nb_record_failure "/dev/kmsg has no '$want'; it holds:"
        grep -a 'netbump' "$SD_KMSG" | sed 's/^/    /' >&3
fi
dropins=$(sd_prop nbtest-gen-bad.service DropInPaths)
assert_true "the unit with the bad rate has no drop-in from the generator ($dropins)" \
        lacks /run/systemd/generator "$dropins"

# ---------------------------------------------------------------------------------------------
nb_say "--- 5. netbumpctl set unit:NAME before NAME starts"

for dir in up down; do
        oneshot_unit "nbtest-unit-$dir.service" "$dir"
done
sd_systemctl daemon-reload || nb_fail "daemon-reload failed"
for dir in up down; do
        unit=nbtest-unit-$dir.service
        rc=0
        out=$(sd_nbctl set "unit:$unit" "$RATE" 2>&1) || rc=$?
        if ((rc != 0)); then
                nb_record_failure "netbumpctl set unit:$unit $RATE: $out"
                continue
        fi
        nb_say "netbumpctl set unit:$unit $RATE while $(sd_prop "$unit" ActiveState): $out"
        start_and_measure "$unit" "unit:$unit set before its start, $dir v4"
        sd_nbctl unset "unit:$unit" >/dev/null 2>&1 || nb_record_failure "netbumpctl unset unit:$unit failed"
done
rc=0

# ---------------------------------------------------------------------------------------------
nb_say "--- 6. restarts: a NetbumpRate= drop-in and a unit: rule follow the unit into its new cgroup"

GEN_UNIT=nbtest-restart-gen.service     # upload, NetbumpRate= drop-in
SET_UNIT=nbtest-restart-set.service     # download, netbumpctl set unit:
loop_unit "$GEN_UNIT" up
sd_unit_file "$GEN_UNIT.d/50-limit.conf" <<EOF
[X-Netbump]
NetbumpRate=$RATE
EOF
loop_unit "$SET_UNIT" down
sd_systemctl daemon-reload || nb_fail "daemon-reload failed"
out=$(sd_nbctl set "unit:$SET_UNIT" "$RATE" 2>&1) || nb_record_failure "netbumpctl set unit:$SET_UNIT $RATE: $out"
declare -A ino=() inv=() label=([$GEN_UNIT]="NetbumpRate=$RATE drop-in, up v4" [$SET_UNIT]="unit: rule, down v4")
for when in "first start" "after restart"; do
        if [[ $when == "first start" ]]; then
                echo 5202 >"$SD_OUTDIR/${GEN_UNIT%.service}.port"
                echo 5203 >"$SD_OUTDIR/${SET_UNIT%.service}.port"
                sd_systemctl start "$GEN_UNIT" "$SET_UNIT" || nb_record_failure "systemctl start $GEN_UNIT $SET_UNIT failed"
        else
                echo 5204 >"$SD_OUTDIR/${GEN_UNIT%.service}.port"
                echo 5205 >"$SD_OUTDIR/${SET_UNIT%.service}.port"
                sd_systemctl restart "$GEN_UNIT" "$SET_UNIT" || nb_record_failure "systemctl restart failed"
        fi
        for unit in "$GEN_UNIT" "$SET_UNIT"; do
                inv[$unit]=$(sd_prop "$unit" InvocationID)
                new=$(cgroup_ino "$unit")
                if [[ $when == "after restart" ]]; then
                        assert_true "$unit runs in a new cgroup (id ${ino[$unit]} -> $new)" test "$new" != "${ino[$unit]}"
                fi
                ino[$unit]=$new
        done
        for unit in "$GEN_UNIT" "$SET_UNIT"; do
                if bps=$(loop_goodput "${unit%.service}" "${inv[$unit]}"); then
                        tol=$TOL; [[ ${label[$unit]} == *down* ]] && tol=$TOL_DOWN
                        assert_within "$bps" "$expected" "$tol" "$unit (${label[$unit]}), $when"
                else
                        nb_record_failure "$unit, $when: no measurement"
                        sd_journal "$unit"
                fi
                assert_true "$unit: its rule is listed, $when" rule_listed "^unit:$unit +up +$RATE"
        done
done
# one cgroup, one rule: the kernel knows the cgroup by its id, whatever name a rule gives it
cg=$(sd_prop "$SET_UNIT" ControlGroup)
rc=0
out=$(sd_nbctl set "cgroup:$cg" 1mbit 2>&1) || rc=$?
assert_true "cgroup:$cg, the cgroup of unit:$SET_UNIT, is refused naming that rule (exit $rc: $out)" \
        test "$rc" != 0 -a -n "$(grep -F "unit:$SET_UNIT" <<<"$out")"
assert_true "unit:$SET_UNIT's rule is unchanged" rule_listed "^unit:$SET_UNIT +up +$RATE"

# ---------------------------------------------------------------------------------------------
nb_say "--- 7. systemctl stop netbumpd with rules set and traffic shaped"

mkdir "$SD_CGROOT/nbtest-cg"
out=$(sd_nbctl set cgroup:/nbtest-cg "$RATE" 2>&1) || nb_record_failure "netbumpctl set cgroup:/nbtest-cg $RATE: $out"
rules=$(sd_nbctl list 2>/dev/null | grep -cE '^(unit|cgroup):')
assert_true "3 rules set ($rules)" test "$rules" = 3
for unit in "$GEN_UNIT" "$SET_UNIT"; do
        assert_true "$unit is running, shaped" test "$(sd_prop "$unit" ActiveState)" = active
done
sd_snapshot "$snap.rules"
assert_different_snapshot "$snap.before" "$snap.rules" "netbumpd shapes veth-a"
t0=$(nb_now)
sd_systemctl stop netbumpd.service 2>/dev/null || nb_record_failure "systemctl stop netbumpd.service failed"
t1=$(nb_now)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
res="$(sd_prop netbumpd.service Result) $(sd_prop netbumpd.service ExecMainCode) $(sd_prop netbumpd.service ExecMainStatus)"
assert_true "stopped with 3 rules in $took s, Result ExecMainCode ExecMainStatus: $res" test "$res" = "success 1 0"
sd_snapshot "$snap.stopped-rules"
assert_same_snapshot "$snap.before" "$snap.stopped-rules" \
        "no qdisc, class, filter, IFB, cgroup, program or link left in ns a, the host or the container after stop"
rmdir "$SD_CGROOT/nbtest-cg"
# their ExecStopPost= netbumpctl starts netbumpd again (socket activation): unset, nothing to do
sd_systemctl stop "$GEN_UNIT" "$SET_UNIT" || nb_record_failure "systemctl stop $GEN_UNIT $SET_UNIT failed"

# ---------------------------------------------------------------------------------------------
nb_say "--- 8. pid: and sock:PID:FD on another user's process, under the unit's capabilities"

_pid_connected() {
        pid=$(sd_prop nbtest-pid.service MainPID)
        [[ $pid != 0 && $(sd_run cat "/proc/$pid/comm" 2>/dev/null) == iperf3 ]] || return 1
        # the data connection: the second one to the port (the first is iperf3's control)
        (($(sd_run ss -Htn state established "dport = :5201" | wc -l) >= 2))
}

# data_fd PID: the descriptor of PID's established connection to port 5201 with most bytes sent
data_fd() {
        local ino
        ino=$(sd_run ss -HOtnie state established "dport = :5201" | awk '{
                b = 0; ino = ""
                for (i = 1; i <= NF; i++) {
                        if ($i ~ /^ino:/) ino = substr($i, 5)
                        if ($i ~ /^bytes_sent:/) b = substr($i, 12)
                }
                print b + 0, ino
        }' | sort -n | tail -n 1 | cut -d' ' -f2)
        sd_run ls -l "/proc/$1/fd" | awk -v l="socket:[$ino]" '$NF == l { print $9; exit }'
}

iperf_args pid up "$PID_SECS"
install -m 0644 -o "$USER_ID" -g "$USER_ID" /dev/null "$SD_OUTDIR/pid.json"   # its log file
timeout -k 5 20 nsenter -t "$SD_PID" -a systemd-run --quiet --collect --unit=nbtest-pid \
        -p RuntimeMaxSec=$((PID_SECS + 20)) \
        setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- "${IPERF_ARGS[@]}" ||
        nb_fail "could not start nbtest-pid.service"
nb_wait_until 5 _pid_connected || nb_fail "the uid $USER_ID iperf3 did not connect within 5 s"
# (no awk in the container: /usr/bin/awk is an /etc/alternatives link, and /etc is empty)
cg_before=$(sd_run cat "/proc/$pid/cgroup" | sed -n 's/^0:://p')
out=$(sd_nbctl set "pid:$pid" "$RATE" 2>&1) || nb_record_failure "netbumpctl set pid:$pid $RATE: $out"
cg_after=$(sd_run cat "/proc/$pid/cgroup" | sed -n 's/^0:://p')
nb_say "set pid:$pid (uid $USER_ID, running): $out; cgroup $cg_before -> $cg_after"
assert_true "the process left its unit for a cgroup of netbump's" \
        test "$cg_after" != "$cg_before" -a -z "${cg_after##*netbump*}"
fd=$(data_fd "$pid")
rc=0
out=$(sd_nbctl set "sock:$pid:$fd" "$RATE" 2>&1) || rc=$?
assert_true "sock:$pid:$fd of uid $USER_ID resolves ($out)" test "$rc" = 0
rc=0
nb_wait_until $((PID_SECS + 10)) eval '[[ $(sd_prop nbtest-pid.service ActiveState) != active ]]' ||
        nb_record_failure "nbtest-pid.service still running $((PID_SECS + 10)) s after the set"
if err=$(jq -r '.error // empty' "$SD_OUTDIR/pid.json" 2>&1) && [[ -z $err ]]; then
        bps=$(receiver_intervals "$SD_OUTDIR/pid.json" |
                awk -v f="$PID_FROM" '$1 >= f - 0.01 && $2 - $1 >= 0.05 { s += $3 * ($2 - $1); t += $2 - $1 }
                                      END { if (t) printf "%.0f\n", s / t }')
        assert_within "${bps:-0}" "$expected" "$PID_TOL" "pid: rule on a running transfer of uid $USER_ID, from ${PID_FROM}s on, up v4"
else
        nb_record_failure "uid $USER_ID iperf3 failed: ${err:-no JSON}"
fi
sd_nbctl unset "sock:$pid:$fd" >/dev/null 2>&1 || :

# ---------------------------------------------------------------------------------------------
nb_say "--- 9. poweroff"

sd_poweroff || nb_record_failure "the container did not power off within $SD_STOP_TIMEOUT s"
sd_snapshot "$snap.poweroff"
assert_same_snapshot "$snap.before" "$snap.poweroff" "nothing left in ns a or the host after poweroff"

nb_finish
