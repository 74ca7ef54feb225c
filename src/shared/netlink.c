/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rtnetlink socket: open/close, one request/reply loop, attribute parsing. */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

/* Notifications come in bursts (a daemon start creating dozens of classes
 * and devices); ask for a roomy queue so a burst does not become ENOBUFS
 * and a full resync. The kernel caps SO_RCVBUF at rmem_max, so try the
 * privileged SO_RCVBUFFORCE first. */
#define NL_MONITOR_RCVBUF (4 * 1024 * 1024)
#define NL_REQUEST_RCVBUF (1024 * 1024)

static void mnl_socket_closep(struct mnl_socket **s) {
	if (*s)
		mnl_socket_close(*s);
}

struct nl *nl_free(struct nl *nl) {
	if (!nl)
		return NULL;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->rx);
	free(nl->tx);
	free(nl);
	return NULL;
}

static int nl_new(int sock_flags, unsigned groups, struct nl **ret) {
	_cleanup_(mnl_socket_closep) struct mnl_socket *sock = NULL;
	_cleanup_nl_ struct nl *nl = NULL;

	sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | sock_flags);
	if (!sock)
		return negative_errno();
	if (mnl_socket_bind(sock, groups, MNL_SOCKET_AUTOPID) < 0)
		return negative_errno();

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->rx = malloc(NL_RECV_BUFFER_SIZE);
	nl->tx = malloc(NL_SEND_BUFFER_SIZE);
	if (!nl->rx || !nl->tx)
		return -ENOMEM;
	nl->portid = mnl_socket_get_portid(sock);
	nl->sock = TAKE_PTR(sock);

	*ret = TAKE_PTR(nl);
	return 0;
}

int nl_open(struct nl **ret) {
	_cleanup_nl_ struct nl *nl = NULL;
	int one = 1, size = NL_REQUEST_RCVBUF, fd, r;

	if (!ret)
		return -EINVAL;

	r = nl_new(0, 0, &nl);
	if (r < 0)
		return r;

	/* Extended acks (Linux 4.12) carry the reason for a failure, which is
	 * all the user has to go on when e.g. HTB rejects a class. Without them
	 * errors are bare errnos; that is worse, not fatal. */
	if (mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one)) < 0 &&
	    errno != ENOPROTOOPT)
		return negative_errno();
	/* Do not echo our whole request back in every error: the extack TLVs
	 * then start right after struct nlmsgerr. */
	if (mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one)) < 0 &&
	    errno != ENOPROTOOPT)
		return negative_errno();
	/* Room for the acks of a batch (nl_tc_batch()); best effort, the
	 * batches are cut to fit the default queue too. */
	fd = mnl_socket_get_fd(nl->sock);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));

	*ret = TAKE_PTR(nl);
	return 0;
}

int nl_open_link_monitor(struct nl **ret) {
	_cleanup_nl_ struct nl *nl = NULL;
	int size = NL_MONITOR_RCVBUF, fd, r;

	if (!ret)
		return -EINVAL;

	/* The legacy group bitmask is fine for groups below 32: RTNLGRP_LINK
	 * (1), RTNLGRP_IPV4_IFADDR (5), RTNLGRP_IPV6_IFADDR (9). */
	r = nl_new(SOCK_NONBLOCK, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, &nl);
	if (r < 0)
		return r;

	/* Best effort: a small queue only means an earlier ENOBUFS. */
	fd = mnl_socket_get_fd(nl->sock);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));

	*ret = TAKE_PTR(nl);
	return 0;
}

int nl_fd(const struct nl *nl) {
	if (!nl || !nl->sock)
		return -EBADF;
	return mnl_socket_get_fd(nl->sock);
}

const char *nl_extack(const struct nl *nl) {
	return nl ? nl->extack : "";
}

const char *nl_error_extack(const struct nl *nl) {
	return nl ? nl->error_extack : "";
}

void nl_error_reset(struct nl *nl) {
	if (nl)
		nl->error_extack[0] = '\0';
}

struct nlmsghdr *nl_message_new(struct nl *nl, uint16_t type, uint16_t flags) {
	struct nlmsghdr *nlh;

	memset(nl->tx, 0, NL_SEND_BUFFER_SIZE);
	nlh = mnl_nlmsg_put_header(nl->tx);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	return nlh;
}

/* ---- attributes ---- */

struct attr_parse_ctx {
	const struct nl_attr_policy *policy;
	uint16_t max;
	const struct nlattr **tb;
};

static size_t attr_type_size(enum mnl_attr_data_type type) {
	switch (type) {
	case MNL_TYPE_U8:
		return sizeof(uint8_t);
	case MNL_TYPE_U16:
		return sizeof(uint16_t);
	case MNL_TYPE_U32:
		return sizeof(uint32_t);
	case MNL_TYPE_U64:
	case MNL_TYPE_MSECS:
		return sizeof(uint64_t);
	default:
		return 0;
	}
}

