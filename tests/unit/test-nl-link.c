/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nl_link_parse() on crafted RTM_NEWLINK messages (no kernel, no root): the
 * peer namespace id of a link into another network namespace, which
 * netbumpd follows (src/netbumpd/netns.c).
 */

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>

#include "netlink.h"
#include "tests.h"

static struct nlmsghdr *link_msg(char *buf, const char *name, bool with_nsid, int32_t nsid) {
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = 7;
	ifi->ifi_flags = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_MTU, 1500);
	if (with_nsid)
		mnl_attr_put_u32(nlh, IFLA_LINK_NETNSID, (uint32_t)nsid);
	return nlh;
}

int main(void) {
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_link l;

	/* a veth whose peer is in namespace 3 (nspawn's ve-NAME) */
	ASSERT_OK(nl_link_parse(link_msg(buf, "ve-c1", true, 3), &l));
	ASSERT_EQ(l.ifindex, 7u);
	ASSERT_STREQ(l.name, "ve-c1");
	ASSERT_EQ(l.link_netnsid, 3);

	/* no attribute: same namespace or no peer */
	ASSERT_OK(nl_link_parse(link_msg(buf, "eth0", false, 0), &l));
	ASSERT_EQ(l.link_netnsid, -1);

	/* id 0 is a namespace like any other */
	ASSERT_OK(nl_link_parse(link_msg(buf, "veth-a", true, 0), &l));
	ASSERT_EQ(l.link_netnsid, 0);

	/* NETNSA_NSID_NOT_ASSIGNED stays "none" */
	ASSERT_OK(nl_link_parse(link_msg(buf, "veth-x", true, -1), &l));
	ASSERT_EQ(l.link_netnsid, -1);
	return 0;
}
