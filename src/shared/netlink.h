/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rtnetlink through libmnl: links, qdiscs, HTB classes and tc BPF filters.
 *
 * Every change is sent with NLM_F_ACK and NETLINK_EXT_ACK enabled; on failure
 * the function returns -errno and nl_extack() holds the kernel's message (or
 * "" when the kernel gave none) until the next request on that socket.
 * nl_error_extack() keeps the message of the last request that failed across
 * the requests that follow (the cleanup after a failure), until
 * nl_error_reset(). Nothing here logs.
 */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/netlink.h>

struct nl;

/* A request socket (synchronous request/ack and dumps). */
int nl_open(struct nl **ret);
/* A notification socket subscribed to RTNLGRP_LINK and to the IPv4 and
 * IPv6 address groups (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR: what
 * "lan" stands for follows the interfaces' subnets), non-blocking. */
int nl_open_link_monitor(struct nl **ret);
struct nl *nl_free(struct nl *nl);
int nl_fd(const struct nl *nl);
const char *nl_extack(const struct nl *nl);
/* The kernel's message of the last request that failed since
 * nl_error_reset() ("" when it gave none or none failed): what a caller that
 * undoes half a change reports, rather than the message of the undoing. */
const char *nl_error_extack(const struct nl *nl);
void nl_error_reset(struct nl *nl);

static inline void nl_freep(struct nl **p) {
	nl_free(*p);
}
#define _cleanup_nl_ __attribute__((cleanup(nl_freep)))

/* ---- links (nl-link.c) ---- */
struct nl_link {
	uint32_t ifindex;
	char name[IF_NAMESIZE];
	char kind[16];  /* IFLA_INFO_KIND, "" for physical devices */
	char alias[64]; /* IFLA_IFALIAS, "" if none */
	uint32_t flags; /* IFF_* */
	uint32_t mtu;
	bool loopback;  /* IFF_LOOPBACK */
	int32_t link_netnsid; /* IFLA_LINK_NETNSID: the id (in the dumping
	                       * namespace) of the one the link's peer is in,
	                       * -1 when none (same namespace, or no peer) */
};

typedef int (*nl_link_cb)(const struct nl_link *link, void *userdata);

int nl_link_dump(struct nl *nl, nl_link_cb cb, void *userdata);
int nl_link_get(struct nl *nl, uint32_t ifindex, struct nl_link *ret);
/* The id this namespace gives the network namespace of netns_fd (an open
 * /proc/PID/ns/net), as IFLA_LINK_NETNSID names it: -1 when it has none
 * (no link joins the two), RTM_GETNSID. */
int nl_netns_id(struct nl *nl, int netns_fd, int32_t *ret);
/* Fills ret from an RTM_NEWLINK/RTM_DELLINK message. */
int nl_link_parse(const struct nlmsghdr *nlh, struct nl_link *ret);
/* Creates an IFB device with that name and alias and brings it up. */
int nl_ifb_create(struct nl *nl, const char *name, const char *alias, uint32_t *ret_ifindex);
int nl_link_delete(struct nl *nl, uint32_t ifindex);

/* Reads every pending message on a monitor socket without blocking and calls
 * cb with type RTM_NEWLINK or RTM_DELLINK. Returns 0 when the socket is
 * drained, -ENOBUFS when the kernel dropped notifications (the caller must
 * resync by dump), other -errno on error. */
typedef int (*nl_link_event_cb)(uint16_t type, const struct nl_link *link, void *userdata);
int nl_link_monitor_receive(struct nl *nl, nl_link_event_cb cb, void *userdata);
/* The same, and addr_cb (may be NULL) called with RTM_NEWADDR or
 * RTM_DELADDR and the address family for each address notification. */
typedef int (*nl_addr_event_cb)(uint16_t type, uint8_t family, void *userdata);
int nl_monitor_receive(struct nl *nl, nl_link_event_cb cb, nl_addr_event_cb addr_cb, void *userdata);

/* ---- qdiscs (nl-qdisc.c, tc-htb.c, tc-fifo.c, tc-clsact.c) ---- */
struct nl_qdisc {
	uint32_t ifindex;
	uint32_t handle;
	uint32_t parent; /* TC_H_ROOT, TC_H_CLSACT (== TC_H_INGRESS), or a class */
	char kind[16];
};
typedef int (*nl_qdisc_cb)(const struct nl_qdisc *q, void *userdata);

/* All qdiscs of one interface (ifindex 0: of all interfaces). */
int nl_qdisc_dump(struct nl *nl, uint32_t ifindex, nl_qdisc_cb cb, void *userdata);
/* The root qdisc of one interface, passed to cb. */
int nl_qdisc_get_root(struct nl *nl, uint32_t ifindex, nl_qdisc_cb cb, void *userdata);
int nl_qdisc_delete(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t handle);

/* Root HTB qdisc "handle:" replacing whatever root is there, default class 0
 * (unclassified packets are sent directly, unshaped), direct_qlen as given. */
int nl_htb_qdisc_replace(struct nl *nl, uint32_t ifindex, uint32_t handle, uint32_t direct_qlen);
/* clsact qdisc; -EEXIST when the interface has one already. */
int nl_clsact_create(struct nl *nl, uint32_t ifindex);

