/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Definitions shared by the BPF programs (bpf/netbump.bpf.c) and user space.
 * Every struct here is a map value or key: fixed-width types only, explicit
 * padding, and a comment wherever size or layout matters.
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Major number of every netbump HTB qdisc (on each managed interface and on
 * its IFB). 0x6e62 is "nb"; a packet is shaped by class NB_HTB_MAJOR:minor
 * when its skb->priority equals TC_H_MAKE(NB_HTB_MAJOR << 16, minor)
 * (htb_classify() looks skb->priority up as a class id first). */
#define NB_HTB_MAJOR 0x6e62u
#define NB_CLASSID(minor) ((NB_HTB_MAJOR << 16) | ((minor) & 0xffffu))

/* HTB minor ids 1..0xfffe are ours; 0 is the qdisc itself and 0xffff is
 * reserved by tc. Each rule has up to three classes on each device: its
 * own, 6e62:M (M in NB_MINOR_MIN..NB_RULE_MINOR_MAX), which holds the
 * limit, and under it (where the rule has leaves: NB_F_SPLIT) two leaves
 * that share it: NB_MINOR_SMALL(M), served first,
 * for packets of at most NB_SMALL_LEN bytes (TCP ACKs and handshakes,
 * requests, DNS, keystrokes), and NB_MINOR_BULK(M) for the rest. A small
 * packet so waits behind at most the frame being sent, not behind the
 * bulk queue of its own rule (an upload's queue holds ~50 ms), and a
 * download's ACKs do not queue behind an upload of the same target. */
#define NB_MINOR_MIN 1u
#define NB_MINOR_MAX 0xfffeu
#define NB_RULE_MINOR_MAX 0x3fffu
#define NB_MINOR_BULK(m) ((m) + 0x4000u)
#define NB_MINOR_SMALL(m) ((m) + 0x8000u)
/* The rule class of any of the three minors. */
#define NB_MINOR_RULE(x) ((x) & 0x3fffu)
/* Handles of the two leaf qdiscs, "X:": below 0x8000, where the kernel
 * never picks one by itself (qdisc_alloc_handle(), e.g. for the FIFO a
 * TBF makes), and never NB_HTB_MAJOR (the rule minor 0x2e63 is skipped). */
#define NB_LEAF_MAJOR_BULK(m) (m)
#define NB_LEAF_MAJOR_SMALL(m) ((m) + 0x3fffu)
/* A class the daemon makes for a moment at start on a new IFB to find out
 * which leaf qdisc the kernel has, and its leaf: beyond every rule's. */
#define NB_MINOR_PROBE 0xfffeu
#define NB_LEAF_MAJOR_PROBE 0x7fffu
/* IP packet length (egress; ingress adds the Ethernet header). */
#define NB_SMALL_LEN 256u

/* Deepest cgroup level matched by cgroup rules (level 0 is the mount root).
 * Bounds the loops the verifier must unroll. */
#define NB_MAX_DEPTH 32

/* Map sizes, fixed at load time. */
#define NB_MAX_CGROUP_RULES 65536
#define NB_MAX_UID_RULES 65536
#define NB_MAX_IFACES 1024
#define NB_MAX_SOCK_RULES 65536
/* Links into other network namespaces netbumpd follows (netns_links in
 * bpf/netns.bpf.h): one per container or namespace routed through it. */
#define NB_MAX_NETNS_LINKS 4096
/* Bytes in the events ring buffer: a power of 2 and a multiple of the page
 * size (BPF_MAP_TYPE_RINGBUF). One event takes 24 bytes (8 of ring header),
 * so this holds some 2700 unread events. */
#define NB_EVENTS_SIZE (64u * 1024u)
/* Entries of the per-process traffic counters (acct, see "Accounting"
 * below): socket owners seen at once. Per-CPU values: the map takes about
 * NB_MAX_ACCT * (sizeof(struct nb_acct) + 48) bytes per possible CPU. */
#define NB_MAX_ACCT 8192
/* Entries of the frags map (see "Fragments and other protocols" below):
 * datagrams whose first fragment was classified and whose later fragments
 * may still come. The kernel itself holds at most net.ipv4.ipfrag_high_thresh
 * (4 MiB by default) of fragments awaiting reassembly, some 1400 datagrams
 * of two or more full-size fragments; 2048 covers that. About 230 KiB
 * (LRU hash, preallocated: 40-byte key, 24-byte value, the map's own
 * per-entry header). */
