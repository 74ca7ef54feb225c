/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Nesting without root: which rule encloses which, and the classes they want. */
#include <errno.h>
#include <string.h>

#include "manager.h"
#include "nest.h"
#include "netbump/netbump.h"
#include "tests.h"

#define ROOT_CLASSID (NB_HTB_MAJOR << 16)
#define MBIT UINT64_C(1000000)

static Manager m;
static uint32_t next_minor = 1;

/* A rule as rule.c has it once resolved and placed; added to the index and
 * linked where nest_find_parent() says, as rule_install() does. */
static Rule *add(const char *name, TargetKind kind, const char *path, uid_t uid, uint64_t up, uint64_t down) {
	Rule *r = calloc(1, sizeof(*r));
	Rule **inside = NULL;
	int n;

	ASSERT_TRUE(r);
	r->manager = &m;
	r->name = strdup(name);
	ASSERT_TRUE(target_parse(name, &r->target, NULL) >= 0);
	ASSERT_EQ(r->target.kind, kind);
	r->nest_path = path ? strdup(path) : NULL;
	r->nest_uid = uid;
	r->key = kind == TARGET_USER ? uid : kind == TARGET_ALL ? NB_UID_ALL : 0;
	r->up_bps = up;
	r->down_bps = down;
	r->priority = PRIORITY_NORMAL;
	r->minor = next_minor++;

	Rule *parent = nest_find_parent(&m, r);
	n = nest_contained(&m, parent, r, &inside);
	ASSERT_TRUE(n >= 0);
	nest_link(&m, r, parent);
	for (int k = 0; k < n; k++) {
		nest_unlink(&m, inside[k]);
		nest_link(&m, inside[k], r);
	}
	free(inside);
	r->next = m.rules;
	m.rules = r;
	rules_index_add(&m, r);
	return r;
}

