/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * paths.c: which ways a rule's traffic takes and whether each is shaped,
 * so that no rule is a silent no-op: this namespace's interfaces (one left
 * alone because someone else's root qdisc is there is not shaped), and the
 * other network namespaces its processes run in (netns-state.h).
 */
#pragma once

#include <json-c/json.h>

#include "manager.h"

/* Adds "paths" (one object per way: "interface" or "namespace", "shaped",
 * "reason" where not), "unshaped" (how many are not) and, for machine: and
 * container: rules, what the name resolved to, to a rule's JSON. The
 * namespaces are kept in the rule (Rule.paths, paths-cache.h) for the next
 * call while nothing that could change them has happened. */
void rule_paths_json(Manager *m, Rule *r, json_object *o);

/* Every --interface must name an interface that exists: one that names
 * nothing would shape nothing, silently. Checked before anything is
 * touched. */
int manager_check_interfaces(Manager *m);
