/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * netbump data path.
 *
 * Every socket created under the daemon's cgroup root gets a tag in sk_tags
 * (cookie, cgroup ancestry, uid, cached class). Upload: nb_egress
 * (cgroup_skb) sets skb->priority to the socket's HTB class id on the real
 * interface. Download: nb_ingress (tc clsact ingress) finds the receiving
 * socket, sets the same priority and redirects to the interface's IFB, whose
 * HTB shapes it. nb_sock_release drops a closed socket's rule and tells user
 * space through the events ring buffer.
 *
 * Map layouts, flags and the generation contract live in netbump.h.
 */

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <netbump/netbump.h>

/* uapi #defines, which BTF (and so vmlinux.h) does not carry. */
#define TC_ACT_OK 0
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_OFFSET 0x1fff /* fragment offset mask of iphdr.frag_off */

/* Headers nb_ingress needs at most: Ethernet + IPv4 with a 60-byte header
 * + TCP (IPv6: 14 + 40 + 20 is less). */
#define NB_HDR_MAX (ETH_HLEN + 60 + 20)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_SOCK_RULES);
	__type(key, __u64);                /* socket cookie */
	__type(value, struct nb_class);
} sock_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_CGROUP_RULES);
	__type(key, __u64);                /* cgroup id */
	__type(value, struct nb_class);
} cgroup_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_UID_RULES);
	__type(key, __u32);                /* uid */
	__type(value, struct nb_class);
} uid_rules SEC(".maps");

/* BPF_F_CLONE: bpf_sk_storage_clone() copies the listener's tag to each
 * accepted TCP child, which never passes through cgroup/sock_create. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct nb_sk_tag);
} sk_tags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_IFACES);
	__type(key, __u32);                /* ifindex of a managed interface */
	__type(value, struct nb_iface);
} ifaces SEC(".maps");

/* Per-process traffic counters (see "Accounting" in netbump.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, NB_MAX_ACCT);
	__type(key, struct nb_acct_key);
	__type(value, struct nb_acct);
} acct SEC(".maps");

/* struct nb_event records for user space (see netbump.h). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, NB_EVENTS_SIZE);
} events SEC(".maps");

/* Bumped by user space after each rule change; see NB_TAG_GEN in netbump.h. */
volatile __u64 nb_rules_gen;

/* Events nb_sock_release could not queue (ring buffer full). Only BPF
 * writes it, atomically; user space reads it. */
volatile __u64 nb_events_lost;

/* Per-process accounting, a load-time switch (see "Accounting" in
 * netbump.h): with false, every branch on it is dead code the verifier
 * removes. */
const volatile bool nb_account = true;

/* The generation a tag classified now must carry. Read it before the rule
 * lookups: a racing update then leaves the tag stale, never wrongly fresh. */
static __always_inline __u64 nb_current_gen(void)
{
	return NB_TAG_GEN(nb_rules_gen);
}

static __always_inline bool nb_tag_filled(const struct nb_sk_tag *tag)
{
	return tag->level != 0 || tag->cgroup[0] != 0;
}

/* Deepest level of the tag's cgroup ancestry with an entry in cgroup_rules. */
static __always_inline const struct nb_class *nb_match_cgroup(const struct nb_sk_tag *tag)
{
	__u32 level = tag->level;

	if (level >= NB_MAX_DEPTH)
		level = NB_MAX_DEPTH - 1;

	for (__u32 i = 0; i < NB_MAX_DEPTH; i++) {
		const struct nb_class *c;
		__u64 id;

		if (i > level)
			break;
		id = tag->cgroup[(level - i) & (NB_MAX_DEPTH - 1)];
		if (id == 0)
			continue;
		c = bpf_map_lookup_elem(&cgroup_rules, &id);
		if (c)
			return c;
	}
	return NULL;
}