#define NB_MAX_FRAGS 2048
/* Entries of the flows map: (protocol, peer, local address, ICMP echo id)
 * of the traffic other than TCP and UDP that targets' sockets send (ping,
 * raw sockets), and the peers of fragmented datagrams. One per ping process
 * and peer; about 460 KiB. */
#define NB_MAX_FLOWS 4096
/* IPv6 extension headers nb_ingress walks to reach the upper-layer header.
 * RFC 8200 section 4.1's order has six before it (hop-by-hop, destination
 * options, routing, fragment, AH, destination options; ESP ends the walk).
 * A chain still going after NB_MAX_EXTHDRS is dropped on a managed
 * interface (see "Fragments and other protocols"). */
#define NB_MAX_EXTHDRS 8

/* Directions a rule limits (struct nb_class.flags). */
enum {
	NB_F_UP = 1u << 0,   /* egress: skb->priority on the real interface */
	NB_F_DOWN = 1u << 1, /* ingress: redirect to the interface's IFB */
	/* The rule class has leaf classes under it: the bulk one
	 * (NB_MINOR_BULK), and once NB_F_SMALL_FIRST is set the one for
	 * small packets (NB_MINOR_SMALL). Without it the rule class is the
	 * leaf (a rule with no rule nested in it, past the first 1000). The small leaf is made a moment after the rule (netbumpd
	 * makes it when no request waits): until then all goes to the bulk. */
	NB_F_SPLIT = 1u << 3,
	NB_F_SMALL_FIRST = 1u << 2,
};

/* Value of the cgroup and uid rule maps, and the class cached on a socket. */
struct nb_class {
	__u32 minor; /* HTB class minor, 0 = no rule */
	__u32 flags; /* NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST */
};

/* Per-socket tag in the sk_storage map (BPF_F_CLONE: accepted TCP children
 * inherit the listener's tag). The cgroup ancestry and uid are captured when
 * the socket is created (cgroup/sock_create) or first seen on egress, so the
 * tc ingress program can re-classify a socket that only receives after the
 * rules changed: it cannot ask the kernel for a socket's cgroup itself, nor
 * for the cookie of a socket it looked up (bpf_get_socket_cookie() takes only
 * the skb there, and skb->sk is NULL on ingress).
 *
 * Layout: 8-byte fields first, then the 4-byte ones in pairs; no implicit
 * padding, sizeof == 312, 8-byte aligned. */
struct nb_sk_tag {
	__u64 gen;                    /* NB_TAG_GEN(nb_rules_gen) when cls was
	                               * computed; 0 = never classified */
	__u64 cookie;                 /* this socket's cookie (SO_COOKIE), the key
	                               * of sock_rules; 0 = not known yet (a tag
	                               * made without it: nb_egress fills it in on
	                               * the socket's next packet) */
	__u64 listener_cookie;        /* accepted TCP socket: the cookie of the
	                               * listener it came from, else 0 (see
	                               * "Classification" below) */
	__u64 cgroup[NB_MAX_DEPTH];   /* cgroup ids of levels 0..level */
	__u32 level;                  /* level of the socket's own cgroup, capped at
	                               * NB_MAX_DEPTH - 1 (deeper sockets match rules on
	                               * their ancestors down to that level). A tag with
	                               * level 0 and cgroup[0] 0 is not filled yet. */
	__u32 uid;                    /* owner uid: the creating task's real uid
	                               * (sock_create), else the socket's sk_uid
	                               * (egress; as seen from the netns' user ns) */
	struct nb_class cls;          /* the class this socket falls under */
	__u32 tgid;                   /* the process that created the socket (its
	                               * tgid in the initial PID namespace), 0 when
	                               * not known: tag made on egress, or
	                               * accounting off (see "Accounting") */
	__u32 acct_ifindex;           /* accounting: the interface the socket last
	                               * sent through, 0 = none since the last
	                               * classification (nb_egress caches ... */
	__u32 acct_managed;           /* ... whether it is in ifaces, so that it
	                               * looks that up only when the route changes;
	                               * the daemon bumps nb_rules_gen when ifaces
	                               * changes, which resets the cache) */
	__u32 scoped;                 /* some key of the tag has scoped rules
	                               * (scope.bpf.h): the class depends on the
	                               * remote address */
};

/* Value of the ifb map: key is the ifindex (__u32) of a managed interface. */
struct nb_iface {
	__u32 ifb_ifindex; /* where its downloads are redirected */
	__u32 pad;
};

