#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Persistent rules (netbump.rules(5)), with real traffic:
#   1. a hand-written rules file is read at start; `set --persistent` writes its line into
#      50-netbumpctl.rules; a plain unset of a persistent rule, unset --persistent of a
#      hand-written one, set --persistent of a pid:, and a non-root --persistent are refused, each
#      naming why (the file and line where there is one);
#   2. a clean stop (SIGTERM) and a start: the rules hold, a download in each cgroup limited to its
#      file's rate (within 10%);
#   3. reload with one bad line (and again with a file over 1 MiB, and a directory named *.rules):
#      refused naming FILE:LINE (or FILE), every rule in force as it was (same targets, rates,
#      classes), a download still limited;
#   4. reload that adds a rule, changes one and removes one while a download runs under a rule
#      whose line did not change: that rule's class is the same (its counters never go back), its
#      worst half second under 1.5 x its limit and the download within 10%; the changed rule and
#      the added one then limit their downloads to their new rates;
#   5. SIGKILL and a start: each persistent rule once, with the class it had (taken over, not made
#      twice); SIGHUP reads the files again;
#   6. a start with a bad line exits 1 naming FILE:LINE, with no IFB made; a relative --config-dir
#      and one that does not exist are refused.

source "$(dirname "$0")/lib.sh"

nb_require_daemon
nb_setup
chmod 0755 "$NB_TMP"
nb_start_iperf_servers 5201 5202 5203
for cg in a b c d; do make_cgroup "$cg" >/dev/null; done
A=cgroup:$(cgroup_rel a) B=cgroup:$(cgroup_rel b) C=cgroup:$(cgroup_rel c) D=cgroup:$(cgroup_rel d)
CONF=$NB_TMP/etc
RULES=$CONF/rules.d
OWN=$RULES/50-netbumpctl.rules
LOCAL=$RULES/10-local.rules
mkdir -p "$RULES"
IFB=

# rule_field TARGET FIELD: a field of TARGET's rule in list --json ("" if no such rule)
rule_field() {
        nbctl --json list | jq -r --arg t "$1" --arg f "$2" '.rules[] | select(.target == $t) | .[$f] // ""'
}

# rules_view: every rule as "target class up down min_up min_down priority source", sorted
rules_view() {
        nbctl --json list | jq -r '.rules[] | "\(.target) \(.class) \(.up) \(.down) \(.min_up) \(.min_down) \(.priority) \(.source)"' | sort
}

# down_rate CG RATE MSG: a 4 s download in CG is within 10% of RATE
down_rate() {
        local bps
        bps=$(measure_goodput -g "$1" -R -t 4 "$NB_B4" 5201) || nb_fail "the download in $1 failed"
        assert_within "$bps" "$(expected_goodput "$2" 4)" 10 "$3"
}

# refused MSG WANT ARGS...: netbumpctl ARGS exits non-zero, its stderr containing WANT
refused() {
        local msg=$1 want=$2 out rc=0
        shift 2
        out=$(nbctl "$@" 2>&1) || rc=$?
        if ((rc != 0)) && [[ $out == *"$want"* ]]; then
                nb_say "$msg: refused ('$out'): ok"
        else
                nb_record_failure "$msg: exit $rc, '$out' (expected a refusal naming '$want')"
        fi
}

# ---------------------------------------------------------------------------------------------
nb_say "--- 1. a hand-written file at start, set --persistent, refusals"
cat >"$LOCAL" <<EOF
# written by hand: downloads of b at 4mbit, d at 3mbit
$B --down 4mbit
$D 3mbit   # d both ways
EOF
nb_start_netbumpd --config-dir "$CONF"
IFB=$(nb_ifb_of "$NB_IF_A")
assert_true "$B from the hand-written file at start, down 4mbit, source 10-local.rules:2" \
        test "$(rule_field "$B" down) $(rule_field "$B" source)" = "4000000 $LOCAL:2"
assert_true "$D from the hand-written file at start, source 10-local.rules:3" \
        test "$(rule_field "$D" source)" = "$LOCAL:3"
nbctl_ok set --persistent "$A" 8mbit
assert_true "set --persistent wrote '$A 8mbit' into 50-netbumpctl.rules" grep -qxF "$A 8mbit" "$OWN"
assert_true "the own file has nothing else but comments" \
        test "$(grep -cv '^#' "$OWN")" = 1
assert_true "$A listed as persistent, from 50-netbumpctl.rules:3" \
        test "$(rule_field "$A" persistent) $(rule_field "$A" source)" = "true $OWN:3"
