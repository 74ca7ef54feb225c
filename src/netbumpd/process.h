/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* process.c: pid: rules: the processes they move and the sockets they mirror. */
#pragma once

#include "manager.h"

int manager_own_cgroup(Manager *m);
/* Moves the processes a killed run left in its cgroups back and removes
 * those cgroups, except the ones saved pid rules will adopt. */
int manager_recover_cgroups(Manager *m);
/* Takes over a saved pid rule's cgroup and processes (no move). */
int pid_rule_adopt(Manager *m, Rule *rule, const SavedRule *sr);
void manager_own_cgroup_remove(Manager *m);
int pid_rule_prepare(Manager *m, Rule *rule, const char **ret_reason);
/* Lists the process and its children with the cgroups they are in (the
 * rule's moved[]), to be recorded before pid_rule_attach() moves them into
 * the rule's cgroup and mirrors their open sockets. */
int pid_rule_collect(Manager *m, Rule *rule, const char **ret_reason);
int pid_rule_attach(Manager *m, Rule *rule, const char **ret_reason);
void pid_rule_detach(Manager *m, Rule *rule, bool move_back);
void pid_rule_sync_cookies(Manager *m, Rule *rule);
/* Takes the rule's mirrored sockets out of the rule maps (a sock: rule's
 * stay). */
void pid_rule_forget_cookies(Manager *m, Rule *rule);
int rule_watch_cgroup(Manager *m, Rule *rule);
int rule_watch_pid(Manager *m, Rule *rule);
uint32_t rule_flags(const Rule *r);
