/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rtnetlink layer against the running kernel, in a private network
 * namespace: IFB devices, the link monitor, HTB, leaf qdiscs, clsact and
 * cls_bpf. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for unshare and BPF);
 * skips with 77 otherwise.
 */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>

#include "macro.h"
#include "netlink.h"
#include "tests.h"

#define IFB_NAME "nbtest0"
#define IFB_ALIAS "netbump:test"
#define MON_NAME "nbmon0"
#define INGRESS TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)

static bool have_tc;

/* Cross-checks with tc(8) in our namespace (inherited by the child); the
 * assertions proper go through the API. */
_printf_(1, 2) static bool sh(const char *fmt, ...) {
	char cmd[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ASSERT_TRUE(n > 0 && (size_t) n < sizeof(cmd));
	return system(cmd) == 0;
}

/* ---- links ---- */

struct link_find {
	const char *name;
	struct nl_link link;
	bool found;
	bool saw_loopback;
};

static int link_find_cb(const struct nl_link *link, void *userdata) {
	struct link_find *f = userdata;

	if (link->loopback)
		f->saw_loopback = true;
	if (streq(link->name, f->name)) {
		f->link = *link;
		f->found = true;
	}
	return 0;
}

static int link_fail_cb(const struct nl_link *link, void *userdata) {
	return -ENOTRECOVERABLE;
}

static void test_links(struct nl *nl, uint32_t *ret_ifindex) {
	struct link_find f = { .name = IFB_NAME };
	struct nl_link link;
	uint32_t ifindex = 0, other = 0;

	ASSERT_EQ(nl_ifb_create(nl, "", NULL, &ifindex), -EINVAL);
	ASSERT_EQ(nl_ifb_create(nl, "this-name-is-too-long", NULL, &ifindex), -EINVAL);

	ASSERT_EQ(nl_ifb_create(nl, IFB_NAME, IFB_ALIAS, &ifindex), 0);
	ASSERT_TRUE(ifindex > 0);
	ASSERT_STREQ(nl_extack(nl), "");

	/* A second one by the same name must fail and leave the first alone. */
	ASSERT_EQ(nl_ifb_create(nl, IFB_NAME, NULL, &other), -EEXIST);
	ASSERT_EQ(other, 0);

	ASSERT_EQ(nl_link_get(nl, ifindex, &link), 0);
	ASSERT_EQ(link.ifindex, ifindex);
	ASSERT_STREQ(link.name, IFB_NAME);
	ASSERT_STREQ(link.kind, "ifb");
	ASSERT_STREQ(link.alias, IFB_ALIAS);
	ASSERT_TRUE(link.flags & IFF_UP);
	ASSERT_TRUE(link.mtu > 0);
	ASSERT_TRUE(!link.loopback);

	ASSERT_EQ(nl_link_get(nl, 999999, &link), -ENODEV);

	ASSERT_EQ(nl_link_dump(nl, link_find_cb, &f), 0);
	ASSERT_TRUE(f.found);
	ASSERT_TRUE(f.saw_loopback);
	ASSERT_EQ(f.link.ifindex, ifindex);
	ASSERT_STREQ(f.link.alias, IFB_ALIAS);

	/* A callback's error ends the dump and comes back unchanged, and the
	 * socket stays usable (the rest of the dump was drained). */
	ASSERT_EQ(nl_link_dump(nl, link_fail_cb, NULL), -ENOTRECOVERABLE);
	ASSERT_EQ(nl_link_get(nl, ifindex, &link), 0);

	*ret_ifindex = ifindex;
}

/* A link dump that sees the link list change under it must not pass off
 * a torn snapshot as complete: the kernel flags the later parts with
 * NLM_F_DUMP_INTR and we return -EAGAIN. */
struct intr_state {
	struct nl *other;
	unsigned calls;
	uint32_t created;
};

static int intr_cb(const struct nl_link *link, void *userdata) {
	struct intr_state *st = userdata;

	/* During the first part of the dump, change the list. */
	if (st->calls++ == 0)
		ASSERT_EQ(nl_ifb_create(st->other, "nbintr", NULL, &st->created), 0);
	return 0;
}

static int count_cb(const struct nl_link *link, void *userdata) {
	(*(unsigned *) userdata)++;
	return 0;
}

static void test_dump_intr(struct nl *nl) {
	_cleanup_nl_ struct nl *other = NULL;
	struct intr_state st = {};
	uint32_t ifindexes[80];
	unsigned n = 0;
	int r;

	/* Enough links that the dump needs several recvs (~1-2 KiB each). */
	for (size_t i = 0; i < ELEMENTSOF(ifindexes); i++) {
		char name[IF_NAMESIZE];

		ASSERT_TRUE(snprintf(name, sizeof(name), "nbmany%zu", i) < (int) sizeof(name));
		ASSERT_EQ(nl_ifb_create(nl, name, NULL, &ifindexes[i]), 0);
	}

	ASSERT_EQ(nl_open(&other), 0);
	st.other = other;
	r = nl_link_dump(nl, intr_cb, &st);
	fprintf(stderr, "link dump with a concurrent change: %d after %u links\n", r, st.calls);
	ASSERT_EQ(r, -EAGAIN);

	/* The socket is in step again, and a retry is consistent. */
	ASSERT_EQ(nl_link_dump(nl, count_cb, &n), 0);
	ASSERT_TRUE(n >= ELEMENTSOF(ifindexes) + 3);

	ASSERT_EQ(nl_link_delete(nl, st.created), 0);
	for (size_t i = 0; i < ELEMENTSOF(ifindexes); i++)
		ASSERT_EQ(nl_link_delete(nl, ifindexes[i]), 0);
}

/* ---- link monitor ---- */

struct mon_state {
	const char *name;
	uint32_t ifindex;
	bool new_seen;
	bool up_with_alias; /* a NEWLINK showed the device up and aliased */
	bool del_seen;
};

static int mon_cb(uint16_t type, const struct nl_link *link, void *userdata) {
	struct mon_state *m = userdata;

	if (!streq(link->name, m->name))
		return 0;
	if (type == RTM_NEWLINK) {
		m->new_seen = true;
		m->ifindex = link->ifindex;
		if ((link->flags & IFF_UP) && streq(link->alias, "netbump:mon"))
			m->up_with_alias = true;
	} else if (type == RTM_DELLINK)
		m->del_seen = true;
	return 0;
}

static void mon_wait(struct nl *mon, struct mon_state *m, const bool *flag) {
	struct pollfd p = { .fd = nl_fd(mon), .events = POLLIN };

	ASSERT_TRUE(p.fd >= 0);
	while (!*flag) {
		int r = poll(&p, 1, 5000);

		ASSERT_TRUE(r > 0); /* else: no event within 5 s */
		ASSERT_EQ(nl_link_monitor_receive(mon, mon_cb, m), 0);
	}
}

static void test_monitor(struct nl *nl) {
	_cleanup_nl_ struct nl *mon = NULL;
	struct mon_state m = { .name = MON_NAME };
	uint32_t ifindex;
	int small = 1, r, i;

	ASSERT_EQ(nl_open_link_monitor(&mon), 0);
	/* Nothing pending yet: drained at once. */
	ASSERT_EQ(nl_link_monitor_receive(mon, mon_cb, &m), 0);

	ASSERT_EQ(nl_ifb_create(nl, MON_NAME, "netbump:mon", &ifindex), 0);
	mon_wait(mon, &m, &m.up_with_alias);
	ASSERT_EQ(m.ifindex, ifindex);

	ASSERT_EQ(nl_link_delete(nl, ifindex), 0);
	mon_wait(mon, &m, &m.del_seen);
	ASSERT_EQ(nl_link_delete(nl, ifindex), -ENODEV);

	/* Overrun: shrink the queue to the kernel's minimum and flood it. */
	ASSERT_EQ(setsockopt(nl_fd(mon), SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(nl_ifb_create(nl, MON_NAME, NULL, &ifindex), 0);
		ASSERT_EQ(nl_link_delete(nl, ifindex), 0);
	}
	m = (struct mon_state) { .name = MON_NAME };
	r = nl_link_monitor_receive(mon, mon_cb, &m);
	ASSERT_EQ(r, -ENOBUFS);
	/* ... after which the socket is drained and works again. */
	ASSERT_EQ(nl_link_monitor_receive(mon, mon_cb, &m), 0);
}

/* ---- qdiscs ---- */

struct qdisc_find {
	uint32_t parent;
	struct nl_qdisc q;
	unsigned n;
	unsigned n_other_ifindex;
	uint32_t ifindex;
};

static int qdisc_find_cb(const struct nl_qdisc *q, void *userdata) {
	struct qdisc_find *f = userdata;

	if (q->ifindex != f->ifindex)
		f->n_other_ifindex++;
	else if (q->parent == f->parent) {
		f->q = *q;
		f->n++;
	}
	return 0;
}

struct qdisc_all {
	uint32_t ifindex;
	unsigned ours;
};

static int qdisc_all_cb(const struct nl_qdisc *q, void *userdata) {
	struct qdisc_all *a = userdata;

	if (q->ifindex == a->ifindex)
		a->ours++;
	return 0;
}

/* The qdisc of ifindex at parent; kind "" if none. */
static struct nl_qdisc qdisc_at(struct nl *nl, uint32_t ifindex, uint32_t parent) {
	struct qdisc_find f = { .parent = parent, .ifindex = ifindex };

	ASSERT_EQ(nl_qdisc_dump(nl, ifindex, qdisc_find_cb, &f), 0);
	ASSERT_TRUE(f.n <= 1);
	ASSERT_EQ(f.n_other_ifindex, 0);
	return f.q;
}

/* ---- classes ---- */

struct class_find {
	uint32_t classid;
	struct nl_class_stats s;
	bool found;
	unsigned n;
};

static int class_find_cb(const struct nl_class_stats *s, void *userdata) {
	struct class_find *f = userdata;

	f->n++;
	if (s->classid == f->classid) {
		f->s = *s;
		f->found = true;
	}
	return 0;
}

static bool class_get(struct nl *nl, uint32_t ifindex, uint32_t classid, struct nl_class_stats *ret) {
	struct class_find f = { .classid = classid };

	ASSERT_EQ(nl_class_dump(nl, ifindex, class_find_cb, &f), 0);
	if (f.found && ret)
		*ret = f.s;
	return f.found;
}

/* Sends n frames of len bytes through the device's root qdisc; with
 * skb->priority set to an HTB classid they are classified into it without
 * any filter (htb_classify()). IFB then drops them, after HTB counted. */
static void send_frames(uint32_t ifindex, uint32_t priority, unsigned n, size_t len) {
	_cleanup_close_ int fd = -1;
	struct sockaddr_ll sa = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = (int) ifindex,
		.sll_halen = ETH_ALEN,
		.sll_addr = { 0x02, 0, 0, 0, 0, 0x01 },
	};
	uint8_t frame[1500] = {};
	int prio = (int) priority;

	ASSERT_TRUE(len <= sizeof(frame));
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio)), 0);
	for (unsigned i = 0; i < n; i++)
		ASSERT_EQ(sendto(fd, frame, len, 0, (struct sockaddr *) &sa, sizeof(sa)), (ssize_t) len);
}

