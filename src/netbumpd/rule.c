/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rules: one per target, each with one HTB minor id used on every managed
 * interface (upload) and its IFB (download). A rule is fully in place on
 * every interface before the BPF maps point packets at it, and is taken out
 * of the maps before its classes go, so no packet is ever steered to a
 * class that does not exist.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "bpf.h"
#include "cgroup-util.h"
#include "grip.h"
#include "iface.h"
#include "kind-exe.h"
#include "kind.h"
#include "log.h"
#include "manager.h"
#include "netbump/netbump.h"
#include "proc-util.h"
#include "paths-cache.h"
#include "persist.h"
#include "process.h"
#include "ramp.h"
#include "rate.h"
#include "rule-index.h"
#include "rule.h"
#include "scope-map.h"
#include "sock-diag.h"
#include "state.h"
#include "tree.h"
#include "unit.h"
#include "named.h"

int rule_fail(const char **ret_error, char **ret_reason, const char *error, int r, const char *fmt, ...) {
	va_list ap;

	*ret_error = error;
	va_start(ap, fmt);
	if (vasprintf(ret_reason, fmt, ap) < 0)
		*ret_reason = NULL;
	va_end(ap);
	return r;
}

int rules_minor_alloc(Manager *m, uint32_t *ret) {
	for (uint32_t x = NB_MINOR_MIN; x <= NB_RULE_MINOR_MAX; x++) {
		/* The leaf qdiscs' handles must not collide with the root's. */
		if (NB_LEAF_MAJOR_BULK(x) == NB_HTB_MAJOR || NB_LEAF_MAJOR_SMALL(x) == NB_HTB_MAJOR)
			continue;
		if (!(m->minor_used[x / 8] & (1u << (x % 8)))) {
			m->minor_used[x / 8] |= (uint8_t)(1u << (x % 8));
			*ret = x;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Takes a given minor if it is free (a restart keeps the classes it finds):
 * whether it did. */
bool rules_minor_take(Manager *m, uint32_t x) {
	if (x < NB_MINOR_MIN || x > NB_RULE_MINOR_MAX || NB_LEAF_MAJOR_BULK(x) == NB_HTB_MAJOR ||
	    NB_LEAF_MAJOR_SMALL(x) == NB_HTB_MAJOR || (m->minor_used[x / 8] & (1u << (x % 8))))
		return false;
	m->minor_used[x / 8] |= (uint8_t)(1u << (x % 8));
	return true;
}

void rules_minor_free(Manager *m, uint32_t x) {
	m->minor_used[x / 8] &= (uint8_t)~(1u << (x % 8));
	m->by_minor[x] = NULL;
}

static void rule_free(Manager *m, Rule *r) {
	if (!r)
		return;
	if (r->minor)
		rules_minor_free(m, r->minor);
	sd_event_source_disable_unref(r->events_watch);
	sd_event_source_disable_unref(r->pidfd_watch);
	ramp_stop(r);
	unit_rule_done(r);
	named_done(r);
	if (r->pidfd >= 0)
		close(r->pidfd);
	moved_free(r->moved, r->n_moved);
	free(r->scope);
	free(r->remote);
	scope_done(&r->remote_scope);
	free(r->scope_keys);
	free(r->cookies);
	free(r->cgroup_abs);
	free(r->nest_path);
	paths_cache_free(r->paths);
	persist_spec_free(r->persist);
	target_done(&r->target);
	free(r->name);
	free(r);
}

/* A rule's scope from its canonical text (request.c checked it). */
static int rule_scope_init(Rule *rule, const char *remote, const char **ret_error, char **ret_reason) {
	const char *why = NULL, *bad = NULL;
	int r;

	r = scope_parse(remote, &rule->remote_scope, &why, &bad);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, r, "invalid scope '%s': %s", remote, why ?: strerror(-r));
	rule->remote = scope_to_string(&rule->remote_scope);
	return rule->remote ? 0 : -ENOMEM;
}

/* sock:PID:FD names a socket by a process's descriptor: the rule is about
 * the socket, so it is known by its inode from here on. */
static int resolve_sock_fd(Target *t, const char **ret_error, char **ret_reason) {
	int r;

	if (t->kind != TARGET_SOCK || t->resolved)
		return 0;
	r = proc_fd_socket_inode(t->pid, t->fd, &t->inode);
	if (r == -ENOTSOCK)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "fd %d of process %d is not a socket", t->fd,
			    (int)t->pid);
	if (r == -EACCES || r == -EPERM)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot read fd %d of process %d: %s", t->fd, (int)t->pid,
			    strerror(-r));
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "no fd %d in process %d", t->fd, (int)t->pid);
	t->resolved = 1;
	return 0;
}

/* Points the BPF maps at the rule (or updates its directions). */
int rule_bpf_set(Manager *m, Rule *rule) {
	if (rule->remote)
		return scope_map_set(m, rule);
	return rule_kind(rule)->map_set(m, rule);
}

/* The download limit of the nearest enclosing rule that has one, 0: none. */
static uint64_t enclosing_down(const Rule *rule) {
	for (const Rule *p = rule->parent; p; p = p->parent)
		if (p->down_bps)
			return p->down_bps;
	return 0;
}

/* What a rule contains moves to what contains it now, before its classes
 * go: made again under that rule's class. */
static void children_move_up(Manager *m, Rule *rule) {
	while (rule->children) {
		Rule *c = rule->children, *p;
		nest_unlink(m, c);
		p = nest_find_parent(m, c);
		nest_link(m, c, p);
		if (m->skel && tree_rebuild(m, c, NULL) < 0)
			log_struct(LOG_WARNING, RULE_FIELDS(c), "%s: cannot move its classes out of %s's.", c->name,
				   rule->name);
		if (m->skel && p && p != rule->parent)
			(void)tree_sync(m, p, false, NULL); /* it has a child more */
	}
}

/* Takes a rule out: what it contained moves out first, then the maps let
 * go, then (pid rules) the processes go back, then the classes. */
static void rule_remove(Manager *m, Rule *rule, bool move_back) {
	Rule *parent;

	for (Rule **p = &m->rules; *p; p = &(*p)->next)
		if (*p == rule) {
			*p = rule->next;
			if (m->rules_tail == &rule->next)
				m->rules_tail = p;
			m->n_rules--;
			rules_index_del(m, rule);
			break;
		}
	children_move_up(m, rule);
	if (m->skel) {
		if (rule->remote)
			scope_map_del(m, rule);
		else
			rule_kind(rule)->map_del(m, rule);
		/* Unset while other rules lean on it: they keep its processes
		 * (grip.h). */
		if (rule_kind(rule)->release && !rule->leans && !(move_back && grip_handover(m, rule) > 0))
			rule_kind(rule)->release(m, rule, move_back);
		manager_bpf_bump_gen(m);
	}
	tree_unmake(m, rule);
	parent = rule->parent;
	nest_unlink(m, rule);
	/* Its parent's own leaves get back what it shared with them. */
	if (parent && !m->stopping)
		(void)tree_sync(m, parent, rule->min_up || rule->min_down, NULL);
	if (m->state_dir && m->skel)
		(void)manager_state_save(m);
	rule_free(m, rule);
}

