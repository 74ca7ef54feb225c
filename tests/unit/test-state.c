/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state journal (what a killed run leaves for the next start), without root. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager.h"
#include "state.h"
#include "tests.h"

static Manager m;
static char dir[] = "/tmp/netbump-test-state.XXXXXX";

static Rule *rule(uint64_t id, const char *name, uint64_t up, uint64_t down) {
	Rule *r = calloc(1, sizeof(*r));

	ASSERT_TRUE(r);
	r->manager = &m;
	r->id = id;
	r->name = strdup(name);
	r->up_bps = up;
	r->down_bps = down;
	r->priority = PRIORITY_NORMAL;
	r->minor = (uint32_t)id;
	r->next = m.rules;
	m.rules = r;
	m.n_rules++;
	return r;
}

static const SavedRule *find(const SavedRule *v, size_t n, const char *target) {
	for (size_t k = 0; k < n; k++)
		if (v[k].target && strcmp(v[k].target, target) == 0)
			return &v[k];
	return NULL;
}

static void load(SavedRule **v, size_t *n) {
	ASSERT_OK(manager_state_load_rules(&m, v, n));
}

static void append_raw(const char *text) {
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/netbumpd.state", dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
}

int main(void) {
	SavedRule *v = NULL;
	size_t n = 0;
	const SavedRule *s;
	Iface eth = { .ifindex = 7, .name = "eth7", .created_clsact = true };

	ASSERT_TRUE(mkdtemp(dir));
	m.state_dir = dir;
	m.state.fd = -1;
	m.ifaces = &eth;

	/* a whole rewrite, then read back: every field of every rule */
	Rule *a = rule(1, "cgroup:/a", 8000000, 4000000);
	Rule *b = rule(2, "pid:42", 0, 2000000);
	b->min_down = 1000000;
	b->priority = PRIORITY_HIGH;
	b->transient = true;
	b->owner = 1000;
	b->minor = 0x123;
	b->moved = calloc(1, sizeof(Moved));
	b->moved[0] = (Moved){ .pid = 42, .from = strdup("/a/b"), .from_unit = NULL };
	b->n_moved = 1;
	uint64_t cookies[] = { 77, 78 };
	b->cookies = cookies;
	b->n_cookies = 2;
	ASSERT_OK(manager_state_save(&m));
	load(&v, &n);
	ASSERT_EQ(n, 2);
	s = find(v, n, "cgroup:/a");
	ASSERT_TRUE(s && s->up == 8000000 && s->down == 4000000 && s->minor == 1 && s->priority == PRIORITY_NORMAL);
	s = find(v, n, "pid:42");
	ASSERT_TRUE(s);
	ASSERT_EQ(s->min_down, 1000000);
	ASSERT_EQ(s->priority, PRIORITY_HIGH);
	ASSERT_EQ(s->minor, 0x123);
	ASSERT_EQ(s->owner, 1000);
	ASSERT_TRUE(s->transient);
	ASSERT_EQ(s->n_moved, 1);
	ASSERT_EQ(s->moved[0].pid, 42);
	ASSERT_STREQ(s->moved[0].from, "/a/b");
	ASSERT_EQ(s->n_cookies, 2);
	ASSERT_EQ(s->cookies[1], 78);
	saved_rules_free(v, n);

	/* the interfaces where it made the clsact qdisc */
	uint32_t *ifx = NULL;
	size_t nif = 0;
	ASSERT_OK(manager_state_load_clsact(&m, &ifx, &nif));
	ASSERT_EQ(nif, 1);
	ASSERT_EQ(ifx[0], 7);
	free(ifx);

	/* one rule changed: appended, and the last record of it counts */
	a->up_bps = 2000000;
	a->minor = 9; /* moved to a new class (tree_rebuild) */
	ASSERT_OK(manager_state_save_rule(&m, a));
	load(&v, &n);
	s = find(v, n, "cgroup:/a");
	ASSERT_TRUE(s && s->up == 2000000 && s->minor == 9);
	saved_rules_free(v, n);

	/* a record cut short by a kill (no newline, no commit) is not read */
	append_raw("rule 1 0 5 5 0 cgroup:/a\nclass 1 3");
	load(&v, &n);
	s = find(v, n, "cgroup:/a");
	ASSERT_TRUE(s && s->up == 2000000 && s->minor == 9);
	saved_rules_free(v, n);

	/* a rule taken out: gone from the file */
	for (Rule **p = &m.rules; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			break;
		}
	m.n_rules--;
	ASSERT_OK(manager_state_save_without(&m, a));
	load(&v, &n);
	ASSERT_EQ(n, 1);
	ASSERT_TRUE(find(v, n, "pid:42") && !find(v, n, "cgroup:/a"));
	saved_rules_free(v, n);

	manager_state_remove(&m);
	ASSERT_TRUE(rmdir(dir) == 0);
	return 0;
}
