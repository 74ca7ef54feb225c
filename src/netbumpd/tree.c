/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rule tree on the interfaces: each rule's classes where nest.c wants
 * them, changed in place where HTB allows it, and made anew under a new
 * minor where it does not (a class cannot move to another parent).
 *
 * Order keeps every flow bounded: classes are made top down before the
 * maps point at them; the maps let go before classes are deleted, bottom
 * up. A subtree that moves is made again beside the old one (make before
 * break), the maps switch to it, and only then the old one goes.
 */
#include <errno.h>
#include <linux/pkt_sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf.h"
#include "iface.h"
#include "log.h"
#include "manager.h"
#include "netbump/netbump.h"
#include "ramp.h"
#include "rule.h"
#include "state.h"
#include "tree.h"

/* Both directions of r on every interface, from (ou, od) to (nu, nd), as
 * made with r's leaves: appended to p. */
static int plan_both(Manager *m, TcPlan *p, const Rule *r, const ClassSpec *ou, const ClassSpec *od,
		     const ClassSpec *nu, const ClassSpec *nd) {
	for (Iface *i = m->ifaces; i; i = i->next)
		for (int dir = 0; dir < 2; dir++) {
			bool up = dir == 0;
			TcClasses old = { .spec = up ? *ou : *od,
					  .leaves = r->leaves,
					  .small = r->leaves && r->small_made,
					  .segment = !up && r->down_segmented };
			TcClasses new = old;
			TcDev d;
			int k;

			new.spec = up ? *nu : *nd;
			if (!iface_tc_dev(m, i, up, &d))
				break;
			k = tc_plan_class(p, &d, r->minor, &old, &new);
			if (k < 0)
				return k;
		}
	return 0;
}

/* Applies both directions of r on every interface, from (ou, od) to
 * (nu, nd), in one batch. On failure what was done is undone, and
 * *ret_why says where, with the kernel's message. */
static int apply_both(Manager *m, const Rule *r, const ClassSpec *ou, const ClassSpec *od, const ClassSpec *nu,
		      const ClassSpec *nd, char **ret_why) {
	_cleanup_tc_plan_ TcPlan p = {};
	int k = plan_both(m, &p, r, ou, od, nu, nd);

	return k < 0 ? k : iface_plan_run(m, &p, ret_why);
}

static const ClassSpec off;

/* A rule class gets leaf classes when a rule is nested in it (HTB queues
 * only at leaves: a class with a child passes what is sent to it straight
 * through, unshaped), or for its small-packet leaf. */
static bool wants_leaves(const Rule *r) {
	return r->small_first || r->children;
}

static bool made(const Rule *r) {
	return r->cls_up.on || r->cls_down.on;
}

static int rebuild(Manager *m, Rule *top, const Rule *skip, char **ret_why);

/* A class made without leaves cannot get a child in place: the kernel
 * would turn it into an inner class with the maps still sending the rule's
 * own traffic to it. Before r's classes go under its parent's, the parent
 * is made anew with its leaves (beside the old classes, which go once the
 * maps point at the new ones). */
static int parent_ready(Manager *m, const Rule *r, char **ret_why) {
	Rule *p = r->parent;

	if (!p || p->leaves || !made(p))
		return 0;
	return rebuild(m, p, r, ret_why);
}

/* ---- a killed run's classes: which rule classes have leaves ---- */

enum {
	ADOPT_CLASS = 1 << 0, /* the rule class is there (on some device) */
	ADOPT_BULK = 1 << 1,  /* ... and a bulk leaf under it */
};

static int adopt_collect_cb(const struct nl_class_stats *s, void *userdata) {
	uint8_t *v = userdata;
	uint32_t minor = s->classid & 0xffffu;

	if ((s->classid >> 16) != NB_HTB_MAJOR || minor == NB_MINOR_PROBE)
		return 0;
	if (minor <= NB_RULE_MINOR_MAX)
		v[minor] |= ADOPT_CLASS;
	else if (minor == NB_MINOR_BULK(NB_MINOR_RULE(minor)))
		v[NB_MINOR_RULE(minor)] |= ADOPT_BULK;
	return 0;
}

