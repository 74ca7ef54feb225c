/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Interfaces netbump shapes. For each one:
 *   - a root HTB 6e62: on the interface: uploads, classified by skb->priority
 *     (set by the cgroup_skb egress program); default class 0, so traffic
 *     without a rule is sent directly and never waits behind a limit;
 *   - an IFB "nbifb<ifindex>" with the same HTB and class ids: downloads,
 *     redirected there by the tc ingress program;
 *   - a clsact qdisc (ours, or one that was already there) holding the
 *     ingress filter.
 */
#include <errno.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf.h"
#include "htb-params.h"
#include "iface.h"
#include "log.h"
#include "manager.h"
#include "netns.h"
#include "netbump/netbump.h"
#include "scope-map.h"
#include "state.h"
#include "tc-plan.h"
#include "tree.h"

#define NB_ROOT_HANDLE (NB_HTB_MAJOR << 16)
#define INGRESS_PARENT TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
#define DIRECT_QLEN 1000u

Iface *manager_find_iface(Manager *m, uint32_t ifindex) {
	for (Iface *i = m->ifaces; i; i = i->next)
		if (i->ifindex == ifindex)
			return i;
	return NULL;
}

/* Our IFBs are named NB_IFB_PREFIX<ifindex>; the alias is not checked: the
 * kernel announces a new link before its alias is set, and a crash between
 * the two would leave a device without one. */
static bool is_our_ifb(const struct nl_link *l) {
	return streq(l->kind, "ifb") && strncmp(l->name, NB_IFB_PREFIX, strlen(NB_IFB_PREFIX)) == 0;
}

/* ---- leftovers of a run that was killed ---- */

typedef struct U32Set {
	uint32_t *v;
	size_t n;
} U32Set;

static int u32set_add(U32Set *s, uint32_t x) {
	uint32_t *n = realloc(s->v, (s->n + 1) * sizeof(uint32_t));
	if (!n)
		return -ENOMEM;
	n[s->n++] = x;
	s->v = n;
	return 0;
}

static bool u32set_has(const U32Set *s, uint32_t x) {
	for (size_t k = 0; k < s->n; k++)
		if (s->v[k] == x)
			return true;
	return false;
}

/* A clsact of a killed run kept on ifindex (manager_recover_leftovers()):
 * true if there was one, which is no longer listed. */
static bool kept_clsact_take(Manager *m, uint32_t ifindex) {
	for (size_t k = 0; k < m->n_kept_clsact; k++)
		if (m->kept_clsact[k] == ifindex) {
			m->kept_clsact[k] = m->kept_clsact[--m->n_kept_clsact];
			return true;
		}
	return false;
}

void manager_kept_clsact_free(Manager *m) {
	free(m->kept_clsact);
	m->kept_clsact = NULL;
	m->n_kept_clsact = 0;
}

typedef struct LinkScan {
	U32Set ifbs, others;
} LinkScan;

static int scan_link_cb(const struct nl_link *l, void *userdata) {
	LinkScan *s = userdata;
	return u32set_add(is_our_ifb(l) ? &s->ifbs : &s->others, l->ifindex);
}

typedef struct QdiscScan {
	bool our_root;
	bool clsact;
} QdiscScan;

static int scan_qdisc_cb(const struct nl_qdisc *q, void *userdata) {
	QdiscScan *s = userdata;
	if (q->parent == TC_H_ROOT && q->handle == NB_ROOT_HANDLE && streq(q->kind, "htb"))
		s->our_root = true;
	if (streq(q->kind, "clsact"))
		s->clsact = true;
	return 0;
}

typedef struct FilterScan {
	bool ours;
	unsigned others;
} FilterScan;

static int scan_filter_cb(const struct nl_filter *f, void *userdata) {
	FilterScan *s = userdata;
	if (f->prio == NB_FILTER_PRIO && streq(f->kind, "bpf") &&
	    strncmp(f->bpf_name, NB_FILTER_NAME, strlen(NB_FILTER_NAME)) == 0)
		s->ours = true;
	else if (f->kind[0])
		s->others++;
	return 0;
}

/* Whether this run shapes the interface (or it is the IFB of one it does):
 * after a takeover, what the killed run had elsewhere (an interface no
 * longer asked for, or gone) is still leftovers. */
static bool shaped_here(Manager *m, uint32_t ifindex) {
	for (Iface *i = m->ifaces; i; i = i->next)
		if (!i->skipped && (i->ifindex == ifindex || i->ifb_ifindex == ifindex))
			return true;
	return false;
}

