#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Who may do what through the 0666 socket (netbumpd --max-rules-per-user 3):
#   - uid 1000 may set, change and unset rules on what is its own: user@1000, pid: of its own
#     process, a cgroup delegated to it (chowned to 1000), sock: of its own socket;
#   - it may not touch what is not: user@0, user@1001, pid:1, a root-owned cgroup, root's socket
#     (by inode and by PID:FD) -> "not-owner";
#   - nor change or unset a rule root made on its own user -> "not-owner";
#   - nor create a rule that would lift or raise root's limit on it -> "would-raise" (lowering
#     is allowed): on its process, its delegated cgroup or its socket under root's user@1000, on
#     its socket in a cgroup root limited; root's set on a rule uid 1000 made takes it over;
#   - its list shows its own rules and the ones that apply to it whoever made them (root's on
#     user@1000, on its socket, on a cgroup its process runs in, on its delegated cgroup), not
#     root's rule on another user or on a cgroup none of its processes is in;
#   - its 4th rule is refused -> "quota".
# Every refusal exits 1 naming the reason word, leaves root's `list` unchanged and is logged by
# the daemon. Root too may not name a process or socket outside the daemon's --cgroup-root: the
# error names the cgroup and the root, the process stays where it is. uid 1000's own pid: rule
# limits its iperf3 upload (within 10%). Last, rules uid 1000 made under root's limit come back
# after SIGKILL and a restart with a lower quota, although root lowered that limit meanwhile
# (asking again is refused: would-raise), still uid 1000's.

source "$(dirname "$0")/lib.sh"

USER_ID=1000
OTHER_ID=1001
RATE=8mbit
TOL=10

nb_require_daemon
# the system's python3: one under root's home (pyenv) is not for uid 1000
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
getent passwd "$USER_ID" >/dev/null || nb_skip "no user with uid $USER_ID"
nb_setup
# the socket is 0666, but the directory holding it is mktemp's 0700
chmod 0755 "$NB_TMP"
nb_start_iperf_servers 5201
deleg=$(make_cgroup deleg)
deleg2=$(make_cgroup deleg2)
make_cgroup rootcg >/dev/null
# root's, inside the daemon's root: where uid 1000's processes run
make_cgroup ucg >/dev/null
# delegation as systemd does it for user@UID.service: the directory and its interface files
for d in "$deleg" "$deleg2"; do
        chown "$USER_ID:$USER_ID" "$d" "$d/cgroup.procs" "$d/cgroup.subtree_control" "$d/cgroup.threads"
done
deleg_t="cgroup:$(cgroup_rel deleg)"
deleg2_t="cgroup:$(cgroup_rel deleg2)"
rootcg_t="cgroup:$(cgroup_rel rootcg)"
ucg_t="cgroup:$(cgroup_rel ucg)"
nb_start_netbumpd --max-rules-per-user 3
LOG=$NB_TMP/netbumpd.log

# proc_cgroup PID: the cgroup v2 path of PID ("/a/b")
proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }

# holder UID OUTFILE [CG]: a python3 process in ns a (as UID, in cgroup CG) holding a bound UDP
# socket; writes "PID FD INODE" to OUTFILE once the socket is there; sleeps 120 s at most
holder() {
        local uid=$1 out=$2 pid
        if [[ -n ${3:-} ]]; then _nb_argv -g "$3" -u "$uid"; else _nb_argv -u "$uid"; fi
        # shellcheck disable=SC2016
        "${_NB_ARGV[@]}" "$PY" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {s.fileno()} {os.fstat(s.fileno()).st_ino}\n")
os.rename(tmp, sys.argv[1])
time.sleep(120)
' "$out" &
        pid=$!
        nb_track_pid "$pid"
        nb_wait_until 5 test -s "$out" || nb_fail "holder as uid $uid did not start"
}

