/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NETLINK_SOCK_DIAG: inet_diag dumps of TCP and UDP sockets through libmnl. */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/tcp.h>
#include <stddef.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "macro.h"
#include "sock-diag.h"

/* As for rtnetlink (netlink-internal.h): netlink_dump() sizes its skbs after
 * the largest buffer we ever passed to recvmsg(), capped at 32 KiB, so this
 * size takes whole dump batches and never gets a truncated message. */
#define SOCK_DIAG_RECV_BUFFER_SIZE (32u * 1024u)

/* How often sock_diag_find_inode() runs the scan again when a dump that did
 * not show the socket was flagged NLM_F_DUMP_INTR. */
#define SOCK_DIAG_FIND_TRIES 3

struct sock_diag {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	void *rx; /* SOCK_DIAG_RECV_BUFFER_SIZE bytes */
	bool want_bytes;
};

void sock_diag_want_bytes(struct sock_diag *d, bool on) {
	d->want_bytes = on;
}

static const struct {
	uint8_t family;
	uint8_t protocol;
} dump_kinds[] = {
	{ AF_INET, IPPROTO_TCP },
	{ AF_INET6, IPPROTO_TCP },
	{ AF_INET, IPPROTO_UDP },
	{ AF_INET6, IPPROTO_UDP },
};

static void mnl_socket_closep(struct mnl_socket **s) {
	if (*s)
		mnl_socket_close(*s);
}

struct sock_diag *sock_diag_free(struct sock_diag *d) {
	if (!d)
		return NULL;
	if (d->sock)
		mnl_socket_close(d->sock);
	free(d->rx);
	free(d);
	return NULL;
}

int sock_diag_open(struct sock_diag **ret) {
	_cleanup_(mnl_socket_closep) struct mnl_socket *sock = NULL;
	_cleanup_sock_diag_ struct sock_diag *d = NULL;

	if (!ret)
		return -EINVAL;

	sock = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!sock)
		return negative_errno();
	if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0)
		return negative_errno();

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->rx = malloc(SOCK_DIAG_RECV_BUFFER_SIZE);
	if (!d->rx)
		return -ENOMEM;
	d->portid = mnl_socket_get_portid(sock);
	d->sock = TAKE_PTR(sock);

	*ret = TAKE_PTR(d);
	return 0;
}

/* ---- parsing ---- */

/* The attributes we read; everything else (INET_DIAG_INFO, SHUTDOWN, ...)
 * passes unchecked. */
static const enum mnl_attr_data_type diag_policy[INET_DIAG_MAX + 1] = {
	[INET_DIAG_CGROUP_ID] = MNL_TYPE_U64,
	[INET_DIAG_INFO] = MNL_TYPE_BINARY,
};

static int diag_attr_cb(const struct nlattr *attr, void *data) {
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);

	/* Attributes newer than our headers are not ours to judge. */
	if (mnl_attr_type_valid(attr, INET_DIAG_MAX) < 0)
		return MNL_CB_OK;
	if (diag_policy[type] == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;
	if (mnl_attr_validate(attr, diag_policy[type]) < 0)
		return MNL_CB_ERROR;
	tb[type] = attr;
	return MNL_CB_OK;
}