/* A run that was SIGKILLed leaves its qdiscs, filters and IFBs behind (its
 * cgroup BPF links die with it). They are recognized by the marks we give
 * them (handle 6e62:, filter prio and name, IFB name and alias) and by the
 * state file, which says where we created a clsact qdisc. Such a clsact
 * with someone else's filter in it stays, and stays ours (m->kept_clsact). */
int manager_recover_leftovers(Manager *m) {
	_cleanup_free_ uint32_t *clsact = NULL;
	LinkScan ls = {};
	U32Set kept = {};
	size_t n_clsact = 0;
	unsigned removed = 0;
	int r;

	/* Taking over, the list was read before the state file changed. */
	if (m->adopt_clsact) {
		clsact = malloc(m->n_adopt_clsact * sizeof(uint32_t) + 1);
		if (clsact) {
			memcpy(clsact, m->adopt_clsact, m->n_adopt_clsact * sizeof(uint32_t));
			n_clsact = m->n_adopt_clsact;
		}
	} else
		(void)manager_state_load_clsact(m, &clsact, &n_clsact);

	/* A dump the kernel marks interrupted (links changed meanwhile) is
	 * started over; three tries are plenty outside of a link storm. */
	for (int attempt = 0; attempt < 3; attempt++) {
		ls.ifbs.n = ls.others.n = 0;
		r = nl_link_dump(m->nl, scan_link_cb, &ls);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0) {
		log_error_errno(r, "Failed to list links: %m");
		goto finish;
	}

	for (size_t k = 0; k < ls.ifbs.n; k++) {
		if (shaped_here(m, ls.ifbs.v[k]))
			continue; /* taken over, in use */
		r = nl_link_delete(m->nl, ls.ifbs.v[k]);
		if (r < 0 && r != -ENODEV)
			log_warning_errno(r, "Failed to remove leftover IFB %u: %m %s", ls.ifbs.v[k], nl_extack(m->nl));
		else
			removed++;
	}

	for (size_t k = 0; k < ls.others.n; k++) {
		uint32_t ifindex = ls.others.v[k];
		QdiscScan qs = {};
		FilterScan fs = {};

		if (shaped_here(m, ifindex))
			continue;

		if (nl_qdisc_dump(m->nl, ifindex, scan_qdisc_cb, &qs) < 0)
			continue;
		if (qs.our_root) {
			r = nl_qdisc_delete(m->nl, ifindex, TC_H_ROOT, NB_ROOT_HANDLE);
			if (r < 0)
				log_warning_errno(r, "Failed to remove leftover HTB on ifindex %u: %m %s", ifindex,
						  nl_extack(m->nl));
			else
				removed++;
		}
		if (!qs.clsact)
			continue;
		if (nl_filter_dump(m->nl, ifindex, INGRESS_PARENT, scan_filter_cb, &fs) < 0)
			continue;
		if (fs.ours) {
			r = nl_filter_delete(m->nl, ifindex, INGRESS_PARENT, NB_FILTER_PRIO);
			if (r < 0)
				log_warning_errno(r, "Failed to remove leftover filter on ifindex %u: %m %s", ifindex,
						  nl_extack(m->nl));
			else
				removed++;
		}
		/* Only a clsact we made, and only if nobody else uses it now. */
		bool made = false;
		for (size_t c = 0; c < n_clsact; c++)
			made = made || clsact[c] == ifindex;
		if (!made)
			continue;
		if (fs.others == 0) {
			r = nl_qdisc_delete(m->nl, ifindex, TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0));
			if (r >= 0) {
				removed++;
				continue;
			}
			log_warning_errno(r, "Failed to remove leftover clsact on ifindex %u: %m %s", ifindex,
					  nl_extack(m->nl));
		} else
			log_info("Keeping the clsact on ifindex %u: someone else's filter is in it.", ifindex);
		/* Still ours: the interface set up on it removes it on stop,
		 * as the run that made it would have, and a kill before then
		 * must find it in the state file again. */
		if (u32set_add(&kept, ifindex) < 0) {
			r = log_oom();
			goto finish;
		}
	}
	manager_kept_clsact_free(m);
	m->kept_clsact = TAKE_PTR(kept.v);
	m->n_kept_clsact = kept.n;
	if (removed > 0)
		log_notice("Removed %u leftovers of a previous run that did not stop cleanly.", removed);
	r = 0;
finish:
	free(ls.ifbs.v);
	free(ls.others.v);
	free(kept.v);
	/* The leftovers are gone, the rules still to restore are not: the
	 * file keeps only those, so a start killed before it has put them
	 * back does not lose them. */
	(void)manager_state_save(m);
	return r;
}

/* ---- classes ---- */

