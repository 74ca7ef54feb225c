#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# machine:NAME with a real systemd-machined (this host's systemd booted in a container on ns a:
# systemd-lib.sh; netbumpd there by socket activation, as test-systemd.sh has it):
#   1. machine:nosuch: refused, saying machined does not know it (and pointing at machinectl).
#   2. a machine registered through machined's D-Bus API (RegisterMachine, leader: the main process
#      of nbm-one.service): `set machine:NAME 8mbit` limits the unit's cgroup (upload within 5%);
#      list shows the name, --json its unit and cgroup.
#   3. the machine goes (its unit stops) and comes back registered from another unit
#      (nbm-two.service): the rule follows the name there, without a new set (within 5%), and
#      says it is waiting while the machine is gone.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/systemd-lib.sh"

RATE=8mbit
SECS=4
TOL=5
MACHINE=nbm-$NB_ID

nb_require_daemon
sd_require
IPERF=$(command -v iperf3)
[[ $(realpath "$IPERF") == /usr/* ]] || nb_skip "iperf3 ($IPERF) is outside /usr: the container cannot run it"
[[ -x /usr/lib/systemd/systemd-machined ]] || nb_skip "systemd-machined is not installed"
expected=$(expected_goodput "$RATE" 4)

sd_setup
nb_start_iperf_servers 5201
for u in nbm-one nbm-two; do
        sd_unit_file "$u.service" <<EOF
[Unit]
Description=netbump test: a machine's payload
[Service]
ExecStart=/bin/sleep 600
EOF
done
sd_enable netbumpd.socket
sd_boot
sd_systemctl start systemd-machined.service || nb_fail "systemd-machined did not start in the container"

# register UNIT: RegisterMachine(name, id, service, class, leader, root) for UNIT's main process
register() {
        local pid
        sd_systemctl start "$1" || nb_fail "systemctl start $1 failed"
        pid=$(sd_prop "$1" MainPID)
        timeout 15 nsenter -t "$SD_PID" -a busctl call org.freedesktop.machine1 /org/freedesktop/machine1 \
                org.freedesktop.machine1.Manager RegisterMachine sayssus "$MACHINE" 0 netbump-test container \
                "$pid" / >/dev/null || nb_fail "RegisterMachine $MACHINE (leader $pid of $1) failed"
        nb_say "machine $MACHINE registered, leader $pid of $1"
}

# upload_in UNIT: an iperf3 upload from UNIT's cgroup; prints the receiver's bits/s
upload_in() {
        local cg json=$NB_TMP/upload-$1-$((++NB_CLIENT_SEQ)).json
        cg=$(sd_prop "$1" ControlGroup)
        # shellcheck disable=SC2016
        timeout -k 5 $((SECS + 20)) nsenter -t "$SD_PID" -a sh -c 'echo $$ > "/sys/fs/cgroup$0/cgroup.procs" && exec "$@"' \
                "$cg" "$IPERF" -c "$NB_B4" -p 5201 -t "$SECS" -O 1 -J --get-server-output \
                --connect-timeout 3000 >"$json" 2>"$json.err" || { cat "$json.err" >&3; return 1; }
        goodput_from_json "$json"
}

# --- 1 ---------------------------------------------------------------------------------------
rc=0
out=$(sd_nbctl set machine:nosuch "$RATE" 2>&1) || rc=$?
assert_true "set machine:nosuch is refused, machined not knowing it (exit $rc: $out)" \
        eval '((rc != 0)) && [[ $out == *"no machine of that name is registered with systemd-machined"* ]]'

# --- 2 ---------------------------------------------------------------------------------------
register nbm-one.service
out=$(sd_nbctl set "machine:$MACHINE" "$RATE" 2>&1) || nb_fail "set machine:$MACHINE: $out"
nb_say "netbumpctl set machine:$MACHINE $RATE: $out"
m=$(sd_nbctl --json list | jq -c --arg t "machine:$MACHINE" '.rules[] | select(.target == $t) | .machine')
where=$(jq -r '"\(.unit) \(.cgroup)"' <<<"$m")
assert_true "--json list: the rule is on the machine's unit nbm-one.service and its cgroup ($m)" \
        test "$where" = "nbm-one.service /system.slice/nbm-one.service"
list=$(sd_nbctl list)
assert_true "list shows the machine by name" eval 'grep -qE "^machine:$MACHINE +up +$RATE" <<<"$list"'
bps=$(upload_in nbm-one.service) || nb_fail "iperf3 in nbm-one.service failed"
assert_within "$bps" "$expected" "$TOL" "machine:$MACHINE (nbm-one.service) upload"

# --- 3 ---------------------------------------------------------------------------------------
sd_systemctl stop nbm-one.service
_gone() { ! timeout 10 nsenter -t "$SD_PID" -a machinectl status "$MACHINE" >/dev/null 2>&1; }
nb_wait_until 10 _gone || nb_record_failure "machine $MACHINE still registered after its unit stopped"
_waiting() {
        sd_nbctl --json list | jq -e --arg t "machine:$MACHINE" '.rules[] | select(.target == $t) | .waiting != null' >/dev/null
}
assert_true "while the machine is gone its rule stays, saying it waits" nb_wait_until 5 _waiting
register nbm-two.service
_followed() {
        sd_nbctl --json list | jq -e --arg t "machine:$MACHINE" \
                '.rules[] | select(.target == $t) | .machine.cgroup == "/system.slice/nbm-two.service"' >/dev/null
}
assert_true "the rule follows the name to nbm-two.service" nb_wait_until 5 _followed
bps=$(upload_in nbm-two.service) || nb_fail "iperf3 in nbm-two.service failed"
assert_within "$bps" "$expected" "$TOL" "machine:$MACHINE (nbm-two.service, registered again) upload"

sd_poweroff || nb_record_failure "the container did not power off within $SD_STOP_TIMEOUT s"
nb_finish
