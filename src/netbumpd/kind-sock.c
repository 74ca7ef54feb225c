/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sock:INODE: one TCP or UDP socket, matched by its cookie. */
#include <errno.h>
#include <string.h>

#include "bpf.h"
#include "cgroup-util.h"
#include "kind.h"
#include "log.h"
#include "macro.h"
#include "process.h"
#include "sock-diag.h"
#include "sock-find.h"

static int sock_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *path = NULL;
	struct sock_info si;
	int r;

	if (!m->diag) {
		r = sock_diag_open(&m->diag);
		if (r < 0)
			return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot open sock_diag: %s", strerror(-r));
	}
	for (int attempt = 0; attempt < 3; attempt++) {
		r = sock_diag_find_inode(m->diag, rule->target.inode, &si);
		if (r != -EAGAIN)
			break;
	}
	/* Not in netbumpd's network namespace (or in no hash table): through
	 * a descriptor of a process that holds it (sock-find.h). */
	if (r == -ENOENT) {
		r = sock_find_inode(m, rule->target.inode, rule->target.pid, rule->target.fd, &si);
		if (r >= 0)
			log_debug("%s: found through a process's descriptor (another network namespace, or unbound).",
				  rule->name);
		else if (r == -EACCES || r == -EPERM)
			return rule_fail(ret_error, ret_reason, E_FAILED, r,
					 "no TCP or UDP socket with inode %llu in netbumpd's network namespace, and the "
					 "processes of others cannot be searched for it (CAP_SYS_PTRACE missing?)",
					 (unsigned long long)rule->target.inode);
		else if (r == -EPROTONOSUPPORT)
			return rule_fail(ret_error, ret_reason, E_NOTFOUND, r,
					 "socket %llu is not a TCP or UDP socket",
					 (unsigned long long)rule->target.inode);
		else
			r = -ENOENT;
	}
	if (r == -ENOENT)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r,
				 "no TCP or UDP socket with inode %llu in any network namespace",
				 (unsigned long long)rule->target.inode);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot look up socket %llu: %s",
				 (unsigned long long)rule->target.inode, strerror(-r));
	rule->key = si.cookie;
	rule->sock_uid = si.uid;
	rule->sock_cgroup_id = si.cgroup_id;
	/* It nests where it was made, under its owner. */
	free(rule->nest_path);
	rule->nest_path = NULL;
	if (si.cgroup_id && cg_path_from_id(m->cgroup_mount, si.cgroup_id, &path) >= 0)
		rule->nest_path = TAKE_PTR(path);
	rule->nest_uid = si.uid;
	return 0;
}

static int sock_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	*ret = rule->sock_uid;
	return 0;
}

/* A socket made outside the root is never classified, and its end never
 * reported. */
static int sock_in_root(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *path = NULL;
	int r;

	/* A user's rule nests by where the socket was made: where that cannot
	 * be told, which rules of root's hold it cannot either. */
	if (rule->owner != 0 && (rule->sock_cgroup_id == 0 || !rule->nest_path))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "%s: cannot tell which cgroup it was made in (removed since?), so not which limits "
				 "of root's hold it: only root may limit it",
				 rule->name);
	/* 0: a kernel that does not report it. */
	if (streq(m->cgroup_root, "/") || rule->sock_cgroup_id == 0)
		return 0;
	/* A cgroup removed since keeps its programs for the sockets made in
	 * it; where it was we can no longer tell, and let it be. */
	r = cg_path_from_id(m->cgroup_mount, rule->sock_cgroup_id, &path);
	if (r < 0) {
		log_debug_errno(r, "%s: cannot find the cgroup it was made in (id %llu): %m", rule->name,
				(unsigned long long)rule->sock_cgroup_id);
		return 0;
	}
	if (!cg_path_is_inside(path, m->cgroup_root))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "%s was made in cgroup %s, outside the cgroup root %s that this netbumpd manages",
				 rule->name, path, m->cgroup_root);
	return 0;
}

static bool sock_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return r->sock_uid == uid;
}

static int sock_map_set(Manager *m, Rule *r) {
	return manager_bpf_set_sock(m, r->key, r->minor, rule_flags(r));
}

static void sock_map_del(Manager *m, Rule *rule) {
	(void)manager_bpf_del_sock(m, rule->key);
	/* A process rule that mirrors this socket takes it back. */
	for (Rule *p = m->rules; p; p = p->next)
		if (p->target.kind == TARGET_PID)
			for (size_t k = 0; k < p->n_cookies; k++)
				if (p->cookies[k] == rule->key)
					(void)manager_bpf_set_sock(m, rule->key, p->minor, rule_flags(p));
}

static bool sock_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	fs->cookies = &rule->key;
	fs->n_cookies = 1;
	return true;
}

const KindOps kind_sock = {
	.resolve = sock_resolve,
	.owner = sock_owner,
	.in_root = sock_in_root,
	.applies_to = sock_applies_to,
	.map_set = sock_map_set,
	.map_del = sock_map_del,
	.flows = sock_flows,
};
