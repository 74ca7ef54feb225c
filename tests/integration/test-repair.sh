#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbumpd puts back what others remove and does not fight what they replace, with a cgroup rule
# at 8mbit:
#   1. `ip link del nbifb<N>`: within 2 s the IFB (HTB, the rule's class) is back; a download
#      is limited again (within 10%);
#   2. `tc qdisc del dev veth-a root`: within 2 s our HTB is back; an upload is limited again;
#   3. root qdisc replaced by a tbf: within 2 s list shows the rule "degraded": true and status
#      the interface degraded; the tbf stays (no fight), the daemon lives; once the tbf is
#      deleted: within 2 s shaped again, not degraded, an upload is limited again;
#   4. veth-a deleted and a new pair made with the same names and addresses: the new veth-a is
#      shaped (its own IFB, the old one gone) and an upload is limited again;
#   5. link storms: 50 dummies (bridges where there is no dummy driver) made and deleted at once;
#      then, with netbumpd stopped (SIGSTOP) so that its link monitor overflows (ENOBUFS), 50
#      made among thousands of link changes, and later deleted the same way: each time netbumpd resynchronizes and status
#      lists exactly the live interfaces, each with its IFB, and no IFB of a gone link remains.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
TOL=10
REPAIR_MAX=2            # seconds
DUMMIES=50
CHURN_BATCH=2000        # link changes per batch while netbumpd is stopped
CHURN_BATCHES=10        # at most

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
make_cgroup limited >/dev/null
limited="cgroup:$(cgroup_rel limited)"
expected4=$(expected_goodput "$RATE" 4)
nb_start_netbumpd
nbctl_ok set "$limited" "$RATE"
class=$(nbctl --json list | jq -r --arg t "$limited" '.rules[] | select(.target == $t) | .class')
nb_say "the rule's class: $class"

ipa() { ip -n "$NB_NS_A" "$@"; }
tca() { tc -n "$NB_NS_A" "$@"; }
status() { nbctl --json status; }
iface_field() { status | jq -r --arg n "$1" '.interfaces[] | select(.name == $n) | .'"$2"' // empty'; }
ifindex_of() { ipa -o link show dev "$1" | awk -F': ' '{ print $1 }'; }

# shaped DEV: our HTB is the root of DEV and of its IFB (per status), each with the rule's class,
# and our ingress filter is on DEV
shaped() {
        local dev=$1 ifb
        ifb=$(iface_field "$dev" ifb)
        [[ -n $ifb ]] || return 1
        [[ $(tca qdisc show dev "$dev" root) == "qdisc htb 6e62: root"* ]] || return 1
        [[ $(tca qdisc show dev "$ifb" root 2>/dev/null) == "qdisc htb 6e62: root"* ]] || return 1
        [[ $(tca class show dev "$dev") == *"class htb $class "* ]] || return 1
        [[ $(tca class show dev "$ifb" 2>/dev/null) == *"class htb $class "* ]] || return 1
        [[ $(tca filter show dev "$dev" ingress) == *" bpf "* ]] || return 1
}

# wait_repaired WHAT SECONDS: shaped() becomes true within SECONDS of now
wait_repaired() {
        local what=$1 t0 t1
        t0=$(nb_now)
        if nb_wait_until "$2" shaped "$NB_IF_A"; then
                t1=$(nb_now)
                nb_say "$what: shaped again after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s: ok"
        else
                nb_record_failure "$what: not shaped again within $2 s"
                tca qdisc show dev "$NB_IF_A" | sed 's/^/    /' >&3
                return 1
        fi
}

measure() {
        local what=$1 bps
        shift
        if bps=$(measure_goodput -g limited -t 3 "$@" "$NB_B4" 5201); then
                assert_within "$bps" "$expected4" "$TOL" "$what"
        else
                nb_record_failure "$what: iperf3 failed"
        fi
}

assert_true "shaped at start" shaped "$NB_IF_A"

# --- 1. the IFB deleted ------------------------------------------------------------------
ifb=$(iface_field "$NB_IF_A" ifb)
ipa link del "$ifb"
nb_say "deleted $ifb"
wait_repaired "1. IFB deleted" "$REPAIR_MAX" &&
        assert_true "1. $ifb exists again" ipa link show dev "$ifb" >/dev/null
measure "1. download after the IFB came back" -R

# --- 2. our root HTB deleted -------------------------------------------------------------
tca qdisc del dev "$NB_IF_A" root
nb_say "deleted the root qdisc of $NB_IF_A"
wait_repaired "2. root HTB deleted" "$REPAIR_MAX"
measure "2. upload after the HTB came back"

