#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Scoped limits (--remote) and deny/allow on the target kinds that act on processes and sockets,
# with real traffic. A second address C of the server on the same link must stay out of scope.
#   - pid: a shell of the test's (in cgroup c1) runs iperf3 clients after `set pid:SH --remote
#     B4/32,B6/128 8mbit`: uploads to B within 5% of the 8 Mbit/s goodput, IPv4 and IPv6, to C
#     faster than 500 Mbit/s. An unscoped `set pid:SH 40mbit` beside it shares the shell's cgroup
#     (the shell stays where it is): B 8mbit, C 40mbit; its unset leaves the shell in that cgroup
#     under the scoped rule (B still 8mbit); the rules end with the shell, which is back in c1.
#   - sock: an open iperf3 upload to B: `set sock:INODE --remote C4/32 8mbit` leaves it unlimited,
#     `--remote B4/32 8mbit` limits it within 5% from 2 s after the set.
#   - exe: a copy of iperf3 started after `set exe:COPY --remote B4/32,B6/128 8mbit`: to B within
#     5% (IPv4, IPv6), to C unlimited; an unscoped 40mbit on the same file beside it: C 40mbit,
#     B still 8mbit, and again 8mbit after its unset.
#   - deny on pid: (a shell with no other rule), sock: (an open connection: it ends), exe: (a copy
#     of python3 started after the deny) and container: (a container from Docker's state, which
#     is then recreated under a new ID): refused within 1 s with EPERM (the open connection with
#     an error), IPv4 and IPv6, while another target connects to B and the denied one to C.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
BOTH=40mbit
SECS=4
TOL=5
FREE_MIN=500000000
PORT=5301
ID1=3f2a9c0d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809
ID2=77aa9c0d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f801

nb_require_daemon
PY=$(PATH=/usr/bin:/bin command -v python3) || nb_skip "'python3' is not installed in /usr/bin or /bin"
IPERF=$(command -v iperf3) || nb_skip "'iperf3' is not installed"
TRAFFIC=$NB_LIB_DIR/deny-traffic.py
nb_setup
chmod 0755 "$NB_TMP"
NB_C4=198.18.$NB_NET.3
NB_C6=fd18::$NB_NET:3
ip -n "$NB_NS_B" addr add "$NB_C4/24" dev "$NB_IF_B"
ip -n "$NB_NS_B" addr add "$NB_C6/64" dev "$NB_IF_B" nodad
nb_start_iperf_servers 5201
nsenter --net="$NB_NETNS_B" "$PY" "$TRAFFIC" sink "$PORT" >"$NB_TMP/sink.log" 2>&1 &
nb_track_pid $!
_sink_ready() { grep -q ready "$NB_TMP/sink.log"; }
nb_wait_until 5 _sink_ready || nb_fail "sink did not start: $(cat "$NB_TMP/sink.log")"
make_cgroup c1 >/dev/null
C1=$(cgroup_rel c1)
SCOPE="$NB_B4/32,$NB_B6/128"
CROOT=$NB_TMP/container-state
mkdir -p "$CROOT"
BIN=$NB_TMP/bin
mkdir -p "$BIN"
cp "$IPERF" "$BIN/ipcopy"
cp "$(readlink -f "$PY")" "$BIN/pycopy"
chmod 0755 "$BIN" "$BIN/ipcopy" "$BIN/pycopy"

nb_start_netbumpd --container-state-root "$CROOT"

# ---- helpers ----------------------------------------------------------------------------------

# A shell that runs, in order, the scripts DIR/go.1, go.2, ... as they appear (each one is
# written whole, then renamed into place) and touches DIR/done.N after each; it exits on a
# script that says "exit". It waits 60 s at most for the next one.
cat >"$NB_TMP/runner.sh" <<'RUNNER'
n=1
while :; do
        i=0
        while [ ! -e "$1/go.$n" ]; do
                i=$((i + 1))
                [ $i -gt 600 ] && exit 1
                sleep 0.1
        done
        . "$1/go.$n"
        : >"$1/done.$n"
        n=$((n + 1))
done
RUNNER