/* A minimum above the rule's own limit in that direction, or more than its
 * parent guarantees with its siblings': a reason, else NULL. */
static const char *check_min(const Rule *rule, const Rule *parent) {
	if ((rule->up_bps && rule->min_up > rule->up_bps) || (rule->down_bps && rule->min_down > rule->down_bps))
		return "the minimum is above the rule's own limit";
	return nest_check_min(parent, rule, rule->min_up, rule->min_down);
}

static bool rule_says_something(const Rule *r) {
	return r->up_bps || r->down_bps || r->min_up || r->min_down || r->priority != PRIORITY_NORMAL;
}

static int change_rule(Manager *m, Rule *existing, const RuleRequest *req, const char **ret_error, char **ret_reason) {
	Rule was = *existing;
	_cleanup_free_ char *why = NULL;
	const char *bad;
	int r;

	if (req->has_up)
		existing->up_bps = req->up_bps;
	if (req->has_down)
		existing->down_bps = req->down_bps;
	if (req->has_min_up)
		existing->min_up = req->min_up;
	if (req->has_min_down)
		existing->min_down = req->min_down;
	if (req->has_priority)
		existing->priority = req->priority;
	bad = rule_says_something(existing) || req->has_priority ? check_min(existing, existing->parent)
					    : "that would leave it with no limit, minimum or priority: use unset";
	if (bad) {
		existing->up_bps = was.up_bps;
		existing->down_bps = was.down_bps;
		existing->min_up = was.min_up;
		existing->min_down = was.min_down;
		existing->priority = was.priority;
		return rule_fail(ret_error, ret_reason, E_INVALID, -EINVAL, "%s: %s", existing->name, bad);
	}
	if (!was.down_bps && existing->down_bps && !existing->cls_down.on)
		existing->down_segmented = leaf_segments(existing->down_bps); /* new classes */

	/* Its subtree follows (a direction gained or lost is inherited); a
	 * changed minimum changes what its parent and siblings get. */
	bool share = existing->parent && (was.min_up != existing->min_up || was.min_down != existing->min_down);
	r = tree_sync(m, share ? existing->parent : existing, true, &why);
	if (r < 0) {
		existing->up_bps = was.up_bps;
		existing->down_bps = was.down_bps;
		existing->min_up = was.min_up;
		existing->min_down = was.min_down;
		existing->priority = was.priority;
		(void)tree_sync(m, share ? existing->parent : existing, true, NULL);
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "the kernel refused the change: %s", why ?: strerror(-r));
	}
	if (existing->ramp_timer && existing->ramp_rate == 0)
		; /* still measuring the flows: the landing aims at the new limit */
	else if (existing->ramp_timer && existing->down_bps && existing->ramp_rate > existing->down_bps)
		(void)ramp_lower(m, existing, existing->ramp_rate * 2);
	else if (existing->ramp_timer)
		ramp_stop(existing); /* raised while landing: the new limit holds now */
	else if (existing->down_bps && (was.down_bps > existing->down_bps || (!was.down_bps && was.cls_down.on)))
		/* lowered, or a limit under an enclosing one: from the limit
		 * that held the flows */
		(void)ramp_lower(m, existing, was.down_bps ?: enclosing_down(existing));
	return 0;
}

/* Gives a resolved rule its class id and classes on every interface, puts
 * it in the list and points the maps at it; the rules it contains then move
 * into its class. On failure the rule is freed (and a pid rule's processes
 * are put back). */
static int rule_install(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *why = NULL;
	_cleanup_free_ Rule **inside = NULL;
	const char *bad = NULL;
	unsigned height = 0;
	Rule *parent;
	int n_inside, r;

	if (rule_kind(rule)->place)
		rule_kind(rule)->place(m, rule);
	parent = nest_find_parent(m, rule);
	n_inside = nest_contained(m, parent, rule, &inside);
	if (n_inside < 0)
		r = -ENOMEM;
	else {
		for (int k = 0; k < n_inside; k++)
			if (nest_height(inside[k]) + 1 > height)
				height = nest_height(inside[k]) + 1;
		if (nest_depth(parent) + 1 + height > NEST_DEPTH_MAX)
			bad = "nesting too deep (HTB allows 7 levels of rules)";
		else if (!m->restoring) /* granted before a crash: comes back as it was */
			bad = check_min(rule, parent);
		r = bad ? -EINVAL : 0;
		if (r >= 0 && rules_minor_take(m, rule->minor_wish))
			rule->minor = rule->minor_wish;
		else if (r >= 0)
			r = rules_minor_alloc(m, &rule->minor);
	}
	if (r < 0) {
		if (rule_kind(rule)->release && !rule->leans)
			rule_kind(rule)->release(m, rule, false);
		rule_free(m, rule);
		if (bad)
			return rule_fail(ret_error, ret_reason, E_INVALID, r, "%s: %s", rule->name, bad);
		if (r == -ENOSPC)
			return rule_fail(ret_error, ret_reason, E_FULL, r, "no HTB class id left (16382 rules in use)");
		return r;
	}
	rule->small_first = rule_small_first(m);
	nest_link(m, rule, parent);
	rule->down_segmented = leaf_segments(rule->down_bps ?: enclosing_down(rule));
	r = tree_make(m, rule, &why);
	if (r < 0) {
		nest_unlink(m, rule);
		if (rule_kind(rule)->release && !rule->leans)
			rule_kind(rule)->release(m, rule, false);
		rule_free(m, rule);
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "the kernel refused the class: %s", why ?: strerror(-r));
	}
	/* Its parent's own leaves now share with it (and give way to its
	 * minimum, which changes what its siblings get too). */
	if (parent)
		(void)tree_sync(m, parent, rule->min_up || rule->min_down, NULL);

	/* In the list (and so owned by it) from here on: rule_remove() undoes
	 * whatever part of the rest fails. */
	if (rule->id == 0)
		rule->id = m->next_rule_id++;
	else if (rule->id >= m->next_rule_id)
		m->next_rule_id = rule->id + 1;
	if (!m->rules_tail)
		m->rules_tail = &m->rules;
	*m->rules_tail = rule;
	m->rules_tail = &rule->next;
	m->n_rules++;
	rules_index_add(m, rule);
	m->by_minor[rule->minor] = rule;

	/* Pid rules reach their running flows only in pid_rule_attach(),
	 * which prepares the landing itself. A rule taken over from a killed
	 * run held its flows all along: nothing to land. */
	if (!rule_kind(rule)->lands_itself && !(m->restoring && m->adopted))
		(void)ramp_prepare(m, rule);
	r = rule_bpf_set(m, rule);
	if (r < 0) {
		rule_remove(m, rule, true);
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot update the BPF map: %s", strerror(-r));
	}
	manager_bpf_bump_gen(m);
	if (rule->small_first)
		manager_small_schedule(m);

	/* The rules it contains move into its class, each made again there
	 * before its old classes go. */
	for (int k = 0; k < n_inside; k++) {
		Rule *was = inside[k]->parent;

		nest_unlink(m, inside[k]);
		nest_link(m, inside[k], rule);
		if (tree_rebuild(m, inside[k], NULL) < 0) {
			log_struct(LOG_WARNING, RULE_FIELDS(inside[k]), "%s: cannot move its classes into %s's.",
				   inside[k]->name, rule->name);
			nest_unlink(m, inside[k]);
			nest_link(m, inside[k], was);
		} else if (was && was != parent)
			(void)tree_sync(m, was, false, NULL); /* a child less (a user's rule) */
	}
	if (n_inside > 0) {
		/* Its own leaves share with what moved in; its old parent's
		 * with fewer children. */
		(void)tree_sync(m, rule, false, NULL);
		if (parent)
			(void)tree_sync(m, parent, false, NULL);
	}
	return 0;
}

