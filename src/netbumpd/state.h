/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* state.c: the state file: what a killed run leaves for the next start. */
#pragma once

#include "manager.h"

/* After a change of this rule alone (the hot path of Set): appends its lines. */
int manager_state_save_rule(Manager *m, Rule *rule);
int manager_state_save(Manager *m);
/* The same without one rule (about to be removed): its processes are kept
 * as origins only, so a crash before they are back still finds their way. */
int manager_state_save_without(Manager *m, const Rule *without);
void manager_state_remove(Manager *m);
/* Reads the ifindexes on which a previous run created the clsact qdisc. */
int manager_state_load_clsact(Manager *m, uint32_t **ret, size_t *ret_n);
int manager_state_load_rules(Manager *m, SavedRule **ret, size_t *ret_n);
void manager_state_close(Manager *m);
void saved_rules_free(SavedRule *v, size_t n);
/* Frees an array of Moved and the strings in it. */
void moved_free(Moved *v, size_t n);
/* Puts back the rules a killed run had acknowledged (rule.c). */
int manager_restore_rules(Manager *m);