/* Whether a rule taken over onto a class of the killed run keeps the
 * leaves it has there: a class is not changed from one kind to the other
 * in place. A class not there is made as wanted. */
static bool adopt_leaves(Manager *m, const Rule *r) {
	if (!m->adopt_classes) {
		m->adopt_classes = calloc(NB_RULE_MINOR_MAX + 1, 1);
		if (!m->adopt_classes)
			return wants_leaves(r);
		for (Iface *i = m->ifaces; i; i = i->next)
			if (!i->skipped) {
				(void)nl_class_dump(m->nl, i->ifindex, adopt_collect_cb, m->adopt_classes);
				(void)nl_class_dump(m->nl, i->ifb_ifindex, adopt_collect_cb, m->adopt_classes);
			}
	}
	if (m->adopt_classes[r->minor] & ADOPT_BULK)
		return true;
	if (m->adopt_classes[r->minor] & ADOPT_CLASS)
		return false;
	return wants_leaves(r);
}

int tree_make(Manager *m, Rule *r, char **ret_why) {
	ClassSpec nu, nd;
	int k;

	k = parent_ready(m, r, ret_why);
	if (k < 0)
		return k;
	r->leaves = m->restoring && m->adopted ? adopt_leaves(m, r) : wants_leaves(r);
	if (!r->leaves)
		r->small_first = false; /* its small leaf would go under the rule class */
	nest_class_spec(r, true, &nu);
	nest_class_spec(r, false, &nd);
	k = apply_both(m, r, &off, &off, &nu, &nd, ret_why);
	if (k < 0)
		return k;
	r->cls_up = nu;
	r->cls_down = nd;
	return 0;
}

void tree_unmake(Manager *m, Rule *r) {
	(void)apply_both(m, r, &r->cls_up, &r->cls_down, &off, &off, NULL);
	r->cls_up = r->cls_down = off;
}

static bool moves(const ClassSpec *old, const ClassSpec *new) {
	return old->on && new->on && old->parent != new->parent;
}

int tree_sync(Manager *m, Rule *r, bool subtree, char **ret_why) {
	ClassSpec nu, nd, ou = r->cls_up, od = r->cls_down, cu, cd;
	int k, ret = 0;

	if (!made(r))
		r->leaves = wants_leaves(r); /* nothing made yet: as wanted */
	nest_class_spec(r, true, &nu);
	nest_class_spec(r, false, &nd);
	/* Another parent, or leaves to gain or lose: made anew. */
	if (moves(&ou, &nu) || moves(&od, &nd) || (r->leaves != wants_leaves(r) && (nu.on || nd.on)))
		return tree_rebuild(m, r, ret_why);

	/* Made and changed now, deleted once the maps let go. */
	cu = nu.on ? nu : ou;
	cd = nd.on ? nd : od;
	if (memcmp(&cu, &ou, sizeof(cu)) != 0 || memcmp(&cd, &od, sizeof(cd)) != 0) {
		k = apply_both(m, r, &ou, &od, &cu, &cd, ret_why);
		if (k < 0)
			return k;
	}
	r->cls_up = cu;
	r->cls_down = cd;
	if (subtree)
		for (Rule *c = r->children; c; c = c->sibling) {
			k = tree_sync(m, c, true, ret_why);
			if (k < 0 && ret >= 0)
				ret = k;
		}
	if (nu.on != ou.on || nd.on != od.on) {
		r->cls_up = nu.on ? cu : nu;
		r->cls_down = nd.on ? cd : nd;
		(void)rule_bpf_set(m, r);
		manager_bpf_bump_gen(m);
		if (!nu.on || !nd.on)
			(void)apply_both(m, r, &cu, &cd, &r->cls_up, &r->cls_down, NULL);
	}
	return ret;
}

static int subtree_collect(Rule *r, const Rule *skip, Rule ***v, size_t *n) {
	Rule **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	(*v)[(*n)++] = r;
	for (Rule *c = r->children; c; c = c->sibling) {
		if (c == skip)
			continue;
		int k = subtree_collect(c, skip, v, n);
		if (k < 0)
			return k;
	}
	return 0;
}

