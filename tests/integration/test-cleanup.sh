#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbumpd leaves its namespace and the host as it found them:
#   1. start, set a cgroup, a user and a pid: rule (a sleep in cgroup "pidcg": it moves to
#      <root>/netbump/pid-PID), transfer, SIGTERM: the sleep is back in pidcg,
#      <root>/netbump/pid-* is gone, and the snapshot equals the one taken before;
#   2. start, set the rules, SIGKILL: leftovers remain (qdisc, filter or IFB; proves step 3
#      matters), the sleep stays in its rule's cgroup;
#   3. start again on those leftovers and set nothing: the rules are back (listed, with their
#      classes on veth-a and its IFB at their rates) and in force (the cgroup's transfers limited,
#      the sleep still in its rule's cgroup); SIGTERM: the sleep is back in pidcg and the snapshot
#      equals the one taken before;
#   4. someone else's qdisc holds the handle the leaf of the next class needs: the Set fails, its
#      error carries the kernel's own message (as tc(8) gets it for the same request), no class of
#      it is left, and once the foreign qdisc is gone the Set works; SIGTERM: snapshot as before;
#   5. the state directory and its file take no writes (chattr +i; netbumpd appends to the file
#      while only rules change, and replaces it otherwise): a new rule, a change, an unset and a pid:
#      rule are each refused naming the state directory, and nothing changes (list, classes, the
#      process stays where it is); writable again, the Set works; SIGTERM: snapshot as before;
#   6. someone else puts a filter in the clsact netbumpd made on veth-a, then SIGKILL and start
#      again: the clsact is still netbump's (the state file says so) and both filters are in it;
#      once the other filter is gone, SIGTERM: snapshot as before (no clsact left);
#   7. someone else's clsact with a filter of theirs is on veth-a before netbumpd starts: start,
#      SIGKILL, start again, SIGTERM: the clsact and their filter are as they were, netbump's
#      filter is gone (the snapshot equals the one taken after they were made).
# The transfers only check that the limit is in effect (within 25%); test-limit-* check accuracy.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
USER_ID=1000
PID_RATE=4mbit
TOL=25                  # "the limit is in effect"; accuracy is test-limit-*'s business
NB_FILTER_PRIO=$((0xbb01))      # of netbump's ingress filter (NB_FILTER_PRIO in manager.h)

nb_require_daemon
command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed"
nb_setup
nb_start_iperf_servers 5201
make_cgroup limited >/dev/null
make_cgroup other >/dev/null
make_cgroup pidcg >/dev/null
limited="cgroup:$(cgroup_rel limited)"
pidcg=$(cgroup_rel pidcg)
expected=$(expected_goodput "$RATE" 4)

snap=$NB_TMP/snapshot
host_snapshot "$snap.before"

# the process of the pid: rule, in ns a and cgroup pidcg (bounded: the teardown ends it anyway)
_nb_argv -g pidcg
"${_NB_ARGV[@]}" sleep 300 &
P=$!
nb_track_pid "$P"

proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }
_in_cgroup() { [[ $(proc_cgroup "$1") == "$2" ]]; }
nb_wait_until 5 _in_cgroup "$P" "$pidcg" || nb_fail "sleep $P never reached $pidcg"
pid_rule_cg=$NB_CGROOT_REL/netbump/pid-$P

set_rules() {
        nbctl_ok set "$limited" "$RATE"
        nbctl_ok set "user@$USER_ID" --up 4mbit --down 6mbit
        nbctl_ok set "pid:$P" "$PID_RATE"
}

# rules: "TARGET UP DOWN CLASS" per rule, sorted
rules() { nbctl --json list | jq -r '.rules[] | "\(.target) \(.up) \(.down) \(.class)"' | sort; }

# classes DEV: "CLASSID BPS" of netbump's HTB rule classes (6e62:M, M <= 0x3fff) on DEV in ns a,
# and a line naming each rule class without its two leaf classes (6e62:M+0x4000, 6e62:M+0x8000)
# or leaf class without its rule class, so that such a mismatch fails the comparison
classes() {
        tc -n "$NB_NS_A" class show dev "$1" | awk '
                $1 == "class" && $2 == "htb" && $3 ~ /^6e62:/ {
                        m = strtonum("0x" substr($3, 6)); cls[m] = 1
                        if (m > 16383) next
                        for (i = 4; i < NF; i++) if ($i == "rate") { print $3, $(i + 1); break }
                }
                END {
                        for (m in cls) {
                                m += 0
                                if (m <= 16383 && (!((m + 16384) in cls) || !((m + 32768) in cls)))
                                        printf "6e62:%x lacks-leaves\n", m
                                if (m > 16383 && !(and(m, 16383) in cls))
                                        printf "6e62:%x orphan-leaf\n", m
                        }
                }' | while read -r id rate; do
                case $rate in
                *bit) echo "$id $(rate_to_bps "${rate,,}")" ;;
                *) echo "$id $rate" ;;
                esac
        done | sort
}

