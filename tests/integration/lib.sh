# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Shared harness of the integration tests: sourced by tests/integration/test-*.sh.
#
# Topology (all of it private to one run, named after $NB_ID so parallel runs never collide):
#
#   ns "a" (client, netbumpd)                       ns "b" (iperf3 servers)
#   veth-a 198.18.N.1/24 fd18::N:1/64  <-- veth -->  veth-b 198.18.N.2/24 fd18::N:2/64
#
#   cgroup2 mount / netbump-test-$NB_ID /            --cgroup-root of netbumpd
#                                       <children>   made by the test with make_cgroup
#
# Conventions: every wait is bounded in count and time; human-readable output goes to fd 3 (the
# test's stdout, also from inside $(...)); functions that return a value print it on stdout;
# assert_* record a failure and go on, so one run reports every measurement; the EXIT trap tears
# everything down and turns recorded failures into exit status 1. Skips exit 77 with a reason.
#
# Usage in a test:
#   source "$(dirname "$0")/lib.sh"
#   nb_require_daemon; nb_setup; nb_start_iperf_servers 5201 5202
#   ...; nb_finish

# Globals below are read by the tests that source this file.
# shellcheck disable=SC2034

set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || :

exec 3>&1

NB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NB_TEST_NAME=$(basename "$0" .sh)
NB_FAILED=0
NB_FAILURES=()                  # the message of each recorded failure, repeated by nb_finish
NB_PIDS=()                      # every background process this run started (kill list)
NB_DAEMON_PID=
NB_DAEMON_STATUS=
NB_CLIENT_SEQ=0
declare -A NB_BG_JSON=()        # background iperf3 client pid -> its JSON file
NB_EXTRA_NETNS=()               # more namespaces (names) a test made: removed in teardown

# ---------------------------------------------------------------------------------------------
# output, failure, skipping

nb_say() { printf '%s\n' "$*" >&3; }
nb_info() { printf '%s: %s\n' "$NB_TEST_NAME" "$*" >&3; }

# nb_skip REASON: exit 77 (meson's "skipped")
nb_skip() { nb_say "SKIP: $*"; exit 77; }

# nb_fail MSG: fatal failure, exit 1 now (teardown still runs)
nb_fail() { nb_say "FAIL: $*"; exit 1; }

# nb_record_failure MSG: non-fatal failure, the test goes on and exits 1 at the end
nb_record_failure() {
        NB_FAILED=$((NB_FAILED + 1))
        NB_FAILURES+=("$*")
        nb_say "FAIL: $*"
}

# nb_finish: the last line of a test
nb_finish() {
        if ((NB_FAILED > 0)); then
                # repeated here: a long test's log is often shown by its last lines only
                local f
                for f in "${NB_FAILURES[@]}"; do
                        nb_say "FAILED: $f"
                done
                nb_say "$NB_TEST_NAME: $NB_FAILED assertion(s) failed"
                exit 1
        fi
        nb_say "$NB_TEST_NAME: all assertions passed"
        exit 0
}

# ---------------------------------------------------------------------------------------------
# preconditions

[[ $(id -u) == 0 ]] || nb_skip "needs root (network namespaces, cgroups, BPF)"
for _c in iperf3 ip tc ss nsenter setpriv jq timeout find awk; do
        command -v "$_c" >/dev/null 2>&1 || nb_skip "'$_c' is not installed"
done
unset _c
[[ -d /sys/class/net ]] || nb_skip "/sys is not mounted"

# nb_cgroup2_mount: the first cgroup2 mount of this mount namespace whose root is the hierarchy's
# root, from /proc/self/mountinfo (fields: id parent maj:min root mountpoint ... - fstype ...)
nb_cgroup2_mount() {
        awk '{
                for (i = 7; i <= NF; i++) if ($i == "-") break
                if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit }
        }' /proc/self/mountinfo
}

NB_CGROUP2=$(nb_cgroup2_mount)
[[ -n $NB_CGROUP2 && -f $NB_CGROUP2/cgroup.procs ]] || nb_skip "cgroup2 is not mounted"
# mountinfo escapes blanks as \040; a mount point with blanks is not supported here
[[ $NB_CGROUP2 != *\\* ]] || nb_skip "cgroup2 mount point '$NB_CGROUP2' has escaped characters"

# the cgroup this shell started in: stray processes are moved back there before rmdir
NB_ORIG_CGROUP=$NB_CGROUP2$(awk -F: '$1 == "0" { print $3; exit }' /proc/self/cgroup)
NB_ORIG_CGROUP=${NB_ORIG_CGROUP%/}

# ---------------------------------------------------------------------------------------------
# names of this run

NB_ID=$(printf '%x%04x' "$$" "$RANDOM")
NB_NET=$(($$ % 250 + 1))                   # third octet / IPv6 group, cosmetic: namespaces are private
NB_NS_A=nbt-$NB_ID-a
NB_NS_B=nbt-$NB_ID-b
NB_NETNS_A=/run/netns/$NB_NS_A
NB_NETNS_B=/run/netns/$NB_NS_B
NB_IF_A=veth-a
NB_IF_B=veth-b
NB_A4=198.18.$NB_NET.1
NB_B4=198.18.$NB_NET.2
NB_A6=fd18::$NB_NET:1
NB_B6=fd18::$NB_NET:2
NB_CGROOT=$NB_CGROUP2/netbump-test-$NB_ID
NB_CGROOT_REL=/netbump-test-$NB_ID       # as /proc/PID/cgroup shows it, for cgroup: targets
NB_TMP=                                  # made by nb_setup
NB_SOCK=
NB_STATE=

NB_BUILD_DIR=${NETBUMP_BUILD_DIR:-${1:-$NB_LIB_DIR/../../build}}
NB_NETBUMPD=$NB_BUILD_DIR/src/netbumpd/netbumpd
NB_NETBUMPCTL=$NB_BUILD_DIR/src/netbumpctl/netbumpctl