typedef struct Old {
	uint32_t minor;
	ClassSpec up, down;
	bool small_made, leaves;
} Old;

static void old_restore(Rule *r, const Old *o) {
	r->minor = o->minor;
	r->cls_up = o->up;
	r->cls_down = o->down;
	r->small_made = o->small_made;
	r->leaves = o->leaves;
}

/* New classes for top and its subtree (but skip, whose classes are not
 * made yet), made in one batch, top down; the maps switched; the old
 * classes deleted in one more, bottom up. */
static int rebuild(Manager *m, Rule *top, const Rule *skip, char **ret_why) {
	_cleanup_tc_plan_ TcPlan make = {}, unmake = {};
	_cleanup_free_ Rule **v = NULL;
	_cleanup_free_ Old *old = NULL;
	size_t n = 0, done = 0;
	int k;

	k = parent_ready(m, top, ret_why);
	if (k < 0)
		return k;
	k = subtree_collect(top, skip, &v, &n);
	if (k < 0)
		return k;
	old = calloc(n, sizeof(*old));
	if (!old)
		return -ENOMEM;

	/* New minors and classes, top down: a rule's parent has its new
	 * minor before the rule's classes are planned under it. */
	for (; done < n; done++) {
		Rule *r = v[done];
		ClassSpec nu, nd;
		uint32_t minor;

		old[done] = (Old){ r->minor, r->cls_up, r->cls_down, r->small_made, r->leaves };
		k = rules_minor_alloc(m, &minor);
		if (k < 0)
			break;
		ramp_stop(r);
		r->minor = minor;
		r->small_made = false;
		r->small_failed = false;
		r->leaves = wants_leaves(r);
		nest_class_spec(r, true, &nu);
		nest_class_spec(r, false, &nd);
		k = plan_both(m, &make, r, &off, &off, &nu, &nd);
		r->cls_up = nu;
		r->cls_down = nd;
		if (k < 0) {
			done++;
			break;
		}
	}
	if (k >= 0)
		k = iface_plan_run(m, &make, ret_why);
	if (k < 0) {
		/* Back as it was (iface_plan_run() took back what it made). */
		while (done-- > 0) {
			if (v[done]->minor != old[done].minor)
				rules_minor_free(m, v[done]->minor);
			old_restore(v[done], &old[done]);
		}
		return k;
	}

	/* The maps to the new classes. */
	for (size_t j = 0; j < n; j++) {
		m->by_minor[v[j]->minor] = v[j];
		v[j]->up.last_usec = v[j]->down.last_usec = 0; /* new counters */
		(void)rule_bpf_set(m, v[j]);
	}
	manager_bpf_bump_gen(m);

	/* The old classes, bottom up. */
	for (size_t j = n; j-- > 0;) {
		Rule was = *v[j];
		old_restore(&was, &old[j]);
		(void)plan_both(m, &unmake, &was, &old[j].up, &old[j].down, &off, &off);
	}
	(void)iface_plan_run(m, &unmake, NULL);
	for (size_t j = 0; j < n; j++)
		rules_minor_free(m, old[j].minor);
	for (size_t j = 0; j < n; j++)
		if (v[j]->small_first) {
			manager_small_schedule(m);
			break;
		}
	/* The new class ids on disk: a restart after a kill takes the
	 * classes over by them. */
	if (m->state_dir && !m->restoring)
		(void)manager_state_save(m);
	return 0;
}

int tree_rebuild(Manager *m, Rule *top, char **ret_why) {
	return rebuild(m, top, NULL, ret_why);
}