# uid 1000's files go where it may write
install -d -o "$USER_ID" -g "$USER_ID" "$NB_TMP/u"
holder "$USER_ID" "$NB_TMP/u/holder" ucg
read -r upid ufd uino <"$NB_TMP/u/holder"
holder "$USER_ID" "$NB_TMP/u/holder-deleg" deleg
read -r dpid _ dino <"$NB_TMP/u/holder-deleg"
# outside the daemon's root: in the cgroup this test started in
holder 0 "$NB_TMP/root-holder"
read -r rpid rfd rino <"$NB_TMP/root-holder"
_nb_argv -g ucg -u "$USER_ID"
"${_NB_ARGV[@]}" sleep 120 &
upid2=$!
nb_track_pid "$upid2"
nb_say "uid $USER_ID: python3 $upid in ucg (UDP socket fd $ufd, inode $uino), python3 $dpid in deleg (inode $dino), sleep $upid2 in ucg"
nb_say "root: python3 $rpid (fd $rfd, inode $rino) in $(proc_cgroup "$rpid"), outside the daemon's root"

# ctl ARGS...: netbumpctl as uid 1000 (in ns a, bounded in time)
ctl() {
        run_as_uid "$USER_ID" timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" "$@"
}

# rules: what root sees, without counters
rules() { nbctl --json list | jq -c '[.rules[] | {target, up, down, owner, class}] | sort_by(.target)'; }

# rule_field TARGET FIELD: the field of root's view of the rule on TARGET ("" if none)
rule_field() { nbctl --json list | jq -r --arg t "$1" '.rules[] | select(.target == $t) | .'"$2"; }

# may DESCRIPTION ARGS...: uid 1000's netbumpctl ARGS succeeds
may() {
        local what=$1 out rc=0
        shift
        out=$(ctl "$@" 2>&1) || rc=$?
        if ((rc == 0)); then
                nb_say "uid $USER_ID may $what (netbumpctl $*): ok"
        else
                nb_record_failure "uid $USER_ID may $what, but netbumpctl $* exited $rc: $out"
        fi
}

# may_not WORD DESCRIPTION ARGS...: uid 1000's netbumpctl ARGS exits 1, stderr names WORD, root's
# list is unchanged, and the daemon logged the refusal with WORD
may_not() {
        local word=$1 what=$2 rc=0 err before after logged
        shift 2
        before=$(rules)
        logged=$(grep -c "^.*Refused .* from uid $USER_ID: $word" "$LOG" || :)
        err=$(ctl "$@" 2>&1 >/dev/null) || rc=$?
        after=$(rules)
        if ((rc != 1)); then
                nb_record_failure "uid $USER_ID may not $what: netbumpctl $* exited $rc, expected 1 (stderr: $err)"
        elif [[ $err != *"$word"* ]]; then
                nb_record_failure "uid $USER_ID may not $what: netbumpctl $*: error does not name '$word': $err"
        else
                nb_say "uid $USER_ID may not $what (netbumpctl $*): exit 1, '$err': ok"
        fi
        [[ $before == "$after" ]] ||
                nb_record_failure "uid $USER_ID may not $what: root's list changed: before $before, after $after"
        # the daemon logs before it answers: the line is there once netbumpctl returned
        if (($(grep -c "^.*Refused .* from uid $USER_ID: $word" "$LOG" || :) > logged)); then
                nb_say "    logged: $(grep "Refused .* from uid $USER_ID: $word" "$LOG" | tail -n 1)"
        else
                nb_record_failure "uid $USER_ID may not $what: no 'Refused ... from uid $USER_ID: $word' line in the daemon log"
        fi
}

# assert_rule TARGET UP OWNER MSG: root's list has TARGET with that upload rate and owner
assert_rule() {
        local got
        got=$(nbctl --json list | jq -r --arg t "$1" '.rules[] | select(.target == $t) | "\(.up) \(.owner)"')
        assert_true "$4: $1 is up $2 owner $3 (is '${got:-absent}')" test "$got" = "$2 $3"
}

assert_no_rule() {
        local got
        got=$(nbctl --json list | jq -r --arg t "$1" '.rules[] | select(.target == $t) | .target')
        assert_true "$2: no rule on $1 (found '${got}')" test -z "$got"
}

