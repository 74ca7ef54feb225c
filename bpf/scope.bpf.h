/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Remote scopes in the data path: scoped shaping rules, deny and allow
 * ("Remote scopes" in netbump.h). Included by netbump.bpf.c after the rule
 * maps and the nb_match_*() helpers, before nb_tag_classify().
 *
 * Cost: a socket none of whose keys has a scoped rule pays one compare per
 * packet (tag->scoped). One that has pays an sk_storage lookup and a
 * 16-byte compare per packet; the walk (a few hash and LPM lookups) runs
 * only when its remote address or the rule generation changes.
 */
#pragma once

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, NB_MAX_SCOPE_CIDRS);
	__type(key, struct nb_scope_lpm_key);
	__type(value, __u32);
} scope_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_SCOPE_KEYS);
	__type(key, struct nb_scope_key);
	__type(value, struct nb_scope_set);
} scope_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct nb_scope_cache);
} sk_scopes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NB_MAX_SCOPE_SIDS);
	__type(key, __u32);
	__type(value, struct nb_scope_stats);
} scope_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, NB_DENIALS_SIZE);
} denials SEC(".maps");

/* Which NB_SCOPE_KIND_* have scoped rules at all (bit 1 << kind), written
 * by user space before it bumps nb_rules_gen: 0 keeps every tag unscoped
 * at the cost of one load per classification. */
volatile __u32 nb_scope_kinds;

/* Denial events the ring buffer had no room for. */
volatile __u64 nb_denials_lost;

static __always_inline bool nb_scope_key_has(__u32 kind, __u64 key)
{
	struct nb_scope_key k = { .key = key, .kind = kind };

	return key != 0 && bpf_map_lookup_elem(&scope_keys, &k) != NULL;
}

/* Whether any key of the tag has scoped rules. Global functions (here and
 * nb_scope_level) are verified once on their own, not once per path of
 * every caller: inlined, the walk takes nb_egress past the verifier's 1M
 * instructions. */
__noinline int nb_scope_tag_has(const struct nb_sk_tag *tag)
{
	__u32 kinds = nb_scope_kinds;

	if (!kinds || !tag)
		return 0;
	if (kinds & (1u << NB_SCOPE_KIND_SOCK)) {
		if (nb_scope_key_has(NB_SCOPE_KIND_SOCK, tag->cookie) ||
		    nb_scope_key_has(NB_SCOPE_KIND_SOCK, tag->listener_cookie))
			return 1;
	}
	if (kinds & (1u << NB_SCOPE_KIND_CGROUP)) {
		for (__u32 i = 0; i < NB_MAX_DEPTH; i++) {
			if (i > tag->level)
				break;
			if (nb_scope_key_has(NB_SCOPE_KIND_CGROUP, tag->cgroup[i & (NB_MAX_DEPTH - 1)]))
				return 1;
		}
	}
	if (kinds & (1u << NB_SCOPE_KIND_UID)) {
		struct nb_scope_key k = { .key = tag->uid, .kind = NB_SCOPE_KIND_UID };

		if (bpf_map_lookup_elem(&scope_keys, &k))
			return 1;
		k.key = NB_UID_ALL;
		if (bpf_map_lookup_elem(&scope_keys, &k))
			return 1;
	}
	return 0;
}

/* The walk's state: what is decided so far. */
struct nb_scope_walk {
	struct nb_scope_lpm_key lk; /* sid filled per lookup, addr once */
	int lan_len;                /* the address's "lan" prefix length, -1: not lan */
	bool loopback;              /* the address is loopback: neither word */
	struct nb_class cls;
	__u32 deny_sid;
	bool shaped;                /* cls decided */
	bool access;                /* deny_sid decided */
};

/* The best entries of one key so far. */
struct nb_scope_best {
	int shape_len;  /* -1: no shaping entry holds the address */
	int access_len; /* -1: no deny/allow entry holds it */
	struct nb_class shape;
	__u32 deny;     /* the best deny/allow entry: its sid if deny, 0 if allow */
	__u32 pad;
};

/* Takes entry e into b if it holds the walk's address better. Global:
 * the loop over a key's entries then carries no bounds from one entry to
 * the next, which the verifier would otherwise follow apart for each (the
 * states grew threefold from 4 entries to 8). */
__noinline int nb_scope_ent_take(struct nb_scope_walk *w, const struct nb_scope_ent *e, struct nb_scope_best *b)
{
	int len = -1;

	if (!w || !e || !b)
		return 0;
	if (e->sid) {
		const __u32 *v;

		w->lk.sid = bpf_htonl(e->sid);
		v = bpf_map_lookup_elem(&scope_cidrs, &w->lk);
		if (v)
			len = (int)(*v & 0xff);
	}
	if ((e->words & NB_SCOPE_LAN) && w->lan_len > len)
		len = w->lan_len;
	if ((e->words & NB_SCOPE_INTERNET) && w->lan_len < 0 && !w->loopback && len < 0)
		len = 0;
	if (len < 0)
		return 0;
	if (e->action == NB_SCOPE_SHAPE) {
		if (len > b->shape_len) {
			b->shape_len = len;
			b->shape = e->cls;
		}
	} else if (len > b->access_len) {
		b->access_len = len;
		b->deny = e->action == NB_SCOPE_DENY ? e->sid : 0;
	}
	return 0;
}

