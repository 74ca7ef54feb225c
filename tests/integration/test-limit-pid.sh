#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `netbumpctl set pid:PID` limits a running process, its open connections and its children:
#   - running transfers: an iperf3 client (in a test cgroup) runs unlimited; ~1.9 s in,
#     `set pid:<iperf3> 8mbit`; later `unset`. Upload and download over IPv4 (13 s up, unset at
#     ~10.8 s; 15 s down, unset at ~12.8 s) and IPv6 (10 s up, 14 s down; no unset: the rule
#     ends with the process). Downloads run longer: their catch-up (below) took up to 6 s.
#     Checked:
#       * the limit holds within one second: the HTB class's own byte counters (the link layer,
#         sampled every ~100 ms) between 1 s and 2 s after the set request do not exceed the rate
#         by more than 5% (and the transfer still runs through the class: at least half the
#         rate); no drop burst is left then (the leaf drops at most 25% of the packets offered
#         in that second: the landing's losses are over, a sender that restarts from a time-out
#         may still overshoot the queue a little);
#       * the later seconds: what the receiving iperf3 got after the landing's catch-up until
#         the unset averages within 10% of the 8 Mbit/s goodput, over 4 s or more. For a
#         download the daemon lands the remote sender softly from its unlimited rate, which still
#         drops packets; data behind those holes waits in the receiver's out-of-order queue and
#         reaches iperf3 in one go when the resent packet comes through the class, so iperf3
#         sees bursts far above the rate (and a stall before each) for a while after the set
#         although the class holds the rate. The catch-up ends with the last 0.1 s interval
#         above twice the goodput (at least 1 s after the set); its time and the stall are
#         logged, and it must leave 4 s of the limited period to judge.
#       * before the set and from 1 s after the unset faster than 100 Mbit/s;
#       * while limited the process is in <root>/netbump/pid-PID and `list pid:PID` names the
#         rule; after `unset` it is back in its original cgroup; no rule is left.
#   - a child that already runs when the rule is set (download, IPv4): `set pid:<sh>` while the
#     shell's iperf3 child transfers; the child moves into the rule's cgroup, falls under the
#     rule and its open connection is limited as above.
#   - a child started after the rule (a `sh` is limited; it starts iperf3 1.5 s later), upload
#     and download: in the rule's cgroup, under the rule, limited within 10%; the rule ends
#     when the shell and its child have exited.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SET_AT=1.9              # seconds after the client started
TOL=10                  # percent, goodput
HOLD_PCT=5              # percent the class may exceed the rate in [set + 1 s, set + 2 s]
DROP_PCT=25             # percent of the packets the leaf may drop in [set + 1 s, set + 2 s]
FREE_MIN=100000000      # bits/s an unlimited transfer must exceed
EARLY=0.3               # seconds (see pid_pass)

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup c1 >/dev/null
orig_cg=$(cgroup_rel c1)
rate_bps=$(rate_to_bps "$RATE")

nb_start_netbumpd
IFB=$(nb_ifb_of "$NB_IF_A")

_in_cgroup() { [[ $(nb_proc_cgroup "$1") == "$2" ]]; }

# rule_applying TARGET: the rule `list TARGET` says the target falls under ("" for none)
rule_applying() { nbctl --json list "$1" | jq -r '.applies // ""'; }

no_rule() { [[ $(nbctl --json list | jq '.rules | length') == 0 ]]; }

# mean / secs: of lines "bits/s seconds": the time-weighted mean bits/s, the seconds covered
mean() { awk '{ s += $1 * $2; d += $2 } END { printf "%.0f", s / d }'; }
secs() { awk '{ d += $2 } END { printf "%.1f", d }'; }