assert_true "list shows a SOURCE column naming the files" \
        eval 'nbctl list | grep -q "^$A .*50-netbumpctl.rules:3"'
refused "plain unset of a persistent rule" "unset --persistent" unset "$A"
refused "unset --persistent of a hand-written rule" "$LOCAL:2" unset --persistent "$B"
refused "set --persistent of a hand-written rule" "$LOCAL:3" set --persistent "$D" 1mbit
refused "set --persistent of a pid: target" "does not outlive a restart" set --persistent "pid:$$" 1mbit
out=$(run_as_uid 1000 "$NB_NETBUMPCTL" --socket "$NB_SOCK" set --persistent user@1000 1mbit 2>&1) && rc=0 || rc=$?
assert_true "uid 1000: set --persistent refused, 'only root' ($out)" eval '((rc == 1)) && [[ $out == *"only root"* ]]'
out=$(run_as_uid 1000 "$NB_NETBUMPCTL" --socket "$NB_SOCK" reload 2>&1) && rc=0 || rc=$?
assert_true "uid 1000: reload refused, 'only root' ($out)" eval '((rc == 1)) && [[ $out == *"only root"* ]]'
assert_true "nothing written for the refused requests" test "$(grep -cv '^#' "$OWN")" = 1

nb_say "--- 2. clean stop and start: the rules hold"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not stop"
assert_true "exit status 0 after SIGTERM" test "$NB_DAEMON_STATUS" = 0
nb_start_netbumpd --config-dir "$CONF"
nb_wait_complete "after the start"
assert_true "$A back after the start, 8mbit from 50-netbumpctl.rules:3" \
        test "$(rule_field "$A" down) $(rule_field "$A" source)" = "8000000 $OWN:3"
down_rate a 8mbit "after stop and start, the download in a ($A 8mbit)"
down_rate b 4mbit "after stop and start, the download in b ($B --down 4mbit)"

nb_say "--- 3. reload with a bad line: refused by FILE:LINE, nothing in force lost"
rules_view >"$NB_TMP/view.before"
cat >>"$LOCAL" <<EOF
$C 2mbit
cgroup:$(cgroup_rel c)/x 5mbitt
EOF
refused "reload with one bad line" "$LOCAL:5: invalid rate '5mbitt'" reload
rules_view >"$NB_TMP/view.after"
assert_true "the rules in force as before the refused reload" cmp -s "$NB_TMP/view.before" "$NB_TMP/view.after"
sed -i '$d' "$LOCAL" # the bad line goes; c's stays, not read yet
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$RULES/90-huge.rules"
refused "reload with a file over 1 MiB" "90-huge.rules: " reload
rm -f "$RULES/90-huge.rules"
mkdir "$RULES/80-dir.rules"
refused "reload with a directory named *.rules" "80-dir.rules: not a regular file" reload
rmdir "$RULES/80-dir.rules"
rules_view >"$NB_TMP/view.after"
assert_true "the rules in force still as before" cmp -s "$NB_TMP/view.before" "$NB_TMP/view.after"
down_rate b 4mbit "after the refused reloads, the download in b"

nb_say "--- 4. reload: one added, one changed, one removed; the unchanged rule's flow undisturbed"
acls=$(rule_field "$A" class)
cat >"$LOCAL" <<EOF
# written by hand: b now at 6mbit, c added, d gone
$B --down 6mbit
$C --down 2mbit
EOF
tc_sampler_start sampler "$NB_TMP/tc" 14 "$IFB"
t0=$(nb_now)
measure_goodput_bg ca -g a -R -t 10 -O 0 "$NB_B4" 5201
nb_sleep_until "$t0" 4
t_reload=$(nb_now)
out=$(nbctl reload 2>&1) || nb_fail "reload failed: $out"
nb_say "reload $(nb_rel "$t_reload" "$(nb_now)") s: $out"
assert_true "reload says 1 added, 1 changed, 1 removed, 1 unchanged" \
        eval '[[ $out == *": 1 added, 1 changed, 1 removed, 1 unchanged."* ]]'
measure_goodput_wait "$ca" ba || nb_fail "the download in a failed"
t_end=$(nb_now)
tc_sampler_stop "$sampler"
tc_class_series "$NB_TMP/tc" "$IFB" "$acls" >"$NB_TMP/series-a"
if out=$(series_monotonic "$NB_TMP/series-a"); then
        nb_say "$A: its class's counters never went back across the reload: ok"
else
        nb_record_failure "$A: its class's counters went back $out (made anew by the reload?)"