/* One key: its scoped entries, then its unscoped rule in the rule map of
 * its kind. Returns 1 when both class and access are decided. */
__noinline int nb_scope_level(struct nb_scope_walk *w, __u32 kind, __u64 key)
{
	struct nb_scope_key k = { .key = key, .kind = kind };
	const struct nb_class *unscoped = NULL;
	const struct nb_scope_set *set;

	if (!w)
		return 1;
	if (kind == NB_SCOPE_KIND_SOCK)
		unscoped = bpf_map_lookup_elem(&sock_rules, &key);
	else if (kind == NB_SCOPE_KIND_CGROUP)
		unscoped = bpf_map_lookup_elem(&cgroup_rules, &key);
	else {
		__u32 uid = (__u32)key;

		unscoped = bpf_map_lookup_elem(&uid_rules, &uid);
	}
	set = bpf_map_lookup_elem(&scope_keys, &k);
	if (set) {
		struct nb_scope_best b = { .shape_len = -1, .access_len = -1 };
		__u32 n = set->n;

		for (__u32 i = 0; i < NB_SCOPES_PER_KEY; i++) {
			if (i >= n)
				break;
			nb_scope_ent_take(w, &set->e[i], &b);
		}
		if (!w->shaped && b.shape_len >= 0) {
			w->cls = b.shape;
			w->shaped = true;
		}
		if (!w->access && b.access_len >= 0) {
			w->deny_sid = b.deny;
			w->access = true;
		}
	}
	if (!w->shaped && unscoped) {
		w->cls = *unscoped;
		w->shaped = true;
	}
	return w->shaped && w->access;
}

/* An address as 16 bytes (IPv4 mapped): a struct, so that a global
 * function's argument has its size. */
struct nb_addr16 {
	__u8 b[16];
};

/* What the walk decided. */
struct nb_scope_result {
	struct nb_class cls;
	__u32 deny_sid; /* 0: not denied */
	__u32 pad;
};

/* The class and access of a tag's socket towards addr. A global function:
 * verified once, not within every path of each of the seven programs that
 * need it (inlined, they took the verifier ten times as long). */
__noinline int nb_scope_walk(const struct nb_sk_tag *tag, const struct nb_addr16 *a, struct nb_scope_result *out)
{
	struct nb_scope_walk ws = {}, *w = &ws;
	const __u8 *addr;
	const __u32 *lan;
	__u32 uid, all = NB_UID_ALL;

	if (!tag || !a || !out)
		return 0;
	addr = a->b;
	uid = tag->uid;

	w->lk.prefixlen = 32 + 128;
	w->lk.sid = bpf_htonl(NB_SCOPE_SID_LAN);
	__builtin_memcpy(w->lk.addr, addr, 16);
	lan = bpf_map_lookup_elem(&scope_cidrs, &w->lk);
	w->loopback = lan && (*lan & NB_SCOPE_V_LOOPBACK);
	w->lan_len = lan && !w->loopback ? (int)(*lan & 0xff) : -1;

	if (tag->cookie && nb_scope_level(w, NB_SCOPE_KIND_SOCK, tag->cookie))
		goto done;
	if (tag->listener_cookie && nb_scope_level(w, NB_SCOPE_KIND_SOCK, tag->listener_cookie))
		goto done;
	for (__u32 i = 0; i < NB_MAX_DEPTH; i++) {
		__u32 level = tag->level & (NB_MAX_DEPTH - 1);
		__u64 id;

		if (i > level)
			break;
		id = tag->cgroup[(level - i) & (NB_MAX_DEPTH - 1)];
		if (id == 0)
			continue;
		if (nb_scope_level(w, NB_SCOPE_KIND_CGROUP, id))
			goto done;
	}
	if (nb_scope_level(w, NB_SCOPE_KIND_UID, uid))
		goto done;
	nb_scope_level(w, NB_SCOPE_KIND_UID, all);
done:
	out->cls = w->cls;
	out->deny_sid = w->deny_sid;
	out->pad = 0;
	return 0;
}

/* Counts a denied packet, and reports it (one event per socket, remote
 * and NB_DENIAL_GAP_NS) when c is the socket's cache (NULL: always). */