# nb_require_daemon: the daemon and CLI must have been built (a missing binary fails, not skips:
# a skip would hide a broken build)
nb_require_daemon() {
        [[ -x $NB_NETBUMPD ]] || nb_fail "netbumpd not found at $NB_NETBUMPD (set NETBUMP_BUILD_DIR or pass the build dir)"
        [[ -x $NB_NETBUMPCTL ]] || nb_fail "netbumpctl not found at $NB_NETBUMPCTL"
}

# ---------------------------------------------------------------------------------------------
# small utilities

# nb_wait_until SECONDS CMD...: run CMD every 50 ms until it succeeds; 1 if it never did
nb_wait_until() {
        local secs=$1 i n
        shift
        n=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 20 }')
        for ((i = 0; i <= n; i++)); do
                "$@" && return 0
                ((i < n)) && sleep 0.05
        done
        return 1
}

# nb_alive PID: the process exists and is not a zombie
nb_alive() {
        local st
        kill -0 "$1" 2>/dev/null || return 1
        st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
        [[ $st != Z ]]
}

nb_track_pid() { NB_PIDS+=("$1"); }

# nb_child_pid PARENT NAME: the PID of PARENT's child once it runs NAME (5 s at most)
nb_child_pid() {
        local parent=$1 name=$2 p i
        for ((i = 0; i < 100; i++)); do
                for p in $(pgrep -P "$parent"); do
                        [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$name" ]] && { echo "$p"; return 0; }
                done
                sleep 0.05
        done
        return 1
}

# nb_proc_cgroup PID: the cgroup v2 path of PID as /proc/PID/cgroup shows it ("/a/b")
nb_proc_cgroup() { awk -F: '$1 == "0" { print $3; exit }' "/proc/$1/cgroup" 2>/dev/null; }

# nb_wait_pid PID SECONDS: wait until PID is gone; 1 on time-out (the process is left alone)
nb_wait_pid() {
        nb_wait_until "$2" eval '! nb_alive '"$1"
}

# nb_now: seconds since the epoch with microseconds
nb_now() { printf '%s\n' "$EPOCHREALTIME"; }

# nb_rel T0 T: T - T0 in seconds ("1.234")
nb_rel() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# nb_at T0 SECS: the time SECS seconds after T0 (seconds since the epoch)
nb_at() { awk -v a="$1" -v s="$2" 'BEGIN { printf "%.6f\n", a + s }'; }

# nb_sleep_until T0 SECS: sleep until SECS seconds after T0 (not at all if that has passed)
nb_sleep_until() {
        sleep "$(awk -v t0="$1" -v now="$(nb_now)" -v at="$2" \
                'BEGIN { d = t0 + at - now; if (d < 0) d = 0; printf "%.3f", d }')"
}

# nb_mbit BPS: "7.61"
nb_mbit() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }

# rate_to_bps RATE: tc(8) rate ("8mbit", "1.5gbit", "500kbps", "1000000") to bits per second
rate_to_bps() {
        awk -v r="$1" 'BEGIN {
                if (!match(r, /^[0-9]+(\.[0-9]+)?/)) exit 1
                v = substr(r, 1, RLENGTH); u = tolower(substr(r, RLENGTH + 1))
                m["bit"] = 1; m["kbit"] = 1e3; m["mbit"] = 1e6; m["gbit"] = 1e9; m["tbit"] = 1e12
                m["kibit"] = 1024; m["mibit"] = 1048576; m["gibit"] = 1073741824
                m["bps"] = 8; m["kbps"] = 8e3; m["mbps"] = 8e6; m["gbps"] = 8e9
                m["kibps"] = 8192; m["mibps"] = 8388608; m["gibps"] = 8589934592
                if (u == "") u = "bit"
                if (!(u in m)) exit 1
                printf "%.0f\n", v * m[u]
        }' || { echo "rate_to_bps: bad rate '$1'" >&2; return 1; }
}

# nb_family ADDR: 4 or 6
nb_family() { [[ $1 == *:* ]] && echo 6 || echo 4; }

# expected_goodput RATE FAMILY: TCP goodput (bits/s) through a shaper that counts link-layer bytes
# as tc does: a full frame is 1514 bytes (1500 MTU + 14 Ethernet) carrying 1500 - IP header - 20
# TCP - 12 timestamp option bytes of payload: 1448 (IPv4), 1428 (IPv6).  FAMILY: 4|6|v4|v6|inet|inet6
expected_goodput() {
        local bps payload
        bps=$(rate_to_bps "$1")
        case $2 in
        4 | v4 | inet | ipv4) payload=1448 ;;
        6 | v6 | inet6 | ipv6) payload=1428 ;;
        *) echo "expected_goodput: bad family '$2'" >&2; return 1 ;;
        esac
        awk -v b="$bps" -v p="$payload" 'BEGIN { printf "%.0f\n", b * p / 1514 }'
}

# assert_within ACTUAL EXPECTED PCT MSG: |ACTUAL - EXPECTED| <= PCT% of EXPECTED (bits/s)
assert_within() {
        local actual=$1 expected=$2 pct=$3 msg=$4 dev
        dev=$(awk -v a="$actual" -v e="$expected" 'BEGIN { printf "%+.1f", (a - e) * 100 / e }')
        if awk -v a="$actual" -v e="$expected" -v p="$pct" \
                'BEGIN { d = a - e; if (d < 0) d = -d; exit !(d <= e * p / 100) }'; then
                nb_say "$msg: $(nb_mbit "$actual") Mbit/s, expected $(nb_mbit "$expected") ±$pct%: ok ($dev%)"
        else
                nb_record_failure "$msg: $(nb_mbit "$actual") Mbit/s, expected $(nb_mbit "$expected") ±$pct%: off by $dev%"
        fi
}

# assert_above ACTUAL MIN MSG: ACTUAL > MIN (bits/s)
assert_above() {
        local actual=$1 min=$2 msg=$3
        if awk -v a="$actual" -v m="$min" 'BEGIN { exit !(a > m) }'; then
                nb_say "$msg: $(nb_mbit "$actual") Mbit/s, expected > $(nb_mbit "$min"): ok"
        else
                nb_record_failure "$msg: $(nb_mbit "$actual") Mbit/s, expected > $(nb_mbit "$min")"
        fi
}