# --- 1. what is its own: set, change, unset ------------------------------------------------
for t in "user@$USER_ID" "pid:$upid" "$deleg_t" "sock:$uino"; do
        may "set $t" set "$t" 5mbit
        assert_rule "$t" 5000000 "$USER_ID" "after uid $USER_ID's set"
        may "change $t" set "$t" 4mbit
        assert_rule "$t" 4000000 "$USER_ID" "after uid $USER_ID's change"
        may "unset $t" unset "$t"
        assert_no_rule "$t" "after uid $USER_ID's unset"
done
# sock:PID:FD of its own process names the same socket
may "set sock:$upid:$ufd" set "sock:$upid:$ufd" 5mbit
assert_rule "sock:$uino" 5000000 "$USER_ID" "after uid $USER_ID's set of sock:$upid:$ufd"
may "unset sock:$upid:$ufd" unset "sock:$upid:$ufd"
assert_no_rule "sock:$uino" "after uid $USER_ID's unset of sock:$upid:$ufd"

# --- 2. what is not its own --------------------------------------------------------------
may_not not-owner "limit user@0" set user@0 5mbit
may_not not-owner "limit user@$OTHER_ID" set "user@$OTHER_ID" 5mbit
may_not not-owner "limit pid:1" set pid:1 5mbit
may_not not-owner "limit root's process" set "pid:$rpid" 5mbit
may_not not-owner "limit a root-owned cgroup" set "$rootcg_t" 5mbit
may_not not-owner "limit root's socket by inode" set "sock:$rino" 5mbit
may_not not-owner "limit root's socket by descriptor" set "sock:$rpid:$rfd" 5mbit

# root's view: no process or socket from outside the daemon's cgroup root
# outside_root TARGET PID: root's `set TARGET` exits 1 naming PID's cgroup and the daemon's root;
# root's list is unchanged and PID stays in its cgroup
outside_root() {
        local t=$1 pid=$2 rc=0 err cg before after
        cg=$(proc_cgroup "$pid")
        before=$(rules)
        err=$(nbctl set "$t" 5mbit 2>&1 >/dev/null) || rc=$?
        after=$(rules)
        if ((rc == 1)) && [[ $err == *"cgroup $cg,"* && $err == *"outside the cgroup root $NB_CGROOT_REL "* ]]; then
                nb_say "root may not set $t (in $cg, outside $NB_CGROOT_REL): exit 1, '$err': ok"
        else
                nb_record_failure "root's set $t (in $cg, outside $NB_CGROOT_REL): exit $rc, '$err' (expected 1, naming $cg and $NB_CGROOT_REL)"
        fi
        [[ $before == "$after" ]] || nb_record_failure "root's refused set $t changed the list: before $before, after $after"
        assert_true "$t: process $pid still in $cg" test "$(proc_cgroup "$pid")" = "$cg"
}
outside_root "pid:$rpid" "$rpid"
outside_root "sock:$rino" "$rpid"
outside_root "sock:$rpid:$rfd" "$rpid"
if (($(grep -c "Refused Set .* from uid 0: .*outside the cgroup root" "$LOG" || :) >= 3)); then
        nb_say "    logged: $(grep "Refused Set .* from uid 0: .*outside the cgroup root" "$LOG" | tail -n 1)"
else
        nb_record_failure "root's refusals outside the cgroup root are not all in the daemon log"
fi

# --- 3. root's rule on uid 1000 ----------------------------------------------------------
nbctl_ok set "user@$USER_ID" 3mbit
may_not not-owner "raise root's rule on user@$USER_ID" set "user@$USER_ID" 10mbit
may_not not-owner "lift one side of root's rule on user@$USER_ID" set "user@$USER_ID" --down unlimited
may_not not-owner "unset root's rule on user@$USER_ID" unset "user@$USER_ID"
assert_rule "user@$USER_ID" 3000000 0 "root's rule stays"

