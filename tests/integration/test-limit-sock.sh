#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A socket rule limits exactly one socket:
#   - one iperf3 client, two streams (-P 2) in one process; ~2 s in, `netbumpctl set` limits one
#     data socket to 8mbit (upload: by inode, sock:INODE, found with `ss -e`; download: by
#     descriptor, sock:PID:FD). From 1 s after the set, that stream's receiver intervals average
#     within 10% of the 8 Mbit/s goodput and the other stream's exceed 100 Mbit/s. `list
#     sock:INODE` names the rule while it runs; the rule is gone once the client has closed the
#     socket. IPv4.
#   - a socket closed by a process that lives on: a client with two TCP connections, the rule on
#     one; it closes that one and stays: the rule is gone within 1 s, the process and its other
#     connection are still there.
#   - a UDP socket: iperf3 -u sending 20 Mbit/s of 1400-byte datagrams, the rule (sock:INODE)
#     set on its data socket ~1.5 s in: from 1 s after the set the receiver's intervals average
#     within 5% of 8 Mbit/s x 1400/1442 (payload per frame: +8 UDP, +20 IPv4, +14 Ethernet).
#     Upload and download.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=7
SET_AT=1.9              # seconds after the client started
TOL=10                  # percent
FREE_MIN=100000000      # bits/s the other stream must exceed

nb_require_daemon
command -v python3 >/dev/null 2>&1 || nb_skip "'python3' is not installed"
nb_setup
nb_start_iperf_servers 5201
make_cgroup c1 >/dev/null
expected=$(expected_goodput "$RATE" 4)

nb_start_netbumpd

# iperf_conns PID: "FD INODE" per established TCP connection of PID to port 5201, by fd
iperf_conns() {
        nsenter --net="$NB_NETNS_A" ss -Htnpe state established "dport = :5201" |
                awk -v pid="$1" '
                        match($0, "pid=" pid ",fd=[0-9]+") {
                                fd = substr($0, RSTART, RLENGTH); sub(/.*fd=/, "", fd)
                                if (match($0, / ino:[0-9]+/)) print fd, substr($0, RSTART + 5, RLENGTH - 5)
                        }' | sort -n
}

_three_conns() { (($(iperf_conns "$1" | wc -l) == 3)); }

no_sock_rule() { [[ $(nbctl --json list | jq '[.rules[] | select(.kind == "sock")] | length') == 0 ]]; }

# start_in_c1 WHAT SECS JSON IPERF3-ARGS...: the iperf3 client in cgroup c1 under timeout(1), in the
# background, collected by iperf_client_wait "$tpid" like iperf_client_start's; sets t0 (its
# start), tpid (the timeout) and ipid (iperf3 itself)
start_in_c1() {
        local what=$1 secs=$2 json=$3
        shift 3
        _nb_argv -g c1
        t0=$(nb_now)
        (exec timeout -k 5 $((secs + 20)) "${_NB_ARGV[@]}" "$@" >"$json" 2>"$json.err") &
        tpid=$!
        nb_track_pid "$tpid"
        NB_BG_JSON[$tpid]=$json
        ipid=$(nb_child_pid "$tpid" iperf3) || nb_fail "$what: no iperf3 process below timeout $tpid"
}