static int add_iface_subtree(Manager *m, TcPlan *p, Iface *i, Rule *r) {
	for (int dir = 0; dir < 2; dir++) {
		bool up = dir == 0;
		TcClasses old = { .spec = off }, new = { .spec = up ? r->cls_up : r->cls_down,
							  .leaves = r->leaves,
							  .small = r->leaves && r->small_made,
							  .segment = !up && r->down_segmented };
		TcDev d;
		int k;

		if (!iface_tc_dev(m, i, up, &d))
			return 0;
		k = tc_plan_class(p, &d, r->minor, &old, &new);
		if (k < 0)
			return k;
	}
	for (Rule *c = r->children; c; c = c->sibling) {
		int k = add_iface_subtree(m, p, i, c);
		if (k < 0)
			return k;
	}
	return 0;
}

int tree_add_iface(Manager *m, Iface *i) {
	_cleanup_tc_plan_ TcPlan p = {};
	int k = 0;

	for (Rule *r = m->top_rules; r && k >= 0; r = r->sibling)
		k = add_iface_subtree(m, &p, i, r);
	return k < 0 ? k : iface_plan_run(m, &p, NULL);
}

/* ---- after taking over a killed run's classes ---- */

typedef struct ClassSet {
	uint32_t *v;      /* minors */
	uint32_t *parent; /* ... and their parents' classids */
	size_t n, cap;
} ClassSet;

static int class_collect_cb(const struct nl_class_stats *s, void *userdata) {
	ClassSet *set = userdata;

	if ((s->classid >> 16) != NB_HTB_MAJOR)
		return 0;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 256;
		uint32_t *v = realloc(set->v, cap * sizeof(*v)), *p;
		if (!v)
			return -ENOMEM;
		set->v = v;
		p = realloc(set->parent, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		set->parent = p;
		set->cap = cap;
	}
	set->parent[set->n] = s->parent;
	set->v[set->n++] = s->classid & 0xffffu;
	return 0;
}

static void set_free(ClassSet *set) {
	free(set->v);
	free(set->parent);
	*set = (ClassSet){};
}

/* The parent the kernel has for a class, 0: no such class. HTB says
 * TC_H_ROOT for a class at the top, where we say the qdisc's handle. */
static uint32_t parent_of(const ClassSet *set, uint32_t minor) {
	for (size_t k = 0; k < set->n; k++)
		if (set->v[k] == minor)
			return set->parent[k] == TC_H_ROOT ? (uint32_t)NB_HTB_MAJOR << 16 : set->parent[k];
	return 0;
}

/* A rule taken over onto a class of the killed run under another parent
 * (its parent then was a rule that did not come back): HTB changed the
 * class in place but kept it where it was. Such a rule and its subtree are
 * made anew under their parent; the old classes are pruned after. */
static void misplaced_rebuild(Manager *m, Rule *r, const ClassSet *up, const ClassSet *down) {
	if ((r->cls_up.on && parent_of(up, r->minor) != r->cls_up.parent) ||
	    (r->cls_down.on && parent_of(down, r->minor) != r->cls_down.parent)) {
		log_struct(LOG_NOTICE, RULE_FIELDS(r), "%s: its class of the previous run is elsewhere; made anew.", r->name);
		(void)tree_rebuild(m, r, NULL);
		return;
	}
	for (Rule *c = r->children; c; c = c->sibling)
		misplaced_rebuild(m, c, up, down);
}

static bool set_has(const ClassSet *set, uint32_t minor) {
	for (size_t k = 0; k < set->n; k++)
		if (set->v[k] == minor)
			return true;
	return false;
}

/* Whether the kernel has this class of the rule: the rule class and its
 * leaves where the rule has a class that way. */
static bool claimed(Manager *m, uint32_t minor, bool up) {
	Rule *r = m->by_minor[NB_MINOR_RULE(minor)];
	const ClassSpec *s;

	if (!r || minor == NB_MINOR_PROBE)
		return false;
	s = up ? &r->cls_up : &r->cls_down;
	if (!s->on)
		return false;
	return minor == r->minor || (minor == NB_MINOR_BULK(r->minor) && r->leaves) ||
	       (minor == NB_MINOR_SMALL(r->minor) && r->leaves && r->small_made);
}