static __always_inline void nb_scope_denied(struct nb_scope_cache *c, const struct nb_sk_tag *tag, __u32 sid,
					    const __u8 *addr, __u64 bytes, __u8 proto, __u16 port, __u8 dir)
{
	struct nb_scope_stats *st = bpf_map_lookup_elem(&scope_stats, &sid);
	struct nb_denial *ev;
	__u64 now;

	if (st) {
		st->denied_packets++;
		st->denied_bytes += bytes;
	}
	now = bpf_ktime_get_ns();
	if (c) {
		if (c->reported_ns && now - c->reported_ns < NB_DENIAL_GAP_NS)
			return;
		c->reported_ns = now;
	}
	ev = bpf_ringbuf_reserve(&denials, sizeof(*ev), 0);
	if (!ev) {
		__sync_fetch_and_add(&nb_denials_lost, 1);
		return;
	}
	__builtin_memcpy(ev->addr, addr, 16);
	ev->cookie = tag->cookie;
	ev->sid = sid;
	ev->uid = tag->uid;
	ev->tgid = tag->tgid;
	ev->port = port;
	ev->proto = proto;
	ev->dir = dir;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline bool nb_scope_addr_eq(const __u8 *a, const __u8 *b)
{
	__u64 x[2], y[2];

	__builtin_memcpy(x, a, 16);
	__builtin_memcpy(y, b, 16);
	return x[0] == y[0] && x[1] == y[1];
}

/* The class of a packet of the socket sk (its tag has scoped rules)
 * towards addr: from the socket's cache, else walked and cached. The
 * returned class has NB_F_DENY when denied; *ret_sid is then the deny
 * rule's sid. */
static __always_inline struct nb_class nb_scope_class(void *sk, const struct nb_sk_tag *tag, const __u8 *addr,
						      struct nb_scope_cache **ret_cache)
{
	struct nb_scope_result res = {};
	struct nb_scope_cache *c;
	struct nb_addr16 a;

	c = bpf_sk_storage_get(&sk_scopes, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	*ret_cache = c;
	if (c && c->gen == tag->gen && nb_scope_addr_eq(c->addr, addr))
		return c->cls;

	__builtin_memcpy(a.b, addr, 16);
	nb_scope_walk(tag, &a, &res);
	if (res.deny_sid)
		res.cls.flags |= NB_F_DENY;
	if (c) {
		c->gen = tag->gen;
		__builtin_memcpy(c->addr, addr, 16);
		c->cls = res.cls;
		c->deny_sid = res.deny_sid;
	}
	return res.cls;
}

/* An IPv4 address (network order) or IPv6 one as 16 bytes. */
static __always_inline void nb_scope_addr4(__u8 *out, __be32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &a, 4);
}

/* The remote address (destination) of a packet nb_egress sees: the skb
 * starts at the network header. false when it is not IP. */
static __always_inline bool nb_scope_egress_addr(struct __sk_buff *skb, __u8 *out, __u8 *ret_proto)
{
	__u8 b = 0;

	if (bpf_skb_load_bytes(skb, 0, &b, 1) < 0)
		return false;
	if ((b >> 4) == 4) {
		__be32 d;

		if (bpf_skb_load_bytes(skb, 16, &d, 4) < 0 || bpf_skb_load_bytes(skb, 9, ret_proto, 1) < 0)
			return false;
		nb_scope_addr4(out, d);
		return true;
	}
	if ((b >> 4) == 6)
		return bpf_skb_load_bytes(skb, 24, out, 16) == 0 && bpf_skb_load_bytes(skb, 6, ret_proto, 1) == 0;
	return false;
}

/*
 * nb_egress: the class of a scoped socket's packet, NB_F_DENY when it is
 * to be dropped (then counted and reported).
 */
static __always_inline struct nb_class nb_scope_egress(struct __sk_buff *skb, struct bpf_sock *sk,
						       const struct nb_sk_tag *tag)
{
	struct nb_scope_cache *c = NULL;
	struct nb_class cls;
	__u8 addr[16], proto = 0;

	if (!nb_scope_egress_addr(skb, addr, &proto))
		return tag->cls;
	cls = nb_scope_class(sk, tag, addr, &c);
	if ((cls.flags & NB_F_DENY) && c)
		nb_scope_denied(c, tag, c->deny_sid, addr, skb->len, proto, bpf_ntohs((__u16)sk->dst_port),
				NB_DENIAL_OUT);
	return cls;
}

/* nb_ingress: the class of a packet for a scoped socket from the remote
 * (family 4: remote[0], else the 16 bytes), NB_F_DENY when dropped. */
static __always_inline struct nb_class nb_scope_ingress(struct bpf_sock *sk, const struct nb_sk_tag *tag,
							__u8 family, const __u32 *remote, __u8 proto, __u16 port,
							__u64 bytes)
{
	struct nb_scope_cache *c = NULL;
	struct nb_class cls;
	__u8 addr[16];

	if (family == 4)
		nb_scope_addr4(addr, remote[0]);
	else
		__builtin_memcpy(addr, remote, 16);
	cls = nb_scope_class(sk, tag, addr, &c);
	if ((cls.flags & NB_F_DENY) && c)
		nb_scope_denied(c, tag, c->deny_sid, addr, bytes, proto, port, NB_DENIAL_IN);
	return cls;
}
