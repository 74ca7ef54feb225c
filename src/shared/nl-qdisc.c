/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kind-independent tc objects: qdisc, class and filter dumps and deletion. */

#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/gen_stats.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

/* struct gnet_stats_basic is { u64 bytes; u32 packets; }: 16 bytes with the
 * tail padding the uapi struct has, but older kernels copied a packed
 * 12-byte version. Accept both; read only the 12 that are always there. */
#define GNET_STATS_BASIC_MIN_LEN (sizeof(uint64_t) + sizeof(uint32_t))
/* struct tc_stats up to and including backlog, without tail padding. */
#define TC_STATS_MIN_LEN (offsetof(struct tc_stats, backlog) + sizeof(uint32_t))

struct nlmsghdr *nl_tc_message_new(struct nl *nl, uint16_t type, uint16_t flags, uint32_t ifindex,
				   uint32_t parent, uint32_t handle, uint32_t info) {
	nl_message_new(nl, type, flags);
	return nl_tc_message_put(nl->tx, type, flags, ifindex, parent, handle, info);
}

struct nlmsghdr *nl_tc_message_put(void *buf, uint16_t type, uint16_t flags, uint32_t ifindex, uint32_t parent,
				   uint32_t handle, uint32_t info) {
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct tcmsg *tcm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;

	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = (int) ifindex;
	tcm->tcm_parent = parent;
	tcm->tcm_handle = handle;
	tcm->tcm_info = info;
	return nlh;
}

static const struct nl_attr_policy tc_policy[TCA_MAX + 1] = {
	[TCA_KIND] = { MNL_TYPE_STRING },
	/* A nest for most kinds, a bare struct for the fifos. */
	[TCA_OPTIONS] = { MNL_TYPE_BINARY },
	[TCA_STATS] = { MNL_TYPE_BINARY, TC_STATS_MIN_LEN },
	[TCA_STATS2] = { MNL_TYPE_NESTED },
};

static const struct nl_attr_policy stats2_policy[TCA_STATS_MAX + 1] = {
	[TCA_STATS_BASIC] = { MNL_TYPE_BINARY, GNET_STATS_BASIC_MIN_LEN },
	[TCA_STATS_QUEUE] = { MNL_TYPE_BINARY, sizeof(struct gnet_stats_queue) },
	[TCA_STATS_PKT64] = { MNL_TYPE_U64 },
};

static const struct nl_attr_policy bpf_policy[TCA_BPF_MAX + 1] = {
	[TCA_BPF_NAME] = { MNL_TYPE_STRING },
};

/* Parses the common part of a tc message; ifindex != 0 drops messages of
 * other interfaces (qdisc dumps are not filtered by the kernel). Returns 0
 * for "not ours", 1 for a message to use. */
static int tc_parse(const struct nlmsghdr *nlh, uint16_t type, uint32_t ifindex, const struct tcmsg **ret_tcm,
		    const struct nlattr **tb) {
	const struct tcmsg *tcm;
	int r;

	if (nlh->nlmsg_type != type)
		return 0;
	r = nl_attr_parse(nlh, sizeof(*tcm), tc_policy, TCA_MAX, tb);
	if (r < 0)
		return r;
	tcm = mnl_nlmsg_get_payload(nlh);
	if (ifindex != 0 && (uint32_t) tcm->tcm_ifindex != ifindex)
		return 0;
	*ret_tcm = tcm;
	return 1;
}

static int tc_delete(struct nl *nl, uint16_t type, uint32_t ifindex, uint32_t parent, uint32_t handle,
		     uint32_t info) {
	if (!nl || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	return nl_request(nl, nl_tc_message_new(nl, type, 0, ifindex, parent, handle, info), NULL, NULL);
}

/* ---- qdiscs ---- */

struct qdisc_dump_ctx {
	uint32_t ifindex;
	nl_qdisc_cb cb;
	void *userdata;
};

static int qdisc_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
	struct qdisc_dump_ctx *ctx = userdata;
	const struct nlattr *tb[TCA_MAX + 1] = {};
	const struct tcmsg *tcm;
	struct nl_qdisc q = {};
	int r;

	r = tc_parse(nlh, RTM_NEWQDISC, ctx->ifindex, &tcm, tb);
	if (r <= 0)
		return r;

	q.ifindex = (uint32_t) tcm->tcm_ifindex;
	q.handle = tcm->tcm_handle;
	q.parent = tcm->tcm_parent;
	if (tb[TCA_KIND])
		nl_attr_copy_string(tb[TCA_KIND], q.kind, sizeof(q.kind));
	return ctx->cb(&q, ctx->userdata);
}

