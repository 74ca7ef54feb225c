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

/* Applies both directions of r on every interface, from (ou, od) to
 * (nu, nd). On failure puts the interfaces done back, and *ret_why says
 * where, with the kernel's message. */
static int apply_both(Manager *m, const Rule *r, const ClassSpec *ou, const ClassSpec *od, const ClassSpec *nu,
		      const ClassSpec *nd, char **ret_why) {
	Iface *i;
	int k = 0;

	nl_error_reset(m->nl);
	for (i = m->ifaces; i; i = i->next) {
		k = iface_apply_class(m, i, r, true, ou, nu);
		if (k < 0)
			break;
		k = iface_apply_class(m, i, r, false, od, nd);
		if (k < 0) {
			(void)iface_apply_class(m, i, r, true, nu, ou);
			break;
		}
	}
	if (k >= 0)
		return 0;
	if (ret_why) {
		const char *msg = nl_error_extack(m->nl);
		free(*ret_why);
		if (asprintf(ret_why, "%s (class %x:%x on %s or its IFB %s)%s%s", strerror(-k), NB_HTB_MAJOR, r->minor,
			     i->name, i->ifb_name, msg[0] ? ": " : "", msg) < 0)
			*ret_why = NULL;
	}
	for (Iface *j = m->ifaces; j != i; j = j->next) {
		(void)iface_apply_class(m, j, r, true, nu, ou);
		(void)iface_apply_class(m, j, r, false, nd, od);
	}
	return k;
}

static const ClassSpec off;

int tree_make(Manager *m, Rule *r, char **ret_why) {
	ClassSpec nu, nd;
	int k;

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

	nest_class_spec(r, true, &nu);
	nest_class_spec(r, false, &nd);
	if (moves(&ou, &nu) || moves(&od, &nd))
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

static int subtree_collect(Rule *r, Rule ***v, size_t *n) {
	Rule **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	(*v)[(*n)++] = r;
	for (Rule *c = r->children; c; c = c->sibling) {
		int k = subtree_collect(c, v, n);
		if (k < 0)
			return k;
	}
	return 0;
}

typedef struct Old {
	uint32_t minor;
	ClassSpec up, down;
	bool small_made;
} Old;

int tree_rebuild(Manager *m, Rule *top, char **ret_why) {
	_cleanup_free_ Rule **v = NULL;
	_cleanup_free_ Old *old = NULL;
	size_t n = 0, done = 0;
	int k;

	k = subtree_collect(top, &v, &n);
	if (k < 0)
		return k;
	old = calloc(n, sizeof(*old));
	if (!old)
		return -ENOMEM;

	/* New classes, top down: a rule's parent is made before it. */
	for (; done < n; done++) {
		Rule *r = v[done];
		uint32_t minor;

		old[done] = (Old){ r->minor, r->cls_up, r->cls_down, r->small_made };
		k = rules_minor_alloc(m, &minor);
		if (k < 0)
			break;
		ramp_stop(r);
		r->minor = minor;
		r->small_made = false;
		r->small_failed = false;
		k = tree_make(m, r, ret_why);
		if (k < 0) {
			rules_minor_free(m, minor);
			break;
		}
	}
	if (k < 0) {
		/* Back as it was: the new classes bottom up, the old minors. */
		Rule *failed = v[done];
		failed->minor = old[done].minor;
		failed->cls_up = old[done].up;
		failed->cls_down = old[done].down;
		failed->small_made = old[done].small_made;
		while (done-- > 0) {
			Rule *r = v[done];
			tree_unmake(m, r);
			rules_minor_free(m, r->minor);
			r->minor = old[done].minor;
			r->cls_up = old[done].up;
			r->cls_down = old[done].down;
			r->small_made = old[done].small_made;
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
		was.minor = old[j].minor;
		was.small_made = old[j].small_made;
		(void)apply_both(m, &was, &old[j].up, &old[j].down, &off, &off, NULL);
		rules_minor_free(m, old[j].minor);
	}
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

static int add_iface_subtree(Manager *m, Iface *i, Rule *r) {
	int k = iface_apply_class(m, i, r, true, &off, &r->cls_up);

	if (k >= 0)
		k = iface_apply_class(m, i, r, false, &off, &r->cls_down);
	for (Rule *c = r->children; c && k >= 0; c = c->sibling)
		k = add_iface_subtree(m, i, c);
	return k;
}

int tree_add_iface(Manager *m, Iface *i) {
	int k = 0;

	for (Rule *r = m->top_rules; r && k >= 0; r = r->sibling)
		k = add_iface_subtree(m, i, r);
	return k;
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
	return minor == r->minor || minor == NB_MINOR_BULK(r->minor) ||
	       (minor == NB_MINOR_SMALL(r->minor) && r->small_made);
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
		if (r->small_first && !r->small_made && (r->cls_up.on || r->cls_down.on) &&
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
		for (Iface *i = m->ifaces; i; i = i->next) {
			(void)iface_apply_class(m, i, r, true, &r->cls_up, &r->cls_up);
			(void)iface_apply_class(m, i, r, false, &r->cls_down, &r->cls_down);
		}
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
}
