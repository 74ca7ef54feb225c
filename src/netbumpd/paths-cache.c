/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "paths-cache.h"

static bool same_cgroup(const char *a, const char *b) {
	return a && b ? strcmp(a, b) == 0 : a == b;
}

bool paths_cache_fresh(const PathsCache *c, const char *cgroup, bool watched, uint64_t proc_gen,
		       uint64_t netns_gen, uint64_t now_usec, paths_netns_of_fn netns_of, void *userdata) {
	if (!c || !c->filled || !watched)
		return false;
	if (c->proc_gen != proc_gen || c->netns_gen != netns_gen || !same_cgroup(c->cgroup, cgroup))
		return false;
	if (now_usec < c->at_usec || now_usec - c->at_usec >= PATHS_CACHE_MAX_AGE_USEC)
		return false;
	for (size_t k = 0; k < c->n; k++)
		if (netns_of(c->ns[k].pid, userdata) != c->ns[k].ino)
			return false;
	return true;
}

void paths_cache_clear(PathsCache *c) {
	if (!c)
		return;
	for (size_t k = 0; k < c->n; k++) {
		free(c->ns[k].reason);
		free(c->ns[k].via);
	}
	free(c->cgroup);
	*c = (PathsCache){};
}

PathsCache *paths_cache_free(PathsCache *c) {
	paths_cache_clear(c);
	free(c);
	return NULL;
}

int paths_cache_begin(PathsCache *c, const char *cgroup, uint64_t proc_gen, uint64_t netns_gen, uint64_t now_usec) {
	paths_cache_clear(c);
	if (cgroup) {
		c->cgroup = strdup(cgroup);
		if (!c->cgroup)
			return -ENOMEM;
	}
	c->proc_gen = proc_gen;
	c->netns_gen = netns_gen;
	c->at_usec = now_usec;
	return 0;
}

bool paths_cache_has(const PathsCache *c, uint64_t ino) {
	for (size_t k = 0; k < c->n; k++)
		if (c->ns[k].ino == ino)
			return true;
	return false;
}

bool paths_cache_full(const PathsCache *c) {
	return c->n >= PATHS_NETNS_MAX;
}

PathsNs *paths_cache_add(PathsCache *c, uint64_t ino, pid_t pid) {
	if (paths_cache_has(c, ino) || paths_cache_full(c))
		return NULL;
	c->ns[c->n] = (PathsNs){ .ino = ino, .pid = pid };
	return &c->ns[c->n++];
}

void paths_cache_end(PathsCache *c, bool keep) {
	c->filled = keep;
}
