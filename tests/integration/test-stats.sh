#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The statistics of `netbumpctl list` and `status`, against the kernel's, under real traffic: two
# cgroups limited to 8mbit both ways, one uploading, one downloading (iperf3), at the same time.
#   - five times a second apart, list --json is read between two reads of the rules' HTB classes
#     (tc -s class show: on veth-a for uploads, on its IFB for downloads): each rule's bytes,
#     packets and drops, both ways, lie between the two (the same counters, read over netlink),
#     and grow from one read to the next; drops and backlog are non-negative integers;
#   - the busy direction's current rate is within 10% of 8mbit on average (the classes count
#     link-layer bytes, as the limit does), 15% for single readings;
#   - status --json has the same rules with the same statistics, the interface with its IFB
#     (which exists), the leaf qdisc that is really under the classes, rule_count 2, and an
#     uptime that grows with the clock;
#   - the text of list and status shows the same, and status names a degraded interface's reason
#     when someone else's root qdisc replaces ours.

source "$(dirname "$0")/lib.sh"

LIMIT=8mbit
SECS=16
TOL=10
EACH=15

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201 5202
nb_start_netbumpd

tca() { tc -n "$NB_NS_A" "$@"; }
ipa() { ip -n "$NB_NS_A" "$@"; }
limit_bps=$(rate_to_bps "$LIMIT")

# --- before any rule -------------------------------------------------------------------------------
t_status0=$(nb_now)
st0=$(nbctl --json status) || nb_fail "status --json failed"
ifindex=$(ipa -j link show dev "$NB_IF_A" | jq -r '.[0].ifindex')
IFB=nbifb$ifindex
got=$(jq -c --arg n "$NB_IF_A" '[.interfaces[] | select(.name == $n) | {shaped, ifb, ifindex}]' <<<"$st0")
assert_true "status: $NB_IF_A shaped, downloads via $IFB ($got)" \
        test "$got" = "[{\"shaped\":true,\"ifb\":\"$IFB\",\"ifindex\":$ifindex}]"
assert_true "status: $IFB exists and is an IFB" \
        test "$(ipa -d -j link show dev "$IFB" | jq -r '.[0].linkinfo.info_kind')" = ifb
assert_true "status: rule_count 0, no rules ($(jq -c '{rule_count, rules}' <<<"$st0"))" \
        test "$(jq -c '{rule_count, rules}' <<<"$st0")" = '{"rule_count":0,"rules":[]}'
assert_true "status: names the leaf qdisc ($(jq -r .leaf_qdisc <<<"$st0"))" \
        test -n "$(jq -r '.leaf_qdisc // empty' <<<"$st0")"

# Two cgroups limited to 8mbit both ways, one uploading, one downloading: in one cgroup the
# download's ACKs would queue behind the upload in the same class and keep the download below its
# limit, which says nothing about the statistics.
declare -A TARGET CLASS
for cg in upc downc; do
        TARGET[$cg]=cgroup:$(cgroup_rel "$(make_cgroup "$cg")")
        nbctl_ok set "${TARGET[$cg]}" "$LIMIT"
        CLASS[$cg]=$(nbctl --json list | jq -r --arg t "${TARGET[$cg]}" '.rules[] | select(.target == $t) | .class')
        [[ ${CLASS[$cg]} == 6e62:* ]] || nb_fail "list has no class for ${TARGET[$cg]}: '${CLASS[$cg]}'"
        nb_info "${TARGET[$cg]}: class ${CLASS[$cg]} on $NB_IF_A (upload) and $IFB (download)"
done

