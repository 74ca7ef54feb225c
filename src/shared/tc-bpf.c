/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cls_bpf filters in direct-action mode (net/sched/cls_bpf.c). Dumping and
 * deleting filters is kind-independent and lives in nl-qdisc.c. */

#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

static int filter_set(struct nl *nl, uint16_t flags, uint32_t ifindex, uint32_t parent, uint32_t prio,
		      uint32_t handle, int prog_fd, const char *name) {
	struct nlmsghdr *nlh;
	struct nlattr *opts;

	if (!nl || ifindex == 0 || ifindex > INT32_MAX || prio > 0xffff)
		return -EINVAL;
	if (prog_fd < 0)
		return -EBADF;
	/* cls_bpf keeps the name for dumps only; keep it within what
	 * nl_filter.bpf_name can give back. */
	if (name && strlen(name) >= sizeof(((struct nl_filter *) NULL)->bpf_name))
		return -ENAMETOOLONG;

	/* tcm_info: priority in the upper 16 bits, protocol (network order)
	 * in the lower; ETH_P_ALL so the program sees every frame. */
	nlh = nl_tc_message_new(nl, RTM_NEWTFILTER, flags, ifindex, parent, handle,
				TC_H_MAKE(prio << 16, htons(ETH_P_ALL)));
	mnl_attr_put_strz(nlh, TCA_KIND, "bpf");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put_u32(nlh, TCA_BPF_FD, (uint32_t) prog_fd);
	if (name && name[0] != '\0')
		mnl_attr_put_strz(nlh, TCA_BPF_NAME, name);
	/* Direct action: the program's return code is the verdict, no
	 * separate tc action needed. */
	mnl_attr_put_u32(nlh, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
	mnl_attr_nest_end(nlh, opts);

	return nl_request(nl, nlh, NULL, NULL);
}

int nl_bpf_filter_add(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t prio, uint32_t handle,
		      int prog_fd, const char *name) {
	return filter_set(nl, NLM_F_CREATE | NLM_F_EXCL, ifindex, parent, prio, handle, prog_fd, name);
}

int nl_bpf_filter_replace(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t prio, uint32_t handle,
			  int prog_fd, const char *name) {
	return filter_set(nl, NLM_F_CREATE | NLM_F_REPLACE, ifindex, parent, prio, handle, prog_fd, name);
}