/* ---- the small-packet leaves, made after the rule ----
 *
 * A rule is in force, limit and all, with its rule class and the bulk leaf;
 * the small-packet leaf is a refinement made shortly after, when no request
 * has come for SMALL_QUIET_USEC (or SMALL_MAX_WAIT_USEC after the first rule
 * that waits for it, so that a steady stream of requests does not put it
 * off for ever). Making an HTB class costs the kernel time in proportion to
 * the classes already there: a burst of new rules is acknowledged with two
 * classes each instead of three. Until then small packets share the bulk
 * leaf (NB_F_SPLIT without NB_F_SMALL_FIRST). */
#define SMALL_QUIET_USEC 50000u
#define SMALL_MAX_WAIT_USEC 1000000u
#define SMALL_BATCH 64u /* rules per turn of the event loop */

static int small_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
	Manager *m = userdata;
	unsigned n = 0;
	bool more = false, changed = false;

	for (Rule *rule = m->rules; rule; rule = rule->next) {
		if (rule_complete(rule))
			continue;
		/* A landing changes the download class's rate: after it. */
		if (rule->ramp_timer || n >= SMALL_BATCH) {
			more = true;
			continue;
		}
		n++;
		int r = 0;
		for (Iface *i = m->ifaces; i && r >= 0; i = i->next)
			r = iface_add_small(m, i, rule);
		if (r < 0) {
			for (Iface *j = m->ifaces; j; j = j->next)
				iface_del_small(m, j, rule);
			rule->small_failed = true;
			log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule),
					 "%s: no small-packet leaf (%m); its small packets queue with the rest.", rule->name);
			continue;
		}
		rule->small_made = true;
		if (rule_bpf_set(m, rule) >= 0)
			changed = true;
	}
	if (changed)
		manager_bpf_bump_gen(m);
	m->small_since = 0;
	if (more) {
		/* The rest after another quiet moment from now (a batch takes
		 * a while): requests that came meanwhile go first. */
		m->small_since = now_usec();
		(void)sd_event_source_set_time(s, m->small_since + SMALL_QUIET_USEC);
		(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

void manager_small_schedule(Manager *m) {
	uint64_t now, at;

	sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	if (m->small_since == 0)
		m->small_since = now;
	at = now + SMALL_QUIET_USEC;
	if (at > m->small_since + SMALL_MAX_WAIT_USEC)
		at = m->small_since + SMALL_MAX_WAIT_USEC;
	if (!m->small_timer) {
		if (sd_event_add_time(m->event, &m->small_timer, CLOCK_MONOTONIC, at, 5000, small_timer_cb, m) < 0)
			return; /* the rules keep one bulk leaf */
	} else
		(void)sd_event_source_set_time(m->small_timer, at);
	(void)sd_event_source_set_enabled(m->small_timer, SD_EVENT_ONESHOT);
}

bool rule_complete(const Rule *r) {
	return !r->small_first || r->small_made || r->small_failed;
}

void manager_small_stop(Manager *m) {
	m->small_timer = sd_event_source_disable_unref(m->small_timer);
	m->small_since = 0;
}

/* ---- who may do what ---- */

/* May a non-root uid name this target? Only its own: its user, processes
 * and sockets, and cgroups delegated to it. */
static int authorize_target(Manager *m, Rule *rule, uid_t caller, const char **ret_error, char **ret_reason) {
	uid_t owner = (uid_t)-1;
	int r;

	if (caller == 0)
		return 0;
	r = rule_kind(rule)->owner(m, rule, &owner, ret_error, ret_reason);
	if (r < 0)
		return r;
	if (owner != caller)
		return rule_fail(ret_error, ret_reason, E_DENIED, -EPERM, "not-owner: %s is not yours (uid %u)",
				 rule->name, (unsigned)caller);
	return 0;
}

/* The kind's resolve(), or, where another rule on the same pid: or exe:
 * target holds its processes, leaning on that one (grip.h). */
static int resolve_or_lean(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	Rule *holder = grip_holder(m, rule);

	if (holder)
		return grip_lean(m, rule, holder);
	return rule_kind(rule)->resolve(m, rule, ret_error, ret_reason);
}

/* A rule's target from its text: parsed, a sock:PID:FD made its inode, an
 * exe:'s link followed, a user's name looked up. */
static int target_from_text(const char *text, Target *t, const char **ret_error, char **ret_reason) {
	const char *why = NULL;
	int r;

	r = target_parse(text, t, &why);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, r,
				 r == -EOPNOTSUPP ? "cannot limit '%s': %s" : "invalid target '%s': %s", text, why);
	r = resolve_sock_fd(t, ret_error, ret_reason);
	if (r >= 0 && t->kind == TARGET_EXE)
		r = target_resolve(t); /* its real path: one rule whatever link names it */
	if (r >= 0 && t->kind == TARGET_USER) {
		r = target_resolve(t);
		if (r == -ENOENT)
			r = rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "unknown user: %s", t->user_name);
		else if (r < 0)
			r = rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot look up user %s: %s", t->user_name,
				      strerror(-r));
	}
	if (r < 0)
		target_done(t);
	return r;
}

/* A new rule on t (taken), not in any list yet. */
static Rule *rule_alloc(Manager *m, Target *t) {
	Rule *rule = calloc(1, sizeof(*rule));

	if (!rule) {
		target_done(t);
		return NULL;
	}
	rule->manager = m;
	rule->pidfd = -1;
	rule->nest_uid = (uid_t)-1;
	rule->priority = PRIORITY_NORMAL;
	rule->target = *t;
	return rule;
}

/* ---- the targets of deny and allow ----
 *
 * A deny or allow has no class: its target is resolved and followed as a
 * scoped rule's is, by a Rule of its own that is in no list of rules (a
 * carrier): a unit's cgroup as it restarts, a pid:'s cgroup and sockets, an
 * exe:'s cgroups (shared with the other rules on the target, grip.h). */