# --- 4. a rule of its own under root's -----------------------------------------------------
may_not would-raise "give its process more than root's 3mbit" set "pid:$upid" 10mbit
may_not would-raise "lift the download of its process under root's 3mbit" set "pid:$upid" --up 2mbit
may_not would-raise "give its delegated cgroup more than root's 3mbit on user@$USER_ID" set "$deleg_t" 10mbit
may_not would-raise "give its socket more than root's 3mbit on user@$USER_ID" set "sock:$uino" 10mbit
may "lower its process to 2mbit under root's 3mbit" set "pid:$upid" 2mbit
assert_rule "pid:$upid" 2000000 "$USER_ID" "a lower rule of uid $USER_ID's own"
may_not would-raise "raise its own lower rule past root's 3mbit" set "pid:$upid" 10mbit
may "unset its own lower rule" unset "pid:$upid"

# --- 5. root takes over a rule uid 1000 made ------------------------------------------------
may "set its delegated cgroup to 2mbit" set "$deleg_t" 2mbit
assert_rule "$deleg_t" 2000000 "$USER_ID" "uid $USER_ID's rule"
nbctl_ok set "$deleg_t" 1mbit
assert_rule "$deleg_t" 1000000 0 "root's set took the rule over"
may_not not-owner "change the rule root took over" set "$deleg_t" 2mbit
may_not not-owner "unset the rule root took over" unset "$deleg_t"
# a socket rule beats a cgroup rule: one on a socket in that cgroup may not give it more
may_not would-raise "give its socket in the cgroup root limited to 1mbit 2mbit" set "sock:$dino" 2mbit
# (if it was let through, the rest of the test must not count it)
nbctl unset "sock:$dino" >/dev/null 2>&1 || :

# --- 6. what its list shows --------------------------------------------------------------
# not its: root's rules on another user and on a cgroup none of its processes is in
nbctl_ok set "user@$OTHER_ID" 1mbit
nbctl_ok set "$rootcg_t" 1mbit
# its: root's rules on the cgroup its processes run in and on one of its sockets (besides root's
# user@1000 and the delegated cgroup root took over, above)
nbctl_ok set "$ucg_t" 5mbit
nbctl_ok set "sock:$dino" 1mbit
may "set its socket to 1mbit" set "sock:$uino" 1mbit
mine=$(ctl --json list | jq -c '[.rules[].target] | sort')
want=$(jq -cn --arg a "user@$USER_ID" --arg b "$deleg_t" --arg c "sock:$uino" --arg d "$ucg_t" \
        --arg e "sock:$dino" '[$a, $b, $c, $d, $e] | sort')
all=$(nbctl --json list | jq -c '[.rules[].target] | sort')
assert_true "uid $USER_ID's list is $want (its own and what applies to it; root sees $all): is $mine" \
        test "$mine" = "$want"
mine_for=$(ctl --json list "user@$OTHER_ID" | jq -r '.applies // "none"')
assert_true "uid $USER_ID's 'list user@$OTHER_ID' names no rule (says $mine_for)" test "$mine_for" = none
mine_for=$(ctl --json list "sock:$dino" | jq -r '.applies // "none"')
assert_true "uid $USER_ID's 'list sock:$dino' names root's rule on its socket (says $mine_for)" \
        test "$mine_for" = "sock:$dino"
mine_for=$(ctl --json list "pid:$upid" | jq -r '.applies // "none"')
assert_true "uid $USER_ID's 'list pid:$upid' names root's rule on ucg (says $mine_for)" test "$mine_for" = "$ucg_t"
may_not not-owner "unset root's rule on its socket" unset "sock:$dino"
may "unset its socket rule" unset "sock:$uino"
nbctl_ok unset "sock:$dino"
nbctl_ok unset "$ucg_t"

# --- 7. quota: 3 rules per user ----------------------------------------------------------
may "make rule 1 of 3" set "pid:$upid" 2mbit
may "make rule 2 of 3" set "sock:$uino" 2mbit
may "make rule 3 of 3" set "$deleg2_t" 2mbit
may_not quota "make a 4th rule" set "pid:$upid2" 1mbit
may "change one of its 3 rules" set "$deleg2_t" 1mbit
for t in "pid:$upid" "sock:$uino" "$deleg2_t"; do
        may "unset $t" unset "$t"