# check_link_layer NAME DIR SAMPLES CLASS TS0: the class counters around the set request at TS0
# (the class came to be at TS0 with zero counters): print them per second, check the second
# [TS0 + 1, TS0 + 2]
check_link_layer() {
        local name=$1 dir=$2 samples=$3 cls=$4 ts0=$5 dev=$NB_IF_A series r d p land
        [[ $dir == down ]] && dev=$IFB
        series=$samples.series
        { echo "$ts0 0 0 0"; tc_class_series "$samples" "$dev" "$cls"; } >"$series"
        nb_say "$name: class $cls on $dev (link layer) per second from the set request:"
        series_table "$series" "$ts0" 1 5 >&3
        land=$(series_drops "$series" "$ts0" "$(nb_at "$ts0" 1)") || land='?'
        nb_say "$name: $land leaf drops in the first second (the landing)"
        if ! r=$(series_rate "$series" "$(nb_at "$ts0" 1)" "$(nb_at "$ts0" 2)"); then
                nb_record_failure "$name: no class samples around [set + 1 s, set + 2 s]"
                return 0
        fi
        assert_below "$r" "$(awk -v b="$rate_bps" -v p="$HOLD_PCT" 'BEGIN { printf "%.0f", b * (1 + p / 100) }')" \
                "$name: link layer in [set + 1 s, set + 2 s] holds the limit ($RATE + $HOLD_PCT%)"
        assert_above "$r" "$((rate_bps / 2))" "$name: link layer in [set + 1 s, set + 2 s] still carries the transfer"
        if d=$(series_drops "$series" "$(nb_at "$ts0" 1)" "$(nb_at "$ts0" 2)") &&
                p=$(series_packets "$series" "$(nb_at "$ts0" 1)" "$(nb_at "$ts0" 2)"); then
                assert_true "$name: leaf drops in [set + 1 s, set + 2 s]: $d of $((p + d)) packets (at most $DROP_PCT%)" \
                        test "$((d * 100))" -le "$(((p + d) * DROP_PCT))"
        else
                nb_record_failure "$name: no class samples to count drops in [set + 1 s, set + 2 s]"
        fi
}

