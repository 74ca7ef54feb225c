/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tc plan without root: which class and queue changes, in which order,
 * and what undoes them. */
#include <errno.h>
#include <string.h>

#include "htb-params.h"
#include "netbump/netbump.h"
#include "tc-plan.h"
#include "tests.h"

#define ROOT ((uint32_t)NB_HTB_MAJOR << 16)
#define MBIT UINT64_C(1000000)
#define MTU 1500u
#define M 7u /* the rule's minor */

static const TcDev up_fq = { .name = "veth0", .ifindex = 3, .mtu = MTU, .up = true, .fq_codel = true };
static const TcDev down_fifo = { .name = "nbifb3", .ifindex = 9, .mtu = MTU, .up = false, .fq_codel = false };

static TcClasses spec(uint32_t parent, uint64_t ceil, bool leaves, bool small, bool segment) {
	return (TcClasses){ .spec = { .on = true, .parent = parent, .ceil = ceil, .rate = ceil, .own = ceil,
				      .top = ceil, .prio = 2 },
			    .leaves = leaves,
			    .small = small,
			    .segment = segment };
}

static void assert_op(const TcPlan *p, size_t k, enum nl_tc_op_kind kind, uint32_t ifindex, uint32_t parent,
		      uint32_t handle) {
	ASSERT_TRUE(k < p->n);
	ASSERT_EQ(p->ops[k].kind, kind);
	ASSERT_EQ(p->ops[k].ifindex, ifindex);
	if (kind != NL_TC_CLASS_DEL)
		ASSERT_EQ(p->ops[k].parent, parent);
	ASSERT_EQ(p->ops[k].handle, handle);
}

/* Made: the rule class, its leaf classes under it, then their queues. */
static void test_make(void) {
	TcClasses off = {}, with = spec(ROOT, 8 * MBIT, true, true, false), bare = spec(ROOT, 8 * MBIT, false, false, false);
	_cleanup_tc_plan_ TcPlan p = {}, q = {};
	struct nl_htb_class c;

	ASSERT_OK(tc_plan_class(&p, &up_fq, M, &off, &with));
	ASSERT_EQ(p.n, 5);
	assert_op(&p, 0, NL_TC_CLASS_NEW, 3, ROOT, NB_CLASSID(M));
	assert_op(&p, 1, NL_TC_CLASS_NEW, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_BULK(M)));
	assert_op(&p, 2, NL_TC_CLASS_NEW, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&p, 3, NL_TC_LEAF, 3, NB_CLASSID(NB_MINOR_BULK(M)), NB_LEAF_MAJOR_BULK(M) << 16);
	assert_op(&p, 4, NL_TC_LEAF, 3, NB_CLASSID(NB_MINOR_SMALL(M)), NB_LEAF_MAJOR_SMALL(M) << 16);
	ASSERT_EQ(p.ops[3].leaf.kind, NL_LEAF_FQ_CODEL);
	rule_class_params(&with.spec, MTU, &c);
	ASSERT_TRUE(memcmp(&p.ops[0].htb, &c, sizeof(c)) == 0);
	leaf_class_params(&with.spec, MTU, true, &c);
	ASSERT_TRUE(memcmp(&p.ops[2].htb, &c, sizeof(c)) == 0);
	ASSERT_STREQ(p.steps[0].dev, "veth0");

	/* Without leaves the rule class is the leaf: one class, its queue.
	 * Downloads below 200 Mbit/s on byte FIFOs: the segmenting TBF. */
	bare.segment = true;
	ASSERT_OK(tc_plan_class(&q, &down_fifo, M, &off, &bare));
	ASSERT_EQ(q.n, 2);
	assert_op(&q, 0, NL_TC_CLASS_NEW, 9, ROOT, NB_CLASSID(M));
	assert_op(&q, 1, NL_TC_LEAF, 9, NB_CLASSID(M), NB_LEAF_MAJOR_BULK(M) << 16);
	ASSERT_EQ(q.ops[1].leaf.kind, NL_LEAF_TBF);
	ASSERT_EQ(q.ops[1].leaf.limit, fifo_limit(8 * MBIT, MTU, false));
	ASSERT_EQ(q.ops[1].leaf.burst, 2 * (MTU + 14));
}