/*
 * Rule generation. The BPF object has a global `volatile __u64 nb_rules_gen`
 * in .bss (skel->bss->nb_rules_gen, mmaped). After any change to
 * sock_rules, cgroup_rules, uid_rules or ifaces (tags cache whether their
 * interface is managed, for accounting), user space increments it (a plain
 * store of the next value is enough: there is one writer; the BPF programs
 * never write it, not even nb_sock_release when it deletes from sock_rules).
 * It may start at 0.
 *
 * A tag stores NB_TAG_GEN(nb_rules_gen) as read BEFORE its rule lookups, so
 * a tag classified while the daemon was mid-update is redone on the next
 * packet after the bump. NB_TAG_GEN never yields 0, so tag->gen == 0 means
 * "never classified" whatever value user space starts the counter at.
 */
#define NB_TAG_GEN(rules_gen) ((__u64)(rules_gen) + 1)

/*
 * Classification of a socket tag, first match wins:
 *   1. sock_rules[tag->cookie]: a rule on this very socket.
 *   2. sock_rules[tag->listener_cookie]: a rule on the listening socket an
 *      accepted TCP connection came from covers the connection too. A
 *      process rule needs this: its listeners from before the rule stay in
 *      their old cgroup, and so do the connections they accept later.
 *   3. cgroup_rules: the deepest of tag->cgroup[tag->level .. 0] that has an
 *      entry.
 *   4. uid_rules[tag->uid].
 *   5. uid_rules[NB_UID_ALL]: the rule on everything ("all").
 *   6. no class (minor 0): the socket is not shaped.
 * An entry with minor 0 is a match too, at every level: it exempts that
 * socket / subtree / user from the rules below it.
 * Cgroup ids are the kernel's (the inode number of the cgroup2 directory);
 * levels are absolute in the cgroup2 hierarchy (level 0 = its root, id 1),
 * independent of the daemon's --cgroup-root and of cgroup namespaces.
 *
 * Precedence of the daemon's rules: socket > process > cgroup > user > all.
 * Each matching rule's entry names its own class, which is nested in the
 * classes of the rules that contain it (the daemon's nest.h), so what a
 * first match picks is bounded by every enclosing rule. A
 * process rule is a cgroup rule on a cgroup the daemon makes for the process
 * (the deepest, by construction) plus sock_rules entries for the sockets the
 * process had before (a socket's cgroup is fixed when it is made).
 *
 * Cookies: the kernel's socket cookie (getsockopt SO_COOKIE, or
 * sock_diag's idiag_cookie), unique per boot and never reused, so a stale
 * sock_rules entry never matches another socket. An accepted TCP socket is
 * cloned with its listener's tag: until its first packet out, its tag still
 * says tag->cookie == the listener's cookie (so it is classified as step 2
 * would); nb_egress then moves that to listener_cookie and stores the
 * socket's own.
 */

/* The rule maps, all with struct nb_class values: sock_rules (key: __u64
 * socket cookie), cgroup_rules (key: __u64 cgroup id), uid_rules (key:
 * __u32 uid). */
/* uid_rules key of the rule on everything: (uid_t)-1, which no process has
 * (setuid(2) takes it to mean "unchanged"). */
#define NB_UID_ALL 0xffffffffu

/*
 * Socket release events. nb_sock_release (cgroup/sock_release, attached by
 * bpf_link at the daemon's cgroup root like the others; it runs when the
 * last file reference to an AF_INET/AF_INET6 socket in that subtree goes
 * away) deletes the socket's sock_rules entry, if it has one, and then
 * queues one struct nb_event in the ring buffer map `events`
 * (BPF_MAP_TYPE_RINGBUF, NB_EVENTS_SIZE bytes). Sockets without an entry
 * make no event. An event is queued only when the program's delete
 * succeeded, so a socket whose entry user space deleted first makes none.
 *
 * Consuming (daemon): ring_buffer__new(bpf_map__fd(skel->maps.events), cb,
 * ...), add ring_buffer__epoll_fd() to the sd-event loop (EPOLLIN) and call
 * ring_buffer__consume() when it fires. For each NB_EVENT_SOCK_RELEASED:
 * forget the socket's rule (the entry is already gone: do not delete it
 * again), and bump nb_rules_gen: tags that cached the class keep it until
 * the next bump (connections accepted from a released listener, via
 * listener_cookie; the socket itself while the kernel still sends its
 * queued data and FIN after close()).
 *
 * Lost events: if the ring buffer is full the entry is deleted anyway (a
 * map full of dead cookies would refuse new socket rules) and the global
 * `volatile __u64 nb_events_lost` in .bss (skel->bss->nb_events_lost) is
 * incremented. When it grows, the daemon resynchronises: every socket rule
 * of its own whose cookie is no longer in sock_rules was released.
 *
 * Sockets outside the cgroup subtree the program is attached to (e.g. a
 * process rule's pre-existing socket made elsewhere) make no event: their
 * entries stay until user space deletes them.
 */
