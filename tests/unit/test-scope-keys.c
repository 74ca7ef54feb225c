/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The keys a scoped rule or a deny/allow is written under, per target kind. */
#include <stdlib.h>

#include "netbump/netbump.h"
#include "scope-keys.h"
#include "tests.h"

/* A cgroup: or unit: target: its one cgroup; none while a unit is down. */
static void test_one_key(void) {
	ScopeKey *v = NULL;
	size_t n = 9;

	ASSERT_OK(scope_keys_build(&(ScopeKeySource){ .kind = NB_SCOPE_KIND_CGROUP, .key = 42 }, &v, &n));
	ASSERT_EQ(n, 1);
	ASSERT_EQ(v[0].kind, NB_SCOPE_KIND_CGROUP);
	ASSERT_EQ(v[0].key, 42);
	free(v);

	ASSERT_OK(scope_keys_build(&(ScopeKeySource){ .kind = NB_SCOPE_KIND_CGROUP, .key = 0 }, &v, &n));
	ASSERT_EQ(n, 0);
	ASSERT_TRUE(v == NULL);
}

/* A pid: target: its cgroup and the cookies of the sockets it had; an exe:
 * one: its cgroups (one per cgroup its processes came from) and cookies.
 * Zeros and repeats are left out, cookies and cgroup ids never mix even
 * where the numbers are equal. */
static void test_grip_keys(void) {
	const uint64_t cgroups[] = { 7, 0, 8, 7 };
	const uint64_t cookies[] = { 7, 100, 100, 0, 101 };
	ScopeKey *v = NULL;
	size_t n = 0;

	ASSERT_OK(scope_keys_build(&(ScopeKeySource){ .kind = NB_SCOPE_KIND_CGROUP, .key = 5, .cgroups = cgroups,
						      .n_cgroups = 4, .cookies = cookies, .n_cookies = 5 },
				   &v, &n));
	ASSERT_EQ(n, 6);
	ASSERT_TRUE(scope_keys_has(v, n, NB_SCOPE_KIND_CGROUP, 5));
	ASSERT_TRUE(scope_keys_has(v, n, NB_SCOPE_KIND_CGROUP, 7));
	ASSERT_TRUE(scope_keys_has(v, n, NB_SCOPE_KIND_CGROUP, 8));
	ASSERT_TRUE(scope_keys_has(v, n, NB_SCOPE_KIND_SOCK, 7));
	ASSERT_TRUE(scope_keys_has(v, n, NB_SCOPE_KIND_SOCK, 100));
	ASSERT_TRUE(scope_keys_has(v, n, NB_SCOPE_KIND_SOCK, 101));
	ASSERT_TRUE(!scope_keys_has(v, n, NB_SCOPE_KIND_SOCK, 5));
	ASSERT_TRUE(!scope_keys_has(v, n, NB_SCOPE_KIND_CGROUP, 0));
	ASSERT_EQ(scope_keys_kinds(v, n), (1u << NB_SCOPE_KIND_CGROUP) | (1u << NB_SCOPE_KIND_SOCK));
	free(v);

	/* exe: with no cgroup of its own yet (no process ran it) */
	ASSERT_OK(scope_keys_build(&(ScopeKeySource){ .kind = NB_SCOPE_KIND_CGROUP, .cookies = cookies + 1,
						      .n_cookies = 1 },
				   &v, &n));
	ASSERT_EQ(n, 1);
	ASSERT_EQ(scope_keys_kinds(v, n), 1u << NB_SCOPE_KIND_SOCK);
	free(v);
}

/* What changed between two sets: the same keys in another order is no
 * change (nothing rewritten); one key more or less is. */
static void test_same(void) {
	const ScopeKey a[] = { { NB_SCOPE_KIND_CGROUP, 1 }, { NB_SCOPE_KIND_SOCK, 2 } };
	const ScopeKey b[] = { { NB_SCOPE_KIND_SOCK, 2 }, { NB_SCOPE_KIND_CGROUP, 1 } };
	const ScopeKey c[] = { { NB_SCOPE_KIND_SOCK, 1 }, { NB_SCOPE_KIND_CGROUP, 2 } };

	ASSERT_TRUE(scope_keys_same(a, 2, b, 2));
	ASSERT_TRUE(!scope_keys_same(a, 2, b, 1));
	ASSERT_TRUE(!scope_keys_same(a, 1, b, 2));
	ASSERT_TRUE(!scope_keys_same(a, 2, c, 2));
	ASSERT_TRUE(scope_keys_same(NULL, 0, NULL, 0));
}

int main(void) {
	test_one_key();
	test_grip_keys();
	test_same();
	return 0;
}