int rule_carrier_new(Manager *m, const char *target, const char *remote, uid_t caller, Rule **ret,
		     const char **ret_error, char **ret_reason) {
	const KindOps *ops;
	Rule *rule;
	Target t;
	int r;

	r = target_from_text(target, &t, ret_error, ret_reason);
	if (r < 0)
		return r;
	rule = rule_alloc(m, &t);
	if (!rule)
		return -ENOMEM;
	rule->owner = caller;
	rule->transient = kind_of(t.kind)->transient;
	rule->name = target_to_string(&rule->target);
	rule->remote = strdup(remote);
	if (!rule->name || !rule->remote) {
		rule_free(m, rule);
		return -ENOMEM;
	}
	ops = rule_kind(rule);
	if (caller != 0 && ops->owner_first)
		r = authorize_target(m, rule, caller, ret_error, ret_reason);
	if (r >= 0 && ops->owner_first && ops->in_root)
		r = ops->in_root(m, rule, ret_error, ret_reason);
	if (r >= 0)
		r = resolve_or_lean(m, rule, ret_error, ret_reason);
	if (r >= 0 && caller != 0 && !ops->owner_first)
		r = authorize_target(m, rule, caller, ret_error, ret_reason);
	if (r >= 0 && !ops->owner_first && ops->in_root)
		r = ops->in_root(m, rule, ret_error, ret_reason);
	if (r < 0) {
		if (ops->release && !rule->leans)
			ops->release(m, rule, false);
		rule_free(m, rule);
		return r;
	}
	*ret = rule;
	return 0;
}

int rule_carrier_attach(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	int r;

	if (rule->leans || !rule_kind(rule)->attach)
		return 0;
	r = rule_kind(rule)->attach(m, rule, ret_error, ret_reason);
	if (r >= 0 && rule->cgroup_abs) {
		r = rule_watch_cgroup(m, rule);
		if (r == -ESRCH)
			r = rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "%s has no process left", rule->name);
		else if (r < 0)
			r = rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot watch %s: %s", rule->name, strerror(-r));
	}
	return r;
}

void rule_carrier_free(Manager *m, Rule *rule, bool move_back) {
	if (!rule)
		return;
	if (m->skel && rule_kind(rule)->release && !rule->leans && !(move_back && grip_handover(m, rule) > 0))
		rule_kind(rule)->release(m, rule, move_back);
	rule_free(m, rule);
}

static unsigned rules_of(Manager *m, uid_t uid) {
	unsigned n = 0;
	for (Rule *r = m->rules; r; r = r->next)
		n += r->owner == uid;
	return n;
}

/* A user's rule is more specific than what applies to the target now; it
 * must not give more than a rule someone else (root) made: every direction
 * such a rule limits stays limited, at most at its rate. */
static int rule_for_target(Manager *m, const Target *t, uid_t excluded, Rule **ret, const char **ret_error,
			   char **ret_reason);

static int check_not_raising(Manager *m, const Rule *rule, uid_t caller, const char **ret_error, char **ret_reason) {
	Rule *under = NULL;
	_cleanup_free_ char *reason = NULL;
	const char *error = NULL;

	if (caller == 0)
		return 0;
	/* A rule in place is judged by where its traffic came from (its
	 * place in the tree), not by where the rule has put it since (a pid
	 * rule's own cgroup): the nearest rule around it someone else made. */
	if (rule->indexed)
		for (under = rule->parent; under && under->owner == caller; under = under->parent)
			;
	else if (rule_for_target(m, &rule->target, caller, &under, &error, &reason) < 0)
		return 0;
	/* What a user may name carries its own traffic (its sockets, its
	 * delegated cgroups), and a socket or cgroup rule takes precedence
	 * over a user rule: root's rule on the caller applies there too. */
	if (!under) {
		_cleanup_free_ char *reason2 = NULL;
		Target user = { .kind = TARGET_USER, .uid = caller, .resolved = 1 };

		if (rule_for_target(m, &user, caller, &under, &error, &reason2) < 0)
			return 0;
	}
	if (!under)
		return 0;
	if ((under->up_bps && (!rule->up_bps || rule->up_bps > under->up_bps)) ||
	    (under->down_bps && (!rule->down_bps || rule->down_bps > under->down_bps)))
		return rule_fail(ret_error, ret_reason, E_DENIED, -EPERM,
			    "would-raise: %s falls under %s (set by uid %u); a rule of yours may only lower it",
			    rule->name, under->name, (unsigned)under->owner);
	return 0;
}

/* A user sees its own rules and those that apply to it: on itself, on its
 * processes and sockets (whoever made the rule), and on cgroups (units) that
 * are its own or that its processes run in. */
bool rule_visible_to(Manager *m, const Rule *r, uid_t uid) {
	return uid == 0 || r->owner == uid || rule_kind(r)->applies_to(m, r, uid);
}

