#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Root's limit on a user is a hard cap, whatever the user does with its own rules (uid 1000,
# real uploads: the whole transfer, as the receiver counts it, at most 10% above root's 8mbit; no
# half second on the wire above 1.5 x (for several flows together no second)):
#   1. root limits a cgroup the user's process runs in; the user puts its own pid rule on the
#      process (which moves it into a cgroup of the rule's own) and then asks for 1gbit: refused
#      (would-raise, judged by where the process came from, not where the rule put it), and the
#      rule's class is inside root's; the same under root's pid: rule, through a child's own rule;
#   2. under root's user@1000, four pid rules of the user's own at 8mbit each: together within
#      root's 8mbit (each is inside root's class, not beside it);
#   3. the user's pid rule at 1gbit first, root's user@1000 and cgroup rules later: root's rules
#      enclose the older one at once (list names root's rule as its parent) and hold the transfer;
#   4. a user's pid rule keeps its process inside the cgroup it was in (its own cgroup is made
#      there: every cgroup around the process, root's rules and cgroup.kill, still has it), and
#      unset puts it back; a process root's pid rule moved out of a cgroup the user then removes
#      goes to the nearest cgroup left inside the daemon's --cgroup-root on unset, never outside
#      it (where no rule would see it); root's user@1000 holds both throughout.

source "$(dirname "$0")/lib.sh"

USER_ID=1000
# Local TCP over a veth (a minimum RTT far below 512 us) hands down 64 KiB aggregates whatever
# its rate, and HTB lets one out whole: the wire carries the limit in 64 KiB steps, one every
# 0.26 s at 2mbit (up to 3 of them, 1.6 x, in some half second), one every 0.07 s at 8mbit
# (up to 1.25 x). The cap is 8mbit so that a half second measures the limit, not the steps.
CAP=8mbit

nb_require_daemon
getent passwd "$USER_ID" >/dev/null || nb_skip "no user with uid $USER_ID"
nb_setup
chmod 0755 "$NB_TMP"
out=$NB_TMP/out
mkdir -m 1777 "$out"   # for what uid 1000 writes itself
nb_start_iperf_servers 5201 5202 5203 5204 5205 5206
for cg in R/ucg x y D; do make_cgroup "$cg" >/dev/null; done
# delegated as systemd does for user@UID.service: ucg under root's R, and D with its subtree
for d in "$NB_CGROOT/R/ucg" "$NB_CGROOT/D"; do
        chown "$USER_ID:$USER_ID" "$d" "$d/cgroup.procs" "$d/cgroup.subtree_control" "$d/cgroup.threads"
done
nb_start_netbumpd

# Everything uid 1000 uploads leaves through $NB_IF_A's root HTB, sampled every 100 ms: the worst
# windows are taken there. A receiver's own intervals are no measure of them: after a loss it
# hands a half second's backlog of reordered segments to iperf3 at once (a burst to the
# application of 1.5 x the limit with the link at the limit throughout).
WIRE=$NB_TMP/wire
tc_sampler_start wire_sampler "$WIRE" 150 "$NB_IF_A"