/* A rule on the socket itself, else on the listener it was accepted from. */
static __always_inline const struct nb_class *nb_match_sock(const struct nb_sk_tag *tag)
{
	const struct nb_class *c = NULL;
	__u64 cookie = tag->cookie;

	if (cookie != 0)
		c = bpf_map_lookup_elem(&sock_rules, &cookie);
	cookie = tag->listener_cookie;
	if (!c && cookie != 0)
		c = bpf_map_lookup_elem(&sock_rules, &cookie);
	return c;
}

static __always_inline const struct nb_class *nb_match_uid(const struct nb_sk_tag *tag)
{
	__u32 uid = tag->uid;

	return bpf_map_lookup_elem(&uid_rules, &uid);
}

/* The rule on everything ("all"), kept in uid_rules under a uid no one has. */
static __always_inline const struct nb_class *nb_match_all(void)
{
	__u32 key = NB_UID_ALL;

	return bpf_map_lookup_elem(&uid_rules, &key);
}

/*
 * The one classifier every program uses. Sources are tried in precedence
 * order, first match wins; a new kind of rule (socket cookie, process) is one
 * more nb_match_*() in front of the others.
 */
static __always_inline void nb_tag_classify(struct nb_sk_tag *tag, __u64 gen)
{
	const struct nb_class *c;
	struct nb_class cls = {};

	c = nb_match_sock(tag);
	if (!c)
		c = nb_match_cgroup(tag);
	if (!c)
		c = nb_match_uid(tag);
	if (!c)
		c = nb_match_all();
	if (c)
		cls = *c;

	tag->cls = cls;
	tag->gen = gen;
	/* The set of managed interfaces may have changed too. */
	tag->acct_ifindex = 0;
}

/* A tag is acted on only when it has a class for that direction. */
static __always_inline bool nb_class_applies(const struct nb_class *cls, __u32 flag)
{
	return cls->minor != 0 && (cls->flags & flag);
}

/* The HTB class a packet of the rule goes to: the rule class when it is the
 * leaf, else the small-packet leaf (when made) or the bulk one. */
static __always_inline __u32 nb_leaf_minor(const struct nb_class *cls, bool small)
{
	if (!(cls->flags & NB_F_SPLIT))
		return cls->minor;
	return small && (cls->flags & NB_F_SMALL_FIRST) ? NB_MINOR_SMALL(cls->minor) : NB_MINOR_BULK(cls->minor);
}

/* ---- accounting ---------------------------------------------------------- */

/*
 * Length of the network and transport headers at offset off (IPv4 with its
 * options, IPv6's fixed header; TCP with its options, UDP): what each segment
 * of a GSO packet repeats. Read with bpf_skb_load_bytes(), which checks the
 * bounds itself; 0 when unreadable. Called for GSO packets only.
 */
static __always_inline __u32 nb_l3l4_len(struct __sk_buff *skb, __u32 off)
{
	__u8 b = 0, proto = 0;
	__u32 l3;

	if (bpf_skb_load_bytes(skb, off, &b, 1) < 0)
		return 0;
	if ((b >> 4) == 4) {
		l3 = (b & 0xf) * 4;
		if (bpf_skb_load_bytes(skb, off + 9, &proto, 1) < 0)
			return l3;
	} else if ((b >> 4) == 6) {
		l3 = 40;
		if (bpf_skb_load_bytes(skb, off + 6, &proto, 1) < 0)
			return l3;
	} else
		return 0;

	if (proto == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, off + l3 + 12, &b, 1) < 0)
			return l3;
		return l3 + (b >> 4) * 4;
	}
	if (proto == IPPROTO_UDP)
		return l3 + 8;
	return l3;
}

/* Segments on the wire: a GSO/GRO packet stands for gso_segs of them. */
static __always_inline __u32 nb_segs(struct __sk_buff *skb)
{
	__u32 segs = skb->gso_segs;

	return segs > 1 ? segs : 1;
}

/*
 * Adds a packet to the counters of the socket's owner. Runs on the current
 * CPU's copy of the value, so plain adds are enough. The first packet of an
 * owner inserts its entry (the LRU map makes room if it is full); if another
 * CPU inserted it meanwhile, the insert fails and the lookup after it finds
 * that one.
 */
