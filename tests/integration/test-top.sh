#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# netbumpctl top, driven in tmux (100x30) with real traffic: an upload (iperf3 -b 40M) and a
# download (iperf3 -R -b 30M), each in a cgroup of its own, both unlimited at first.
#   - both processes show, each with its rate within 10% of what iperf3 measured in the same
#     second (the view counts link-layer bytes, as tc does: iperf3's goodput x 1514/1448);
#   - Home, l, 8mbit, Enter limits the upload process (pid:PID): the status line says so, list
#     has the rule, the row shows the limit and its rate falls to 8mbit (within 10% on average
#     over 3 s, 15% each second);
#   - d, 6mbit on the download process limits its download only, the same way (a receiver's
#     second above 6mbit + 15% is the landing's catch-up, not traffic through the shaper: it is
#     logged and left out of the comparison with iperf3, not out of the one with the limit);
#   - a bad rate and a remove without a rule are refused in the status line; r removes a rule;
#   - g cycles process -> user -> unit -> rule -> connection -> process; q quits with status 0;
#   - by connection (top --once), the upload's data connection names the server's end, falls
#     under the upload's pid: rule, and its rate (tcp_info's counters) is within 15% of 8mbit;
#   - `top --once --json` agrees with `list --json` on the rules (targets, limits) and with the
#     view on the processes;
#   - the LIMIT column shows "-" for the unlimited processes before any key is pressed;
#   - at 80x24 the header shows every column and the limited row its rates, totals and limit
#     whole and under their headers (capture-pane clips what would not fit);
#   - `top --once --json`'s rules carry list's counters (read between two lists) and rates;
#   - another user (uid 1000, under root's user@1000 rule) sees its own process only; its
#     attempt to raise its limit and to remove root's rule (grouped by rule) are refused in its
#     status line (would-raise, not-owner); Ctrl-C ends its view with status 130.

source "$(dirname "$0")/lib.sh"

UP_PACE=40M
DOWN_PACE=30M
SECS=22
TOL=10
USER_ID=1000

nb_require_daemon
command -v tmux >/dev/null 2>&1 || nb_skip "'tmux' is not installed"
nb_setup
nb_start_iperf_servers 5201 5202 5203
# the socket is 0666, but the directory holding it is mktemp's 0700
chmod 0755 "$NB_TMP"
nb_start_netbumpd
make_cgroup up >/dev/null
make_cgroup down >/dev/null

TMUX_SOCK=nbtop-$NB_ID
tm() { tmux -L "$TMUX_SOCK" -f /dev/null "$@"; }

# to_bps RATE: the view's "41.3mbit" (bit/s, tc's units as netbumpctl list writes them) to bits per
# second
to_bps() {
        awk -v r="$1" 'BEGIN {
                if (!match(r, /^[0-9.]+/)) { print -1; exit }
                v = substr(r, 1, RLENGTH); u = substr(r, RLENGTH + 1)
                m["bit"] = 1; m["kbit"] = 1e3; m["mbit"] = 1e6; m["gbit"] = 1e9; m["tbit"] = 1e12
                if (!(u in m)) { print -1; exit }
                printf "%.0f\n", v * m[u]
        }'
}

# screen: the view as text
screen() { tm capture-pane -p -t top; }

# row_field PID N: field N counted from the end of the row of PID (1 = LIMIT, 5 = UP, 4 = DOWN)
row_field() {
        screen | awk -v pid="$1" -v n="$2" '$1 == pid { print $(NF - n + 1); exit }'
}

has_row() { [[ -n $(row_field "$1" 1) ]]; }
screen_has() { screen | grep -qF -- "$1"; }
screen_matches() { screen | grep -qE -- "$1"; }
status_line() { screen | awk 'NF { l = $0 } END { print l }'; }