for dir in up down; do
        # as iperf_client_start does, with -P 2
        args=(iperf3 -c "$NB_B4" -p 5201 -t "$SECS" -O 0 -i 1 -P 2 -J --get-server-output --connect-timeout 3000)
        [[ $dir == down ]] && args+=(-R)
        json=$NB_TMP/sock-$dir.json
        start_in_c1 "$dir" "$SECS" "$json" "${args[@]}"
        # control connection + two streams; the control connection is made first: lowest fd
        nb_wait_until 5 _three_conns "$ipid" ||
                nb_fail "$dir: iperf3 $ipid does not have 3 connections: $(iperf_conns "$ipid" | paste -sd' ')"
        mapfile -t conns < <(iperf_conns "$ipid")
        read -r fd ino <<<"${conns[1]}"
        read -r other_fd _ <<<"${conns[2]}"
        nb_say "$dir: iperf3 $ipid: control fd ${conns[0]%% *}, data fds $fd (socket inode $ino) and $other_fd"
        if [[ $dir == up ]]; then target=sock:$ino; else target=sock:$ipid:$fd; fi

        sleep "$(awk -v t0="$t0" -v now="$(nb_now)" -v at="$SET_AT" \
                'BEGIN { d = t0 + at - now; if (d < 0) d = 0; printf "%.3f", d }')"
        ts1_before=$(nb_now)
        nbctl_ok set "$target" "$RATE"
        ts1=$(nb_now)
        applies=$(nbctl --json list "sock:$ino" | jq -r '.applies // ""')
        assert_true "$dir: list sock:$ino says it falls under sock:$ino (says '$applies')" test "$applies" = "sock:$ino"
        other_ino=${conns[2]#* }
        applies=$(nbctl --json list "sock:$other_ino" | jq -r '.applies // ""')
        assert_true "$dir: the other stream's socket falls under no rule (says '${applies:-none}')" test -z "$applies"
        iperf_client_wait "$tpid" || nb_fail "iperf3 client failed ($dir)"
        nb_say "$dir: set $target between $(awk -v a="$t0" -v b="$ts1_before" 'BEGIN { printf "%.3f", b - a }') s and $(awk -v a="$t0" -v b="$ts1" 'BEGIN { printf "%.3f", b - a }') s"

        # the streams as the receiver numbered them (its own socket fds): the client's for a
        # download; for an upload the server's, matched by the client's local port
        jq -e --argjson fd "$fd" '[.start.connected[].socket] | index($fd) != null' "$json" >/dev/null ||
                nb_fail "$dir: fd $fd is not one of iperf3's streams: $(jq -c '[.start.connected[].socket]' "$json")"
        if [[ $dir == up ]]; then
                rfd() {
                        jq -r --argjson fd "$1" '
                                (.start.connected[] | select(.socket == $fd) | .local_port) as $p |
                                .server_output_json.start.connected[] | select(.remote_port == $p) | .socket' "$json"
                }
                src=.server_output_json.intervals
        else
                rfd() { echo "$1"; }
                src=.intervals
        fi
        lim_rfd=$(rfd "$fd") oth_rfd=$(rfd "$other_fd")
        [[ -n $lim_rfd && -n $oth_rfd ]] || nb_fail "$dir: cannot match the streams in the receiver's JSON"
        c1=$(awk -v a="$t0" -v b="$ts1" 'BEGIN { printf "%.3f", b - a }')
        # "start end limited-bits/s other-bits/s" per full interval from 1 s after the set
        jq -r --argjson a "$lim_rfd" --argjson b "$oth_rfd" "$src"'[] |
                [.sum.start, .sum.end,
                 (.streams[] | select(.socket == $a) | .bits_per_second),
                 (.streams[] | select(.socket == $b) | .bits_per_second)] | @tsv' "$json" |
                awk -v c1="$c1" '$2 - $1 >= 0.5 && $1 >= c1 + 1' >"$NB_TMP/streams-$dir"
        awk '{ printf "    %5.2f-%5.2f s  limited %7.2f Mbit/s  other %9.2f Mbit/s\n", $1, $2, $3 / 1e6, $4 / 1e6 }' \
                "$NB_TMP/streams-$dir" >&3
        [[ -s $NB_TMP/streams-$dir ]] || nb_fail "$dir: no full interval from 1 s after the set"
        n=$(wc -l <"$NB_TMP/streams-$dir")
        assert_within "$(awk '{ s += $3 } END { printf "%.0f", s / NR }' "$NB_TMP/streams-$dir")" "$expected" "$TOL" \
                "$dir: stream of $target, mean of $n intervals ($RATE)"
        assert_above "$(awk '{ s += $4 } END { printf "%.0f", s / NR }' "$NB_TMP/streams-$dir")" "$FREE_MIN" \
                "$dir: the other stream of the same process, mean of $n intervals"

        if nb_wait_until 5 no_sock_rule; then
                nb_say "$dir: the socket rule ended when the client closed the socket: ok"
        else
                nb_record_failure "$dir: socket rule still listed 5 s after the client ended: $(nbctl --json list | jq -c '[.rules[].target]')"
        fi
done

# --- a socket closed while its process lives on ----------------------------------------------
SINK_PORT=5301
# a TCP sink in ns b: accepts any number of connections and reads them to the end
nsenter --net="$NB_NETNS_B" python3 -c '
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
def drain(c):
    while c.recv(65536):
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
' "$SINK_PORT" >"$NB_TMP/sink.log" 2>&1 &
nb_track_pid $!
_sink_listening() { [[ -n $(nsenter --net="$NB_NETNS_B" ss -Hltn "sport = :$SINK_PORT") ]]; }
nb_wait_until 5 _sink_listening || nb_fail "the TCP sink does not listen: $(cat "$NB_TMP/sink.log")"

# the client: two connections, says "ready PID FD1 FD2"; on "close1" closes the first and says
# "closed"; ends on "exit" or when its input ends (bounded by timeout(1) all the same)
mkfifo "$NB_TMP/client.in"
_nb_argv -g c1
(exec timeout -k 5 60 "${_NB_ARGV[@]}" python3 -c '
import os, socket, sys
a = socket.create_connection((sys.argv[1], int(sys.argv[2])))
b = socket.create_connection((sys.argv[1], int(sys.argv[2])))
a.sendall(b"x" * 100000)
b.sendall(b"y" * 100000)
print("ready", os.getpid(), a.fileno(), b.fileno(), flush=True)
for line in sys.stdin:
    if line.strip() == "close1":
        a.close()
        print("closed", flush=True)
    elif line.strip() == "exit":
        break
' "$NB_B4" "$SINK_PORT" <"$NB_TMP/client.in" >"$NB_TMP/client.out" 2>&1) &
cpid=$!
nb_track_pid "$cpid"
exec 5>"$NB_TMP/client.in"
_client_said() { grep -q "^$1" "$NB_TMP/client.out"; }
nb_wait_until 5 _client_said ready || nb_fail "the two-connection client did not start: $(cat "$NB_TMP/client.out")"
read -r _ ppid fd1 fd2 < <(grep '^ready' "$NB_TMP/client.out")
ino1=$(readlink "/proc/$ppid/fd/$fd1" | tr -dc 0-9)
ino2=$(readlink "/proc/$ppid/fd/$fd2" | tr -dc 0-9)
nb_say "close: client $ppid, connections on fd $fd1 (socket $ino1) and fd $fd2 (socket $ino2)"
nbctl_ok set "sock:$ppid:$fd1" "$RATE"
applies=$(nbctl --json list "sock:$ino1" | jq -r '.applies // ""')
assert_true "close: sock:$ino1 falls under its rule (says '$applies')" test "$applies" = "sock:$ino1"
echo close1 >&5
_client_said closed || nb_wait_until 5 _client_said closed || nb_fail "the client did not close its first connection"
t_closed=$(nb_now)
if nb_wait_until 3 no_sock_rule; then
        took=$(nb_rel "$t_closed" "$(nb_now)")
        assert_true "close: the rule ended $took s after the socket closed (within 1 s)" \
                awk -v t="$took" 'BEGIN { exit !(t <= 1.0) }'
else
        nb_record_failure "close: socket rule still listed 3 s after the socket closed: $(nbctl --json list | jq -c '[.rules[].target]')"
fi
assert_true "close: the client ($ppid) still runs" nb_alive "$ppid"
assert_true "close: its other connection (socket $ino2) is still open" \
        test "$(readlink "/proc/$ppid/fd/$fd2")" = "socket:[$ino2]"
echo exit >&5
exec 5>&-
wait "$cpid" 2>/dev/null || :

# --- a UDP socket ------------------------------------------------------------------------------
UDP_LEN=1400
UDP_SECS=6
UDP_SET_AT=1.5
udp_expected=$(awk -v b="$(rate_to_bps "$RATE")" -v l="$UDP_LEN" 'BEGIN { printf "%.0f", b * l / (l + 42) }')

# udp_socket PID: "FD INODE" of PID's UDP socket connected to port 5201
udp_socket() {
        nsenter --net="$NB_NETNS_A" ss -Hunpe "dport = :5201" |
                awk -v pid="$1" '
                        match($0, "pid=" pid ",fd=[0-9]+") {
                                fd = substr($0, RSTART, RLENGTH); sub(/.*fd=/, "", fd)
                                if (match($0, / ino:[0-9]+/)) { print fd, substr($0, RSTART + 5, RLENGTH - 5); exit }
                        }'
}
_has_udp() { [[ -n $(udp_socket "$1") ]]; }

for dir in up down; do
        args=(iperf3 -c "$NB_B4" -p 5201 -u -b 20M -l "$UDP_LEN" -t "$UDP_SECS" -O 0 -i 1 -J --get-server-output
                --connect-timeout 3000)
        [[ $dir == down ]] && args+=(-R)
        json=$NB_TMP/udp-$dir.json
        start_in_c1 "udp $dir" "$UDP_SECS" "$json" "${args[@]}"
        nb_wait_until 5 _has_udp "$ipid" || nb_fail "udp $dir: iperf3 $ipid has no UDP socket to port 5201"
        read -r ufd uino <<<"$(udp_socket "$ipid")"
        nb_sleep_until "$t0" "$UDP_SET_AT"
        nbctl_ok set "sock:$uino" "$RATE"
        ts1=$(nb_now)
        applies=$(nbctl --json list "sock:$uino" | jq -r '.applies // ""')
        assert_true "udp $dir: the UDP socket (fd $ufd, inode $uino) falls under sock:$uino (says '$applies')" \
                test "$applies" = "sock:$uino"
        iperf_client_wait "$tpid" || nb_fail "udp $dir: iperf3 client failed"
        c1=$(nb_rel "$t0" "$ts1")
        receiver_intervals "$json" >"$NB_TMP/udp-intervals-$dir"
        awk -v c1="$c1" '{ printf "    %5.2f-%5.2f s  %8.2f Mbit/s%s\n", $1, $2, $3 / 1e6,
                ($2 - $1 >= 0.5 && $1 >= c1 + 1) ? "  limited" : "" }' "$NB_TMP/udp-intervals-$dir" >&3
        lim=$(awk -v c1="$c1" '$2 - $1 >= 0.5 && $1 >= c1 + 1 { print $3 }' "$NB_TMP/udp-intervals-$dir")
        [[ -n $lim ]] || nb_fail "udp $dir: no full interval from 1 s after the set"
        assert_within "$(awk '{ s += $1; n++ } END { printf "%.0f", s / n }' <<<"$lim")" "$udp_expected" 5 \
                "udp $dir: sock:$uino, mean of $(wc -l <<<"$lim") intervals ($RATE, ${UDP_LEN}-byte datagrams)"
        if nb_wait_until 5 no_sock_rule; then
                nb_say "udp $dir: the rule ended with the socket: ok"
        else
                nb_record_failure "udp $dir: socket rule still listed 5 s after the client ended: $(nbctl --json list | jq -c '[.rules[].target]')"
        fi
done

nb_finish