# pid_pass NAME FAMILY DIR SECS UNSET_AT VIA: one running transfer limited by PID
#   VIA "self": iperf3 is the rule's process; "shell": a shell whose iperf3 child already runs.
#   UNSET_AT "": no unset, the rule ends with the process.
pid_pass() {
        local name=$1 fam=$2 dir=$3 secs=$4 unset_at=$5 via=$6
        local addr=$NB_B4 opts json t0 tpid ipid target want_cg cg applies cls spid samples expected
        local ts0 ts1 tu0='' tu1='' s0 s1 u0 u1 sreq catchup stall before limited after
        [[ $fam == 6 ]] && addr=$NB_B6
        expected=$(expected_goodput "$RATE" "$fam")
        opts=(-t "$secs" -O 0 -i 0.1 -p 5201 -J --get-server-output --connect-timeout 3000)
        [[ $dir == down ]] && opts+=(-R)
        json=$NB_TMP/pid-$name.json
        samples=$NB_TMP/samples-$name
        tc_sampler_start spid "$samples" "$((secs + 3))" "$([[ $dir == down ]] && echo "$IFB" || echo "$NB_IF_A")"
        _nb_argv -g c1
        t0=$(nb_now)
        if [[ $via == self ]]; then
                (exec timeout -k 5 $((secs + 20)) "${_NB_ARGV[@]}" iperf3 -c "$addr" "${opts[@]}" \
                        >"$json" 2>"$json.err") &
        else
                # "; exit $?": the shell must fork iperf3, not exec it (dash execs a last command)
                # shellcheck disable=SC2016
                (exec timeout -k 5 $((secs + 20)) "${_NB_ARGV[@]}" sh -c 'iperf3 "$@"; exit $?' sh \
                        -c "$addr" "${opts[@]}" >"$json" 2>"$json.err") &
        fi
        tpid=$!
        nb_track_pid "$tpid"
        NB_BG_JSON[$tpid]=$json
        if [[ $via == self ]]; then
                ipid=$(nb_child_pid "$tpid" iperf3) || nb_fail "$name: no iperf3 process below timeout $tpid"
                target=$ipid
        else
                target=$(nb_child_pid "$tpid" sh) || nb_fail "$name: no sh below timeout $tpid"
                ipid=$(nb_child_pid "$target" iperf3) || nb_fail "$name: sh $target did not start iperf3"
        fi
        nb_wait_until 5 _in_cgroup "$ipid" "$orig_cg" || nb_fail "$name: iperf3 $ipid never reached $orig_cg"
        want_cg=$NB_CGROOT_REL/netbump/pid-$target

        nb_sleep_until "$t0" "$SET_AT"
        ts0=$(nb_now)
        nbctl_ok set "pid:$target" "$RATE"
        ts1=$(nb_now)
        cls=$(nbctl --json list | jq -r --arg t "pid:$target" '.rules[] | select(.target == $t) | .class')
        cg=$(nb_proc_cgroup "$ipid")
        assert_true "$name: iperf3 ($ipid) is in the rule's cgroup while limited (is in $cg)" test "$cg" = "$want_cg"
        applies=$(rule_applying "pid:$ipid")
        assert_true "$name: list pid:$ipid says it falls under pid:$target (says '$applies')" \
                test "$applies" = "pid:$target"

        if [[ -n $unset_at ]]; then
                nb_sleep_until "$t0" "$unset_at"
                tu0=$(nb_now)
                nbctl_ok unset "pid:$target"
                tu1=$(nb_now)
                cg=$(nb_proc_cgroup "$ipid")
                assert_true "$name: iperf3 ($ipid) is back in $orig_cg after unset (is in $cg)" test "$cg" = "$orig_cg"
        fi
        iperf_client_wait "$tpid" || nb_fail "$name: iperf3 client failed"
        tc_sampler_stop "$spid"

        # times relative to the client's start; iperf3 counts from its test start, ~0.1 s later:
        # windows that end at the set or the unset end EARLY s before it
        s0=$(nb_rel "$t0" "$ts0") s1=$(nb_rel "$t0" "$ts1")
        if [[ -n $tu0 ]]; then
                u0=$(nb_rel "$t0" "$tu0") u1=$(nb_rel "$t0" "$tu1")
                nb_say "$name: set between $s0 s and $s1 s, unset between $u0 s and $u1 s"
        else
                u0=1e9 u1=1e9
                nb_say "$name: set between $s0 s and $s1 s, no unset"
        fi
        sreq=$s0
        s0=$(awk -v t="$s0" -v e="$EARLY" 'BEGIN { printf "%.3f", t - e }')
        u0=$(awk -v t="$u0" -v e="$EARLY" 'BEGIN { printf "%.3f", t - e }')
        check_link_layer "$name" "$dir" "$samples" "$cls" "$ts0"

        receiver_intervals "$json" >"$NB_TMP/intervals-$name"
        # the landing's catch-up: until the last 0.1 s interval above twice the goodput (bursts
        # of data that waited behind a hole), 1 s after the set at least. The receiver's last
        # interval of a transfer can be a stub of a few milliseconds holding the bytes that came
        # in as the sender closed; over so short a time any packet is a "burst": not counted.
        # Nor is a burst from 5 s after the set on: a landing's catch-up is over by then (1.0-1.1 s
        # here, 4.2 s the longest seen), while a receiver starved of CPU (a loaded machine) reads
        # in spurts: one 0.1 s interval of 23 Mbit/s at 8.8 s amid seconds of a steady 7.65.
        catchup=$(awk -v s1="$s1" -v u0="$u0" -v thr="$((expected * 2))" '
                BEGIN { t = s1 + 1 }
                $1 >= s1 && $2 <= u0 + 0.001 && $3 > thr && $2 > t && $2 - $1 >= 0.05 && $2 <= s1 + 5 { t = $2 }
                END { printf "%.3f", t }' "$NB_TMP/intervals-$name")
        stall=$(awk -v s1="$s1" -v c="$catchup" '$1 >= s1 && $2 <= c + 0.001 && $3 < 1e6 { d += $2 - $1 } END { printf "%.1f", d }' \
                "$NB_TMP/intervals-$name")
        # per second for the log (the intervals are 0.1 s for a download)
        nb_say "$name: receiver's goodput per second:"
        awk -v s0="$s0" -v c="$catchup" -v u0="$u0" -v u1="$u1" '
                { k = int($1 + 0.001); b[k] += $3 * ($2 - $1); d[k] += $2 - $1; if (k > n) n = k }
                END {
                        for (k = 0; k <= n; k++) {
                                tag = ""
                                if (k + 1 <= s0) tag = "before"
                                else if (k >= c - 0.001 && k + 1 <= u0) tag = "limited"
                                else if (k >= u1 + 1) tag = "after"
                                if (d[k] > 0) printf "    %2d-%2d s  %8.2f Mbit/s  %s\n", k, k + 1, b[k] / d[k] / 1e6, tag
                        }
                }' "$NB_TMP/intervals-$name" >&3
        nb_say "$name: the receiver caught up $(nb_rel "$sreq" "$catchup") s after the set request (got < 1 Mbit/s for $stall s before)"
        awk -v s1="$s1" -v u0="$u0" -v thr="$((expected * 2))" -v r="$sreq" '
                $1 >= s1 + 1 && $2 <= u0 + 0.001 && $3 > thr { printf " %.2f-%.2f s: %.1f Mbit/s;", $1 - r, $2 - r, $3 / 1e6 }
                END { print "" }' "$NB_TMP/intervals-$name" | sed "s/^/$name: 0.1 s intervals above twice the goodput, from set + 1 s (time from the set):/" >&3
        # "bits/s seconds" of the intervals inside each window
        before=$(awk -v s0="$s0" '$2 <= s0 { print $3, $2 - $1 }' "$NB_TMP/intervals-$name")
        limited=$(awk -v c="$catchup" -v u0="$u0" '$1 >= c - 0.001 && $2 <= u0 + 0.001 { print $3, $2 - $1 }' \
                "$NB_TMP/intervals-$name")
        [[ -n $before ]] || nb_fail "$name: no interval before the set"
        if ! awk -v d="$(secs <<<"$limited")" 'BEGIN { exit !(d >= 4) }'; then
                nb_record_failure "$name: only $(secs <<<"$limited") s of the limited period left after the catch-up (at least 4 s)"
                limited=
        fi
        assert_above "$(mean <<<"$before")" "$FREE_MIN" "$name before set, $(secs <<<"$before") s"
        if [[ -n $limited ]]; then
                assert_within "$(mean <<<"$limited")" "$expected" "$TOL" \
                        "$name limited by pid:, after the catch-up until the unset, $(secs <<<"$limited") s ($RATE)"
        fi
        if [[ -n $tu0 ]]; then
                after=$(awk -v u1="$u1" '$1 >= u1 + 1 { print $3, $2 - $1 }' "$NB_TMP/intervals-$name")
                [[ -n $after ]] || nb_fail "$name: no interval from 1 s after the unset"
                assert_above "$(mean <<<"$after")" "$FREE_MIN" "$name after unset, $(secs <<<"$after") s"
        fi
        if nb_wait_until 5 no_rule; then
                nb_say "$name: no rule left: ok"
        else
                nb_record_failure "$name: rules left: $(nbctl --json list | jq -c '[.rules[].target]')"
        fi
}

# --- running transfers, limited by PID ------------------------------------------------------
pid_pass up-v4 4 up 13 10.8 self
pid_pass down-v4 4 down 15 12.8 self
pid_pass up-v6 6 up 10 "" self
pid_pass down-v6 6 down 14 "" self
pid_pass child-running-down 4 down 14 "" shell

# --- a child born after the rule ------------------------------------------------------------
for dir in up down; do
        name=child-after-$dir
        json=$NB_TMP/$name.json
        args=(-c "$NB_B4" -p 5201 -t 4 -O 1 -J --get-server-output --connect-timeout 3000)
        [[ $dir == down ]] && args+=(-R)
        _nb_argv -g c1
        # shellcheck disable=SC2016
        (exec timeout -k 5 40 "${_NB_ARGV[@]}" sh -c 'sleep 1.5; iperf3 "$@"; exit $?' sh "${args[@]}" \
                >"$json" 2>"$json.err") &
        tpid=$!
        nb_track_pid "$tpid"
        NB_BG_JSON[$tpid]=$json
        shpid=$(nb_child_pid "$tpid" sh) || nb_fail "$name: no sh below timeout $tpid"
        nb_wait_until 5 _in_cgroup "$shpid" "$orig_cg" || nb_fail "$name: sh $shpid never reached $orig_cg"
        nbctl_ok set "pid:$shpid" "$RATE"
        ipid=$(nb_child_pid "$shpid" iperf3) || nb_fail "$name: sh $shpid did not start iperf3"
        cg=$(nb_proc_cgroup "$ipid")
        assert_true "$name: iperf3 ($ipid), started after the rule, is in pid:$shpid's cgroup (is in $cg)" \
                test "$cg" = "$NB_CGROOT_REL/netbump/pid-$shpid"
        applies=$(rule_applying "pid:$ipid")
        assert_true "$name: list pid:$ipid says it falls under pid:$shpid (says '$applies')" test "$applies" = "pid:$shpid"
        iperf_client_wait "$tpid" || nb_fail "$name: iperf3 client failed"
        assert_within "$(goodput_from_json "$json")" "$(expected_goodput "$RATE" 4)" "$TOL" \
                "$name: $dir of a child started after the rule"
        if nb_wait_until 5 no_rule; then
                nb_say "$name: the rule ended with the shell and its child: ok"
        else
                nb_record_failure "$name: rules left 5 s after the shell ended: $(nbctl --json list | jq -c '[.rules[].target]')"
        fi
done

nb_finish
