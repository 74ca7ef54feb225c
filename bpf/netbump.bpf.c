/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * netbump data path.
 *
 * Every socket created under the daemon's cgroup root gets a tag in sk_tags
 * (cookie, cgroup ancestry, uid, cached class). Upload: nb_egress
 * (cgroup_skb) sets skb->priority to the socket's HTB class id on the real
 * interface. Download: nb_ingress (tc clsact ingress) finds the receiving
 * socket, sets the same priority and redirects to the interface's IFB, whose
 * HTB shapes it; fragments and protocols without ports are classified
 * through the frags and flows maps ("Fragments and other protocols" in
 * netbump.h). nb_sock_release drops a closed socket's rule and tells user
 * space through the events ring buffer.
 *
 * Map layouts, flags and the generation contract live in netbump.h.
 */

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <netbump/netbump.h>

/* uapi #defines, which BTF (and so vmlinux.h) does not carry. */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_MF 0x2000     /* more fragments, in iphdr.frag_off */
#define IP_OFFSET 0x1fff /* fragment offset mask of iphdr.frag_off */
#define NB_IP6_OFFSET 0xfff8 /* fragment offset mask of the IPv6 fragment header */
#define NB_IP6_MF 0x0001
/* IPv6 next header values (in6.h #defines, so not in vmlinux.h). */
#define NB_NEXTHDR_HOP 0
#define NB_NEXTHDR_ROUTING 43
#define NB_NEXTHDR_FRAGMENT 44
#define NB_NEXTHDR_AUTH 51
#define NB_NEXTHDR_DEST 60
#define NB_PROTO_ICMPV6 58
#define NB_ICMP_ECHOREPLY 0
#define NB_ICMP_ECHO 8
#define NB_ICMPV6_ECHO_REQUEST 128
#define NB_ICMPV6_ECHO_REPLY 129

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

/* The owner of a datagram's first fragment, for its later ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NB_MAX_FRAGS);
	__type(key, struct nb_flow_key);
	__type(value, struct nb_owner);
} frags SEC(".maps");

/* The owner of traffic without ports: other protocols than TCP and UDP
 * that targets' sockets send, fragments that overtook their first one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NB_MAX_FLOWS);
	__type(key, struct nb_flow_key);
	__type(value, struct nb_owner);
} flows SEC(".maps");

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
/* The cookie of netbumpd's network namespace (SO_NETNS_COOKIE), set before
 * load; 0: not known (a kernel before 5.14), and not checked. */
const volatile __u64 nb_netns_cookie = 0;

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

#include "scope.bpf.h"

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
	tag->scoped = nb_scope_tag_has(tag);
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

/*
 * Whether a socket's packet through ifindex is to be counted by the cgroup
 * programs: the interface is one netbumpd shapes. An ifindex names a device
 * of the socket's own namespace, so for a socket of another namespace (a
 * container's, whose host0 may well have the number of a shaped interface
 * here) it never is: that traffic is counted where it crosses a shaped
 * interface, forwarded (nb_fwd_egress, nb_ingress). The caller caches the
 * answer in the tag.
 */
