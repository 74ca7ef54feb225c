#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every packet of a limited target is classified, whatever it carries: under root's
# `set user@1000 2mbit`, downloads to uid 1000 that the classifier once let through unlimited
# stay within the limit:
#   - UDP in fragments: 30000-byte datagrams over IPv4, 8000-byte over IPv6;
#   - TCP over IPv6 from a sender that puts a destination options header on every segment;
#   - ICMP and ICMPv6 echo replies of 8000 bytes (in fragments) to a ping socket of uid 1000;
# and one upload: 8000-byte echo requests from a ping socket of uid 1000 (IPv4).
# Each sender offers 30 Mbit/s (TCP: as much as it can). Judged twice: what uid 1000 received
# (payload) is below the limit + 10%, and the rule's class on the IFB passed the limit within
# 10% at the link layer, so the traffic went through the rule rather than around it.
# A datagram is lost when one of its fragments is, so at 15 times the limit next to nothing of the
# UDP and ICMP downloads is reassembled: runs of fragmented UDP (IPv4) and ICMPv6 that offer half
# the limit come first, and all of it (within 10%) must arrive, whole, through the IFB. Their
# datagrams are of 8000 bytes: one must fit the download leaf's queue at once (about 50 ms at the
# limit, 12.5 KB at 2mbit; see NOTES in netbump(7)).

source "$(dirname "$0")/lib.sh"

RATE=2mbit
USER_ID=1000
SECS=6          # each transfer, from its first byte
SKIP=2          # seconds not judged at its start (the queue filling, the first burst)
TOL=10
OFFER=30000000
PY=/usr/bin/python3
TRAFFIC=$NB_LIB_DIR/proto-traffic.py
PORT=5301

[[ -x $PY ]] || nb_skip "$PY is not installed"

nb_require_daemon
nb_setup
make_cgroup users >/dev/null
# ping sockets for every group, in the client's namespace only
nsenter --net="$NB_NETNS_A" sh -c 'echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range'

nb_start_netbumpd
nbctl_ok set "user@$USER_ID" "$RATE"
nb_wait_complete "user@$USER_ID"
IFB=$(nb_ifb_of "$NB_IF_A")
CLS=$(nbctl --json list | jq -r '.rules[0].class')
LIMIT=$(rate_to_bps "$RATE")
spid=

# serve ARGS...: the sender in ns b (root), in the background, once it listens; its PID in
# SERVER_PID
serve() {
        local log=$NB_TMP/serve-$PORT.log
        nsenter --net="$NB_NETNS_B" "$PY" "$TRAFFIC" serve "$@" >"$log" 2>&1 &
        SERVER_PID=$!
        nb_track_pid "$SERVER_PID"
        nb_wait_until 5 grep -q '^ready$' "$log" || nb_fail "the sender ($*) is not ready: $(cat "$log")"
}

# judge NAME OFFERED RECV-ARGS...: run the receiver as uid 1000 (the script on its stdin: the
# checkout need not be readable to that user) and sample the rule's IFB class meanwhile. OFFERED
# (bits/s) above the limit: what arrived is below the limit + 10% and the class passed the limit;
# below it: what arrived is OFFERED within 10%.
judge() {
        local name=$1 offered=$2 bps t0 samples=$NB_TMP/samples-$PORT series=$NB_TMP/series-$PORT rate
        shift 2
        tc_sampler_start spid "$samples" "$((SECS + 6))" "$IFB"
        t0=$(nb_now)
        bps=$(run_in_cgroup -u "$USER_ID" users timeout -k 2 $((SECS + 15)) "$PY" - recv "$@" <"$TRAFFIC") ||
                { tc_sampler_stop "$spid"; nb_record_failure "$name: the receiver of uid $USER_ID failed"; return; }
        tc_sampler_stop "$spid"
        nb_wait_pid "$SERVER_PID" 10 || kill "$SERVER_PID" 2>/dev/null || :
        if ((offered < LIMIT)); then
                assert_within "$bps" "$offered" "$TOL" "$name: received by uid $USER_ID (offered $(nb_mbit "$offered") Mbit/s)"
                PORT=$((PORT + 1))
                return
        fi
        tc_class_series "$samples" "$IFB" "$CLS" >"$series"
        assert_below "$bps" "$(awk -v l="$LIMIT" -v t="$TOL" 'BEGIN { printf "%.0f", l * (1 + t / 100) }')" \
                "$name: received by uid $USER_ID (offered $(nb_mbit "$offered") Mbit/s)"
        if rate=$(series_rate "$series" "$(nb_at "$t0" "$SKIP")" "$(nb_at "$t0" "$SECS")"); then
                assert_within "$rate" "$LIMIT" "$TOL" "$name: the rule's class $CLS on $IFB (link layer)"
        else
                nb_record_failure "$name: no samples of class $CLS on $IFB"
        fi
        PORT=$((PORT + 1))
}

