/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * TBF as a segmenting leaf (net/sched/sch_tbf.c). tbf_enqueue() splits a GSO
 * packet longer than the bucket into its segments (tbf_segment()), so the
 * FIFO that TBF keeps inside holds and drops single frames. Under an HTB
 * class on an IFB, where received aggregates of up to 64 KiB arrive whole,
 * this turns a tail drop from "lose 44 segments at once" into "lose one",
 * which TCP recovers from without stalling.
 */

#include <errno.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

int nl_tbf_leaf_put(void *buf, uint32_t ifindex, uint32_t parent_classid, uint32_t handle, uint64_t rate,
		    uint32_t burst, uint32_t limit, struct nlmsghdr **ret) {
	struct tc_tbf_qopt qopt = {
		.rate.rate = rate > UINT32_MAX ? UINT32_MAX : (uint32_t)rate,
		.rate.linklayer = TC_LINKLAYER_ETHERNET,
		.limit = limit,
	};
	struct nlmsghdr *nlh;
	struct nlattr *opts;

	if (!buf || ifindex == 0 || ifindex > INT32_MAX || rate == 0 || burst == 0 || limit == 0)
		return -EINVAL;
	if (TC_H_MIN(parent_classid) == 0 || TC_H_MAJ(handle) == 0 || TC_H_MIN(handle) != 0)
		return -EINVAL;

	nlh = nl_tc_message_put(buf, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, ifindex, parent_classid, handle, 0);
	mnl_attr_put_strz(nlh, TCA_KIND, "tbf");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_TBF_PARMS, sizeof(qopt), &qopt);
	if (rate > UINT32_MAX)
		mnl_attr_put_u64(nlh, TCA_TBF_RATE64, rate);
	/* TCA_TBF_BURST (bytes) makes the kernel derive the bucket time from
	 * the rate itself: no psched tick arithmetic here. */
	mnl_attr_put_u32(nlh, TCA_TBF_BURST, burst);
	mnl_attr_nest_end(nlh, opts);
	*ret = nlh;
	return 0;
}

int nl_tbf_leaf_replace(struct nl *nl, uint32_t ifindex, uint32_t parent_classid, uint32_t handle, uint64_t rate,
			uint32_t burst, uint32_t limit) {
	struct nlmsghdr *nlh;
	int r;

	if (!nl)
		return -EINVAL;
	nl_message_new(nl, RTM_NEWQDISC, 0);
	r = nl_tbf_leaf_put(nl->tx, ifindex, parent_classid, handle, rate, burst, limit, &nlh);
	if (r < 0)
		return r;
	return nl_request(nl, nlh, NULL, NULL);
}
