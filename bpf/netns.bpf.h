/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Traffic of other network namespaces (containers, `ip netns` workloads)
 * routed through the one netbumpd runs in. Included from netbump.bpf.c
 * after nb_tuple_owner(); see "Other network namespaces" in netbump(7).
 *
 * The cgroup programs already tag such sockets: cgroups are global, so
 * nb_sock_create and nb_egress run for a socket of a target in whatever
 * namespace it lives. What the namespace netbumpd runs in sees of that
 * traffic is forwarded packets: ip_forward() resets skb->priority, and the
 * ingress socket lookup in the own namespace finds nothing. So:
 *   - uploads: nb_fwd_egress (tcx egress on every shaped interface) takes
 *     a forwarded packet that came in by a link whose peer is in another
 *     namespace (e.g. nspawn's ve-NAME; skb->ingress_ifindex), looks the
 *     sending socket up in that namespace and sets skb->priority for the
 *     HTB there, as nb_egress does for a local socket. A packet that left
 *     masqueraded is looked up by the tuple conntrack had before NAT.
 *   - downloads: nb_ingress on the shaped interface finds no local socket;
 *     nb_netns_down_owner() asks the FIB where the packet goes, and when
 *     that is such a link, looks the receiving socket up in its peer's
 *     namespace; a masqueraded download (for a local address) is routed
 *     and looked up by the destination conntrack will translate it to.
 *     nb_ingress then redirects to the interface's IFB as for a local
 *     socket.
 * A rule's class is the same one for local and forwarded traffic on an
 * interface, so one rule caps the sum over every namespace its target has
 * sockets in.
 */
#pragma once

/* tcx return codes (include/uapi/linux/bpf.h, kernel 6.6): run the next
 * program (and the clsact filters after them). */
#define NB_TCX_NEXT (-1)
#define NB_AF_INET 2
#define NB_AF_INET6 10

/* Links whose peer is in another network namespace: key the link's ifindex
 * in the daemon's namespace, value the peer namespace's id there
 * (IFLA_LINK_NETNSID), which is what the socket lookup helpers take as
 * their netns argument. Filled by the daemon (src/netbumpd/netns.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_NETNS_LINKS);
	__type(key, __u32);
	__type(value, __u32);
} netns_links SEC(".maps");

/*
 * Connection tracking, for a workload behind NAT (MASQUERADE on the
 * uplink: nspawn's default with networkd, Docker's and Podman's default
 * bridges). On this namespace's wire its traffic carries this namespace's
 * address and port, not the socket's: an upload leaves translated (SNAT
 * runs at POSTROUTING, before tcx egress), a download arrives for this
 * namespace's address and is translated back only after tc ingress
 * (PREROUTING). The conntrack entry of the connection knows both sides.
 *
 * bpf_skb_ct_lookup() is a kfunc of nf_conntrack (kernel 6.0; a module on
 * most systems). The externs are weak and every call is behind nb_ct, which
 * the daemon sets only when it found the kfunc (bpf.c): without it the
 * branch is dead code the verifier removes, and the programs load.
 */
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_len,
					 struct bpf_ct_opts *opts, __u32 opts_len) __ksym __weak;
extern void bpf_ct_release(struct nf_conn *ct) __ksym __weak;

const volatile bool nb_ct = false;

/* The size of struct bpf_ct_opts up to dir (net/netfilter/nf_conntrack_bpf.c,
 * NF_BPF_CT_OPTS_OLD_SZ): the kernels since 6.0 all take it; the zone
 * fields after it (kernel 6.10) stay unused, the default zone. */
#define NB_CT_OPTS_SZ 12

/*
 * Turns tuple (nb_sock_tuple()'s orientation: remote -> local) of a packet
 * as this namespace's wire has it into the one the socket at the other end
 * of the translation sees, from the connection's conntrack entry in this
 * namespace: the local end becomes the workload's address and port. The
 * tuple of a packet is the one of its direction (a download of a
 * masqueraded connection: the reply one) or, as nb_sock_tuple() turns an
 * upload around, the other direction's (an upload leaves translated: the
 * reply tuple again). Whichever it matched, the socket's side is the source
 * of the other direction's tuple. false (tuple unchanged) when there is no
 * entry, or it translates nothing.
 */
