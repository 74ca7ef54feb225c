/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "htb-params.h"
#include "netbump/netbump.h"
#include "tc-plan.h"

void tc_plan_free(TcPlan *p) {
	free(p->ops);
	free(p->steps);
	*p = (TcPlan){};
}

static int push(TcPlan *p, const TcDev *d, const struct nl_tc_op *op, const struct nl_tc_op *undo) {
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct nl_tc_op *ops = realloc(p->ops, cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		p->ops = ops;
		TcStep *steps = realloc(p->steps, cap * sizeof(*steps));
		if (!steps)
			return -ENOMEM;
		p->steps = steps;
		p->cap = cap;
	}
	p->ops[p->n] = *op;
	p->steps[p->n] = (TcStep){ .dev = d->name, .has_undo = undo != NULL };
	if (undo)
		p->steps[p->n].undo = *undo;
	p->n++;
	return 0;
}

/* Leaf queues. fq_codel where the kernel has it (it keeps queues short by
 * itself). Else a byte FIFO bounded to about 50 ms at the class rate:
 *  - uploads: a bfifo holding at least two 64 KiB GSO packets, which local
 *    TCP hands down whole (TCP small queues keep it from filling). Cut into
 *    frames here, a running upload that got a limit lost the tail of every
 *    aggregate and fell to half the limit and less; whole, HTB charges an
 *    aggregate at once, which at 1 Mbit/s is a burst of half a second;
 *  - downloads below 200 Mbit/s (segment): the FIFO inside a TBF that
 *    segments GSO aggregates (veth and GRO deliver them whole): dropping a
 *    whole aggregate at once makes TCP lose dozens of segments and miss the
 *    rate by 5-10%, dropping single frames does not. The TBF runs far above
 *    the class rate so that it never shapes (HTB does) and rarely throttles;
 *  - faster downloads: a plain bfifo. 50 ms there hold dozens of
 *    aggregates, so whole-aggregate drops are rare, while splitting 83,000
 *    frames a second cost 5-8% of the rate at 1 Gbit/s on 2 CPUs.
 * A class keeps the kind of leaf it was made with when its rate changes
 * (replacing a leaf by another kind would drop its queue). */
#define TBF_RATE (UINT64_C(100000000000) / 8)
#define FQ_CODEL_LIMIT 10240u

void tc_leaf_queue(const TcDev *d, uint64_t bps, bool segment, struct nl_leaf *ret) {
	if (d->fq_codel)
		*ret = (struct nl_leaf){ .kind = NL_LEAF_FQ_CODEL, .limit = FQ_CODEL_LIMIT };
	else if (segment)
		*ret = (struct nl_leaf){ .kind = NL_LEAF_TBF,
					 .limit = fifo_limit(bps, d->mtu, d->up),
					 .rate = TBF_RATE,
					 .burst = 2 * (d->mtu + 14) };
	else
		*ret = (struct nl_leaf){ .kind = NL_LEAF_BFIFO, .limit = fifo_limit(bps, d->mtu, true) };
}

static int class_op(TcPlan *p, const TcDev *d, enum nl_tc_op_kind kind, uint32_t parent, uint32_t minor,
		    const struct nl_htb_class *c, const struct nl_htb_class *was) {
	struct nl_tc_op op = { .kind = kind, .ifindex = d->ifindex, .parent = parent, .handle = NB_CLASSID(minor) };
	struct nl_tc_op undo = op;

	if (c)
		op.htb = *c;
	switch (kind) {
	case NL_TC_CLASS_NEW:
		undo = (struct nl_tc_op){ .kind = NL_TC_CLASS_DEL, .ifindex = d->ifindex, .handle = op.handle };
		return push(p, d, &op, &undo);
	case NL_TC_CLASS_CHANGE:
		undo.htb = *was;
		return push(p, d, &op, &undo);
	default:
		return push(p, d, &op, NULL);
	}
}

/* The queue of class minor (handle major:); was: the one it had, to put
 * back, NULL: the class is new (its queue goes with it). */
static int leaf_op(TcPlan *p, const TcDev *d, uint32_t minor, uint32_t major, const struct nl_leaf *leaf,
		   const struct nl_leaf *was) {
	struct nl_tc_op op = { .kind = NL_TC_LEAF, .ifindex = d->ifindex, .parent = NB_CLASSID(minor),
			       .handle = major << 16, .leaf = *leaf };
	struct nl_tc_op undo = op;

	if (!was)
		return push(p, d, &op, NULL);
	undo.leaf = *was;
	return push(p, d, &op, &undo);
}

static int plan_delete(TcPlan *p, const TcDev *d, uint32_t minor, const TcClasses *old) {
	int r = 0;

	if (old->leaves && old->small)
		r = class_op(p, d, NL_TC_CLASS_DEL, 0, NB_MINOR_SMALL(minor), NULL, NULL);
	if (r >= 0 && old->leaves)
		r = class_op(p, d, NL_TC_CLASS_DEL, 0, NB_MINOR_BULK(minor), NULL, NULL);
	if (r >= 0)
		r = class_op(p, d, NL_TC_CLASS_DEL, 0, minor, NULL, NULL);
	return r;
}