int nl_qdisc_dump(struct nl *nl, uint32_t ifindex, nl_qdisc_cb cb, void *userdata) {
	struct qdisc_dump_ctx ctx = { .ifindex = ifindex, .cb = cb, .userdata = userdata };

	if (!nl || !cb || ifindex > INT32_MAX)
		return -EINVAL;
	/* tc_dump_qdisc() walks every device whatever tcm_ifindex says;
	 * qdisc_dump_cb() filters. */
	return nl_request(nl, nl_tc_message_new(nl, RTM_GETQDISC, NLM_F_DUMP, ifindex, 0, 0, 0),
			  qdisc_dump_cb, &ctx);
}

int nl_qdisc_get_root(struct nl *nl, uint32_t ifindex, nl_qdisc_cb cb, void *userdata) {
	struct qdisc_dump_ctx ctx = { .ifindex = ifindex, .cb = cb, .userdata = userdata };

	if (!nl || !cb || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	/* A GET with parent TC_H_ROOT names the device's root qdisc alone
	 * (tc_get_qdisc()): no walk over every class's leaf, as a dump of
	 * all qdiscs does. The kernel sends the answer to the RTNLGRP_TC
	 * group, and to us only with NLM_F_ECHO; a built-in default root
	 * (noqueue, noop) is not sent at all, as in a dump. */
	return nl_request(nl, nl_tc_message_new(nl, RTM_GETQDISC, NLM_F_ECHO, ifindex, TC_H_ROOT, 0, 0), qdisc_dump_cb,
			  &ctx);
}

int nl_qdisc_delete(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t handle) {
	return tc_delete(nl, RTM_DELQDISC, ifindex, parent, handle, 0);
}

/* ---- classes ---- */

struct class_dump_ctx {
	uint32_t ifindex;
	nl_class_cb cb;
	void *userdata;
};

static int class_stats2(const struct nlattr *nest, struct nl_class_stats *s) {
	const struct nlattr *tb[TCA_STATS_MAX + 1] = {};
	int r;

	r = nl_attr_parse_nested(nest, stats2_policy, TCA_STATS_MAX, tb);
	if (r < 0)
		return r;

	if (tb[TCA_STATS_BASIC]) {
		const uint8_t *p = mnl_attr_get_payload(tb[TCA_STATS_BASIC]);
		uint32_t packets;

		memcpy(&s->bytes, p + offsetof(struct gnet_stats_basic, bytes), sizeof(s->bytes));
		memcpy(&packets, p + offsetof(struct gnet_stats_basic, packets), sizeof(packets));
		s->packets = packets;
	}
	/* Sent (Linux 5.16+) only when the packet count outgrew 32 bits. */
	if (tb[TCA_STATS_PKT64])
		s->packets = mnl_attr_get_u64(tb[TCA_STATS_PKT64]);
	if (tb[TCA_STATS_QUEUE]) {
		struct gnet_stats_queue q;

		memcpy(&q, mnl_attr_get_payload(tb[TCA_STATS_QUEUE]), sizeof(q));
		s->qlen = q.qlen;
		s->backlog = q.backlog;
		s->drops = q.drops;
		s->overlimits = q.overlimits;
	}
	return 0;
}

static void class_stats_legacy(const struct nlattr *attr, struct nl_class_stats *s) {
	struct tc_stats st = {};

	memcpy(&st, mnl_attr_get_payload(attr), TC_STATS_MIN_LEN);
	s->bytes = st.bytes;
	s->packets = st.packets;
	s->drops = st.drops;
	s->overlimits = st.overlimits;
	s->qlen = st.qlen;
	s->backlog = st.backlog;
}

static int class_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
	struct class_dump_ctx *ctx = userdata;
	const struct nlattr *tb[TCA_MAX + 1] = {};
	const struct tcmsg *tcm;
	struct nl_class_stats s = {};
	int r;

	r = tc_parse(nlh, RTM_NEWTCLASS, ctx->ifindex, &tcm, tb);
	if (r <= 0)
		return r;

	s.classid = tcm->tcm_handle;
	s.parent = tcm->tcm_parent;
	if (tb[TCA_STATS2]) {
		r = class_stats2(tb[TCA_STATS2], &s);
		if (r < 0)
			return r;
	} else if (tb[TCA_STATS])
		/* Only for kernels that predate TCA_STATS2 (2.6.x). */
		class_stats_legacy(tb[TCA_STATS], &s);

	return ctx->cb(&s, ctx->userdata);
}

