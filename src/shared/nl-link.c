/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Links: dump, get, parse, IFB devices, and the RTNLGRP_LINK monitor. */

#include <errno.h>
#include <string.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

/* IFLA_IFALIAS is up to IFALIASZ (256) bytes in the kernel; struct nl_link
 * keeps 64, and nl_ifb_create() refuses longer ones, so an alias we set
 * always round-trips. */
#define NL_ALIAS_MAX (sizeof(((struct nl_link *) NULL)->alias) - 1)

static const struct nl_attr_policy link_policy[IFLA_MAX + 1] = {
	[IFLA_IFNAME] = { MNL_TYPE_STRING },
	[IFLA_MTU] = { MNL_TYPE_U32 },
	/* Binary: an empty alias must not make the whole link unreadable. */
	[IFLA_IFALIAS] = { MNL_TYPE_BINARY },
	[IFLA_LINKINFO] = { MNL_TYPE_NESTED },
	[IFLA_LINK_NETNSID] = { MNL_TYPE_U32 },
};

static const struct nl_attr_policy linkinfo_policy[IFLA_INFO_MAX + 1] = {
	[IFLA_INFO_KIND] = { MNL_TYPE_STRING },
};

int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *ret) {
	const struct nlattr *tb[IFLA_MAX + 1] = {};
	const struct ifinfomsg *ifi;
	struct nl_link link = {};
	int r;

	if (!nlh || !ret)
		return -EINVAL;
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return -EBADMSG;

	r = nl_attr_parse(nlh, sizeof(*ifi), link_policy, IFLA_MAX, tb);
	if (r < 0)
		return r;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index <= 0 || !tb[IFLA_IFNAME])
		return -EBADMSG;

	link.ifindex = (uint32_t) ifi->ifi_index;
	/* Signed: the kernel puts -1 (NETNSA_NSID_NOT_ASSIGNED) where it has
	 * no id; a peer in another namespace always gets one in a dump
	 * (rtnl_fill_link_netnsid() allocates it). */
	link.link_netnsid = tb[IFLA_LINK_NETNSID] ? (int32_t)mnl_attr_get_u32(tb[IFLA_LINK_NETNSID]) : -1;
	link.flags = ifi->ifi_flags;
	link.loopback = ifi->ifi_flags & IFF_LOOPBACK;
	nl_attr_copy_string(tb[IFLA_IFNAME], link.name, sizeof(link.name));
	if (tb[IFLA_MTU])
		link.mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_IFALIAS])
		nl_attr_copy_string(tb[IFLA_IFALIAS], link.alias, sizeof(link.alias));
	if (tb[IFLA_LINKINFO]) {
		const struct nlattr *info[IFLA_INFO_MAX + 1] = {};

		r = nl_attr_parse_nested(tb[IFLA_LINKINFO], linkinfo_policy, IFLA_INFO_MAX, info);
		if (r < 0)
			return r;
		if (info[IFLA_INFO_KIND])
			nl_attr_copy_string(info[IFLA_INFO_KIND], link.kind, sizeof(link.kind));
	}

	*ret = link;
	return 0;
}

static struct nlmsghdr *link_message_new(struct nl *nl, uint16_t type, uint16_t flags, uint32_t ifindex) {
	struct nlmsghdr *nlh = nl_message_new(nl, type, flags);
	struct ifinfomsg *ifi;

	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int) ifindex;
	return nlh;
}

struct link_dump_ctx {
	nl_link_cb cb;
	void *userdata;
};

static int link_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
	struct link_dump_ctx *ctx = userdata;
	struct nl_link link;
	int r;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	r = nl_link_parse(nlh, &link);
	if (r < 0)
		return r;
	return ctx->cb(&link, ctx->userdata);
}

int nl_link_dump(struct nl *nl, nl_link_cb cb, void *userdata) {
	struct link_dump_ctx ctx = { .cb = cb, .userdata = userdata };

	if (!nl || !cb)
		return -EINVAL;
	return nl_request(nl, link_message_new(nl, RTM_GETLINK, NLM_F_DUMP, 0), link_dump_cb, &ctx);
}

struct link_get_ctx {
	struct nl_link link;
	bool found;
};

static int link_get_cb(const struct nlmsghdr *nlh, void *userdata) {
	struct link_get_ctx *ctx = userdata;
	int r;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	r = nl_link_parse(nlh, &ctx->link);
	if (r < 0)
		return r;
	ctx->found = true;
	return 0;
}

static int link_get(struct nl *nl, struct nlmsghdr *nlh, struct nl_link *ret) {
	struct link_get_ctx ctx = {};
	int r;

	r = nl_request(nl, nlh, link_get_cb, &ctx);
	if (r < 0)
		return r;
	if (!ctx.found)
		return -ENODEV;
	*ret = ctx.link;
	return 0;
}