static __always_inline void nb_acct_add(const struct nb_sk_tag *tag, __u64 bytes, __u32 packets, bool down)
{
	struct nb_acct_key key = {
		.cgroup = tag->cgroup[tag->level & (NB_MAX_DEPTH - 1)],
		.tgid = tag->tgid,
		.uid = tag->uid,
	};
	struct nb_acct *v;

	v = bpf_map_lookup_elem(&acct, &key);
	if (!v) {
		struct nb_acct init = {};

		if (down) {
			init.down_bytes = bytes;
			init.down_packets = packets;
		} else {
			init.up_bytes = bytes;
			init.up_packets = packets;
		}
		if (bpf_map_update_elem(&acct, &key, &init, BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(&acct, &key);
		if (!v)
			return;
	}
	if (down) {
		v->down_bytes += bytes;
		v->down_packets += packets;
	} else {
		v->up_bytes += bytes;
		v->up_packets += packets;
	}
}

/* ---- socket creation ---------------------------------------------------- */

/*
 * Runs in the context of the task creating an AF_INET/AF_INET6 socket under
 * our cgroup root, so the task's cgroup is the socket's cgroup (sk_alloc()
 * takes it from current) and the task's uid its owner.
 */
SEC("cgroup/sock_create")
int nb_sock_create(struct bpf_sock *ctx)
{
	__u64 gen = nb_current_gen();
	struct nb_sk_tag *tag;
	__u32 level = 0;

	tag = bpf_sk_storage_get(&sk_tags, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!tag)
		return 1;

	for (__u32 l = 0; l < NB_MAX_DEPTH; l++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(l);

		if (id == 0)
			break;
		tag->cgroup[l] = id;
		level = l;
	}
	tag->level = level;
	tag->uid = (__u32)bpf_get_current_uid_gid();
	if (nb_account)
		tag->tgid = bpf_get_current_pid_tgid() >> 32;
	/* Generates the cookie now if nobody asked for it yet; SO_COOKIE and
	 * sock_diag return the same value later. */
	tag->cookie = bpf_get_socket_cookie(ctx);

	nb_tag_classify(tag, gen);
	return 1; /* never deny a socket */
}

/* ---- upload ------------------------------------------------------------- */

/*
 * Sockets created before the programs were attached have no tag: the first
 * packet they send creates and fills one. This can run in softirq context
 * (retransmits, ACKs), so the ancestry comes from the skb's socket, not from
 * current.
 */
static __always_inline void nb_tag_fill_from_skb(struct nb_sk_tag *tag, struct __sk_buff *skb)
{
	__u32 level = 0;

	for (__u32 l = 0; l < NB_MAX_DEPTH; l++) {
		__u64 id = bpf_skb_ancestor_cgroup_id(skb, l);

		if (id == 0)
			break;
		tag->cgroup[l] = id;
		level = l;
	}
	tag->level = level;
	tag->uid = bpf_get_socket_uid(skb);
}

/*
 * Makes tag->cookie the cookie of the socket it is attached to. Returns true
 * when it changed, so the tag must be classified again. A tag can hold
 * another socket's cookie only when bpf_sk_storage_clone() copied it from a
 * listener to an accepted child (no program runs then): that cookie becomes
 * the child's listener_cookie. Cookie 0 means the tag was made without one.
 * nb_ingress cannot do this: it has no cookie helper for a socket it looked
 * up (bpf_get_socket_cookie() accepts only the skb in tc programs).
 */
static __always_inline bool nb_tag_set_cookie(struct nb_sk_tag *tag, __u64 cookie)
{
	if (tag->cookie == cookie)
		return false;
	if (tag->cookie != 0)
		tag->listener_cookie = tag->cookie;
	tag->cookie = cookie;
	return true;
}

SEC("cgroup_skb/egress")
int nb_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct nb_sk_tag *tag;
	__u64 gen;

	if (!sk)
		return 1;
	/* Request (SYN-ACK) and timewait sockets carry no storage. */
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;

	gen = nb_current_gen();
	tag = bpf_sk_storage_get(&sk_tags, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!tag)
		return 1;
	if (!nb_tag_filled(tag))
		nb_tag_fill_from_skb(tag, skb);
	/* skb->sk is the full socket checked above: its own cookie. */
	if (nb_tag_set_cookie(tag, bpf_get_socket_cookie(skb)) || tag->gen != gen)
		nb_tag_classify(tag, gen);

	/* skb->len: the IP packet here, all of it for a GSO packet. */
	if (nb_class_applies(&tag->cls, NB_F_UP))
		skb->priority = NB_CLASSID(nb_leaf_minor(&tag->cls, skb->len <= NB_SMALL_LEN));

	/* Only what leaves through a managed interface: what the limits
	 * shape, and what nb_ingress sees of the other direction. Whether
	 * it is managed is looked up once per interface the socket uses (see
	 * acct_ifindex). The skb starts at the network header here (no
	 * Ethernet header yet). */
	if (nb_account) {
		__u32 ifindex = skb->ifindex;

		if (tag->acct_ifindex != ifindex) {
			tag->acct_managed = bpf_map_lookup_elem(&ifaces, &ifindex) != NULL;
			tag->acct_ifindex = ifindex;
		}
		if (tag->acct_managed) {
			__u32 segs = nb_segs(skb);
			__u64 bytes = skb->len + ETH_HLEN;

			if (segs > 1)
				bytes += (__u64)(segs - 1) * (ETH_HLEN + nb_l3l4_len(skb, 0));
			nb_acct_add(tag, bytes, segs, false);
		}
	}
	return 1; /* shape, never drop */
}

/* ---- download ----------------------------------------------------------- */

/*
 * Makes sure the headers are in the linear part of the skb (usually they
 * are; a pull copies them otherwise). Runs before the packet pointers are
 * loaded, as bpf_skb_pull_data() invalidates them. A packet shorter than
 * NB_HDR_MAX is made linear as a whole.
 *
 * Not inlined on purpose: inlined, clang 14 keeps the data/data_end offsets
 * (76, 80) in registers shared with the caller's reload and emits
 * "ctx + reg" loads, which the verifier rejects ("dereference of modified
 * ctx ptr").
 */
static __noinline void nb_linearize(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 want = skb->len;

	if (want > NB_HDR_MAX)
		want = NB_HDR_MAX;
	if (data + want > data_end)
		bpf_skb_pull_data(skb, want);
}

/*
 * Fills the lookup tuple of an Ethernet frame carrying TCP or UDP over IPv4
 * or IPv6 (fixed header only), as seen by the receiving socket: daddr/dport
 * are local. Returns the tuple length, or 0 for anything else: non-IP,
 * extension headers, non-first fragments, truncated or malformed headers.
 * Every header is checked against data_end before it is read.
 * *ret_hdr_len: Ethernet, IP and TCP/UDP headers with their options, which
 * each segment of a GRO packet had (accounting).
 */
static __always_inline __u32 nb_parse(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u8 *ret_proto,
				     __u32 *ret_hdr_len)
{
	void *data, *data_end, *l4;
	struct ethhdr *eth;
	__u32 tuple_len;
	__be16 sport, dport;
	__u8 proto;

	nb_linearize(skb);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;

	eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(iph + 1) > data_end || iph->version != 4)
			return 0;
		ihl = iph->ihl; /* 4 bits: the verifier knows l4 is at most 60 bytes on */
		if (ihl < 5)
			return 0;
		/* Only the first fragment has the ports. */
		if (iph->frag_off & bpf_htons(IP_OFFSET))
			return 0;
		proto = iph->protocol;
		tuple->ipv4.saddr = iph->saddr;
		tuple->ipv4.daddr = iph->daddr;
		tuple_len = sizeof(tuple->ipv4);
		l4 = (void *)iph + ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end || ip6h->version != 6)
			return 0;
		proto = ip6h->nexthdr;
		__builtin_memcpy(tuple->ipv6.saddr, &ip6h->saddr, sizeof(tuple->ipv6.saddr));
		__builtin_memcpy(tuple->ipv6.daddr, &ip6h->daddr, sizeof(tuple->ipv6.daddr));
		tuple_len = sizeof(tuple->ipv6);
		l4 = ip6h + 1;
	} else
		return 0;

	/* The whole L4 header must be there, not just the ports. */
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return 0;
		sport = th->source;
		dport = th->dest;
		*ret_hdr_len = (__u32)(l4 - data) + th->doff * 4;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return 0;
		sport = uh->source;
		dport = uh->dest;
		*ret_hdr_len = (__u32)(l4 - data) + sizeof(*uh);
	} else
		return 0;

	if (tuple_len == sizeof(tuple->ipv4)) {
		tuple->ipv4.sport = sport;
		tuple->ipv4.dport = dport;
	} else {
		tuple->ipv6.sport = sport;
		tuple->ipv6.dport = dport;
	}
	*ret_proto = proto;
	return tuple_len;
}

