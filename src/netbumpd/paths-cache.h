/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * paths-cache.c: what paths.c found in a rule's cgroup (the other network
 * namespaces its processes run in, and whether each is shaped), kept for
 * the next List while nothing that could change it has happened:
 *   - the rule's cgroup is the same;
 *   - the process watcher's count is the same (proc-watch.h: no process
 *     moved between cgroups, forked into another cgroup or namespace, or
 *     entered a namespace since the look), and there is a watcher;
 *   - netns.c's count of link changes is the same (a namespace's link into
 *     this one came or went, an interface's shaping changed);
 *   - the process remembered for each namespace still runs in it (exits
 *     are not counted; a namespace whose last process of the rule's left
 *     is not shown);
 *   - the look is less than PATHS_CACHE_MAX_AGE_USEC old: a process that
 *     enters a namespace by setns(2) or unshare(2) and neither forks nor
 *     runs a program is not counted (proc-watch.bpf.c says why), so this
 *     is how late it may be seen.
 * Anything else, or any doubt, and the cgroup is looked at again. Pure: the
 * namespace of a process is asked through a callback.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Namespaces kept per rule: enough for a container or two. */
#define PATHS_NETNS_MAX 8
#define PATHS_CACHE_MAX_AGE_USEC (2 * 1000000ULL)

typedef struct PathsNs {
	uint64_t ino; /* of /proc/PID/ns/net */
	pid_t pid;    /* a process of the rule's in it */
	bool known;   /* shaped, reason and via say its state */
	bool shaped;
	char *reason; /* when not shaped: why */
	char *via;    /* the interface its traffic comes in by, NULL: not known */
} PathsNs;

typedef struct PathsCache {
	bool filled;      /* a look was made and recorded */
	char *cgroup;     /* the cgroup looked at (absolute), NULL: the rule has none */
	uint64_t proc_gen;  /* the watcher's count read before the look */
	uint64_t netns_gen; /* Manager.netns_gen read before the look */
	uint64_t at_usec;   /* CLOCK_MONOTONIC, before the look */
	size_t n;
	PathsNs ns[PATHS_NETNS_MAX];
} PathsCache;

/* The inode of /proc/PID/ns/net, 0 when the process is gone. */
typedef uint64_t (*paths_netns_of_fn)(pid_t pid, void *userdata);

/* Whether c says what a look at cgroup would find now (see above).
 * watched: there is a process watcher, proc_gen its count. */
bool paths_cache_fresh(const PathsCache *c, const char *cgroup, bool watched, uint64_t proc_gen,
		       uint64_t netns_gen, uint64_t now_usec, paths_netns_of_fn netns_of, void *userdata);

/* Empties c and starts a record of a look at cgroup (may be NULL) made
 * after the counts were read. c stays unfilled until paths_cache_end(). */
int paths_cache_begin(PathsCache *c, const char *cgroup, uint64_t proc_gen, uint64_t netns_gen, uint64_t now_usec);
/* Records namespace ino with process pid: NULL when it is already there
 * or there is no room (the look need not go on for it). */
PathsNs *paths_cache_add(PathsCache *c, uint64_t ino, pid_t pid);
bool paths_cache_has(const PathsCache *c, uint64_t ino);
bool paths_cache_full(const PathsCache *c);
/* The look is complete: keep it (keep false: there was doubt, look again
 * next time). */
void paths_cache_end(PathsCache *c, bool keep);

void paths_cache_clear(PathsCache *c);
PathsCache *paths_cache_free(PathsCache *c);