int nl_link_get(struct nl *nl, uint32_t ifindex, struct nl_link *ret) {
	if (!nl || !ret || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	return link_get(nl, link_message_new(nl, RTM_GETLINK, 0, ifindex), ret);
}

static int link_get_by_name(struct nl *nl, const char *name, struct nl_link *ret) {
	struct nlmsghdr *nlh = link_message_new(nl, RTM_GETLINK, 0, 0);

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return link_get(nl, nlh, ret);
}

/* Sets the alias too: rtnl_newlink() ignores IFLA_IFALIAS when it creates
 * a device (only do_setlink() applies it), so a monitor sees the new device
 * once without its alias and then again, up and with it. */
static int link_set_up(struct nl *nl, uint32_t ifindex, const char *alias) {
	struct nlmsghdr *nlh = link_message_new(nl, RTM_NEWLINK, 0, ifindex);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = IFF_UP;
	if (alias && alias[0] != '\0')
		mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
	return nl_request(nl, nlh, NULL, NULL);
}

int nl_link_delete(struct nl *nl, uint32_t ifindex) {
	if (!nl || ifindex == 0 || ifindex > INT32_MAX)
		return -EINVAL;
	return nl_request(nl, link_message_new(nl, RTM_DELLINK, 0, ifindex), NULL, NULL);
}

/* Undoes a half-made device (by ifindex, or by name when we have none)
 * while keeping the extack of the failure, not of the cleanup. */
static void link_delete_quietly(struct nl *nl, uint32_t ifindex, const char *name) {
	char saved[NL_EXTACK_MAX];
	struct nlmsghdr *nlh;

	memcpy(saved, nl->extack, sizeof(saved));
	nlh = link_message_new(nl, RTM_DELLINK, 0, ifindex);
	if (ifindex == 0)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	(void) nl_request(nl, nlh, NULL, NULL);
	memcpy(nl->extack, saved, sizeof(saved));
}

int nl_ifb_create(struct nl *nl, const char *name, const char *alias, uint32_t *ret_ifindex) {
	struct nl_link link;
	struct nlmsghdr *nlh;
	struct nlattr *info;
	int r;

	if (!nl || !name || name[0] == '\0' || strlen(name) >= IF_NAMESIZE)
		return -EINVAL;
	if (alias && strlen(alias) > NL_ALIAS_MAX)
		return -ENAMETOOLONG;

	nlh = link_message_new(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "ifb");
	mnl_attr_nest_end(nlh, info);

	r = nl_request(nl, nlh, NULL, NULL);
	if (r < 0)
		return r;

	/* RTM_NEWLINK acks carry no ifindex; ask by the (unique) name. */
	r = link_get_by_name(nl, name, &link);
	if (r < 0) {
		link_delete_quietly(nl, 0, name);
		return r;
	}
	r = link_set_up(nl, link.ifindex, alias);
	if (r < 0) {
		link_delete_quietly(nl, link.ifindex, NULL);
		return r;
	}

	if (ret_ifindex)
		*ret_ifindex = link.ifindex;
	return 0;
}

/* ---- monitor ---- */

struct monitor_ctx {
	nl_link_event_cb cb;
	nl_addr_event_cb addr_cb;
	void *userdata;
	int error;
};

static int monitor_msg_cb(const struct nlmsghdr *nlh, void *data) {
	struct monitor_ctx *ctx = data;
	struct nl_link link;
	int r;

	if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR) {
		const struct ifaddrmsg *ifa;

		if (!ctx->addr_cb || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
			return MNL_CB_OK;
		ifa = mnl_nlmsg_get_payload(nlh);
		r = ctx->addr_cb(nlh->nlmsg_type, ifa->ifa_family, ctx->userdata);
		if (r < 0) {
			ctx->error = r;
			return MNL_CB_ERROR;
		}
		return MNL_CB_OK;
	}
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	/* An unparsable notification is skipped rather than wedging the
	 * monitor: the next dump-based resync covers it. */
	if (nl_link_parse(nlh, &link) < 0)
		return MNL_CB_OK;
	r = ctx->cb(nlh->nlmsg_type, &link, ctx->userdata);
	if (r < 0) {
		ctx->error = r;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

int nl_link_monitor_receive(struct nl *nl, nl_link_event_cb cb, void *userdata) {
	return nl_monitor_receive(nl, cb, NULL, userdata);
}

int nl_monitor_receive(struct nl *nl, nl_link_event_cb cb, nl_addr_event_cb addr_cb, void *userdata) {
	struct monitor_ctx ctx = { .cb = cb, .addr_cb = addr_cb, .userdata = userdata };
	bool overrun = false;

	if (!nl || !cb)
		return -EINVAL;

	for (;;) {
		ssize_t n;

		/* The socket is O_NONBLOCK (nl_open_link_monitor()). */
		n = mnl_socket_recvfrom(nl->sock, nl->rx, NL_RECV_BUFFER_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* The kernel dropped notifications. Keep draining so the
			 * caller's resync starts from an empty queue. */
			if (errno == ENOBUFS) {
				overrun = true;
				continue;
			}
			return negative_errno();
		}

		/* Notifications carry sequence 0 and port 0: no checks to make. */
		if (mnl_cb_run(nl->rx, (size_t) n, 0, 0, monitor_msg_cb, &ctx) < 0)
			return ctx.error < 0 ? ctx.error : negative_errno();
	}

	return overrun ? -ENOBUFS : 0;
}

/* ---- namespace ids ---- */

static int nsid_cb(const struct nlmsghdr *nlh, void *userdata) {
	static const struct nl_attr_policy policy[NETNSA_MAX + 1] = {
		[NETNSA_NSID] = { MNL_TYPE_U32 },
	};
	const struct nlattr *tb[NETNSA_MAX + 1] = {};
	int32_t *ret = userdata;
	int r;

	if (nlh->nlmsg_type != RTM_NEWNSID)
		return 0;
	r = nl_attr_parse(nlh, sizeof(struct rtgenmsg), policy, NETNSA_MAX, tb);
	if (r < 0)
		return r;
	if (tb[NETNSA_NSID])
		*ret = (int32_t)mnl_attr_get_u32(tb[NETNSA_NSID]);
	return 0;
}

int nl_netns_id(struct nl *nl, int netns_fd, int32_t *ret) {
	struct nlmsghdr *nlh;
	struct rtgenmsg *g;
	int32_t id = -1;
	int r;

	if (!nl || netns_fd < 0 || !ret)
		return -EINVAL;
	nlh = nl_message_new(nl, RTM_GETNSID, 0);
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)netns_fd);
	r = nl_request(nl, nlh, nsid_cb, &id);
	if (r < 0)
		return r;
	*ret = id;
	return 0;
}