static int attr_parse_cb(const struct nlattr *attr, void *data) {
	const struct attr_parse_ctx *ctx = data;
	uint16_t type = mnl_attr_get_type(attr);
	const struct nl_attr_policy *p;
	size_t min;

	/* Newer kernels add attributes; they are not ours to judge. */
	if (mnl_attr_type_valid(attr, ctx->max) < 0)
		return MNL_CB_OK;

	p = &ctx->policy[type];
	if (mnl_attr_validate(attr, p->type) < 0)
		return MNL_CB_ERROR;
	/* Older libmnl only rejects integers that are too long, not too short. */
	min = attr_type_size(p->type);
	if (p->min_len > min)
		min = p->min_len;
	if (mnl_attr_get_payload_len(attr) < min) {
		errno = ERANGE;
		return MNL_CB_ERROR;
	}

	ctx->tb[type] = attr;
	return MNL_CB_OK;
}

int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nl_attr_policy *policy,
		  uint16_t max, const struct nlattr **tb) {
	struct attr_parse_ctx ctx = { .policy = policy, .max = max, .tb = tb };

	if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return -EBADMSG;
	if (mnl_attr_parse(nlh, hdrlen, attr_parse_cb, &ctx) < 0)
		return negative_errno();
	return 0;
}

int nl_attr_parse_nested(const struct nlattr *nest, const struct nl_attr_policy *policy, uint16_t max,
			 const struct nlattr **tb) {
	struct attr_parse_ctx ctx = { .policy = policy, .max = max, .tb = tb };

	if (mnl_attr_parse_nested(nest, attr_parse_cb, &ctx) < 0)
		return negative_errno();
	return 0;
}

void nl_attr_copy_string(const struct nlattr *attr, char *buf, size_t size) {
	const char *s = mnl_attr_get_payload(attr);
	size_t n;

	if (size == 0)
		return;
	n = strnlen(s, mnl_attr_get_payload_len(attr));
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* ---- request/reply ---- */

struct reply_ctx {
	struct nl *nl;
	nl_reply_cb cb;
	void *userdata;
	int error; /* first error seen; later callbacks are skipped */
};

static void reply_fail(struct reply_ctx *ctx, int error) {
	if (ctx->error == 0)
		ctx->error = error;
}

static const struct nl_attr_policy extack_policy[NLMSGERR_ATTR_MAX + 1] = {
	[NLMSGERR_ATTR_MSG] = { MNL_TYPE_NUL_STRING },
};

/* The TLVs of an ack or NLMSG_DONE start at offset off of its payload. A
 * malformed extack loses us the message, never the kernel's verdict. */
static void reply_parse_extack(struct reply_ctx *ctx, const struct nlmsghdr *nlh, size_t off) {
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {};
	struct attr_parse_ctx actx = { .policy = extack_policy, .max = NLMSGERR_ATTR_MAX, .tb = tb };
	size_t len = mnl_nlmsg_get_payload_len(nlh);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	off = MNL_ALIGN(off);
	if (off >= len)
		return;
	if (mnl_attr_parse_payload((const char *) mnl_nlmsg_get_payload(nlh) + off, len - off,
				   attr_parse_cb, &actx) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		nl_attr_copy_string(tb[NLMSGERR_ATTR_MSG], ctx->nl->extack, sizeof(ctx->nl->extack));
}

static int reply_error_cb(const struct nlmsghdr *nlh, void *data) {
	struct reply_ctx *ctx = data;
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err)) {
		reply_fail(ctx, -EBADMSG);
		return MNL_CB_STOP;
	}
	/* Without NETLINK_CAP_ACK (old kernels) our request follows the header. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && err->msg.nlmsg_len >= sizeof(struct nlmsghdr))
		off += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
	reply_parse_extack(ctx, nlh, off);

	if (err->error != 0)
		reply_fail(ctx, err->error < 0 ? err->error : -err->error);
	return MNL_CB_STOP;
}

static int reply_done_cb(const struct nlmsghdr *nlh, void *data) {
	struct reply_ctx *ctx = data;
	int error = 0;

	/* A dump that failed half-way ends in NLMSG_DONE with a negative errno
	 * (netlink_dump_done()), possibly followed by an extack. */
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(error)) {
		memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
		reply_parse_extack(ctx, nlh, sizeof(error));
	}
	if (error != 0)
		reply_fail(ctx, error < 0 ? error : -error);
	return MNL_CB_STOP;
}

static int reply_data_cb(const struct nlmsghdr *nlh, void *data) {
	struct reply_ctx *ctx = data;
	int r;

	if (ctx->error != 0 || !ctx->cb)
		return MNL_CB_OK;
	r = ctx->cb(nlh, ctx->userdata);
	if (r < 0)
		reply_fail(ctx, r);
	return MNL_CB_OK;
}

/* Not const: libmnl 1.0.4's mnl_cb_run2() takes a plain pointer. */
static mnl_cb_t reply_ctl_cbs[NLMSG_MIN_TYPE] = {
	[NLMSG_ERROR] = reply_error_cb,
	[NLMSG_DONE] = reply_done_cb,
};

