#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# container:NAME, resolved from a runtime's own state: no Docker or Podman daemon runs here, so
# the test lays out Docker's state (var/lib/docker/containers/ID/config.v2.json) under a directory
# of its own (netbumpd --container-state-root) and makes the cgroup Docker's systemd driver would
# (system.slice/docker-ID.scope) below the test's cgroup root:
#   1. with no runtime's state: `set container:web` is refused, saying so; with it, an unknown name
#      and a name Podman does not have are refused, naming the runtime.
#   2. `set container:web 8mbit` limits the container's cgroup (upload within 5%); list shows the
#      name; --json the runtime, ID and cgroup; `set container:<short ID>` is the same cgroup,
#      refused naming container:web.
#   3. a process of the container in a network namespace of its own: the rule says that
#      namespace's traffic is not shaped (list --json paths, set warns).
#   4. the container is recreated under a new ID with the same name: the rule follows the name
#      within a few seconds, without a new set (upload within 5%); while it is gone it says so.
#      Named by a short ID instead, list says which container that is.

source "$(dirname "$0")/lib.sh"

RATE=8mbit
SECS=4
TOL=5
ID1=3f2a9c0d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809
ID2=77aa9c0d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f801

nb_require_daemon
nb_setup
nb_start_iperf_servers 5201
CROOT=$NB_TMP/container-state
mkdir -p "$CROOT"
expected=$(expected_goodput "$RATE" 4)

# docker_container ID NAME: Docker's record of a container
docker_container() {
        mkdir -p "$CROOT/var/lib/docker/containers/$1"
        printf '{"ID":"%s","Name":"/%s","State":{"Running":true}}\n' "$1" "$2" \
                >"$CROOT/var/lib/docker/containers/$1/config.v2.json"
}

nb_start_netbumpd --container-state-root "$CROOT"

# --- 1 ---------------------------------------------------------------------------------------
refused() { # refused TARGET WORDS MSG
        local rc=0 out want=$2
        out=$(nbctl set "$1" "$RATE" 2>&1) || rc=$?
        assert_true "$3 (exit $rc: $out)" eval '((rc != 0)) && [[ $out == *"$want"* ]]'
}
refused container:web "no container runtime's state here" "no runtime state: refused"
docker_container "$ID1" web
refused container:nosuch "no Docker or Podman container is named nosuch" "an unknown name: refused"
refused container:podman:web "Podman's state is not here" "container:podman: where Podman has no state: refused, saying so"
assert_true "no rule was made by the refusals" eval '[[ $(nbctl --json list | jq ".rules | length") == 0 ]]'

# --- 2 ---------------------------------------------------------------------------------------
make_cgroup "system.slice/docker-$ID1.scope" >/dev/null
out=$(nbctl set container:web "$RATE" 2>&1) || nb_fail "set container:web: $out"
nb_say "netbumpctl set container:web $RATE: $out"
c=$(nbctl --json list | jq -c '.rules[] | select(.target == "container:web") | .container')
assert_true "--json: docker, $ID1, web, its cgroup ($c)" \
        test "$(jq -r '"\(.runtime) \(.id) \(.name) \(.cgroup)"' <<<"$c")" = \
        "docker $ID1 web $NB_CGROOT_REL/system.slice/docker-$ID1.scope"
list=$(nbctl list)
assert_true "list shows the name" eval 'grep -qE "^container:web +up +$RATE" <<<"$list"'
refused container:3f2a9c "container:web" "container:<short ID> names the same cgroup: refused, naming container:web"
bps=$(measure_goodput -g "system.slice/docker-$ID1.scope" -t "$SECS" "$NB_B4" 5201) || nb_fail "iperf3 failed"
assert_within "$bps" "$expected" "$TOL" "container:web upload"

# --- 3 ---------------------------------------------------------------------------------------
# shellcheck disable=SC2016
sh -c 'echo $$ > "$0/cgroup.procs" && exec unshare --net sleep 120' "$NB_CGROOT/system.slice/docker-$ID1.scope" &
nspid=$!
nb_track_pid "$nspid"
_in_netns() { [[ $(readlink "/proc/$nspid/ns/net") != "$(readlink /proc/self/ns/net)" ]] && [[ $(cat "/proc/$nspid/comm") == sleep ]]; }
nb_wait_until 5 _in_netns || nb_fail "the process in a namespace of its own did not start"
ns=$(readlink "/proc/$nspid/ns/net")
p=$(nbctl --json list | jq -c --arg n "$ns" '.rules[] | select(.target == "container:web") | .paths[] | select(.namespace == $n)')
assert_true "--json: the namespace $ns of the container's process is a path, not shaped, with the reason ($p)" \
        eval '[[ $(jq -r .shaped <<<"$p") == false && $(jq -r .reason <<<"$p") == *"network namespace"* ]]'
warn=$(nbctl set container:web "$RATE" 2>&1 >/dev/null)
assert_true "set warns about it ($warn)" eval '[[ $warn == *"warning: container:web: traffic through network namespace $ns is not shaped"* ]]'
kill "$nspid" 2>/dev/null
wait "$nspid" 2>/dev/null || :

# --- 4 ---------------------------------------------------------------------------------------
rmdir "$NB_CGROOT/system.slice/docker-$ID1.scope"
rm -r "${CROOT:?}/var/lib/docker/containers/$ID1"
_waits() {
        nbctl --json list | jq -e '.rules[] | select(.target == "container:web") | .waiting != null' >/dev/null
}
assert_true "the rule stays while the container is gone, saying why" nb_wait_until 5 _waits
docker_container "$ID2" web
make_cgroup "system.slice/docker-$ID2.scope" >/dev/null
_followed() {
        nbctl --json list | jq -e --arg id "$ID2" '.rules[] | select(.target == "container:web") | .container.id == $id and .waiting == null' >/dev/null
}
assert_true "within 5 s the rule follows the name to the new container $ID2" nb_wait_until 5 _followed
bps=$(measure_goodput -g "system.slice/docker-$ID2.scope" -t "$SECS" "$NB_B4" 5201) || nb_fail "iperf3 failed"
assert_within "$bps" "$expected" "$TOL" "container:web upload, recreated under a new ID"

# named by a short ID instead: list says which container that is
nbctl unset container:web >/dev/null 2>&1 || nb_record_failure "unset container:web failed"
out=$(nbctl set container:77aa9c "$RATE" 2>&1) || nb_record_failure "set container:77aa9c: $out"
list=$(nbctl list)
assert_true "list names the container a short ID stands for" \
        eval '[[ $list == *"container:77aa9c is docker container web (77aa9c0d5e6f)"* ]]'

nb_finish
