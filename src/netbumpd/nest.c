/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-util.h"
#include "macro.h"
#include "manager.h"
#include "nest.h"
#include "netbump/netbump.h"

static const char *const priority_names[_PRIORITY_MAX] = {
	[PRIORITY_HIGH] = "high",
	[PRIORITY_NORMAL] = "normal",
	[PRIORITY_LOW] = "low",
};

const char *priority_to_string(Priority p) {
	return p < _PRIORITY_MAX ? priority_names[p] : "normal";
}

int priority_from_string(const char *s, Priority *ret) {
	for (Priority p = 0; p < _PRIORITY_MAX; p++)
		if (s && streq(s, priority_names[p])) {
			*ret = p;
			return 0;
		}
	return -EINVAL;
}

/* ---- containment ---- */

enum {
	RANK_ALL,
	RANK_USER,
	RANK_CGROUP,
	RANK_PID,
	RANK_SOCK,
};

static int rank(const Rule *r) {
	switch (r->target.kind) {
	case TARGET_ALL:
		return RANK_ALL;
	case TARGET_USER:
		return RANK_USER;
	case TARGET_CGROUP:
	case TARGET_UNIT:
	case TARGET_MACHINE:
	case TARGET_CONTAINER:
		return RANK_CGROUP;
	case TARGET_PID:
	case TARGET_EXE: /* its processes, wherever they run */
		return RANK_PID;
	default:
		return RANK_SOCK;
	}
}

/* A pid rule's own cgroup, relative to the mount: sockets made in it
 * after the move are its process's. */
static const char *pid_own_path(const Rule *r) {
	const Manager *m = r->manager;
	size_t n;

	if (!r->cgroup_abs || !m || !m->cgroup_mount)
		return NULL;
	n = strlen(m->cgroup_mount);
	if (strncmp(r->cgroup_abs, m->cgroup_mount, n) != 0)
		return NULL;
	return r->cgroup_abs[n] ? r->cgroup_abs + n : "/";
}

/* Whether a and b are rules on the same target (their scopes aside). */
static bool same_target(const Rule *a, const Rule *b) {
	RuleId x, y;

	return rule_id_of(&a->target, &x) >= 0 && rule_id_of(&b->target, &y) >= 0 && rule_id_eq(&x, &y);
}

bool nest_contains(const Rule *q, const Rule *r) {
	int rq = rank(q), rr = rank(r);

	/* A scoped rule holds a part of its target's traffic that no other
	 * rule's is sure to lie in: it contains none. Its target's unscoped
	 * rule contains it. */
	if (q == r || q->remote)
		return false;
	if (r->remote && same_target(q, r))
		return true;
	if (rq > rr || (rq == rr && rq != RANK_CGROUP))
		return false;
	switch (rq) {
	case RANK_ALL:
		return true;
	case RANK_USER:
		return r->nest_uid != (uid_t)-1 && (uint64_t)r->nest_uid == q->key;
	case RANK_CGROUP:
		if (!q->nest_path || !r->nest_path || !cg_path_is_inside(r->nest_path, q->nest_path))
			return false;
		/* A cgroup contains itself, not its own rule's twin. */
		return rr != RANK_CGROUP || strlen(r->nest_path) > strlen(q->nest_path);
	case RANK_PID: {
		const char *own = pid_own_path(q);

		for (size_t k = 0; k < q->n_cookies; k++)
			if (q->cookies[k] == r->key)
				return true;
		return own && r->nest_path && cg_path_is_inside(r->nest_path, own);
	}
	default:
		return false;
	}
}

/* The unit rule whose cgroup is path, if any (units are few). */
static Rule *unit_rule_at(Manager *m, const char *path) {
	if (m->n_units == 0)
		return NULL;
	for (Rule *r = m->rules; r; r = r->next)
		if (target_kind_follows_cgroup(r->target.kind) && !r->remote && r->nest_path && streq(r->nest_path, path))
			return r;
	return NULL;
}

