#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A rule gets leaf classes only once a rule is nested in it (netbumpd --no-small-first, as for
# every rule past the first 1000), and loses them with its last nested rule; each time it is made
# anew under a new class id, beside the old class, so that its running flows stay shaped. A 9 s
# transfer in cgroup /a (rule 8mbit); at ~3 s the rule /a/b is set (its first child), at ~6 s
# unset. Upload and download, separately, IPv4.
#   - the class: before the child /a's class has no class under it; with it /a has a new class
#     id with its bulk leaf under it and /a/b's class beside that; after, another new class id
#     (the first may come back: a class id is reused once free), no class under it, and no other
#     class of netbump on the device;
#   - every full second the receiver counted from the second on is within 10% of the 8 Mbit/s
#     goodput at most above it (never unshaped: the veth carries Gbit/s), and at least 60% of it
#     (a move loses the packets queued in the old class: TCP takes that back within the second).

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=9
NEST_AT=3
UNNEST_AT=6
TOL_HI=10
LOW_PCT=60

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup a >/dev/null
make_cgroup a/b >/dev/null
a="cgroup:$(cgroup_rel a)"
b="cgroup:$(cgroup_rel a/b)"
exp=$(expected_goodput "$RATE" 4)

nb_start_netbumpd --no-small-first
IFB=$(nb_ifb_of "$NB_IF_A")

# classes DEV: "CLASSID PARENT" of netbump's HTB classes on DEV
classes() {
        tc -n "$NB_NS_A" class show dev "$1" | awk '$2 == "htb" && $3 ~ /^6e62:/ {
                p = "root"; for (i = 4; i < NF; i++) if ($i == "parent") p = $(i + 1); print $3, p }'
}
class_of() { nbctl --json list | jq -r --arg t "$1" '.rules[] | select(.target == $t) | .class'; }

# check_classes WHEN DEV A_CLASS WANT_LEAF [B_CLASS]
check_classes() {
        local when=$1 dev=$2 cls=$3 leaf=$4 bcls=${5:-} m children
        m=$((16#${cls#*:}))
        children=$(classes "$dev" | awk -v c="$cls" '$2 == c { print $1 }' | sort | tr '\n' ' ')
        local want=''
        [[ $leaf == yes ]] && want+="$(printf '6e62:%x' $((m + 0x4000))) "
        [[ -n $bcls ]] && want+="$bcls "
        want=$(tr ' ' '\n' <<<"$want" | sed '/^$/d' | sort | tr '\n' ' ')
        assert_true "$when: class $cls of /a on $dev has under it: '${children}' (want '${want}')" \
                test "$children" == "$want"
}

for dir in up down; do
        nbctl_ok set "$a" "$RATE"
        dev=$NB_IF_A
        [[ $dir == down ]] && dev=$IFB
        c1=$(class_of "$a")
        check_classes "$dir before the child" "$dev" "$c1" no

        opts=(-g a -t "$SECS" -O 0 -i 1)
        [[ $dir == down ]] && opts+=(-R)
        json=$NB_TMP/leaves-$dir.json
        t0=$(nb_now)
        iperf_client_start pid "$json" "${opts[@]}" "$NB_B4" 5201
        nb_sleep_until "$t0" "$NEST_AT"
        nbctl_ok set "$b" 2mbit
        c2=$(class_of "$a")
        assert_true "$dir: /a made anew when /a/b came ($c1 -> $c2)" test "$c2" != "$c1"
        check_classes "$dir with the child" "$dev" "$c2" yes "$(class_of "$b")"
        nb_sleep_until "$t0" "$UNNEST_AT"
        nbctl_ok unset "$b"
        c3=$(class_of "$a")
        assert_true "$dir: /a made anew when /a/b went ($c2 -> $c3)" test "$c3" != "$c2"
        check_classes "$dir after the child" "$dev" "$c3" no
        left=$(classes "$dev" | awk '{ print $1 }' | tr '\n' ' ')
        assert_true "$dir: the classes on $dev are /a's alone, the old ones gone ('$left')" test "$left" == "$c3 "
        iperf_client_wait "$pid" || nb_fail "iperf3 client failed ($dir)"

        receiver_intervals "$json" >"$NB_TMP/intervals-$dir"
        awk '{ printf "    %5.2f-%5.2f s  %7.2f Mbit/s\n", $1, $2, $3 / 1e6 }' "$NB_TMP/intervals-$dir" >&3
        i=0
        while read -r s e bps; do
                awk -v s="$s" -v e="$e" 'BEGIN { exit !(e - s >= 0.5 && s >= 1) }' || continue
                i=$((i + 1))
                assert_below "$bps" "$(awk -v x="$exp" -v p="$TOL_HI" 'BEGIN { printf "%.0f", x * (100 + p) / 100 }')" \
                        "$dir interval $s-$e s, at most $TOL_HI% above the $RATE goodput"
                assert_above "$bps" "$(awk -v x="$exp" -v p="$LOW_PCT" 'BEGIN { printf "%.0f", x * p / 100 }')" \
                        "$dir interval $s-$e s, at least $LOW_PCT% of the $RATE goodput"
        done <"$NB_TMP/intervals-$dir"
        assert_true "$dir: at least 6 full intervals ($i)" test "$i" -ge 6
        nbctl_ok unset "$a"
done

nb_finish