static __always_inline bool nb_acct_managed(struct __sk_buff *skb, __u32 ifindex)
{
	if (nb_netns_cookie && bpf_get_netns_cookie(skb) != nb_netns_cookie)
		return false;
	return bpf_map_lookup_elem(&ifaces, &ifindex) != NULL;
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
static __always_inline struct nb_acct_key nb_acct_key_of(const struct nb_sk_tag *tag)
{
	struct nb_acct_key key = {
		.cgroup = tag->cgroup[tag->level & (NB_MAX_DEPTH - 1)],
		.tgid = tag->tgid,
		.uid = tag->uid,
	};

	return key;
}

static __always_inline void nb_acct_add_key(const struct nb_acct_key *key, __u64 bytes, __u32 packets, bool down)
{
	struct nb_acct *v;

	v = bpf_map_lookup_elem(&acct, key);
	if (!v) {
		struct nb_acct init = {};

		if (down) {
			init.down_bytes = bytes;
			init.down_packets = packets;
		} else {
			init.up_bytes = bytes;
			init.up_packets = packets;
		}
		if (bpf_map_update_elem(&acct, key, &init, BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(&acct, key);
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

/* A frame at tc (skb->len from the Ethernet header on), for key. */
static __always_inline void nb_acct_add_frame(struct __sk_buff *skb, const struct nb_acct_key *key, bool down)
{
	__u32 segs = nb_segs(skb);
	__u64 bytes = skb->len;

	if (segs > 1)
		bytes += (__u64)(segs - 1) * (ETH_HLEN + nb_l3l4_len(skb, ETH_HLEN));
	nb_acct_add_key(key, bytes, segs, down);
}

static __always_inline void nb_acct_add(const struct nb_sk_tag *tag, __u64 bytes, __u32 packets, bool down)
{
	struct nb_acct_key key = nb_acct_key_of(tag);

	nb_acct_add_key(&key, bytes, packets, down);
}

/* ---- parsing ---------------------------------------------------------------- */

enum {
	NB_FRAG_NONE,  /* a whole datagram */
	NB_FRAG_FIRST, /* offset 0, more follow: has the upper-layer header */
	NB_FRAG_LATER, /* offset > 0: only the fragment header's protocol */
};

enum {
	NB_PARSE_SKIP,     /* not IP, malformed or truncated: leave it alone */
	NB_PARSE_OK,
	NB_PARSE_TOO_LONG, /* IPv6 extension headers past NB_MAX_EXTHDRS */
};

struct nb_pkt {
	struct nb_flow_key key; /* addresses, family; proto: the upper layer's
	                         * (a later fragment: frag_proto) */
	__u32 l4;               /* offset of the upper-layer header */
	__u32 frag_id;          /* the datagram's id when fragmented */
	__u8 frag;              /* NB_FRAG_* */
	__u8 frag_proto;        /* what the fragments have in common: the
	                         * IPv4 protocol, or the next header of the
	                         * IPv6 fragment header (which may be an
	                         * extension header of the fragmentable part) */
};

/* The 8 bytes of an IPv6 fragment header (RFC 8200 section 4.5). */
struct nb_frag6 {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 id;
};

static __always_inline bool nb_is_exthdr(__u8 h)
{
	return h == NB_NEXTHDR_HOP || h == NB_NEXTHDR_ROUTING || h == NB_NEXTHDR_DEST || h == NB_NEXTHDR_AUTH ||
	       h == NB_NEXTHDR_FRAGMENT;
}

/*
 * Copies len bytes at offset off: straight from the linear part when they
 * are there (the headers nearly always are), else with
 * bpf_skb_load_bytes(), which copes with paged data. len must be a
 * constant. Offsets past NB_DIRECT_MAX take the helper: the bound lets
 * the verifier check the pointer arithmetic.
 */
#define NB_DIRECT_MAX 256

static __always_inline int nb_load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;

	if (off <= NB_DIRECT_MAX && data + off + len <= data_end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/*
 * Parses the IPv4 or IPv6 header at offset off, walking IPv6 extension
 * headers, into p. `in`: the packet arrives (source = remote), else it
 * leaves (source = local). Reads with nb_load(), so nothing needs pulling
 * into the linear part first.
 */
static __always_inline int nb_parse_ip(struct __sk_buff *skb, __u32 off, bool v6, bool in, struct nb_pkt *p)
{
	if (!v6) {
		struct iphdr iph;
		__u16 frag;

		if (nb_load(skb, off, &iph, sizeof(iph)) < 0)
			return NB_PARSE_SKIP;
		if (iph.version != 4 || iph.ihl < 5)
			return NB_PARSE_SKIP;
		p->key.family = 4;
		p->key.proto = iph.protocol;
		p->key.remote[0] = in ? iph.saddr : iph.daddr;
		p->key.local[0] = in ? iph.daddr : iph.saddr;
		frag = bpf_ntohs(iph.frag_off);
		if (frag & IP_OFFSET)
			p->frag = NB_FRAG_LATER;
		else if (frag & IP_MF)
			p->frag = NB_FRAG_FIRST;
		p->frag_id = bpf_ntohs(iph.id);
		p->frag_proto = iph.protocol;
		p->l4 = off + iph.ihl * 4;
		return NB_PARSE_OK;
	}

	struct ipv6hdr ip6h;
	__u8 nexthdr;

	if (nb_load(skb, off, &ip6h, sizeof(ip6h)) < 0)
		return NB_PARSE_SKIP;
	if (ip6h.version != 6)
		return NB_PARSE_SKIP;
	p->key.family = 6;
	__builtin_memcpy(p->key.remote, in ? &ip6h.saddr : &ip6h.daddr, 16);
	__builtin_memcpy(p->key.local, in ? &ip6h.daddr : &ip6h.saddr, 16);
	nexthdr = ip6h.nexthdr;
	off += sizeof(ip6h);

	for (__u32 i = 0; i < NB_MAX_EXTHDRS; i++) {
		if (nexthdr == NB_NEXTHDR_FRAGMENT) {
			struct nb_frag6 fh;
			__u16 fo;

			if (nb_load(skb, off, &fh, sizeof(fh)) < 0)
				return NB_PARSE_SKIP;
			fo = bpf_ntohs(fh.frag_off);
			nexthdr = fh.nexthdr;
			off += sizeof(fh);
			/* Offset 0 without M: an atomic fragment, a whole
			 * datagram (RFC 8200 section 4.5). */
			if (fo & (NB_IP6_OFFSET | NB_IP6_MF)) {
				p->frag_id = bpf_ntohl(fh.id);
				p->frag_proto = nexthdr;
			}
			if (fo & NB_IP6_OFFSET) {
				/* Nothing but data follows. */
				p->frag = NB_FRAG_LATER;
				p->key.proto = nexthdr;
				p->l4 = off;
				return NB_PARSE_OK;
			}
			if (fo & NB_IP6_MF)
				p->frag = NB_FRAG_FIRST;
		} else if (nb_is_exthdr(nexthdr)) {
			__u8 h[2]; /* next header, length */

			if (nb_load(skb, off, h, sizeof(h)) < 0)
				return NB_PARSE_SKIP;
			/* AH counts 4-byte units less 2, the others 8-byte
			 * units less 1 (RFC 4302 section 2.2, RFC 8200). */
			off += nexthdr == NB_NEXTHDR_AUTH ? ((__u32)h[1] + 2) * 4 : ((__u32)h[1] + 1) * 8;
			nexthdr = h[0];
		} else
			break;
	}
	if (nb_is_exthdr(nexthdr))
		return NB_PARSE_TOO_LONG;
	p->key.proto = nexthdr;
	p->l4 = off;
	return NB_PARSE_OK;
}

/* The echo identifier of an ICMP/ICMPv6 echo request (out) or reply (in),
 * in host order; 0 for anything else. */
static __always_inline __u32 nb_echo_id(struct __sk_buff *skb, const struct nb_pkt *p, bool in)
{
	__u8 h[6]; /* type, code, checksum, identifier */
	__u8 want;

	if (p->key.family == 4 && p->key.proto == IPPROTO_ICMP)
		want = in ? NB_ICMP_ECHOREPLY : NB_ICMP_ECHO;
	else if (p->key.family == 6 && p->key.proto == NB_PROTO_ICMPV6)
		want = in ? NB_ICMPV6_ECHO_REPLY : NB_ICMPV6_ECHO_REQUEST;
	else
		return 0;
	if (nb_load(skb, p->l4, h, sizeof(h)) < 0 || h[0] != want)
		return 0;
	return (__u32)h[4] << 8 | h[5];
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

static __always_inline bool nb_owner_eq(const struct nb_owner *a, const struct nb_owner *b)
{
	return a->cls.minor == b->cls.minor && a->cls.flags == b->cls.flags && a->acct.cgroup == b->acct.cgroup &&
	       a->acct.tgid == b->acct.tgid && a->acct.uid == b->acct.uid;
}

/*
 * A socket of another protocol than TCP or UDP (a ping socket, a raw
 * socket) sends: remember whose it is, so that nb_ingress can classify
 * what comes back, which it has no socket lookup for ("Fragments and other
 * protocols" in netbump.h). The skb starts at the network header here, and
 * is not fragmented yet (cgroup egress runs before ip_fragment()).
 */
static __always_inline void nb_flow_learn(struct __sk_buff *skb, const struct nb_sk_tag *tag,
					  const struct nb_class *cls)
{
	struct nb_owner own = { .cls = *cls, .acct = nb_acct_key_of(tag) };
	const struct nb_owner *o;
	struct nb_pkt p = {};
	bool v6;

	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		v6 = true;
	else if (skb->protocol == bpf_htons(ETH_P_IP))
		v6 = false;
	else
		return;
	if (nb_parse_ip(skb, 0, v6, false, &p) != NB_PARSE_OK || p.frag == NB_FRAG_LATER)
		return;
	if (p.key.proto == IPPROTO_TCP || p.key.proto == IPPROTO_UDP)
		return; /* found by their ports */
	p.key.id = nb_echo_id(skb, &p, false);
	o = bpf_map_lookup_elem(&flows, &p.key);
	if (o && nb_owner_eq(o, &own))
		return;
	bpf_map_update_elem(&flows, &p.key, &own, BPF_ANY);
}

SEC("cgroup_skb/egress")
int nb_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct nb_sk_tag *tag;
	struct nb_class cls;
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
	/* Scoped rules: the class depends on the destination. A denied
	 * packet is dropped: the sender gets EPERM (cgroup_skb egress). */
	cls = tag->scoped ? nb_scope_egress(skb, sk, tag) : tag->cls;
	if (cls.flags & NB_F_DENY)
		return 0;

	/* skb->len: the IP packet here, all of it for a GSO packet. */
	if (nb_class_applies(&cls, NB_F_UP))
		skb->priority = NB_CLASSID(nb_leaf_minor(&cls, skb->len <= NB_SMALL_LEN));

	/* TCP and UDP sockets, nearly all of them, cost a compare here. */
	if (sk->type == SOCK_RAW || (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP))
		nb_flow_learn(skb, tag, &cls);

	/* Only what leaves through a managed interface: what the limits
	 * shape, and what nb_ingress sees of the other direction. Whether
	 * it is managed is looked up once per interface the socket uses (see
	 * acct_ifindex). The skb starts at the network header here (no
	 * Ethernet header yet). */
	if (nb_account) {
		__u32 ifindex = skb->ifindex;

		if (tag->acct_ifindex != ifindex) {
			tag->acct_managed = nb_acct_managed(skb, ifindex);
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
 * The socket tuple of a TCP or UDP packet from its local end's side: source
 * the remote end, destination the local one, as a packet arriving at that
 * socket carries them (daddr/dport local), or with `out` as one it sent
 * (saddr/sport local; p parsed with in = false) would if it came back. The
 * socket lookup helpers and bpf_skb_ct_lookup (netns.bpf.h) take this.
 * Returns the tuple's length, 0 when the L4 header is not all there.
 */
static __always_inline __u32 nb_sock_tuple(struct __sk_buff *skb, const struct nb_pkt *p, bool out,
					   struct bpf_sock_tuple *tuple)
{
	__be16 ports[2];

	/* The whole L4 header must be there, not just the ports. */
	if (p->key.proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (nb_load(skb, p->l4, &th, sizeof(th)) < 0)
			return 0;
		ports[out] = th.source;
		ports[!out] = th.dest;
	} else {
		struct udphdr uh;

		if (nb_load(skb, p->l4, &uh, sizeof(uh)) < 0)
			return 0;
		ports[out] = uh.source;
		ports[!out] = uh.dest;
	}

	if (p->key.family == 4) {
		tuple->ipv4.saddr = p->key.remote[0];
		tuple->ipv4.daddr = p->key.local[0];
		tuple->ipv4.sport = ports[0];
		tuple->ipv4.dport = ports[1];
		return sizeof(tuple->ipv4);
	}
	__builtin_memcpy(tuple->ipv6.saddr, p->key.remote, sizeof(tuple->ipv6.saddr));
	__builtin_memcpy(tuple->ipv6.daddr, p->key.local, sizeof(tuple->ipv6.daddr));
	tuple->ipv6.sport = ports[0];
	tuple->ipv6.dport = ports[1];
	return sizeof(tuple->ipv6);
}

/*
 * The owner of the socket at the local end of tuple (nb_sock_tuple()'s
 * orientation) in the network namespace `netns` (BPF_F_CURRENT_NETNS, or
 * an id of another one as the skb's namespace knows it: netns.bpf.h).
 * false when there is none, or it has no filled tag (a socket outside our
 * cgroup root); *ret_sock says whether there was a socket at all.
 */
static __always_inline bool nb_tuple_owner(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_len,
					   __u8 family, __u8 proto, __u64 netns, struct nb_owner *ret, bool *ret_sock)
{
	struct bpf_sock *sk, *fsk;
	struct nb_sk_tag *tag;
	bool found = false;

	/* bpf_sk_cgroup_id() is not available to tc programs, so the cgroup
	 * comes from the tag the socket got when created or first sending. */
	if (proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(skb, tuple, tuple_len, netns, 0);
	else
		sk = bpf_sk_lookup_udp(skb, tuple, tuple_len, netns, 0);
	*ret_sock = sk != NULL;
	if (!sk)
		return false;

	/* Request and timewait sockets have no storage. */
	fsk = bpf_sk_fullsock(sk);
	if (fsk) {
		tag = bpf_sk_storage_get(&sk_tags, fsk, 0, 0);
		if (tag && nb_tag_filled(tag)) {
			__u64 gen = nb_current_gen();

			if (tag->gen != gen)
				nb_tag_classify(tag, gen);
			if (!tag->scoped)
				ret->cls = tag->cls;
			else if (family == 4)
				ret->cls = nb_scope_ingress(fsk, tag, family, &tuple->ipv4.saddr, proto,
							    bpf_ntohs(tuple->ipv4.sport), skb->len);
			else
				ret->cls = nb_scope_ingress(fsk, tag, family, tuple->ipv6.saddr, proto,
							    bpf_ntohs(tuple->ipv6.sport), skb->len);
			ret->acct = nb_acct_key_of(tag);
			found = true;
		}
	}
	bpf_sk_release(sk);
	return found;
}

#include "netns.bpf.h"

SEC("tc")
int nb_ingress(struct __sk_buff *skb)
{
	const struct nb_iface *iface;
	const struct nb_owner *o = NULL;
	struct nb_owner own = {};
	struct nb_pkt p = {};
	__u32 ifindex = skb->ifindex;
	__be16 h_proto = skb->protocol;
	bool found = false, forwarded = false;
	int r;

	/* Only managed interfaces have an IFB to redirect to. */
	iface = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!iface)
		return TC_ACT_OK;

	/* The ethertype eth_type_trans() found (after a VLAN tag the NIC
	 * took off): a frame's h_proto, without reading it. */
	if (h_proto != bpf_htons(ETH_P_IP) && h_proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	r = nb_parse_ip(skb, ETH_HLEN, h_proto == bpf_htons(ETH_P_IPV6), true, &p);
	if (r == NB_PARSE_TOO_LONG)
		return TC_ACT_SHOT;
	if (r != NB_PARSE_OK)
		return TC_ACT_OK;

	if (p.frag == NB_FRAG_LATER) {
		/* Its datagram's first fragment; one that overtook it: the last
		 * datagram's between the same addresses. */
		p.key.id = p.frag_id;
		o = bpf_map_lookup_elem(&frags, &p.key);
		if (!o) {
			p.key.id = 0;
			o = bpf_map_lookup_elem(&flows, &p.key);
		}
	} else if (p.key.proto == IPPROTO_TCP || p.key.proto == IPPROTO_UDP) {
		struct bpf_sock_tuple tuple = {};
		__u32 tuple_len = nb_sock_tuple(skb, &p, false, &tuple);
		bool sock = true;

		if (tuple_len)
			found = nb_tuple_owner(skb, &tuple, tuple_len, p.key.family, p.key.proto,
					       BPF_F_CURRENT_NETNS, &own, &sock);
		/* Forwarded to a socket of another network namespace. */
		if (!sock)
			forwarded = found = nb_netns_down_owner(skb, &p, &tuple, tuple_len, &own);
	} else {
		/* An echo reply to the socket that sent the request, else the
		 * last socket that sent this protocol to this peer. */
		p.key.id = nb_echo_id(skb, &p, true);
		o = bpf_map_lookup_elem(&flows, &p.key);
		if (!o && p.key.id != 0) {
			p.key.id = 0;
			o = bpf_map_lookup_elem(&flows, &p.key);
		}
	}
	if (o) {
		own = *o;
		found = true;
	}
	if (!found)
		return TC_ACT_OK;
	/* A scoped deny (scope.bpf.h): the socket's remote is refused. */
	if (own.cls.flags & NB_F_DENY)
		return TC_ACT_SHOT;
	/* A download for another namespace's socket: nb_ingress_acct does not
	 * count it there (nb_acct_managed()), so it is counted here, as it
	 * comes in (before the IFB's classes, as uploads are counted before
	 * the interface's). */
	if (nb_account && forwarded)
		nb_acct_add_frame(skb, &own.acct, true);

	if (p.frag == NB_FRAG_FIRST) {
		/* For the datagram's later fragments, and for those of the next
		 * one from this peer that come before its first. */
		p.key.proto = p.frag_proto;
		p.key.id = p.frag_id;
		bpf_map_update_elem(&frags, &p.key, &own, BPF_ANY);
		p.key.id = 0;
		bpf_map_update_elem(&flows, &p.key, &own, BPF_ANY);
	}

	if (!nb_class_applies(&own.cls, NB_F_DOWN))
		return TC_ACT_OK;

	/* skb->len: the frame, Ethernet header included. The pieces of a
	 * fragmented datagram all go to the bulk leaf. */
	skb->priority = NB_CLASSID(
		nb_leaf_minor(&own.cls, p.frag == NB_FRAG_NONE && skb->len <= ETH_HLEN + NB_SMALL_LEN));
	return bpf_redirect(iface->ifb_ifindex, 0);
}

/*
 * Downloads are counted where the socket receives them (see "Accounting"
 * in netbump.h): after the IFB's classes shaped them, so that what top
 * shows of a download never exceeds what its limit let through, and
 * without what the shaper dropped. Only packets that came in through a
 * managed interface, as nb_egress counts only those that leave through one
 * (the IFB hands a packet back with its interface restored).
 */
SEC("cgroup_skb/ingress")
int nb_ingress_acct(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct nb_sk_tag *tag;
	__u32 ifindex = skb->ifindex, segs;
	__u64 bytes, gen;

	if (!nb_account || !sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	tag = bpf_sk_storage_get(&sk_tags, sk, 0, 0);
	if (!tag || !nb_tag_filled(tag))
		return 1;
	/* A socket that only receives has its cache reset here when ifaces
	 * changed (the generation). */
	gen = nb_current_gen();
	if (tag->gen != gen)
		nb_tag_classify(tag, gen);
	if (tag->acct_ifindex != ifindex) {
		tag->acct_managed = nb_acct_managed(skb, ifindex);
		tag->acct_ifindex = ifindex;
	}
	if (!tag->acct_managed)
		return 1;
	/* From the network header, as on egress. */
	segs = nb_segs(skb);
	bytes = skb->len + ETH_HLEN;
	if (segs > 1)
		bytes += (__u64)(segs - 1) * (ETH_HLEN + nb_l3l4_len(skb, 0));
	nb_acct_add(tag, bytes, segs, true);
	return 1;
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

	if (!bpf_map_lookup_elem(&sock_rules, &cookie)) {
		struct nb_scope_key k = { .key = cookie, .kind = NB_SCOPE_KIND_SOCK };

		/* A socket that is a key of scoped rules or deny/allow only (a
		 * sock: target, a pid:'s or exe:'s earlier socket): reported,
		 * user space takes the key out with the rules on it. */
		if (!bpf_map_lookup_elem(&scope_keys, &k))
			return 1;
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
		if (!ev) {
			__sync_fetch_and_add(&nb_events_lost, 1);
			return 1;
		}
		ev->cookie = cookie;
		ev->type = NB_EVENT_SOCK_RELEASED;
		ev->pad = 0;
		bpf_ringbuf_submit(ev, 0);
		return 1;
	}

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

#include "exe.bpf.h"
#include "scope-hooks.bpf.h"

/* No GPL-only helper is used; "Dual BSD/GPL" is the GPL-compatible string
 * the kernel knows that is closest to this file's licence. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";