static void test_htb(struct nl *nl, uint32_t ifindex) {
	const uint32_t root = TC_H_MAKE(1u << 16, 0), cls = TC_H_MAKE(1u << 16, 0x10),
		       cls64 = TC_H_MAKE(1u << 16, 0x20);
	struct nl_htb_class c = { .rate = 125000, .burst = 1600, .quantum = 1514 };
	struct nl_htb_class c64 = { .rate = 5000000000ull, .burst = 1u << 20, .quantum = 60000 };
	struct nl_class_stats s, s2;
	struct nl_qdisc q;
	int r;

	ASSERT_EQ(nl_htb_qdisc_replace(nl, ifindex, root, 64), 0);
	q = qdisc_at(nl, ifindex, TC_H_ROOT);
	ASSERT_STREQ(q.kind, "htb");
	ASSERT_EQ(q.handle, root);
	if (have_tc)
		ASSERT_TRUE(sh("tc qdisc show dev %s | grep -q 'htb 1: root .*default 0 .*direct_qlen 64'",
			       IFB_NAME));

	/* HTB has no qdisc ->change(): replacing it by itself is refused. */
	r = nl_htb_qdisc_replace(nl, ifindex, root, 64);
	fprintf(stderr, "htb replace over itself: %d (%s) \"%s\"\n", r, strerror(-r), nl_extack(nl));
	ASSERT_TRUE(r == 0 || r == -EINVAL);

	/* Create, and exclusively. */
	ASSERT_EQ(nl_htb_class_set(nl, ifindex, root, cls, &c, true), 0);
	ASSERT_EQ(nl_htb_class_set(nl, ifindex, root, cls, &c, true), -EEXIST);
	/* No create flags: a missing class is not made. */
	ASSERT_EQ(nl_htb_class_set(nl, ifindex, root, TC_H_MAKE(1u << 16, 0x11), &c, false), -ENOENT);
	ASSERT_TRUE(!class_get(nl, ifindex, TC_H_MAKE(1u << 16, 0x11), NULL));
	if (have_tc)
		ASSERT_TRUE(sh("tc class show dev %s classid 1:10 | grep -q 'rate 1Mbit ceil 1Mbit burst 1600b cburst 1600b'",
			       IFB_NAME));

	ASSERT_TRUE(class_get(nl, ifindex, cls, &s));
	ASSERT_EQ(s.bytes, 0);
	ASSERT_EQ(s.packets, 0);

	/* Traffic into the class shows in its stats. */
	send_frames(ifindex, cls, 10, 100);
	ASSERT_TRUE(class_get(nl, ifindex, cls, &s));
	fprintf(stderr, "class 1:10 after traffic: bytes=%llu packets=%llu drops=%u overlimits=%u backlog=%u qlen=%u\n",
		(unsigned long long) s.bytes, (unsigned long long) s.packets, s.drops, s.overlimits,
		s.backlog, s.qlen);
	ASSERT_EQ(s.packets, 10);
	ASSERT_TRUE(s.bytes >= 10 * 100);
	if (have_tc)
		ASSERT_TRUE(sh("tc -s class show dev %s classid 1:10 | grep -q 'Sent %llu bytes 10 pkt'", IFB_NAME,
			       (unsigned long long) s.bytes));

	/* Change in place: new rate, same class, counters kept. */
	c.rate = 1250000;
	ASSERT_EQ(nl_htb_class_set(nl, ifindex, root, cls, &c, false), 0);
	ASSERT_TRUE(class_get(nl, ifindex, cls, &s2));
	ASSERT_EQ(s2.bytes, s.bytes);
	ASSERT_EQ(s2.packets, s.packets);
	if (have_tc)
		ASSERT_TRUE(sh("tc class show dev %s classid 1:10 | grep -q 'rate 10Mbit ceil 10Mbit burst 1600b'",
			       IFB_NAME));

	/* Beyond 2^32-1 bytes/s: RATE64/CEIL64. */
	ASSERT_EQ(nl_htb_class_set(nl, ifindex, root, cls64, &c64, true), 0);
	ASSERT_TRUE(class_get(nl, ifindex, cls64, NULL));
	if (have_tc)
		ASSERT_TRUE(sh("tc class show dev %s classid 1:20 | grep -q 'rate 40Gbit ceil 40Gbit'", IFB_NAME));

	/* Leaf qdiscs. */
	ASSERT_EQ(nl_leaf_qdisc_replace(nl, ifindex, cls, TC_H_MAKE(0x10u << 16, 0), NL_LEAF_BFIFO, 30000), 0);
	q = qdisc_at(nl, ifindex, cls);
	ASSERT_STREQ(q.kind, "bfifo");
	ASSERT_EQ(q.handle, TC_H_MAKE(0x10u << 16, 0));
	if (have_tc)
		ASSERT_TRUE(sh("tc qdisc show dev %s parent 1:10 | grep -q 'bfifo 10: .*limit 30000b'", IFB_NAME));

	/* Another kind under another handle replaces it... */
	ASSERT_EQ(nl_leaf_qdisc_replace(nl, ifindex, cls, TC_H_MAKE(0x11u << 16, 0), NL_LEAF_PFIFO, 100), 0);
	q = qdisc_at(nl, ifindex, cls);
	ASSERT_STREQ(q.kind, "pfifo");
	ASSERT_EQ(q.handle, TC_H_MAKE(0x11u << 16, 0));
	/* ... the same kind and handle changes it in place. */
	ASSERT_EQ(nl_leaf_qdisc_replace(nl, ifindex, cls, TC_H_MAKE(0x11u << 16, 0), NL_LEAF_PFIFO, 200), 0);
	if (have_tc)
		ASSERT_TRUE(sh("tc qdisc show dev %s parent 1:10 | grep -q 'pfifo 11: .*limit 200p'", IFB_NAME));

	/* fq_codel is not built into the test kernel (CONFIG_NET_SCH_FQ_CODEL);
	 * where it is, it must simply work. */
	r = nl_leaf_qdisc_replace(nl, ifindex, cls, TC_H_MAKE(0x12u << 16, 0), NL_LEAF_FQ_CODEL, 1000);
	fprintf(stderr, "fq_codel: %d (%s) \"%s\"\n", r, r < 0 ? strerror(-r) : "ok", nl_extack(nl));
	if (r < 0) {
		ASSERT_TRUE(r == -ENOENT || r == -EOPNOTSUPP);
		ASSERT_TRUE(nl_extack(nl)[0] != '\0');
		/* The failed attempt left the pfifo in place. */
		ASSERT_STREQ(qdisc_at(nl, ifindex, cls).kind, "pfifo");
	} else
		ASSERT_STREQ(qdisc_at(nl, ifindex, cls).kind, "fq_codel");

	/* The kernel's reason arrives in nl_extack(), and is gone after the
	 * next successful request. */
	r = nl_leaf_qdisc_replace(nl, ifindex, TC_H_MAKE(1u << 16, 0x99), TC_H_MAKE(0x13u << 16, 0), NL_LEAF_BFIFO,
				  1000);
	fprintf(stderr, "leaf under missing class: %d \"%s\"\n", r, nl_extack(nl));
	ASSERT_EQ(r, -ENOENT);
	ASSERT_TRUE(strstr(nl_extack(nl), "class") != NULL);
	ASSERT_STREQ(nl_error_extack(nl), nl_extack(nl));
	ASSERT_TRUE(class_get(nl, ifindex, cls, NULL));
	ASSERT_STREQ(nl_extack(nl), "");
	/* ... while the message of the failure outlives it, until reset. */
	ASSERT_TRUE(strstr(nl_error_extack(nl), "class") != NULL);
	nl_error_reset(nl);
	ASSERT_STREQ(nl_error_extack(nl), "");

	/* A class whose parent belongs to another qdisc. */
	r = nl_htb_class_set(nl, ifindex, TC_H_MAKE(2u << 16, 0), TC_H_MAKE(1u << 16, 0x30), &c, true);
	fprintf(stderr, "class with foreign parent: %d \"%s\"\n", r, nl_extack(nl));
	ASSERT_TRUE(r < 0);

	/* A dump bigger than one recv buffer: multipart across many reads. */
	{
		struct nl_htb_class small = { .rate = 12500, .burst = 1600, .quantum = 1514 };
		struct class_find f = {};

		for (uint32_t i = 0x100; i < 0x100 + 400; i++)
			ASSERT_EQ(nl_htb_class_set(nl, ifindex, root, TC_H_MAKE(1u << 16, i), &small, true), 0);
		ASSERT_EQ(nl_class_dump(nl, ifindex, class_find_cb, &f), 0);
		/* 400 + 1:10 + 1:20, plus whatever the kernel adds (none today) */
		ASSERT_TRUE(f.n >= 402);
		for (uint32_t i = 0x100; i < 0x100 + 400; i++)
			ASSERT_EQ(nl_class_delete(nl, ifindex, TC_H_MAKE(1u << 16, i)), 0);
	}

	/* Class deletion, leaf qdisc and all. */
	ASSERT_EQ(nl_class_delete(nl, ifindex, cls64), 0);
	ASSERT_EQ(nl_class_delete(nl, ifindex, cls), 0);
	ASSERT_TRUE(!class_get(nl, ifindex, cls, NULL));
	ASSERT_TRUE(!class_get(nl, ifindex, cls64, NULL));
	ASSERT_EQ(nl_class_delete(nl, ifindex, cls), -ENOENT);
}

