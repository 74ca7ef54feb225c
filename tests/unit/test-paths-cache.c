/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When a rule's namespaces found before still hold (paths-cache.h), without root. */
#include <string.h>

#include "paths-cache.h"
#include "tests.h"

#define SEC 1000000ULL

/* A fake /proc: the namespace each process runs in. */
typedef struct Procs {
	pid_t pid[4];
	uint64_t ino[4];
	unsigned asked;
} Procs;

static uint64_t fake_netns_of(pid_t pid, void *userdata) {
	Procs *p = userdata;

	p->asked++;
	for (size_t k = 0; k < 4; k++)
		if (p->pid[k] == pid)
			return p->ino[k];
	return 0;
}

static void fill(PathsCache *c, const char *cg, uint64_t gen, uint64_t ngen, uint64_t now) {
	PathsNs *n;

	ASSERT_OK(paths_cache_begin(c, cg, gen, ngen, now));
	n = paths_cache_add(c, 4026532001, 100);
	ASSERT_TRUE(n);
	n->known = true;
	n->shaped = true;
	n->via = strdup("ve-c1");
	paths_cache_end(c, true);
}

static void test_fresh(void) {
	PathsCache c = {};
	Procs p = { .pid = { 100 }, .ino = { 4026532001 } };

	/* nothing looked at yet */
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 1, 1, 0, fake_netns_of, &p));
	fill(&c, "/sys/fs/cgroup/a", 7, 3, 10 * SEC);
	ASSERT_TRUE(paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 3, 10 * SEC + 1, fake_netns_of, &p));
	ASSERT_EQ(p.asked, 1); /* its one namespace's process, checked */
	/* no watcher: never kept */
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", false, 7, 3, 10 * SEC, fake_netns_of, &p));
	/* a process moved, forked elsewhere, entered a namespace */
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 8, 3, 10 * SEC, fake_netns_of, &p));
	/* a link into a namespace came or went */
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 4, 10 * SEC, fake_netns_of, &p));
	/* the rule's cgroup is another now (a unit restarted), or none */
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/b", true, 7, 3, 10 * SEC, fake_netns_of, &p));
	ASSERT_TRUE(!paths_cache_fresh(&c, NULL, true, 7, 3, 10 * SEC, fake_netns_of, &p));
	/* too old, or the clock before the look */
	ASSERT_TRUE(paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 3, 10 * SEC + PATHS_CACHE_MAX_AGE_USEC - 1,
				      fake_netns_of, &p));
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 3, 10 * SEC + PATHS_CACHE_MAX_AGE_USEC,
				       fake_netns_of, &p));
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 3, 9 * SEC, fake_netns_of, &p));
	/* the process remembered for the namespace left it, or is gone */
	p.ino[0] = 4026531840;
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 3, 10 * SEC, fake_netns_of, &p));
	p.pid[0] = 0;
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 7, 3, 10 * SEC, fake_netns_of, &p));
	paths_cache_clear(&c);
}

static void test_doubt(void) {
	PathsCache c = {};
	Procs p = {};

	/* a look with doubt is not kept */
	ASSERT_OK(paths_cache_begin(&c, "/sys/fs/cgroup/a", 1, 1, SEC));
	paths_cache_end(&c, false);
	ASSERT_TRUE(!paths_cache_fresh(&c, "/sys/fs/cgroup/a", true, 1, 1, SEC, fake_netns_of, &p));
	/* a rule without a cgroup (user@, sock:): kept as such */
	ASSERT_OK(paths_cache_begin(&c, NULL, 1, 1, SEC));
	paths_cache_end(&c, true);
	ASSERT_TRUE(paths_cache_fresh(&c, NULL, true, 1, 1, SEC, fake_netns_of, &p));
	ASSERT_EQ(p.asked, 0);
	/* begun again: unfilled until it ends */
	ASSERT_OK(paths_cache_begin(&c, NULL, 1, 1, SEC));
	ASSERT_TRUE(!paths_cache_fresh(&c, NULL, true, 1, 1, SEC, fake_netns_of, &p));
	paths_cache_clear(&c);
}

static void test_add(void) {
	PathsCache *c = calloc(1, sizeof(*c));

	ASSERT_TRUE(c);
	ASSERT_OK(paths_cache_begin(c, "/x", 0, 0, 0));
	/* one entry per namespace, the first process found */
	ASSERT_TRUE(paths_cache_add(c, 5, 10));
	ASSERT_TRUE(!paths_cache_add(c, 5, 11));
	ASSERT_EQ(c->ns[0].pid, 10);
	ASSERT_TRUE(paths_cache_has(c, 5));
	ASSERT_TRUE(!paths_cache_has(c, 6));
	/* bounded */
	for (uint64_t k = 6; k < 6 + 2 * PATHS_NETNS_MAX; k++)
		(void)paths_cache_add(c, k, (pid_t)k);
	ASSERT_EQ(c->n, PATHS_NETNS_MAX);
	ASSERT_TRUE(paths_cache_full(c));
	c->ns[1].reason = strdup("no link");
	c = paths_cache_free(c); /* frees what the entries hold */
	ASSERT_TRUE(!c);
	(void)paths_cache_free(NULL);
}

int main(void) {
	test_fresh();
	test_doubt();
	test_add();
	return 0;
}
