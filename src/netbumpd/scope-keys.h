/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scope-keys.c: the keys a scoped rule or a deny/allow is written under in
 * scope_keys (scope.bpf.h), one per thing of its target the programs know a
 * socket by: a cgroup id (the cgroup itself or any below it), a socket
 * cookie, a uid. A cgroup:, unit:, machine: or container: target has one
 * cgroup, user@ and all a uid, sock: a cookie; pid: has its cgroup and the
 * cookies of the sockets its processes had before they moved, exe: the
 * cgroups it made for its processes and theirs. Pure (no kernel, no root).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ScopeKey {
	uint32_t kind; /* NB_SCOPE_KIND_* */
	uint64_t key;
} ScopeKey;

/* What a target is known by: one key of kind (0: none now), plus cgroup
 * ids and cookies; zeros and repeats are left out. */
typedef struct ScopeKeySource {
	uint32_t kind;
	uint64_t key;
	const uint64_t *cgroups;
	size_t n_cgroups;
	const uint64_t *cookies;
	size_t n_cookies;
} ScopeKeySource;

/* The keys of src, in a new array (NULL when there are none). */
int scope_keys_build(const ScopeKeySource *src, ScopeKey **ret, size_t *ret_n);
bool scope_keys_has(const ScopeKey *v, size_t n, uint32_t kind, uint64_t key);
/* Whether a and b hold the same keys (in any order). */
bool scope_keys_same(const ScopeKey *a, size_t na, const ScopeKey *b, size_t nb);
/* Bit 1 << kind for each key's kind. */
uint32_t scope_keys_kinds(const ScopeKey *v, size_t n);