static void del(Rule *r) {
	for (Rule **p = &m.rules; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	rules_index_del(&m, r);
	while (r->children) {
		Rule *c = r->children;
		nest_unlink(&m, c);
		nest_link(&m, c, nest_find_parent(&m, c));
	}
	nest_unlink(&m, r);
	free(r->nest_path);
	free(r->name);
	target_done(&r->target);
	free(r);
}

static void spec(const Rule *r, bool up, ClassSpec *s) {
	nest_class_spec(r, up, s);
}

static void test_containment(void) {
	Rule *all = add("all", TARGET_ALL, NULL, (uid_t)-1, 20 * MBIT, 0);
	Rule *user = add("user@1000", TARGET_USER, NULL, 1000, 4 * MBIT, 4 * MBIT);
	/* root's cgroup, several users in it: not inside a user rule */
	Rule *par = add("cgroup:/par", TARGET_CGROUP, "/par", (uid_t)-1, 10 * MBIT, 10 * MBIT);
	Rule *pid = add("pid:42", TARGET_PID, "/par/child", 1000, 0, 2 * MBIT);
	/* added after the pid rule, between it and /par */
	Rule *child = add("cgroup:/par/child", TARGET_CGROUP, "/par/child", (uid_t)-1, 4 * MBIT, 4 * MBIT);
	/* a cgroup delegated to uid 1000 */
	Rule *deleg = add("cgroup:/home/u", TARGET_CGROUP, "/home/u", 1000, 3 * MBIT, 0);
	/* a process of uid 1000 in a cgroup without a rule */
	Rule *pid2 = add("pid:43", TARGET_PID, "/elsewhere", 1000, 0, MBIT);
	/* a process of uid 1001 without any rule around but all */
	Rule *pid3 = add("pid:44", TARGET_PID, "/elsewhere", 1001, MBIT, 0);

	ASSERT_TRUE(all->parent == NULL);
	ASSERT_TRUE(user->parent == all);
	ASSERT_TRUE(par->parent == all);
	ASSERT_TRUE(child->parent == par);
	ASSERT_TRUE(pid->parent == child); /* moved under the cgroup rule added later */
	ASSERT_TRUE(deleg->parent == user);
	ASSERT_TRUE(pid2->parent == user);
	ASSERT_TRUE(pid3->parent == all);
	ASSERT_EQ(nest_depth(pid), 4);
	ASSERT_EQ(nest_height(all), 3);
	ASSERT_TRUE(nest_contains(par, pid));
	ASSERT_TRUE(!nest_contains(user, par));
	ASSERT_TRUE(!nest_contains(child, par));
	ASSERT_TRUE(!nest_contains(pid, child));

	/* a socket made in the pid rule's cgroup, and one it had before */
	pid->cgroup_abs = strdup("/mnt/netbump/pid-42");
	Manager *mm = &m;
	mm->cgroup_mount = (char *)"/mnt";
	Rule *sock = add("sock:7", TARGET_SOCK, "/netbump/pid-42", 1000, MBIT, MBIT);
	ASSERT_TRUE(sock->parent == pid);
	pid->cookies = calloc(1, sizeof(uint64_t));
	pid->cookies[0] = 99;
	pid->n_cookies = 1;
	Rule *sock2 = add("sock:8", TARGET_SOCK, "/par/child", 1000, MBIT, MBIT);
	sock2->key = 99; /* the cookie decides, not the cgroup it was made in */
	del(sock2);
	sock2 = calloc(1, sizeof(*sock2));
	sock2->manager = &m;
	sock2->target.kind = TARGET_SOCK;
	sock2->key = 99;
	sock2->nest_uid = 1000;
	ASSERT_TRUE(nest_find_parent(&m, sock2) == pid);
	free(sock2);

	/* a process of uid 1000 in a cgroup of root's, inside the user's rule
	 * until root limits that cgroup: then in the cgroup's (before the
	 * user's, which does not contain root's cgroups) */
	Rule *pid4 = add("pid:45", TARGET_PID, "/z", 1000, MBIT, 0);
	ASSERT_TRUE(pid4->parent == user);
	Rule *z = add("cgroup:/z", TARGET_CGROUP, "/z", (uid_t)-1, MBIT, 0);
	ASSERT_TRUE(pid4->parent == z);
	ASSERT_TRUE(z->parent == all);
	del(z);
	ASSERT_TRUE(pid4->parent == user);
	del(pid4);

	/* taking out the middle: its children go to what contains them */
	del(child);
	ASSERT_TRUE(pid->parent == par);
	del(par);
	ASSERT_TRUE(pid->parent == user); /* no cgroup rule left: its user's */
	del(user);
	ASSERT_TRUE(pid->parent == all);
	ASSERT_TRUE(deleg->parent == all);

	free(pid->cookies);
	free(pid->cgroup_abs);
	del(sock);
	del(pid);
	del(deleg);
	del(pid2);
	del(pid3);
	del(all);
	ASSERT_TRUE(m.rules == NULL && m.top_rules == NULL);
}

/* exe: rules: their processes may run anywhere, so they nest in their
 * owner's user rule (a user's) or at the top, and never in a cgroup's; they
 * hold the sockets they mirror, as a pid: rule does. */
static void test_exe(void) {
	Rule *all = add("all", TARGET_ALL, NULL, (uid_t)-1, 20 * MBIT, 0);
	Rule *user = add("user@1000", TARGET_USER, NULL, 1000, 4 * MBIT, 4 * MBIT);
	Rule *mine = add("exe:/usr/bin/rsync", TARGET_EXE, NULL, 1000, MBIT, MBIT);
	Rule *roots = add("exe:/usr/bin/curl", TARGET_EXE, NULL, (uid_t)-1, MBIT, 0);
	Rule *cg = add("cgroup:/", TARGET_CGROUP, "/", (uid_t)-1, 10 * MBIT, 0);

	ASSERT_TRUE(mine->parent == user);
	ASSERT_TRUE(roots->parent == all);
	ASSERT_TRUE(cg->parent == all);
	ASSERT_TRUE(!nest_contains(cg, mine) && !nest_contains(cg, roots));
	ASSERT_TRUE(!nest_contains(mine, roots) && !nest_contains(roots, mine));
	ASSERT_TRUE(nest_contains(all, roots));

	mine->cookies = calloc(1, sizeof(uint64_t));
	mine->cookies[0] = 77;
	mine->n_cookies = 1;
	Rule *sock = calloc(1, sizeof(*sock));
	sock->manager = &m;
	sock->target.kind = TARGET_SOCK;
	sock->key = 77;
	sock->nest_uid = 1000;
	ASSERT_TRUE(nest_contains(mine, sock));
	ASSERT_TRUE(!nest_contains(roots, sock));
	ASSERT_TRUE(nest_find_parent(&m, sock) == mine);
	free(sock);
	free(mine->cookies);
	mine->cookies = NULL;
	mine->n_cookies = 0;

	del(user);
	ASSERT_TRUE(mine->parent == all);
	del(cg);
	del(mine);
	del(roots);
	del(all);
	ASSERT_TRUE(m.rules == NULL && m.top_rules == NULL);
}

static void test_classes(void) {
	ClassSpec s;
	Rule *all = add("all", TARGET_ALL, NULL, (uid_t)-1, 20 * MBIT, 0);
	Rule *call = add("pid:10", TARGET_PID, "/a", (uid_t)-1, 0, 0);
	Rule *backup = add("pid:11", TARGET_PID, "/b", (uid_t)-1, 0, 5 * MBIT);

	call->priority = PRIORITY_HIGH;
	backup->priority = PRIORITY_LOW;

	/* the top class: rate = ceil = its limit; nothing limits downloads */
	spec(all, true, &s);
	ASSERT_TRUE(s.on);
	ASSERT_EQ(s.parent, ROOT_CLASSID);
	ASSERT_EQ(s.rate, 20 * MBIT);
	ASSERT_EQ(s.ceil, 20 * MBIT);
	ASSERT_EQ(s.own, NEST_RATE_NONE); /* it has children: its own traffic shares with them */
	ASSERT_EQ(s.prio, 2);
	spec(all, false, &s);
	ASSERT_TRUE(!s.on);

	/* no limit of its own upwards: a class inside all's, its ceiling
	 * inherited, nothing guaranteed */
	spec(call, true, &s);
	ASSERT_TRUE(s.on);
	ASSERT_EQ(s.parent, NB_CLASSID(all->minor));
	ASSERT_EQ(s.ceil, NEST_CEIL_INHERIT);
	ASSERT_EQ(s.rate, NEST_RATE_NONE);
	ASSERT_EQ(s.top, 20 * MBIT);
	ASSERT_EQ(s.prio, 0);
	spec(call, false, &s);
	ASSERT_TRUE(!s.on); /* nothing limits it that way */

	/* its own download limit, at the top as nothing encloses downloads */
	spec(backup, false, &s);
	ASSERT_TRUE(s.on);
	ASSERT_EQ(s.parent, ROOT_CLASSID);
	ASSERT_EQ(s.rate, 5 * MBIT);
	ASSERT_EQ(s.prio, 4);
	ASSERT_TRUE(nest_has_class(backup, true) && nest_has_class(backup, false));

	/* minimums: guaranteed out of the parent's rate, its own leaves keep the rest */
	call->min_up = 3 * MBIT;
	spec(call, true, &s);
	ASSERT_EQ(s.rate, 3 * MBIT);
	spec(all, true, &s);
	ASSERT_EQ(s.own, NEST_RATE_NONE);
	ASSERT_TRUE(nest_check_min(all, backup, 17 * MBIT, 0) == NULL);
	ASSERT_TRUE(nest_check_min(all, backup, 18 * MBIT, 0) != NULL);
	ASSERT_TRUE(nest_check_min(all, call, 20 * MBIT, 0) == NULL); /* its own old value does not count */
	ASSERT_TRUE(nest_check_min(NULL, all, 30 * MBIT, 0) == NULL); /* top level: nothing to share */
	ASSERT_TRUE(nest_check_min(all, backup, 0, 50 * MBIT) == NULL); /* all does not limit downloads */

	/* asking more than the parent has (a parent made later): scaled down */
	backup->min_up = 27 * MBIT;
	spec(call, true, &s);
	ASSERT_EQ(s.rate, 2 * MBIT);
	spec(backup, true, &s);
	ASSERT_EQ(s.rate, 18 * MBIT);
	del(call);
	del(backup);
	spec(all, true, &s);
	ASSERT_EQ(s.own, 20 * MBIT); /* alone again: all of it */
	del(all);
}

static void test_priority(void) {
	Priority p;

	ASSERT_OK(priority_from_string("high", &p));
	ASSERT_EQ(p, PRIORITY_HIGH);
	ASSERT_OK(priority_from_string("low", &p));
	ASSERT_EQ(p, PRIORITY_LOW);
	ASSERT_EQ(priority_from_string("High", &p), -EINVAL);
	ASSERT_EQ(priority_from_string("", &p), -EINVAL);
	ASSERT_STREQ(priority_to_string(PRIORITY_NORMAL), "normal");
}

/* Rules are found by what their target is, typed: never by a string. */
static void test_index(void) {
	Rule *user = add("user@1000", TARGET_USER, NULL, 1000, MBIT, 0);
	Rule *cg = add("cgroup:/a/b", TARGET_CGROUP, "/a/b", (uid_t)-1, MBIT, 0);
	Rule *pid = add("pid:42", TARGET_PID, "/a/b", 1000, MBIT, 0);
	Rule *all = add("all", TARGET_ALL, NULL, (uid_t)-1, 10 * MBIT, 0);
	Target t;

	ASSERT_TRUE(rules_find_user(&m, 1000) == user);
	ASSERT_TRUE(rules_find_user(&m, 1001) == NULL);
	ASSERT_TRUE(rules_find_all(&m) == all);
	ASSERT_TRUE(rules_find_cgroup_path(&m, "/a/b") == cg);
	ASSERT_TRUE(rules_find_cgroup_path(&m, "/a") == NULL);
	/* the same target however it was written */
	ASSERT_TRUE(target_parse("cgroup:/a//b/", &t, NULL) >= 0);
	ASSERT_TRUE(rules_find_target(&m, &t) == cg);
	target_done(&t);
	ASSERT_TRUE(target_parse("pid:42", &t, NULL) >= 0);
	ASSERT_TRUE(rules_find_target(&m, &t) == pid);
	pid->exited = true; /* "pid:42" names whoever gets the PID next */
	ASSERT_TRUE(rules_find_target(&m, &t) == NULL);
	pid->exited = false;
	target_done(&t);
	/* a user by name is not an identity until resolved */
	ASSERT_TRUE(target_parse("user@nosuchuser", &t, NULL) >= 0);
	ASSERT_TRUE(rules_find_target(&m, &t) == NULL);
	target_done(&t);
	/* one cgroup, one rule: found by the id the kernel knows it by */
	cg->key = 77;
	rules_index_del(&m, cg);
	rules_index_add(&m, cg);
	ASSERT_TRUE(rules_find_cgroup(&m, 77, NULL) == cg);
	ASSERT_TRUE(rules_find_cgroup(&m, 77, cg) == NULL);
	rules_rekey(&m, cg, 78);
	ASSERT_TRUE(rules_find_cgroup(&m, 77, NULL) == NULL);
	ASSERT_TRUE(rules_find_cgroup(&m, 78, NULL) == cg);
	/* the user rule's key is a uid, not a cgroup id */
	ASSERT_TRUE(rules_find_cgroup(&m, 1000, NULL) == NULL);
	del(pid);
	del(cg);
	del(user);
	del(all);
	ASSERT_TRUE(rules_find_all(&m) == NULL);
	ASSERT_TRUE(m.top_rules == NULL);
}

int main(void) {
	test_index();
	test_containment();
	test_exe();
	test_classes();
	test_priority();
	return 0;
}