# assert_below ACTUAL MAX MSG: ACTUAL < MAX (bits/s)
assert_below() {
        local actual=$1 max=$2 msg=$3
        if awk -v a="$actual" -v m="$max" 'BEGIN { exit !(a < m) }'; then
                nb_say "$msg: $(nb_mbit "$actual") Mbit/s, expected < $(nb_mbit "$max"): ok"
        else
                nb_record_failure "$msg: $(nb_mbit "$actual") Mbit/s, expected < $(nb_mbit "$max")"
        fi
}

# assert_true MSG CMD...: CMD succeeds
assert_true() {
        local msg=$1
        shift
        if "$@"; then
                nb_say "$msg: ok"
        else
                nb_record_failure "$msg (command: $*)"
        fi
}

# ---------------------------------------------------------------------------------------------
# setup

# make_cgroup NAME: create $NB_CGROOT/NAME (NAME may contain /), print its directory
make_cgroup() {
        local d=$NB_CGROOT/$1
        mkdir -p "$d"
        printf '%s\n' "$d"
}

# cgroup_dir CG: a cgroup directory from a directory, a path relative to the cgroup2 mount root
# ("/netbump-test-x/c1", as /proc/PID/cgroup shows it) or a name below the test root ("c1")
cgroup_dir() {
        case $1 in
        "$NB_CGROUP2"/*) printf '%s\n' "$1" ;;
        /*) printf '%s\n' "$NB_CGROUP2$1" ;;
        *) printf '%s\n' "$NB_CGROOT/$1" ;;
        esac
}

# cgroup_rel CG: the path relative to the cgroup2 mount root, as netbumpctl's cgroup: target wants
cgroup_rel() {
        local d
        d=$(cgroup_dir "$1")
        printf '%s\n' "${d#"$NB_CGROUP2"}"
}

_nb_no_tentative() {
        [[ -z $(ip -n "$1" -6 addr show tentative) ]]
}

_nb_link_up() {
        [[ $(ip -n "$1" -o link show dev "$2") == *LOWER_UP* ]]
}

# nb_setup: namespaces, veth, addresses, the test cgroup root, a private temp dir
nb_setup() {
        local ns
        NB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/netbump-test-$NB_ID.XXXXXX")
        NB_SOCK=$NB_TMP/netbumpd.sock
        NB_STATE=$NB_TMP/state
        mkdir -p "$NB_STATE"

        ip netns add "$NB_NS_A"
        ip netns add "$NB_NS_B"
        for ns in "$NB_NS_A" "$NB_NS_B"; do
                # no DAD at all in these namespaces (link-local addresses included): nothing to
                # wait for and no tentative address racing the first connection
                nsenter --net="/run/netns/$ns" sh -c \
                        'echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad &&
                         echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad'
                ip -n "$ns" link set lo up
        done
        # made inside the namespaces: the host's namespace never sees these links
        ip -n "$NB_NS_A" link add "$NB_IF_A" type veth peer name "$NB_IF_B" netns "$NB_NS_B"
        ip -n "$NB_NS_A" addr add "$NB_A4/24" dev "$NB_IF_A"
        ip -n "$NB_NS_A" addr add "$NB_A6/64" dev "$NB_IF_A" nodad
        ip -n "$NB_NS_B" addr add "$NB_B4/24" dev "$NB_IF_B"
        ip -n "$NB_NS_B" addr add "$NB_B6/64" dev "$NB_IF_B" nodad
        ip -n "$NB_NS_A" link set "$NB_IF_A" up
        ip -n "$NB_NS_B" link set "$NB_IF_B" up

        nb_wait_until 5 _nb_link_up "$NB_NS_A" "$NB_IF_A" || nb_fail "$NB_IF_A did not come up"
        nb_wait_until 5 _nb_link_up "$NB_NS_B" "$NB_IF_B" || nb_fail "$NB_IF_B did not come up"
        for ns in "$NB_NS_A" "$NB_NS_B"; do
                nb_wait_until 5 _nb_no_tentative "$ns" ||
                        nb_fail "IPv6 addresses in $ns still tentative: $(ip -n "$ns" -6 -o addr show tentative)"
        done

        mkdir "$NB_CGROOT"
        nb_info "id $NB_ID: netns $NB_NS_A/$NB_NS_B, $NB_A4-$NB_B4, $NB_A6-$NB_B6, cgroup root $NB_CGROOT"
}

_nb_listening() {
        [[ -n $(nsenter --net="$NB_NETNS_B" ss -Hltn "sport = :$1") ]]
}

# nb_start_iperf_servers PORT...: one iperf3 server per port in ns b (one per concurrent
# measurement); waits until each listens
nb_start_iperf_servers() {
        local port
        for port in "$@"; do
                # --rcv-timeout: a server whose client died must not hang on for 2 minutes
                nsenter --net="$NB_NETNS_B" iperf3 -s -J -p "$port" --rcv-timeout 10000 \
                        >"$NB_TMP/iperf3-server-$port.log" 2>&1 &
                nb_track_pid $!
        done
        for port in "$@"; do
                nb_wait_until 5 _nb_listening "$port" ||
                        nb_fail "iperf3 server on port $port does not listen: $(cat "$NB_TMP/iperf3-server-$port.log")"
        done
}

# ---------------------------------------------------------------------------------------------
# running things in ns a, in a cgroup, as a user

# _nb_argv [-g CG] [-u UID]: sets _NB_ARGV to the command prefix that enters ns a, then moves
# itself into cgroup CG, then drops to UID; every step execs, so the final PID is the command's
_nb_argv() {
        local cg='' uid='' OPTIND=1 opt
        while getopts g:u: opt; do
                case $opt in
                g) cg=$(cgroup_dir "$OPTARG") ;;
                u) uid=$OPTARG ;;
                *) return 1 ;;
                esac
        done
        _NB_ARGV=(nsenter --net="$NB_NETNS_A")
        if [[ -n $cg ]]; then
                [[ -d $cg ]] || { echo "no cgroup $cg" >&2; return 1; }
                # shellcheck disable=SC2016
                _NB_ARGV+=(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg")
        fi
        if [[ -n $uid ]]; then
                _NB_ARGV+=(setpriv --reuid "$uid" --regid "$uid" --clear-groups --)
        fi
        _NB_SHIFT=$((OPTIND - 1))
}

# run_in_cgroup [-u UID] CG CMD...: run CMD in ns a inside cgroup CG (optionally as UID)
run_in_cgroup() {
        local uid=
        if [[ $1 == -u ]]; then uid=$2; shift 2; fi
        local cg=$1
        shift
        if [[ -n $uid ]]; then _nb_argv -g "$cg" -u "$uid"; else _nb_argv -g "$cg"; fi
        "${_NB_ARGV[@]}" "$@"
}

# run_as_uid UID CMD...: run CMD in ns a as UID/GID UID without supplementary groups (in the
# caller's cgroup; use run_in_cgroup -u UID CG to have both)
run_as_uid() {
        local uid=$1
        shift
        _nb_argv -u "$uid"
        "${_NB_ARGV[@]}" "$@"
}

# nb_tcp_cc ALGO: prints ALGO if this kernel has that TCP congestion control (its module loaded if
#   need be), else nothing; for `iperf_client_start -C` (iperf3 -C)
nb_tcp_cc() {
        local f=/proc/sys/net/ipv4/tcp_available_congestion_control
        grep -qw "$1" "$f" || modprobe -q "tcp_$1" 2>/dev/null || :
        if grep -qw "$1" "$f"; then echo "$1"; fi
}

# iperf_client_start PIDVAR JSONFILE [-g CG] [-u UID] [-R] [-t SECS] [-O SECS] [-i SECS] [-C CC]
#   ADDR PORT
#   starts an iperf3 client (JSON, --get-server-output) in ns a in the background, bounded by
#   timeout(1); stores its PID in PIDVAR. Collect with iperf_client_wait. -C: the sender's TCP
#   congestion control (the server's too with -R; one other than the machine's allowed ones takes
#   a root client)
iperf_client_start() {
        local __pidvar=$1 json=$2
        shift 2
        local cg='' uid='' rev='' t=4 omit=1 interval='' __cc='' OPTIND=1 opt
        while getopts g:u:Rt:O:i:C: opt; do
                case $opt in
                C) __cc=$OPTARG ;;
                g) cg=$OPTARG ;;
                u) uid=$OPTARG ;;
                R) rev=-R ;;
                t) t=$OPTARG ;;
                O) omit=$OPTARG ;;
                i) interval=$OPTARG ;;
                *) return 1 ;;
                esac
        done
        shift $((OPTIND - 1))
        local addr=$1 port=$2 pre=()
        [[ -n $cg ]] && pre+=(-g "$cg")
        [[ -n $uid ]] && pre+=(-u "$uid")
        _nb_argv "${pre[@]}"
        local args=(iperf3 -c "$addr" -p "$port" -t "$t" -O "$omit" -J --get-server-output
                --connect-timeout 3000)
        [[ -n $rev ]] && args+=("$rev")
        [[ -n $interval ]] && args+=(-i "$interval")
        [[ -n $__cc ]] && args+=(-C "$__cc")
        (exec timeout -k 5 $((t + omit + 20)) "${_NB_ARGV[@]}" "${args[@]}" >"$json" 2>"$json.err") &
        nb_track_pid $!
        NB_BG_JSON[$!]=$json
        printf -v "$__pidvar" '%s' "$!"
}

# iperf_client_wait PID: wait for a client from iperf_client_start; 1 if it failed (reason shown)
iperf_client_wait() {
        local pid=$1 rc=0 json=${NB_BG_JSON[$1]} err
        wait "$pid" || rc=$?
        err=$(jq -r '.error // empty' "$json" 2>/dev/null) || err="no JSON output"
        if ((rc != 0)) || [[ -n $err ]]; then
                nb_say "iperf3 client failed (exit $rc): ${err:-see below}"
                sed 's/^/    /' "$json.err" >&3
                return 1
        fi
}

# goodput_from_json JSON: the receiver's bits/s (end.sum_received.bits_per_second)
goodput_from_json() {
        jq -er '.end.sum_received.bits_per_second | floor' "$1"
}

# goodput_received JSON (of a client run with --get-server-output): the receiver's bits/s in its
# own time. An upload's end.sum_received divides what the server got until the test ended by the
# client's seconds, so a backlog that drains after the client's last second counts as if it had
# come within them (a sender in another network namespace, which the shaper gives no
# backpressure, showed up to 5% above its link that way): the server's intervals instead, the
# omitted ones and any shorter than 0.5 s left out. A download's receiver is the client, whose
# sum_received is its own (its per-interval seconds are not: iperf3 3.12 puts the omitted time in
# the first counted interval of a -R run).
goodput_received() {
        jq -er 'if .start.test_start.reverse == 1 then .end.sum_received.bits_per_second | floor
                else .server_output_json.intervals
                     | map(.sum | select(.omitted != true and .seconds >= 0.5))
                     | if length == 0 then error("no receiver interval")
                       else (map(.bytes) | add) * 8 / (map(.seconds) | add) | floor end
                end' "$1"
}

# receiver_intervals JSON: "start end bits/s" per interval as the receiver counted them (the
# server's intervals for an upload, the client's for a download -R): the sender's count includes
# what only reached its socket buffer
receiver_intervals() {
        jq -r 'if .start.test_start.reverse == 1 then .intervals else .server_output_json.intervals end
               | .[].sum | "\(.start) \(.end) \(.bits_per_second)"' "$1"
}

# measure_goodput [-g CG] [-u UID] [-R] [-t SECS] [-O SECS] ADDR PORT: runs
#   iperf3 -c ADDR -p PORT -t SECS -O 1 -J [-R] in ns a (in CG, as UID) and prints the receiver's
#   bits/s. Fails (non-zero) when iperf3 does.
measure_goodput() {
        local pid json
        NB_CLIENT_SEQ=$((NB_CLIENT_SEQ + 1))
        json=$NB_TMP/iperf3-client-$BASHPID-$NB_CLIENT_SEQ.json
        iperf_client_start pid "$json" "$@"
        iperf_client_wait "$pid" || return 1
        goodput_from_json "$json"
}

# measure_goodput_bg PIDVAR [measure_goodput options] ADDR PORT: the same in the background;
# finish with measure_goodput_wait PID BPSVAR (not inside $(...): the client is this shell's child)
measure_goodput_bg() {
        local __v=$1 json
        shift
        NB_CLIENT_SEQ=$((NB_CLIENT_SEQ + 1))
        json=$NB_TMP/iperf3-client-bg-$NB_CLIENT_SEQ.json
        iperf_client_start "$__v" "$json" "$@"
}

measure_goodput_wait() {
        local __pid=$1 __bps
        iperf_client_wait "$__pid" || return 1
        __bps=$(goodput_from_json "${NB_BG_JSON[$__pid]}") || return 1
        printf -v "$2" '%s' "$__bps"
}

# ---------------------------------------------------------------------------------------------
# fine-grained samples of the shaper's own counters (the link layer, as tc counts it)
#
# iperf3's per-second intervals count what reached the receiving application, which lags what
# passed the shaper (TCP's out-of-order queue, socket buffers) and is only as fine as its
# intervals. To judge "the new rate holds within one second" the tests read the HTB counters.

# nb_ifb_of DEV: the IFB through which netbumpd shapes DEV's downloads (nbifb<ifindex of DEV>)
nb_ifb_of() {
        local idx
        idx=$(ip -n "$NB_NS_A" -o link show dev "$1" | awk -F': ' '{ print $1; exit }') || return 1
        printf 'nbifb%s\n' "$idx"
}

# tc_sampler_start PIDVAR FILE SECONDS DEV...: in the background, about every 100 ms for at most
#   SECONDS, append one line per HTB class and per qdisc on each DEV (in ns a) to FILE:
#     TIME DEV class|qdisc ID PARENT BYTES PACKETS DROPS BACKLOG-BYTES
#   (TIME: seconds since the epoch, taken just before tc ran). Stop it with tc_sampler_stop PID.
tc_sampler_start() {
        local __pidvar=$1 file=$2 secs=$3
        shift 3
        (
                trap 'exit 0' TERM
                end=$(awk -v n="$(nb_now)" -v s="$secs" 'BEGIN { printf "%.6f", n + s }')
                next_t=$(nb_now)
                while awk -v n="$(nb_now)" -v e="$end" 'BEGIN { exit !(n < e) }'; do
                        t=$(nb_now)
                        for dev in "$@"; do
                                { tc -n "$NB_NS_A" -s class show dev "$dev"
                                  tc -n "$NB_NS_A" -s qdisc show dev "$dev"; } 2>/dev/null |
                                        awk -v t="$t" -v dev="$dev" '
                                        function flush() { if (id != "") print t, dev, what, id, parent, b, p, d, bl; id = "" }
                                        /^(class|qdisc) / {
                                                flush(); what = $1; id = $3; parent = "-"
                                                for (i = 4; i < NF; i++) if ($i == "parent") parent = $(i + 1)
                                                b = p = d = bl = 0
                                        }
                                        /^ Sent / { b = $2; p = $4; d = $7; sub(/,/, "", d) }
                                        /^ backlog / { bl = $2; sub(/b$/, "", bl) }
                                        END { flush() }'
                        done >>"$file"
                        next_t=$(awk -v x="$next_t" 'BEGIN { printf "%.6f", x + 0.1 }')
                        sleep "$(awk -v x="$next_t" -v n="$(nb_now)" 'BEGIN { d = x - n; if (d < 0.01) d = 0.01; printf "%.3f", d }')"
                done
        ) &
        nb_track_pid $!
        printf -v "$__pidvar" '%s' "$!"
}

# tc_sampler_stop PID: stop a sampler from tc_sampler_start and wait for it
tc_sampler_stop() {
        kill -TERM "$1" 2>/dev/null || :
        wait "$1" 2>/dev/null || :
}

# tc_class_series FILE DEV CLASSID: "TIME BYTES DROPS PACKETS" per sample of class CLASSID on DEV;
#   DROPS are those of the class's leaf qdisc (which also sees the drops of segments the leaf made
#   of a GSO packet; HTB's class counter does not)
tc_class_series() {
        # a rule's leaf qdiscs hang under its class, or under its two leaf classes (bulk M+0x4000,
        # small packets M+0x8000) when it has them
        local m=$((16#${3#*:}))
        awk -v dev="$2" -v cls="$3" -v bulk="$(printf '%s:%x' "${3%%:*}" $((m + 0x4000)))" \
                -v small="$(printf '%s:%x' "${3%%:*}" $((m + 0x8000)))" '
                $2 != dev { next }
                $3 == "class" && $4 == cls { b[$1] = $6; p[$1] = $7; t[$1] = 1 }
                $3 == "qdisc" && ($5 == cls || $5 == bulk || $5 == small) { d[$1] += $8 }
                END { for (x in t) printf "%s %s %d %s\n", x, b[x], d[x], p[x] }' "$1" | sort -n
}

# tc_qdisc_series FILE DEV HANDLE: "TIME BYTES DROPS PACKETS" per sample of qdisc HANDLE (e.g.
#   6e62:, the root HTB: everything that left through DEV) on DEV, as tc_class_series
tc_qdisc_series() {
        awk -v dev="$2" -v h="$3" '$2 == dev && $3 == "qdisc" && $4 == h { print $1, $6, $8, $7 }' "$1" | sort -n
}

# series_rate SERIES T0 T1: the link-layer bits/s between times T0 and T1 (seconds since the
#   epoch) from a tc_class_series, the byte counts interpolated linearly between the samples
#   around each time; fails if the samples do not cover [T0, T1]
series_rate() {
        awk -v t0="$2" -v t1="$3" '
                function at(x,   i) {
                        for (i = 2; i <= n; i++)
                                if (T[i] >= x) return B[i - 1] + (B[i] - B[i - 1]) * (x - T[i - 1]) / (T[i] - T[i - 1])
                        return -1
                }
                { n++; T[n] = $1; B[n] = $2 }
                END {
                        if (n < 2 || T[1] > t0 || T[n] < t1) exit 1
                        printf "%.0f\n", (at(t1) - at(t0)) * 8 / (t1 - t0)
                }' "$1"
}

# series_delta SERIES COLUMN T0 T1: the growth of a counter column (3: drops, 4: packets) between
#   the last sample at or before T0 and the first at or after T1 (so at least what happened in
#   [T0, T1])
series_delta() {
        awk -v c="$2" -v t0="$3" -v t1="$4" '
                $1 <= t0 { v0 = $c; have0 = 1 }
                $1 >= t1 && !have1 { v1 = $c; have1 = 1 }
                END { if (!have0 || !have1) exit 1; print v1 - v0 }' "$1"
}

# series_drops SERIES T0 T1: the leaf's drops in [T0, T1] (as series_delta)
series_drops() { series_delta "$1" 3 "$2" "$3"; }

# series_packets SERIES T0 T1: the packets the class sent in [T0, T1] (as series_delta)
series_packets() { series_delta "$1" 4 "$2" "$3"; }

# series_monotonic SERIES: the byte, drop and packet counters never go back (a class deleted and
#   made anew starts from 0); prints the first step back otherwise and fails
series_monotonic() {
        awk 'NR > 1 && ($2 < b || $3 < d || $4 < p) { printf "at %s: %s %s %s after %s %s %s\n", $1, $2, $3, $4, b, d, p; bad = 1; exit }
             { b = $2; d = $3; p = $4 }
             END { exit bad }' "$1"
}

# series_worst SERIES T0 T_END [SPAN]: the highest link-layer rate (bits/s) over the windows of
#   SPAN seconds (0.5 unless given) of a tc_class_series, one every half second from T0 + 1 s,
#   ending at most half a second before T_END (0 if none had samples)
series_worst() {
        local worst=0 a b r k span=${4:-0.5}
        for ((k = 2; ; k++)); do
                a=$(nb_at "$2" "$(awk -v k="$k" 'BEGIN { print k / 2 }')")
                b=$(nb_at "$a" "$span")
                awk -v b="$b" -v e="$3" 'BEGIN { exit !(b < e - 0.5) }' || break
                r=$(series_rate "$1" "$a" "$b") || continue
                worst=$(awk -v w="$worst" -v r="$r" 'BEGIN { print (r > w ? r : w) }')
        done
        echo "$worst"
}

# series_table SERIES T0 STEP N [FIRST]: N rows "from-to s  Mbit/s  drops" of STEP seconds, the
#   first from T0 + FIRST * STEP (FIRST: 0), times printed relative to T0; for the log
series_table() {
        local i a b r d first=${5:-0}
        for ((i = first; i < first + $4; i++)); do
                a=$(awk -v t="$2" -v s="$3" -v i="$i" 'BEGIN { printf "%.6f", t + s * i }')
                b=$(awk -v t="$2" -v s="$3" -v i="$i" 'BEGIN { printf "%.6f", t + s * (i + 1) }')
                r=$(series_rate "$1" "$a" "$b") || continue
                d=$(series_drops "$1" "$a" "$b") || d='?'
                awk -v s="$3" -v i="$i" -v r="$r" -v d="$d" \
                        'BEGIN { printf "    %+5.1f-%+5.1f s  %9.2f Mbit/s  %5s drops\n", s * i, s * (i + 1), r / 1e6, d }'
        done
}

# ---------------------------------------------------------------------------------------------
# netbumpd and netbumpctl

# nbctl ARGS...: netbumpctl against this run's daemon (bounded in time)
nbctl() {
        timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" "$@"
}

# nbctl_ok ARGS...: nbctl that must succeed (fatal otherwise), logged
nbctl_ok() {
        local out rc=0
        out=$(nbctl "$@" 2>&1) || rc=$?
        if ((rc != 0)); then
                nb_fail "netbumpctl $* exited $rc: $out"
        fi
        nb_say "netbumpctl $*: ok"
}

# A rule's small-packet leaf classes come a moment after the rule: once no new rule has come for
# 50 ms, at the latest a second after the first rule waiting for them, and after a running
# download's landing (about a second) where there is one (netbump(7), Classes). Until then the
# rule is listed with "complete": false. NB_COMPLETE_WAIT bounds the wait: that delay, twice, and
# headroom for a loaded 2-core machine.
NB_COMPLETE_WAIT=${NB_COMPLETE_WAIT:-5}

_nb_all_complete() {
        local n
        n=$(nbctl --json list 2>/dev/null | jq '[.rules[] | select(.complete != true)] | length') || return 1
        [[ $n == 0 ]]
}

# nb_wait_complete MSG: wait until every listed rule is complete (its classes all made), at most
# NB_COMPLETE_WAIT seconds; a failure (recorded, not fatal) when they are not by then
nb_wait_complete() {
        nb_wait_until "$NB_COMPLETE_WAIT" _nb_all_complete && return 0
        nb_record_failure "$1: rules still incomplete $NB_COMPLETE_WAIT s later: $(nbctl --json list 2>&1 |
                jq -c '[.rules[] | select(.complete != true) | .target]' 2>&1)"
        return 1
}

# _nb_daemon_wait_ready SECONDS: 0 ready, 1 time-out, 2 the daemon exited
_nb_daemon_wait_ready() {
        local i n=$(($1 * 20))
        for ((i = 0; i <= n; i++)); do
                nb_alive "$NB_DAEMON_PID" || return 2
                [[ -S $NB_SOCK ]] && nbctl status >/dev/null 2>&1 && return 0
                ((i < n)) && sleep 0.05
        done
        return 1
}

_nb_daemon_log_tail() {
        [[ -f $NB_TMP/netbumpd.log && -z ${NB_LOG_SHOWN:-} ]] || return 0
        NB_LOG_SHOWN=1
        nb_say "--- last lines of netbumpd.log ---"
        tail -n "${1:-30}" "$NB_TMP/netbumpd.log" | sed 's/^/    /' >&3
}

# shellcheck disable=SC2120
# nb_start_netbumpd [ARGS...]: start netbumpd in ns a with this run's socket, state dir and cgroup
# root; returns once `netbumpctl status` answers (10 s at most, fatal otherwise)
nb_start_netbumpd() {
        [[ -z $NB_DAEMON_PID ]] || nb_fail "netbumpd already running (pid $NB_DAEMON_PID)"
        local t0 t1
        t0=$(nb_now)
        echo "=== start $(date +%T.%N) ===" >>"$NB_TMP/netbumpd.log"
        # NB_DAEMON_ENTER: how it enters ns a ("ip netns exec NS" remounts /sys; the default keeps it)
        local enter=(nsenter --net="$NB_NETNS_A")
        [[ -n ${NB_DAEMON_ENTER:-} ]] && read -ra enter <<<"$NB_DAEMON_ENTER"
        "${enter[@]}" "$NB_NETBUMPD" --foreground --socket "$NB_SOCK" \
                --state-dir "$NB_STATE" --cgroup-root "$NB_CGROOT" "$@" >>"$NB_TMP/netbumpd.log" 2>&1 &
        NB_DAEMON_PID=$!
        nb_track_pid "$NB_DAEMON_PID"
        local ready=0
        _nb_daemon_wait_ready 10 || ready=$?
        if ((ready != 0)); then
                _nb_daemon_log_tail
                if ((ready == 1)); then
                        nb_fail "netbumpd (pid $NB_DAEMON_PID) did not answer 'netbumpctl status' within 10 s"
                fi
                local rc=0
                wait "$NB_DAEMON_PID" || rc=$?
                NB_DAEMON_PID=
                nb_fail "netbumpd exited with status $rc before it was ready"
        fi
        t1=$(nb_now)
        nb_say "netbumpd started (pid $NB_DAEMON_PID, ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s)"
}

# nb_stop_netbumpd [SIGNAL]: send SIGNAL (TERM) and wait 10 s at most for the exit; sets
# NB_DAEMON_STATUS to the exit status (128+N when killed by signal N). Returns 1 if it did not
# exit in time (it is then SIGKILLed).
nb_stop_netbumpd() {
        local sig=${1:-TERM} rc=0
        [[ -n $NB_DAEMON_PID ]] || nb_fail "nb_stop_netbumpd: netbumpd is not running"
        kill -s "$sig" "$NB_DAEMON_PID" 2>/dev/null || :
        # 2>/dev/null: no "Killed" job notice from bash; the status is reported below
        if ! nb_wait_pid "$NB_DAEMON_PID" 10 2>/dev/null; then
                nb_say "netbumpd (pid $NB_DAEMON_PID) still running 10 s after SIG$sig; sending SIGKILL"
                kill -KILL "$NB_DAEMON_PID" 2>/dev/null || :
                wait "$NB_DAEMON_PID" 2>/dev/null || :
                NB_DAEMON_PID=
                NB_DAEMON_STATUS=timeout
                return 1
        fi
        { wait "$NB_DAEMON_PID" || rc=$?; } 2>/dev/null
        nb_say "netbumpd (pid $NB_DAEMON_PID) stopped with SIG$sig, exit status $rc"
        NB_DAEMON_PID=
        NB_DAEMON_STATUS=$rc
}

nb_kill_netbumpd() { nb_stop_netbumpd KILL; }

# ---------------------------------------------------------------------------------------------
# snapshots of everything netbumpd may change

_nb_links_a() {
        ip -n "$NB_NS_A" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'
}

# ids (inode numbers) of the cgroups in the test subtree, one per line
_nb_cgroup_ids() {
        find "$NB_CGROOT" -type d -printf '%i\n' 2>/dev/null
}

# host_snapshot FILE: a stable text picture of what a netbumpd in ns a could change, in its
# namespace and on the host; counters, refcounts and times left out, so a clean teardown compares
# equal. Sections start with "### ".
host_snapshot() {
        local f=$1 dev id ids
        command -v bpftool >/dev/null 2>&1 || nb_skip "'bpftool' is not installed (needed for host_snapshot)"
        {
                echo "### links in ns a"
                # -d without -s prints no counters
                ip -n "$NB_NS_A" -d link show
                for dev in $(_nb_links_a); do
                        echo "### tc qdisc dev $dev"
                        tc -n "$NB_NS_A" qdisc show dev "$dev" | sed -E 's/ refcnt [0-9]+//'
                        echo "### tc class dev $dev"
                        tc -n "$NB_NS_A" class show dev "$dev"
                        for p in root ingress egress; do
                                echo "### tc filter dev $dev $p"
                                if [[ $p == root ]]; then
                                        tc -n "$NB_NS_A" filter show dev "$dev" 2>&1 || :
                                else
                                        tc -n "$NB_NS_A" filter show dev "$dev" "$p" 2>&1 || :
                                fi
                        done
                done
                echo "### bpftool net show in ns a"
                nsenter --net="$NB_NETNS_A" bpftool net show 2>&1 | sed -E 's/ id [0-9]+/ id N/g' || :
                echo "### cgroups below the test root"
                (cd "$NB_CGROOT" && find . -type d | LC_ALL=C sort)
                echo "### bpftool cgroup tree (test root)"
                bpftool cgroup tree "$NB_CGROOT" 2>&1 || :
                echo "### bpf programs attached below the test root"
                ids=$(bpftool -j cgroup tree "$NB_CGROOT" 2>/dev/null |
                        jq -r '.[]?.programs[]?.id' 2>/dev/null | sort -un) || :
                for id in $ids; do
                        bpftool -j prog show id "$id" 2>/dev/null |
                                jq -r '"prog \(.type) \(.name // "-") tag \(.tag)"' || echo "prog id $id gone"
                done
                echo "### bpf links on the test cgroups or ns a"
                local cgids netns_ino
                cgids=$(_nb_cgroup_ids | paste -sd, -)
                netns_ino=$(stat -L -c %i "$NB_NETNS_A")
                bpftool -j link show 2>/dev/null | jq -r --arg cg "[${cgids}]" --argjson ns "$netns_ino" '
                        ($cg | fromjson) as $ids | .[]? |
                        select((.cgroup_id? as $c | $c != null and ($ids | index($c) != null)) or
                               (.netns_ino? == $ns)) |
                        "link \(.type) \(.attach_type // "-") cgroup_id \(.cgroup_id // "-")"' | sort || :
                echo "### /sys/fs/bpf"
                ls -R /sys/fs/bpf 2>&1 || :
                echo "### host: netbump qdiscs and IFBs in the host namespace"
                tc qdisc show 2>/dev/null | grep -E '6e62:|nbifb' | sed -E 's/ refcnt [0-9]+//' || :
                ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^nbifb/ { sub(/@.*/, "", $2); print $2 }' || :
        } >"$f"
}