static int request_run(struct nl *nl, struct nlmsghdr *nlh, nl_reply_cb cb, void *userdata) {
	struct reply_ctx ctx = { .nl = nl, .cb = cb, .userdata = userdata };
	bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	uint32_t seq;

	nl->extack[0] = '\0';

	/* Every non-dump request is acked so that the reply has a definite end
	 * and errors are never silent; dumps end in NLMSG_DONE instead. */
	nlh->nlmsg_flags |= NLM_F_REQUEST;
	if (!dump)
		nlh->nlmsg_flags |= NLM_F_ACK;
	/* Sequence 0 would switch off libmnl's sequence check. */
	if (++nl->seq == 0)
		++nl->seq;
	seq = nlh->nlmsg_seq = nl->seq;

	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return negative_errno();

	for (;;) {
		const struct nlmsghdr *m;
		ssize_t n;
		int len;

		n = mnl_socket_recvfrom(nl->sock, nl->rx, NL_RECV_BUFFER_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}

		len = (int) n;
		for (m = nl->rx; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
			bool last = m->nlmsg_type == NLMSG_ERROR || m->nlmsg_type == NLMSG_DONE;

			/* Leftovers of an exchange abandoned on a socket error: not
			 * ours, and no reason to fail this one. */
			if (!mnl_nlmsg_portid_ok(m, nl->portid) || !mnl_nlmsg_seq_ok(m, seq))
				continue;

			/* The object list changed under the dump: what we have is
			 * not a consistent snapshot. Read to the end regardless. */
			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				reply_fail(&ctx, -EAGAIN);
			else if (ctx.error == 0 || last) {
				/* One message at a time, so that we always know whether
				 * the one libmnl choked on was the last. */
				if (mnl_cb_run2(m, m->nlmsg_len, seq, nl->portid, reply_data_cb, &ctx,
						reply_ctl_cbs, ELEMENTSOF(reply_ctl_cbs)) < 0)
					reply_fail(&ctx, negative_errno());
			}

			if (last)
				return ctx.error;
		}
	}
}

uint32_t nl_seq_take(struct nl *nl, size_t n) {
	/* Sequence 0 would switch off libmnl's sequence check: a run that
	 * would reach it starts over at 1. */
	if (n >= UINT32_MAX / 2 || nl->seq > UINT32_MAX - n - 1)
		nl->seq = 0;
	nl->seq += (uint32_t) n;
	return nl->seq - (uint32_t) n + 1;
}

int nl_send_acked(struct nl *nl, const void *buf, size_t len, uint32_t seq, size_t n, int *errors) {
	size_t acked = 0;
	bool failed = false;

	nl->extack[0] = '\0';
	if (n == 0)
		return 0;
	for (size_t k = 0; k < n; k++)
		errors[k] = -EIO; /* until its ack says otherwise */
	if (mnl_socket_sendto(nl->sock, buf, len) < 0) {
		int r = negative_errno();
		for (size_t k = 0; k < n; k++)
			errors[k] = r;
		return r;
	}

	while (acked < n) {
		const struct nlmsghdr *m;
		ssize_t got;
		int left;

		got = mnl_socket_recvfrom(nl->sock, nl->rx, NL_RECV_BUFFER_SIZE);
		if (got < 0) {
			int r;
			if (errno == EINTR)
				continue;
			/* Acks lost (ENOBUFS): whatever was not acked may or
			 * may not have been done; it counts as failed. */
			r = negative_errno();
			for (size_t k = 0; k < n; k++)
				if (errors[k] == -EIO)
					errors[k] = r;
			return r;
		}
		left = (int) got;
		for (m = nl->rx; mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
			struct reply_ctx ctx = { .nl = nl };
			uint32_t k = m->nlmsg_seq - seq;
			char saved[NL_EXTACK_MAX];

			if (!mnl_nlmsg_portid_ok(m, nl->portid) || m->nlmsg_type != NLMSG_ERROR || k >= n ||
			    errors[k] != -EIO)
				continue; /* not one of ours, or not an ack */
			/* reply_error_cb() leaves the kernel's message in
			 * nl->extack: only the first failure's is kept. */
			memcpy(saved, nl->extack, sizeof(saved));
			(void) reply_error_cb(m, &ctx);
			errors[k] = ctx.error;
			acked++;
			if (ctx.error < 0 && !failed) {
				failed = true;
				memcpy(nl->error_extack, nl->extack, sizeof(nl->error_extack));
			} else
				memcpy(nl->extack, saved, sizeof(saved));
		}
	}
	return 0;
}

int nl_request(struct nl *nl, struct nlmsghdr *nlh, nl_reply_cb cb, void *userdata) {
	int r = request_run(nl, nlh, cb, userdata);

	if (r < 0)
		memcpy(nl->error_extack, nl->extack, sizeof(nl->error_extack));
	return r;
}
