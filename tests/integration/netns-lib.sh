# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Other network namespaces routed through the one netbumpd runs in (sourced after lib.sh by
# test-netns-forward.sh and test-container.sh):
#
#   ns c (client) -- veth-c / veth-ac --> ns a (netbumpd, forwards) -- veth-a / veth-b --> ns b
#   198.19.N.2/24 fd18::c:N:2/112         198.19.N.1 fd18::c:N:1         (lib.sh's addresses)
#
# ns b routes 198.19.0.0/16 and fd18::c:0:0/96 back through ns a, so a container's subnet
# (198.19.N+100.0/24, fd18::d:N:0/112, test-container.sh) needs no route of its own there.
# The /112 and /96 prefixes sit inside fd18::/64 and are longer than the /64 on veth-a/veth-b,
# so they win.

# shellcheck disable=SC2034
NSL_NS_C=nbt-$NB_ID-c
NSL_NETNS_C=/run/netns/$NSL_NS_C
NSL_IF_AC=veth-ac
NSL_IF_C=veth-c
NSL_A4=198.19.$NB_NET.1
NSL_C4=198.19.$NB_NET.2
NSL_A6=fd18::c:$NB_NET:1
NSL_C6=fd18::c:$NB_NET:2

# nsl_forwarding: ns a routes between its links; ns b routes the client ranges back through it
nsl_forwarding() {
        nsenter --net="$NB_NETNS_A" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward &&
                echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
        ip -n "$NB_NS_B" route add 198.19.0.0/16 via "$NB_A4"
        ip -n "$NB_NS_B" -6 route add fd18::c:0:0/96 via "$NB_A6"
}

# nsl_masquerade SRC4 SRC6: ns a masquerades (nftables) what comes from the prefixes SRC4 and SRC6
# and leaves by veth-a, and ns b loses its routes back to the client ranges, so that only
# translated traffic gets through; nsl_masquerade_off undoes both
nsl_masquerade() {
        nsenter --net="$NB_NETNS_A" nft -f - <<EOF
table inet nbt_nat {
        chain post {
                type nat hook postrouting priority srcnat; policy accept;
                oifname "$NB_IF_A" ip saddr $1 masquerade
                oifname "$NB_IF_A" ip6 saddr $2 masquerade
        }
}
EOF
        ip -n "$NB_NS_B" route del 198.19.0.0/16 via "$NB_A4"
        ip -n "$NB_NS_B" -6 route del fd18::c:0:0/96 via "$NB_A6"
}
nsl_masquerade_off() {
        nsenter --net="$NB_NETNS_A" nft delete table inet nbt_nat
        ip -n "$NB_NS_B" route add 198.19.0.0/16 via "$NB_A4"
        ip -n "$NB_NS_B" -6 route add fd18::c:0:0/96 via "$NB_A6"
}

# nsl_setup_client_ns: ns c, joined to ns a, its default routes through it
nsl_setup_client_ns() {
        ip netns add "$NSL_NS_C"
        NB_EXTRA_NETNS+=("$NSL_NS_C")
        nsenter --net="$NSL_NETNS_C" sh -c \
                'echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad'
        ip -n "$NSL_NS_C" link set lo up
        ip -n "$NB_NS_A" link add "$NSL_IF_AC" type veth peer name "$NSL_IF_C" netns "$NSL_NS_C"
        ip -n "$NB_NS_A" addr add "$NSL_A4/24" dev "$NSL_IF_AC"
        ip -n "$NB_NS_A" addr add "$NSL_A6/112" dev "$NSL_IF_AC" nodad
        ip -n "$NSL_NS_C" addr add "$NSL_C4/24" dev "$NSL_IF_C"
        ip -n "$NSL_NS_C" addr add "$NSL_C6/112" dev "$NSL_IF_C" nodad
        ip -n "$NB_NS_A" link set "$NSL_IF_AC" up
        ip -n "$NSL_NS_C" link set "$NSL_IF_C" up
        ip -n "$NSL_NS_C" route add default via "$NSL_A4"
        ip -n "$NSL_NS_C" -6 route add default via "$NSL_A6"
        nb_wait_until 5 _nb_link_up "$NSL_NS_C" "$NSL_IF_C" || nb_fail "$NSL_IF_C did not come up"
        nb_wait_until 5 _nb_no_tentative "$NSL_NS_C" || nb_fail "IPv6 addresses in $NSL_NS_C still tentative"
}