int manager_set_rule(Manager *m, const RuleRequest *req, Rule **ret, const char **ret_error, char **ret_reason) {
	Rule *rule, *existing;
	Target t;
	int r;

	*ret_reason = NULL;
	/* A pid rule moves processes: who runs where is read again. */
	uid_cgroups_clear();
	if (!req->has_up && !req->has_down && !req->has_min_up && !req->has_min_down && !req->has_priority)
		return rule_fail(ret_error, ret_reason, E_INVALID, -EINVAL,
			    "neither a rate, a minimum nor a priority given");
	if ((req->has_min_up && req->min_up && (req->min_up < RATE_MIN_BPS || req->min_up > RATE_MAX_BPS)) ||
	    (req->has_min_down && req->min_down && (req->min_down < RATE_MIN_BPS || req->min_down > RATE_MAX_BPS)))
		return rule_fail(ret_error, ret_reason, E_INVALID, -ERANGE, "minimum out of range (8bit to 10tbit)");
	if (req->has_priority && (unsigned)req->priority >= _PRIORITY_MAX)
		return rule_fail(ret_error, ret_reason, E_INVALID, -EINVAL, "unknown priority");
	if ((req->has_up && req->up_bps && (req->up_bps < RATE_MIN_BPS || req->up_bps > RATE_MAX_BPS)) ||
	    (req->has_down && req->down_bps && (req->down_bps < RATE_MIN_BPS || req->down_bps > RATE_MAX_BPS)))
		return rule_fail(ret_error, ret_reason, E_INVALID, -ERANGE, "rate out of range (8bit to 10tbit)");

	r = target_from_text(req->target, &t, ret_error, ret_reason);
	if (r < 0)
		return r;
	rule = rule_alloc(m, &t);
	if (!rule)
		return -ENOMEM;
	rule->transient = req->transient || kind_of(t.kind)->transient;
	rule->name = target_to_string(&rule->target);
	if (!rule->name) {
		rule_free(m, rule);
		return -ENOMEM;
	}
	if (req->remote) {
		r = rule_scope_init(rule, req->remote, ret_error, ret_reason);
		if (r < 0) {
			rule_free(m, rule);
			return r;
		}
	}

	if (rule->remote && access_find(m, rule->name, rule->remote)) {
		r = rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
			      "%s --remote %s has a deny or allow; a rule is one per target and scope: unset it first",
			      rule->name, rule->remote);
		rule_free(m, rule);
		return r;
	}

	/* An existing rule changes in place: nothing is looked up again. */
	existing = rules_find_scoped(m, &rule->target, rule->remote);
	if (existing) {
		rule_free(m, rule);
		if (req->caller != 0 && existing->owner != req->caller)
			return rule_fail(ret_error, ret_reason, E_DENIED, -EPERM,
				    "not-owner: the rule on %s was made by uid %u", existing->name, (unsigned)existing->owner);
		/* A wrapped command must not rewrite the lasting rule an admin
		 * put on its unit. */
		if (req->transient && !existing->transient)
			return rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
				    "%s already has a lasting rule; a transient one cannot replace it", existing->name);
		if (req->caller != 0 && !req->acknowledged) {
			Rule probe = *existing;
			if (req->has_up)
				probe.up_bps = req->up_bps;
			if (req->has_down)
				probe.down_bps = req->down_bps;
			r = check_not_raising(m, &probe, req->caller, ret_error, ret_reason);
			if (r < 0)
				return r;
		}
		uint64_t old_up = existing->up_bps, old_down = existing->down_bps;
		uint64_t old_min_up = existing->min_up, old_min_down = existing->min_down;
		Priority old_priority = existing->priority;
		uid_t old_owner = existing->owner;
		r = change_rule(m, existing, req, ret_error, ret_reason);
		if (r < 0)
			return r;
		/* Root setting a limit makes it root's: the user can no longer
		 * lift or raise it. */
		existing->owner = req->caller;
		if (rule_kind(existing)->refresh)
			(void)rule_kind(existing)->refresh(m, existing);
		r = manager_state_save_rule(m, existing);
		if (r < 0) {
			/* Not on disk, not acknowledged: as it was. */
			RuleRequest back = { .has_up = true, .up_bps = old_up, .has_down = true, .down_bps = old_down,
					     .has_min_up = true, .min_up = old_min_up, .has_min_down = true,
					     .min_down = old_min_down, .has_priority = true, .priority = old_priority };
			const char *error2 = NULL;
			_cleanup_free_ char *reason2 = NULL;

			if (change_rule(m, existing, &back, &error2, &reason2) < 0)
				log_struct(LOG_WARNING, RULE_FIELDS(existing), "%s: cannot put the old rates back: %s",
					   existing->name, reason2 ?: "failed");
			existing->owner = old_owner;
			if (rule_kind(existing)->refresh)
				(void)rule_kind(existing)->refresh(m, existing);
			return rule_fail(ret_error, ret_reason, E_FAILED, r,
				    "cannot record the change in the state directory %s (%s); %s stays as it was",
				    m->state_dir, strerror(-r), existing->name);
		}
		*ret = existing;
		return 0;
	}

	rule->up_bps = req->has_up ? req->up_bps : 0;
	rule->down_bps = req->has_down ? req->down_bps : 0;
	rule->minor_wish = req->minor;
	rule->min_up = req->has_min_up ? req->min_up : 0;
	rule->min_down = req->has_min_down ? req->min_down : 0;
	rule->priority = req->has_priority ? req->priority : PRIORITY_NORMAL;
	/* A rule with only a priority (even "normal") is a group of its own,
	 * sharing its parent with its siblings alike. */
	if (!rule_says_something(rule) && !req->has_priority) {
		rule_free(m, rule);
		return rule_fail(ret_error, ret_reason, E_INVALID, -EINVAL,
			    "a new rule needs a rate, a minimum or a priority");
	}

	rule->owner = req->caller;
	/* A rule acknowledged before a crash comes back as it was granted
	 * then, even where asking again now would be refused (root lowered
	 * the limit it falls under since, the quota changed): its owner
	 * still is who made it. Only its target is looked up again. */
	bool check = req->caller != 0 && !req->acknowledged;
	if (check && m->max_rules_per_user > 0 && rules_of(m, req->caller) >= m->max_rules_per_user) {
		rule_free(m, rule);
		return rule_fail(ret_error, ret_reason, E_QUOTA, -EDQUOT, "quota: uid %u already has %u rules (the limit)",
			    (unsigned)req->caller, m->max_rules_per_user);
	}
	r = check ? check_not_raising(m, rule, req->caller, ret_error, ret_reason) : 0;
	/* A kind whose resolve() acts on the target (moves processes) is
	 * checked first: whose it is, and that it is one of ours to act on. */
	const KindOps *ops = rule_kind(rule);
	if (r >= 0 && check && ops->owner_first)
		r = authorize_target(m, rule, req->caller, ret_error, ret_reason);
	if (r >= 0 && ops->owner_first && ops->in_root)
		r = ops->in_root(m, rule, ret_error, ret_reason);
	if (r >= 0)
		r = resolve_or_lean(m, rule, ret_error, ret_reason);
	if (r >= 0 && check && !ops->owner_first)
		r = authorize_target(m, rule, req->caller, ret_error, ret_reason);
	if (r >= 0 && !ops->owner_first && ops->in_root)
		r = ops->in_root(m, rule, ret_error, ret_reason);
	if (r >= 0 && rule->remote && scope_rules_on_target(m, rule) >= NB_SCOPES_PER_KEY)
		r = rule_fail(ret_error, ret_reason, E_FULL, -E2BIG, "%s already has %u scoped rules (the most one target may have)",
			      rule->name, (unsigned)NB_SCOPES_PER_KEY);
	if (r >= 0 && ops->one_per_cgroup && !rule->remote) {
		Rule *twin = rules_find_cgroup(m, rule->key, NULL);
		if (twin)
			r = rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
				 "%s is the cgroup %s already has a rule on: change or unset %s", rule->name,
				 twin->name, twin->name);
	}
	if (r < 0) {
		if (rule_kind(rule)->release && !rule->leans)
			rule_kind(rule)->release(m, rule, false);
		rule_free(m, rule);
		return r;
	}
	r = rule_install(m, rule, ret_error, ret_reason);
	if (r < 0)
		return r;

	if (ops->attach && !rule->leans) {
		r = ops->attach(m, rule, ret_error, ret_reason);
		if (r < 0) {
			rule_remove(m, rule, true);
			return r;
		}
	}
	/* An unscoped rule holds its target's processes where scoped rules or
	 * a deny held them so far. */
	if (rule->leans && !rule->remote) {
		r = grip_take(m, rule);
		if (r < 0) {
			rule_remove(m, rule, true);
			return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot update the BPF map: %s", strerror(-r));
		}
	}
	if (rule->cgroup_abs && !rule->events_watch) { /* a grip taken over comes with its watch */
		r = rule_watch_cgroup(m, rule);
		if (r < 0) {
			rule_remove(m, rule, true);
			if (r == -ESRCH)
				return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "%s has no process left", req->target);
			return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot watch %s: %s", req->target, strerror(-r));
		}
	}
	/* Acknowledged only once on disk: a rule the next start would not
	 * know of is taken out again (processes moved back and all). */
	r = manager_state_save_rule(m, rule);
	if (r < 0) {
		rule_remove(m, rule, true);
		return rule_fail(ret_error, ret_reason, E_FAILED, r,
			    "cannot record the rule in the state directory %s (%s); nothing was changed", m->state_dir,
			    strerror(-r));
	}
	*ret = rule;
	return 0;
}

