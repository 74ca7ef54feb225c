#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# "lan" follows the interfaces' addresses while rules use it: with `set user@1000 8mbit --remote
# lan` and `deny user@1001 --remote lan` in force, an address on a new subnet (198.19.N.1/24) put
# on netbumpd's interface makes the server address 198.19.N.2 (reached before by a host route)
# "lan" within 1 s: uid 1001's connect to it fails with EPERM, uid 1000's traffic to it is held at
# 8mbit (within 5% up, 12% down). Deleting the address makes it "internet" again within 1 s: the
# connect goes through and the upload is unlimited. IPv4 only: the only IPv6 test range, fd18::/64,
# is a ULA and so always "lan".

source "$(dirname "$0")/lib.sh"

RATE=8mbit
USER_ID=1000
OTHER_ID=1001
PORT=5301
SECS=4
TOL=5
TOL_DOWN=12
FREE_MIN=500000000

nb_require_daemon
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
TRAFFIC=$NB_LIB_DIR/deny-traffic.py
nb_setup
chmod 0755 "$NB_TMP"
# The server's address on a subnet ns a has no address in (yet): reached by a host route.
N_A=198.19.$NB_NET.1
N_B=198.19.$NB_NET.2
ip -n "$NB_NS_B" addr add "$N_B/24" dev "$NB_IF_B"
ip -n "$NB_NS_A" route add "$N_B/32" dev "$NB_IF_A"
nb_start_iperf_servers 5201
nsenter --net="$NB_NETNS_B" "$PY" "$TRAFFIC" sink "$PORT" >"$NB_TMP/sink.log" 2>&1 &
nb_track_pid $!
_sink_ready() { grep -q ready "$NB_TMP/sink.log"; }
nb_wait_until 5 _sink_ready || nb_fail "sink did not start: $(cat "$NB_TMP/sink.log")"
make_cgroup users >/dev/null
nb_start_netbumpd

nbctl_ok set "user@$USER_ID" "$RATE" --remote lan
nbctl_ok deny "user@$OTHER_ID" --remote lan
nb_wait_complete "scoped rule"

try() { run_in_cgroup -u "$1" users "$PY" "$TRAFFIC" connect "$N_B" "$PORT"; }

# covered_within WANT LIMIT T0: polls uid 1001's connect until its result starts with WANT
# ("err EPERM" or "ok"); fails unless that happens within LIMIT seconds of T0
covered_within() {
        local want=$1 limit=$2 t0=$3 out dt
        for _ in $(seq 1 40); do
                out=$(try "$OTHER_ID")
                dt=$(nb_rel "$t0" "$(nb_now)")
                [[ $out == "$want"* ]] && break
                awk -v d="$dt" 'BEGIN { exit !(d > 3) }' && break
        done
        if [[ $out == "$want"* ]] && awk -v d="$dt" -v l="$limit" 'BEGIN { exit !(d < l) }'; then
                nb_say "uid $OTHER_ID connect $N_B: '$out' ${dt} s after the change: ok"
        else
                nb_record_failure "uid $OTHER_ID connect $N_B: expected '$want' within $limit s, got '$out' after ${dt} s"
        fi
}

unlimited_up() {
        local bps
        bps=$(measure_goodput -g users -u "$USER_ID" -t "$SECS" "$N_B" 5201) ||
                nb_fail "iperf3 client of uid $USER_ID to $N_B failed"
        assert_above "$bps" "$FREE_MIN" "user@$USER_ID up to $N_B ($1, not lan: unlimited)"
}

# --- before: 198.19.N.2 is no subnet of ns a, so not "lan" ----------------------------------------
out=$(try "$OTHER_ID")
assert_true "uid $OTHER_ID reaches $N_B before it is lan ($out)" test "${out%% *}" = ok
unlimited_up "before"

# --- the address comes: "lan" covers the subnet ---------------------------------------------------
t0=$(nb_now)
ip -n "$NB_NS_A" addr add "$N_A/24" dev "$NB_IF_A"
covered_within "err EPERM" 1.0 "$t0"
expected=$(expected_goodput "$RATE" 4)
bps=$(measure_goodput -g users -u "$USER_ID" -t "$SECS" "$N_B" 5201) || nb_fail "iperf3 to $N_B failed"
assert_within "$bps" "$expected" "$TOL" "user@$USER_ID up to $N_B (lan now)"
bps=$(measure_goodput -g users -u "$USER_ID" -t "$SECS" -R "$N_B" 5201) || nb_fail "iperf3 -R to $N_B failed"
assert_within "$bps" "$expected" "$TOL_DOWN" "user@$USER_ID down from $N_B (lan now)"
got=$(nbctl --json list | jq '[.access[] | select(.target == "user@'"$OTHER_ID"'") | .denied_packets] | .[0]')
assert_true "the deny counted its refusals (denied $got)" test "$got" -ge 1

# --- the address goes: not "lan" any more ---------------------------------------------------------
t0=$(nb_now)
ip -n "$NB_NS_A" addr del "$N_A/24" dev "$NB_IF_A"
covered_within "ok" 1.0 "$t0"
unlimited_up "after the address went"

nb_finish