static int diag_parse(const struct nlmsghdr *nlh, uint8_t protocol, struct sock_info *ret) {
	const struct nlattr *tb[INET_DIAG_MAX + 1] = {};
	const struct inet_diag_msg *msg;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*msg))
		return -EBADMSG;
	if (mnl_attr_parse(nlh, sizeof(*msg), diag_attr_cb, tb) < 0)
		return negative_errno();
	msg = mnl_nlmsg_get_payload(nlh);

	/* The cookie words are in host order, low word first: see
	 * sock_diag_save_cookie() in net/core/sock_diag.c. */
	*ret = (struct sock_info) {
		.cookie = (uint64_t) msg->id.idiag_cookie[0] | (uint64_t) msg->id.idiag_cookie[1] << 32,
		.inode = msg->idiag_inode,
		.uid = msg->idiag_uid,
		.cgroup_id = tb[INET_DIAG_CGROUP_ID] ? mnl_attr_get_u64(tb[INET_DIAG_CGROUP_ID]) : 0,
		.family = msg->idiag_family,
		/* inet_diag_msg has no protocol field: it is the one we asked for. */
		.protocol = protocol,
		.state = msg->idiag_state,
		.sport = ntohs(msg->id.idiag_sport),
		.dport = ntohs(msg->id.idiag_dport),
	};
	memcpy(ret->src, msg->id.idiag_src, sizeof(ret->src));
	memcpy(ret->dst, msg->id.idiag_dst, sizeof(ret->dst));
	/* tcp_info grew over the years: the counters only where it is long
	 * enough to have them (4.2 on). */
	if (protocol == IPPROTO_TCP && tb[INET_DIAG_INFO] &&
	    mnl_attr_get_payload_len(tb[INET_DIAG_INFO]) >=
		    offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(uint64_t)) {
		struct tcp_info ti = {};

		memcpy(&ti, mnl_attr_get_payload(tb[INET_DIAG_INFO]),
		       (size_t)mnl_attr_get_payload_len(tb[INET_DIAG_INFO]) < sizeof(ti)
			       ? (size_t)mnl_attr_get_payload_len(tb[INET_DIAG_INFO])
			       : sizeof(ti));
		ret->has_bytes = true;
		/* The acknowledged SYN counts one (it takes a sequence
		 * number): data only. */
		ret->bytes_sent = ti.tcpi_bytes_acked > 0 ? ti.tcpi_bytes_acked - 1 : 0;
		ret->bytes_received = ti.tcpi_bytes_received;
	}
	return 0;
}

/* ---- one dump ---- */

struct dump_state {
	int result;       /* first error or stop value; once set, cb is not called */
	bool interrupted; /* some message carried NLM_F_DUMP_INTR */
	bool done;        /* NLMSG_DONE or NLMSG_ERROR seen */
};

static void dump_set_result(struct dump_state *st, int r) {
	if (st->result == 0)
		st->result = r;
}

/* NLMSG_DONE carries an int: 0, or the errno of a dump that failed half-way
 * (netlink_dump_done()). NLMSG_ERROR carries struct nlmsgerr: the kernel
 * refused the request (e.g. -ENOENT without a handler for the protocol). */
static void dump_end(struct dump_state *st, const struct nlmsghdr *m) {
	int error = 0;

	if (m->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = mnl_nlmsg_get_payload(m);

		if (mnl_nlmsg_get_payload_len(m) < sizeof(*err))
			error = -EBADMSG;
		else
			error = err->error;
	} else if (mnl_nlmsg_get_payload_len(m) >= sizeof(error))
		memcpy(&error, mnl_nlmsg_get_payload(m), sizeof(error));

	if (error != 0)
		dump_set_result(st, error < 0 ? error : -error);
	st->done = true;
}