static int plan_make(TcPlan *p, const TcDev *d, uint32_t minor, const TcClasses *new) {
	const ClassSpec *s = &new->spec;
	struct nl_htb_class c, cb, cs;
	struct nl_leaf bulk_q, small_q;
	int r;

	rule_class_params(s, d->mtu, &c);
	tc_leaf_queue(d, leaf_bps(s), new->segment, &bulk_q);
	r = class_op(p, d, NL_TC_CLASS_NEW, s->parent, minor, &c, NULL);
	if (r < 0 || !new->leaves)
		return r < 0 ? r : leaf_op(p, d, minor, NB_LEAF_MAJOR_BULK(minor), &bulk_q, NULL);

	leaf_class_params(s, d->mtu, false, &cb);
	r = class_op(p, d, NL_TC_CLASS_NEW, NB_CLASSID(minor), NB_MINOR_BULK(minor), &cb, NULL);
	if (r >= 0 && new->small) {
		leaf_class_params(s, d->mtu, true, &cs);
		r = class_op(p, d, NL_TC_CLASS_NEW, NB_CLASSID(minor), NB_MINOR_SMALL(minor), &cs, NULL);
	}
	if (r >= 0)
		r = leaf_op(p, d, NB_MINOR_BULK(minor), NB_LEAF_MAJOR_BULK(minor), &bulk_q, NULL);
	if (r >= 0 && new->small) {
		tc_leaf_queue(d, leaf_bps(s), false, &small_q);
		r = leaf_op(p, d, NB_MINOR_SMALL(minor), NB_LEAF_MAJOR_SMALL(minor), &small_q, NULL);
	}
	return r;
}

/* The leaf classes (or, without, nothing) of a change in place. */
static int change_leaves(TcPlan *p, const TcDev *d, uint32_t minor, const TcClasses *old, const TcClasses *new) {
	struct nl_htb_class cb, cs, ob, os;
	int r;

	if (!new->leaves)
		return 0;
	leaf_class_params(&new->spec, d->mtu, false, &cb);
	leaf_class_params(&old->spec, d->mtu, false, &ob);
	r = class_op(p, d, NL_TC_CLASS_CHANGE, NB_CLASSID(minor), NB_MINOR_BULK(minor), &cb, &ob);
	if (r >= 0 && new->small) {
		leaf_class_params(&new->spec, d->mtu, true, &cs);
		leaf_class_params(&old->spec, d->mtu, true, &os);
		r = class_op(p, d, NL_TC_CLASS_CHANGE, NB_CLASSID(minor), NB_MINOR_SMALL(minor), &cs, &os);
	}
	return r;
}

static int plan_change(TcPlan *p, const TcDev *d, uint32_t minor, const TcClasses *old, const TcClasses *new) {
	const ClassSpec *s = &new->spec;
	struct nl_htb_class c, oc;
	int r;

	rule_class_params(s, d->mtu, &c);
	rule_class_params(&old->spec, d->mtu, &oc);
	if (s->ceil < old->spec.ceil) {
		r = change_leaves(p, d, minor, old, new);
		if (r >= 0)
			r = class_op(p, d, NL_TC_CLASS_CHANGE, s->parent, minor, &c, &oc);
	} else {
		r = class_op(p, d, NL_TC_CLASS_CHANGE, s->parent, minor, &c, &oc);
		if (r >= 0)
			r = change_leaves(p, d, minor, old, new);
	}
	if (r < 0 || d->fq_codel || s->ceil == old->spec.ceil)
		return r;

	/* Byte FIFOs are sized by the rate: resized, the same kind kept. */
	struct nl_leaf q, was;
	tc_leaf_queue(d, leaf_bps(s), old->segment, &q);
	tc_leaf_queue(d, leaf_bps(&old->spec), old->segment, &was);
	r = leaf_op(p, d, new->leaves ? NB_MINOR_BULK(minor) : minor, NB_LEAF_MAJOR_BULK(minor), &q, &was);
	if (r >= 0 && new->leaves && new->small) {
		tc_leaf_queue(d, leaf_bps(s), false, &q);
		tc_leaf_queue(d, leaf_bps(&old->spec), false, &was);
		r = leaf_op(p, d, NB_MINOR_SMALL(minor), NB_LEAF_MAJOR_SMALL(minor), &q, &was);
	}
	return r;
}

int tc_plan_class(TcPlan *p, const TcDev *d, uint32_t minor, const TcClasses *old, const TcClasses *new) {
	if (!new->spec.on)
		return old->spec.on ? plan_delete(p, d, minor, old) : 0;
	if (!old->spec.on)
		return plan_make(p, d, minor, new);
	if (old->spec.parent != new->spec.parent || old->leaves != new->leaves || old->small != new->small)
		return -EINVAL;
	return plan_change(p, d, minor, old, new);
}

int tc_plan_small(TcPlan *p, const TcDev *d, uint32_t minor, const ClassSpec *spec) {
	struct nl_htb_class cs;
	struct nl_leaf q;
	int r;

	if (!spec->on)
		return 0;
	leaf_class_params(spec, d->mtu, true, &cs);
	tc_leaf_queue(d, leaf_bps(spec), false, &q);
	r = class_op(p, d, NL_TC_CLASS_NEW, NB_CLASSID(minor), NB_MINOR_SMALL(minor), &cs, NULL);
	if (r >= 0)
		r = leaf_op(p, d, NB_MINOR_SMALL(minor), NB_LEAF_MAJOR_SMALL(minor), &q, NULL);
	return r;
}

int tc_plan_undo(const TcPlan *p, const int *errors, TcPlan *ret) {
	TcPlan u = {};

	for (size_t k = p->n; k-- > 0;) {
		TcDev d = { .name = p->steps[k].dev, .ifindex = p->ops[k].ifindex };
		int r;

		if (errors[k] < 0 || !p->steps[k].has_undo)
			continue;
		r = push(&u, &d, &p->steps[k].undo, NULL);
		if (r < 0) {
			tc_plan_free(&u);
			return r;
		}
	}
	*ret = u;
	return 0;
}