# class_stats CG DIR: "bytes packets drops" of CG's rule in direction DIR (up: on veth-a, down: on
# its IFB), as tc -s prints them:
#   class htb 6e62:2 root rate 8Mbit ...
#    Sent 123 bytes 4 pkt (dropped 0, overlimits 0 requeues 0)
# Bytes and packets are the rule class's (6e62:M, which counts what both its leaves sent), drops
# those of its two leaf classes (6e62:M+0x4000, bulk, and 6e62:M+0x8000, small packets).
class_stats() {
        local dev=$NB_IF_A m=$((16#${CLASS[$1]#6e62:}))
        [[ $2 == down ]] && dev=$IFB
        tca -s class show dev "$dev" | awk -v c="${CLASS[$1]}" \
                -v b="$(printf '6e62:%x' $((m + 0x4000)))" -v s="$(printf '6e62:%x' $((m + 0x8000)))" '
                $1 == "class" { cur = $3 }
                $1 == "Sent" && cur == c { bytes = $2; pkts = $4; found = 1 }
                $1 == "Sent" && (cur == b || cur == s) { d = $7; sub(/,$/, "", d); drops += d; leaves++ }
                END { if (!found || leaves != 2) exit 1; print bytes, pkts, drops + 0 }'
}

# tc_all FILE-PREFIX SUFFIX: every class's counters into FILE-PREFIX-CG-DIR-SUFFIX
tc_all() {
        local cg dir
        for cg in upc downc; do
                for dir in up down; do
                        class_stats "$cg" "$dir" >"$1-$cg-$dir-$2" || nb_fail "no class ${CLASS[$cg]} ($dir)"
                done
        done
}

# --- traffic ------------------------------------------------------------------------------------------
measure_goodput_bg up_pid -g upc -t "$SECS" "$NB_B4" 5201
measure_goodput_bg down_pid -g downc -R -t "$SECS" "$NB_B4" 5202
sleep 4

# five times: tc, list --json, tc; then the same with status --json
for n in 1 2 3 4 5; do
        tc_all "$NB_TMP/tc-$n" a
        nbctl --json list >"$NB_TMP/list-$n.json" || nb_fail "list --json failed"
        tc_all "$NB_TMP/tc-$n" b
        sleep 1
done
tc_all "$NB_TMP/tc-s" a
t_status1=$(nb_now)
nbctl --json status >"$NB_TMP/status.json" || nb_fail "status --json failed"
tc_all "$NB_TMP/tc-s" b
nbctl list >"$NB_TMP/list.txt" || nb_fail "list failed"
nbctl status >"$NB_TMP/status.txt" || nb_fail "status failed"
sed 's/^/    | /' "$NB_TMP/status.txt" >&3

measure_goodput_wait "$up_pid" up_bps || nb_fail "the upload failed"
measure_goodput_wait "$down_pid" down_bps || nb_fail "the download failed"
nb_info "iperf3 goodput: upload $(nb_mbit "$up_bps") Mbit/s, download $(nb_mbit "$down_bps") Mbit/s"

# --- list --json against tc ---------------------------------------------------------------------------
# stat JSON CG DIR FIELD: CG's rule's DIR_stats.FIELD ("" when missing or not an integer >= 0)
stat() {
        jq -r --arg t "${TARGET[$2]}" --arg d "$3_stats" --arg f "$4" \
                '.rules[] | select(.target == $t) | .[$d][$f] | select(type == "number" and . >= 0 and floor == .)' "$1"
}

# between A X B: A <= X <= B (integers)
between() { [[ -n $2 ]] && (($1 <= $2 && $2 <= $3)); }

# check_sample JSON TC-PREFIX CG DIR WHAT: bytes, packets and drops of CG's rule in JSON lie between
# the two reads of the kernel's counters around it; drops and backlog are non-negative integers
check_sample() {
        local json=$1 pre=$2-$3-$4 cg=$3 dir=$4 what=$5 k field lo hi v ok=1 detail=''
        read -ra lo <"$pre-a"
        read -ra hi <"$pre-b"
        k=0
        for field in bytes packets drops; do
                v=$(stat "$json" "$cg" "$dir" "$field")
                detail+=" $field ${lo[k]} <= ${v:-?} <= ${hi[k]};"
                between "${lo[k]}" "$v" "${hi[k]}" || ok=0
                k=$((k + 1))
        done
        v=$(stat "$json" "$cg" "$dir" backlog)
        detail+=" backlog ${v:-?}"
        [[ -n $v ]] || ok=0
        if ((ok)); then
                nb_say "$what $cg $dir: the kernel's class counters:$detail: ok"
        else
                nb_record_failure "$what $cg $dir: not the kernel's class counters:$detail"
        fi
}

for cg in upc downc; do
        for dir in up down; do
                prev_bytes=0 prev_packets=0
                for n in 1 2 3 4 5; do
                        json=$NB_TMP/list-$n.json
                        check_sample "$json" "$NB_TMP/tc-$n" "$cg" "$dir" "list #$n"
                        bytes=$(stat "$json" "$cg" "$dir" bytes) packets=$(stat "$json" "$cg" "$dir" packets)
                        if ((${bytes:-0} > prev_bytes && ${packets:-0} > prev_packets)); then
                                nb_say "list #$n $cg $dir: bytes and packets grew ($prev_bytes -> $bytes, $prev_packets -> $packets): ok"
                        else
                                nb_record_failure "list #$n $cg $dir: bytes and packets did not grow ($prev_bytes -> ${bytes:-?}, $prev_packets -> ${packets:-?})"
                        fi
                        prev_bytes=${bytes:-0} prev_packets=${packets:-0}
                done
                got=$(jq -r --arg t "${TARGET[$cg]}" --arg d "$dir" '.rules[] | select(.target == $t) | .[$d]' \
                        "$NB_TMP/list-5.json")
                assert_true "list $cg $dir: the limit is $limit_bps ($got)" test "$got" = "$limit_bps"
        done
done

# the current rate of the busy direction: the class is full, at the limit (link-layer bytes)
check_rates() {
        local cg=$1 dir=$2 n rate sum=0
        for n in 1 2 3 4 5; do
                rate=$(stat "$NB_TMP/list-$n.json" "$cg" "$dir" rate)
                assert_within "${rate:-0}" "$limit_bps" "$EACH" "list #$n $cg $dir: current rate against the $LIMIT limit"
                sum=$((sum + ${rate:-0}))
        done
        assert_within "$((sum / 5))" "$limit_bps" "$TOL" "list $cg $dir: mean of 5 current rates against the $LIMIT limit"
}
check_rates upc up
check_rates downc down

# --- status --json ------------------------------------------------------------------------------------
S=$NB_TMP/status.json
for cg in upc downc; do
        for dir in up down; do
                check_sample "$S" "$NB_TMP/tc-s" "$cg" "$dir" "status"
        done
        got=$(jq -c --arg t "${TARGET[$cg]}" '[.rules[] | select(.target == $t) | {up, down, class}]' "$S")
        assert_true "status: the rule on $cg with its limits and class ($got)" \
                test "$got" = "[{\"up\":$limit_bps,\"down\":$limit_bps,\"class\":\"${CLASS[$cg]}\"}]"
done
rate=$(stat "$S" upc up rate)
assert_within "${rate:-0}" "$limit_bps" "$EACH" "status upc up: current rate against the $LIMIT limit"
rate=$(stat "$S" downc down rate)
assert_within "${rate:-0}" "$limit_bps" "$EACH" "status downc down: current rate against the $LIMIT limit"
assert_true "status: rule_count 2" test "$(jq .rule_count "$S")" = 2
got=$(jq -r --arg n "$NB_IF_A" '.interfaces[] | select(.name == $n) | "\(.shaped) \(.ifb)"' "$S")
assert_true "status: $NB_IF_A shaped via $IFB ($got)" test "$got" = "true $IFB"

# the uptime grows as the clock does (1 s of slack for the two calls)
up0=$(jq .uptime_usec <<<"$st0") up1=$(jq .uptime_usec "$S")
grew=$(awk -v a="$up0" -v b="$up1" 'BEGIN { printf "%.0f", (b - a) / 1e3 }')
wall=$(awk -v a="$t_status0" -v b="$t_status1" 'BEGIN { printf "%.0f", (b - a) * 1e3 }')
assert_true "status: the uptime grew by ${grew} ms while ${wall} ms passed" \
        awk -v g="$grew" -v w="$wall" 'BEGIN { exit !(g > 0 && g >= w - 1000 && g <= w + 1000) }'

# the leaf status names is the one under the rules' classes
leaf=$(jq -r .leaf_qdisc "$S")
leaf_kind() { tca -j qdisc show dev "$1" | jq -r --arg p "$2" '.[] | select(.parent == $p) | .kind'; }
bulk_class=$(printf '6e62:%x' $((16#${CLASS[upc]#6e62:} + 0x4000)))
up_leaf=$(leaf_kind "$NB_IF_A" "$bulk_class") down_leaf=$(leaf_kind "$IFB" "$bulk_class")
case $leaf in
fq_codel) want="fq_codel fq_codel" ;;
"bfifo up, tbf+bfifo down below 200 Mbit/s") want="bfifo tbf" ;; # 8mbit: the segmenting TBF down
*) want="?" ;;
esac
assert_true "status: leaf qdisc '$leaf' is what is under $bulk_class, ${CLASS[upc]}'s bulk leaf (up: $up_leaf, down: $down_leaf)" \
        test "$up_leaf $down_leaf" = "$want"

# --- text --------------------------------------------------------------------------------------------------
# list: "TARGET up LIMIT RATE BYTES PACKETS DROPS BACKLOG CLASS OWNER", then "down ..." on the
# next line (CLASS and OWNER once per rule)
text_row() { awk -v t="$2" -v d="$3" '$1 == t { on = 1 } on && ($2 == d || $1 == d) { print; exit }' "$1"; }
for f in list status; do
        for x in "upc up" "downc down"; do
                read -r cg dir <<<"$x"
                row=$(text_row "$NB_TMP/$f.txt" "${TARGET[$cg]}" "$dir")
                read -ra w <<<"${row#"${TARGET[$cg]}"}"
                # w: DIR LIMIT RATE BYTES PACKETS DROPS BACKLOG [CLASS OWNER]
                if [[ $dir == up && ${#w[@]} == 9 ]]; then
                        assert_true "$f (text) $cg: CLASS ${w[7]} OWNER ${w[8]} (${CLASS[$cg]}, root)" \
                                test "${w[7]} ${w[8]}" = "${CLASS[$cg]} root"
                        w=("${w[@]:0:7}")
                fi
                if [[ ${#w[@]} != 7 || ${w[1]} != "$LIMIT" ]]; then
                        nb_record_failure "$f (text): no $dir line for ${TARGET[$cg]} with limit $LIMIT: '$row'"
                        continue
                fi
                assert_within "$(rate_to_bps "${w[2]}")" "$limit_bps" "$EACH" "$f (text) $cg $dir: RATE ${w[2]}"
                assert_true "$f (text) $cg $dir: BYTES ${w[3]}, PACKETS ${w[4]}, DROPS ${w[5]}, BACKLOG ${w[6]}" \
                        eval '[[ ${w[3]} =~ ^[0-9.]+(B|KiB|MiB|GiB)$ && ${w[4]} =~ ^[1-9][0-9]*$ && ${w[5]} =~ ^[0-9]+$ && ${w[6]} =~ ^[0-9.]+(B|KiB|MiB)$ ]]'
        done
done
ST=$NB_TMP/status.txt
assert_true "status (text): interface line" grep -qxF "interface $NB_IF_A: shaped, downloads via $IFB" "$ST"
assert_true "status (text): the leaf qdisc" grep -qxF "leaf qdisc: $leaf" "$ST"
assert_true "status (text): rules: 2" grep -qx "rules: 2" "$ST"
assert_true "status (text): the uptime" grep -qE "^netbumpd .*, up [0-9]+s$" "$ST"
assert_true "status (text): the table header" grep -qE "^TARGET +DIR +LIMIT +RATE +BYTES +PACKETS +DROPS +BACKLOG +CLASS +OWNER$" "$ST"

# --- a degraded interface says why ------------------------------------------------------------------------
# (naming the qdisc that took its place, and how to remove it)
why="netbumpd's root qdisc on $NB_IF_A was replaced by someone else's tbf 99: (remove it with 'tc qdisc del dev $NB_IF_A root'"
degraded_text() { nbctl status | grep -F "interface $NB_IF_A: " | grep -qF "DEGRADED: $why"; }
not_degraded_text() { nbctl status | grep -qxF "interface $NB_IF_A: shaped, downloads via $IFB"; }
tca qdisc replace dev "$NB_IF_A" root handle 99: tbf rate 100mbit burst 10k latency 10ms
if nb_wait_until 5 degraded_text; then
        nb_say "status (text) after someone else's root tbf: $(nbctl status | grep -F "interface $NB_IF_A: "): ok"
else
        nb_record_failure "status (text) does not say why $NB_IF_A is degraded: $(nbctl status | grep -F "interface $NB_IF_A")"
fi
json_why=$(nbctl --json status | jq -r --arg n "$NB_IF_A" '.interfaces[] | select(.name == $n) | .degraded')
assert_true "status --json: the same reason ($json_why)" eval '[[ $json_why == "$why"* ]]'
tca qdisc del dev "$NB_IF_A" root
nb_wait_until 5 not_degraded_text ||
        nb_record_failure "status still degraded after the tbf went: $(nbctl status | grep -F "interface $NB_IF_A")"

nb_finish