/* Downloads below this get the segmenting TBF as their queue (tc-plan.c). */
#define SEGMENT_MAX_BPS UINT64_C(200000000)

bool leaf_segments(uint64_t bps) {
	return bps < SEGMENT_MAX_BPS;
}

/* Whether a rule made now gets the small-packet leaf. Making an HTB class
 * costs the kernel time in proportion to the classes already there
 * (tc_bind_tclass() walks them all, and binding its filter block walks a
 * list of every block on the host in flow_indr_dev_setup_offload()): three
 * classes per rule and direction made loading 6000 rules take minutes. The
 * first SMALL_FIRST_MAX_RULES rules get them (and so their bulk leaf);
 * later ones one class per direction, the rule class as the leaf, until a
 * rule is nested in them (tree.c). */
#define SMALL_FIRST_MAX_RULES 1000u

bool rule_small_first(Manager *m) {
	return !m->no_small_first && m->n_rules < SMALL_FIRST_MAX_RULES;
}

/* The leaf queue kind, found once on a class of the new IFB made for the
 * purpose: status says it before any rule exists, and no rule's first class
 * pays for the try. */
static void leaf_probe(Manager *m, Iface *i) {
	TcDev d = { .name = i->ifb_name, .ifindex = i->ifb_ifindex, .mtu = i->mtu, .fq_codel = true };
	struct nl_htb_class c;
	struct nl_leaf q;
	int r;

	htb_params(1000000, i->mtu, &c);
	r = nl_htb_class_set(m->nl, i->ifb_ifindex, NB_ROOT_HANDLE, NB_CLASSID(NB_MINOR_PROBE), &c, true);
	if (r == -EEXIST) /* left by a killed run */
		r = nl_htb_class_set(m->nl, i->ifb_ifindex, NB_ROOT_HANDLE, NB_CLASSID(NB_MINOR_PROBE), &c, false);
	if (r < 0)
		return; /* the first plan probes */
	tc_leaf_queue(&d, 1000000, false, &q);
	r = nl_leaf_qdisc_replace(m->nl, i->ifb_ifindex, NB_CLASSID(NB_MINOR_PROBE), NB_LEAF_MAJOR_PROBE << 16,
				  q.kind, q.limit);
	if (r >= 0) {
		log_info("Leaf qdisc: fq_codel.");
		m->leaf = LEAF_FQ_CODEL;
	} else {
		log_info("Leaf qdisc: byte FIFO bounded to ~50 ms, segmenting TBF for downloads below 200 Mbit/s "
			 "(fq_codel unavailable: %s).",
			 nl_extack(m->nl)[0] ? nl_extack(m->nl) : strerror(-r));
		m->leaf = LEAF_BFIFO;
	}
	(void)nl_class_delete(m->nl, i->ifb_ifindex, NB_CLASSID(NB_MINOR_PROBE));
}

bool iface_tc_dev(Manager *m, Iface *i, bool up, TcDev *ret) {
	if (i->skipped)
		return false;
	if (m->leaf == LEAF_UNKNOWN) {
		leaf_probe(m, i);
		if (m->leaf == LEAF_UNKNOWN) {
			log_notice("Leaf qdisc: could not probe; byte FIFOs.");
			m->leaf = LEAF_BFIFO; /* built into every kernel that has HTB */
		}
	}
	*ret = (TcDev){
		.name = up ? i->name : i->ifb_name,
		.ifindex = up ? i->ifindex : i->ifb_ifindex,
		.mtu = i->mtu,
		.up = up,
		.fq_codel = m->leaf == LEAF_FQ_CODEL,
	};
	return true;
}

/* What a step does, named by the rule class it is of: "making the bulk
 * leaf of class 6e62:5". */
static void step_describe(const struct nl_tc_op *op, char *buf, size_t size) {
	uint32_t id = op->kind == NL_TC_LEAF ? op->parent : op->handle, minor = id & 0xffffu;
	const char *verb = op->kind == NL_TC_CLASS_NEW	  ? "making"
			   : op->kind == NL_TC_CLASS_CHANGE ? "changing"
			   : op->kind == NL_TC_CLASS_DEL    ? "deleting"
							    : "setting the queue of";
	const char *leaf = minor > NB_RULE_MINOR_MAX && minor != NB_MINOR_PROBE
				   ? (minor == NB_MINOR_BULK(NB_MINOR_RULE(minor)) ? "the bulk leaf of " : "the small-packet leaf of ")
				   : "";

	snprintf(buf, size, "%s %sclass %x:%x", verb, leaf, id >> 16,
		 minor != NB_MINOR_PROBE ? NB_MINOR_RULE(minor) : minor);
}

