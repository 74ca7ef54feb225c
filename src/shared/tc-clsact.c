/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clsact: the hook for ingress/egress tc BPF (net/sched/sch_ingress.c). */

#include <errno.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

int nl_clsact_create(struct nl *nl, uint32_t ifindex) {
	struct nlmsghdr *nlh;

	if (!nl || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;

	/* NLM_F_EXCL: an existing clsact may carry someone else's filters,
	 * so never take it over silently; the caller sees -EEXIST. */
	nlh = nl_tc_message_new(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex, TC_H_CLSACT,
				TC_H_MAKE(TC_H_CLSACT, 0), 0);
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	return nl_request(nl, nlh, NULL, NULL);
}