int manager_unset_rule(Manager *m, const char *target, uid_t caller, const char **ret_error, char **ret_reason) {
	return manager_unset_rule_scoped(m, target, NULL, caller, ret_error, ret_reason);
}

int manager_unset_rule_scoped(Manager *m, const char *target, const char *remote, uid_t caller,
			      const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *name = NULL;
	const char *why = NULL;
	Target t;
	int r;

	*ret_reason = NULL;
	uid_cgroups_clear(); /* processes may move back */
	r = target_parse(target, &t, &why);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, r,
				 r == -EOPNOTSUPP ? "cannot limit '%s': %s" : "invalid target '%s': %s", target,
				 why);
	r = target_resolve(&t);
	if (r >= 0)
		r = resolve_sock_fd(&t, ret_error, ret_reason);
	else
		r = rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "unknown user: %s", t.user_name ?: "");
	if (r < 0) {
		target_done(&t);
		return r;
	}
	name = target_to_string(&t);
	Rule *rule = rules_find_scoped(m, &t, remote);
	/* A pid rule outliving its process is named by its cgroup. */
	if (!rule && !remote && t.kind == TARGET_CGROUP)
		for (Rule *r = m->rules; r && !rule; r = r->next)
			if (r->target.kind == TARGET_PID && r->cgroup_abs &&
			    streq(r->cgroup_abs + strlen(m->cgroup_mount), t.path))
				rule = r;
	target_done(&t);
	if (!name)
		return -ENOMEM;
	if (!rule || !rule_visible_to(m, rule, caller))
		return rule_fail(ret_error, ret_reason, E_NORULE, -ENOENT, "no rule for %s%s%s", name,
				 remote ? " --remote " : "", remote ?: "");
	if (caller != 0 && rule->owner != caller)
		return rule_fail(ret_error, ret_reason, E_DENIED, -EPERM, "not-owner: the rule on %s was made by uid %u",
			    name, (unsigned)rule->owner);
	/* On disk first: an unset the state file does not know of would be
	 * undone by the next start after a crash. The processes of a pid rule
	 * stay in the file (where they go back to) until they are back. */
	r = manager_state_save_without(m, rule);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r,
			    "cannot record the change in the state directory %s (%s); the rule on %s stays", m->state_dir,
			    strerror(-r), name);
	rule_remove(m, rule, true);
	return 0;
}

/* Rules of excluded do not count ((uid_t)-1: every rule does). A scoped
 * rule holds only some of its target's traffic: the rule a target falls
 * under is an unscoped one. */
static bool considered(const Rule *r, uid_t excluded) {
	return !r->remote && (excluded == (uid_t)-1 || r->owner != excluded);
}

/* The deepest cgroup rule at or above a cgroup (path relative to the
 * mount): what the BPF programs would pick for a socket created there. */
static Rule *cgroup_rule_for(Manager *m, const char *path, uid_t excluded) {
	Rule *best = NULL;
	size_t best_len = 0;

	for (Rule *r = m->rules; r; r = r->next) {
		const char *rp = NULL;

		if (!considered(r, excluded))
			continue;
		if (r->target.kind == TARGET_CGROUP)
			rp = r->target.path;
		else if (r->target.kind == TARGET_PID && r->cgroup_abs)
			rp = r->cgroup_abs + strlen(m->cgroup_mount);
		else if (r->target.kind == TARGET_EXE)
			rp = exe_rule_place_for(m, r, path);
		if (!rp || !cg_path_is_inside(path, rp))
			continue;
		if (!best || strlen(rp) > best_len) {
			best = r;
			best_len = strlen(rp);
		}
	}
	return best;
}

static Rule *user_rule_for(Manager *m, uid_t uid, uid_t excluded) {
	for (Rule *r = m->rules; r; r = r->next)
		if (considered(r, excluded) && r->target.kind == TARGET_USER && r->key == uid)
			return r;
	return NULL;
}

/* A socket's rule other than its own sock: rule: the process rule that
 * mirrors it, else what its cgroup falls under, else its owner's rule. */
static Rule *socket_rule_for(Manager *m, const struct sock_info *si, uid_t excluded) {
	_cleanup_free_ char *path = NULL;
	Rule *r = NULL;

	for (Rule *p = m->rules; p && !r; p = p->next)
		if ((p->target.kind == TARGET_PID || p->target.kind == TARGET_EXE) && considered(p, excluded))
			for (size_t c = 0; c < p->n_cookies && !r; c++)
				if (si->cookie == p->cookies[c])
					r = p;
	if (!r && si->cgroup_id && cg_path_from_id(m->cgroup_mount, si->cgroup_id, &path) >= 0)
		r = cgroup_rule_for(m, path, excluded);
	if (!r)
		r = user_rule_for(m, si->uid, excluded);
	return r;
}

Rule *manager_rule_for_socket(Manager *m, const struct sock_info *si) {
	Rule *r = rules_find(m, &(RuleId){ .kind = TARGET_SOCK, .num = si->inode });

	if (!r || r->key != si->cookie)
		r = socket_rule_for(m, si, (uid_t)-1);
	return r ?: rules_find_all(m);
}

/* Most specific first: its own rule, then what contains it. */
static int rule_for_target(Manager *m, const Target *t, uid_t excluded, Rule **ret, const char **ret_error,
			   char **ret_reason) {
	Rule *r = rules_find_target(m, t);

	if (r && !considered(r, excluded))
		r = NULL;
	if (!r && t->kind == TARGET_CGROUP)
		r = cgroup_rule_for(m, t->path, excluded);
	if (!r && t->kind == TARGET_PID) {
		_cleanup_free_ char *path = NULL;
		uid_t uid;

		if (cg_pid_get_path(t->pid, &path) < 0)
			return rule_fail(ret_error, ret_reason, E_NOTFOUND, -ESRCH, "no such process: %d", (int)t->pid);
		r = cgroup_rule_for(m, path, excluded);
		if (!r && proc_get_uid(t->pid, &uid) >= 0)
			r = user_rule_for(m, uid, excluded);
	}
	if (!r && t->kind == TARGET_SOCK) {
		struct sock_info si;

		if (!m->diag)
			(void)sock_diag_open(&m->diag);
		if (m->diag && sock_diag_find_inode(m->diag, t->inode, &si) >= 0)
			r = socket_rule_for(m, &si, excluded);
	}
	if (!r && t->kind != TARGET_ALL) {
		/* Outside every narrower rule: the one on everything. */
		r = rules_find_all(m);
		if (r && !considered(r, excluded))
			r = NULL;
	}
	*ret = r;
	return 0;
}

