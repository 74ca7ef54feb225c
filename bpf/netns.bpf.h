/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Traffic of other network namespaces (containers, `ip netns` workloads)
 * routed through the one netbumpd runs in. Included from netbump.bpf.c
 * after nb_sock_owner(); see "Other network namespaces" in netbump(7).
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
 *     HTB there, as nb_egress does for a local socket.
 *   - downloads: nb_ingress on the shaped interface finds no local socket;
 *     nb_netns_down_owner() asks the FIB where the packet goes, and when
 *     that is such a link, looks the receiving socket up in its peer's
 *     namespace. nb_ingress then redirects to the interface's IFB as for a
 *     local socket.
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
 * The owner of a TCP or UDP packet that arrived on a shaped interface and
 * is routed on to a link into another namespace: the socket it is for
 * there. The FIB lookup is the one the forward path will make (policy
 * rules included); it fails (not forwarded) for local destinations.
 */
static __always_inline bool nb_netns_down_owner(struct __sk_buff *skb, const struct nb_pkt *p, struct nb_owner *ret)
{
	struct bpf_fib_lookup fib = {};
	const __u32 *nsid;
	__u32 oif;
	long r;

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->key.proto;
	if (p->key.family == 4) {
		fib.family = NB_AF_INET;
		fib.ipv4_src = p->key.remote[0];
		fib.ipv4_dst = p->key.local[0];
	} else {
		fib.family = NB_AF_INET6;
		__builtin_memcpy(fib.ipv6_src, p->key.remote, 16);
		__builtin_memcpy(fib.ipv6_dst, p->key.local, 16);
	}
	/* The neighbour does not matter, only the interface. */
	r = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH && r != BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return false;
	oif = fib.ifindex;
	nsid = bpf_map_lookup_elem(&netns_links, &oif);
	if (!nsid)
		return false;
	return nb_sock_owner(skb, p, ret, *nsid, false);
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
		found = nb_sock_owner(skb, &p, &own, *nsid, true);
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