# start CG PORT OPTS...: a paced iperf3 client in ns a, cgroup CG; prints its PID (the cgroup's
# only process) and records its start time
start_client() {
        local cg=$1 port=$2 json=$NB_TMP/iperf-$1.json
        shift 2
        _nb_argv -g "$cg"
        (exec timeout -k 5 $((SECS + 20)) "${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p "$port" -t "$SECS" -O 0 -i 1 \
                -J --get-server-output --connect-timeout 3000 "$@" >"$json" 2>"$json.err") &
        nb_track_pid $!
        NB_BG_JSON[$!]=$json # read by iperf_client_wait (lib.sh)
        echo "$!" >"$NB_TMP/wrapper-$cg"
        nb_now >"$NB_TMP/t0-$cg"
}

cg_pid() { head -n1 "$(cgroup_dir "$1")/cgroup.procs" 2>/dev/null; }
# rule_limits TARGET: "UP DOWN" of list's rule on TARGET, nothing without one
rule_limits() { nbctl --json list | jq -r --arg t "$1" '.rules[] | select(.target == $t) | "\(.up) \(.down)"'; }
row_limit_is() { [[ $(row_field "$1" 1) == "$2" ]]; }
status_has() { status_line | grep -qF -- "$1"; }
row_has() { screen | awk -v p="$1" '$1 == p' | grep -qF -- "$2"; }
cg_has_pid() { [[ -n $(cg_pid "$1") ]]; }

# sample PID FIELD FILE: appends "seconds-since-start bits/s" of the row's column to FILE
sample() {
        local t v
        t=$(nb_now)
        v=$(row_field "$1" "$2")
        [[ -n $v ]] && printf '%s %s\n' "$t" "$(to_bps "$v")" >>"$3"
}

start_client up 5201 -b "$UP_PACE"
start_client down 5202 -R -b "$DOWN_PACE"
nb_wait_until 5 cg_has_pid up || nb_fail "the upload client did not start"
nb_wait_until 5 cg_has_pid down || nb_fail "the download client did not start"
UP_PID=$(cg_pid up)
DOWN_PID=$(cg_pid down)
nb_info "upload iperf3 pid $UP_PID, download iperf3 pid $DOWN_PID"

# the view, in a private tmux server; its exit status lands in top.rc
tm new-session -d -s top -x 100 -y 30 \
        "$NB_NETBUMPCTL --socket '$NB_SOCK' top; echo \$? > '$NB_TMP/top.rc'"
TMUX_PID=$(tm display-message -p -t top '#{pid}')
nb_track_pid "$TMUX_PID"

nb_wait_until 5 has_row "$UP_PID" || nb_fail "no row for the upload process in the view: $(screen)"
nb_wait_until 5 has_row "$DOWN_PID" || nb_fail "no row for the download process in the view: $(screen)"
assert_true "the view is grouped by process" screen_has "by process"
assert_true "the upload row names iperf3" row_has "$UP_PID" iperf3
# no key pressed yet: both processes are unlimited, their LIMIT column says "-"
assert_true "the unlimited upload row shows '-' as its limit ($(row_field "$UP_PID" 1))" row_limit_is "$UP_PID" -
assert_true "the unlimited download row shows '-' as its limit ($(row_field "$DOWN_PID" 1))" row_limit_is "$DOWN_PID" -
screen | sed 's/^/    | /' >&3

# --- unlimited: rates against iperf3, same seconds ---------------------------------------------
sleep 2
for _ in 1 2 3; do
        sample "$UP_PID" 5 "$NB_TMP/view-up-free"
        sample "$DOWN_PID" 4 "$NB_TMP/view-down-free"
        sleep 1
done

# limit the upload process from the view: the busiest row is the first
tm send-keys -t top Home
tm send-keys -t top l
tm send-keys -t top -l 8mbit
tm send-keys -t top Enter
nb_wait_until 5 row_limit_is "$UP_PID" 8mbit/8mbit ||
        nb_record_failure "the upload row does not show 8mbit/8mbit: $(screen | grep -F -- "$UP_PID")"
assert_true "the status line reports the limit ($(status_line))" status_has "pid:$UP_PID: up and down limited to 8mbit"
assert_true "list has pid:$UP_PID at 8mbit both ways" test "$(rule_limits "pid:$UP_PID")" = "8000000 8000000"

# limit the download process's download: select its row (first once the upload has slowed down)
first_is() { screen | awk 'NR > 2 && NF { print $1; exit }' | grep -qx "$1"; }
nb_wait_until 6 first_is "$DOWN_PID" || nb_record_failure "the download row did not move to the top: $(screen)"
tm send-keys -t top Home
tm send-keys -t top d
tm send-keys -t top -l 6mbit
tm send-keys -t top Enter
nb_wait_until 5 row_limit_is "$DOWN_PID" -/6mbit ||
        nb_record_failure "the download row does not show -/6mbit: $(screen | grep -F -- "$DOWN_PID")"
assert_true "the status line reports the download limit ($(status_line))" \
        status_has "pid:$DOWN_PID: download limited to 6mbit"
assert_true "list has pid:$DOWN_PID with download 6mbit only" test "$(rule_limits "pid:$DOWN_PID")" = "0 6000000"

# --- limited: the rows' rates fall to the limits -------------------------------------------------
sleep 3
for _ in 1 2 3; do
        sample "$UP_PID" 5 "$NB_TMP/view-up-limited"
        sample "$DOWN_PID" 4 "$NB_TMP/view-down-limited"
        sleep 1
done
screen | sed 's/^/    | /' >&3

# --- the snapshot for scripts agrees with list and with the view ---------------------------------
nbctl --json list >"$NB_TMP/list.json"
nbctl --json top --once --group rule >"$NB_TMP/top-rule.json"
nbctl --json top --once >"$NB_TMP/top-proc.json"
nbctl --json list >"$NB_TMP/list2.json"
want=$(jq -c '[.rules[] | {target, up, down}] | sort_by(.target)' "$NB_TMP/list.json")
got=$(jq -c '[.rows[] | select(.target != null) | {target, up, down}] | sort_by(.target)' "$NB_TMP/top-rule.json")
assert_true "top --once --json --group rule has one row per rule with list's limits ($got)" test "$got" = "$want"
got=$(jq -c '[.rules[] | {target, up, down, class, owner}] | sort_by(.target)' "$NB_TMP/top-proc.json")
want=$(jq -c '[.rules[] | {target, up, down, class, owner}] | sort_by(.target)' "$NB_TMP/list.json")
assert_true "top --once --json carries list's rules" test "$got" = "$want"
# the counters of top's rules are list's: read between two lists, they lie between the two; the
# rates as well, within 20% of the limit
# stat FILE TARGET DIR FIELD
stat() {
        jq -r --arg t "$2" --arg d "$3_stats" --arg f "$4" '.rules[] | select(.target == $t) | .[$d][$f] // empty' "$1"
}
for t in "pid:$UP_PID" "pid:$DOWN_PID"; do
        for dir in up down; do
                lim=$(jq -r --arg t "$t" --arg d "$dir" '.rules[] | select(.target == $t) | .[$d]' "$NB_TMP/list.json")
                detail='' ok=1
                for f in bytes packets drops; do
                        lo=$(stat "$NB_TMP/list.json" "$t" "$dir" "$f")
                        v=$(stat "$NB_TMP/top-proc.json" "$t" "$dir" "$f")
                        hi=$(stat "$NB_TMP/list2.json" "$t" "$dir" "$f")
                        detail+=" $f ${lo:-?} <= ${v:-?} <= ${hi:-?};"
                        [[ -n $lo && -n $v && -n $hi ]] && ((lo <= v && v <= hi)) || ok=0
                done
                a=$(stat "$NB_TMP/list.json" "$t" "$dir" rate) b=$(stat "$NB_TMP/top-proc.json" "$t" "$dir" rate)
                c=$(stat "$NB_TMP/list2.json" "$t" "$dir" rate)
                detail+=" rate list ${a:-?}, top ${b:-?}, list ${c:-?}"
                # each rate covers the time since the daemon's previous reading (200 ms to 1 s), so
                # the two need not cover the same time: the closer list within 20% of the limit
                if [[ -z $a || -z $b || -z $c ]] || ! awk -v a="$a" -v b="$b" -v c="$c" -v l="$lim" \
                        'function abs(x) { return x < 0 ? -x : x }
                         BEGIN { d = abs(a - b); if (abs(c - b) < d) d = abs(c - b); exit !(d <= l * 0.20) }'; then
                        ok=0
                fi
                if ((ok)); then
                        nb_say "top --once --json: $t $dir statistics match list's:$detail: ok"
                else
                        nb_record_failure "top --once --json: $t $dir statistics do not match list's:$detail"
                fi
        done
done
got=$(jq -r --argjson p "$UP_PID" '.rows[] | select(.pid == $p) | "\(.rule) \(.up) \(.down)"' "$NB_TMP/top-proc.json")
assert_true "top --once --json: pid $UP_PID falls under pid:$UP_PID at 8mbit ($got)" \
        test "$got" = "pid:$UP_PID 8000000 8000000"
got=$(jq -r --argjson p "$DOWN_PID" '.rows[] | select(.pid == $p) | "\(.rule) \(.up) \(.down)"' "$NB_TMP/top-proc.json")
assert_true "top --once --json: pid $DOWN_PID falls under pid:$DOWN_PID, download 6mbit ($got)" \
        test "$got" = "pid:$DOWN_PID 0 6000000"
got=$(jq -r --argjson p "$UP_PID" '.rows[] | select(.pid == $p) | .up_rate' "$NB_TMP/top-proc.json")
assert_within "${got:-0}" 8000000 "$TOL" "top --once --json: upload rate of pid $UP_PID"

# --- errors show in the status line; r removes ---------------------------------------------------
tm send-keys -t top u
tm send-keys -t top -l fast
tm send-keys -t top Enter
nb_wait_until 3 status_has "Invalid rate 'fast'" ||
        nb_record_failure "a bad rate is not refused in the status line: $(status_line)"
# the selection stayed on the download process: remove its rule, then once more (nothing left)
tm send-keys -t top r
nb_wait_until 3 status_has "pid:$DOWN_PID: limit removed." ||
        nb_record_failure "r did not report the removal: $(status_line)"
assert_true "list no longer has pid:$DOWN_PID" test -z "$(rule_limits "pid:$DOWN_PID")"
nb_wait_until 3 row_limit_is "$DOWN_PID" - ||
        nb_record_failure "the download row still shows a limit: $(screen | grep -F -- "$DOWN_PID")"
tm send-keys -t top r
nb_wait_until 3 status_has "pid:$DOWN_PID has no limit." ||
        nb_record_failure "a second r is not refused in the status line: $(status_line)"

# --- groupings -------------------------------------------------------------------------------------
for g in user unit rule connection process; do
        tm send-keys -t top g
        nb_wait_until 3 screen_has "by $g" || nb_record_failure "g did not switch to grouping by $g: $(screen | head -n 2)"
        case $g in
        user) nb_wait_until 3 screen_matches "^ +0 root +2 processes" ||
                nb_record_failure "by user: no row for root with 2 processes: $(screen)" ;;
        unit) nb_wait_until 3 screen_has "$NB_CGROOT_REL/down" ||
                nb_record_failure "by unit: no row for the download's cgroup: $(screen)" ;;
        rule) nb_wait_until 3 screen_matches "pid:$UP_PID .*8mbit/8mbit" ||
                nb_record_failure "by rule: no row for pid:$UP_PID at 8mbit: $(screen)" ;;
        connection) nb_wait_until 3 screen_matches "^ *$UP_PID .*tcp $NB_B4:5201 <- " ||
                nb_record_failure "by connection: no row for the upload's connection to $NB_B4:5201: $(screen)" ;;
        esac
