/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Leaf qdiscs under HTB classes: fq_codel, or bfifo/pfifo where the kernel
 * lacks it (net/sched/sch_fq_codel.c, net/sched/sch_fifo.c). */

#include <errno.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

/* fq_codel's memory limit counts skb truesize, not packet length. A full
 * frame usually sits in a page-sized buffer, so allow a page per packet:
 * then the packet limit, which the caller chose, is what binds. */
#define FQ_CODEL_BYTES_PER_PACKET 4096u

static uint32_t fq_codel_memory_limit(uint32_t limit) {
	uint64_t bytes = (uint64_t) limit * FQ_CODEL_BYTES_PER_PACKET;

	return bytes > UINT32_MAX ? UINT32_MAX : (uint32_t) bytes;
}

int nl_leaf_put(void *buf, uint32_t ifindex, uint32_t parent_classid, uint32_t handle, const struct nl_leaf *leaf,
		struct nlmsghdr **ret) {
	struct nlmsghdr *nlh;

	if (!buf || !leaf || ifindex == 0 || ifindex > INT32_MAX || leaf->limit == 0)
		return -EINVAL;
	if (TC_H_MIN(parent_classid) == 0 || TC_H_MAJ(handle) == 0 || TC_H_MIN(handle) != 0)
		return -EINVAL;
	if (leaf->kind == NL_LEAF_TBF)
		return nl_tbf_leaf_put(buf, ifindex, parent_classid, handle, leaf->rate, leaf->burst, leaf->limit, ret);

	/* NLM_F_REPLACE grafts the new qdisc in place of the class's current
	 * leaf. A leaf with this same handle is changed instead, which the
	 * kernel refuses with -EINVAL when the kind differs. */
	nlh = nl_tc_message_put(buf, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, ifindex, parent_classid, handle, 0);

	switch (leaf->kind) {
	case NL_LEAF_FQ_CODEL: {
		struct nlattr *opts;

		mnl_attr_put_strz(nlh, TCA_KIND, "fq_codel");
		opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
		mnl_attr_put_u32(nlh, TCA_FQ_CODEL_LIMIT, leaf->limit);
		mnl_attr_put_u32(nlh, TCA_FQ_CODEL_MEMORY_LIMIT, fq_codel_memory_limit(leaf->limit));
		mnl_attr_nest_end(nlh, opts);
		break;
	}
	case NL_LEAF_BFIFO:
	case NL_LEAF_PFIFO: {
		/* The fifos take a bare struct as TCA_OPTIONS, not a nest. */
		struct tc_fifo_qopt qopt = { .limit = leaf->limit };

		mnl_attr_put_strz(nlh, TCA_KIND, leaf->kind == NL_LEAF_BFIFO ? "bfifo" : "pfifo");
		mnl_attr_put(nlh, TCA_OPTIONS, sizeof(qopt), &qopt);
		break;
	}
	default:
		return -EINVAL;
	}
	*ret = nlh;
	return 0;
}

int nl_leaf_qdisc_replace(struct nl *nl, uint32_t ifindex, uint32_t parent_classid, uint32_t handle,
			  enum nl_leaf_kind kind, uint32_t limit) {
	struct nl_leaf leaf = { .kind = kind, .limit = limit };
	struct nlmsghdr *nlh;
	int r;

	if (!nl || kind == NL_LEAF_TBF)
		return -EINVAL;
	nl_message_new(nl, RTM_NEWQDISC, 0);
	r = nl_leaf_put(nl->tx, ifindex, parent_classid, handle, &leaf, &nlh);
	if (r < 0)
		return r;
	return nl_request(nl, nlh, NULL, NULL);
}
