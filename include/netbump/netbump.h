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

/* HTB minor ids 1..0xfffe are rule classes; 0 is the qdisc itself and
 * 0xffff is reserved by tc. */
#define NB_MINOR_MIN 1u
#define NB_MINOR_MAX 0xfffeu

/* Deepest cgroup level matched by cgroup rules (level 0 is the mount root).
 * Bounds the loops the verifier must unroll. */
#define NB_MAX_DEPTH 32

/* Map sizes, fixed at load time. */
#define NB_MAX_CGROUP_RULES 65536
#define NB_MAX_UID_RULES 65536
#define NB_MAX_IFACES 1024

/* Directions a rule limits (struct nb_class.flags). */
enum {
	NB_F_UP = 1u << 0,   /* egress: skb->priority on the real interface */
	NB_F_DOWN = 1u << 1, /* ingress: redirect to the interface's IFB */
};

/* Value of the cgroup and uid rule maps, and the class cached on a socket. */
struct nb_class {
	__u32 minor; /* HTB class minor, 0 = no rule */
	__u32 flags; /* NB_F_UP | NB_F_DOWN */
};

/* Per-socket tag in the sk_storage map (BPF_F_CLONE: accepted TCP children
 * inherit the listener's tag). The cgroup ancestry and uid are captured when
 * the socket is created (cgroup/sock_create) or first seen on egress, so the
 * tc ingress program can re-classify a socket that only receives after the
 * rules changed: it cannot ask the kernel for a socket's cgroup itself. */
struct nb_sk_tag {
	__u64 gen;                    /* NB_TAG_GEN(nb_rules_gen) when cls was
	                               * computed; 0 = never classified */
	__u64 cgroup[NB_MAX_DEPTH];   /* cgroup ids of levels 0..level */
	__u32 level;                  /* level of the socket's own cgroup, capped at
	                               * NB_MAX_DEPTH - 1 (deeper sockets match rules on
	                               * their ancestors down to that level). A tag with
	                               * level 0 and cgroup[0] 0 is not filled yet. */
	__u32 uid;                    /* owner uid: the creating task's real uid
	                               * (sock_create), else the socket's sk_uid
	                               * (egress; as seen from the netns' user ns) */
	struct nb_class cls;          /* the class this socket falls under */
};

/* Value of the ifb map: key is the ifindex (__u32) of a managed interface. */
struct nb_iface {
	__u32 ifb_ifindex; /* where its downloads are redirected */
	__u32 pad;
};

/*
 * Rule generation. The BPF object has a global `volatile __u64 nb_rules_gen`
 * in .bss (skel->bss->nb_rules_gen, mmaped). After any change to
 * cgroup_rules or uid_rules, user space increments it (a plain store of the
 * next value is enough: there is one writer). It may start at 0.
 *
 * A tag stores NB_TAG_GEN(nb_rules_gen) as read BEFORE its rule lookups, so
 * a tag classified while the daemon was mid-update is redone on the next
 * packet after the bump. NB_TAG_GEN never yields 0, so tag->gen == 0 means
 * "never classified" whatever value user space starts the counter at.
 */
#define NB_TAG_GEN(rules_gen) ((__u64)(rules_gen) + 1)

/*
 * Classification of a socket tag, first match wins:
 *   1. cgroup_rules: the deepest of tag->cgroup[tag->level .. 0] that has an
 *      entry. An entry with minor 0 is a match too: it exempts that subtree
 *      from a rule on an ancestor (and from uid rules).
 *   2. uid_rules[tag->uid] (minor 0 likewise means "exempt").
 *   3. no class (minor 0): the socket is not shaped.
 * Cgroup ids are the kernel's (the inode number of the cgroup2 directory);
 * levels are absolute in the cgroup2 hierarchy (level 0 = its root, id 1),
 * independent of the daemon's --cgroup-root and of cgroup namespaces.
 */

/* Names the daemon and the BPF object agree on. */
#define NB_PROG_EGRESS "nb_egress"
#define NB_PROG_SOCK_CREATE "nb_sock_create"
#define NB_PROG_INGRESS "nb_ingress"