# nsl_in NETNS CG CMD...: CMD in network namespace NETNS (a path), inside cgroup CG; every step
# execs, so $! of a background call is CMD's PID
nsl_in() {
        local netns=$1 cg
        cg=$(cgroup_dir "$2")
        shift 2
        # shellcheck disable=SC2016
        nsenter --net="$netns" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

# nsl_goodput NETNS CG SECS [-O OMIT] [-R] ADDR PORT: an iperf3 client in NETNS and CG; prints the
# receiver's bits/s, goodput_received (-O: seconds not counted at the start, slow start and the queue
# filling; 1)
nsl_goodput() {
        local netns=$1 cg=$2 secs=$3 json
        shift 3
        NB_CLIENT_SEQ=$((NB_CLIENT_SEQ + 1))
        json=$NB_TMP/nsl-client-$NB_CLIENT_SEQ-$BASHPID.json  # $BASHPID: apart in background calls
        local args=() addr port omit=1
        if [[ $1 == -O ]]; then omit=$2; shift 2; fi
        if [[ $1 == -R ]]; then args+=(-R); shift; fi
        addr=$1 port=$2
        if ! nsl_in "$netns" "$cg" timeout -k 5 $((secs + 20)) iperf3 -c "$addr" -p "$port" -t "$secs" -O "$omit" -J --get-server-output \
                --connect-timeout 3000 "${args[@]}" >"$json" 2>"$json.err"; then
                nb_say "iperf3 client in $netns failed: $(jq -r '.error // empty' "$json" 2>/dev/null) $(cat "$json.err")"
                return 1
        fi
        goodput_received "$json"
}

# nsl_snapshot FILE NETNS...: host_snapshot (ns a, the cgroups, pins, the host) plus, for every
# other namespace given (paths), its links and every qdisc and filter on them, and the tcx programs
# attached anywhere that are netbump's
nsl_snapshot() {
        local f=$1 netns dev
        shift
        host_snapshot "$f"
        {
                for netns in "$@"; do
                        [[ -e $netns ]] || continue
                        echo "### links in $(basename "$netns")"
                        nsenter --net="$netns" ip -d link show | sed -E 's/link-netnsid [0-9]+/link-netnsid N/'
                        for dev in $(nsenter --net="$netns" ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
                                echo "### tc in $(basename "$netns") dev $dev"
                                nsenter --net="$netns" tc qdisc show dev "$dev" | sed -E 's/ refcnt [0-9]+//'
                                nsenter --net="$netns" tc filter show dev "$dev" ingress 2>&1 || :
                                nsenter --net="$netns" tc filter show dev "$dev" egress 2>&1 || :
                        done
                done
                echo "### netbump tcx programs attached (any namespace)"
                bpftool -j link show 2>/dev/null | jq -r '.[]? | select(.type == "tcx" or .type == 11) | .prog_id' |
                        while read -r id; do
                                bpftool -j prog show id "$id" 2>/dev/null | jq -r '.name // empty'
                        done | grep -E '^nb_' | sort || :
        } >>"$f"
}

# (bpftool 7.1 names no tcx link type: 11 is BPF_LINK_TYPE_TCX)
# nsl_tcx_count PROG: how many tcx links run netbump's program PROG now
nsl_tcx_count() {
        local id n=0
        for id in $(bpftool -j link show 2>/dev/null | jq -r '.[]? | select(.type == "tcx" or .type == 11) | .prog_id'); do
                [[ $(bpftool -j prog show id "$id" 2>/dev/null | jq -r '.name // empty') == "$1" ]] && n=$((n + 1))
        done
        echo "$n"
}

# ---------------------------------------------------------------------------------------------
# systemd-nspawn containers in ns a (test-container.sh, bench/container.sh)

declare -A CTR_NSPAWN=() CTR_INNER=() CTR_VE=() CTR_CG=()

_ctr_link() { ip -n "$NB_NS_A" link show "$1" >/dev/null 2>&1; }

# ctr_start K CG: container K (1, 2) in ns a and in cgroup CG; addresses 198.19.N.16K+1/28 and
# fd18::c:N:K01/120 on its ve- link, .16K+2 and fd18::c:N:K02 on host0, which routes through them
ctr_start() {
        local k=$1 cg=$2 name=nb$NB_ID$1 pid inner ve a4 c4 a6 c6
        # shellcheck disable=SC2016
        sh -c 'echo $$ > "$0/cgroup.procs" && exec nsenter --net="$1" env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 \
                systemd-nspawn --register=no --keep-unit -q -D / --volatile=yes -M "$2" --network-veth \
                /bin/sleep 1000' "$(cgroup_dir "$cg")" "$NB_NETNS_A" "$name" >"$NB_TMP/nspawn-$k.log" 2>&1 &
        pid=$!
        nb_track_pid "$pid"
        inner=$(nb_child_pid "$pid" sleep) || nb_fail "container $k did not start: $(cat "$NB_TMP/nspawn-$k.log")"
        ve=ve-$name
        nb_wait_until 5 _ctr_link "$ve" || nb_fail "no $ve in ns a"
        a4=198.19.$NB_NET.$((16 * k + 1)) c4=198.19.$NB_NET.$((16 * k + 2))
        a6=fd18::c:$NB_NET:${k}01 c6=fd18::c:$NB_NET:${k}02
        ip -n "$NB_NS_A" addr add "$a4/28" dev "$ve"
        ip -n "$NB_NS_A" addr add "$a6/120" dev "$ve" nodad
        ip -n "$NB_NS_A" link set "$ve" up
        nsenter -t "$inner" -n sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad &&
                echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/host0/accept_dad'
        nsenter -t "$inner" -n ip link set lo up
        nsenter -t "$inner" -n ip addr add "$c4/28" dev host0
        nsenter -t "$inner" -n ip addr add "$c6/120" dev host0 nodad
        nsenter -t "$inner" -n ip link set host0 up
        nsenter -t "$inner" -n ip route add default via "$a4"
        nsenter -t "$inner" -n ip -6 route add default via "$a6"
        CTR_NSPAWN[$k]=$pid
        CTR_INNER[$k]=$inner
        CTR_VE[$k]=$ve
        CTR_CG[$k]=$(nb_proc_cgroup "$inner")
        nb_say "container $k: nspawn $pid, payload $inner in ${CTR_CG[$k]}, $ve $a4 $a6 <-> host0 $c4 $c6"
}

# ctr_exec K CMD...: CMD in container K's payload cgroup and its network and mount namespaces;
# every step execs, so $! of a background call is CMD's PID
ctr_exec() {
        local k=$1
        shift
        # shellcheck disable=SC2016
        sh -c 't=$1 && shift && echo $$ > "$0/cgroup.procs" && exec nsenter -t "$t" -n -m "$@"' \
                "$NB_CGROUP2${CTR_CG[$k]}" "${CTR_INNER[$k]}" "$@"
}

# ctr_iperf K JSON SECS [iperf3 options...] ADDR: the client in container K, port 5201
ctr_iperf() {
        local k=$1 json=$2 secs=$3
        shift 3
        ctr_exec "$k" timeout -k 5 $((secs + 20)) iperf3 -c "${@: -1}" -p 5201 -t "$secs" -J --get-server-output --connect-timeout 3000 \
                "${@:1:$#-1}" >"$json" 2>"$json.err"
}

# nsl_pid_measure P FIFO JSON DIR OMIT IN_FN WHERE WHAT FAM: P, an iperf3 client (-J
# --get-server-output: its goodput is the receiver's, goodput_received) started in the
# background that waits for "go" on FIFO and writes its JSON to JSON, is put under `pid:P $RATE`
# once `IN_FN P` says it is WHERE, then released; its goodput and its rule's class (on $NB_IF_A, or
# $IFB for DIR down) over the transfer's last $SECS - 1 s after OMIT go to the test's
# `check WHAT FAM "BPS RATE"`. The rule ends with its process (the test's no_rules).
# shellcheck disable=SC2153 # RATE, SECS: the test's
nsl_pid_measure() {
        local P=$1 fifo=$2 json=$3 dir=$4 omit=$5 in_fn=$6 where=$7 what=$8 fam=$9 cls dev bps rate t0 spid
        nb_track_pid "$P"
        nb_wait_until 5 "$in_fn" "$P" || nb_record_failure "pid: $P is not in $where"
        nbctl_ok set "pid:$P" "$RATE"
        nb_wait_complete "pid:$P"
        cls=$(nbctl --json list | jq -r --arg t "pid:$P" '.rules[] | select(.target == $t) | .class')
        dev=$NB_IF_A
        [[ $dir == down ]] && dev=$IFB
        tc_sampler_start spid "$NB_TMP/samples-pid" "$((SECS + 6))" "$dev"
        t0=$(nb_now)
        echo go >"$fifo"
        wait "$P" || nb_say "pid: iperf3 failed: $(cat "$json.err")"
        tc_sampler_stop "$spid"
        bps=$(goodput_received "$json") || bps=0
        tc_class_series "$NB_TMP/samples-pid" "$dev" "$cls" >"$NB_TMP/series-pid"
        rate=$(series_rate "$NB_TMP/series-pid" "$(nb_at "$t0" "$omit.5")" "$(nb_at "$t0" "$((omit + SECS - 1))")") || rate=0
        check "$what" "$fam" "$bps $rate"
        nb_wait_until 5 no_rules ||
                nbctl unset "pid:$P" >/dev/null 2>&1 || :
}