static __always_inline bool nb_ct_untranslate(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_len,
					      __u8 family, __u8 proto)
{
	struct bpf_ct_opts opts = { .netns_id = BPF_F_CURRENT_NETNS, .l4proto = proto };
	const struct nf_conntrack_tuple *o, *other;
	struct bpf_sock_tuple t = {};
	struct nf_conn *ct;
	bool same;

	if (!nb_ct)
		return false;
	ct = bpf_skb_ct_lookup(skb, tuple, tuple_len, &opts, NB_CT_OPTS_SZ);
	if (!ct)
		return false;
	/* Which direction the tuple matched: the other one says where the
	 * packet goes (or came from) before NAT. */
	o = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
	if (family == 4) {
		same = o->src.u3.ip == tuple->ipv4.saddr && o->src.u.all == tuple->ipv4.sport &&
		       o->dst.u3.ip == tuple->ipv4.daddr && o->dst.u.all == tuple->ipv4.dport;
		other = same ? &ct->tuplehash[IP_CT_DIR_REPLY].tuple : o;
		t.ipv4.saddr = other->dst.u3.ip;
		t.ipv4.sport = other->dst.u.all;
		t.ipv4.daddr = other->src.u3.ip;
		t.ipv4.dport = other->src.u.all;
	} else {
		same = o->src.u.all == tuple->ipv6.sport && o->dst.u.all == tuple->ipv6.dport;
		for (int i = 0; i < 4; i++)
			same = same && o->src.u3.all[i] == tuple->ipv6.saddr[i] &&
			       o->dst.u3.all[i] == tuple->ipv6.daddr[i];
		other = same ? &ct->tuplehash[IP_CT_DIR_REPLY].tuple : o;
		for (int i = 0; i < 4; i++) {
			t.ipv6.saddr[i] = other->dst.u3.all[i];
			t.ipv6.daddr[i] = other->src.u3.all[i];
		}
		t.ipv6.sport = other->dst.u.all;
		t.ipv6.dport = other->src.u.all;
	}
	bpf_ct_release(ct);
	/* Nothing translated: the lookups before found what there is. */
	if (family == 4)
		same = t.ipv4.saddr == tuple->ipv4.saddr && t.ipv4.sport == tuple->ipv4.sport &&
		       t.ipv4.daddr == tuple->ipv4.daddr && t.ipv4.dport == tuple->ipv4.dport;
	else {
		same = t.ipv6.sport == tuple->ipv6.sport && t.ipv6.dport == tuple->ipv6.dport;
		for (int i = 0; i < 4; i++)
			same = same && t.ipv6.saddr[i] == tuple->ipv6.saddr[i] &&
			       t.ipv6.daddr[i] == tuple->ipv6.daddr[i];
	}
	if (same)
		return false;
	*tuple = t;
	return true;
}

/* The interface the forward path sends a packet of tuple (remote ->
 * local) out by: the FIB lookup it will make (policy rules included).
 * BPF_FIB_LKUP_RET_NOT_FWDED for a local destination. */
static __always_inline long nb_fib_oif(struct __sk_buff *skb, const struct bpf_sock_tuple *tuple, __u8 family,
				       __u8 proto, __u32 *ret_oif)
{
	struct bpf_fib_lookup fib = {};
	long r;

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = proto;
	if (family == 4) {
		fib.family = NB_AF_INET;
		fib.ipv4_src = tuple->ipv4.saddr;
		fib.ipv4_dst = tuple->ipv4.daddr;
	} else {
		fib.family = NB_AF_INET6;
		__builtin_memcpy(fib.ipv6_src, tuple->ipv6.saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, tuple->ipv6.daddr, 16);
	}
	/* The neighbour does not matter, only the interface. */
	r = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	*ret_oif = fib.ifindex;
	return r;
}

/*
 * The owner of a TCP or UDP packet that arrived on a shaped interface,
 * found no local socket, and is routed on to a link into another
 * namespace: the socket it is for there. tuple is the packet's
 * (nb_sock_tuple()). A packet for a local address without a socket may be
 * a masqueraded download: the destination conntrack will give it decides.
 */
static __always_inline bool nb_netns_down_owner(struct __sk_buff *skb, const struct nb_pkt *p,
						struct bpf_sock_tuple *tuple, __u32 tuple_len, struct nb_owner *ret)
{
	const __u32 *nsid;
	bool sock;
	__u32 oif;
	long r;

