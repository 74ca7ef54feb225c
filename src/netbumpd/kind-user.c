/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* user@UID: every socket a user owns; all: every socket netbumpd shapes,
 * kept in the user map under NB_UID_ALL. */
#include <errno.h>
#include <string.h>

#include "bpf.h"
#include "kind.h"
#include "netbump/netbump.h"

static int user_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	int r = target_resolve(&rule->target);

	if (r == -ENOENT)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "unknown user: %s", rule->target.user_name);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot look up user %s: %s", rule->target.user_name,
				 strerror(-r));
	rule->key = rule->target.uid;
	rule->nest_uid = rule->target.uid;
	return 0;
}

static int user_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	*ret = rule->target.uid;
	return 0;
}

static bool user_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return r->key == uid;
}

static int user_map_set(Manager *m, Rule *r) {
	return manager_bpf_set_rule(m, r);
}

static void user_map_del(Manager *m, Rule *r) {
	(void)manager_bpf_del_rule(m, r);
}

static bool user_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	fs->uid = (int)rule->key;
	return true;
}

const KindOps kind_user = {
	.resolve = user_resolve,
	.owner = user_owner,
	.applies_to = user_applies_to,
	.map_set = user_map_set,
	.map_del = user_map_del,
	.flows = user_flows,
};

static int all_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	rule->key = NB_UID_ALL;
	return 0;
}

static int all_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	*ret = (uid_t)-1; /* everyone's: root's to set */
	return 0;
}

static bool all_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return true;
}

/* Landing a download on everything would dump every socket for little:
 * flows under `all` land at once, like a command started under a limit. */
static bool all_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	return false;
}

const KindOps kind_all = {
	.resolve = all_resolve,
	.owner = all_owner,
	.applies_to = all_applies_to,
	.map_set = user_map_set,
	.map_del = user_map_del,
	.flows = all_flows,
};