int iface_plan_run(Manager *m, const TcPlan *p, char **ret_why) {
	_cleanup_free_ int *errors = NULL;
	_cleanup_tc_plan_ TcPlan undo = {};
	char msg[256], what[96];
	size_t failed = 0;
	unsigned trips = 0;
	int r;

	if (p->n == 0)
		return 0;
	errors = calloc(p->n, sizeof(int));
	if (!errors)
		return log_oom();
	r = nl_tc_batch(m->nl, p->ops, p->n, errors, &failed, &trips);
	m->tc_batches++;
	m->tc_round_trips += trips;
	m->tc_ops += p->n;
	if (r >= 0)
		return 0;

	snprintf(msg, sizeof(msg), "%s", nl_error_extack(m->nl));
	step_describe(&p->ops[failed], what, sizeof(what));
	log_warning_errno(r, "Failed %s on %s: %m%s%s", what, p->steps[failed].dev, msg[0] ? ": " : "", msg);
	if (ret_why) {
		free(*ret_why);
		if (asprintf(ret_why, "%s (%s on %s)%s%s", strerror(-r), what, p->steps[failed].dev, msg[0] ? ": " : "",
			     msg) < 0)
			*ret_why = NULL;
	}
	/* Every step that succeeded, taken back, last first. */
	if (tc_plan_undo(p, errors, &undo) >= 0 && undo.n > 0) {
		int k = nl_tc_batch(m->nl, undo.ops, undo.n, NULL, &failed, &trips);
		m->tc_batches++;
		m->tc_round_trips += trips;
		if (k < 0)
			log_warning_errno(k, "Failed to undo part of a change on %s: %m %s", undo.steps[failed].dev,
					  nl_error_extack(m->nl));
	}
	return r;
}

static TcClasses rule_dir(const Rule *r, const ClassSpec *spec, bool up) {
	return (TcClasses){ .spec = *spec,
			    .leaves = r->leaves,
			    .small = r->leaves && r->small_made,
			    .segment = !up && r->down_segmented };
}

int iface_add_small(Manager *m, Iface *i, const Rule *r) {
	_cleanup_tc_plan_ TcPlan p = {};
	TcDev up, down;
	int k;

	if (!r->small_first || r->small_made || !r->leaves || !iface_tc_dev(m, i, true, &up) ||
	    !iface_tc_dev(m, i, false, &down))
		return 0;
	k = tc_plan_small(&p, &up, r->minor, &r->cls_up);
	if (k >= 0)
		k = tc_plan_small(&p, &down, r->minor, &r->cls_down);
	if (k >= 0)
		k = iface_plan_run(m, &p, NULL);
	return k;
}

void iface_del_small(Manager *m, Iface *i, const Rule *r) {
	if (i->skipped)
		return;
	(void)nl_class_delete(m->nl, i->ifindex, NB_CLASSID(NB_MINOR_SMALL(r->minor)));
	(void)nl_class_delete(m->nl, i->ifb_ifindex, NB_CLASSID(NB_MINOR_SMALL(r->minor)));
}

int iface_set_down_rate(Manager *m, Iface *i, const Rule *r, uint64_t rate) {
	_cleanup_tc_plan_ TcPlan p = {};
	ClassSpec s = r->cls_down;
	TcClasses old, new;
	TcDev d;
	int k;

	if (!s.on || !iface_tc_dev(m, i, false, &d))
		return 0;
	/* The ceiling only where the class is nested: its guaranteed rate
	 * would let it send past the enclosing limits. At the top, where
	 * nothing else bounds it, the rate goes along. */
	if (s.parent == NB_ROOT_HANDLE) {
		/* ... and what its burst and queues are sized by: a landing
		 * steps down from the flows' rate with queues for that rate. */
		s.own = s.own == s.rate ? rate : s.own;
		s.rate = rate;
		s.top = rate;
	}
	s.ceil = rate;
	if (s.rate > s.ceil)
		s.rate = s.ceil;
	/* A change in place of the class, its leaves and their limits. */
	old = rule_dir(r, &r->cls_down, false);
	new = rule_dir(r, &s, false);
	old.spec.ceil = rate + 1; /* "higher before": the rule class first, the FIFO resized */
	k = tc_plan_class(&p, &d, r->minor, &old, &new);
	if (k >= 0)
		k = iface_plan_run(m, &p, NULL);
	return k;
}

typedef struct ClassBytes {
	uint32_t classid;
	uint64_t bytes;
} ClassBytes;

static int class_bytes_cb(const struct nl_class_stats *s, void *userdata) {
	ClassBytes *cb = userdata;
	if (s->classid == cb->classid)
		cb->bytes += s->bytes;
	return 0;
}