int manager_rule_for_target(Manager *m, const Target *t, Rule **ret, const char **ret_error, char **ret_reason) {
	*ret_reason = NULL;
	return rule_for_target(m, t, (uid_t)-1, ret, ret_error, ret_reason);
}

int manager_rule_for(Manager *m, const char *target, Rule **ret, const char **ret_error, char **ret_reason) {
	const char *why = NULL;
	Target t;
	int k;

	*ret_reason = NULL;
	k = target_parse(target, &t, &why);
	if (k < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, k,
				 k == -EOPNOTSUPP ? "cannot limit '%s': %s" : "invalid target '%s': %s", target,
				 why);
	k = target_resolve(&t);
	if (k >= 0)
		k = resolve_sock_fd(&t, ret_error, ret_reason);
	else
		k = rule_fail(ret_error, ret_reason, E_NOTFOUND, k, "unknown user: %s", t.user_name ?: "");
	if (k >= 0)
		k = rule_for_target(m, &t, (uid_t)-1, ret, ret_error, ret_reason);
	target_done(&t);
	return k;
}

void manager_rule_expired(Manager *m, Rule *rule) {
	if (!rule->leans && grip_kind(rule))
		grip_end_leaners(m, rule);
	if (rule->access)
		access_expired(m, rule->access);
	else
		rule_remove(m, rule, false);
}

void manager_socket_released(Manager *m, uint64_t cookie) {
	/* The kernel already dropped the cookie from sock_rules and never
	 * reuses it: forget it in process rules first, so that removing a
	 * sock rule below does not hand it back to one of them. */
	bool forgot = false;
	for (Rule *r = m->rules; r; r = r->next)
		if (r->target.kind == TARGET_PID || r->target.kind == TARGET_EXE)
			for (size_t k = 0; k < r->n_cookies; k++)
				if (r->cookies[k] == cookie) {
					r->cookies[k] = r->cookies[--r->n_cookies];
					forgot = true;
					scope_target_sync(m, r);
					break;
				}
	access_socket_released(m, cookie);
	/* Saved now, so that a later save of one rule alone
	 * (manager_state_save_rule()) has nothing else pending. */
	if (forgot && m->state_dir)
		(void)manager_state_save(m);
	for (Rule *r = m->rules, *next; r; r = next) {
		next = r->next;
		if (r->target.kind == TARGET_SOCK && r->key == cookie) {
			log_struct(LOG_INFO, RULE_FIELDS(r), "%s: the socket was closed; the rule ends.", r->name);
			rule_remove(m, r, false);
		}
	}
	if (m->skel)
		manager_bpf_bump_gen(m);
}

static void remove_subtree(Manager *m, Rule *r) {
	while (r->children)
		remove_subtree(m, r->children);
	rule_remove(m, r, true);
}

void manager_rules_stop(Manager *m) {
	/* Innermost first: no rule has children left when it goes, so
	 * nothing is made again elsewhere on the way out. */
	m->stopping = true;
	while (m->top_rules)
		remove_subtree(m, m->top_rules);
	while (m->rules) /* not in the tree (cannot be), for safety */
		rule_remove(m, m->rules, true);
	m->stopping = false;
	m->n_rules = 0;
	uid_cgroups_clear();
}

void manager_rules_free(Manager *m) {
	manager_rules_stop(m);
}

/* ---- statistics ---- */

typedef struct StatsAcc {
	Manager *m;
	bool down;
} StatsAcc;

static int class_stats_cb(const struct nl_class_stats *s, void *userdata) {
	StatsAcc *a = userdata;

	if ((s->classid >> 16) != NB_HTB_MAJOR)
		return 0;
	/* By class id, not by walking the rules: a walk per class made the
	 * once-a-second refresh quadratic (65% of a CPU with 8000 rules). */
	uint32_t minor = s->classid & 0xffff;
	Rule *r = a->m->by_minor[NB_MINOR_RULE(minor)];
	if (r) {
		RuleStats *st = a->down ? &r->down : &r->up;
		/* The rule class counts what both its leaves sent; drops and
		 * queues are the leaves' (its own where it is the leaf). */
		if (minor == r->minor) {
			st->bytes += s->bytes;
			st->packets += s->packets;
		}
		if (minor == NB_MINOR_BULK(r->minor) || minor == NB_MINOR_SMALL(r->minor) ||
		    (minor == r->minor && !r->leaves)) {
			st->drops += s->drops;
			st->backlog += s->backlog;
		}
	}
	return 0;
}

/* Sums the class counters of every interface (upload) and IFB (download)
 * and derives each rule's rate since the previous refresh. */
/* Reading the class statistics costs a dump of every class (~3 ms with
 * 200 rules on two interfaces, 80 ms with 10,000): a client's stream of
 * List calls asking for them one after the other would spend the daemon's
 * time on little else. What was read less than STATS_FRESH_MIN_USEC ago, or
 * four times what the read took, serves again: the dumps take at most a
 * fifth of the time however many requests come. */
#define STATS_FRESH_MIN_USEC 20000u

int manager_refresh_stats(Manager *m) {
	uint64_t now = now_usec();
	int r = 0;

	if (m->stats_read_usec && now - m->stats_read_usec < m->stats_fresh_usec)
		return 0;

	for (Rule *rule = m->rules; rule; rule = rule->next) {
		rule->up.bytes = rule->up.packets = rule->up.drops = rule->up.backlog = 0;
		rule->down.bytes = rule->down.packets = rule->down.drops = rule->down.backlog = 0;
	}
	for (Iface *i = m->ifaces; i; i = i->next) {
		StatsAcc up = { m, false }, down = { m, true };
		if (i->skipped)
			continue;
		r = nl_class_dump(m->nl, i->ifindex, class_stats_cb, &up);
		if (r < 0)
			break;
		r = nl_class_dump(m->nl, i->ifb_ifindex, class_stats_cb, &down);
		if (r < 0)
			break;
	}
	for (Rule *rule = m->rules; rule; rule = rule->next) {
		RuleStats *d[2] = { &rule->up, &rule->down };
		for (int k = 0; k < 2; k++) {
			RuleStats *s = d[k];
			/* Rates over at least 200 ms, so that a List right after
			 * the timer does not divide a few bytes by nothing. */
			if (s->last_usec && now - s->last_usec >= 200000) {
				uint64_t delta = s->bytes >= s->last_bytes ? s->bytes - s->last_bytes : 0;
				s->rate_bps = delta * 8 * 1000000 / (now - s->last_usec);
			}
			if (!s->last_usec || now - s->last_usec >= 200000) {
				s->last_bytes = s->bytes;
				s->last_usec = now;
			}
		}
	}
	if (r >= 0) {
		uint64_t took = now_usec() - now;

		m->stats_read_usec = now;
		m->stats_fresh_usec = took * 4 > STATS_FRESH_MIN_USEC ? took * 4 : STATS_FRESH_MIN_USEC;
	} else
		m->stats_read_usec = 0;
	return r;
}

