/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * container:NAME: a Docker or Podman container, resolved by container.c
 * from the runtime's own state to its cgroup. Neither runtime is asked
 * (Podman has no daemon; Docker's API would make netbumpd depend on it),
 * and neither tells us when a container starts: the daemon's one-second
 * timer looks again at each rule whose cgroup is gone or not found yet, so
 * a restarted or recreated container is limited within about a second of
 * its start. What runs in that second is not limited: set the rule again
 * after the start (docker start && netbumpctl set ...) to close it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup-util.h"
#include "access.h"
#include "kind.h"
#include "log.h"
#include "macro.h"
#include "named.h"
#include "unit.h"

extern const KindOps kind_unit;

static const char *state_root(Manager *m) {
	return m->container_root ?: "/";
}

static void set_why(NamedTarget *n, char *why) {
	free(n->why);
	n->why = why;
}

/* Finds the container and its cgroup now, and points the rule there:
 * < 0 when the name is not known (*ret_reason why). With force false,
 * a rule whose container and cgroup are what they were is left alone. */
static int container_sync(Manager *m, Rule *rule, bool force, char **ret_reason) {
	NamedTarget *n = rule->named;
	_cleanup_free_ char *reason = NULL, *abs = NULL, *why = NULL;
	Container c = {};
	bool same;
	int r;

	r = container_lookup(state_root(m), rule->target.name, &c, &reason);
	if (r < 0) {
		if (force || n->c.id[0] || rule->key) {
			container_done(&n->c);
			free(n->cgroup);
			n->cgroup = NULL;
			(void)rule_follow_cgroup(m, rule, NULL);
		}
		set_why(n, strdup(reason ?: strerror(-r)));
		if (ret_reason)
			*ret_reason = TAKE_PTR(reason);
		return r;
	}
	r = container_find_cgroup(m->cgroup_root_abs, &c, &abs);
	if (r < 0)
		(void)asprintf(&why, "%s container %.12s is not running (no %s cgroup below the cgroup root %s)",
			       container_runtime_to_string(c.runtime), c.id,
			       c.runtime == RUNTIME_DOCKER ? "docker-ID.scope or docker/ID" : "libpod-ID.scope",
			       m->cgroup_root);
	same = streq(n->c.id, c.id) && ((!abs && !n->cgroup) || (abs && n->cgroup && streq(abs, n->cgroup)));
	if (n->c.id[0] && !streq(n->c.id, c.id))
		log_struct(LOG_INFO, RULE_FIELDS(rule), "%s is now %s container %.12s.", rule->name,
			   container_runtime_to_string(c.runtime), c.id);
	container_done(&n->c);
	n->c = c;
	free(n->cgroup);
	n->cgroup = abs ? strdup(abs) : NULL;
	set_why(n, TAKE_PTR(why));
	if (force || !same)
		(void)rule_follow_cgroup(m, rule, abs ? abs + strlen(m->cgroup_mount) : NULL);
	return 0;
}

static int container_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *reason = NULL;
	uint64_t id;
	int r;

	if (!rule->named) {
		rule->named = calloc(1, sizeof(NamedTarget));
		if (!rule->named)
			return -ENOMEM;
	}
	rule->key = 0;
	r = container_sync(m, rule, true, &reason);
	/* A rule granted before a crash waits for its container. */
	if (r < 0 && r != -ENOMEM && !m->restoring)
		return rule_fail(ret_error, ret_reason, r == -ENOTUNIQ ? E_INVALID : E_NOTFOUND, r, "%s: %s", rule->name,
				 reason ?: strerror(-r));
	if (r == -ENOMEM)
		return r;
	/* Its cgroup has a rule already (the same container by another of
	 * its names, or a cgroup: rule): that one applies, as for any cgroup. */
	/* One cgroup, one rule; a scoped rule or a deny/allow is extra. */
	if (!rule->key && !rule->remote && rule->named->cgroup && cg_get_id(rule->named->cgroup, &id) >= 0) {
		Rule *twin = rules_find_cgroup(m, id, rule);
		if (twin)
			return rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
					 "%s is %s container %.12s, whose cgroup has the rule %s already: change or unset "
					 "%s",
					 rule->name, container_runtime_to_string(rule->named->c.runtime),
					 rule->named->c.id, twin->name, twin->name);
	}
	return 0;
}

static int container_refresh(Manager *m, Rule *rule) {
	return rule->named ? container_sync(m, rule, true, NULL) : 0;
}

static void container_tick(Manager *m, Rule *r) {
	_cleanup_free_ char *path = NULL;

	if (r->target.kind != TARGET_CONTAINER || !r->named)
		return;
	/* Still where it was: nothing to read. */
	if (r->key && r->nest_path && asprintf(&path, "%s%s", m->cgroup_mount, r->nest_path) >= 0 &&
	    access(path, F_OK) >= 0)
		return;
	(void)container_sync(m, r, false, NULL);
}

void manager_containers_tick(Manager *m) {
	if (m->n_units == 0 && !m->access_rules)
		return;
	for (Rule *r = m->rules; r; r = r->next)
		container_tick(m, r);
	/* the targets of deny/allow (access.h) */
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->carrier)
			container_tick(m, a->carrier);
}

/* rule_follow_cgroup() keeps nest_path as the path it followed: looking
 * it up again by id (unit:'s way) needs CAP_DAC_READ_SEARCH, which a
 * netbumpd in a container may not have. */
static void container_place(Manager *m, Rule *r) {
	if (!r->nest_path) {
		kind_unit.place(m, r);
		return;
	}
	r->nest_uid = cgroup_delegate(m, r->nest_path);
}
static int container_owner(Manager *m, Rule *r, uid_t *ret, const char **ret_error, char **ret_reason) {
	*ret = (uid_t)-1; /* a runtime's, not one user's: root's to limit */
	return 0;
}
static bool container_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return kind_unit.applies_to(m, r, uid);
}
static int container_map_set(Manager *m, Rule *r) {
	return kind_unit.map_set(m, r);
}
static void container_map_del(Manager *m, Rule *r) {
	kind_unit.map_del(m, r);
}
static bool container_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	_cleanup_free_ char *abs = NULL;

	if (!rule->key || !rule->nest_path || asprintf(&abs, "%s%s", m->cgroup_mount, rule->nest_path) < 0 ||
	    cg_populated(abs) == 0)
		return false;
	(void)flowset_add_subtree(fs, abs);
	return true;
}

const KindOps kind_container = {
	.one_per_cgroup = true,
	.resolve = container_resolve,
	.place = container_place,
	.owner = container_owner,
	.applies_to = container_applies_to,
	.map_set = container_map_set,
	.map_del = container_map_del,
	.refresh = container_refresh,
	.flows = container_flows,
};
