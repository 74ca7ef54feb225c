/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tc layer as a plan: the class and leaf qdisc changes that take a
 * rule's classes on one device from what is made to what nest.c wants, in
 * an order that keeps every flow bounded, and the plan that undoes the part
 * of it that was done when a later step failed. Pure: no netlink, no
 * Manager (tests/unit/test-tc-plan.c). iface.c sends a plan as one batch
 * (nl_tc_batch()).
 *
 * Order:
 *   - made: the rule class before what goes under it (its leaf classes,
 *     then their queues), and the caller puts a parent's ops before its
 *     children's;
 *   - deleted: the leaf classes before the rule class (HTB deletes no class
 *     with children), a child's before its parent's;
 *   - changed in place: "higher before": a lower ceiling is set on the
 *     leaves first, so that they never may take more than the rule class;
 *     a higher one on the rule class first.
 * rtnetlink goes on with the requests after one that failed; the undo plan
 * (tc_plan_undo()) takes back, in reverse order, what succeeded: a class
 * made is deleted, a change set back, a queue resized back.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nest.h"
#include "netlink.h"

/* One direction of the rule classes on one device. */
typedef struct TcDev {
	const char *name; /* for messages: the interface, or its IFB */
	uint32_t ifindex;
	uint32_t mtu;
	bool up;       /* uploads (the interface), else downloads (its IFB) */
	bool fq_codel; /* leaf queues: fq_codel, else byte FIFOs (and the segmenting TBF) */
} TcDev;

/* One direction of one rule's classes, as made or as wanted. */
typedef struct TcClasses {
	ClassSpec spec;
	/* Leaf classes under the rule class: the bulk one and, with small,
	 * the small-packet one. Without, the rule class is the leaf and has
	 * the queue (a rule with no rule nested in it needs no more). */
	bool leaves;
	bool small;
	bool segment; /* downloads: the bulk queue is the segmenting TBF */
} TcClasses;

typedef struct TcStep {
	const char *dev;         /* TcDev.name */
	bool has_undo;           /* undo below takes it back (a class made: deleted, see tc_plan_undo()) */
	struct nl_tc_op undo;
} TcStep;

typedef struct TcPlan {
	struct nl_tc_op *ops; /* what nl_tc_batch() sends */
	TcStep *steps;        /* ... and for each, what undoes it */
	size_t n, cap;
} TcPlan;

void tc_plan_free(TcPlan *p);
static inline void tc_plan_freep(TcPlan *p) {
	tc_plan_free(p);
}
#define _cleanup_tc_plan_ __attribute__((cleanup(tc_plan_freep)))

/* Appends what takes one direction of rule class minor on d from old to
 * new (either may be off: made, deleted). -EINVAL where HTB cannot do it in
 * place (another parent, leaves added or taken away: made anew, tree.c),
 * -ENOMEM. */
int tc_plan_class(TcPlan *p, const TcDev *d, uint32_t minor, const TcClasses *old, const TcClasses *new);

/* Appends the small-packet leaf of a rule class that has its bulk leaf. */
int tc_plan_small(TcPlan *p, const TcDev *d, uint32_t minor, const ClassSpec *spec);

/* The plan that takes back the steps of p that succeeded (errors[k] == 0),
 * last first. A class deleted is not made again: deletions come last in a
 * plan and only where nothing points at the class any more. */
int tc_plan_undo(const TcPlan *p, const int *errors, TcPlan *ret);

/* The leaf queue of a class on d sized for bps: what iface.c probes too. */
void tc_leaf_queue(const TcDev *d, uint64_t bps, bool segment, struct nl_leaf *ret);