# judge_up NAME SEND-ARGS...: the same for an upload, whose receiver is the server (serve'd
# already, it prints the bits/s once done): what it got is below the limit + 10%, and the rule's
# class on the interface passed the limit
judge_up() {
        local name=$1 bps t0 samples=$NB_TMP/samples-$PORT series=$NB_TMP/series-$PORT rate
        shift
        tc_sampler_start spid "$samples" "$((SECS + 6))" "$NB_IF_A"
        t0=$(nb_now)
        run_in_cgroup -u "$USER_ID" users timeout -k 2 $((SECS + 15)) "$PY" - send "$@" <"$TRAFFIC" ||
                nb_record_failure "$name: the sender of uid $USER_ID failed"
        tc_sampler_stop "$spid"
        nb_wait_pid "$SERVER_PID" 15 || kill "$SERVER_PID" 2>/dev/null || :
        bps=$(tail -n 1 "$NB_TMP/serve-$PORT.log")
        [[ $bps =~ ^[0-9]+$ ]] || { nb_record_failure "$name: the receiver failed: $(cat "$NB_TMP/serve-$PORT.log")"; return; }
        tc_class_series "$samples" "$NB_IF_A" "$CLS" >"$series"
        assert_below "$bps" "$(awk -v l="$LIMIT" -v t="$TOL" 'BEGIN { printf "%.0f", l * (1 + t / 100) }')" \
                "$name: received from uid $USER_ID (offered $(nb_mbit "$OFFER") Mbit/s)"
        if rate=$(series_rate "$series" "$(nb_at "$t0" "$SKIP")" "$(nb_at "$t0" "$SECS")"); then
                assert_within "$rate" "$LIMIT" "$TOL" "$name: the rule's class $CLS on $NB_IF_A (link layer)"
        else
                nb_record_failure "$name: no samples of class $CLS on $NB_IF_A"
        fi
        PORT=$((PORT + 1))
}

HALF=$((LIMIT / 2))

# Below the limit first: fragments the limit drops leave incomplete datagrams in the namespace's
# reassembly memory until they time out (30 s IPv4, 60 s IPv6), and while it is full, whole
# datagrams are lost too.
serve udp "$NB_B4" "$PORT" 8000 "$HALF" "$((SECS + 2))"
judge "UDP/IPv4, 8000-byte datagrams" "$HALF" udp "$NB_B4" "$PORT" "$SECS" "$SKIP"

serve icmp "$NB_B6" 8000 "$HALF" "$((SECS + 2))"
judge "ICMPv6 echo replies, 8000 bytes" "$HALF" icmp "$NB_B6" "$SECS" "$SKIP"

# --- fragmented UDP ----------------------------------------------------------------------------
serve udp "$NB_B4" "$PORT" 30000 "$OFFER" "$((SECS + 2))"
judge "UDP/IPv4, 30000-byte datagrams" "$OFFER" udp "$NB_B4" "$PORT" "$SECS" "$SKIP"

serve udp "$NB_B6" "$PORT" 8000 "$OFFER" "$((SECS + 2))"
judge "UDP/IPv6, 8000-byte datagrams" "$OFFER" udp "$NB_B6" "$PORT" "$SECS" "$SKIP"

# --- TCP behind a destination options header -----------------------------------------------------
serve tcp-dstopts "$NB_B6" "$PORT" "$((SECS + 2))"
judge "TCP/IPv6 with destination options" "$OFFER" tcp "$NB_B6" "$PORT" "$SECS" "$SKIP"

# --- ICMP echo replies to a ping socket ------------------------------------------------------------
serve icmp "$NB_B4" 8000 "$OFFER" "$((SECS + 2))"
judge "ICMP echo replies, 8000 bytes" "$OFFER" icmp "$NB_B4" "$SECS" "$SKIP"

serve icmp "$NB_B6" 8000 "$OFFER" "$((SECS + 2))"
judge "ICMPv6 echo replies, 8000 bytes" "$OFFER" icmp "$NB_B6" "$SECS" "$SKIP"

serve icmp-count "$NB_B4" "$SECS" "$SKIP"
judge_up "ICMP echo requests, 8000 bytes (upload)" icmp "$NB_B4" 8000 "$OFFER" "$((SECS + 1))"

nb_finish