uint64_t iface_down_bytes(Manager *m, const Rule *r) {
	ClassBytes cb = { .classid = NB_CLASSID(r->minor) };

	for (Iface *i = m->ifaces; i; i = i->next)
		if (!i->skipped)
			(void)nl_class_dump(m->nl, i->ifb_ifindex, class_bytes_cb, &cb);
	return cb.bytes;
}



/* ---- set up and tear down ---- */

static int root_qdisc_cb(const struct nl_qdisc *q, void *userdata) {
	struct nl_qdisc *root = userdata;
	if (q->parent == TC_H_ROOT)
		*root = *q;
	return 0;
}

static void iface_teardown(Manager *m, Iface *i, bool gone) {
	int r;

	(void)manager_bpf_del_iface(m, i->ifindex);
	if (!gone) {
		if (i->filter) {
			r = nl_filter_delete(m->nl, i->ifindex, INGRESS_PARENT, NB_FILTER_PRIO);
			if (r < 0 && r != -ENOENT && r != -ENODEV)
				log_warning_errno(r, "Failed to remove ingress filter from %s: %m %s", i->name,
						  nl_extack(m->nl));
		}
		if (i->created_clsact) {
			r = nl_qdisc_delete(m->nl, i->ifindex, TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0));
			if (r < 0 && r != -ENOENT && r != -EINVAL && r != -ENODEV)
				log_warning_errno(r, "Failed to remove clsact from %s: %m %s", i->name, nl_extack(m->nl));
		}
		if (i->htb) {
			r = nl_qdisc_delete(m->nl, i->ifindex, TC_H_ROOT, NB_ROOT_HANDLE);
			/* -EINVAL "Invalid handle": it is not there any more. */
			if (r < 0 && r != -ENOENT && r != -ENODEV && r != -EINVAL)
				log_warning_errno(r, "Failed to remove HTB from %s: %m %s", i->name, nl_extack(m->nl));
		}
	}
	if (i->ifb_ifindex) {
		r = nl_link_delete(m->nl, i->ifb_ifindex);
		if (r < 0 && r != -ENODEV)
			log_warning_errno(r, "Failed to remove %s: %m %s", i->ifb_name, nl_extack(m->nl));
	}
	i->filter = i->created_clsact = i->htb = i->ifb_htb = false;
	i->ifb_ifindex = 0;
}

static bool wanted(Manager *m, const struct nl_link *l) {
	if (l->loopback || is_our_ifb(l))
		return false;
	if (!m->only_ifaces)
		return true;
	for (char **s = m->only_ifaces; *s; s++)
		if (streq(*s, l->name))
			return true;
	return false;
}

/* ---- taking over what a killed run left (bpf.c adopted its maps) ---- */

typedef struct IfbFind {
	const char *name;
	uint32_t ifindex;
} IfbFind;

static int ifb_find_cb(const struct nl_link *l, void *userdata) {
	IfbFind *f = userdata;
	if (is_our_ifb(l) && streq(l->name, f->name))
		f->ifindex = l->ifindex;
	return 0;
}

static int ifb_find(Manager *m, const char *name, uint32_t *ret) {
	IfbFind f = { .name = name };
	int r = nl_link_dump(m->nl, ifb_find_cb, &f);

	if (r < 0)
		return r;
	if (f.ifindex == 0)
		return -ENODEV;
	*ret = f.ifindex;
	return 0;
}

static bool has_our_htb(Manager *m, uint32_t ifindex) {
	struct nl_qdisc root = {};
	return nl_qdisc_get_root(m->nl, ifindex, root_qdisc_cb, &root) >= 0 && root.handle == NB_ROOT_HANDLE &&
	       streq(root.kind, "htb");
}

static bool adopted_clsact(Manager *m, uint32_t ifindex) {
	for (size_t k = 0; k < m->n_adopt_clsact; k++)
		if (m->adopt_clsact[k] == ifindex)
			return true;
	return false;
}