done

# --- by connection, once: the upload's data connection, its rule, and its rate from the socket's
# own counters (payload, as iperf3 counts it): within 15% of the 8mbit limit's goodput
nbctl --json top --once --group connection >"$NB_TMP/top-conn.json"
conn=$(jq -c --argjson p "$UP_PID" '[.rows[] | select(.pid == $p)] | max_by(.up_rate)' "$NB_TMP/top-conn.json")
assert_true "top --once --group connection: the upload's busiest connection is to $NB_B4:5201 ($conn)" \
        eval '[[ $(jq -r .name <<<"$conn") == "tcp $NB_B4:5201 <- "* ]]'
assert_true "... falls under pid:$UP_PID and acts on its socket ($conn)" \
        eval '[[ $(jq -r .rule <<<"$conn") == "pid:$UP_PID" && $(jq -r .target <<<"$conn") == sock:* ]]'
assert_within "$(jq -r .up_rate <<<"$conn")" "$(expected_goodput 8mbit 4)" 15 \
        "top --once --group connection: the upload connection's rate"

# --- 80x24 ------------------------------------------------------------------------------------------
tm resize-window -t top -x 80 -y 24
small_with_row() { (($(screen | wc -l) <= 24)) && has_row "$1"; }
nb_wait_until 3 small_with_row "$UP_PID" ||
        nb_record_failure "after a resize to 80x24 the upload row is gone: $(screen)"
