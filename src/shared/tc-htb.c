/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* HTB: the root qdisc and its leaf classes (net/sched/sch_htb.c). */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

/* tc_htb_glob.version must equal HTB_VER >> 16 or htb_init() refuses. */
#define HTB_GLOB_VERSION 3
/* quantum = rate / r2q for classes that give none; tc(8)'s default. */
#define HTB_RATE2QUANTUM 10

/* The psched clock as /proc/net/psched describes it (psched_show() in
 * net/sched/sch_api.c): the first word is NSEC_PER_USEC, the second
 * PSCHED_TICKS2NS(1), so one microsecond is t2us / us2t ticks. HTB's
 * buffer/cbuffer are in these ticks (htb_change_class() converts them back
 * with PSCHED_TICKS2NS), 64 ns each on current kernels; read rather than
 * assumed, once, since the clock never changes while the system runs. */
static struct {
	bool loaded;
	uint32_t t2us;
	uint32_t us2t;
} psched;

static int parse_hex_u32(const char *s, const char **ret_end, uint32_t *ret) {
	unsigned long v;
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	/* strtoul() would take a sign and wrap it around. */
	if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 16);
	if (errno != 0)
		return -errno;
	if (v > UINT32_MAX)
		return -ERANGE;
	if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\0')
		return -EINVAL;
	*ret_end = end;
	*ret = (uint32_t) v;
	return 0;
}

static int psched_load(void) {
	_cleanup_fclose_ FILE *f = NULL;
	char line[128];
	const char *p = line;
	uint32_t t2us, us2t;
	int r;

	if (psched.loaded)
		return 0;

	f = fopen("/proc/net/psched", "re");
	if (!f)
		return negative_errno();
	if (!fgets(line, sizeof(line), f))
		return ferror(f) ? -EIO : -ENODATA;

	r = parse_hex_u32(p, &p, &t2us);
	if (r < 0)
		return r;
	r = parse_hex_u32(p, &p, &us2t);
	if (r < 0)
		return r;
	if (t2us == 0 || us2t == 0)
		return -EINVAL;

	psched.t2us = t2us;
	psched.us2t = us2t;
	psched.loaded = true;
	return 0;
}

/* Ticks it takes to send `bytes` at `rate` bytes/s, rounded up so that a
 * non-zero burst never becomes a zero buffer, saturated at the u32 the
 * kernel takes. */
static uint32_t htb_xmit_ticks(uint64_t bytes, uint64_t rate) {
	/* ticks = bytes / rate [s] * 1e6 [us/s] * t2us / us2t; at most 2^84 /
	 * 2^96 on either side, so 128 bits never overflow. */
	unsigned __int128 num = (unsigned __int128) bytes * 1000000u * psched.t2us;
	unsigned __int128 den = (unsigned __int128) rate * psched.us2t;
	unsigned __int128 ticks = (num + den - 1) / den;

	return ticks > UINT32_MAX ? UINT32_MAX : (uint32_t) ticks;
}

int nl_htb_qdisc_replace(struct nl *nl, uint32_t ifindex, uint32_t handle, uint32_t direct_qlen) {
	struct tc_htb_glob glob = {
		.version = HTB_GLOB_VERSION,
		.rate2quantum = HTB_RATE2QUANTUM,
		/* Unclassified packets bypass the classes (direct queue). */
		.defcls = 0,
	};
	struct nlmsghdr *nlh;
	struct nlattr *opts;

	if (!nl || ifindex == 0 || ifindex > INT32_MAX || TC_H_MAJ(handle) == 0 || TC_H_MIN(handle) != 0)
		return -EINVAL;

	/* Note that the kernel answers -EINVAL ("Change operation not
	 * supported") when the root already is an HTB with this handle: HTB
	 * has no qdisc ->change(). Callers reconcile by dump first. */
	nlh = nl_tc_message_new(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, ifindex, TC_H_ROOT, handle, 0);
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_INIT, sizeof(glob), &glob);
	mnl_attr_put_u32(nlh, TCA_HTB_DIRECT_QLEN, direct_qlen);
	mnl_attr_nest_end(nlh, opts);

	return nl_request(nl, nlh, NULL, NULL);
}

int nl_htb_class_put(void *buf, uint32_t ifindex, uint32_t parent, uint32_t classid, const struct nl_htb_class *c,
		     uint16_t flags, struct nlmsghdr **ret) {
	struct tc_htb_opt opt = {};
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	uint64_t ceil;
	uint32_t rate32;
	int r;

	if (!buf || !c || ifindex == 0 || ifindex > INT32_MAX || c->rate == 0 || (c->ceil && c->ceil < c->rate) ||
	    c->prio > 7)
		return -EINVAL;
	if (TC_H_MAJ(classid) == 0 || TC_H_MIN(classid) == 0)
		return -EINVAL;

	r = psched_load();
	if (r < 0)
		return r;

	/* htb_change_class() rejects a zero rate.rate even when RATE64 is
	 * given and uses max(rate.rate, RATE64), so saturate rather than 0. */
	rate32 = c->rate > UINT32_MAX ? UINT32_MAX : (uint32_t) c->rate;
	/* With a link layer set the kernel computes transmit times itself
	 * (psched_ratecfg_precompute()) and wants no rate table. */
	ceil = c->ceil ?: c->rate;
	opt.rate.rate = rate32;
	opt.rate.linklayer = TC_LINKLAYER_ETHERNET;
	opt.ceil.rate = ceil > UINT32_MAX ? UINT32_MAX : (uint32_t) ceil;
	opt.ceil.linklayer = TC_LINKLAYER_ETHERNET;
	opt.buffer = htb_xmit_ticks(c->burst, c->rate);
	opt.cbuffer = htb_xmit_ticks(c->burst, ceil);
	opt.quantum = c->quantum;
	opt.prio = c->prio;

	nlh = nl_tc_message_put(buf, RTM_NEWTCLASS, flags, ifindex, parent, classid, 0);
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_PARMS, sizeof(opt), &opt);
	if (c->rate > UINT32_MAX)
		mnl_attr_put_u64(nlh, TCA_HTB_RATE64, c->rate);
	if (ceil > UINT32_MAX)
		mnl_attr_put_u64(nlh, TCA_HTB_CEIL64, ceil);
	mnl_attr_nest_end(nlh, opts);
	*ret = nlh;
	return 0;
}

int nl_htb_class_set(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t classid,
		     const struct nl_htb_class *c, bool create) {
	struct nlmsghdr *nlh;
	int r;

	if (!nl)
		return -EINVAL;
	/* Without NLM_F_CREATE an existing class is changed in place (its
	 * leaf qdisc and counters kept) and a missing one is -ENOENT. */
	nl_tc_message_new(nl, RTM_NEWTCLASS, 0, ifindex, parent, classid, 0);
	r = nl_htb_class_put(nl->tx, ifindex, parent, classid, c, create ? NLM_F_CREATE | NLM_F_EXCL : 0, &nlh);
	if (r < 0)
		return r;
	return nl_request(nl, nlh, NULL, NULL);
}