ifb_of_a() { ip -n "$NB_NS_A" -o link show | awk -F': ' '$2 ~ /^nbifb/ { sub(/@.*/, "", $2); print $2 }'; }

# assert_classes MSG: once every listed rule is complete, each has its class at its upload rate
# on veth-a and at its download rate on the IFB, and there is no other netbump class
assert_classes() {
        local want_up want_down got_up got_down ifb
        # the leaf classes come a moment after a rule (or a restart): wait for what is promised
        nb_wait_complete "$1" || :
        ifb=$(ifb_of_a)
        want_up=$(rules | awk '$2 > 0 { print $4, $2 }' | sort)
        want_down=$(rules | awk '$3 > 0 { print $4, $3 }' | sort)
        got_up=$(classes "$NB_IF_A")
        got_down=$( [[ -n $ifb ]] && classes "$ifb")
        if [[ -n $want_up && $got_up == "$want_up" && $got_down == "$want_down" ]]; then
                nb_say "$1: classes on $NB_IF_A and ${ifb:-no IFB} match the $(rules | wc -l) rules: ok"
        else
                nb_record_failure "$1: classes do not match the rules: want up [${want_up//$'\n'/, }] down [${want_down//$'\n'/, }], $NB_IF_A has [${got_up//$'\n'/, }], ${ifb:-no IFB} has [${got_down//$'\n'/, }]"
        fi
}

pid_dirs() { find "$NB_CGROOT/netbump" -mindepth 1 -maxdepth 1 -type d -name 'pid-*' 2>/dev/null | sort; }