/* ---- clsact and cls_bpf ---- */

struct filter_find {
	struct nl_filter f;
	unsigned n;
};

static int class_count_cb(const struct nl_class_stats *s, void *userdata) {
	unsigned *n = userdata;
	if (TC_H_MIN(s->classid) >= 0x1000 && TC_H_MIN(s->classid) < 0x2000)
		(*n)++;
	return 0;
}

/* A batch: many requests in few sendmsg()s, every ack matched to its
 * request; a failure in the middle does not stop the ones after it. */
static void test_batch(struct nl *nl, uint32_t ifindex) {
	const uint32_t root = TC_H_MAKE(1u << 16, 0);
	const unsigned n = 600;
	struct nl_htb_class c = { .rate = 125000, .burst = 1600, .quantum = 1514 };
	struct nl_tc_op *ops = calloc(2 * n, sizeof(*ops));
	int *errors = calloc(2 * n, sizeof(int));
	unsigned trips = 0, count = 0;
	size_t failed = 99;

	ASSERT_TRUE(ops && errors);
	for (unsigned k = 0; k < n; k++) {
		ops[2 * k] = (struct nl_tc_op){ .kind = NL_TC_CLASS_NEW, .ifindex = ifindex, .parent = root,
						.handle = TC_H_MAKE(1u << 16, 0x1000 + k), .htb = c };
		ops[2 * k + 1] = (struct nl_tc_op){ .kind = NL_TC_LEAF, .ifindex = ifindex,
						    .parent = TC_H_MAKE(1u << 16, 0x1000 + k),
						    .handle = TC_H_MAKE((0x1000 + k) << 16, 0),
						    .leaf = { .kind = NL_LEAF_BFIFO, .limit = 30000 } };
	}
	ASSERT_EQ(nl_tc_batch(nl, ops, 2 * n, errors, &failed, &trips), 0);
	fprintf(stderr, "batch of %u requests: %u sendmsg()\n", 2 * n, trips);
	ASSERT_TRUE(trips > 1 && trips < n / 10);
	for (unsigned k = 0; k < 2 * n; k++)
		ASSERT_EQ(errors[k], 0);
	ASSERT_EQ(nl_class_dump(nl, ifindex, class_count_cb, &count), 0);
	ASSERT_EQ(count, n);
	ASSERT_EQ(qdisc_at(nl, ifindex, TC_H_MAKE(1u << 16, 0x1000 + n - 1)).handle, TC_H_MAKE((0x1000 + n - 1) << 16, 0));

	/* A class made again (taken over), a change of a missing one, a new
	 * one after it: rtnetlink goes on after the failure. */
	ops[0] = (struct nl_tc_op){ .kind = NL_TC_CLASS_NEW, .ifindex = ifindex, .parent = root,
				    .handle = TC_H_MAKE(1u << 16, 0x1000), .htb = c };
	ops[1] = (struct nl_tc_op){ .kind = NL_TC_CLASS_CHANGE, .ifindex = ifindex, .parent = root,
				    .handle = TC_H_MAKE(1u << 16, 0x1ffe), .htb = c };
	ops[2] = (struct nl_tc_op){ .kind = NL_TC_CLASS_NEW, .ifindex = ifindex, .parent = root,
				    .handle = TC_H_MAKE(1u << 16, 0x1fff), .htb = c };
	ASSERT_EQ(nl_tc_batch(nl, ops, 3, errors, &failed, &trips), -ENOENT);
	ASSERT_EQ(failed, 1);
	ASSERT_EQ(trips, 1);
	ASSERT_EQ(errors[0], 0);
	ASSERT_EQ(errors[1], -ENOENT);
	ASSERT_EQ(errors[2], 0);
	fprintf(stderr, "batch failure: \"%s\"\n", nl_error_extack(nl));
	ASSERT_TRUE(class_get(nl, ifindex, TC_H_MAKE(1u << 16, 0x1fff), NULL));

	/* A request that cannot be built: nothing sent. */
	ops[0].htb.rate = 0;
	ASSERT_EQ(nl_tc_batch(nl, ops, 3, errors, &failed, &trips), -EINVAL);
	ASSERT_EQ(failed, 0);
	ASSERT_EQ(trips, 0);

	/* All deleted in one batch. */
	for (unsigned k = 0; k < n; k++)
		ops[k] = (struct nl_tc_op){ .kind = NL_TC_CLASS_DEL, .ifindex = ifindex,
					    .handle = TC_H_MAKE(1u << 16, 0x1000 + k) };
	ops[n] = (struct nl_tc_op){ .kind = NL_TC_CLASS_DEL, .ifindex = ifindex, .handle = TC_H_MAKE(1u << 16, 0x1fff) };
	ASSERT_EQ(nl_tc_batch(nl, ops, n + 1, NULL, &failed, &trips), 0);
	count = 0;
	ASSERT_EQ(nl_class_dump(nl, ifindex, class_count_cb, &count), 0);
	ASSERT_EQ(count, 0);
	free(ops);
	free(errors);
}