/* ---- after a crash ---- */

static int restore_pid_rule(Manager *m, const SavedRule *sr, const char *target, Rule **ret, char **ret_reason) {
	const char *error = NULL, *why = NULL;
	Rule *rule;
	Target t;
	int r;

	r = target_parse(target, &t, &why);
	if (r < 0)
		return r;
	rule = calloc(1, sizeof(*rule));
	if (!rule) {
		target_done(&t);
		return -ENOMEM;
	}
	rule->manager = m;
	rule->pidfd = -1;
	rule->target = t;
	rule->transient = true;
	rule->id = sr->id;
	rule->owner = sr->owner;
	rule->up_bps = sr->up;
	rule->down_bps = sr->down;
	rule->min_up = sr->min_up;
	rule->min_down = sr->min_down;
	rule->priority = sr->priority;
	rule->minor_wish = sr->minor;
	/* It nests where its process came from (it is in the rule's cgroup
	 * already). */
	uid_t uid;
	rule->nest_uid = proc_get_uid(t.pid, &uid) >= 0 ? uid : (uid_t)-1;
	if (sr->n_moved > 0 && sr->moved[0].from)
		rule->nest_path = strdup(sr->moved[0].from);
	rule->name = target_to_string(&rule->target);
	if (!rule->name) {
		rule_free(m, rule);
		return -ENOMEM;
	}
	r = pid_rule_adopt(m, rule, sr);
	if (r == -ESRCH)
		*ret_reason = strdup("no process left in its cgroup");
	if (r < 0) {
		/* Nothing to keep: remove its cgroup if it is empty. */
		if (rule->made_cgroup && rule->cgroup_abs)
			(void)rmdir(rule->cgroup_abs);
		rule_free(m, rule);
		return r;
	}
	r = rule_install(m, rule, &error, ret_reason);
	if (r < 0)
		return r;
	r = rule_watch_cgroup(m, rule);
	if (r < 0) {
		rule_remove(m, rule, false);
		return r;
	}
	(void)rule_watch_pid(m, rule);
	*ret = rule;
	return 0;
}

/* all, users, cgroups and units by depth, processes, sockets. */
static unsigned saved_rank(const SavedRule *sr) {
	static const struct {
		const char *prefix;
		unsigned rank;
	} ranks[] = { { "all", 0 }, { "user@", 100 }, { "cgroup:", 200 }, { "unit:", 300 }, { "pid:", 400 }, { "sock:", 500 } };
	const char *t = sr->target;

	if (!t)
		return 1000;
	for (size_t k = 0; k < sizeof(ranks) / sizeof(ranks[0]); k++)
		if (strncmp(t, ranks[k].prefix, strlen(ranks[k].prefix)) == 0) {
			unsigned depth = 0;
			if (ranks[k].rank == 200)
				for (const char *c = t; *c && depth < 99; c++)
					depth += *c == '/';
			return ranks[k].rank + depth;
		}
	return 1000;
}

static int saved_outer_first(const void *a, const void *b) {
	unsigned ra = saved_rank(a), rb = saved_rank(b);
	const SavedRule *sa = a, *sb = b;

	if (ra != rb)
		return ra < rb ? -1 : 1;
	return sa->id < sb->id ? -1 : sa->id > sb->id;
}

int manager_restore_rules(Manager *m) {
	unsigned ok = 0, dropped = 0;

	/* One write at the end, not one per rule: rewriting the whole file
	 * for each of 8000 rules took 69 s. A kill before the end leaves the
	 * file as the killed run wrote it, which is what the next start needs. */
	m->restoring = true;
	/* Outermost first, so that each comes back inside its parent and
	 * nothing is made twice. */
	qsort(m->saved, m->n_saved, sizeof(SavedRule), saved_outer_first);
	for (size_t k = 0; k < m->n_saved; k++) {
		SavedRule *sr = &m->saved[k];
		const char *error = NULL;
		/* Until here the state file carries it as still to restore (see
		 * manager_state_save()); from here on as a rule once it is back,
		 * and no more if it cannot come back. */
		_cleanup_free_ char *target = TAKE_PTR(sr->target), *reason = NULL;
		Rule *rule = NULL;
		int r;

		if (!target)
			continue;
		if (strncmp(target, "pid:", 4) == 0 && sr->remote) {
			/* Its processes went back (manager_recover_cgroups()),
			 * or stay with the target's unscoped rule. */
			reason = strdup("a scoped pid: rule is not put back after a crash");
			r = -EOPNOTSUPP;
		} else if (strncmp(target, "pid:", 4) == 0)
			r = restore_pid_rule(m, sr, target, &rule, &reason);
		else {
			RuleRequest req = {
				.target = target,
				.remote = sr->remote,
				.has_up = true,
				.up_bps = sr->up,
				.has_down = true,
				.down_bps = sr->down,
				.has_min_up = true,
				.min_up = sr->min_up,
				.has_min_down = true,
				.min_down = sr->min_down,
				.has_priority = true,
				.priority = sr->priority,
				.minor = sr->minor,
				.transient = sr->transient,
				.caller = sr->owner,
				.acknowledged = true,
			};
			r = manager_set_rule(m, &req, &rule, &error, &reason);
			if (r >= 0) {
				rule->id = sr->id;
				/* Its line is found again once the files are read. */
				if (sr->persistent && !rule->persist)
					rule->persist = calloc(1, sizeof(PersistSpec));
				if (sr->id >= m->next_rule_id)
					m->next_rule_id = sr->id + 1;
			}
		}
		if (r < 0) {
			log_struct(LOG_NOTICE, LOG_FIELDS({ "RULE", target }, { "TARGET", target }, { "UID", LOG_UINT(sr->owner) }),
				   "Not restoring %s: %s", target, reason ?: strerror(-r));
			dropped++;
		} else {
			char up[RATE_STRING_MAX], down[RATE_STRING_MAX];

			log_struct(LOG_INFO, RULE_FIELDS(rule), "Rule %s restored: up %s, down %s (class %x:%x, uid %u).",
				   rule->name, rule->up_bps ? rate_format(rule->up_bps, up) : "unlimited",
				   rule->down_bps ? rate_format(rule->down_bps, down) : "unlimited", NB_HTB_MAJOR, rule->minor,
				   (unsigned)rule->owner);
			ok++;
		}
	}
	m->restoring = false;
	saved_rules_free(m->saved, m->n_saved);
	m->saved = NULL;
	m->n_saved = 0;
	(void)manager_state_save(m);
	if (ok + dropped > 0)
		log_notice("Restored %u rule(s) of the previous run (%u gone with their targets).", ok, dropped);
	return 0;
}