/* The rule on the cgroup at path (a cgroup: rule, else a unit's). */
static Rule *cgroup_rule_at(Manager *m, const char *path) {
	return rules_find_cgroup_path(m, path) ?: unit_rule_at(m, path);
}

Rule *nest_find_parent(Manager *m, const Rule *r) {
	char path[TARGET_PATH_MAX];
	Rule *q;
	int rr = rank(r);

	/* A scoped rule: under its target's unscoped rule where there is one
	 * (or the rule on the same cgroup by another name), else where that
	 * rule would be. */
	if (r->remote) {
		q = rules_find_target(m, &r->target);
		if (!q && rr == RANK_CGROUP && r->nest_path)
			q = cgroup_rule_at(m, r->nest_path);
		if (q && q != r)
			return q;
	}
	if (rr == RANK_ALL)
		return NULL;
	if (rr == RANK_SOCK)
		for (q = m->rules; q; q = q->next)
			if ((q->target.kind == TARGET_PID || q->target.kind == TARGET_EXE) && !q->exited &&
			    nest_contains(q, r))
				return q;
	if (rr >= RANK_CGROUP && r->nest_path && strlen(r->nest_path) < sizeof(path)) {
		/* The cgroup itself for what lives in it (a pid rule's origin,
		 * a socket's), only its ancestors for a cgroup's own rule. */
		strcpy(path, r->nest_path);
		for (bool self = rr != RANK_CGROUP;; self = true) {
			if (self) {
				q = cgroup_rule_at(m, path);
				if (q && q != r)
					return q;
			}
			if (streq(path, "/"))
				break;
			char *slash = strrchr(path, '/');
			if (slash == path)
				slash[1] = '\0';
			else
				*slash = '\0';
		}
	}
	if (rr >= RANK_CGROUP && r->nest_uid != (uid_t)-1) {
		q = rules_find_user(m, r->nest_uid);
		if (q)
			return q;
	}
	q = rules_find_all(m);
	return q != r ? q : NULL;
}

static Rule **children_of(Manager *m, Rule *parent) {
	return parent ? &parent->children : &m->top_rules;
}

void nest_link(Manager *m, Rule *r, Rule *parent) {
	Rule **head = children_of(m, parent);

	r->parent = parent;
	r->sibling = *head;
	*head = r;
}

void nest_unlink(Manager *m, Rule *r) {
	for (Rule **q = children_of(m, r->parent); *q; q = &(*q)->sibling)
		if (*q == r) {
			*q = r->sibling;
			break;
		}
	r->parent = NULL;
	r->sibling = NULL;
}

static int contained_add(const Rule *list, const Rule *r, Rule ***v, int *n) {
	for (const Rule *c = list; c; c = c->sibling) {
		if (!nest_contains(r, c))
			continue;
		Rule **nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		nv[(*n)++] = (Rule *)c;
	}
	return 0;
}

int nest_contained(Manager *m, const Rule *parent, const Rule *r, Rule ***ret) {
	Rule **v = NULL;
	int n = 0, k;

	*ret = NULL;
	k = contained_add(parent ? parent->children : m->top_rules, r, &v, &n);
	/* A cgroup's rule comes before a user's: a process or a delegated
	 * cgroup of a user, inside the user's rule so far, moves into the
	 * rule of a cgroup of root's around it, outside that user's rule. */
	if (k >= 0 && rank(r) == RANK_CGROUP)
		for (const Rule *u = m->rules; u && k >= 0; u = u->next)
			if (rank(u) == RANK_USER && u != parent)
				k = contained_add(u->children, r, &v, &n);
	if (k < 0) {
		free(v);
		return k;
	}
	*ret = v;
	return n;
}

unsigned nest_depth(const Rule *r) {
	unsigned d = 0;
	for (; r; r = r->parent)
		d++;
	return d;
}