	r = nb_fib_oif(skb, tuple, p->key.family, p->key.proto, &oif);
	if (r == BPF_FIB_LKUP_RET_NOT_FWDED && nb_ct_untranslate(skb, tuple, tuple_len, p->key.family, p->key.proto))
		r = nb_fib_oif(skb, tuple, p->key.family, p->key.proto, &oif);
	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH && r != BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return false;
	nsid = bpf_map_lookup_elem(&netns_links, &oif);
	if (!nsid)
		return false;
	return nb_tuple_owner(skb, tuple, tuple_len, p->key.family, p->key.proto, *nsid, ret, &sock);
}

/*
 * Every shaped interface, at tcx egress before its HTB. A forwarded packet
 * (no local socket) that came in by a link into another namespace
 * (skb->ingress_ifindex, which the forward path keeps, unlike
 * skb->priority) gets the class of the socket that sent it there;
 * classification follows nb_ingress (fragments, protocols without ports),
 * oriented the other way: the sender is local to the peer. A forwarded
 * packet without a class keeps none of ours either: a download classified
 * on the interface it came in by (IPv6 forwarding keeps skb->priority) was
 * shaped there already. Local sockets' packets pass as they are.
 */
SEC("tc")
int nb_fwd_egress(struct __sk_buff *skb)
{
	const struct nb_owner *o = NULL;
	struct nb_owner own = {};
	struct nb_pkt p = {};
	__u32 in = skb->ingress_ifindex;
	__be16 h_proto = skb->protocol;
	const __u32 *nsid;
	bool found = false;

	if (skb->sk)
		return NB_TCX_NEXT;
	if ((skb->priority >> 16) == NB_HTB_MAJOR)
		skb->priority = 0;
	nsid = bpf_map_lookup_elem(&netns_links, &in);
	if (!nsid)
		return NB_TCX_NEXT;
	if (h_proto != bpf_htons(ETH_P_IP) && h_proto != bpf_htons(ETH_P_IPV6))
		return NB_TCX_NEXT;
	if (nb_parse_ip(skb, ETH_HLEN, h_proto == bpf_htons(ETH_P_IPV6), false, &p) != NB_PARSE_OK)
		return NB_TCX_NEXT;

	if (p.frag == NB_FRAG_LATER) {
		p.key.id = p.frag_id;
		o = bpf_map_lookup_elem(&frags, &p.key);
		if (!o) {
			p.key.id = 0;
			o = bpf_map_lookup_elem(&flows, &p.key);
		}
	} else if (p.key.proto == IPPROTO_TCP || p.key.proto == IPPROTO_UDP) {
		struct bpf_sock_tuple tuple = {};
		__u32 tuple_len = nb_sock_tuple(skb, &p, true, &tuple);
		bool sock = true;

		if (tuple_len)
			found = nb_tuple_owner(skb, &tuple, tuple_len, p.key.family, p.key.proto, *nsid, &own, &sock);
		/* None there: it left translated (masquerade). */
		if (!sock && nb_ct_untranslate(skb, &tuple, tuple_len, p.key.family, p.key.proto))
			found = nb_tuple_owner(skb, &tuple, tuple_len, p.key.family, p.key.proto, *nsid, &own, &sock);
	} else {
		/* nb_egress learned the sender in its own namespace. */
		p.key.id = nb_echo_id(skb, &p, false);
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
		return NB_TCX_NEXT;

	if (p.frag == NB_FRAG_FIRST) {
		p.key.proto = p.frag_proto;
		p.key.id = p.frag_id;
		bpf_map_update_elem(&frags, &p.key, &own, BPF_ANY);
		p.key.id = 0;
		bpf_map_update_elem(&flows, &p.key, &own, BPF_ANY);
	}
	/* The sender's upload counters (netbumpctl top): nb_egress did not
	 * count it in its own namespace (nb_acct_managed()). */
	if (nb_account)
		nb_acct_add_frame(skb, &own.acct, false);
	/* skb->len: the frame, Ethernet header included. */
	if (nb_class_applies(&own.cls, NB_F_UP))
		skb->priority = NB_CLASSID(
			nb_leaf_minor(&own.cls, p.frag == NB_FRAG_NONE && skb->len <= ETH_HLEN + NB_SMALL_LEN));
	return NB_TCX_NEXT;
}
