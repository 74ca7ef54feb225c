/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "htb-params.h"
#include "netbump/netbump.h"

#define NB_ROOT_CLASSID ((uint32_t)NB_HTB_MAJOR << 16)

/* HTB parameters for a rate. burst: about 10 ms at the rate, never below a
 * few full frames (or HTB could not send one packet per token refill at low
 * rates), and from 50 Mbit/s on at least one whole 64 KiB GSO packet. A
 * bucket is what the class keeps of its rate while its dequeue waits: HTB
 * wakes by a timer and a softirq, which a loaded machine runs late, and
 * whatever the class earned beyond its bucket meanwhile is lost. With four
 * frames (2 ms) at 24 Mbit/s, a 2-CPU machine busy starting processes gave a
 * download 19-22 Mbit/s of goodput where the limit carries 22.95, and at
 * 1 ms 100 Mbit/s lost 2.5%; with 10 ms, 22.8-23.0. Ten ms at the rate is
 * also all that a flow that was idle can send above the rate at once: 2% of
 * a half-second window.
 * quantum: what a leaf sends in its turn among leaves that borrow from the
 * same classes: about 1 ms at the rate (so that they take turns finely),
 * at least a full frame, or a 64 KiB GSO packet from 50 Mbit/s on, and
 * below HTB's 200000-byte warning. */
#define BURST_DIV 100u    /* 1/100 s = 10 ms */
#define QUANTUM_DIV 1000u /* 1/1000 s = 1 ms */
#define GSO_BURST_MIN_BPS UINT64_C(50000000)

/* A whole 64 KiB GSO packet as HTB charges it, with its frame's header. */
static uint64_t gso_bytes(uint32_t mtu) {
	return 65536 + (uint64_t)mtu + 14;
}

static uint64_t bucket(uint64_t bps, uint32_t mtu, unsigned div) {
	uint64_t Bps = bps / 8 ?: 1, frame = (uint64_t)mtu + 14, b = Bps / div;

	if (b < 4 * frame)
		b = 4 * frame;
	if (bps >= GSO_BURST_MIN_BPS && b < gso_bytes(mtu))
		b = gso_bytes(mtu);
	return b;
}

void htb_params(uint64_t bps, uint32_t mtu, struct nl_htb_class *c) {
	uint64_t burst = bucket(bps, mtu, BURST_DIV), quantum = bucket(bps, mtu, QUANTUM_DIV);

	if (burst > UINT32_MAX / 2)
		burst = UINT32_MAX / 2;
	*c = (struct nl_htb_class){
		.rate = bps / 8 ?: 1,
		.burst = (uint32_t)burst,
		.quantum = (uint32_t)(quantum > 200000 ? 200000 : quantum),
	};
}

#define LEAF_DELAY_DIV 20u /* 1/20 s = 50 ms */
#define LEAF_LIMIT_MAX (64u * 1024u * 1024u)

/* whole: the FIFO must hold two whole 64 KiB GSO aggregates, as local TCP
 * hands them down (uploads; TCP small queues let a socket have about two in
 * the qdisc). Cut into frames by the TBF, or not, a FIFO that cannot take an
 * aggregate drops its tail every time: a running upload that got a limit
 * fell to a fifth of it. Downloads arrive as GRO aggregates the TBF cuts up,
 * and a few frames of room are enough. */
uint32_t fifo_limit(uint64_t bps, uint32_t mtu, bool whole) {
	uint64_t frame = (uint64_t)mtu + 14, l = bps / 8 / LEAF_DELAY_DIV;
	uint64_t floor = whole ? 2 * (65536 / (mtu > 576 ? mtu - 40 : 536) + 1) * frame : 8 * frame;

	if (l < floor)
		l = floor;
	if (l > LEAF_LIMIT_MAX)
		l = LEAF_LIMIT_MAX; /* a probe at "unlimited" rate must not size it */
	return l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
}

/* A nested class waits for its parent as well as for its own ceiling: with
 * a bucket smaller than a 64 KiB GSO packet, the tokens it earns while the
 * parent serves a sibling are lost, and it falls short of its ceiling
 * (measured: 3.05 of 4 Mbit/s beside a sibling taking the rest of 10). */
static uint32_t nested_burst(const ClassSpec *spec, uint32_t mtu, uint32_t burst) {
	uint32_t gso = (uint32_t)gso_bytes(mtu);
	return spec->parent != NB_ROOT_CLASSID && burst < gso ? gso : burst;
}

/* The rule's own traffic goes to its leaf classes, which share what the
 * rule class guarantees them (spec->own: its whole rate while it has no
 * children, else as little as a child without a minimum): small packets an
 * eighth, the bulk the rest, each borrowing up to the
 * rule's ceiling. HTB serves the lower prio first, borrowing or not, so
 * small packets overtake the bulk queue, and a rule of higher priority
 * overtakes one of lower; what they take is still bounded by every class
 * above. quantum: what a leaf sends in its turn among leaves of the same
 * prio borrowing from the same classes, alike for all of them (1 ms at the
 * top class's limit) so that they share alike. */
#define SMALL_SHARE 8u

void leaf_class_params(const ClassSpec *spec, uint32_t mtu, bool small, struct nl_htb_class *c) {
	uint64_t own = spec->own / 8 ?: 1, part = own / SMALL_SHARE ?: 1;
	struct nl_htb_class q;

	htb_params(spec->top ?: spec->ceil, mtu, &q);
	htb_params(spec->ceil, mtu, c);
	c->ceil = c->rate;
	c->burst = nested_burst(spec, mtu, q.burst < c->burst ? q.burst : c->burst);
	c->rate = small ? part : own - part ?: 1;
	c->quantum = q.quantum;
	c->prio = spec->prio + (small ? 0 : 1);
}

/* The rule class: its guaranteed rate and ceiling, the burst of its
 * ceiling. */
void rule_class_params(const ClassSpec *spec, uint32_t mtu, struct nl_htb_class *c) {
	struct nl_htb_class b;

	htb_params(spec->ceil, mtu, c);
	c->ceil = c->rate;
	/* An inherited ceiling is no rate to size a burst by: the top
	 * class's limit is. */
	htb_params(spec->top && spec->top < spec->ceil ? spec->top : spec->ceil, mtu, &b);
	c->burst = nested_burst(spec, mtu, b.burst);
	c->rate = spec->rate / 8 ?: 1;
	if (c->rate > c->ceil)
		c->rate = c->ceil;
}

/* What a leaf queue is sized for: the class's ceiling, or where that is
 * inherited the top class's limit, which bounds it. */
uint64_t leaf_bps(const ClassSpec *spec) {
	return spec->top && spec->top < spec->ceil ? spec->top : spec->ceil;
}