static int iface_setup(Manager *m, const struct nl_link *l) {
	struct nl_qdisc root = {};
	_cleanup_free_ Iface *i = NULL;
	char alias[64];
	bool kept;
	int r;

	i = calloc(1, sizeof(*i));
	if (!i)
		return log_oom();
	i->ifindex = l->ifindex;
	i->mtu = l->mtu ?: 1500;
	snprintf(i->name, sizeof(i->name), "%s", l->name);

	/* Someone else's shaping (a root qdisc they configured, or an IFB)
	 * is left alone: replacing it would break their setup. */
	r = nl_qdisc_get_root(m->nl, i->ifindex, root_qdisc_cb, &root);
	if (r < 0)
		return log_warning_errno(r, "Failed to read qdiscs of %s: %m", i->name);
	if (streq(l->kind, "ifb"))
		i->skipped = "an IFB device";
	else if (root.handle != 0 && root.handle != NB_ROOT_HANDLE) {
		/* Named, with the way out: a rule must say why its traffic
		 * there is not shaped, and what would change that. */
		snprintf(i->why, sizeof(i->why),
			 "someone else's root qdisc %s %x: is on %s; netbumpd leaves it alone (remove it with "
			 "'tc qdisc del dev %s root' and netbumpd shapes %s within a second)",
			 root.kind, root.handle >> 16, i->name, i->name, i->name);
		i->skipped = i->why;
		i->foreign_root = true;
	}
	if (i->skipped) {
		log_notice("Not shaping %s: %s.", i->name, i->skipped);
		i->next = m->ifaces;
		m->ifaces = TAKE_PTR(i);
		return 0;
	}

	snprintf(i->ifb_name, sizeof(i->ifb_name), NB_IFB_PREFIX "%u", i->ifindex);
	snprintf(alias, sizeof(alias), NB_IFB_ALIAS " downloads of %s", i->name);
	r = nl_ifb_create(m->nl, i->ifb_name, alias, &i->ifb_ifindex);
	if (r == -EEXIST && m->adopted)
		r = ifb_find(m, i->ifb_name, &i->ifb_ifindex); /* a killed run's, taken over */
	if (r < 0) {
		log_warning_errno(r, "Failed to create %s for %s: %m %s", i->ifb_name, i->name, nl_extack(m->nl));
		goto fail;
	}

	/* HTB cannot be changed in place: one a killed run left is kept. */
	r = m->adopted && has_our_htb(m, i->ifb_ifindex) ? 0
							  : nl_htb_qdisc_replace(m->nl, i->ifb_ifindex, NB_ROOT_HANDLE, DIRECT_QLEN);
	if (r < 0) {
		log_warning_errno(r, "Failed to add HTB to %s: %m %s", i->ifb_name, nl_extack(m->nl));
		goto fail;
	}
	i->ifb_htb = true;
	if (m->leaf == LEAF_UNKNOWN)
		leaf_probe(m, i);
	r = m->adopted && root.handle == NB_ROOT_HANDLE && streq(root.kind, "htb")
		    ? 0
		    : nl_htb_qdisc_replace(m->nl, i->ifindex, NB_ROOT_HANDLE, DIRECT_QLEN);
	if (r < 0) {
		log_warning_errno(r, "Failed to add HTB to %s: %m %s", i->name, nl_extack(m->nl));
		goto fail;
	}
	i->htb = true;

	r = tree_add_iface(m, i);
	if (r < 0)
		goto fail;

	r = manager_bpf_set_iface(m, i);
	if (r < 0) {
		log_warning_errno(r, "Failed to register %s with the BPF program: %m", i->name);
		goto fail;
	}

	/* Record the intent before acting, so a crash in between still lets
	 * the next start remove the clsact we are about to make. From here
	 * the Iface records a clsact a killed run made and we kept. */
	kept = kept_clsact_take(m, i->ifindex);
	i->created_clsact = true;
	i->next = m->ifaces;
	m->ifaces = i;
	(void)manager_state_save(m);
	m->ifaces = i->next;
	r = nl_clsact_create(m->nl, i->ifindex);
	if (r == -EEXIST)
		/* Ours to remove all the same: a killed run's that we take
		 * over, or the one recovery kept; else someone else's. */
		i->created_clsact = (m->adopted && adopted_clsact(m, i->ifindex)) || kept;
	else if (r < 0) {
		i->created_clsact = false;
		log_warning_errno(r, "Failed to add clsact to %s: %m %s", i->name, nl_extack(m->nl));
		goto fail;
	}

	r = nl_bpf_filter_add(m->nl, i->ifindex, INGRESS_PARENT, NB_FILTER_PRIO, 1, m->ingress_prog_fd,
			      NB_FILTER_NAME);
	if (r == -EEXIST && m->adopted) /* the killed run's: our program in its place, in one step */
		r = nl_bpf_filter_replace(m->nl, i->ifindex, INGRESS_PARENT, NB_FILTER_PRIO, 1, m->ingress_prog_fd,
					  NB_FILTER_NAME);
	if (r < 0) {
		log_warning_errno(r, "Failed to attach the ingress filter to %s: %m %s", i->name, nl_extack(m->nl));
		goto fail;
	}
	i->filter = true;

	i->next = m->ifaces;
	m->ifaces = TAKE_PTR(i);
	(void)manager_state_save(m);
	log_info("Shaping %s (downloads through %s).", m->ifaces->name, m->ifaces->ifb_name);
	return 0;

fail:
	iface_teardown(m, i, false);
	(void)manager_state_save(m);
	return r;
}

