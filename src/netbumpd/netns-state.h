/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netns-state.c: whether the traffic a rule's processes make in another
 * network namespace (a container's, joined to this one by a veth) is
 * shaped. Such packets reach this namespace's interfaces forwarded; netns.c
 * follows the links into other namespaces and shapes what comes through
 * them. A process's namespace is matched to those links by the id this
 * namespace gives it (RTM_GETNSID with NETNSA_FD, the id IFLA_LINK_NETNSID
 * names); a namespace with no link into this one (its own uplink, a
 * macvlan on another interface) is not shaped, and the reason says so.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager.h"

typedef struct NetnsShaped {
	bool shaped;
	char *reason; /* when not shaped: why, and what to do about it */
	char *via;    /* the interface of this namespace its traffic comes in by, NULL: not known */
} NetnsShaped;

/* The state of network namespace netns_ino (the inode of /proc/PID/ns/net)
 * for rule r, where pid is one of the rule's processes in it. Fills ret
 * (the caller frees reason and via). */
int netns_state_of(Manager *m, const Rule *r, uint64_t netns_ino, pid_t pid, NetnsShaped *ret);

void netns_state_done(NetnsShaped *s);
