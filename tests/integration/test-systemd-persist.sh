#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Persistent rules from boot, under a real systemd (systemd-lib.sh), with the units as `meson
# install` installs them:
#   1. netbumpd.service enabled (as `systemctl enable netbumpd` does) and a rules file
#      /etc/netbump/rules.d/10-boot.rules limiting unit:nbt-transfer.service to 8mbit; that
#      unit, enabled too and ordered after netbumpd, runs an upload then a download as the
#      container boots. With no command run, both are limited (within 5% up, 10% down) and list
#      names the rule's file and line.
#   2. through the unit's sandbox (ProtectSystem=strict): `netbumpctl set --persistent` writes
#      50-netbumpctl.rules (mode 0644), and `systemctl reload netbumpd` applies an edited file;
#      a reload refused for a bad line fails `systemctl reload`, the rules in force as they were.
#   3. poweroff: netbumpd stops cleanly on the way.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/systemd-lib.sh"

RATE=8mbit
SECS=4
OMIT=2
TOL=5
TOL_DOWN=10
UNIT=nbt-transfer.service

nb_require_daemon
sd_require
IPERF=$(command -v iperf3)
[[ $(realpath "$IPERF") == /usr/* ]] || nb_skip "iperf3 ($IPERF) is outside /usr: the container cannot run it"
expected=$(expected_goodput "$RATE" 4)

sd_setup
nb_start_iperf_servers 5201
# /etc/netbump of the container: written here, read (and written by netbumpd) there
ETC=$NB_TMP/etc-netbump
mkdir -p "$ETC/rules.d"
SD_NSPAWN_ARGS+=("--bind=$ETC:/etc/netbump")
cat >"$ETC/rules.d/10-boot.rules" <<EOF
# the transfer unit, from boot on
unit:$UNIT $RATE
EOF

sd_enable netbumpd.socket
sd_enable netbumpd.service
sd_unit_file "$UNIT" <<EOF
[Unit]
Description=netbump test: a transfer at boot, limited by a rules file
After=netbumpd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$IPERF -c $NB_B4 -p 5201 -t $SECS -O $OMIT -J --get-server-output --connect-timeout 3000 --logfile $SD_OUT/up.json
ExecStart=$IPERF -c $NB_B4 -p 5201 -t $SECS -O $OMIT -J --get-server-output --connect-timeout 3000 --logfile $SD_OUT/down.json -R
TimeoutStartSec=60
[Install]
WantedBy=multi-user.target
EOF
sd_enable "$UNIT"

nb_say "--- 1. boot: netbumpd enabled, a rules file, a transfer unit; no command run"
sd_boot
_transfer_done() {
        [[ $(sd_prop "$UNIT" ActiveState 2>/dev/null) == active || $(sd_prop "$UNIT" ActiveState 2>/dev/null) == failed ]]
}
nb_wait_until 45 _transfer_done || nb_record_failure "$UNIT did not finish within 45 s of the boot"
assert_true "netbumpd.service started at boot (active)" test "$(sd_prop netbumpd.service ActiveState)" = active
for dir in up down; do
        f=$SD_OUTDIR/$dir.json
        err=$(jq -r '.error // empty' "$f" 2>/dev/null) || err="no JSON output"
        if [[ -n $err ]]; then
                nb_record_failure "$dir: iperf3 failed: $err"
                sd_journal "$UNIT"
                continue
        fi
        bps=$(goodput_from_json "$f")
        tol=$TOL
        [[ $dir == down ]] && tol=$TOL_DOWN
        failed=$NB_FAILED
        assert_within "$bps" "$expected" "$tol" "$UNIT at boot, $dir (unit:$UNIT $RATE in 10-boot.rules)"
        if ((NB_FAILED > failed)); then
                receiver_intervals "$f" | sed 's/^/        /' >&3 || :
                sd_journal netbumpd.service
        fi
done
src=$(sd_nbctl --json list | jq -r --arg t "unit:$UNIT" '.rules[] | select(.target == $t) | .source // ""')
assert_true "list names the rule's file and line (got '$src')" test "$src" = /etc/netbump/rules.d/10-boot.rules:2

nb_say "--- 2. set --persistent and systemctl reload through the unit's sandbox"
out=$(sd_nbctl set --persistent user@1000 5mbit 2>&1) || nb_record_failure "set --persistent failed: $out"
assert_true "50-netbumpctl.rules written with the line" grep -qxF "user@1000 5mbit" "$ETC/rules.d/50-netbumpctl.rules"
assert_true "50-netbumpctl.rules is 0644 (UMask=0077 notwithstanding)" \
        test "$(stat -c %a "$ETC/rules.d/50-netbumpctl.rules")" = 644
sed -i "s/^unit:$UNIT $RATE/unit:$UNIT 6mbit/" "$ETC/rules.d/10-boot.rules"
out=$(sd_systemctl reload netbumpd.service 2>&1) || nb_record_failure "systemctl reload failed: $out"
down=$(sd_nbctl --json list | jq -r --arg t "unit:$UNIT" '.rules[] | select(.target == $t) | .down')
assert_true "systemctl reload applied the edited line (down $down)" test "$down" = 6000000
echo "user@1001 5mbitt" >>"$ETC/rules.d/10-boot.rules"
rc=0
out=$(sd_systemctl reload netbumpd.service 2>&1) || rc=$?
assert_true "systemctl reload with a bad line fails (exit $rc)" test "$rc" != 0
assert_true "... and the journal names 10-boot.rules:3" \
        eval 'sd_run timeout 10 journalctl --no-pager -q -u netbumpd.service | grep -q "10-boot.rules:3: invalid rate"'
n=$(sd_nbctl --json list | jq '[.rules[] | select(.persistent)] | length')
assert_true "both persistent rules still in force ($n)" test "$n" = 2
assert_true "netbumpd still active" test "$(sd_prop netbumpd.service ActiveState)" = active

nb_say "--- 3. poweroff"
sd_poweroff || nb_record_failure "the container did not end by itself"
nb_finish
