/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "netbump/netbump.h"
#include "scope-keys.h"

bool scope_keys_has(const ScopeKey *v, size_t n, uint32_t kind, uint64_t key) {
	for (size_t i = 0; i < n; i++)
		if (v[i].kind == kind && v[i].key == key)
			return true;
	return false;
}

static void add(ScopeKey *v, size_t *n, uint32_t kind, uint64_t key) {
	if (key != 0 && !scope_keys_has(v, *n, kind, key))
		v[(*n)++] = (ScopeKey){ .kind = kind, .key = key };
}

int scope_keys_build(const ScopeKeySource *src, ScopeKey **ret, size_t *ret_n) {
	size_t cap = 1 + src->n_cgroups + src->n_cookies, n = 0;
	ScopeKey *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	add(v, &n, src->kind, src->key);
	for (size_t i = 0; i < src->n_cgroups; i++)
		add(v, &n, NB_SCOPE_KIND_CGROUP, src->cgroups[i]);
	for (size_t i = 0; i < src->n_cookies; i++)
		add(v, &n, NB_SCOPE_KIND_SOCK, src->cookies[i]);
	if (n == 0) {
		free(v);
		v = NULL;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

bool scope_keys_same(const ScopeKey *a, size_t na, const ScopeKey *b, size_t nb) {
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!scope_keys_has(b, nb, a[i].kind, a[i].key))
			return false;
	return true;
}

uint32_t scope_keys_kinds(const ScopeKey *v, size_t n) {
	uint32_t kinds = 0;

	for (size_t i = 0; i < n; i++)
		kinds |= 1u << v[i].kind;
	return kinds;
}
