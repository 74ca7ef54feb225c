/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proc-watch.c: a generation count the kernel bumps whenever the network
 * namespaces a cgroup's processes run in may have changed (a process moved
 * between cgroups, forked into another cgroup or network namespace, or
 * entered namespaces; bpf/proc-watch.bpf.c). paths.c keeps what it found
 * in a rule's cgroup as long as the count stays the same.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"

/* Loads and attaches the watcher. Failing is not fatal: without it there
 * is no count, and paths.c looks at every rule's cgroup each time. */
void proc_watch_start(Manager *m);
void proc_watch_stop(Manager *m);

/* The count now; false without a watcher. */
bool proc_watch_gen(Manager *m, uint64_t *ret);
