#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A socket rule limits exactly one socket: one iperf3 client, two streams (-P 2) in one process;
# ~2 s in, `netbumpctl set` limits one data socket to 8mbit (upload: by inode, sock:INODE, found
# with `ss -e`; download: by descriptor, sock:PID:FD). From 1 s after the set, that stream's
# receiver intervals average within 10% of the 8 Mbit/s goodput and the other stream's exceed
# 100 Mbit/s. `list sock:INODE` names the rule while it runs; the rule is gone once the client
# has closed the socket. IPv4.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=7
SET_AT=1.9              # seconds after the client started
TOL=10                  # percent
FREE_MIN=100000000      # bits/s the other stream must exceed

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup c1 >/dev/null
expected=$(expected_goodput "$RATE" 4)

nb_start_netbumpd

# child_pid PARENT NAME: the PID of PARENT's child once it runs NAME (5 s at most)
child_pid() {
        local parent=$1 name=$2 p i
        for ((i = 0; i < 100; i++)); do
                for p in $(pgrep -P "$parent"); do
                        [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$name" ]] && { echo "$p"; return 0; }
                done
                sleep 0.05
        done
        return 1
}

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

for dir in up down; do
        # as iperf_client_start does, with -P 2
        args=(iperf3 -c "$NB_B4" -p 5201 -t "$SECS" -O 0 -i 1 -P 2 -J --get-server-output --connect-timeout 3000)
        [[ $dir == down ]] && args+=(-R)
        json=$NB_TMP/sock-$dir.json
        _nb_argv -g c1
        t0=$(nb_now)
        (exec timeout -k 5 $((SECS + 20)) "${_NB_ARGV[@]}" "${args[@]}" >"$json" 2>"$json.err") &
        tpid=$!
        nb_track_pid "$tpid"
        NB_BG_JSON[$tpid]=$json
        ipid=$(child_pid "$tpid" iperf3) || nb_fail "$dir: no iperf3 process below timeout $tpid"
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

nb_finish
