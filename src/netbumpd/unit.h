/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* unit.c: unit: rules and transient scopes, through systemd over D-Bus. */
#pragma once

#include "manager.h"

int unit_rule_prepare(Manager *m, Rule *rule, const char **ret_reason);
int unit_rule_sync(Manager *m, Rule *rule);
/* Points a rule that follows a cgroup (unit:, machine:, container:) at
 * cg, relative to the mount (NULL or "": none now). 1: it changed. */
int rule_follow_cgroup(Manager *m, Rule *rule, const char *cg);
void unit_rule_done(Rule *rule);
int manager_bus_open(Manager *m);
bool manager_use_scopes(Manager *m);
int scope_start(Manager *m, Rule *rule, const pid_t *pids, size_t n, const char **ret_reason);
char *unit_of_pid(Manager *m, pid_t pid);
int scope_give_back(Manager *m, const char *unit, pid_t pid);
void scope_stop(Manager *m, Rule *rule);
int manager_stats_timer_start(Manager *m);
