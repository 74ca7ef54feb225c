/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cgroup:PATH and unit:NAME: a cgroup subtree, named by its path or by the
 * systemd unit that has it now. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bpf.h"
#include "cgroup-util.h"
#include "kind.h"
#include "macro.h"
#include "unit.h"

static int cgroup_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *abs = NULL;
	struct stat st;
	int r;

	if (!cg_path_is_inside(rule->target.path, m->cgroup_root))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "%s is outside the cgroup root %s that this netbumpd manages", rule->name, m->cgroup_root);
	if (asprintf(&abs, "%s%s", m->cgroup_mount, streq(rule->target.path, "/") ? "" : rule->target.path) < 0)
		return -ENOMEM;
	if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, -ENOENT, "no such cgroup: %s", rule->target.path);
	r = cg_get_id(abs, &rule->key);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "cannot read the id of cgroup %s: %s",
				 rule->target.path, strerror(-r));
	if (rule->transient)
		rule->cgroup_abs = TAKE_PTR(abs);
	return 0;
}

static void cgroup_place(Manager *m, Rule *rule) {
	free(rule->nest_path);
	rule->nest_path = strdup(rule->target.path);
	rule->nest_uid = cgroup_delegate(m, rule->target.path);
}

/* Delegated to the caller: it owns the directory, as systemd does for
 * user@UID.service. */
static int cgroup_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	*ret = cgroup_delegate(m, rule->target.path);
	return 0;
}

static bool cgroup_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return cgroup_owned_by(m, r->target.path, uid) || uid_runs_in(m, uid, r->target.path);
}

static int cgroup_map_set(Manager *m, Rule *r) {
	return manager_bpf_set_rule(m, r);
}

static void cgroup_map_del(Manager *m, Rule *r) {
	(void)manager_bpf_del_rule(m, r);
}

/* A socket dump walks the kernel's whole TCP hash table, ~2 ms, and a
 * cgroup without processes has no one to run flows: skip it then. (A
 * socket outlives its creator's move to another cgroup; such a flow then
 * lands at once, as a command started under a limit does.) */
static bool cgroup_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	_cleanup_free_ char *abs = NULL;

	if (asprintf(&abs, "%s%s", m->cgroup_mount, streq(rule->target.path, "/") ? "" : rule->target.path) < 0 ||
	    cg_populated(abs) == 0)
		return false;
	(void)flowset_add_subtree(fs, abs);
	return true;
}

const KindOps kind_cgroup = {
	.one_per_cgroup = true,
	.resolve = cgroup_resolve,
	.place = cgroup_place,
	.owner = cgroup_owner,
	.applies_to = cgroup_applies_to,
	.map_set = cgroup_map_set,
	.map_del = cgroup_map_del,
	.flows = cgroup_flows,
};

/* ---- unit:NAME: Rule.key is the unit's cgroup now, 0 while it has none ---- */

static void unit_place(Manager *m, Rule *rule) {
	_cleanup_free_ char *path = NULL;

	free(rule->nest_path);
	rule->nest_path = NULL;
	if (rule->key && cg_path_from_id(m->cgroup_mount, rule->key, &path) >= 0)
		rule->nest_path = TAKE_PTR(path);
	rule->nest_uid = cgroup_delegate(m, rule->nest_path);
}

static int unit_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	const char *why = NULL;
	int r = unit_rule_prepare(m, rule, &why);

	/* No systemd here: the reason says it all, an errno would not help. */
	if (r == -EOPNOTSUPP && why)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: %s", rule->name, why);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: %s: %s", rule->name, why ?: "failed",
				 strerror(-r));
	return 0;
}

static int unit_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	struct stat st;

	*ret = rule->cgroup_abs && stat(rule->cgroup_abs, &st) >= 0 ? st.st_uid : (uid_t)-1;
	return 0;
}

static bool unit_applies_to(Manager *m, const Rule *r, uid_t uid) {
	_cleanup_free_ char *path = NULL;

	if (r->key == 0 || cg_path_from_id(m->cgroup_mount, r->key, &path) < 0)
		return false; /* not running: it applies to nobody now */
	return cgroup_owned_by(m, path, uid) || uid_runs_in(m, uid, path);
}

static int unit_map_set(Manager *m, Rule *r) {
	return r->key ? manager_bpf_set_rule(m, r) : 0; /* not running: nothing to point at yet */
}

static void unit_map_del(Manager *m, Rule *r) {
	if (r->key)
		(void)manager_bpf_del_rule(m, r);
}

static bool unit_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	if (!rule->cgroup_abs || cg_populated(rule->cgroup_abs) == 0)
		return false;
	(void)flowset_add_subtree(fs, rule->cgroup_abs);
	return true;
}

const KindOps kind_unit = {
	.one_per_cgroup = true,
	.resolve = unit_resolve,
	.place = unit_place,
	.owner = unit_owner,
	.applies_to = unit_applies_to,
	.map_set = unit_map_set,
	.map_del = unit_map_del,
	.refresh = unit_rule_sync,
	.flows = unit_flows,
};