/* Deleted: the leaf classes before the rule class; nothing else. */
static void test_unmake(void) {
	TcClasses off = {}, with = spec(ROOT, 8 * MBIT, true, true, false), bulk = spec(ROOT, 8 * MBIT, true, false, false),
		  bare = spec(ROOT, 8 * MBIT, false, false, false);
	_cleanup_tc_plan_ TcPlan p = {}, q = {}, r = {};

	ASSERT_OK(tc_plan_class(&p, &up_fq, M, &with, &off));
	ASSERT_EQ(p.n, 3);
	assert_op(&p, 0, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&p, 1, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(NB_MINOR_BULK(M)));
	assert_op(&p, 2, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(M));
	ASSERT_OK(tc_plan_class(&q, &up_fq, M, &bulk, &off));
	ASSERT_EQ(q.n, 2);
	assert_op(&q, 0, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(NB_MINOR_BULK(M)));
	ASSERT_OK(tc_plan_class(&r, &up_fq, M, &bare, &off));
	ASSERT_EQ(r.n, 1);
	assert_op(&r, 0, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(M));
	/* Off to off: nothing. */
	ASSERT_OK(tc_plan_class(&r, &up_fq, M, &off, &off));
	ASSERT_EQ(r.n, 1);
}

/* Changed in place: "higher before". */
static void test_change(void) {
	TcClasses hi = spec(ROOT, 8 * MBIT, true, true, false), lo = spec(ROOT, 2 * MBIT, true, true, false);
	_cleanup_tc_plan_ TcPlan down = {}, up = {}, fifo = {};

	/* Lower: the leaves first, then the rule class. */
	ASSERT_OK(tc_plan_class(&down, &up_fq, M, &hi, &lo));
	ASSERT_EQ(down.n, 3);
	assert_op(&down, 0, NL_TC_CLASS_CHANGE, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_BULK(M)));
	assert_op(&down, 1, NL_TC_CLASS_CHANGE, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&down, 2, NL_TC_CLASS_CHANGE, 3, ROOT, NB_CLASSID(M));
	ASSERT_EQ(down.ops[2].htb.ceil, 2 * MBIT / 8);
	/* each step knows what it was */
	ASSERT_EQ(down.steps[2].undo.htb.ceil, 8 * MBIT / 8);
	/* Higher: the rule class first. */
	ASSERT_OK(tc_plan_class(&up, &up_fq, M, &lo, &hi));
	ASSERT_EQ(up.n, 3);
	assert_op(&up, 0, NL_TC_CLASS_CHANGE, 3, ROOT, NB_CLASSID(M));
	assert_op(&up, 1, NL_TC_CLASS_CHANGE, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_BULK(M)));
	/* Byte FIFOs are sized by the rate: resized after the classes. */
	ASSERT_OK(tc_plan_class(&fifo, &down_fifo, M, &hi, &lo));
	ASSERT_EQ(fifo.n, 5);
	assert_op(&fifo, 3, NL_TC_LEAF, 9, NB_CLASSID(NB_MINOR_BULK(M)), NB_LEAF_MAJOR_BULK(M) << 16);
	ASSERT_EQ(fifo.ops[3].leaf.kind, NL_LEAF_BFIFO);
	ASSERT_EQ(fifo.ops[3].leaf.limit, fifo_limit(2 * MBIT, MTU, true));
	ASSERT_EQ(fifo.steps[3].undo.leaf.limit, fifo_limit(8 * MBIT, MTU, true));
	assert_op(&fifo, 4, NL_TC_LEAF, 9, NB_CLASSID(NB_MINOR_SMALL(M)), NB_LEAF_MAJOR_SMALL(M) << 16);
}

/* What HTB cannot do in place: another parent, leaves gained or lost. */
static void test_move(void) {
	TcClasses a = spec(ROOT, 8 * MBIT, true, false, false), b = spec(NB_CLASSID(3), 8 * MBIT, true, false, false),
		  bare = spec(ROOT, 8 * MBIT, false, false, false), off = {};
	_cleanup_tc_plan_ TcPlan p = {}, make = {}, unmake = {};

	ASSERT_EQ(tc_plan_class(&p, &up_fq, M, &a, &b), -EINVAL);
	ASSERT_EQ(tc_plan_class(&p, &up_fq, M, &a, &bare), -EINVAL);
	ASSERT_EQ(tc_plan_class(&p, &up_fq, M, &bare, &a), -EINVAL);
	ASSERT_EQ(p.n, 0);

	/* So a rule (7) that gets its first child (8) is made anew under a
	 * new minor (9), with leaves, the child under it: one plan top down;
	 * the old class goes in another once the maps point at the new. */
	TcClasses parent = spec(ROOT, 8 * MBIT, true, false, false), child = spec(NB_CLASSID(9), 2 * MBIT, false, false, false);
	ASSERT_OK(tc_plan_class(&make, &up_fq, 9, &off, &parent));
	ASSERT_OK(tc_plan_class(&make, &up_fq, 8, &off, &child));
	ASSERT_EQ(make.n, 5);
	assert_op(&make, 0, NL_TC_CLASS_NEW, 3, ROOT, NB_CLASSID(9));
	assert_op(&make, 1, NL_TC_CLASS_NEW, 3, NB_CLASSID(9), NB_CLASSID(NB_MINOR_BULK(9)));
	assert_op(&make, 2, NL_TC_LEAF, 3, NB_CLASSID(NB_MINOR_BULK(9)), 9u << 16);
	assert_op(&make, 3, NL_TC_CLASS_NEW, 3, NB_CLASSID(9), NB_CLASSID(8));
	assert_op(&make, 4, NL_TC_LEAF, 3, NB_CLASSID(8), 8u << 16);
	ASSERT_OK(tc_plan_class(&unmake, &up_fq, M, &bare, &off));
	ASSERT_EQ(unmake.n, 1);
	assert_op(&unmake, 0, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(M));
}

