/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netns-state.c: whether the traffic a rule's processes make in another
 * network namespace (a container's, joined to this one by a veth or a
 * bridge) is shaped. Such packets reach this namespace's interfaces
 * forwarded, without a socket, so the classification of local traffic
 * does not see them: shaping them is the job of the module that handles
 * other namespaces' forwarded traffic, which defines netns_state_of() (the
 * one here is weak and says "not shaped").
 *
 * For a module that knows namespaces by the links into them (a veth whose
 * peer is there, IFLA_LINK_NETNSID): open /proc/PID/ns/net, ask the kernel
 * for that namespace's id here (RTM_GETNSID with NETNSA_FD,
 * rtnetlink(7)), and answer for the links with that id: shaped when their
 * traffic is, "via" the link's name; a namespace with no link into this one
 * (its own uplink, a macvlan on another interface) is not shaped, and the
 * reason says where its traffic leaves instead, if known.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager.h"

typedef struct NetnsState {
	bool shaped;
	char *reason; /* when not shaped: why, and what to do about it */
	char *via;    /* the interface of this namespace its traffic comes in by, NULL: not known */
} NetnsState;

/* The state of network namespace netns_ino (the inode of /proc/PID/ns/net)
 * for rule r, where pid is one of the rule's processes in it. Fills ret
 * (the caller frees reason and via). */
int netns_state_of(Manager *m, const Rule *r, uint64_t netns_ino, pid_t pid, NetnsState *ret);

void netns_state_done(NetnsState *s);