# runner_start VAR NAME: a runner in ns a, cgroup c1; VAR gets its PID (the shell itself)
runner_start() {
        local dir=$NB_TMP/$2
        mkdir -p "$dir"
        echo 0 >"$dir/n"
        _nb_argv -g c1
        "${_NB_ARGV[@]}" sh "$NB_TMP/runner.sh" "$dir" &
        nb_track_pid $!
        printf -v "$1" '%s' "$!"
        _in_c1() { [[ $(nb_proc_cgroup "$1") == "$C1" ]]; }
        nb_wait_until 5 _in_c1 "$!" || nb_fail "runner $2 did not start in $C1"
}

# runner_do NAME SCRIPT: the runner NAME runs SCRIPT (sh); waits 40 s at most for it
runner_do() {
        local dir=$NB_TMP/$1 n
        n=$(($(cat "$dir/n") + 1))
        echo "$n" >"$dir/n"
        printf '%s\n' "$2" >"$dir/go.$n.new"
        mv "$dir/go.$n.new" "$dir/go.$n"
        _done() { [[ -e $1 ]]; }
        nb_wait_until 40 _done "$dir/done.$n" || nb_fail "runner $1 did not finish: $2"
}

# runner_exit NAME: the runner NAME exits (not waited for)
runner_exit() {
        local dir=$NB_TMP/$1 n
        n=$(($(cat "$dir/n") + 1))
        echo "$n" >"$dir/n"
        echo "exit 0" >"$dir/go.$n.new"
        mv "$dir/go.$n.new" "$dir/go.$n"
}

# runner_goodput NAME ADDR: an iperf3 upload (SECS) by the runner NAME to ADDR; prints bits/s
runner_goodput() {
        local json=$NB_TMP/$1/iperf-$RANDOM.json
        runner_do "$1" "iperf3 -c $2 -p 5201 -t $SECS -O 1 -J --connect-timeout 3000 >$json 2>$json.err"
        goodput_from_json "$json" || { nb_say "iperf3 of runner $1 to $2 failed: $(cat "$json.err")"; echo 0; }
}

# runner_try NAME connect|udp ADDR: what deny-traffic.py says, run by the runner
runner_try() {
        local out=$NB_TMP/$1/try-$RANDOM
        runner_do "$1" "$PY $TRAFFIC $2 $3 $PORT >$out 2>&1"
        cat "$out"
}

# check_refused WHAT OUT: OUT is an EPERM within 1 s
check_refused() {
        if [[ $2 == "err EPERM "* ]] && awk -v s="${2##* }" 'BEGIN { exit !(s < 1.0) }'; then
                nb_say "$1 refused: ok ($2)"
        else
                nb_record_failure "$1: expected EPERM within 1 s, got '$2'"
        fi
}

check_ok() {
        if [[ $2 == "ok "* ]]; then
                nb_say "$1 goes through: ok ($2)"
        else
                nb_record_failure "$1: expected to go through, got '$2'"
        fi
}

# try_in CG PROG connect|udp ADDR: deny-traffic.py run by PROG (python3 or its copy) in cgroup CG
try_in() { run_in_cgroup "$1" "$2" "$TRAFFIC" "$3" "$4" "$PORT"; }

no_rules() { [[ $(nbctl --json list | jq '(.rules | length) + (.access | length)') == 0 ]]; }

# ---- pid: scoped limit, shared with an unscoped rule -----------------------------------------
runner_start R run
nbctl_ok set "pid:$R" --remote "$SCOPE" "$RATE"
nb_wait_complete "scoped pid rule"
pid_cg=$(nb_proc_cgroup "$R")
assert_true "pid:$R moved into a cgroup of its rule ($pid_cg)" test "$pid_cg" != "$C1"
for fam in 4 6; do
        if [[ $fam == 4 ]]; then in=$NB_B4 out=$NB_C4; else in=$NB_B6 out=$NB_C6; fi
        assert_within "$(runner_goodput run "$in")" "$(expected_goodput "$RATE" "$fam")" "$TOL" \
                "pid:$R --remote $SCOPE: up v$fam to $in (in scope)"
        assert_above "$(runner_goodput run "$out")" "$FREE_MIN" "pid:$R: up v$fam to $out (out of scope)"
done

