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
	__u64 gen;                    /* nb_rules_gen when cls was computed */
	__u64 cgroup[NB_MAX_DEPTH];   /* cgroup ids of levels 0..level */
	__u32 level;                  /* level of the socket's own cgroup; 0 = unknown */
	__u32 uid;                    /* owner uid */
	struct nb_class cls;          /* the class this socket falls under */
};

/* Value of the ifb map: key is the ifindex (__u32) of a managed interface. */
struct nb_iface {
	__u32 ifb_ifindex; /* where its downloads are redirected */
	__u32 pad;
};

/* Names the daemon and the BPF object agree on. */
#define NB_PROG_EGRESS "nb_egress"
#define NB_PROG_SOCK_CREATE "nb_sock_create"
#define NB_PROG_INGRESS "nb_ingress"