enum {
	NB_EVENT_SOCK_RELEASED = 1, /* cookie: the released socket */
};

struct nb_event {
	__u64 cookie; /* socket cookie */
	__u32 type;   /* NB_EVENT_* */
	__u32 pad;    /* 0; sizeof == 16 */
};

/*
 * Accounting: per-process traffic counters for `netbumpctl top`.
 *
 * The BPF map `acct` (BPF_MAP_TYPE_LRU_PERCPU_HASH, NB_MAX_ACCT entries) is
 * keyed by the owner of a socket as its tag records it: struct
 * nb_acct_key. nb_egress adds each packet a tagged socket sends through a
 * managed interface (one in the ifaces map) to key.up_*; nb_ingress_acct
 * (cgroup_skb/ingress) adds each packet a tagged socket receives from one to
 * key.down_*, after the IFB shaped it: a download is counted as its limit
 * let it through, without what the shaper dropped. That is one lookup in
 * acct per packet, on the current CPU's copy of the value, without atomics
 * (nb_egress asks ifaces only when a socket's interface changes: the tag
 * caches the answer); traffic of sockets without a tag (outside the daemon's
 * cgroup root, or not found on ingress) is not looked at. User space sums
 * the per-CPU values.
 *
 * Sockets of other network namespaces (containers routed through the
 * daemon's): an ifindex there names a device of their namespace, so the
 * cgroup programs count only sockets of the daemon's namespace
 * (nb_netns_cookie, SO_NETNS_COOKIE). Their traffic is counted where it
 * crosses a shaped interface, forwarded: uploads by nb_fwd_egress,
 * downloads by nb_ingress when it finds the socket through the FIB (as they
 * come in, before the IFB's classes: what a download limit drops is
 * counted there).
 *
 * Bytes are counted as tc counts them at the link layer, so that they
 * compare with the rule's HTB class counters: the packet with a 14-byte
 * Ethernet header (both programs see it from the network header on; a
 * fragmented datagram counts once, reassembled), and for a
 * GSO/GRO packet of N segments, N - 1 more copies of its headers.
 *
 * tgid is the creating process, taken in cgroup/sock_create; a socket made
 * before the programs were attached has its tag made on egress, where the
 * sender cannot be told from whoever the CPU was interrupting: tgid 0, and
 * the daemon attributes it by cgroup and uid. Accepted TCP connections
 * inherit the listener's tag, so they count for the process that created the
 * listener.
 *
 * When the map is full, the least recently used owner's entry is dropped to
 * make room (LRU): its counters start again from zero the next time it sends
 * or receives; the daemon sees a counter go backwards and restarts that
 * owner's totals. Nothing is lost for owners that are active.
 *
 * The whole feature is a load-time switch: `const volatile bool nb_account`
 * in .rodata (skel->rodata->nb_account, default true), set between
 * netbump_bpf__open() and __load(). With false the verifier removes the
 * accounting code: the data path is what it is without it.
 */
struct nb_acct_key {
	__u64 cgroup; /* id of the socket's own cgroup (tag->cgroup[tag->level]) */
	__u32 tgid;   /* tag->tgid: 0 = creator unknown */
	__u32 uid;    /* tag->uid */
};                    /* sizeof == 16 */

struct nb_acct {
	__u64 up_bytes;     /* link-layer bytes sent (nb_egress) */
	__u64 up_packets;   /* packets on the wire (a GSO packet counts its
	                     * segments, as tc does) */
	__u64 down_bytes;   /* link-layer bytes received (nb_ingress_acct) */
	__u64 down_packets;
};                          /* sizeof == 32, per CPU */

