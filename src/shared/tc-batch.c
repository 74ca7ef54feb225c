/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A batch of tc changes: every message built into one libmnl batch buffer
 * (mnl_nlmsg_batch), sent with one sendmsg() per chunk, the acks matched by
 * sequence number. A chunk is cut where its acks would no longer fit in the
 * socket's receive queue: an ack the kernel cannot queue is dropped, and
 * what it said with it.
 */

#include <errno.h>
#include <stdlib.h>
#include <linux/rtnetlink.h>

#include "macro.h"
#include "netlink-internal.h"

/* Bytes of requests per sendmsg(): 100 bytes or so each (an HTB class, a
 * leaf qdisc), so some 160 requests, whose acks (an skb of about 700 bytes
 * each in the receive queue) fit in the default 208 KiB rmem too. */
#define TC_BATCH_CHUNK (16u * 1024u)
#define TC_BATCH_MAX_MSGS 192u

static int op_put(void *buf, const struct nl_tc_op *op, struct nlmsghdr **ret) {
	switch (op->kind) {
	case NL_TC_CLASS_NEW:
		return nl_htb_class_put(buf, op->ifindex, op->parent, op->handle, &op->htb, NLM_F_CREATE, ret);
	case NL_TC_CLASS_CHANGE:
		return nl_htb_class_put(buf, op->ifindex, op->parent, op->handle, &op->htb, 0, ret);
	case NL_TC_CLASS_DEL:
		if (op->ifindex == 0 || op->ifindex > INT32_MAX)
			return -EINVAL;
		/* No parent needed: the kernel finds the qdisc by the major. */
		*ret = nl_tc_message_put(buf, RTM_DELTCLASS, 0, op->ifindex, 0, op->handle, 0);
		return 0;
	case NL_TC_LEAF:
		return nl_leaf_put(buf, op->ifindex, op->parent, op->handle, &op->leaf, ret);
	}
	return -EINVAL;
}

static void mnl_nlmsg_batch_stopp(struct mnl_nlmsg_batch **b) {
	if (*b)
		mnl_nlmsg_batch_stop(*b);
}

/* Sends the requests of the batch so far (ops first .. first + n - 1). */
static int chunk_send(struct nl *nl, struct mnl_nlmsg_batch *b, uint32_t seq, size_t n, int *errors,
		      unsigned *trips) {
	(*trips)++;
	return nl_send_acked(nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b), seq, n, errors);
}

int nl_tc_batch(struct nl *nl, const struct nl_tc_op *ops, size_t n, int *ret_errors, size_t *ret_failed,
		unsigned *ret_round_trips) {
	_cleanup_(mnl_nlmsg_batch_stopp) struct mnl_nlmsg_batch *b = NULL;
	_cleanup_free_ void *buf = NULL;
	_cleanup_free_ int *own = NULL;
	int *errors = ret_errors, r = 0;
	unsigned trips = 0;
	size_t first = 0; /* the first op of the chunk being built */
	uint32_t seq;

	if (!nl || (n > 0 && !ops))
		return -EINVAL;
	if (ret_round_trips)
		*ret_round_trips = 0;
	if (n == 0)
		return 0;
	if (!errors) {
		errors = own = calloc(n, sizeof(int));
		if (!errors)
			return -ENOMEM;
	}
	/* The message that overruns the limit stays behind it for the next
	 * chunk: room for one more. */
	buf = malloc(TC_BATCH_CHUNK + NL_SEND_BUFFER_SIZE);
	if (!buf)
		return -ENOMEM;
	b = mnl_nlmsg_batch_start(buf, TC_BATCH_CHUNK);
	if (!b)
		return -ENOMEM;

	/* A request that cannot be built is a caller's mistake: nothing is
	 * sent then, rather than a batch with a hole in it. */
	for (size_t k = 0; k < n; k++) {
		struct nlmsghdr *nlh;
		int e = op_put(mnl_nlmsg_batch_head(b), &ops[k], &nlh);
		errors[k] = 0;
		if (e < 0) {
			errors[k] = e;
			if (ret_failed)
				*ret_failed = k;
			return e;
		}
	}

	nl->extack[0] = '\0';
	nl->error_extack[0] = '\0';
	seq = nl_seq_take(nl, n);
	for (size_t k = 0; k < n && r >= 0; k++) {
		struct nlmsghdr *nlh;

		(void) op_put(mnl_nlmsg_batch_current(b), &ops[k], &nlh);
		nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
		nlh->nlmsg_seq = seq + (uint32_t) k;
		if (!mnl_nlmsg_batch_next(b)) {
			/* Full: what came before k goes; k starts the next. */
			r = chunk_send(nl, b, seq + (uint32_t) first, k - first, errors + first, &trips);
			mnl_nlmsg_batch_reset(b);
			first = k;
		} else if (k + 1 - first >= TC_BATCH_MAX_MSGS) {
			r = chunk_send(nl, b, seq + (uint32_t) first, k + 1 - first, errors + first, &trips);
			mnl_nlmsg_batch_reset(b);
			first = k + 1;
		}
	}
	if (r >= 0 && first < n)
		r = chunk_send(nl, b, seq + (uint32_t) first, n - first, errors + first, &trips);
	if (r < 0)
		/* The socket failed: the chunks after that one were not sent. */
		for (size_t k = first; k < n; k++)
			if (errors[k] == 0)
				errors[k] = r;
	if (ret_round_trips)
		*ret_round_trips = trips;
	for (size_t k = 0; k < n; k++)
		if (errors[k] < 0) {
			if (ret_failed)
				*ret_failed = k;
			return errors[k];
		}
	return r;
}