nbctl_ok set "pid:$R" "$BOTH"
nb_wait_complete "unscoped pid rule"
assert_true "the unscoped rule shares the cgroup: pid:$R stays in $pid_cg ($(nb_proc_cgroup "$R"))" \
        test "$(nb_proc_cgroup "$R")" = "$pid_cg"
got=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote, .parent]] | sort')
want="[[\"pid:$R\",null,null],[\"pid:$R\",\"$SCOPE\",\"pid:$R\"]]"
assert_true "list: the scoped rule under the unscoped one ($got)" test "$got" = "$want"
assert_within "$(runner_goodput run "$NB_B4")" "$(expected_goodput "$RATE" 4)" "$TOL" "pid:$R both rules: up v4 to $NB_B4 (scoped)"
assert_within "$(runner_goodput run "$NB_C4")" "$(expected_goodput "$BOTH" 4)" "$TOL" "pid:$R both rules: up v4 to $NB_C4 (unscoped)"

nbctl_ok unset "pid:$R"
assert_true "after the unscoped rule's unset pid:$R is still in $pid_cg ($(nb_proc_cgroup "$R"))" \
        test "$(nb_proc_cgroup "$R")" = "$pid_cg"
assert_within "$(runner_goodput run "$NB_B4")" "$(expected_goodput "$RATE" 4)" "$TOL" "pid:$R scoped rule alone again: up v4 to $NB_B4"
runner_exit run
assert_true "the scoped pid rule ends with its process" nb_wait_until 5 no_rules