/*
 * Fragments and other protocols (downloads).
 *
 * nb_ingress finds the socket of a TCP or UDP packet by its ports, after
 * walking the IPv6 extension headers (hop-by-hop, routing, destination
 * options, fragment, AH; at most NB_MAX_EXTHDRS). What has no ports needs
 * another key:
 *
 *   - Non-first fragments of an IP datagram. The first fragment is
 *     classified like an unfragmented packet; its owner (struct nb_owner)
 *     is stored in the LRU hash `frags` (NB_MAX_FRAGS) under
 *     struct nb_flow_key { remote = source, local = destination,
 *     proto = the IPv4 protocol or the IPv6 fragment header's next header,
 *     id = the fragment id }, and every later fragment with the same key
 *     gets it. A later fragment that comes before its first fragment (the
 *     sender or the path reordered them) finds no entry there and takes the
 *     owner of the last classified first fragment between the same
 *     addresses with the same protocol, from `flows` (id 0). Only the very
 *     first such fragment between two addresses passes unclassified.
 *     Fragments never go to a small-packet leaf: a datagram's pieces keep
 *     together.
 *
 *   - Protocols other than TCP and UDP (ICMP and ICMPv6 of ping sockets,
 *     raw sockets, any other IP protocol). nb_egress, on each packet such a
 *     socket of a target sends, stores the socket's owner in the LRU hash
 *     `flows` (NB_MAX_FLOWS) under { remote = destination, local = source,
 *     proto, id = the echo identifier of an ICMP/ICMPv6 echo request, else
 *     0 } (it writes only when the entry differs). nb_ingress looks a packet
 *     of such a protocol up there { remote = source, local = destination,
 *     id = the identifier of an echo reply, else 0 }, then with id 0. So an
 *     echo reply is classified with the ping socket that sent the request,
 *     and other traffic with the last socket that sent that protocol to that
 *     peer. What no socket of the target sent first (an ICMP error for a
 *     TCP or UDP flow, a raw socket that only listens) is not classified.
 *     An entry keeps the class it was written with until the socket sends
 *     again: a rule change reaches such traffic with the next packet out.
 *
 *   - An IPv6 packet whose extension headers go on past NB_MAX_EXTHDRS is
 *     dropped (TC_ACT_SHOT) on a managed interface: passed unclassified it
 *     would be a way around every download limit that any sender could
 *     choose, and no stack sends such chains (RFC 9098 finds them dropped
 *     on much of the Internet already).
 *
 *   - ESP (IPsec transport mode) and anything else whose upper-layer
 *     header cannot be read passes unclassified.
 */
struct nb_flow_key {
	__u32 remote[4]; /* the peer's address (IPv4: remote[0], the rest 0) */
	__u32 local[4];  /* our address, likewise */
	__u32 id;        /* frags: the fragment id (IPv4: 16 bits); flows: the
	                  * ICMP echo identifier (host order), else 0 */
	__u8 family;     /* 4 or 6 */
	__u8 proto;      /* IP protocol / IPv6 next header, see above */
	__u16 pad;       /* 0 */
};                       /* sizeof == 40 */

/* Value of frags and flows: the class and, for the accounting, the owner
 * of the socket the traffic was classified with. */
struct nb_owner {
	struct nb_class cls;
	struct nb_acct_key acct;
};                       /* sizeof == 24 */

/* Names the daemon and the BPF object agree on. */
#define NB_PROG_EGRESS "nb_egress"
#define NB_PROG_SOCK_CREATE "nb_sock_create"
#define NB_PROG_INGRESS "nb_ingress"
#define NB_PROG_SOCK_RELEASE "nb_sock_release"

/*
 * Remote scopes (bpf/scope.bpf.h). A scoped rule covers only the traffic
 * of its target whose remote address (destination of what is sent, source
 * of what arrives) is in its scope; deny and allow rules are scoped rules
 * that drop (or exempt from a drop) instead of shaping.
 *
 * Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d).
 *
 *   scope_cidrs (LPM trie, key struct nb_scope_lpm_key, value __u32: the
 *     prefix length of the matching entry over the 128 address bits): the
 *     CIDRs of each scope id (sid). sid NB_SCOPE_SID_LAN holds what "lan"
 *     stands for on this host.
 *   scope_keys (hash, key struct nb_scope_key, value struct nb_scope_set):
 *     the scoped rules of one target key as the rule maps know it (a
 *     socket cookie, a cgroup id, a uid or NB_UID_ALL).
 *
 * Classification of a tag with scoped rules at one of its keys, walking
 * the keys in the order of nb_tag_classify (socket, listener, cgroups
 * deepest first, uid, all): at each key, the scoped entries whose scope
 * holds the remote address, the longest matching prefix first ("lan" counts
 * as the prefix of the lan entry it hit, "internet" as 0), then the key's
 * unscoped rule. The first shaping match gives the class; the first deny
 * or allow match decides access (allow: not denied). Cached per socket in
 * sk_storage `sk_scopes` for the last remote address and the tag's gen.
 */
