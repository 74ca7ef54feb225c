/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rule.c: rules: set, unset, looked up, restored, and their statistics. */
#pragma once

#include "manager.h"

int rules_minor_alloc(Manager *m, uint32_t *ret);
bool rules_minor_take(Manager *m, uint32_t minor);
void rules_minor_free(Manager *m, uint32_t minor);
/* Points the BPF maps at the rule's class as it is now. */
int rule_bpf_set(Manager *m, Rule *rule);
typedef struct RuleRequest {
	const char *target;
	const char *remote;        /* canonical scope (scope.h), NULL: unscoped */
	bool has_up, has_down;
	uint64_t up_bps, down_bps; /* 0 = unlimited */
	bool has_min_up, has_min_down, has_priority;
	uint64_t min_up, min_down; /* guaranteed inside the parent, 0 = none */
	Priority priority;
	uint32_t minor;            /* the class it had before a restart, 0: any */
	bool transient;            /* end the rule when its cgroup empties */
	uid_t caller;              /* SO_PEERCRED uid of the client */
	/* Putting back a rule acknowledged before a crash: who may, quota and
	 * would-raise were checked then; only the target is resolved again. */
	bool acknowledged;
} RuleRequest;
int manager_set_rule(Manager *m, const RuleRequest *req, Rule **ret, const char **ret_error, char **ret_reason);
int manager_unset_rule(Manager *m, const char *target, uid_t caller, const char **ret_error, char **ret_reason);
/* The same for the rule on target scoped to remote (NULL: unscoped). */
int manager_unset_rule_scoped(Manager *m, const char *target, const char *remote, uid_t caller,
			      const char **ret_error, char **ret_reason);
/* Whether uid may see a rule in List: its own, and those that apply to it. */
bool rule_visible_to(Manager *m, const Rule *r, uid_t uid);
void manager_rules_free(Manager *m);
int manager_refresh_stats(Manager *m);
/* A socket went away (BPF release event): ends its sock rule, forgets it
 * in pid rules. */
void manager_socket_released(Manager *m, uint64_t cookie);
/* Stops every rule; pid rules move their processes back. */
void manager_rules_stop(Manager *m);
/* The rule a target falls under (NULL: none) by the precedence the BPF
 * programs apply: socket > process > cgroup (deepest) > user. */
int manager_rule_for(Manager *m, const char *target, Rule **ret, const char **ret_error, char **ret_reason);
/* The rule a socket falls under, from what a socket dump says of it. */
struct sock_info;
Rule *manager_rule_for_socket(Manager *m, const struct sock_info *si);
/* The same for a parsed target (a user's uid resolved, a socket's inode). */
int manager_rule_for_target(Manager *m, const Target *t, Rule **ret, const char **ret_error, char **ret_reason);
/* A transient rule's cgroup emptied: remove the rule. */
void manager_rule_expired(Manager *m, Rule *rule);

/* The target of a deny or allow (access.h) as a Rule in no list: parsed,
 * checked as a rule's would be (whose it is, inside the cgroup root) and
 * resolved, or leaning on the rule holding its processes (grip.h). */
int rule_carrier_new(Manager *m, const char *target, const char *remote, uid_t caller, Rule **ret,
		     const char **ret_error, char **ret_reason);
/* Brings its processes in (pid:, exe:), once its deny/allow is written. */
int rule_carrier_attach(Manager *m, Rule *rule, const char **ret_error, char **ret_reason);
/* Lets go of it: its processes go back (move_back) unless another rule on
 * the target takes them over. */
void rule_carrier_free(Manager *m, Rule *rule, bool move_back);