# capture-pane clips at the pane's width, so what was cut off is what is missing: the header with
# every column, and the upload row with its rates, totals and limit whole, under their headers
header=$(screen | sed -n 2p)
assert_true "at 80x24 the header shows every column ($header)" \
        eval '[[ $header =~ ^\ +PID\ USER\ +COMMAND\ +UP\ +DOWN\ +UP-TOTAL\ +DN-TOTAL\ LIMIT\ UP/DN\ *$ ]]'
row=$(screen | awk -v p="$UP_PID" '$1 == p')
read -ra f <<<"$row"
n=${#f[@]}
assert_true "at 80x24 the upload row's rates are whole (${f[n - 5]:-?} ${f[n - 4]:-?})" \
        test "$(to_bps "${f[n - 5]:-x}")" -ge 0 -a "$(to_bps "${f[n - 4]:-x}")" -ge 0
assert_true "at 80x24 the upload row's totals are whole (${f[n - 3]:-?} ${f[n - 2]:-?})" \
        eval '[[ ${f[n - 3]:-} =~ ^[0-9.]+(B|KiB|MiB|GiB)$ && ${f[n - 2]:-} =~ ^[0-9.]+(B|KiB|MiB|GiB)$ ]]'
assert_true "at 80x24 the upload row still shows its limit" row_limit_is "$UP_PID" 8mbit/8mbit
# each value ends where its header does (right-aligned) or starts where it does (the limit)
endcol() { awk -v w="$2" '{ i = index($0, w); print (i ? i + length(w) - 1 : -1) }' <<<"$1"; }
assert_true "at 80x24 the UP rate ends under UP (column $(endcol "$row" " ${f[n - 5]:-x} "), header $(endcol "$header" " UP "))" \
        test "$(endcol "$row" " ${f[n - 5]:-x} ")" = "$(endcol "$header" " UP ")"
lim_at=$(awk -v w="${f[n - 1]:-x}" '{ print index($0, w) }' <<<"$row")
assert_true "at 80x24 the limit starts under LIMIT (column $lim_at, header $(awk '{ print index($0, "LIMIT") }' <<<"$header"))" \
        test "$lim_at" = "$(awk '{ print index($0, "LIMIT") }' <<<"$header")"
screen | sed 's/^/    | /' >&3

tm send-keys -t top q
nb_wait_until 5 test -s "$NB_TMP/top.rc" || nb_record_failure "q did not end netbumpctl top"
assert_true "netbumpctl top exited with status 0 ($(cat "$NB_TMP/top.rc" 2>/dev/null))" \
        test "$(cat "$NB_TMP/top.rc" 2>/dev/null)" = 0

# --- another user: its own traffic only, refusals in its status line ---------------------------
if getent passwd "$USER_ID" >/dev/null; then
        TMUX_SOCK_U=nbtop-$NB_ID-u
        tmu() { run_as_uid "$USER_ID" tmux -L "$TMUX_SOCK_U" -f /dev/null "$@"; }
        screen_u() { tmu capture-pane -p -t utop; }
        user_row_has() { screen_u | awk -v p="$1" '$1 == p' | grep -qF -- "$2"; }
        user_status_has() { screen_u | awk 'NF { l = $0 } END { print l }' | grep -qF -- "$1"; }

        nbctl_ok set "user@$USER_ID" 4mbit
        make_cgroup user >/dev/null
        _nb_argv -g user -u "$USER_ID"
        (exec timeout -k 5 30 "${_NB_ARGV[@]}" iperf3 -c "$NB_B4" -p 5203 -t 10 -b 10M \
                >"$NB_TMP/iperf-user.log" 2>&1) &
        nb_track_pid $!
        nb_wait_until 5 cg_has_pid user || nb_fail "the uid $USER_ID client did not start"
        USER_PID=$(cg_pid user)
        # its exit status lands in utop.rc; the shell ignores SIGINT so that it lives to write it
        # (netbumpctl sets its own handler)
        UDIR=$NB_TMP/u
        mkdir "$UDIR"
        chown "$USER_ID:$USER_ID" "$UDIR"
        tmu new-session -d -s utop -x 100 -y 30 \
                "trap '' INT; $NB_NETBUMPCTL --socket '$NB_SOCK' top; echo \$? > '$UDIR/utop.rc'"
        nb_track_pid "$(tmu display-message -p -t utop '#{pid}')"
        nb_wait_until 5 user_row_has "$USER_PID" 4mbit/4mbit ||
                nb_record_failure "uid $USER_ID's view has no row for its iperf3 under 4mbit: $(screen_u)"
        others=$(screen_u | awk -v a="$UP_PID" -v b="$DOWN_PID" '$1 == a || $1 == b' | wc -l)
        assert_true "uid $USER_ID's view does not show root's processes ($others rows do)" test "$others" = 0
        got=$(run_as_uid "$USER_ID" timeout -k 2 15 "$NB_NETBUMPCTL" --socket "$NB_SOCK" --json top --once |
                jq -c '[.rows[].pid] | sort')
        assert_true "uid $USER_ID's top --once --json has its process only ($got)" test "$got" = "[$USER_PID]"
        tmu send-keys -t utop Home l
        tmu send-keys -t utop -l 20mbit
        tmu send-keys -t utop Enter
        nb_wait_until 3 user_status_has "Set pid:$USER_PID refused: would-raise" ||
                nb_record_failure "raising its own limit is not refused in uid $USER_ID's status line: $(screen_u | tail -n 1)"
        assert_true "no rule pid:$USER_PID was made" test -z "$(rule_limits "pid:$USER_PID")"
        # root's rule on this user, grouped by rule: removing it is refused, it is not the user's
        tmu send-keys -t utop g g g
        nb_wait_until 3 eval 'screen_u | sed -n 1p | grep -qF "by rule"' ||
                nb_record_failure "g g g did not group uid $USER_ID's view by rule: $(screen_u | head -n 1)"
        user_rule_row() { screen_u | awk -v t="user@$USER_ID" 'index($0, t) && $NF == "4mbit/4mbit"' | grep -q .; }
        nb_wait_until 3 user_rule_row ||
                nb_record_failure "uid $USER_ID's view by rule has no row for root's user@$USER_ID: $(screen_u)"
        tmu send-keys -t utop Home r
        if nb_wait_until 3 user_status_has "Unset user@$USER_ID refused: not-owner: the rule on user@$USER_ID was made by uid 0"; then
                nb_say "uid $USER_ID removing root's rule: refused in its status line ($(screen_u | awk 'NF { l = $0 } END { print l }')): ok"
        else
                nb_record_failure "removing root's rule is not refused as not-owner in uid $USER_ID's status line: $(screen_u | tail -n 1)"
        fi
        assert_true "root's user@$USER_ID rule is still there" test "$(rule_limits "user@$USER_ID")" = "4000000 4000000"
        # Ctrl-C ends the view with 128 + SIGINT
        tmu send-keys -t utop C-c
        nb_wait_until 5 test -s "$UDIR/utop.rc" || nb_record_failure "Ctrl-C did not end uid $USER_ID's view"
        assert_true "netbumpctl top exited with status 130 on Ctrl-C ($(cat "$UDIR/utop.rc" 2>/dev/null))" \
                test "$(cat "$UDIR/utop.rc" 2>/dev/null)" = 130
else
        nb_say "no user with uid $USER_ID: the other user's view is not checked"
fi

# --- the view's rates against iperf3's, second by second -----------------------------------------------
for cg in up down; do
        iperf_client_wait "$(cat "$NB_TMP/wrapper-$cg")" || nb_fail "iperf3 ($cg) failed"
done

# check_rates CG VIEWFILE LIMIT|- EACH MSG: each sample of the view against the link-layer rate of
# the receiver's iperf3 interval in the second before it (the daemon's rates cover the last second),
# or against LIMIT: within EACH % one by one, within TOL % on average. Under a limit, what the
# view counts on the way out is measured before the shaper: a second with drops and retransmits
# can show more than went through it, hence EACH. CAP (a rate, optional): a receiver's second above
# CAP + 15% is no truth for the view and is skipped (logged): a download that lost packets in the
# landing gets the data held behind each hole in one go when the resent packet comes through, far
# above what the shaper passed that second (test-limit-pid logs these catch-ups).
check_rates() {
        local cg=$1 file=$2 limit=$3 each=$4 msg=$5 cap=${6:-} t0 t bps iv truth at sum_v=0 sum_t=0 n=0
        t0=$(cat "$NB_TMP/t0-$cg")
        receiver_intervals "$NB_TMP/iperf-$cg.json" >"$NB_TMP/intervals-$cg"
        [[ -s $file ]] || { nb_record_failure "$msg: no sample of the view"; return; }
        while read -r t bps; do
                at=$(awk -v t="$t" -v t0="$t0" 'BEGIN { printf "%.1f", t - t0 }')
                # the receiver's interval that holds the middle of the view's last second
                iv=$(awk -v at="$(awk -v t="$t" -v t0="$t0" 'BEGIN { printf "%.3f", t - t0 - 0.5 }')" \
                        '$1 <= at && at < $2 { printf "%.0f", $3 * 1514 / 1448; exit }' "$NB_TMP/intervals-$cg")
                if [[ -z $iv ]]; then
                        nb_record_failure "$msg: no iperf3 interval at $at s"
                        continue
                fi
                if [[ -n $cap ]] && (($(awk -v v="$iv" -v c="$(rate_to_bps "$cap")" 'BEGIN { print (v > c * 1.15) }'))); then
                        nb_say "$msg at $at s: iperf3 that second $(nb_mbit "$iv") Mbit/s link-layer, above $cap + 15%: a catch-up, skipped"
                        continue
                fi
                truth=$iv
                [[ $limit != - ]] && truth=$(rate_to_bps "$limit")
                assert_within "$bps" "$truth" "$each" "$msg at $at s (iperf3 that second: $(nb_mbit "$iv") link-layer)"
                sum_v=$((sum_v + bps)) sum_t=$((sum_t + truth)) n=$((n + 1))
        done <"$file"
        if ((n > 0)); then
                assert_within "$((sum_v / n))" "$((sum_t / n))" "$TOL" "$msg, mean of $n samples"
        else
                nb_record_failure "$msg: no sample left to compare"
        fi
}
check_rates up "$NB_TMP/view-up-free" - "$TOL" "upload, unlimited: the view's rate vs iperf3"
check_rates down "$NB_TMP/view-down-free" - "$TOL" "download, unlimited: the view's rate vs iperf3"
check_rates up "$NB_TMP/view-up-limited" - 15 "upload, limited: the view's rate vs iperf3"
check_rates up "$NB_TMP/view-up-limited" 8mbit 15 "upload, limited: the view's rate vs the 8mbit limit"
check_rates down "$NB_TMP/view-down-limited" - 15 "download, limited: the view's rate vs iperf3" 6mbit
check_rates down "$NB_TMP/view-down-limited" 6mbit 15 "download, limited: the view's rate vs the 6mbit limit"

nb_finish