ctl() { run_as_uid "$USER_ID" timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" "$@"; }
parent_of() { nbctl --json list | jq -r --arg t "$1" '.rules[] | select(.target == $t) | .parent // "none"'; }
limit=$(rate_to_bps "$CAP")
declare -A UP_JSON UP_T0

# upload_start VAR CG PORT SECS: an upload of uid 1000 in cgroup CG (its iperf3 is VAR's PID)
upload_start() {
        local __v=$1 json=$NB_TMP/up-$3.json pid
        _nb_argv -g "$2" -u "$USER_ID"
        "${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p "$3" -t "$4" -i 0.5 -J --get-server-output \
                --connect-timeout 3000 >"$json" 2>"$json.err" &
        pid=$!
        nb_track_pid "$pid"
        UP_JSON[$pid]=$json
        UP_T0[$pid]=$(nb_now)
        nb_wait_until 5 eval '[[ $(cat /proc/'"$pid"'/comm 2>/dev/null) == iperf3 ]]' ||
                nb_fail "the upload on port $3 did not start"
        printf -v "$__v" '%s' "$pid"
}

# wire_worst T0 T_END [SPAN]: the worst SPAN (half second) on the wire from T0 + 1 s on
wire_worst() {
        tc_qdisc_series "$WIRE" "$NB_IF_A" 6e62: >"$WIRE.series"
        series_worst "$WIRE.series" "$@"
}

# upload_result PID FROM: waits for the upload (in this shell: it is this shell's child); sets bps
# to the receiver's bits/s from second FROM on and worst to the worst half second on the wire
# from then until it ended
upload_result() {
        local json=${UP_JSON[$1]} out
        wait "$1" || { nb_say "iperf3 failed: $(head -c 400 "$json.err")"; return 1; }
        # (a receiver's last interval may be a stub of a few ms, where any packet looks like a
        # burst: it counts for its bytes, not as a half second)
        bps=$(receiver_intervals "$json" | awk -v f="$2" '$1 >= f { b += ($2 - $1) * $3; t += $2 - $1 }
                                                           END { if (t == 0) exit 1; printf "%.0f\n", b / t }') ||
                return 1
        worst=$(wire_worst "$(nb_at "${UP_T0[$1]}" "$(($2 - 1))")" "$(nb_now)")
}

# check_cap MSG BPS WORST [SPAN]: BPS within 10% above root's cap, the worst SPAN (half second)
# below 1.5 x
check_cap() {
        assert_below "$2" "$(awk -v l="$limit" 'BEGIN { print 1.1 * l }')" "$1: the transfer"
        assert_below "$3" "$(awk -v l="$limit" 'BEGIN { print 1.5 * l }')" "$1: its worst ${4:-half second}"
}

# refused MSG WORD CMD...: the user's netbumpctl CMD fails naming WORD
refused() {
        local msg=$1 word=$2 out rc=0
        shift 2
        out=$(ctl "$@" 2>&1) || rc=$?
        if ((rc != 0)) && [[ $out == *"$word"* ]]; then
                nb_say "$msg: refused ($out): ok"
        else
                nb_record_failure "$msg: exit $rc, expected a refusal naming '$word': $out"
        fi
}

# --- 1. the user's pid rule inside root's cgroup rule, then raised
nbctl_ok set "cgroup:$(cgroup_rel R/ucg)" "$CAP"
upload_start P R/ucg 5201 8
sleep 1
ctl set "pid:$P" "$CAP" >/dev/null || nb_record_failure "case 1: uid $USER_ID may limit its own process"
refused "case 1: uid $USER_ID raising its pid rule past root's cgroup rule" would-raise set "pid:$P" 1gbit
assert_true "case 1: pid:$P nests in root's rule" test "$(parent_of "pid:$P")" = "cgroup:$(cgroup_rel R/ucg)"
upload_result "$P" 1 || nb_fail "case 1: no upload"
check_cap "case 1" "$bps" "$worst"

# ... and under root's pid: rule on a shell, through the user's own rule on the child it starts
_nb_argv -g x -u "$USER_ID"
"${_NB_ARGV[@]}" /bin/sh -c 'sleep 1; iperf3 -c "$1" -p 5202 -t 8 -i 0.5 -J --get-server-output >"$2" 2>"$2.err"; true' \
        sh "$NB_B4" "$out/up-5202.json" &
X=$!
nb_track_pid "$X"
UP_JSON[$X]=$out/up-5202.json
UP_T0[$X]=$(nb_now)
# in its cgroup and uid 1000 (setpriv ran) before root's rule moves it
nb_wait_until 5 eval '[[ $(awk "/^Uid:/ { print \$2 }" /proc/'"$X"'/status 2>/dev/null) == '"$USER_ID"' ]]' ||
        nb_fail "case 1: the shell did not start"
nbctl_ok set "pid:$X" "$CAP"
C=$(nb_child_pid "$X" iperf3) || nb_fail "case 1: the shell started no upload"
sleep 1
refused "case 1: uid $USER_ID raising its child past root's pid:$X" would-raise set "pid:$C" 1gbit
upload_result "$X" 1 || nb_fail "case 1: no upload under root's pid rule"
check_cap "case 1, root's pid rule" "$bps" "$worst"
nbctl unset "pid:$X" >/dev/null 2>&1 || :
nbctl_ok unset "cgroup:$(cgroup_rel R/ucg)"

# --- 2. several own rules under root's user rule
nbctl_ok set "user@$USER_ID" "$CAP"
pids=()
for port in 5203 5204 5205 5206; do
        upload_start p x "$port" 8
        pids+=("$p")
done
sleep 1
for p in "${pids[@]}"; do
        ctl set "pid:$p" "$CAP" >/dev/null || nb_record_failure "case 2: uid $USER_ID may limit its process $p"
        assert_true "case 2: pid:$p nests in user@$USER_ID" test "$(parent_of "pid:$p")" = "user@$USER_ID"
done
# the four flows from the first second on (the pid rules come then): their receivers' bytes
# together, and the worst whole second on the wire until the last ended
t2=${UP_T0[${pids[0]}]}
total=0
for p in "${pids[@]}"; do
        upload_result "$p" 1 || nb_fail "case 2: an upload failed"
        total=$((total + bps))
done
worst_sum=$(wire_worst "$t2" "$(nb_now)" 1)
check_cap "case 2: four own rules of $CAP together" "$total" "$worst_sum" second

# --- 3. the user's rule first, root's later
nbctl_ok unset "user@$USER_ID"
upload_start P y 5201 10
sleep 0.5
ctl set "pid:$P" 1gbit >/dev/null || nb_record_failure "case 3: uid $USER_ID may set 1gbit with no rule of root's around"
sleep 1.5
nbctl_ok set "user@$USER_ID" "$CAP"
nbctl_ok set "cgroup:$(cgroup_rel y)" "$CAP"
assert_true "case 3: pid:$P is inside root's cgroup rule now" test "$(parent_of "pid:$P")" = "cgroup:$(cgroup_rel y)"
upload_result "$P" 4 || nb_fail "case 3: no upload"
check_cap "case 3: from a second after root's rules" "$bps" "$worst"
nbctl_ok unset "cgroup:$(cgroup_rel y)"

# --- 4. where a process goes: the user's rule keeps it inside its cgroup; a process root's rule
# moved out of a cgroup that is then removed comes back inside the daemon's cgroup root
run_as_uid "$USER_ID" mkdir "$NB_CGROOT/D/ucg" "$NB_CGROOT/D/ucg2" ||
        nb_fail "uid $USER_ID cannot make cgroups in its delegated D"
upload_start P D/ucg 5202 10
sleep 0.5
ctl set "pid:$P" 1mbit >/dev/null || nb_record_failure "case 4: uid $USER_ID may limit its own process"
assert_true "case 4: the user's pid rule kept $P inside its cgroup D/ucg" \
        test "$(nb_proc_cgroup "$P")" = "$(cgroup_rel D/ucg)/netbump-pid-$P"
assert_true "case 4: ... which the user cannot remove under it" \
        eval '! run_as_uid "$USER_ID" rmdir "$NB_CGROOT/D/ucg" 2>/dev/null'
ctl unset "pid:$P" >/dev/null || nb_record_failure "case 4: uid $USER_ID may unset its own rule"
assert_true "case 4: after unset, $P is back in D/ucg" test "$(nb_proc_cgroup "$P")" = "$(cgroup_rel D/ucg)"
upload_result "$P" 2 || nb_fail "case 4: no upload"
check_cap "case 4: before, during and after the user's rule, under root's user@$USER_ID" "$bps" "$worst"

upload_start P D/ucg2 5203 10
sleep 0.5
nbctl_ok set "pid:$P" 1mbit
nb_wait_until 5 eval '[[ $(nb_proc_cgroup '"$P"') != */D/ucg2 ]]' || nb_record_failure "case 4: pid:$P did not move"
run_as_uid "$USER_ID" rmdir "$NB_CGROOT/D/ucg2" ||
        nb_record_failure "case 4: uid $USER_ID could not remove its cgroup root's rule had emptied"
nbctl_ok unset "pid:$P"
cg=$(nb_proc_cgroup "$P")
assert_true "case 4: after unset, $P is in $cg, inside the cgroup root $(cgroup_rel "$NB_CGROOT")" \
        test "$cg" = "$(cgroup_rel D)"
upload_result "$P" 2 || nb_fail "case 4: no upload"
check_cap "case 4: before and after root's pid rule, under root's user@$USER_ID" "$bps" "$worst"

tc_sampler_stop "$wire_sampler"
nb_finish
