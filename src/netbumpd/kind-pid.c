/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pid:PID: a process and the children it starts, moved into a cgroup of
 * the rule's own (process.c); the sockets it had before are followed by
 * their cookies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf.h"
#include "cgroup-util.h"
#include "kind.h"
#include "macro.h"
#include "proc-util.h"
#include "process.h"
#include "state.h"

/* Where the process is and whose it is, read before the rule moves it:
 * the rule nests where its traffic was. */
static void pid_place(Manager *m, Rule *rule) {
	uid_t uid;

	free(rule->nest_path);
	rule->nest_path = NULL;
	(void)cg_pid_get_path(rule->target.pid, &rule->nest_path);
	rule->nest_uid = proc_get_uid(rule->target.pid, &uid) >= 0 ? uid : (uid_t)-1;
}

static int pid_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	const char *why = NULL;
	int r;

	pid_place(m, rule);
	r = pid_rule_prepare(m, rule, &why);
	if (r == -ESRCH)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "no such process: %d", (int)rule->target.pid);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: %s: %s", rule->name, why ?: "failed",
				 strerror(-r));
	return 0;
}

static int pid_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	int r = rule->pidfd >= 0 ? 0 : pidfd_open_pid(rule->target.pid, &rule->pidfd);

	if (r < 0 || pidfd_owner(rule->pidfd, rule->target.pid, ret) < 0)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, -ESRCH, "no such process: %d", (int)rule->target.pid);
	return 0;
}

/* A process from outside the root would be pulled into our subtree from
 * anywhere on the host (and the sockets it has, made outside the root, are
 * never seen by our programs). */
static int pid_in_root(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *path = NULL;
	int r;

	if (streq(m->cgroup_root, "/"))
		return 0;
	/* Through the pidfd the rule keeps: the cgroup read is that process's
	 * if it is still alive after the read. */
	r = rule->pidfd >= 0 ? 0 : pidfd_open_pid(rule->target.pid, &rule->pidfd);
	if (r >= 0)
		r = cg_pid_get_path(rule->target.pid, &path);
	if (r < 0 || pidfd_is_alive(rule->pidfd) <= 0)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, -ESRCH, "no such process: %d", (int)rule->target.pid);
	if (!cg_path_is_inside(path, m->cgroup_root))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "%s is in cgroup %s, outside the cgroup root %s that this netbumpd manages", rule->name,
				 path, m->cgroup_root);
	return 0;
}

static bool pid_applies_to(Manager *m, const Rule *r, uid_t uid) {
	uid_t owner;

	if (r->pidfd >= 0 && pidfd_owner(r->pidfd, r->target.pid, &owner) >= 0 && owner == uid)
		return true;
	/* its children, whoever they run as now */
	return r->cgroup_abs && uid_runs_in(m, uid, r->cgroup_abs + strlen(m->cgroup_mount));
}

static int pid_map_set(Manager *m, Rule *r) {
	int k;

	if (r->leans)
		return 0; /* until it takes the grip (grip_take()) */
	k = manager_bpf_set_rule(m, r);

	if (k >= 0)
		pid_rule_sync_cookies(m, r);
	return k;
}

static void pid_map_del(Manager *m, Rule *r) {
	if (!r->leans)
		(void)manager_bpf_del_rule(m, r);
}

#define SWAP(a, b)                  \
	do {                        \
		typeof(a) _t = (a); \
		(a) = (b);          \
		(b) = _t;           \
	} while (0)

/* The cgroup, processes, sockets and watches go to to (grip.h); from is
 * left with none of them. */
static void pid_grip_move(Manager *m, Rule *from, Rule *to) {
	if (!from->remote && !from->access)
		pid_rule_forget_cookies(m, from);
	if (to->pidfd >= 0)
		close(to->pidfd);
	to->pidfd = from->pidfd;
	from->pidfd = -1;
	sd_event_source_disable_unref(to->pidfd_watch);
	to->pidfd_watch = from->pidfd_watch;
	from->pidfd_watch = NULL;
	sd_event_source_disable_unref(to->events_watch);
	to->events_watch = from->events_watch;
	from->events_watch = NULL;
	if (to->pidfd_watch)
		(void)sd_event_source_set_userdata(to->pidfd_watch, to);
	if (to->events_watch)
		(void)sd_event_source_set_userdata(to->events_watch, to);
	to->exited = from->exited;
	to->made_cgroup = from->made_cgroup;
	from->made_cgroup = false;
	to->key = from->key;
	from->key = 0;
	SWAP(to->cgroup_abs, from->cgroup_abs);
	SWAP(to->scope, from->scope);
	SWAP(to->moved, from->moved);
	SWAP(to->n_moved, from->n_moved);
	SWAP(to->cookies, from->cookies);
	SWAP(to->n_cookies, from->n_cookies);
}

static bool pid_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	if (rule->n_cookies == 0 && (!rule->cgroup_abs || cg_populated(rule->cgroup_abs) == 0))
		return false;
	if (rule->cgroup_abs)
		(void)flowset_add_subtree(fs, rule->cgroup_abs);
	fs->cookies = rule->cookies;
	fs->n_cookies = rule->n_cookies;
	return true;
}


/* The processes move only once the rule's classes and maps exist, and
 * only after where they come from is on disk: a daemon killed halfway
 * leaves the next start knowing where to put them back. */
static int pid_attach(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	const char *why = NULL;
	int r;

	r = pid_rule_collect(m, rule, &why);
	if (r >= 0) {
		r = manager_state_save(m);
		if (r < 0)
			return rule_fail(ret_error, ret_reason, E_FAILED, r,
					 "cannot record the rule in the state directory %s (%s); nothing was changed",
					 m->state_dir, strerror(-r));
		r = pid_rule_attach(m, rule, &why);
	}
	if (r == -ESRCH)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "process %d exited", (int)rule->target.pid);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: %s: %s; nothing was changed", rule->name,
				 why ?: "cannot move the process", strerror(-r));
	manager_bpf_bump_gen(m);
	(void)rule_watch_pid(m, rule);
	return 0;
}

const KindOps kind_pid = {
	.owner_first = true,
	.transient = true,
	.lands_itself = true,
	.resolve = pid_resolve,
	.attach = pid_attach,
	.owner = pid_owner,
	.in_root = pid_in_root,
	.applies_to = pid_applies_to,
	.map_set = pid_map_set,
	.map_del = pid_map_del,
	.release = pid_rule_detach,
	.flows = pid_flows,
	.grip_move = pid_grip_move,
};
