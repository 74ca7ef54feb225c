/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Deny and allow (scope.bpf.h) where packets are too late to fail fast:
 *
 *   connect4/connect6, sendmsg4/sendmsg6 (cgroup sock_addr, attached by
 *   netbumpd at its cgroup root): a denied remote gets EPERM from
 *   connect(2) or sendmsg(2) at once, instead of a SYN dropped by nb_egress
 *   and retried until the connect timeout.
 *
 *   iter/tcp and iter/udp: run by netbumpd once after a deny is added, they
 *   destroy (bpf_sock_destroy(), Linux 6.5+) the open sockets of the
 *   daemon's network namespace that the deny now covers: their owners see
 *   ECONNABORTED at once. Without the kfunc they do nothing, and
 *   nb_egress/nb_ingress still drop every packet of such a socket.
 *
 * Included at the end of netbump.bpf.c: these need nb_tag_classify().
 */
#pragma once

/* A kfunc: the kernel offers kfuncs to GPL-compatible programs only, which
 * this object's "Dual BSD/GPL" is (license_is_gpl_compatible()). */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

/* A socket of a target with scoped rules is about to talk to addr:
 * 1 lets it, 0 refuses (EPERM). */
static __always_inline int nb_scope_sock_addr(struct bpf_sock_addr *ctx, const __u8 *addr)
{
	struct bpf_sock *sk = ctx->sk;
	struct nb_scope_cache *c = NULL;
	struct nb_sk_tag *tag;
	struct nb_class cls;
	__u64 gen;

	if (!sk)
		return 1;
	tag = bpf_sk_storage_get(&sk_tags, sk, 0, 0);
	if (!tag || !nb_tag_filled(tag))
		return 1;
	gen = nb_current_gen();
	if (tag->gen != gen)
		nb_tag_classify(tag, gen);
	if (!tag->scoped)
		return 1;
	cls = nb_scope_class(sk, tag, addr, &c);
	if (!(cls.flags & NB_F_DENY) || !c)
		return 1;
	/* Each refused call is reported: it is one per attempt, not per
	 * packet (the cache's rate limit still bounds a tight loop). */
	nb_scope_denied(c, tag, c->deny_sid, addr, 0, (__u8)ctx->protocol, bpf_ntohs((__u16)ctx->user_port),
			NB_DENIAL_CONNECT);
	return 0;
}

/* connect() or sendmsg() of family 4 or 6 (a constant: each program keeps
 * only its own branch) towards the address in ctx. */
static __always_inline int nb_scope_sock_addr_family(struct bpf_sock_addr *ctx, int family)
{
	__u8 addr[16];

	if (family == 4)
		nb_scope_addr4(addr, ctx->user_ip4);
	else {
		__u32 a[4];

		/* user_ip6 is read one 32-bit word at a time (the
		 * verifier's rule for the sock_addr context). */
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(addr, a, 16);
	}
	return nb_scope_sock_addr(ctx, addr);
}

SEC("cgroup/connect4")
int nb_connect4(struct bpf_sock_addr *ctx)
{
	return nb_scope_sock_addr_family(ctx, 4);
}

SEC("cgroup/connect6")
int nb_connect6(struct bpf_sock_addr *ctx)
{
	return nb_scope_sock_addr_family(ctx, 6);
}

SEC("cgroup/sendmsg4")
int nb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return nb_scope_sock_addr_family(ctx, 4);
}

SEC("cgroup/sendmsg6")
int nb_sendmsg6(struct bpf_sock_addr *ctx)
{
	return nb_scope_sock_addr_family(ctx, 6);
}

/* Sockets destroyed by the iterators since load (user space reads it). */
volatile __u64 nb_scope_destroyed;

/* Whether the socket sk (with its common part skc) is denied towards its
 * peer now. */
static __always_inline bool nb_scope_iter_denied(struct sock *sk, struct sock_common *skc)
{
	struct nb_scope_cache *c = NULL;
	struct nb_sk_tag *tag;
	struct nb_class cls;
	__u8 addr[16];
	__u64 gen;

	tag = bpf_sk_storage_get(&sk_tags, sk, 0, 0);
	if (!tag || !nb_tag_filled(tag))
		return false;
	gen = nb_current_gen();
	if (tag->gen != gen)
		nb_tag_classify(tag, gen);
	if (!tag->scoped)
		return false;
	if (skc->skc_family == 2 /* AF_INET */) {
		if (skc->skc_daddr == 0)
			return false; /* not connected */
		nb_scope_addr4(addr, skc->skc_daddr);
	} else {
		__u64 x[2];

		BPF_CORE_READ_INTO(&addr, skc, skc_v6_daddr.in6_u.u6_addr8);
		__builtin_memcpy(x, addr, 16);
		if (x[0] == 0 && x[1] == 0)
			return false;
	}
	cls = nb_scope_class(sk, tag, addr, &c);
	if (!(cls.flags & NB_F_DENY))
		return false;
	if (c)
		nb_scope_denied(c, tag, c->deny_sid, addr, 0, 0, bpf_ntohs(skc->skc_dport), NB_DENIAL_OUT);
	return true;
}

SEC("iter/tcp")
int nb_scope_reap_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc || !bpf_sock_destroy)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	if (nb_scope_iter_denied((struct sock *)tp, skc) && bpf_sock_destroy(skc) == 0)
		__sync_fetch_and_add(&nb_scope_destroyed, 1);
	return 0;
}

SEC("iter/udp")
int nb_scope_reap_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	struct sock_common *skc;

	if (!up || !bpf_sock_destroy)
		return 0;
	skc = &up->inet.sk.__sk_common;
	if (nb_scope_iter_denied(&up->inet.sk, skc) && bpf_sock_destroy(skc) == 0)
		__sync_fetch_and_add(&nb_scope_destroyed, 1);
	return 0;
}