done
may "make a rule once under quota again" set "pid:$upid2" 1mbit
may "unset it" unset "pid:$upid2"

# --- 8. its own pid: rule limits its own upload ---------------------------------------------
nbctl_ok unset "user@$USER_ID"
flag=$NB_TMP/go
json=$NB_TMP/u/iperf.json
_nb_argv -g ucg -u "$USER_ID"
# the shell waits for the flag, then becomes iperf3 (same PID): the rule is there from its start
# shellcheck disable=SC2016
(exec timeout -k 5 40 "${_NB_ARGV[@]}" sh -c \
        'i=0; while [ ! -e "$0" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; exec "$@"' "$flag" \
        iperf3 -c "$NB_B4" -p 5201 -t 4 -O 1 -J --get-server-output --connect-timeout 3000 \
        >"$json" 2>"$json.err") &
tpid=$!
nb_track_pid "$tpid"
NB_BG_JSON[$tpid]=$json
ipid=
for ((i = 0; i < 100; i++)); do
        ipid=$(pgrep -u "$USER_ID" -P "$tpid" -x sh || :)
        [[ -n $ipid ]] && break
        sleep 0.05
done
[[ -n $ipid ]] || nb_fail "the waiting shell of uid $USER_ID did not start"
may "limit its own iperf3 client (pid:$ipid) to $RATE" set "pid:$ipid" "$RATE"
assert_rule "pid:$ipid" "$(rate_to_bps "$RATE")" "$USER_ID" "uid $USER_ID's rule on its client"
touch "$flag"
iperf_client_wait "$tpid" || nb_fail "iperf3 client of uid $USER_ID failed"
assert_within "$(goodput_from_json "$json")" "$(expected_goodput "$RATE" 4)" "$TOL" \
        "upload of uid $USER_ID's iperf3 under its own pid: rule"

# --- 9. what was acknowledged comes back after a crash, as it was granted -------------------
nbctl_ok set "user@$USER_ID" 3mbit
may "lower its delegated cgroup to 2mbit under root's 3mbit" set "$deleg2_t" 2mbit
may "lower its process to 2mbit under root's 3mbit" set "pid:$upid" 2mbit
nbctl_ok set "user@$USER_ID" 1mbit
may_not would-raise "set its delegated cgroup to 2mbit under root's 1mbit now" set "$deleg2_t" 2mbit
# quota 1: uid 1000 holds 2 rules, more than asking now would give it
nb_stop_netbumpd KILL
nb_start_netbumpd --max-rules-per-user 1
assert_rule "$deleg2_t" 2000000 "$USER_ID" "restored after SIGKILL (would-raise and over quota if asked now)"
assert_rule "pid:$upid" 2000000 "$USER_ID" "restored after SIGKILL (would-raise and over quota if asked now)"
assert_rule "user@$USER_ID" 1000000 0 "restored after SIGKILL"
# a user's pid rule makes its cgroup where the process was (mirrored in place)
assert_true "pid:$upid: the process is still in its rule's cgroup, inside the one it came from" \
        test "$(proc_cgroup "$upid")" = "$NB_CGROOT_REL/ucg/netbump-pid-$upid"
if grep -q "Rule $deleg2_t restored" "$LOG" && grep -q "Rule pid:$upid restored" "$LOG"; then
        nb_say "    logged: $(grep "Rule pid:$upid restored" "$LOG" | tail -n 1)"
else
        nb_record_failure "no 'Rule ... restored' lines for uid $USER_ID's rules in the daemon log"
fi
may "unset its restored rule on its delegated cgroup" unset "$deleg2_t"
may "unset its restored rule on its process" unset "pid:$upid"
assert_true "after the unset $upid is back in $NB_CGROOT_REL/ucg" test "$(proc_cgroup "$upid")" = "$NB_CGROOT_REL/ucg"

refused=$(grep -c "Refused .* from uid $USER_ID" "$LOG" || :)
nb_say "daemon log: $refused refusal(s) of uid $USER_ID logged"
nb_alive "$NB_DAEMON_PID" || nb_record_failure "netbumpd died"
nb_finish