static int filter_find_cb(const struct nl_filter *f, void *userdata) {
	struct filter_find *ff = userdata;

	ff->f = *f;
	ff->n++;
	return 0;
}

static int prog_load_ok(void) {
	/* r0 = TC_ACT_OK; exit */
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_OK },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "nb_test_ok", "GPL", insns, ELEMENTSOF(insns), NULL);
}

static void test_clsact_bpf(struct nl *nl, uint32_t ifindex) {
	_cleanup_close_ int prog = -1;
	struct filter_find ff = {};
	struct nl_qdisc q;

	ASSERT_EQ(nl_clsact_create(nl, ifindex), 0);
	ASSERT_EQ(nl_clsact_create(nl, ifindex), -EEXIST);
	q = qdisc_at(nl, ifindex, TC_H_CLSACT);
	ASSERT_STREQ(q.kind, "clsact");
	ASSERT_EQ(q.handle, TC_H_MAKE(TC_H_CLSACT, 0));

	prog = prog_load_ok();
	ASSERT_TRUE(prog >= 0);

	ASSERT_EQ(nl_bpf_filter_add(nl, ifindex, INGRESS, 1, 1, -1, "x"), -EBADF);
	ASSERT_EQ(nl_bpf_filter_add(nl, ifindex, INGRESS, 1, 1, prog, "nb_test_prog"), 0);
	ASSERT_EQ(nl_bpf_filter_add(nl, ifindex, INGRESS, 1, 1, prog, "nb_test_prog"), -EEXIST);
	if (have_tc)
		ASSERT_TRUE(sh("tc filter show dev %s ingress | grep -q 'bpf chain 0 handle 0x1 nb_test_prog direct-action'",
			       IFB_NAME));

	ASSERT_EQ(nl_filter_dump(nl, ifindex, INGRESS, filter_find_cb, &ff), 0);
	ASSERT_EQ(ff.n, 1);
	ASSERT_EQ(ff.f.ifindex, ifindex);
	ASSERT_EQ(ff.f.parent, INGRESS);
	ASSERT_EQ(ff.f.prio, 1);
	ASSERT_EQ(ff.f.handle, 1);
	ASSERT_EQ(ff.f.protocol, ETH_P_ALL);
	ASSERT_STREQ(ff.f.kind, "bpf");
	ASSERT_STREQ(ff.f.bpf_name, "nb_test_prog");

	/* Egress is a different block: empty. */
	ff = (struct filter_find) {};
	ASSERT_EQ(nl_filter_dump(nl, ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS), filter_find_cb, &ff), 0);
	ASSERT_EQ(ff.n, 0);

	ASSERT_EQ(nl_filter_delete(nl, ifindex, INGRESS, 0), -EINVAL);
	ASSERT_EQ(nl_filter_delete(nl, ifindex, INGRESS, 1), 0);
	ff = (struct filter_find) {};
	ASSERT_EQ(nl_filter_dump(nl, ifindex, INGRESS, filter_find_cb, &ff), 0);
	ASSERT_EQ(ff.n, 0);
	ASSERT_EQ(nl_filter_delete(nl, ifindex, INGRESS, 1), -ENOENT);

	ASSERT_EQ(nl_qdisc_delete(nl, ifindex, TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0)), 0);
	ASSERT_STREQ(qdisc_at(nl, ifindex, TC_H_CLSACT).kind, "");
}