struct nl_htb_class {
	uint64_t rate;    /* bytes per second; > 0 */
	uint64_t ceil;    /* bytes per second; 0: the rate */
	uint32_t burst;   /* bytes, for both burst and cburst */
	uint32_t quantum; /* bytes */
	uint32_t prio;    /* 0 is served first (0..7) */
};
/* Creates (create = true, NLM_F_CREATE|NLM_F_EXCL) or changes in place
 * (create = false, no flags: the class and its queue are kept) a class.
 * Rates above 2^32-1 bytes/s use TCA_HTB_RATE64/CEIL64. Linklayer ethernet,
 * so no rate table is sent. */
int nl_htb_class_set(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t classid,
		     const struct nl_htb_class *c, bool create);
int nl_class_delete(struct nl *nl, uint32_t ifindex, uint32_t classid);

struct nl_class_stats {
	uint32_t classid;
	uint32_t parent; /* classid of its parent, or the qdisc's handle at the top */
	uint64_t bytes;
	uint64_t packets;
	uint32_t drops;
	uint32_t overlimits;
	uint32_t backlog; /* bytes queued (class and leaf qdisc) */
	uint32_t qlen;
};
typedef int (*nl_class_cb)(const struct nl_class_stats *s, void *userdata);
int nl_class_dump(struct nl *nl, uint32_t ifindex, nl_class_cb cb, void *userdata);

/* Leaf qdisc under a class. */
enum nl_leaf_kind {
	NL_LEAF_FQ_CODEL, /* limit: packets; memory limit derived */
	NL_LEAF_BFIFO,    /* limit: bytes */
	NL_LEAF_PFIFO,    /* limit: packets */
	NL_LEAF_TBF,      /* the segmenting TBF below: limit, rate, burst */
};
int nl_leaf_qdisc_replace(struct nl *nl, uint32_t ifindex, uint32_t parent_classid, uint32_t handle,
			  enum nl_leaf_kind kind, uint32_t limit);

/* A TBF leaf (tc-tbf.c) that segments GSO packets longer than burst bytes
 * and queues single frames in its inner bfifo of limit bytes. rate (bytes/s)
 * is meant to be well above the parent class's, so that TBF never shapes:
 * it is there to split aggregates, HTB does the shaping. */
int nl_tbf_leaf_replace(struct nl *nl, uint32_t ifindex, uint32_t parent_classid, uint32_t handle, uint64_t rate,
			uint32_t burst, uint32_t limit);

/* ---- a batch of tc changes (tc-batch.c) ---- */

/* A leaf qdisc as a value. */
struct nl_leaf {
	enum nl_leaf_kind kind;
	uint32_t limit; /* packets (fq_codel, pfifo) or bytes (bfifo, TBF's inner bfifo) */
	uint64_t rate;  /* TBF: bytes per second */
	uint32_t burst; /* TBF: bytes */
};

enum nl_tc_op_kind {
	NL_TC_CLASS_NEW,    /* HTB class made (NLM_F_CREATE), or changed where it is already
			     * there (one a killed run or a failed attempt left) */
	NL_TC_CLASS_CHANGE, /* HTB class changed in place (its queue kept); -ENOENT if missing */
	NL_TC_CLASS_DEL,
	NL_TC_LEAF,         /* leaf qdisc grafted under a class (NLM_F_CREATE | NLM_F_REPLACE) */
};

/* One change of one tc object. */
struct nl_tc_op {
	enum nl_tc_op_kind kind;
	uint32_t ifindex;
	uint32_t parent; /* a class: its parent (classid, or the qdisc's handle); a leaf: its class */
	uint32_t handle; /* a class: its classid; a leaf: the qdisc's handle */
	struct nl_htb_class htb; /* NEW, CHANGE */
	struct nl_leaf leaf;     /* LEAF */
};

/* Sends ops in order, all in one buffer, as few sendmsg() as the socket's
 * buffers take (a chunk's acks must fit in the receive queue), each with
 * NLM_F_ACK and a sequence number of its own, then reads every ack and
 * matches it by sequence number. rtnetlink goes on with the requests after
 * one that failed: ret_errors[k] (may be NULL) is the verdict on ops[k].
 * Returns 0 when all succeeded, else the first failure's -errno, with its
 * index in *ret_failed and the kernel's message in nl_extack() and
 * nl_error_extack(). *ret_round_trips (may be NULL) counts the sendmsg()s. */
int nl_tc_batch(struct nl *nl, const struct nl_tc_op *ops, size_t n, int *ret_errors, size_t *ret_failed,
		unsigned *ret_round_trips);

/* ---- tc BPF filters (tc-bpf.c) ---- */
struct nl_filter {
	uint32_t ifindex;
	uint32_t parent;
	uint32_t prio;
	uint32_t handle;
	uint16_t protocol; /* host order ETH_P_* */
	char kind[16];
	char bpf_name[64]; /* TCA_BPF_NAME for kind "bpf" */
};
typedef int (*nl_filter_cb)(const struct nl_filter *f, void *userdata);

/* cls_bpf in direct-action mode, protocol ETH_P_ALL. */
int nl_bpf_filter_add(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t prio, uint32_t handle,
		      int prog_fd, const char *name);
/* The same filter with another program, in one step (the old one classifies
 * until the new one does). */
int nl_bpf_filter_replace(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t prio, uint32_t handle,
			  int prog_fd, const char *name);
int nl_filter_delete(struct nl *nl, uint32_t ifindex, uint32_t parent, uint32_t prio);
int nl_filter_dump(struct nl *nl, uint32_t ifindex, uint32_t parent, nl_filter_cb cb, void *userdata);