# --- 3. the root qdisc replaced by someone else's -----------------------------------------
rule_degraded() { nbctl --json list | jq -r --arg t "$limited" '.rules[] | select(.target == $t) | .degraded'; }
both_degraded() { [[ $(rule_degraded) == true && -n $(iface_field "$NB_IF_A" degraded) ]]; }
not_degraded() { [[ $(rule_degraded) == false && -z $(iface_field "$NB_IF_A" degraded) ]]; }
tbf_root() { [[ $(tca qdisc show dev "$NB_IF_A" root) == "qdisc tbf 99: root"* ]]; }

tca qdisc replace dev "$NB_IF_A" root handle 99: tbf rate 100mbit burst 10k latency 10ms
nb_say "replaced the root qdisc of $NB_IF_A with a tbf"
if nb_wait_until "$REPAIR_MAX" both_degraded; then
        nb_say "3. list: rule degraded $(rule_degraded); status: $NB_IF_A degraded '$(iface_field "$NB_IF_A" degraded)': ok"
else
        nb_record_failure "3. not reported degraded within $REPAIR_MAX s: rule degraded '$(rule_degraded)', status degraded '$(iface_field "$NB_IF_A" degraded)'"
fi
warned=$(grep -c "root qdisc of $NB_IF_A was replaced" "$NB_TMP/netbumpd.log" || :)
sleep 2.5               # two and more checks of netbumpd's
assert_true "3. the tbf is still the root qdisc 2.5 s later (no fight)" tbf_root
assert_true "3. still degraded" both_degraded
assert_true "3. netbumpd alive" nb_alive "$NB_DAEMON_PID"
assert_true "3. the replacement was logged once (logged $warned then $(grep -c "root qdisc of $NB_IF_A was replaced" "$NB_TMP/netbumpd.log" || :) times)" \
        test "$warned" = 1 -a "$(grep -c "root qdisc of $NB_IF_A was replaced" "$NB_TMP/netbumpd.log" || :)" = 1
tca qdisc del dev "$NB_IF_A" root
nb_say "deleted the tbf"
wait_repaired "3. tbf deleted" "$REPAIR_MAX"
if nb_wait_until 1 not_degraded; then
        nb_say "3. no longer degraded: ok"
else
        nb_record_failure "3. still degraded after the tbf was deleted: rule '$(rule_degraded)', status '$(iface_field "$NB_IF_A" degraded)'"
fi
measure "3. upload after the tbf was deleted"

# --- 4. the interface gone and back -------------------------------------------------------
old_ifindex=$(ifindex_of "$NB_IF_A")
old_ifb=$(iface_field "$NB_IF_A" ifb)
ipa link del "$NB_IF_A"
gone() { [[ -z $(iface_field "$NB_IF_A" ifb) ]] && ! ipa link show dev "$old_ifb" >/dev/null 2>&1; }
if nb_wait_until 2 gone; then
        nb_say "4. $NB_IF_A deleted: out of status, $old_ifb removed: ok"
else
        nb_record_failure "4. $NB_IF_A deleted: still in status or $old_ifb still there"
fi
ipa link add "$NB_IF_A" type veth peer name "$NB_IF_B" netns "$NB_NS_B"
ipa addr add "$NB_A4/24" dev "$NB_IF_A"
ipa addr add "$NB_A6/64" dev "$NB_IF_A" nodad
ip -n "$NB_NS_B" addr add "$NB_B4/24" dev "$NB_IF_B"
ip -n "$NB_NS_B" addr add "$NB_B6/64" dev "$NB_IF_B" nodad
ipa link set "$NB_IF_A" up
ip -n "$NB_NS_B" link set "$NB_IF_B" up
nb_wait_until 5 _nb_link_up "$NB_NS_A" "$NB_IF_A" || nb_fail "the new $NB_IF_A did not come up"
new_ifindex=$(ifindex_of "$NB_IF_A")
nb_say "4. a new $NB_IF_A (ifindex $old_ifindex -> $new_ifindex)"
wait_repaired "4. new $NB_IF_A" "$REPAIR_MAX"
assert_true "4. its IFB is nbifb$new_ifindex (status says '$(iface_field "$NB_IF_A" ifb)')" \
        test "$(iface_field "$NB_IF_A" ifb)" = "nbifb$new_ifindex"
measure "4. upload through the new $NB_IF_A"