static void iface_remove(Manager *m, uint32_t ifindex, bool gone) {
	for (Iface **p = &m->ifaces; *p; p = &(*p)->next)
		if ((*p)->ifindex == ifindex) {
			Iface *i = *p;
			*p = i->next;
			if (!i->skipped)
				log_info("%s %s.", gone ? "Interface gone:" : "No longer shaping", i->name);
			iface_teardown(m, i, gone);
			free(i);
			(void)manager_state_save(m);
			return;
		}
}

void manager_ifaces_free(Manager *m) {
	while (m->ifaces)
		iface_remove(m, m->ifaces->ifindex, false);
}

/* ---- following links ---- */

typedef struct LinkList {
	struct nl_link *v;
	size_t n;
} LinkList;

static int collect_link_cb(const struct nl_link *l, void *userdata) {
	LinkList *ll = userdata;
	struct nl_link *n = realloc(ll->v, (ll->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	n[ll->n++] = *l;
	ll->v = n;
	return 0;
}

/* Brings the managed set in line with the links that exist now: at start,
 * and after the kernel dropped notifications (ENOBUFS). */
int manager_ifaces_enumerate(Manager *m) {
	LinkList ll = {};
	U32Set present = {};
	int r;

	for (int attempt = 0; attempt < 3; attempt++) {
		ll.n = 0;
		r = nl_link_dump(m->nl, collect_link_cb, &ll);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0) {
		free(ll.v);
		return log_error_errno(r, "Failed to list links: %m");
	}
	for (size_t k = 0; k < ll.n; k++) {
		(void)u32set_add(&present, ll.v[k].ifindex);
		if (!wanted(m, &ll.v[k]) || manager_find_iface(m, ll.v[k].ifindex))
			continue;
		r = iface_setup(m, &ll.v[k]);
		/* Without the right to change qdiscs and links nothing would
		 * ever be limited: say so and stop rather than pretend. */
		if (r == -EPERM || r == -EACCES) {
			log_error_errno(r, "Not allowed to shape %s (CAP_NET_ADMIN missing?): %m", ll.v[k].name);
			free(present.v);
			free(ll.v);
			return r;
		}
	}
	for (Iface *i = m->ifaces, *next; i; i = next) {
		next = i->next;
		if (!u32set_has(&present, i->ifindex))
			iface_remove(m, i->ifindex, true);
	}
	for (size_t k = 0; k < m->n_kept_clsact;)
		if (u32set_has(&present, m->kept_clsact[k]))
			k++;
		else
			(void)kept_clsact_take(m, m->kept_clsact[k]);
	free(present.v);
	free(ll.v);
	netns_sync(m);
	return 0;
}

static void iface_repair(Manager *m, Iface *i, const char *what);

static int link_event_cb(uint16_t type, const struct nl_link *l, void *userdata) {
	Manager *m = userdata;
	Iface *i = manager_find_iface(m, l->ifindex);

	if (type == RTM_DELLINK) {
		(void)kept_clsact_take(m, l->ifindex); /* went with its link */
		if (i)
			iface_remove(m, l->ifindex, true);
		else
			for (Iface *o = m->ifaces; o; o = o->next)
				if (o->ifb_ifindex == l->ifindex) {
					o->ifb_ifindex = 0; /* gone: do not delete it again */
					iface_repair(m, o, "The IFB");
					break;
				}
		return 0;
	}
	if (i) {
		if (!streq(i->name, l->name)) {
			log_info("Interface %s is now called %s.", i->name, l->name);
			snprintf(i->name, sizeof(i->name), "%s", l->name);
		}
		return 0;
	}
	if (wanted(m, l))
		(void)iface_setup(m, l);
	return 0;
}

/* A link coming, going or changing may be a path into another network
 * namespace (a peer moved there sends no notice of its own here). */
static int link_event_netns_cb(uint16_t type, const struct nl_link *l, void *userdata) {
	Manager *m = userdata;

	(void)link_event_cb(type, l, m);
	netns_sync(m);
	return 0;
}

typedef struct MonitorRun {
	Manager *m;
	bool addrs; /* an address came or went */
} MonitorRun;

static int link_event_run_cb(uint16_t type, const struct nl_link *l, void *userdata) {
	MonitorRun *run = userdata;

	return link_event_netns_cb(type, l, run->m);
}

static int addr_event_cb(uint16_t type, uint8_t family, void *userdata) {
	MonitorRun *run = userdata;

	run->addrs = true;
	return 0;
}

static int monitor_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	MonitorRun run = { .m = userdata };
	Manager *m = run.m;
	int r = nl_monitor_receive(m->monitor, link_event_run_cb, addr_event_cb, &run);

	if (r == -ENOBUFS) {
		log_notice("Missed link notifications; resynchronizing interfaces.");
		(void)manager_ifaces_enumerate(m);
		run.addrs = true;
	} else if (r < 0)
		log_warning_errno(r, "Failed to read link notifications: %m");
	/* Once for all the notifications read: "lan" follows the subnets. */
	if (run.addrs)
		scope_map_lan_changed(m);
	return 0;
}

int manager_link_monitor_start(Manager *m) {
	int r = nl_open_link_monitor(&m->monitor);

	if (r < 0)
		return log_error_errno(r, "Failed to watch links: %m");
	r = sd_event_add_io(m->event, &m->monitor_io, nl_fd(m->monitor), EPOLLIN, monitor_io_cb, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch links: %m");
	return 0;
}

/* ---- someone else's changes ---- */

static int our_filter_cb(const struct nl_filter *f, void *userdata) {
	bool *found = userdata;
	if (f->prio == NB_FILTER_PRIO && streq(f->kind, "bpf") &&
	    strncmp(f->bpf_name, NB_FILTER_NAME, strlen(NB_FILTER_NAME)) == 0)
		*found = true;
	return 0;
}

static void iface_repair(Manager *m, Iface *i, const char *what) {
	struct nl_link l;
	uint32_t ifindex = i->ifindex;

	log_warning("%s on %s was removed by someone else; putting it back.", what, i->name);
	iface_remove(m, ifindex, false);
	if (nl_link_get(m->nl, ifindex, &l) >= 0)
		(void)iface_setup(m, &l);
}

void manager_ifaces_check(Manager *m) {
	for (Iface *i = m->ifaces, *next; i; i = next) {
		struct nl_qdisc root = {}, ifb_root = {};
		bool filter = false;

		next = i->next;
		if (i->skipped && i->foreign_root &&
		    nl_qdisc_get_root(m->nl, i->ifindex, root_qdisc_cb, &root) >= 0 && root.handle == 0) {
			struct nl_link l;
			uint32_t ifindex = i->ifindex;

			/* The foreign qdisc that kept us off is gone: ours now. */
			log_notice("The root qdisc that kept netbumpd off %s is gone: shaping %s now.", i->name, i->name);
			iface_remove(m, ifindex, false);
			/* iface_setup() makes every rule's classes there */
			if (nl_link_get(m->nl, ifindex, &l) >= 0)
				(void)iface_setup(m, &l);
			continue;
		}
		if (i->skipped)
			continue;
		if (nl_qdisc_get_root(m->nl, i->ifindex, root_qdisc_cb, &root) < 0)
			continue; /* the link is going away: RTM_DELLINK handles it */
		if (root.handle != NB_ROOT_HANDLE && root.handle != 0) {
			if (!i->degraded)
				log_warning("The root qdisc of %s was replaced by someone else (%s %x:); uploads there "
					    "are not shaped until it is removed ('tc qdisc del dev %s root').",
					    i->name, root.kind, root.handle >> 16, i->name);
			snprintf(i->why, sizeof(i->why),
				 "netbumpd's root qdisc on %s was replaced by someone else's %s %x: (remove it with 'tc "
				 "qdisc del dev %s root' and netbumpd puts its own back within a second)",
				 i->name, root.kind, root.handle >> 16, i->name);
			i->degraded = i->why;
			continue;
		}
		if (root.handle == 0) {
			/* Deleted, or the foreign one that degraded us is gone. */
			iface_repair(m, i, "The root HTB");
			continue;
		}
		if (i->degraded) {
			log_notice("%s is shaped again.", i->name);
			i->degraded = NULL;
		}
		if (nl_qdisc_get_root(m->nl, i->ifb_ifindex, root_qdisc_cb, &ifb_root) < 0 ||
		    ifb_root.handle != NB_ROOT_HANDLE) {
			iface_repair(m, i, "The IFB or its HTB");
			continue;
		}
		if (nl_filter_dump(m->nl, i->ifindex, INGRESS_PARENT, our_filter_cb, &filter) < 0 || !filter) {
			iface_repair(m, i, "The ingress filter");
			continue;
		}
	}
}

bool manager_degraded(Manager *m) {
	for (Iface *i = m->ifaces; i; i = i->next)
		if (i->degraded)
			return true;
	return false;
}