# assert_same_snapshot A B MSG: the two snapshots are equal (shows the diff otherwise)
assert_same_snapshot() {
        local d
        if d=$(diff -u --label before --label after "$1" "$2"); then
                nb_say "${3:-snapshots equal}: ok"
        else
                nb_record_failure "${3:-snapshots differ}: snapshots differ:"
                sed 's/^/    /' <<<"$d" >&3
        fi
}

# assert_different_snapshot A B MSG: the two snapshots differ (something was changed)
assert_different_snapshot() {
        if cmp -s "$1" "$2"; then
                nb_record_failure "${3:-snapshots differ}: snapshots are equal, expected a difference"
        else
                nb_say "${3:-snapshots differ}: ok"
        fi
}

# snapshot_section FILE TITLE-PREFIX: the lines of the sections whose title starts with the prefix
snapshot_section() {
        awk -v p="### $2" 'index($0, "### ") == 1 { on = index($0, p) == 1; next } on' "$1"
}

# ---------------------------------------------------------------------------------------------
# teardown (EXIT trap): always runs, never exits early, leaves nothing behind

_nb_teardown() {
        local rc=$? pid cg i left=()
        set +e
        trap - EXIT INT TERM
        ((rc == 0 && NB_FAILED > 0)) && rc=1
        if ((rc != 0 && rc != 77)) && [[ -n $NB_TMP ]]; then
                _nb_daemon_log_tail 40
        fi

        # the daemon first, gracefully, so it can remove what it made
        if [[ -n $NB_DAEMON_PID ]] && nb_alive "$NB_DAEMON_PID"; then
                kill -TERM "$NB_DAEMON_PID" 2>/dev/null
                nb_wait_pid "$NB_DAEMON_PID" 10 || kill -KILL "$NB_DAEMON_PID" 2>/dev/null
        fi
        # then every other process this run started (by PID; timeout(1) passes TERM on)
        for pid in "${NB_PIDS[@]}"; do
                nb_alive "$pid" && kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${NB_PIDS[@]}"; do
                nb_wait_pid "$pid" 5 || kill -KILL "$pid" 2>/dev/null
        done
        wait 2>/dev/null

        # cgroups: move strays (processes this run put there) out, end them, remove deepest first
        if [[ -d $NB_CGROOT ]]; then
                for i in 1 2 3; do
                        local strays
                        strays=$(find "$NB_CGROOT" -name cgroup.procs -exec cat {} + 2>/dev/null)
                        [[ -z $strays ]] && break
                        nb_say "teardown: moving stray processes out of $NB_CGROOT: ${strays//$'\n'/ }"
                        for pid in $strays; do
                                echo "$pid" >"$NB_ORIG_CGROUP/cgroup.procs" 2>/dev/null
                                kill -KILL "$pid" 2>/dev/null
                        done
                        sleep 0.1
                done
                for i in $(seq 1 50); do
                        find "$NB_CGROOT" -depth -type d -exec rmdir {} + 2>/dev/null
                        [[ -d $NB_CGROOT ]] || break
                        sleep 0.1
                done
                [[ -d $NB_CGROOT ]] && left+=("cgroup $NB_CGROOT")
        fi

        for ns in "$NB_NS_A" "$NB_NS_B" "${NB_EXTRA_NETNS[@]}"; do
                if [[ -e /run/netns/$ns ]]; then
                        ip netns del "$ns" 2>/dev/null
                        [[ -e /run/netns/$ns ]] && left+=("netns $ns")
                fi
        done

        # a netbumpd killed and not started again leaves its pins: in /sys/fs/bpf where that is a
        # bpffs (named after the state directory, '/' as '-', '.' as '_'), else in a bpffs it
        # mounted in its state directory
        if [[ -n $NB_STATE ]]; then
                local pins
                pins=/sys/fs/bpf/netbump$(realpath -m "$NB_STATE" | tr /. -_)
                [[ -d $pins ]] && rm -rf "$pins"
        fi
        if [[ -n $NB_TMP && -d $NB_TMP ]]; then
                awk -v d="$NB_TMP/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
                        while read -r mnt; do umount -l "$mnt" 2>/dev/null; done
        fi
        if [[ -n $NB_TMP && -d $NB_TMP ]]; then
                if [[ -n ${NB_KEEP_TMP:-} ]]; then
                        nb_say "teardown: kept $NB_TMP"
                else
                        rm -rf "$NB_TMP"
                fi
        fi

        if ((${#left[@]} > 0)); then
                nb_say "FAIL: teardown left: ${left[*]}"
                ((rc == 0 || rc == 77)) && rc=1
        fi
        exit "$rc"
}

trap _nb_teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