# --- 1. clean stop
nb_start_netbumpd
set_rules
assert_true "step 1: sleep $P is in its rule's cgroup" _in_cgroup "$P" "$pid_rule_cg"
host_snapshot "$snap.running"
assert_different_snapshot "$snap.before" "$snap.running" "running netbumpd changed the snapshot"
bps=$(measure_goodput -g limited -t 3 "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 1)"
assert_within "$bps" "$expected" "$TOL" "step 1: cgroup up v4"
bps=$(measure_goodput -g limited -t 3 -R "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 1)"
assert_within "$bps" "$expected" "$TOL" "step 1: cgroup down v4"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "step 1: exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
assert_true "step 1: after SIGTERM sleep $P is back in $pidcg (is in $(proc_cgroup "$P"))" _in_cgroup "$P" "$pidcg"
assert_true "step 1: no pid-* cgroup left ($(pid_dirs))" test -z "$(pid_dirs)"
host_snapshot "$snap.after-term"
assert_same_snapshot "$snap.before" "$snap.after-term" "step 1: nothing left after SIGTERM"

# --- 2. crash
nb_start_netbumpd
set_rules
before_kill=$(rules | cut -d' ' -f1-3)
nb_kill_netbumpd
host_snapshot "$snap.after-kill"
assert_different_snapshot "$snap.before" "$snap.after-kill" "step 2: SIGKILL leaves state behind"
leftovers=$( { snapshot_section "$snap.after-kill" "tc qdisc dev" | grep -vE '^qdisc noqueue 0: root' || :
               snapshot_section "$snap.after-kill" "tc filter dev" || :
               snapshot_section "$snap.after-kill" "links in ns a" | grep -E '^[0-9]+: nbifb' || : ; } )
if [[ -n $leftovers ]]; then
        nb_say "step 2: leftovers after SIGKILL (qdiscs, filters, IFBs):"
        sed 's/^/    /' <<<"$leftovers" >&3
else
        nb_record_failure "step 2: no qdisc, filter or IFB left after SIGKILL; the restart step proves nothing"
fi
assert_true "step 2: after SIGKILL sleep $P stays in its rule's cgroup" _in_cgroup "$P" "$pid_rule_cg"

# --- 3. restart on leftovers: the rules come back by themselves
nb_start_netbumpd
after_restart=$(rules | cut -d' ' -f1-3)
assert_true "step 3: after the restart the rules are those acknowledged before the kill ([${after_restart//$'\n'/; }])" \
        test "$after_restart" = "$before_kill"
assert_classes "step 3"
assert_true "step 3: sleep $P is still in its rule's cgroup" _in_cgroup "$P" "$pid_rule_cg"
bps=$(measure_goodput -g limited -t 3 "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 3)"
assert_within "$bps" "$expected" "$TOL" "step 3: cgroup up v4 under the restored rule"
bps=$(measure_goodput -g limited -t 3 -R "$NB_B4" 5201) || nb_fail "iperf3 client failed (step 3)"
assert_within "$bps" "$expected" "$TOL" "step 3: cgroup down v4 under the restored rule"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "step 3: exit status 0 after SIGTERM (got $NB_DAEMON_STATUS)" test "$NB_DAEMON_STATUS" = 0
assert_true "step 3: after SIGTERM sleep $P is back in $pidcg (is in $(proc_cgroup "$P"))" _in_cgroup "$P" "$pidcg"
assert_true "step 3: no pid-* cgroup left ($(pid_dirs))" test -z "$(pid_dirs)"
host_snapshot "$snap.after-restart"
assert_same_snapshot "$snap.before" "$snap.after-restart" "step 3: nothing left after restart + SIGTERM"

# --- 4. a class the kernel refuses
nb_start_netbumpd
# the class id the next rule gets: the lowest free one, which this one takes and gives back
nbctl_ok set "$limited" "$RATE"
cls=$(rules | awk '{ print $4 }')
minor=${cls#6e62:}
nbctl_ok unset "$limited"
# someone else's class on our HTB, with a qdisc of handle MINOR: under it
tc -n "$NB_NS_A" class add dev "$NB_IF_A" parent 6e62: classid 6e62:fff0 htb rate 1mbit
tc -n "$NB_NS_A" qdisc add dev "$NB_IF_A" parent 6e62:fff0 handle "$minor": pfifo
# what the kernel says to the same request from tc(8): a leaf of handle MINOR: under a class
tc -n "$NB_NS_A" class add dev "$NB_IF_A" parent 6e62: classid 6e62:fff1 htb rate 1mbit
kmsg=$(tc -n "$NB_NS_A" qdisc replace dev "$NB_IF_A" parent 6e62:fff1 handle "$minor": bfifo limit 100000 2>&1 |
        sed -n 's/^Error: \(.*\)\.$/\1/p') || :
tc -n "$NB_NS_A" class del dev "$NB_IF_A" classid 6e62:fff1
[[ -n $kmsg ]] || nb_fail "step 4: tc(8) got no message from the kernel for the conflicting leaf"
rc=0
err=$(nbctl set "$limited" "$RATE" 2>&1 >/dev/null) || rc=$?
if ((rc == 1)) && [[ $err == *"$kmsg"* && $err == *"class $cls on $NB_IF_A"* ]]; then
        nb_say "step 4: set $limited refused with the kernel's message ('$kmsg'): '$err': ok"
else
        nb_record_failure "step 4: set $limited with handle $minor: taken: exit $rc, '$err' (expected 1 naming class $cls on $NB_IF_A and the kernel's '$kmsg')"
fi
assert_true "step 4: no rule listed after the refusal ($(rules))" test -z "$(rules)"
assert_true "step 4: no class $cls left on $NB_IF_A or its IFB" \
        eval '! grep -q "^$cls " <<<"$(classes "$NB_IF_A"; classes "$(ifb_of_a)")"'
tc -n "$NB_NS_A" class del dev "$NB_IF_A" classid 6e62:fff0
nbctl_ok set "$limited" "$RATE"
assert_classes "step 4: once the foreign qdisc is gone"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
host_snapshot "$snap.after-refusal"
assert_same_snapshot "$snap.before" "$snap.after-refusal" "step 4: nothing left after a refused class + SIGTERM"

# --- 5. a state directory that takes no writes
# refused_unrecorded MSG ARGS...: netbumpctl ARGS exits 1 naming the state directory, and the list
# and the classes are as before
refused_unrecorded() {
        local msg=$1 rc=0 err before after
        shift
        before=$(rules)
        err=$(nbctl "$@" 2>&1 >/dev/null) || rc=$?
        after=$(rules)
        if ((rc == 1)) && [[ $err == *"state directory $NB_STATE"* ]]; then
                nb_say "step 5: $msg refused: '$err': ok"
        else
                nb_record_failure "step 5: $msg (netbumpctl $*): exit $rc, '$err' (expected 1 naming the state directory $NB_STATE)"
        fi
        assert_true "step 5: after the refused $msg the list is unchanged ([${after//$'\n'/; }])" test "$before" = "$after"
        assert_classes "step 5: after the refused $msg"
}
nb_start_netbumpd
nbctl_ok set "$limited" "$RATE"
if chattr +i "$NB_STATE/netbumpd.state" "$NB_STATE" 2>/dev/null; then
        # writable again before the teardown removes it, however the test ends; set +e: under
        # errexit the failed status handed on by (exit) would end the trap before the teardown
        trap 'rc_=$?; set +e; chattr -i "$NB_STATE" "$NB_STATE/netbumpd.state" 2>/dev/null; (exit $rc_); _nb_teardown' EXIT
        refused_unrecorded "new rule" set "cgroup:$(cgroup_rel other)" 4mbit
        refused_unrecorded "change" set "$limited" 2mbit
        refused_unrecorded "unset" unset "$limited"
        refused_unrecorded "pid: rule" set "pid:$P" "$PID_RATE"
        assert_true "step 5: sleep $P stays in $pidcg (is in $(proc_cgroup "$P"))" _in_cgroup "$P" "$pidcg"
        assert_true "step 5: no pid-* cgroup left ($(pid_dirs))" test -z "$(pid_dirs)"
        chattr -i "$NB_STATE" "$NB_STATE/netbumpd.state"
        nbctl_ok set "cgroup:$(cgroup_rel other)" 4mbit
        assert_classes "step 5: the state directory writable again"
else
        nb_say "step 5: skipped: chattr +i does not work on $NB_STATE"
fi
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
host_snapshot "$snap.after-unwritable"
assert_same_snapshot "$snap.before" "$snap.after-unwritable" "step 5: nothing left after refused changes + SIGTERM"

# --- 6. netbump's clsact, with someone else's filter in it across a kill
# a filter of someone else's on ingress: it matches only an ethertype nobody sends here, so
# netbump's filter (a later priority) still sees every packet
FOREIGN_FILTER=(ingress prio 10 protocol 0x88b5 u32 match u32 0 0 classid 1:1)
ingress_filters() {
        tc -n "$NB_NS_A" filter show dev "$NB_IF_A" ingress |
                awk '$1 == "filter" && / handle | fh / { for (i = 1; i < NF; i++) if ($i == "pref") { print $(i + 1), $(i + 2); break } }' |
                sort -u | paste -sd' ' -
}
has_clsact() { grep -q '^qdisc clsact ' <<<"$(tc -n "$NB_NS_A" qdisc show dev "$NB_IF_A")"; }
nb_start_netbumpd
tc -n "$NB_NS_A" filter add dev "$NB_IF_A" "${FOREIGN_FILTER[@]}"
nb_kill_netbumpd
nb_start_netbumpd
assert_true "step 6: after the restart both filters are on $NB_IF_A ingress ($(ingress_filters))" \
        test "$(ingress_filters)" = "10 u32 $NB_FILTER_PRIO bpf"
tc -n "$NB_NS_A" filter del dev "$NB_IF_A" ingress prio 10
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
assert_true "step 6: the clsact netbumpd made is gone after restart + SIGTERM" eval '! has_clsact'
host_snapshot "$snap.after-shared-clsact"
assert_same_snapshot "$snap.before" "$snap.after-shared-clsact" \
        "step 6: nothing left after a kill, a restart on netbump's clsact shared with a filter, + SIGTERM"

# --- 7. someone else's clsact, there before netbumpd starts
# (one step 6 left, its failure recorded, would make the add fail)
tc -n "$NB_NS_A" qdisc del dev "$NB_IF_A" clsact 2>/dev/null || :
tc -n "$NB_NS_A" qdisc add dev "$NB_IF_A" clsact
tc -n "$NB_NS_A" filter add dev "$NB_IF_A" "${FOREIGN_FILTER[@]}"
host_snapshot "$snap.foreign-clsact"
nb_start_netbumpd
assert_true "step 7: netbump's filter joins theirs on $NB_IF_A ingress ($(ingress_filters))" \
        test "$(ingress_filters)" = "10 u32 $NB_FILTER_PRIO bpf"
nb_kill_netbumpd
nb_start_netbumpd
assert_true "step 7: after the restart both filters are on $NB_IF_A ingress ($(ingress_filters))" \
        test "$(ingress_filters)" = "10 u32 $NB_FILTER_PRIO bpf"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not exit within 10 s of SIGTERM"
host_snapshot "$snap.after-foreign-clsact"
assert_same_snapshot "$snap.foreign-clsact" "$snap.after-foreign-clsact" \
        "step 7: someone else's clsact and filter stay, netbump's filter is gone after start, kill, restart + SIGTERM"
tc -n "$NB_NS_A" qdisc del dev "$NB_IF_A" clsact

nb_finish
