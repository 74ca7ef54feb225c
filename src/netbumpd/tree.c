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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manager.h"
#include "netbump/netbump.h"

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