int nl_class_dump(struct nl *nl, uint32_t ifindex, nl_class_cb cb, void *userdata) {
	struct class_dump_ctx ctx = { .ifindex = ifindex, .cb = cb, .userdata = userdata };

	/* tc_dump_tclass() needs the device: ifindex 0 would dump nothing. */
	if (!nl || !cb || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	return nl_request(nl, nl_tc_message_new(nl, RTM_GETTCLASS, NLM_F_DUMP, ifindex, 0, 0, 0),
			  class_dump_cb, &ctx);
}

int nl_class_delete(struct nl *nl, uint32_t ifindex, uint32_t classid) {
	/* No parent needed: the kernel finds the qdisc by the classid's major. */
	return tc_delete(nl, RTM_DELTCLASS, ifindex, 0, classid, 0);
}

/* ---- filters ---- */

struct filter_dump_ctx {
	uint32_t ifindex;
	nl_filter_cb cb;
	void *userdata;
};

static int filter_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
	struct filter_dump_ctx *ctx = userdata;
	const struct nlattr *tb[TCA_MAX + 1] = {};
	const struct tcmsg *tcm;
	struct nl_filter f = {};
	int r;

	r = tc_parse(nlh, RTM_NEWTFILTER, ctx->ifindex, &tcm, tb);
	if (r <= 0)
		return r;
	/* tcf_chain_dump() precedes the filters of each priority with a
	 * handle-0 message describing the priority itself; no filter. */
	if (tcm->tcm_handle == 0)
		return 0;

	f.ifindex = (uint32_t) tcm->tcm_ifindex;
	f.parent = tcm->tcm_parent;
	f.handle = tcm->tcm_handle;
	f.prio = TC_H_MAJ(tcm->tcm_info) >> 16;
	f.protocol = ntohs((uint16_t) TC_H_MIN(tcm->tcm_info));
	if (tb[TCA_KIND])
		nl_attr_copy_string(tb[TCA_KIND], f.kind, sizeof(f.kind));

	if (streq(f.kind, "bpf") && tb[TCA_OPTIONS]) {
		const struct nlattr *opts[TCA_BPF_MAX + 1] = {};

		r = nl_attr_parse_nested(tb[TCA_OPTIONS], bpf_policy, TCA_BPF_MAX, opts);
		if (r < 0)
			return r;
		if (opts[TCA_BPF_NAME])
			nl_attr_copy_string(opts[TCA_BPF_NAME], f.bpf_name, sizeof(f.bpf_name));
	}

	return ctx->cb(&f, ctx->userdata);
}

int nl_filter_dump(struct nl *nl, uint32_t ifindex, uint32_t parent, nl_filter_cb cb, void *userdata) {
	struct filter_dump_ctx ctx = { .ifindex = ifindex, .cb = cb, .userdata = userdata };

	/* tc_dump_tfilter() dumps the block of one qdisc/class of one device. */
	if (!nl || !cb || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	return nl_request(nl, nl_tc_message_new(nl, RTM_GETTFILTER, NLM_F_DUMP, ifindex, parent, 0, 0),
			  filter_dump_cb, &ctx);
}

int nl_filter_delete(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t prio) {
	/* Priority 0 would make the kernel flush the whole chain. Protocol 0
	 * matches the priority whatever its protocol (tcf_chain_tp_find()). */
	if (prio == 0 || prio > 0xffff)
		return -EINVAL;
	return tc_delete(nl, RTM_DELTFILTER, ifindex, parent, 0, TC_H_MAKE(prio << 16, 0));
}
