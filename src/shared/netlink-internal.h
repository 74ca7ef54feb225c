/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the rtnetlink files (netlink.c, nl-*.c, tc-*.c): the socket
 * object, request building, the request/ack/dump loop and attribute parsing.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <libmnl/libmnl.h>

#include "netlink.h"

/* netlink_dump() sizes each dump skb after the largest buffer this socket
 * has ever passed to recvmsg() (nlk->max_recvmsg_len, capped at 32 KiB), so
 * a 32 KiB buffer lets one recv carry many HTB classes with their stats
 * and never truncates (MSG_TRUNC) a message the kernel built for us. */
#define NL_RECV_BUFFER_SIZE (32u * 1024u)
/* Our requests are a header, a fixed struct and a few short attributes. */
#define NL_SEND_BUFFER_SIZE 4096u
/* Kernel extack strings are short literals (NL_SET_ERR_MSG). */
#define NL_EXTACK_MAX 256u

struct nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	void *rx;                    /* NL_RECV_BUFFER_SIZE bytes */
	void *tx;                    /* NL_SEND_BUFFER_SIZE bytes */
	char extack[NL_EXTACK_MAX]; /* NLMSGERR_ATTR_MSG of the last reply, "" if none */
	char error_extack[NL_EXTACK_MAX]; /* extack of the last request that failed */
};

/* Called for every data message of the reply (not for acks or NLMSG_DONE).
 * Return >= 0 to go on, -errno to fail the request; the rest of the reply is
 * still read (and dropped) so the socket stays in step. */
typedef int (*nl_reply_cb)(const struct nlmsghdr *nlh, void *userdata);

/* A zeroed message of that type in nl's send buffer. */
struct nlmsghdr *nl_message_new(struct nl *nl, uint16_t type, uint16_t flags);

/* Sends nlh (adding NLM_F_REQUEST, a new sequence number, and NLM_F_ACK
 * unless it is a dump) and reads the reply up to its ack or NLMSG_DONE.
 * Returns the first error of: the kernel's ack or NLMSG_DONE status, cb's,
 * -EAGAIN when a dump was interrupted (NLM_F_DUMP_INTR; the caller may
 * retry), socket errors. nl->extack is reset here and filled from the reply. */
int nl_request(struct nl *nl, struct nlmsghdr *nlh, nl_reply_cb cb, void *userdata);

/* What an attribute must look like; an entry left zero accepts anything.
 * min_len is checked on top of the type's own size (for structs whose
 * length changes between kernels, like gnet_stats_basic). */
struct nl_attr_policy {
	enum mnl_attr_data_type type;
	uint16_t min_len;
};

/* Validate the attributes after a fixed header of hdrlen bytes (or inside a
 * nest) against policy[0..max] and store them in tb[0..max], which the
 * caller zeroes. Attributes above max (newer kernels) are skipped. */
int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nl_attr_policy *policy,
		  uint16_t max, const struct nlattr **tb);
int nl_attr_parse_nested(const struct nlattr *nest, const struct nl_attr_policy *policy, uint16_t max,
			 const struct nlattr **tb);

/* Copies a string attribute into buf, always NUL-terminated, truncated to
 * size - 1 bytes; the attribute need not carry a NUL. */
void nl_attr_copy_string(const struct nlattr *attr, char *buf, size_t size);

/* An RTM_*QDISC/TCLASS/TFILTER message with its struct tcmsg (nl-qdisc.c). */
struct nlmsghdr *nl_tc_message_new(struct nl *nl, uint16_t type, uint16_t flags, uint32_t ifindex,
				   uint32_t parent, uint32_t handle, uint32_t info);
/* The same message at buf (at least NL_SEND_BUFFER_SIZE bytes), which need
 * not be zeroed: a batch puts one after the other. */
struct nlmsghdr *nl_tc_message_put(void *buf, uint16_t type, uint16_t flags, uint32_t ifindex, uint32_t parent,
				   uint32_t handle, uint32_t info);

/* The HTB class message of nl_htb_class_set() at buf, with these flags
 * (NLM_F_CREATE [| NLM_F_EXCL], or none to change in place) (tc-htb.c). */
int nl_htb_class_put(void *buf, uint32_t ifindex, uint32_t parent, uint32_t classid, const struct nl_htb_class *c,
		     uint16_t flags, struct nlmsghdr **ret);
/* The leaf qdisc message at buf: fq_codel and the fifos (tc-fifo.c), the
 * segmenting TBF (tc-tbf.c). */
int nl_leaf_put(void *buf, uint32_t ifindex, uint32_t parent_classid, uint32_t handle, const struct nl_leaf *leaf,
		struct nlmsghdr **ret);
int nl_tbf_leaf_put(void *buf, uint32_t ifindex, uint32_t parent_classid, uint32_t handle, uint64_t rate,
		    uint32_t burst, uint32_t limit, struct nlmsghdr **ret);

/* Sends len bytes of n requests numbered seq, seq + 1, ... (each with
 * NLM_F_REQUEST | NLM_F_ACK) in one sendmsg and reads their n acks:
 * errors[k] is the kernel's verdict on request k (0 or -errno). Returns 0
 * once every ack is read (whatever they say), -errno if the socket failed
 * (the requests not acked then keep that error). The extack of the first
 * request that failed goes to nl->extack and nl->error_extack. */
int nl_send_acked(struct nl *nl, const void *buf, size_t len, uint32_t seq, size_t n, int *errors);
/* n sequence numbers in a row for a batch, never 0; the first returned. */
uint32_t nl_seq_take(struct nl *nl, size_t n);