SEC("tc")
int nb_ingress(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	const struct nb_iface *iface;
	struct nb_class cls = {};
	struct bpf_sock *sk, *fsk;
	struct nb_sk_tag *tag;
	__u32 ifindex = skb->ifindex, tuple_len, hdr_len = 0;
	__u8 proto = 0;

	/* Only managed interfaces have an IFB to redirect to. */
	iface = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!iface)
		return TC_ACT_OK;

	tuple_len = nb_parse(skb, &tuple, &proto, &hdr_len);
	if (tuple_len == 0)
		return TC_ACT_OK;

	/* bpf_sk_cgroup_id() is not available to tc programs, so the cgroup
	 * comes from the tag the socket got when created or first sending. */
	if (proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(skb, &tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_udp(skb, &tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return TC_ACT_OK;

	/* Request and timewait sockets have no storage. */
	fsk = bpf_sk_fullsock(sk);
	if (fsk) {
		tag = bpf_sk_storage_get(&sk_tags, fsk, 0, 0);
		if (tag && nb_tag_filled(tag)) {
			__u64 gen = nb_current_gen();

			if (tag->gen != gen)
				nb_tag_classify(tag, gen);
			cls = tag->cls;
			/* tc ingress sees the frame with its Ethernet header. */
			if (nb_account) {
				__u32 segs = nb_segs(skb);

				nb_acct_add(tag, skb->len + (__u64)(segs - 1) * hdr_len, segs, true);
			}
		}
	}
	bpf_sk_release(sk);

	if (!nb_class_applies(&cls, NB_F_DOWN))
		return TC_ACT_OK;

	/* skb->len: the frame, Ethernet header included. */
	skb->priority = NB_CLASSID(nb_leaf_minor(&cls, skb->len <= ETH_HLEN + NB_SMALL_LEN));
	return bpf_redirect(iface->ifb_ifindex, 0);
}

/* ---- socket release ------------------------------------------------------ */

/*
 * Runs when the last file reference to an inet socket in our subtree is
 * closed (inet_release(); the socket may still linger in the kernel). A
 * socket rule dies with its socket: cookies are never reused, so the entry
 * could never match again. User space learns of it through an event.
 */
SEC("cgroup/sock_release")
int nb_sock_release(struct bpf_sock *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct nb_event *ev;

	if (!bpf_map_lookup_elem(&sock_rules, &cookie))
		return 1;

	/* Reserve first so that the event is queued only if our delete is the
	 * one that removed the entry (user space may delete it concurrently). */
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (bpf_map_delete_elem(&sock_rules, &cookie) < 0) {
		if (ev)
			bpf_ringbuf_discard(ev, 0);
		return 1;
	}
	if (!ev) {
		__sync_fetch_and_add(&nb_events_lost, 1);
		return 1;
	}
	ev->cookie = cookie;
	ev->type = NB_EVENT_SOCK_RELEASED;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return 1; /* the return value of sock_release is ignored; 1 as elsewhere */
}

/* No GPL-only helper is used; "Dual BSD/GPL" is the GPL-compatible string
 * the kernel knows that is closest to this file's licence. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";