static void prune_device(Manager *m, uint32_t ifindex, bool up, ClassSet *set) {
	unsigned deleted = 0;

	/* Leaves first, then rule classes, deepest first: HTB deletes no
	 * class with children, so a pass deletes what it can and the next
	 * the parents freed by it. */
	for (int pass = 0; pass < 10; pass++) {
		unsigned n = 0;
		for (size_t k = 0; k < set->n; k++) {
			uint32_t minor = set->v[k];
			if (minor == 0 || claimed(m, minor, up))
				continue;
			if (pass == 0 && minor <= NB_RULE_MINOR_MAX)
				continue;
			if (nl_class_delete(m->nl, ifindex, NB_CLASSID(minor)) >= 0) {
				set->v[k] = 0;
				n++;
			}
		}
		deleted += n;
		if (n == 0 && pass > 0)
			break;
	}
	if (deleted)
		log_info("Removed %u class(es) of the previous run that no rule has now.", deleted);
}

typedef void (*ClassesFn)(Manager *m, Iface *i, ClassSet *up, ClassSet *down, void *userdata);

/* fn with the classes the kernel has on each shaped interface and its IFB. */
static void each_iface_classes(Manager *m, ClassesFn fn, void *userdata) {
	for (Iface *i = m->ifaces; i; i = i->next) {
		ClassSet up = {}, down = {};

		if (!i->skipped && nl_class_dump(m->nl, i->ifindex, class_collect_cb, &up) >= 0 &&
		    nl_class_dump(m->nl, i->ifb_ifindex, class_collect_cb, &down) >= 0)
			fn(m, i, &up, &down, userdata);
		set_free(&up);
		set_free(&down);
	}
}

typedef struct SmallSeen {
	unsigned ifaces;        /* shaped interfaces looked at */
	uint8_t seen[NB_RULE_MINOR_MAX + 1]; /* on how many of them a rule's small leaves are */
} SmallSeen;

static void small_count(Manager *m, Iface *i, ClassSet *up, ClassSet *down, void *userdata) {
	SmallSeen *ss = userdata;

	ss->ifaces++;
	for (Rule *r = m->rules; r; r = r->next) {
		uint32_t s = NB_MINOR_SMALL(r->minor);
		if (r->small_first && r->leaves && !r->small_made && (r->cls_up.on || r->cls_down.on) &&
		    (!r->cls_up.on || set_has(up, s)) && (!r->cls_down.on || set_has(down, s)) && ss->seen[r->minor] < 255)
			ss->seen[r->minor]++;
	}
}

/* Small-packet leaves the killed run had made on every interface are kept
 * (the maps may send packets there already), set to the rule as it came
 * back (the killed run may have died before it changed them). */
static void small_keep(Manager *m) {
	SmallSeen *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return;
	each_iface_classes(m, small_count, ss);
	for (Rule *r = m->rules; r; r = r->next) {
		if (ss->ifaces == 0 || ss->seen[r->minor] != ss->ifaces)
			continue;
		r->small_made = true;
		(void)apply_both(m, r, &r->cls_up, &r->cls_down, &r->cls_up, &r->cls_down, NULL);
		(void)rule_bpf_set(m, r);
	}
	free(ss);
}

/* Every class no rule has is deleted, as far as HTB lets (not one that
 * still has a rule's class under it). */
static void prune_iface(Manager *m, Iface *i, ClassSet *up, ClassSet *down, void *userdata) {
	prune_device(m, i->ifindex, true, up);
	prune_device(m, i->ifb_ifindex, false, down);
}

static void misplaced_iface(Manager *m, Iface *i, ClassSet *up, ClassSet *down, void *userdata) {
	for (Rule *r = m->top_rules; r; r = r->sibling)
		misplaced_rebuild(m, r, up, down);
}

void tree_adopt_finish(Manager *m) {
	/* Leftovers first, so that a rule made anew below finds its new
	 * class ids and leaf handles free; then the rules kept under another
	 * parent; then what they left. */
	small_keep(m);
	each_iface_classes(m, prune_iface, NULL);
	each_iface_classes(m, misplaced_iface, NULL);
	each_iface_classes(m, prune_iface, NULL);
	manager_bpf_bump_gen(m);
	free(m->adopt_classes);
	m->adopt_classes = NULL;
}