fi
assert_true "$A keeps its class $acls" test "$(rule_field "$A" class)" = "$acls"
worst=$(series_worst "$NB_TMP/series-a" "$t0" "$t_end")
assert_below "$worst" "$(awk -v l="$(rate_to_bps 8mbit)" 'BEGIN { print 1.5 * l }')" \
        "$A: its worst half second, the reload included (limit 8mbit)"
series_table "$NB_TMP/series-a" "$t_reload" 0.5 6 -2 | sed "s/^/    a /" >&3
assert_within "$ba" "$(expected_goodput 8mbit 4)" 10 "$A: the download across the reload"
assert_true "$B changed: down 6mbit, from 10-local.rules:2" \
        test "$(rule_field "$B" down) $(rule_field "$B" source)" = "6000000 $LOCAL:2"
assert_true "$C added: down 2mbit, from 10-local.rules:3" \
        test "$(rule_field "$C" down) $(rule_field "$C" source)" = "2000000 $LOCAL:3"
assert_true "$D removed" test -z "$(rule_field "$D" target)"
nb_wait_complete "after the reload"
measure_goodput_bg cb -g b -R -t 4 "$NB_B4" 5202
measure_goodput_bg cc -g c -R -t 4 "$NB_B4" 5203
measure_goodput_wait "$cb" bb || nb_fail "the download in b failed"
measure_goodput_wait "$cc" bc || nb_fail "the download in c failed"
assert_within "$bb" "$(expected_goodput 6mbit 4)" 10 "$B: the download at its changed limit"
assert_within "$bc" "$(expected_goodput 2mbit 4)" 10 "$C: the download at its added limit"

nb_say "--- 5. SIGKILL and start: each persistent rule once, its class kept; SIGHUP"
rules_view >"$NB_TMP/view.before"
nb_kill_netbumpd
nb_start_netbumpd --config-dir "$CONF"
rules_view >"$NB_TMP/view.after"
assert_true "after SIGKILL and start the same rules, classes and sources ($(wc -l <"$NB_TMP/view.after") rules)" \
        cmp -s "$NB_TMP/view.before" "$NB_TMP/view.after"
assert_true "no rule twice" test "$(nbctl --json list | jq '[.rules[].target] | length == (unique | length)')" = true
sed -i "s|^$C --down 2mbit|$C --down 3mbit|" "$LOCAL"
kill -HUP "$NB_DAEMON_PID"
_c_at_3mbit() { [[ $(rule_field "$C" down) == 3000000 ]]; }
assert_true "SIGHUP read the files again: $C at 3mbit" nb_wait_until 3 _c_at_3mbit
nbctl_ok unset --persistent "$A"
assert_true "unset --persistent removed the line" eval '! grep -qF "$A " "$OWN"'
assert_true "... and the rule" test -z "$(rule_field "$A" target)"
nb_stop_netbumpd TERM || nb_fail "netbumpd did not stop"

nb_say "--- 6. a start with a bad line, or a relative --config-dir: exit 1, nothing touched"
echo "user@0 --up" >>"$LOCAL"
rc=0
out=$(nsenter --net="$NB_NETNS_A" timeout 20 "$NB_NETBUMPD" --socket "$NB_SOCK" --state-dir "$NB_STATE" \
        --cgroup-root "$NB_CGROOT" --config-dir "$CONF" 2>&1) || rc=$?
assert_true "a bad line stops the start: exit 1 naming $LOCAL:4 ($out)" \
        eval '((rc == 1)) && [[ $out == *"$LOCAL:4: --up needs a rate"* ]]'
assert_true "no IFB made" eval '! grep -q nbifb <<<"$(ip -n "$NB_NS_A" -o link show)"'
rc=0
out=$(nsenter --net="$NB_NETNS_A" timeout 20 "$NB_NETBUMPD" --socket "$NB_SOCK" --state-dir "$NB_STATE" \
        --cgroup-root "$NB_CGROOT" --config-dir etc 2>&1) || rc=$?
assert_true "a relative --config-dir refused ($out)" eval '((rc == 1)) && [[ $out == *"absolute path"* ]]'
rc=0
out=$(nsenter --net="$NB_NETNS_A" timeout 20 "$NB_NETBUMPD" --socket "$NB_SOCK" --state-dir "$NB_STATE" \
        --cgroup-root "$NB_CGROOT" --config-dir "$CONF/nonexistent" 2>&1) || rc=$?
assert_true "a --config-dir that does not exist refused ($out)" \
        eval '((rc == 1)) && [[ $out == *"No such file or directory"* ]]'
nb_finish