static int dump_one(struct sock_diag *d, uint8_t family, uint8_t protocol, sock_diag_cb cb, void *userdata,
		    bool *ret_interrupted) {
	char buf[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct inet_diag_req_v2))] = {};
	struct dump_state st = {};
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;
	uint32_t seq;

	/* Sequence 0 would switch off libmnl's sequence check. */
	if (++d->seq == 0)
		++d->seq;
	seq = d->seq;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	/* No NLM_F_ACK: a dump ends in NLMSG_DONE, or in NLMSG_ERROR when the
	 * kernel refuses to start it. */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = protocol;
	/* A bit per TCP state, (1 << TCP_LISTEN) and so on; UDP sockets are
	 * filtered by the same bits, as TCP_CLOSE or TCP_ESTABLISHED. */
	req->idiag_states = ~0u;
	/* No extensions: uid, inode and cookie are in inet_diag_msg, and
	 * INET_DIAG_CGROUP_ID comes without asking. */
	req->idiag_ext = d->want_bytes && protocol == IPPROTO_TCP ? 1u << (INET_DIAG_INFO - 1) : 0;

	if (mnl_socket_sendto(d->sock, nlh, nlh->nlmsg_len) < 0)
		return negative_errno();

	while (!st.done) {
		const struct nlmsghdr *m;
		ssize_t n;
		int len;

		n = mnl_socket_recvfrom(d->sock, d->rx, SOCK_DIAG_RECV_BUFFER_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* The rest of this reply may still come; the next request
			 * skips it by its sequence number. */
			return negative_errno();
		}

		len = (int) n;
		for (m = d->rx; !st.done && mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
			struct sock_info info;
			int r;

			/* Leftovers of a dump abandoned on a socket error. */
			if (!mnl_nlmsg_portid_ok(m, d->portid) || !mnl_nlmsg_seq_ok(m, seq))
				continue;

			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				st.interrupted = true;

			switch (m->nlmsg_type) {
			case NLMSG_DONE:
			case NLMSG_ERROR:
				dump_end(&st, m);
				break;
			case SOCK_DIAG_BY_FAMILY:
				/* After an error or a stop we still read to the end
				 * of the dump, so that the socket stays in step. */
				if (st.result != 0)
					break;
				r = diag_parse(m, protocol, &info);
				if (r >= 0 && info.family != family)
					r = -EBADMSG;
				if (r >= 0)
					r = cb(&info, userdata);
				if (r != 0)
					dump_set_result(&st, r);
				break;
			default:
				/* NLMSG_NOOP and anything else: nothing for us. */
				break;
			}
		}
	}

	*ret_interrupted = st.interrupted;
	return st.result;
}

static int dump_all(struct sock_diag *d, sock_diag_cb cb, void *userdata, bool *ret_interrupted) {
	bool interrupted = false;

	for (size_t i = 0; i < ELEMENTSOF(dump_kinds); i++) {
		bool intr = false;
		int r;

		r = dump_one(d, dump_kinds[i].family, dump_kinds[i].protocol, cb, userdata, &intr);
		if (r != 0)
			return r;
		interrupted = interrupted || intr;
	}

	*ret_interrupted = interrupted;
	return 0;
}

int sock_diag_dump(struct sock_diag *d, sock_diag_cb cb, void *userdata) {
	bool interrupted;
	int r;

	if (!d || !cb)
		return -EINVAL;

	r = dump_all(d, cb, userdata, &interrupted);
	if (r != 0)
		return r;
	return interrupted ? -EAGAIN : 0;
}

struct find_ctx {
	uint64_t inode;
	struct sock_info found;
};

static int find_cb(const struct sock_info *s, void *userdata) {
	struct find_ctx *ctx = userdata;

	if (s->inode != ctx->inode)
		return 0;
	ctx->found = *s;
	return 1;
}

int sock_diag_find_inode(struct sock_diag *d, uint64_t inode, struct sock_info *ret) {
	struct find_ctx ctx = { .inode = inode };

	if (!d || !ret || inode == 0)
		return -EINVAL;
	/* idiag_inode is a __u32; sockfs inodes come from get_next_ino(), an
	 * unsigned int, so a larger number cannot be a socket we could see. */
	if (inode > UINT32_MAX)
		return -EOVERFLOW;

	for (unsigned try = 0; try < SOCK_DIAG_FIND_TRIES; try++) {
		bool interrupted;
		int r;

		r = dump_all(d, find_cb, &ctx, &interrupted);
		if (r < 0)
			return r;
		/* A socket seen in an interrupted dump still existed: only a
		 * miss is in doubt. */
		if (r > 0) {
			*ret = ctx.found;
			return 0;
		}
		if (!interrupted)
			return -ENOENT;
	}
	return -EAGAIN;
}
