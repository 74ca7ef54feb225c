/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rule-index.c: a rule's typed identity, and the rules found by it and by
 * the key the kernel knows their target by. Pure (no kernel, no root).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "target.h"

typedef struct Manager Manager;
typedef struct Rule Rule;

/* What a rule is the rule of: its target's kind and the value that names
 * the target for the rule's life (a user by uid, a socket by inode, a
 * process by PID, a cgroup by path, a unit by name), compared as typed
 * values. Strings are for people: parsed once at the edge, printed back. */
typedef struct RuleId {
	TargetKind kind;
	uint64_t num;    /* user: uid; pid: PID; sock: inode; else 0 */
	const char *str; /* cgroup: path; unit: name; else NULL */
	const char *remote; /* the canonical scope (--remote) of a scoped
			     * rule, NULL: unscoped. Target + scope is the
			     * identity: one target may have an unscoped rule
			     * and several scoped ones (scope.h). */
} RuleId;

/* The identity of a parsed target's unscoped rule; a user by name and a
 * socket by PID:FD must have been resolved (-EINVAL otherwise). */
int rule_id_of(const Target *t, RuleId *ret);
/* A rule's own identity, its scope included. */
int rule_id_of_rule(const Rule *r, RuleId *ret);
bool rule_id_eq(const RuleId *a, const RuleId *b);

/* The live rule of an identity (a pid rule whose process exited no longer
 * answers to its PID), NULL if none. */
Rule *rules_find(Manager *m, const RuleId *id);
Rule *rules_find_target(Manager *m, const Target *t);
/* The rule on t scoped to remote (canonical; NULL: the unscoped one). */
Rule *rules_find_scoped(Manager *m, const Target *t, const char *remote);
Rule *rules_find_user(Manager *m, uid_t uid);
Rule *rules_find_all(Manager *m);
/* The cgroup: rule on the cgroup at path (relative to the mount). */
Rule *rules_find_cgroup_path(Manager *m, const char *path);
/* The cgroup: or unit: rule other than except whose cgroup has that id: the
 * kernel knows a cgroup by its id, so one cgroup has one rule. */
Rule *rules_find_cgroup(Manager *m, uint64_t id, const Rule *except);

void rules_index_add(Manager *m, Rule *r);
void rules_index_del(Manager *m, Rule *r);
/* A unit: rule's cgroup changed (Rule.key): found by the new one. */
void rules_rekey(Manager *m, Rule *r, uint64_t key);