#define NB_SCOPE_SID_LAN 1u
/* In a scope_cidrs value under NB_SCOPE_SID_LAN: the prefix is loopback,
 * which neither "lan" nor "internet" covers. */
#define NB_SCOPE_V_LOOPBACK 0x100u
#ifndef NB_SCOPES_PER_KEY
#define NB_SCOPES_PER_KEY 8
#endif
#define NB_MAX_SCOPE_CIDRS 65536
#define NB_MAX_SCOPE_KEYS 4096
#define NB_MAX_SCOPE_SIDS 4096 /* sids 1..NB_MAX_SCOPE_SIDS - 1 */

/* Transient flag of a class a scoped lookup returns: the packet is denied
 * (never stored in a rule map). */
#define NB_F_DENY (1u << 4)

enum {
	NB_SCOPE_KIND_SOCK = 1,   /* key: socket cookie */
	NB_SCOPE_KIND_CGROUP = 2, /* key: cgroup id */
	NB_SCOPE_KIND_UID = 3,    /* key: uid, NB_UID_ALL for "all" */
};

/* nb_scope_ent.words */
enum {
	NB_SCOPE_LAN = 1u << 0,
	NB_SCOPE_INTERNET = 1u << 1,
};

/* nb_scope_ent.action */
enum {
	NB_SCOPE_SHAPE = 0,
	NB_SCOPE_DENY = 1,
	NB_SCOPE_ALLOW = 2,
};

struct nb_scope_lpm_key {
	__u32 prefixlen; /* 32 (the sid) + prefix length over the address */
	__u32 sid;       /* big-endian, so the trie compares it first */
	__u8 addr[16];
};                       /* sizeof == 24 */

struct nb_scope_key {
	__u64 key;
	__u32 kind; /* NB_SCOPE_KIND_* */
	__u32 pad;  /* 0 */
};                  /* sizeof == 16 */

struct nb_scope_ent {
	__u32 sid;    /* its CIDRs in scope_cidrs; one per rule, also its id
	               * in scope_stats and in denial events */
	__u16 words;  /* NB_SCOPE_LAN | NB_SCOPE_INTERNET */
	__u16 action; /* NB_SCOPE_* */
	struct nb_class cls; /* NB_SCOPE_SHAPE: the rule's class */
};                    /* sizeof == 16 */

struct nb_scope_set {
	__u32 n;   /* entries used */
	__u32 pad; /* 0 */
	struct nb_scope_ent e[NB_SCOPES_PER_KEY];
};                 /* sizeof == 136 */

/* Per-socket cache (sk_storage sk_scopes). */
struct nb_scope_cache {
	__u64 gen;       /* the tag's gen it was computed with; 0 = none */
	__u8 addr[16];   /* the remote address */
	struct nb_class cls; /* flags with NB_F_DENY when denied */
	__u32 deny_sid;  /* the deny rule's sid, 0 = allowed */
	__u32 pad;
	__u64 reported_ns; /* bpf_ktime_get_ns() of the last denial event */
};                       /* sizeof == 56 */

/* Per-CPU counters of a scoped rule (scope_stats, array indexed by sid). */
struct nb_scope_stats {
	__u64 denied_packets;
	__u64 denied_bytes;
};

/* A denied packet (ring buffer `denials`, NB_DENIALS_SIZE), at most one per
 * socket and remote per NB_DENIAL_GAP_NS (the cache remembers when). */
#define NB_DENIALS_SIZE (64u * 1024u)
struct nb_denial {
	__u8 addr[16];   /* the remote */
	__u64 cookie;    /* the socket's cookie (0: not known) */
	__u32 sid;       /* the deny rule */
	__u32 uid;       /* the socket's owner */
	__u32 tgid;      /* who made it, 0 = not known */
	__u16 port;      /* remote port, host order, 0 = none */
	__u8 proto;      /* IPPROTO_* */
	__u8 dir;        /* NB_DENIAL_* */
};                       /* sizeof == 40 */
#define NB_DENIAL_GAP_NS 1000000000ull
enum {
	NB_DENIAL_OUT = 0,     /* a packet sent was dropped */
	NB_DENIAL_IN = 1,      /* a packet received was dropped */
	NB_DENIAL_CONNECT = 2, /* connect()/sendmsg() refused with EPERM */
};
