/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTB parameters of rule classes, without root. */
#include "htb-params.h"
#include "netbump/netbump.h"
#include "tests.h"

#define ROOT ((uint32_t)NB_HTB_MAJOR << 16)
#define MBIT UINT64_C(1000000)
#define MTU 1500u
#define FRAME 1514u
#define GSO (65536u + FRAME)

static void test_rates(void) {
	struct nl_htb_class c;

	/* a bucket of about 10 ms at the rate, turns of about 1 ms, never
	 * below four frames */
	htb_params(8 * MBIT, MTU, &c);
	ASSERT_EQ(c.rate, 1000000);
	ASSERT_EQ(c.burst, 10000);
	ASSERT_EQ(c.quantum, 4 * FRAME);
	htb_params(24 * MBIT, MTU, &c);
	ASSERT_EQ(c.burst, 30000);
	ASSERT_EQ(c.quantum, 4 * FRAME);
	/* from 50 Mbit/s on, both hold a whole GSO packet */
	htb_params(50 * MBIT, MTU, &c);
	ASSERT_EQ(c.burst, GSO);
	ASSERT_EQ(c.quantum, GSO);
	htb_params(100 * MBIT, MTU, &c);
	ASSERT_EQ(c.burst, 125000);
	ASSERT_EQ(c.quantum, GSO);
	/* 10 Gbit/s: turns within HTB's quantum warning */
	htb_params(10000 * MBIT, MTU, &c);
	ASSERT_EQ(c.burst, 12500000);
	ASSERT_EQ(c.quantum, 200000);
	/* a tiny rate still sends a frame */
	htb_params(8, MTU, &c);
	ASSERT_EQ(c.rate, 1);
	ASSERT_EQ(c.burst, 4 * FRAME);
	ASSERT_EQ(c.quantum, 4 * FRAME);
}

static void test_top_level(void) {
	ClassSpec s = { .on = true, .parent = ROOT, .ceil = 8 * MBIT, .rate = 8 * MBIT, .own = 8 * MBIT,
			.top = 8 * MBIT, .prio = 2 };
	struct nl_htb_class c, small, bulk;

	rule_class_params(&s, MTU, &c);
	ASSERT_EQ(c.rate, 1000000);
	ASSERT_EQ(c.ceil, 1000000);
	ASSERT_EQ(c.burst, 10000);
	leaf_class_params(&s, MTU, true, &small);
	leaf_class_params(&s, MTU, false, &bulk);
	/* the two leaves share the rule's rate, an eighth to small packets */
	ASSERT_EQ(small.rate + bulk.rate, 1000000);
	ASSERT_EQ(small.rate, 125000);
	ASSERT_EQ(small.ceil, 1000000);
	ASSERT_EQ(bulk.ceil, 1000000);
	/* small packets first, then the bulk, at the rule's priority */
	ASSERT_EQ(small.prio, 2);
	ASSERT_EQ(bulk.prio, 3);
	ASSERT_EQ(leaf_bps(&s), 8 * MBIT);
}

static void test_nested(void) {
	/* inside a 10mbit class, a 4mbit limit and no minimum */
	ClassSpec s = { .on = true, .parent = NB_CLASSID(1), .ceil = 4 * MBIT, .rate = 8, .own = 8, .top = 10 * MBIT,
			.prio = 0 };
	struct nl_htb_class c, bulk, sibling;

	rule_class_params(&s, MTU, &c);
	ASSERT_EQ(c.rate, 1);
	ASSERT_EQ(c.ceil, 500000);
	/* a bucket for a whole GSO packet: it keeps what it earns while
	 * the parent serves a sibling */
	ASSERT_EQ(c.burst, GSO);
	leaf_class_params(&s, MTU, false, &bulk);
	ASSERT_EQ(bulk.burst, GSO);
	ASSERT_EQ(bulk.ceil, 500000);
	ASSERT_EQ(bulk.prio, 1);

	/* a sibling with another limit takes turns of the same size */
	ClassSpec t = s;
	t.ceil = 9 * MBIT;
	leaf_class_params(&t, MTU, false, &sibling);
	ASSERT_EQ(sibling.quantum, bulk.quantum);

	/* a guaranteed minimum is its rate */
	s.rate = 3 * MBIT;
	rule_class_params(&s, MTU, &c);
	ASSERT_EQ(c.rate, 375000);

	/* a ceiling inherited from the enclosing classes: the burst and the
	 * queue follow the top class's limit, not 100 Gbit/s */
	ClassSpec u = { .on = true, .parent = NB_CLASSID(1), .ceil = NEST_CEIL_INHERIT, .rate = 8, .own = 8,
			.top = 20 * MBIT, .prio = 4 };
	rule_class_params(&u, MTU, &c);
	ASSERT_EQ(c.burst, GSO);
	ASSERT_EQ(leaf_bps(&u), 20 * MBIT);
}

static void test_fifo(void) {
	/* 50 ms at the rate, at least two whole GSO aggregates for uploads */
	ASSERT_EQ(fifo_limit(8 * MBIT, MTU, true), 2 * (65536 / 1460 + 1) * FRAME);
	ASSERT_EQ(fifo_limit(8 * MBIT, MTU, false), 50000);
	ASSERT_EQ(fifo_limit(1000 * MBIT, MTU, false), 6250000);
	ASSERT_EQ(fifo_limit(NEST_CEIL_INHERIT, MTU, false), 64u * 1024u * 1024u);
}

int main(void) {
	test_rates();
	test_top_level();
	test_nested();
	test_fifo();
	return 0;
}