int main(void) {
	_cleanup_nl_ struct nl *nl = NULL;
	uint32_t ifindex;
	int r;

	if (geteuid() != 0) {
		fprintf(stderr, "skip: needs root\n");
		return EXIT_TEST_SKIP;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "skip: cannot create a network namespace: %m\n");
		return EXIT_TEST_SKIP;
	}
	have_tc = sh("tc -V >/dev/null 2>&1");

	ASSERT_TRUE(nl_free(NULL) == NULL);
	ASSERT_STREQ(nl_extack(NULL), "");
	ASSERT_STREQ(nl_error_extack(NULL), "");
	ASSERT_EQ(nl_fd(NULL), -EBADF);

	ASSERT_EQ(nl_open(&nl), 0);
	ASSERT_TRUE(nl_fd(nl) >= 0);
	ASSERT_STREQ(nl_extack(nl), "");

	test_links(nl, &ifindex);
	test_monitor(nl);
	test_dump_intr(nl);
	test_htb(nl, ifindex);
	test_batch(nl, ifindex);
	test_clsact_bpf(nl, ifindex);

	/* ifindex 0: every device's qdiscs, ours among them. */
	{
		struct qdisc_all a = { .ifindex = ifindex };

		ASSERT_EQ(nl_qdisc_dump(nl, 0, qdisc_all_cb, &a), 0);
		ASSERT_TRUE(a.ours >= 1);
	}

	/* Root qdisc deletion brings back the default. */
	ASSERT_EQ(nl_qdisc_delete(nl, ifindex, TC_H_ROOT, TC_H_MAKE(1u << 16, 0)), 0);
	ASSERT_TRUE(!streq(qdisc_at(nl, ifindex, TC_H_ROOT).kind, "htb"));
	/* Now the root is the default qdisc, which has another handle. */
	r = nl_qdisc_delete(nl, ifindex, TC_H_ROOT, TC_H_MAKE(1u << 16, 0));
	fprintf(stderr, "delete missing root htb: %d \"%s\"\n", r, nl_extack(nl));
	ASSERT_TRUE(r == -EINVAL || r == -ENOENT);

	ASSERT_EQ(nl_link_delete(nl, ifindex), 0);
	{
		struct nl_link link;
		ASSERT_EQ(nl_link_get(nl, ifindex, &link), -ENODEV);
	}

	fprintf(stderr, "ok\n");
	return EXIT_SUCCESS;
}
