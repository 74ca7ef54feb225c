/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netns-lock.c: one netbumpd per network namespace. The root qdiscs, IFBs
 * and filters of a namespace's interfaces are all netbumpd's, whatever
 * socket or state directory it was given: a second daemon would take the
 * first one's for leftovers and remove them. An abstract UNIX socket is
 * per network namespace (unix(7)), so binding a fixed abstract name is the
 * lock; it goes with the process, a SIGKILL included.
 */
#pragma once

#include "manager.h"

/* The abstract name (without the leading NUL). */
#define NETNS_LOCK_NAME "netbump/netbumpd"

/* Takes the namespace's lock. -EADDRINUSE when another process holds it,
 * with *ret_holder saying which (pid, name, its socket and state
 * directory as it tells them) when it can be found; nothing else is done. */
int netns_lock_take(Manager *m, char **ret_holder);
/* Answers a second daemon's questions from the event loop. */
int netns_lock_serve(Manager *m);
void netns_lock_release(Manager *m);
