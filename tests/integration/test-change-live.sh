#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Changing a running limit takes effect on open connections: an 8 s transfer starts at 8mbit; at
# ~2.5 s `netbumpctl set` raises the same target to 24mbit. Per-second receiver intervals:
#   - before the change (the first one skipped): each within 5% of the 8 Mbit/s goodput;
#   - from 1 s after the change on: on average within 5% of the 24 Mbit/s goodput, none below 85%.
# Upload and download, separately, IPv4.

source "$(dirname "$0")/lib.sh"

RATE1=8mbit
RATE2=24mbit
SECS=8
CHANGE_AT=2.5           # seconds after the client started
TOL=5
MIN_PCT=85

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup limited >/dev/null
target="cgroup:$(cgroup_rel limited)"
exp1=$(expected_goodput "$RATE1" 4)
exp2=$(expected_goodput "$RATE2" 4)

nb_start_netbumpd

for dir in up down; do
        nbctl_ok set "$target" "$RATE1"
        opts=(-g limited -t "$SECS" -O 0 -i 1)
        [[ $dir == down ]] && opts+=(-R)
        json=$NB_TMP/change-$dir.json
        t0=$(nb_now)
        iperf_client_start pid "$json" "${opts[@]}" "$NB_B4" 5201
        sleep "$(awk -v t0="$t0" -v now="$(nb_now)" -v at="$CHANGE_AT" \
                'BEGIN { d = t0 + at - now; if (d < 0) d = 0; printf "%.3f", d }')"
        t_before=$(nb_now)
        nbctl_ok set "$target" "$RATE2"
        t_after=$(nb_now)
        iperf_client_wait "$pid" || nb_fail "iperf3 client failed ($dir)"

        # change window relative to the client's start (the test starts a few ms later, which
        # only makes the window conservative)
        c0=$(awk -v a="$t0" -v b="$t_before" 'BEGIN { printf "%.3f", b - a }')
        c1=$(awk -v a="$t0" -v b="$t_after" 'BEGIN { printf "%.3f", b - a }')
        nb_say "$dir: limit changed to $RATE2 between ${c0} s and ${c1} s"
        receiver_intervals "$json" >"$NB_TMP/intervals-$dir"
        awk -v c0="$c0" -v c1="$c1" '{
                tag = "     "
                if ($2 - $1 < 0.5) tag = "(partial, ignored)"
                else if ($1 >= 1 && $2 <= c0) tag = "before"
                else if ($1 >= c1 + 1) tag = "after "
                printf "    %5.2f-%5.2f s  %7.2f Mbit/s  %s\n", $1, $2, $3 / 1e6, tag
        }' "$NB_TMP/intervals-$dir" >&3

        # full intervals only (iperf3 may end with a sliver)
        before=$(awk -v c0="$c0" '$2 - $1 >= 0.5 && $1 >= 1 && $2 <= c0 { print $3 }' "$NB_TMP/intervals-$dir")
        after=$(awk -v c1="$c1" '$2 - $1 >= 0.5 && $1 >= c1 + 1 { print $3 }' "$NB_TMP/intervals-$dir")
        [[ -n $before ]] || nb_fail "$dir: no interval before the change"
        [[ -n $after ]] || nb_fail "$dir: no interval from 1 s after the change"
        i=0
        for bps in $before; do
                i=$((i + 1))
                assert_within "$bps" "$exp1" "$TOL" "$dir before change, interval $i ($RATE1)"
        done
        mean=$(awk '{ s += $1; n++ } END { printf "%.0f", s / n }' <<<"$after")
        low=$(awk '{ if (min == "" || $1 < min) min = $1 } END { printf "%.0f", min }' <<<"$after")
        assert_within "$mean" "$exp2" "$TOL" "$dir after change, mean of $(wc -l <<<"$after") intervals ($RATE2)"
        assert_above "$low" "$(awk -v e="$exp2" -v p="$MIN_PCT" 'BEGIN { printf "%.0f", e * p / 100 }')" \
                "$dir after change, lowest interval (>= $MIN_PCT% of $RATE2 goodput)"
done

nb_finish