# ---- sock: scoped limit on an open connection ------------------------------------------------
iperf_conns() {
        nsenter --net="$NB_NETNS_A" ss -Htnpe state established "dport = :5201" |
                awk -v pid="$1" '
                        match($0, "pid=" pid ",fd=[0-9]+") {
                                fd = substr($0, RSTART, RLENGTH); sub(/.*fd=/, "", fd)
                                if (match($0, / ino:[0-9]+/)) print fd, substr($0, RSTART + 5, RLENGTH - 5)
                        }' | sort -n
}
_two_conns() { (($(iperf_conns "$1" | wc -l) == 2)); }
json=$NB_TMP/sock-up.json
_nb_argv -g c1
t0=$(nb_now)
(exec timeout -k 5 40 "${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p 5201 -t 9 -O 0 -i 0.5 -J --get-server-output \
        --connect-timeout 3000 >"$json" 2>"$json.err") &
tpid=$!
nb_track_pid "$tpid"
NB_BG_JSON[$tpid]=$json
ipid=$(nb_child_pid "$tpid" iperf3) || nb_fail "no iperf3 below timeout $tpid"
nb_wait_until 5 _two_conns "$ipid" || nb_fail "iperf3 $ipid does not have 2 connections"
mapfile -t conns < <(iperf_conns "$ipid")
ino=${conns[1]#* }
nb_sleep_until "$t0" 1.5
nbctl_ok set "sock:$ino" --remote "$NB_C4/32" "$RATE"
t_out=$(nb_rel "$t0" "$(nb_now)")
nb_sleep_until "$t0" 4
nbctl_ok set "sock:$ino" --remote "$NB_B4/32" "$RATE"
t_in=$(nb_rel "$t0" "$(nb_now)")
iperf_client_wait "$tpid" || nb_fail "iperf3 client of the sock: test failed"
receiver_intervals "$json" >"$NB_TMP/sock-intervals"
out_scope=$(awk -v a="$t_out" -v b="$t_in" '$1 >= a + 0.5 && $2 <= b { s += $3; n++ } END { if (n) printf "%.0f", s / n; else print 0 }' "$NB_TMP/sock-intervals")
in_scope=$(awk -v a="$t_in" '$1 >= a + 2 && $2 - $1 >= 0.4 { s += $3; n++ } END { if (n) printf "%.0f", s / n; else print 0 }' "$NB_TMP/sock-intervals")
assert_above "$out_scope" "$FREE_MIN" "sock:$ino --remote $NB_C4/32 (a connection to $NB_B4: out of scope), set at ${t_out} s"
assert_within "$in_scope" "$(expected_goodput "$RATE" 4)" "$TOL" "sock:$ino --remote $NB_B4/32 from 2 s after the set at ${t_in} s"
assert_true "the sock rules end with the socket" nb_wait_until 5 no_rules

# ---- exe: scoped limit on a program started after the rule --------------------------------------
# exe_goodput ADDR: the copy of iperf3 uploads to ADDR (in c1); prints bits/s
exe_goodput() {
        local json=$NB_TMP/exe-$RANDOM.json
        _nb_argv -g c1
        timeout -k 5 30 "${_NB_ARGV[@]}" "$BIN/ipcopy" -c "$1" -p 5201 -t "$SECS" -O 1 -J --connect-timeout 3000 \
                >"$json" 2>"$json.err" || nb_say "the iperf3 copy to $1 failed: $(cat "$json.err")"
        goodput_from_json "$json" || echo 0
}
nbctl_ok set "exe:$BIN/ipcopy" --remote "$SCOPE" "$RATE"
nb_wait_complete "scoped exe rule"
for fam in 4 6; do
        if [[ $fam == 4 ]]; then in=$NB_B4 out=$NB_C4; else in=$NB_B6 out=$NB_C6; fi
        assert_within "$(exe_goodput "$in")" "$(expected_goodput "$RATE" "$fam")" "$TOL" "exe:ipcopy --remote $SCOPE: up v$fam to $in"
        assert_above "$(exe_goodput "$out")" "$FREE_MIN" "exe:ipcopy: up v$fam to $out (out of scope)"
done
nbctl_ok set "exe:$BIN/ipcopy" "$BOTH"
nb_wait_complete "unscoped exe rule"
assert_within "$(exe_goodput "$NB_C4")" "$(expected_goodput "$BOTH" 4)" "$TOL" "exe:ipcopy both rules: up v4 to $NB_C4 (unscoped)"
assert_within "$(exe_goodput "$NB_B4")" "$(expected_goodput "$RATE" 4)" "$TOL" "exe:ipcopy both rules: up v4 to $NB_B4 (scoped)"
nbctl_ok unset "exe:$BIN/ipcopy"
assert_within "$(exe_goodput "$NB_B4")" "$(expected_goodput "$RATE" 4)" "$TOL" "exe:ipcopy scoped rule alone again: up v4 to $NB_B4"
nbctl_ok unset "exe:$BIN/ipcopy" --remote "$SCOPE"
assert_true "no rule left" no_rules
left=$(find "$NB_CGROOT" -name 'netbump-exe-*' -type d)
assert_true "no cgroup of the exe: rules left ($left)" test -z "$left"

# ---- deny on pid: (no other rule on it) ------------------------------------------------------
runner_start D deny
nbctl_ok deny "pid:$D" --remote "$SCOPE"
for b in "$NB_B4" "$NB_B6"; do
        check_refused "pid:$D connect $b" "$(runner_try deny connect "$b")"
        check_refused "pid:$D udp $b" "$(runner_try deny udp "$b")"
        check_ok "another process in c1: connect $b" "$(try_in c1 "$PY" connect "$b")"
done
check_ok "pid:$D connect $NB_C4" "$(runner_try deny connect "$NB_C4")"
nbctl_ok unset "pid:$D" --remote "$SCOPE"
assert_true "after the unset pid:$D is back in $C1 ($(nb_proc_cgroup "$D"))" test "$(nb_proc_cgroup "$D")" = "$C1"
check_ok "pid:$D after the unset: connect $NB_B4" "$(runner_try deny connect "$NB_B4")"
runner_exit deny

# ---- deny on sock: an open connection ends -------------------------------------------------------
for b in "$NB_B4" "$NB_B6"; do
        [[ $b == *:* ]] && cidr=$b/128 || cidr=$b/32
        out=$NB_TMP/stream-$RANDOM.log
        run_in_cgroup c1 "$PY" "$TRAFFIC" stream "$b" "$PORT" 8 >"$out" 2>&1 &
        spid=$!
        nb_track_pid "$spid"
        _connected() { grep -q connected "$1"; }
        nb_wait_until 5 _connected "$out" || nb_fail "stream to $b did not connect: $(cat "$out")"
        sline=$(nsenter --net="$NB_NETNS_A" ss -Htnpe state established "dport = :$PORT")
        # the stream's is the only connection to the sink now
        sino=$(awk 'match($0, / ino:[0-9]+/) { print substr($0, RSTART + 5, RLENGTH - 5); exit }' <<<"$sline")
        [[ -n $sino ]] || nb_fail "no socket of the stream $spid: $sline"
        sleep 0.5
        t0=$(nb_now)
        nbctl_ok deny "sock:$sino" --remote "$cidr"
        check_ok "another connection to $b while sock:$sino is denied" "$(try_in c1 "$PY" connect "$b")"
        wait "$spid" || :
        res=$(tail -n 1 "$out")
        if [[ $res == "err "* ]] && awk -v d="$(nb_rel "$t0" "${res##* }")" 'BEGIN { exit !(d < 1.0) }'; then
                nb_say "open connection sock:$sino to $b stopped $(nb_rel "$t0" "${res##* }") s after the deny: ok ($res)"
        else
                nb_record_failure "open connection sock:$sino to $b after the deny: '$res'"
        fi
        assert_true "deny sock:$sino ends with its socket" nb_wait_until 5 no_rules
done

# ---- deny on exe: a copy of python3 started after the deny -----------------------------------------
# A process is taken in when the exec hook's event reaches netbumpd (netbump(7), Deny and allow):
# what it connects in its first milliseconds is ended afterwards, not refused. The copy waits
# 0.3 s after its exec before it connects, as any program does that reads its configuration first.
# pycopy_try connect|udp ADDR
pycopy_try() {
        run_in_cgroup c1 "$BIN/pycopy" -c 'import runpy, sys, time
time.sleep(0.3)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$TRAFFIC" "$1" "$2" "$PORT"
}
nbctl_ok deny "exe:$BIN/pycopy" --remote "$SCOPE"
for b in "$NB_B4" "$NB_B6"; do
        check_refused "exe:pycopy connect $b" "$(pycopy_try connect "$b")"
        check_ok "python3 (another program) connect $b" "$(try_in c1 "$PY" connect "$b")"
done
check_ok "exe:pycopy connect $NB_C6" "$(pycopy_try connect "$NB_C6")"
nbctl_ok unset "exe:$BIN/pycopy" --remote "$SCOPE"
check_ok "exe:pycopy after the unset: connect $NB_B4" "$(try_in c1 "$BIN/pycopy" connect "$NB_B4")"

# ---- deny on container: it follows the container recreated ---------------------------------------
docker_container() {
        mkdir -p "$CROOT/var/lib/docker/containers/$1"
        printf '{"ID":"%s","Name":"/%s","State":{"Running":true}}\n' "$1" "$2" \
                >"$CROOT/var/lib/docker/containers/$1/config.v2.json"
}
docker_container "$ID1" web
make_cgroup "system.slice/docker-$ID1.scope" >/dev/null
nbctl_ok deny container:web --remote "$SCOPE"
for b in "$NB_B4" "$NB_B6"; do
        check_refused "container:web connect $b" "$(try_in "system.slice/docker-$ID1.scope" "$PY" connect "$b")"
        check_ok "c1 connect $b" "$(try_in c1 "$PY" connect "$b")"
done
check_ok "container:web connect $NB_C4" "$(try_in "system.slice/docker-$ID1.scope" "$PY" connect "$NB_C4")"
rmdir "$NB_CGROOT/system.slice/docker-$ID1.scope"
rm -r "${CROOT:?}/var/lib/docker/containers/$ID1"
docker_container "$ID2" web
make_cgroup "system.slice/docker-$ID2.scope" >/dev/null
_denied_again() { [[ $(try_in "system.slice/docker-$ID2.scope" "$PY" connect "$NB_B4") == "err EPERM "* ]]; }
assert_true "within 5 s the deny follows container:web to its new cgroup" nb_wait_until 5 _denied_again
check_refused "container:web (recreated) connect $NB_B6" "$(try_in "system.slice/docker-$ID2.scope" "$PY" connect "$NB_B6")"
nbctl_ok unset container:web --remote "$SCOPE"
check_ok "container:web after the unset: connect $NB_B4" "$(try_in "system.slice/docker-$ID2.scope" "$PY" connect "$NB_B4")"

nb_finish
