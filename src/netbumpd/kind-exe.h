/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kind-exe.c: exe: rules, what the rest of the daemon asks of them. */
#pragma once

#include <json-c/json.h>

#include "manager.h"
#include "netbump/exe.h"

/* A process exec'd a program an exe: rule names (the exec hook's event). */
void exe_rules_on_exec(Manager *m, const struct nb_exe_event *ev);
/* The rule's cgroup (relative to the mount) that path is in or below,
 * NULL: none. */
const char *exe_rule_place_for(Manager *m, const Rule *rule, const char *path);
/* The name of the cgroups an exe: rule makes for the processes of the file
 * at path ("netbump-exe-DEV-INO"), by what the file is now. */
int exe_place_name(const char *path, char **ret);
#define EXE_PLACE_PREFIX "netbump-exe-"
/* What List shows of the rule beyond every rule's fields. */
void exe_rule_json(const Rule *rule, struct json_object *o);