# --- 5. link storms ------------------------------------------------------------------------
# consistent: status lists exactly the live links but lo and our IFBs, each with its IFB, and
# the IFBs that exist are exactly those
live_links() { ipa -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -vxE 'lo|nbifb[0-9]+' | sort; }
consistent() {
        local st
        st=$(status) || return 1
        [[ $(jq -r '.interfaces[].name' <<<"$st" | sort) == "$(live_links)" ]] || return 1
        [[ $(jq -r '.interfaces[] | select(.shaped) | .ifb' <<<"$st" | sort) == \
                "$(ipa -o link show | awk -F': ' '$2 ~ /^nbifb[0-9]+/ { sub(/@.*/, "", $2); print $2 }' | sort)" ]] || return 1
        [[ $(jq '[.interfaces[] | select(.shaped | not)] | length' <<<"$st") == 0 ]]
}
describe() {
        local st
        st=$(status)
        nb_say "    status: $(jq '.interfaces | length' <<<"$st") interfaces ($(jq '[.interfaces[] | select(.shaped)] | length' <<<"$st") shaped); live links: $(live_links | wc -l); IFBs: $(ipa -o link show | grep -c ': nbifb' || :)"
}
# storm WHAT SECONDS: wait for consistent()
settle() {
        local t0 t1
        t0=$(nb_now)
        if nb_wait_until "$2" consistent; then
                t1=$(nb_now)
                nb_say "$1: status lists exactly the $(live_links | wc -l) live interfaces, each with its IFB, no other IFB, after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s: ok"
        else
                nb_record_failure "$1: status and links still differ after $2 s"
                describe
        fi
}
batch() { ip -n "$NB_NS_A" -batch -; }
# dummy links where the kernel has them, bridges (without ports) otherwise
KIND=dummy
if ! ipa link add nbprobe type dummy 2>/dev/null; then
        KIND=bridge
        nb_say "no dummy driver here: bridges stand in for dummy links"
fi
ipa link del nbprobe 2>/dev/null || :

seq 1 "$DUMMIES" | sed "s/^/link add nbd/; s/\$/ type $KIND/" | batch
settle "5a. $DUMMIES dummies made at once" 20
seq 1 "$DUMMIES" | sed 's/^/link del nbd/' | batch
settle "5a. $DUMMIES dummies deleted at once" 20
assert_true "5a. netbumpd alive" nb_alive "$NB_DAEMON_PID"

# the monitor's drops: the Drops column of netlink sockets in ns a (/proc/net/netlink)
nl_drops() {
        nsenter --net="$NB_NETNS_A" awk 'NR > 1 { d += $9 } END { print d + 0 }' /proc/net/netlink
}
# churn: with netbumpd stopped, thousands of link notifications (alias changes of veth-a: cheap,
# where adding and deleting links waits for RCU) until a netlink socket drops
churn() {
        local d0 b
        d0=$(nl_drops)
        for ((b = 0; b < CHURN_BATCHES; b++)); do
                seq 1 "$CHURN_BATCH" | awk -v b="$b" -v dev="$NB_IF_A" '{ print "link set dev " dev " alias churn-" b "-" $1 }' | batch
                (($(nl_drops) > d0)) && break
        done
        nb_say "    $(((b + 1) * CHURN_BATCH)) link changes while netbumpd was stopped; netlink drops in ns a $d0 -> $(nl_drops)"
}
resyncs() { grep -c "resynchronizing" "$NB_TMP/netbumpd.log" || :; }

r0=$(resyncs)
kill -STOP "$NB_DAEMON_PID"
seq 1 "$DUMMIES" | sed "s/^/link add nbd/; s/\$/ type $KIND/" | batch
churn
kill -CONT "$NB_DAEMON_PID"
settle "5b. $DUMMIES dummies made among a link storm, netbumpd stopped meanwhile" 30
assert_true "5b. netbumpd resynchronized (ENOBUFS; 'resynchronizing' logged $r0 -> $(resyncs) times)" test "$(resyncs)" -gt "$r0"

r0=$(resyncs)
kill -STOP "$NB_DAEMON_PID"
seq 1 "$DUMMIES" | sed 's/^/link del nbd/' | batch
churn
kill -CONT "$NB_DAEMON_PID"
settle "5b. $DUMMIES dummies deleted among a link storm, netbumpd stopped meanwhile" 30
assert_true "5b. netbumpd resynchronized again ('resynchronizing' logged $r0 -> $(resyncs) times)" test "$(resyncs)" -gt "$r0"
assert_true "5b. only nbifb$new_ifindex is left" \
        test "$(ipa -o link show | awk -F': ' '$2 ~ /^nbifb/ { sub(/@.*/, "", $2); print $2 }')" = "nbifb$new_ifindex"
assert_true "5b. netbumpd alive" nb_alive "$NB_DAEMON_PID"
assert_true "5b. still shaped" shaped "$NB_IF_A"

nb_finish