/* A step failed, and rtnetlink went on with the rest: what succeeded is
 * taken back, last first. */
static void test_undo(void) {
	TcClasses off = {}, with = spec(ROOT, 8 * MBIT, true, true, false), hi = with, lo = spec(ROOT, 2 * MBIT, true, true, false);
	_cleanup_tc_plan_ TcPlan make = {}, u = {}, change = {}, v = {}, none = {};

	/* Made on both devices; the download's bulk leaf failed (and so its
	 * queue): the upload's classes and the download's rule class and
	 * small leaf go again, leaves before their rule class. Queues go
	 * with their classes. */
	ASSERT_OK(tc_plan_class(&make, &up_fq, M, &off, &with));
	ASSERT_OK(tc_plan_class(&make, &down_fifo, M, &off, &with));
	ASSERT_EQ(make.n, 10);
	int errors[10] = { 0, 0, 0, 0, 0, 0, -ENOMEM, 0, -ENOENT, 0 };
	ASSERT_OK(tc_plan_undo(&make, errors, &u));
	ASSERT_EQ(u.n, 5);
	assert_op(&u, 0, NL_TC_CLASS_DEL, 9, 0, NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&u, 1, NL_TC_CLASS_DEL, 9, 0, NB_CLASSID(M));
	assert_op(&u, 2, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&u, 3, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(NB_MINOR_BULK(M)));
	assert_op(&u, 4, NL_TC_CLASS_DEL, 3, 0, NB_CLASSID(M));
	ASSERT_STREQ(u.steps[1].dev, "nbifb3");

	/* A lowered ceiling whose rule class refused: the leaves go back up,
	 * the small one first (reverse order), to what they were. */
	ASSERT_OK(tc_plan_class(&change, &up_fq, M, &hi, &lo));
	int errs[3] = { 0, 0, -EINVAL };
	ASSERT_OK(tc_plan_undo(&change, errs, &v));
	ASSERT_EQ(v.n, 2);
	assert_op(&v, 0, NL_TC_CLASS_CHANGE, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&v, 1, NL_TC_CLASS_CHANGE, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_BULK(M)));
	struct nl_htb_class was;
	leaf_class_params(&hi.spec, MTU, false, &was);
	ASSERT_TRUE(memcmp(&v.ops[1].htb, &was, sizeof(was)) == 0);

	/* A deletion is not taken back. */
	TcPlan del = {};
	ASSERT_OK(tc_plan_class(&del, &up_fq, M, &with, &off));
	int ok[3] = { 0, 0, 0 };
	ASSERT_OK(tc_plan_undo(&del, ok, &none));
	ASSERT_EQ(none.n, 0);
	tc_plan_free(&del);
}

/* The small-packet leaf added later, under a class that has its bulk leaf. */
static void test_small(void) {
	TcClasses with = spec(ROOT, 8 * MBIT, true, false, false);
	ClassSpec off = {};
	_cleanup_tc_plan_ TcPlan p = {};

	ASSERT_OK(tc_plan_small(&p, &up_fq, M, &off));
	ASSERT_EQ(p.n, 0);
	ASSERT_OK(tc_plan_small(&p, &up_fq, M, &with.spec));
	ASSERT_EQ(p.n, 2);
	assert_op(&p, 0, NL_TC_CLASS_NEW, 3, NB_CLASSID(M), NB_CLASSID(NB_MINOR_SMALL(M)));
	assert_op(&p, 1, NL_TC_LEAF, 3, NB_CLASSID(NB_MINOR_SMALL(M)), NB_LEAF_MAJOR_SMALL(M) << 16);
	ASSERT_TRUE(p.steps[0].has_undo);
	ASSERT_TRUE(!p.steps[1].has_undo);
}

int main(void) {
	test_make();
	test_unmake();
	test_change();
	test_move();
	test_undo();
	test_small();
	return 0;
}