unsigned nest_height(const Rule *r) {
	unsigned h = 0;
	for (const Rule *c = r->children; c; c = c->sibling) {
		unsigned k = nest_height(c) + 1;
		if (k > h)
			h = k;
	}
	return h;
}

/* ---- classes ---- */

static uint64_t limit_of(const Rule *r, bool up) {
	return up ? r->up_bps : r->down_bps;
}

static uint64_t min_of(const Rule *r, bool up) {
	return up ? r->min_up : r->min_down;
}

bool nest_has_class(const Rule *r, bool up) {
	for (; r; r = r->parent)
		if (limit_of(r, up))
			return true;
	return false;
}

/* What a class guarantees its children: a top-level class its limit, a
 * nested one its minimum. */
static uint64_t guaranteed(const Rule *r, bool up) {
	if (!r->parent || !nest_has_class(r->parent, up))
		return limit_of(r, up);
	return min_of(r, up) ?: NEST_RATE_NONE;
}

/* The rate a child gets: its minimum, scaled down with its siblings' when
 * together they ask more than the parent guarantees (so that a child under
 * its rate, which HTB lets send without asking the parent, never takes the
 * parent past its own), and never below NEST_RATE_NONE. */
static uint64_t child_rate(const Rule *parent, const Rule *child, bool up) {
	uint64_t avail = guaranteed(parent, up), sum = 0, want = min_of(child, up);

	if (want == 0)
		return NEST_RATE_NONE;
	for (const Rule *c = parent->children; c; c = c->sibling)
		if (nest_has_class(c, up))
			sum += min_of(c, up);
	if (sum > avail && sum > 0)
		want = (uint64_t)((unsigned __int128)want * avail / sum);
	return want > NEST_RATE_NONE ? want : NEST_RATE_NONE;
}

void nest_class_spec(const Rule *r, bool up, ClassSpec *ret) {
	uint64_t limit = limit_of(r, up);
	bool nested = r->parent && nest_has_class(r->parent, up);

	*ret = (ClassSpec){};
	if (!limit && !nested)
		return;
	ret->on = true;
	ret->parent = nested ? NB_CLASSID(r->parent->minor) : (uint32_t)(NB_HTB_MAJOR << 16);
	ret->ceil = limit ?: NEST_CEIL_INHERIT;
	ret->rate = nested ? child_rate(r->parent, r, up) : limit;
	if (ret->rate > ret->ceil)
		ret->rate = ret->ceil;
	/* Its own traffic (its leaves) is guaranteed what it is alone; with
	 * children, no more than a child without a minimum: a guaranteed
	 * leaf is served before anything that borrows, and would starve
	 * them. */
	bool has_children = false;
	for (const Rule *c = r->children; c; c = c->sibling)
		has_children = has_children || nest_has_class(c, up);
	ret->own = has_children ? NEST_RATE_NONE : ret->rate;
	ret->top = limit;
	for (const Rule *a = r; a->parent && nest_has_class(a->parent, up); a = a->parent)
		ret->top = limit_of(a->parent, up) ?: ret->top;
	ret->prio = (uint8_t)(2 * (r->priority < _PRIORITY_MAX ? r->priority : PRIORITY_NORMAL));
}

const char *nest_check_min(const Rule *parent, const Rule *child, uint64_t min_up, uint64_t min_down) {
	for (int k = 0; k < 2; k++) {
		bool up = k == 0;
		uint64_t want = up ? min_up : min_down, sum = want;

		if (!parent || want == 0)
			continue;
		if (!nest_has_class(parent, up))
			continue; /* nothing encloses that direction */
		for (const Rule *c = parent->children; c; c = c->sibling)
			if (c != child && nest_has_class(c, up))
				sum += min_of(c, up);
		if (sum > guaranteed(parent, up))
			return up ? "the upload minimums inside its parent would add up to more than the parent guarantees"
				  : "the download minimums inside its parent would add up to more than the parent guarantees";
	}
	return NULL;
}
