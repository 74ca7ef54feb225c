/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netns.c: traffic of other network namespaces routed through netbumpd's
 * (containers, `ip netns` workloads). Follows the links whose peer is in
 * another namespace (IFLA_LINK_NETNSID) and the shaped interfaces, and
 * keeps the BPF side's view of them (netns_links, bpf/netns.bpf.h) and its
 * tcx attachments in line. Design: "Other network namespaces" in netbump(7).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"

/* Brings the attachments in line with the links there are now: at start,
 * after every link notification and after a resync. Safe to call often
 * (one link dump). */
void netns_sync(Manager *m);
/* Detaches everything: unpins and closes the tcx links, which go. */
void netns_stop(Manager *m);

/* One path from another namespace into this one, as netns_paths() says it. */
typedef struct NetnsPath {
	uint32_t ifindex;     /* the link on our side (nspawn's ve-NAME) */
	const char *name;
	int32_t nsid;         /* the peer namespace's id here */
	bool up;              /* its uploads are shaped: some interface is shaped and
	                       * has nb_fwd_egress */
	bool down;            /* its downloads are: likewise (nb_ingress) */
	const char *shaped_on; /* the shaped interfaces, ", "-separated; "" if none */
	const char *why;      /* when !up or !down: why not */
} NetnsPath;

typedef void (*netns_path_cb)(const NetnsPath *p, void *userdata);
/* Calls cb for every link into another namespace: whether that
 * namespace's traffic is shaped, where, or why not. Returns the count. */
size_t netns_paths(Manager *m, netns_path_cb cb, void *userdata);
/* The same as one line: "netns 3 via ve-c1: shaped on veth0" or
 * "netns 3 via ve-c1: not shaped: ...". Returns -errno or the length. */
int netns_path_format(const NetnsPath *p, char *buf, size_t size);
