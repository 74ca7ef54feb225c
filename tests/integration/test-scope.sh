#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Scoped rules (--remote): `netbumpctl set user@1000 --remote B/32,B6/128 8mbit` limits uid 1000's
# TCP goodput to the server address B (and B6) to what an 8 Mbit/s link gives, upload and
# download, IPv4 and IPv6 (within 5%; downloads 12% as in test-limit-user), while the same user's
# traffic to a second address C of the same server on the same link stays unlimited
# (> 500 Mbit/s). Then the scoped rule and an unscoped one on the same target live side by side
# and are listed with their scopes; bad scopes are refused with the bad word named and nothing in
# force changes; `unset --remote` removes exactly the scoped rule.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
USER_ID=1000
SECS=4
TOL=5
TOL_DOWN=12
FREE_MIN=500000000

nb_require_daemon
nb_setup
# A second address of the server on the same link: the rule must tell the two apart.
NB_C4=198.18.$NB_NET.3
NB_C6=fd18::$NB_NET:3
ip -n "$NB_NS_B" addr add "$NB_C4/24" dev "$NB_IF_B"
ip -n "$NB_NS_B" addr add "$NB_C6/64" dev "$NB_IF_B" nodad
nb_start_iperf_servers 5201
make_cgroup users >/dev/null

nb_start_netbumpd
SCOPE="$NB_B4/32,$NB_B6/128"
nbctl_ok set "user@$USER_ID" --remote "$SCOPE" "$RATE"
nb_wait_complete "scoped rule"

for fam in 4 6; do
        if [[ $fam == 4 ]]; then in=$NB_B4 out=$NB_C4; else in=$NB_B6 out=$NB_C6; fi
        expected=$(expected_goodput "$RATE" "$fam")
        for dir in up down; do
                opts=(-t "$SECS")
                [[ $dir == down ]] && opts+=(-R)
                bps=$(measure_goodput -g users -u "$USER_ID" "${opts[@]}" "$in" 5201) ||
                        nb_fail "iperf3 client of uid $USER_ID to $in failed ($dir)"
                assert_within "$bps" "$expected" "$([[ $dir == down ]] && echo "$TOL_DOWN" || echo "$TOL")" \
                        "user@$USER_ID $dir v$fam to $in (in scope)"
                bps=$(measure_goodput -g users -u "$USER_ID" "${opts[@]}" "$out" 5201) ||
                        nb_fail "iperf3 client of uid $USER_ID to $out failed ($dir)"
                assert_above "$bps" "$FREE_MIN" "user@$USER_ID $dir v$fam to $out (out of scope, unlimited)"
        done
done

# The rule's class counted what it shaped.
got=$(nbctl --json list | jq -c --arg s "$SCOPE" '[.rules[] | select(.remote == $s) | .up_stats.bytes > 1000000 and .down_stats.bytes > 1000000]')
assert_true "list: the scoped rule's classes counted the shaped bytes ($got)" test "$got" = "[true]"

# --- an unscoped rule on the same target beside it; list names both ----------------------------
nbctl_ok set "user@$USER_ID" 40mbit
got=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote, .parent]] | sort')
want="[[\"user@$USER_ID\",null,null],[\"user@$USER_ID\",\"$SCOPE\",\"user@$USER_ID\"]]"
assert_true "scoped rule nests under the unscoped rule of its target (list: $got)" test "$got" = "$want"
text=$(nbctl list)
assert_true "list shows the scope: $(grep -F -- --remote <<<"$text" | head -1)" grep -qF -- "user@$USER_ID --remote $SCOPE" <<<"$text"
# Still 8mbit to B, 40mbit to C, v4 upload.
bps=$(measure_goodput -g users -u "$USER_ID" -t "$SECS" "$NB_B4" 5201) || nb_fail "iperf3 to $NB_B4 failed"
assert_within "$bps" "$(expected_goodput "$RATE" 4)" "$TOL" "scoped 8mbit under an unscoped 40mbit, up v4 to $NB_B4"
bps=$(measure_goodput -g users -u "$USER_ID" -t "$SECS" "$NB_C4" 5201) || nb_fail "iperf3 to $NB_C4 failed"
assert_within "$bps" "$(expected_goodput 40mbit 4)" "$TOL" "the unscoped 40mbit, up v4 to $NB_C4"

# --- bad scopes: refused, naming the word; the rules stay as they are --------------------------
before=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote, .up, .down]] | sort')
bad() {
        local scope=$1 want=$2 out rc=0
        out=$(nbctl set "user@$USER_ID" --remote "$scope" 1mbit 2>&1) || rc=$?
        if ((rc != 0)) && grep -qF -- "$want" <<<"$out"; then
                nb_say "refused --remote '$scope': ok ($out)"
        else
                nb_record_failure "--remote '$scope': exit $rc, expected a refusal saying '$want': $out"
        fi
}
bad "" "empty scope"
bad "198.18.0.1/15" "host bits set"
bad "198.18.0.0/33" "prefix length must be 0 to 32"
bad "fd18::/129" "prefix length must be 0 to 128"
bad "198.18.0.0/15,,lan" "empty word"
bad "198.18.0.256" "not an IPv4 address"
bad "lan;internet" "not an IPv4 address"
after=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote, .up, .down]] | sort')
assert_true "nothing in force changed by the refusals" test "$before" = "$after"

# --- unset --remote removes that rule only, at once ---------------------------------------------
nbctl_ok unset "user@$USER_ID" --remote "$NB_B6/128,$NB_B4/32"
got=$(nbctl --json list | jq -c '[.rules[] | [.target, .remote]]')
assert_true "unset --remote (scope in another order) removed the scoped rule only ($got)" \
        test "$got" = "[[\"user@$USER_ID\",null]]"
bps=$(measure_goodput -g users -u "$USER_ID" -t "$SECS" "$NB_B4" 5201) || nb_fail "iperf3 to $NB_B4 failed"
assert_within "$bps" "$(expected_goodput 40mbit 4)" "$TOL" "after unset --remote: the unscoped 40mbit, up v4 to $NB_B4"
out=$(nbctl unset "user@$USER_ID" --remote "$NB_B4/32" 2>&1) && nb_record_failure "unset of a scope with no rule succeeded: $out" ||
        nb_say "unset of a scope without a rule refused: ok ($out)"

nb_finish
