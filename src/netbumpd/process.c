/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pid: rules. The process (and its descendants) moves into a cgroup netbump
 * makes, <cgroup root>/netbump/pid-<PID>, so the sockets it creates from
 * now on are classified by that cgroup, the deepest of their ancestry. The
 * sockets it already has keep the cgroup they were created in (the kernel
 * never moves a socket), so they are mirrored by socket cookie, found
 * through sock_diag for the socket inodes in /proc/PID/fd.
 *
 * The rule holds a pidfd, so a PID that is reused later is never acted on,
 * and watches cgroup.events: when the cgroup empties, the process and every
 * child it left behind are gone, and so is the rule.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf.h"
#include "kind-exe.h"
#include "grip.h"
#include "kind.h"
#include "cgroup-util.h"
#include "log.h"
#include "manager.h"
#include "netbump/netbump.h"
#include "proc-util.h"
#include "process.h"
#include "ramp.h"
#include "rule.h"
#include "scope-map.h"
#include "sock-diag.h"
#include "sock-find.h"
#include "state.h"
#include "unit.h"


static char *cgroup_abs_path(Manager *m, const char *rel) {
	char *p = NULL;
	if (asprintf(&p, "%s%s", m->cgroup_mount, streq(rel, "/") ? "" : rel) < 0)
		return NULL;
	return p;
}

/* Puts a process back where it came from (a path relative to the mount).
 * Where that cgroup is gone or refuses processes, the nearest ancestor of
 * it that takes the process, but never one outside the cgroup root this
 * netbumpd manages: a process there would leave every rule behind, its
 * user's and root's included. */
static int put_back(Manager *m, const char *from, pid_t pid) {
	_cleanup_free_ char *rel = NULL;
	bool inside = from && cg_path_is_inside(from, m->cgroup_root);

	rel = strdup(inside ? from : m->cgroup_root);
	if (!rel)
		return -ENOMEM;
	for (;;) {
		_cleanup_free_ char *to = cgroup_abs_path(m, rel);
		char *slash;
		int r;

		if (!to)
			return -ENOMEM;
		r = cg_write_pid(to, pid);
		if (r >= 0 || r == -ESRCH || streq(rel, m->cgroup_root))
			return r;
		slash = strrchr(rel, '/');
		if (!slash)
			return r;
		if (slash == rel)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

int manager_own_cgroup(Manager *m) {
	if (m->own_cgroup_abs)
		return 0;
	if (asprintf(&m->own_cgroup_abs, "%s/netbump", m->cgroup_root_abs) < 0)
		return -ENOMEM;
	/* "netbump" under our root is ours by name, also when a killed run
	 * left it behind. */
	if (mkdir(m->own_cgroup_abs, 0755) >= 0 || errno == EEXIST)
		m->made_own_cgroup = true;
	else {
		int r = negative_errno();
		free(m->own_cgroup_abs);
		m->own_cgroup_abs = NULL;
		return r;
	}
	return 0;
}

void manager_own_cgroup_remove(Manager *m) {
	if (m->own_cgroup_abs && m->made_own_cgroup)
		(void)rmdir(m->own_cgroup_abs);
	free(m->own_cgroup_abs);
	m->own_cgroup_abs = NULL;
	m->made_own_cgroup = false;
}

static int moved_add(Rule *rule, pid_t pid, char *from) {
	Moved *n = realloc(rule->moved, (rule->n_moved + 1) * sizeof(Moved));
	if (!n)
		return -ENOMEM;
	rule->moved = n;
	rule->moved[rule->n_moved++] = (Moved){ .pid = pid, .from = from };
	return 0;
}

int pid_rule_prepare(Manager *m, Rule *rule, const char **ret_reason) {
	struct stat st;
	int r;

	if (rule->pidfd < 0) {
		r = pidfd_open_pid(rule->target.pid, &rule->pidfd);
		if (r < 0)
			return *ret_reason = r == -ESRCH ? "no such process" : "cannot open the process", r;
	}

	/* Asked by a user: the process stays where it is, under a cgroup of
	 * the rule's own made in its cgroup (a user could not have moved it
	 * into netbump's): every cgroup around it, with root's rules and
	 * cgroup.kill, still has it. Where systemd manages that cgroup for
	 * someone else, only root may have it moved. */
	if (rule->owner != 0) {
		_cleanup_free_ char *from = NULL;

		r = cg_pid_get_path(rule->target.pid, &from);
		if (r < 0 || pidfd_is_alive(rule->pidfd) <= 0)
			return *ret_reason = "no such process", -ESRCH;
		if (manager_use_scopes(m) && cgroup_delegate(m, from) != rule->owner)
			return *ret_reason = "the process is in a cgroup systemd manages that is not yours (only root "
					     "may move it: ask root, or start it with netbump-wrap)",
			       -EPERM;
		if (asprintf(&rule->cgroup_abs, "%s%s/netbump-pid-%d", m->cgroup_mount, streq(from, "/") ? "" : from,
			     (int)rule->target.pid) < 0)
			return -ENOMEM;
		if (mkdir(rule->cgroup_abs, 0755) < 0 && (errno != EEXIST || stat(rule->cgroup_abs, &st) < 0))
			return *ret_reason = "cannot create the process's cgroup", negative_errno();
		rule->made_cgroup = true; /* made now, or a leftover of ours */
		r = cg_get_id(rule->cgroup_abs, &rule->key);
		if (r < 0)
			return *ret_reason = "cannot read the id of the process's cgroup", r;
		return 0;
	}

	if (manager_use_scopes(m)) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;

		r = proc_descendants(rule->target.pid, &pids, &n);
		if (r < 0)
			return *ret_reason = "cannot list the process's children", r;
		for (size_t k = 0; k < n; k++) {
			char *from = NULL;
			if (cg_pid_get_path(pids[k], &from) < 0)
				continue;
			if (moved_add(rule, pids[k], from) < 0) {
				free(from);
				return -ENOMEM;
			}
			rule->moved[rule->n_moved - 1].from_unit = unit_of_pid(m, pids[k]);
		}
		r = scope_start(m, rule, pids, n, ret_reason);
		if (r < 0)
			return r;
		r = cg_get_id(rule->cgroup_abs, &rule->key);
		if (r < 0)
			return *ret_reason = "cannot read the id of the process's scope", r;
		return 0;
	}

	r = manager_own_cgroup(m);
	if (r < 0)
		return *ret_reason = "cannot create netbump's cgroup", r;
	if (asprintf(&rule->cgroup_abs, "%s/pid-%d", m->own_cgroup_abs, (int)rule->target.pid) < 0)
		return -ENOMEM;
	if (mkdir(rule->cgroup_abs, 0755) >= 0)
		rule->made_cgroup = true;
	else if (errno != EEXIST || stat(rule->cgroup_abs, &st) < 0)
		return *ret_reason = "cannot create the process's cgroup", negative_errno();
	else
		rule->made_cgroup = true; /* a leftover of ours: take it over */

	r = cg_get_id(rule->cgroup_abs, &rule->key);
	if (r < 0)
		return *ret_reason = "cannot read the id of the process's cgroup", r;
	return 0;
}

typedef struct InodeSet {
	uint64_t *v;
	bool *seen; /* v[k] was among sock_diag's sockets */
	size_t n;
	Rule *rule;
	Manager *m;
} InodeSet;

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool sock_rule_owns(Manager *m, uint64_t cookie) {
	for (Rule *r = m->rules; r; r = r->next)
		if (r->target.kind == TARGET_SOCK && r->key == cookie)
			return true;
	return false;
}

static int mirror_cb(const struct sock_info *s, void *userdata) {
	InodeSet *set = userdata;
	Rule *rule = set->rule;
	uint64_t *n;

	const uint64_t *at = bsearch(&s->inode, set->v, set->n, sizeof(uint64_t), cmp_u64);

	if (!at)
		return 0;
	set->seen[at - set->v] = true;
	for (size_t k = 0; k < rule->n_cookies; k++)
		if (rule->cookies[k] == s->cookie)
			return 0;
	n = realloc(rule->cookies, (rule->n_cookies + 1) * sizeof(uint64_t));
	if (!n)
		return -ENOMEM;
	rule->cookies = n;
	rule->cookies[rule->n_cookies++] = s->cookie;
	return 0;
}

uint32_t rule_flags(const Rule *r) {
	/* A rule class with leaf classes (tree.c) passes its own traffic to
	 * them; without, it is the leaf. */
	return (r->cls_up.on ? NB_F_UP : 0) | (r->cls_down.on ? NB_F_DOWN : 0) | (r->leaves ? NB_F_SPLIT : 0) |
	       (r->leaves && r->small_first && r->small_made ? NB_F_SMALL_FIRST : 0);
}

/* Writes the class of the rule for every mirrored socket that no sock rule
 * claims (socket rules win over process rules). */
void pid_rule_sync_cookies(Manager *m, Rule *rule) {
	/* A scoped rule's or a deny's sockets are keys of scope_keys
	 * (scope-map.h), never entries of the rule maps. */
	if (rule->remote || rule->access || rule->leans)
		return;
	for (size_t k = 0; k < rule->n_cookies; k++)
		if (!sock_rule_owns(m, rule->cookies[k]))
			(void)manager_bpf_set_sock(m, rule->cookies[k], rule->minor, rule_flags(rule));
}

static bool moved_has(const Rule *rule, pid_t pid) {
	for (size_t k = 0; k < rule->n_moved; k++)
		if (rule->moved[k].pid == pid)
			return true;
	return false;
}

static void moved_drop(Rule *rule, size_t k) {
	free(rule->moved[k].from);
	free(rule->moved[k].from_unit);
	rule->moved[k] = rule->moved[--rule->n_moved];
}

int pid_rule_collect(Manager *m, Rule *rule, const char **ret_reason) {
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r;

	if (rule->scope)
		return 0; /* systemd moved them (pid_rule_prepare()) */
	r = proc_descendants(rule->target.pid, &pids, &n);
	if (r < 0)
		return *ret_reason = "cannot list the process's children", r;
	for (size_t k = 0; k < n; k++) {
		char *from = NULL;
		uid_t uid;

		/* A user's rule takes along only the user's own children: one
		 * that runs as someone else (setuid) is not its to move. */
		if (k > 0 && rule->owner != 0 && (proc_get_uid(pids[k], &uid) < 0 || uid != rule->owner))
			continue;
		if (cg_pid_get_path(pids[k], &from) < 0) {
			if (k == 0)
				return *ret_reason = "the process exited", -ESRCH;
			continue; /* gone meanwhile */
		}
		/* ... and only what sits where the process is: a user could not
		 * have moved a child from elsewhere into its cgroup either. */
		if (k > 0 && rule->owner != 0 && !streq(from, rule->moved[0].from)) {
			free(from);
			continue;
		}
		if (moved_add(rule, pids[k], from) < 0) {
			free(from);
			return -ENOMEM;
		}
	}
	return 0;
}

/* The moved processes' sockets sock_diag did not show: those of another
 * network namespace (inet_diag dumps netbumpd's only) and those in no hash
 * table. Each is taken through its descriptor (sock-find.h); sockets that
 * are not TCP or UDP (Unix, netlink) are among them and are passed over. */
static void mirror_unseen(Manager *m, Rule *rule, InodeSet *set) {
	bool any = false;

	for (size_t k = 0; k < set->n && !any; k++)
		any = !set->seen[k];
	for (size_t p = 0; any && p < rule->n_moved; p++) {
		_cleanup_free_ ProcSocketFd *fds = NULL;
		size_t n = 0;

		if (proc_socket_fds(rule->moved[p].pid, &fds, &n) < 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			const uint64_t *at = bsearch(&fds[k].inode, set->v, set->n, sizeof(uint64_t), cmp_u64);
			struct sock_info si;

			if (!at || set->seen[at - set->v])
				continue;
			set->seen[at - set->v] = true;
			if (sock_find_fd(m, rule->moved[p].pid, fds[k].fd, &si) < 0 || si.inode != *at)
				continue;
			if (mirror_cb(&si, set) < 0)
				return;
			log_debug("%s: socket %" PRIu64 " of process %d mirrored through its descriptor %d.", rule->name,
				  si.inode, (int)rule->moved[p].pid, fds[k].fd);
		}
	}
}

int pid_rule_attach(Manager *m, Rule *rule, const char **ret_reason) {
	InodeSet set = { .rule = rule, .m = m };
	int r;

	if (!rule->scope) {
		for (size_t k = 0; k < rule->n_moved;) {
			uid_t uid;

			/* Asked by a user: only while the process still is that
			 * user's (it may have changed its uid since). */
			if (rule->owner != 0) {
				bool target = rule->moved[k].pid == rule->target.pid;
				r = target ? pidfd_owner(rule->pidfd, rule->target.pid, &uid)
					   : proc_get_uid(rule->moved[k].pid, &uid);
				if (r >= 0 && uid != rule->owner)
					r = -EPERM;
				if (r < 0 && target)
					return *ret_reason = r == -EPERM ? "the process is no longer yours"
									 : "the process exited", r;
				if (r < 0) {
					moved_drop(rule, k);
					continue;
				}
			}
			/* A child is moved by its PID (cgroup.procs takes no pidfd):
			 * only while a pidfd says that PID is still a process whose
			 * parent is one of the rule's, checked just before. */
			_cleanup_close_ int cfd = -1;
			pid_t ppid;
			if (k > 0 && (pidfd_open_pid(rule->moved[k].pid, &cfd) < 0 ||
				      proc_get_ppid(rule->moved[k].pid, &ppid) < 0 || !moved_has(rule, ppid) ||
				      pidfd_is_alive(cfd) <= 0)) {
				moved_drop(rule, k);
				continue;
			}
			r = cg_write_pid(rule->cgroup_abs, rule->moved[k].pid);
			if (r >= 0) {
				k++;
				continue;
			}
			if (rule->moved[k].pid == rule->target.pid)
				return *ret_reason = r == -ESRCH ? "the process exited" : "cannot move the process", r;
			moved_drop(rule, k); /* a child that exited meanwhile */
		}
	}

	for (size_t k = 0; k < rule->n_moved; k++) {
		_cleanup_free_ uint64_t *inodes = NULL;
		size_t ni = 0;

		r = proc_socket_inodes(rule->moved[k].pid, &inodes, &ni);
		if (r == -EACCES || r == -EPERM)
			log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule),
					 "%s: cannot read the open files of process %d, its open connections stay "
					 "unlimited (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH missing?): %m",
					 rule->name, (int)rule->moved[k].pid);
		if (r < 0 || ni == 0)
			continue;
		uint64_t *nv = realloc(set.v, (set.n + ni) * sizeof(uint64_t));
		if (!nv) {
			free(set.v);
			return -ENOMEM;
		}
		set.v = nv;
		memcpy(set.v + set.n, inodes, ni * sizeof(uint64_t));
		set.n += ni;
	}

	/* The pidfd says whether the process we moved is the one the rule
	 * was made for: if it exited, its PID may already belong to another. */
	if (pidfd_is_alive(rule->pidfd) <= 0) {
		free(set.v);
		return *ret_reason = "the process exited", -ESRCH;
	}

	if (set.n > 0) {
		qsort(set.v, set.n, sizeof(uint64_t), cmp_u64);
		set.seen = calloc(set.n, sizeof(bool));
		if (!set.seen) {
			free(set.v);
			return -ENOMEM;
		}
		if (!m->diag)
			r = sock_diag_open(&m->diag);
		else
			r = 0;
		for (int attempt = 0; r >= 0 && attempt < 3; attempt++) {
			r = sock_diag_dump(m->diag, mirror_cb, &set);
			if (r != -EAGAIN)
				break;
		}
		if (r < 0)
			log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule),
					 "Failed to list the sockets of %s; its existing sockets stay unlimited: %m",
					 rule->name);
		else
			mirror_unseen(m, rule, &set);
		if (!rule->remote && !rule->access)
			(void)ramp_prepare(m, rule);
		pid_rule_sync_cookies(m, rule);
	}
	free(set.v);
	free(set.seen);
	scope_target_sync(m, rule);
	log_struct(LOG_INFO, RULE_FIELDS(rule), "%s: moved %zu process(es) into %s, %zu existing socket(s) mirrored.",
		   rule->name, rule->n_moved, rule->cgroup_abs, rule->n_cookies);
	return 0;
}

/* Where a process found in the rule's cgroup goes back to: where it came
 * from, or, for a child born inside, where its first ancestor came from. */
static const char *origin_of(const Rule *rule, pid_t pid) {
	for (size_t k = 0; k < rule->n_moved; k++)
		if (rule->moved[k].pid == pid)
			return rule->moved[k].from;
	return rule->n_moved > 0 ? rule->moved[0].from : "/";
}

void pid_rule_forget_cookies(Manager *m, Rule *rule) {
	for (size_t k = 0; k < rule->n_cookies; k++)
		if (!sock_rule_owns(m, rule->cookies[k]))
			(void)manager_bpf_del_sock(m, rule->cookies[k]);
}

void pid_rule_detach(Manager *m, Rule *rule, bool move_back) {
	if (rule->leans)
		return;
	if (!rule->remote && !rule->access)
		pid_rule_forget_cookies(m, rule);

	if (rule->scope) {
		_cleanup_free_ char *fn = NULL, *line = NULL;
		_cleanup_fclose_ FILE *f = NULL;
		size_t cap = 0;

		if (move_back && asprintf(&fn, "%s/cgroup.procs", rule->cgroup_abs) >= 0 && (f = fopen(fn, "re")))
			while (getline(&line, &cap, f) > 0) {
				pid_t pid = (pid_t)strtol(line, NULL, 10);
				const char *unit = NULL;

				for (size_t k = 0; k < rule->n_moved; k++)
					if (rule->moved[k].pid == pid || (!unit && k == 0))
						unit = rule->moved[k].from_unit;
				if (pid > 0 && unit && scope_give_back(m, unit, pid) < 0)
					log_struct(LOG_WARNING, RULE_FIELDS(rule), "%s: could not hand process %d back to %s.",
						   rule->name, (int)pid, unit);
			}
		scope_stop(m, rule);
		return;
	}

	if (rule->cgroup_abs && move_back) {
		/* Bounded: a process that forks as fast as we move could keep
		 * the cgroup busy forever. */
		for (int round = 0; round < 8; round++) {
			_cleanup_free_ char *fn = NULL, *line = NULL;
			_cleanup_fclose_ FILE *f = NULL;
			size_t cap = 0;
			unsigned moved = 0;

			if (asprintf(&fn, "%s/cgroup.procs", rule->cgroup_abs) < 0)
				break;
			f = fopen(fn, "re");
			if (!f)
				break;
			while (getline(&line, &cap, f) > 0) {
				pid_t pid = (pid_t)strtol(line, NULL, 10);

				if (pid <= 0 || put_back(m, origin_of(rule, pid), pid) < 0)
					continue;
				moved++;
			}
			if (moved == 0)
				break;
		}
	}
	if (rule->cgroup_abs && rule->made_cgroup) {
		if (rmdir(rule->cgroup_abs) < 0 && errno != ENOENT)
			log_struct_errno(LOG_WARNING, errno, RULE_FIELDS(rule), "%s: failed to remove %s: %m", rule->name,
					 rule->cgroup_abs);
		rule->made_cgroup = false;
	}
}

/* ---- after a crash ---- */

static const char *saved_origin(Manager *m, pid_t pid) {
	for (size_t k = 0; k < m->n_saved; k++)
		for (size_t j = 0; j < m->saved[k].n_moved; j++)
			if (m->saved[k].moved[j].pid == pid)
				return m->saved[k].moved[j].from;
	return "/";
}

static bool saved_pid_rule(Manager *m, const char *dirname) {
	for (size_t k = 0; k < m->n_saved; k++)
		if (m->saved[k].target && !m->saved[k].remote && strncmp(m->saved[k].target, "pid:", 4) == 0 &&
		    strncmp(dirname, "pid-", 4) == 0 &&
		    streq(m->saved[k].target + 4, dirname + 4))
			return true;
	return false;
}

/* Whether dirname (netbump-exe-DEV-INO) is the place of an exe: rule about
 * to be restored: by what its file is now. A file replaced while netbumpd
 * was down makes its rule another place; the old one's processes go back. */
static bool saved_exe_place(Manager *m, const char *dirname) {
	for (size_t k = 0; k < m->n_saved; k++) {
		_cleanup_free_ char *name = NULL;

		if (m->saved[k].target && strncmp(m->saved[k].target, "exe:", 4) == 0 &&
		    exe_place_name(m->saved[k].target + 4, &name) >= 0 && streq(name, dirname))
			return true;
	}
	return false;
}

/* The processes of cgroup directory cg back in origin (relative to the
 * mount), and cg removed: 1 when it went. */
static int empty_leftover(Manager *m, const char *cg, const char *origin) {
	_cleanup_free_ char *fn = NULL, *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t cap = 0;

	if (asprintf(&fn, "%s/cgroup.procs", cg) < 0)
		return -ENOMEM;
	f = fopen(fn, "re");
	while (f && getline(&line, &cap, f) > 0) {
		pid_t pid = (pid_t)strtol(line, NULL, 10);

		if (pid > 0)
			(void)put_back(m, origin ?: saved_origin(m, pid), pid);
	}
	if (rmdir(cg) >= 0)
		return 1;
	log_warning_errno(errno, "Failed to remove leftover cgroup %s: %m", cg);
	return 0;
}

/* A user's pid rule mirrors its process in place, <origin>/netbump-pid-PID
 * (above), and an exe: rule its processes, <origin>/netbump-exe-DEV-INO
 * (kind-exe.c): one whose rule a kill lost (a Set unanswered at the kill,
 * the rule unset or the state gone while netbumpd was down) is found
 * anywhere below the cgroup root; its processes go back to origin, its
 * parent. */
static unsigned recover_in_place(Manager *m, const char *abs, unsigned depth) {
	DIR *d;
	struct dirent *de;
	unsigned n = 0;

	if (depth > 32)
		return 0;
	d = opendir(abs);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_free_ char *cg = NULL;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' || (depth == 0 && streq(de->d_name, "netbump")))
			continue;
		if (asprintf(&cg, "%s/%s", abs, de->d_name) < 0)
			break;
		if (strncmp(de->d_name, "netbump-pid-", 12) == 0 ||
		    strncmp(de->d_name, EXE_PLACE_PREFIX, strlen(EXE_PLACE_PREFIX)) == 0) {
			const char *origin = abs + strlen(m->cgroup_mount);
			bool kept = de->d_name[8] == 'p' ? saved_pid_rule(m, de->d_name + 8)
							 : saved_exe_place(m, de->d_name);

			if (!kept && empty_leftover(m, cg, *origin ? origin : "/") > 0)
				n++;
			continue;
		}
		n += recover_in_place(m, cg, depth + 1);
	}
	closedir(d);
	return n;
}

int manager_recover_cgroups(Manager *m) {
	_cleanup_free_ char *own = NULL;
	DIR *d;
	struct dirent *de;
	unsigned n = 0, kept = 0;

	n = recover_in_place(m, m->cgroup_root_abs, 0);
	if (asprintf(&own, "%s/netbump", m->cgroup_root_abs) < 0)
		return -ENOMEM;
	d = opendir(own);
	if (!d)
		goto done;
	while ((de = readdir(d))) {
		_cleanup_free_ char *cg = NULL;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (saved_pid_rule(m, de->d_name)) {
			kept++; /* its rule is restored below, processes and all */
			continue;
		}
		if (asprintf(&cg, "%s/%s", own, de->d_name) < 0)
			break;
		if (empty_leftover(m, cg, NULL) > 0)
			n++;
	}
	closedir(d);
	if (kept == 0)
		(void)rmdir(own);
done:
	if (n > 0)
		log_notice("Moved the processes of %u leftover cgroup(s) back to where they came from.", n);
	return 0;
}

typedef struct CookieFilter {
	const uint64_t *want;
	size_t n_want;
	Rule *rule;
} CookieFilter;

static int keep_live_cookie(const struct sock_info *s, void *userdata) {
	CookieFilter *cf = userdata;

	for (size_t k = 0; k < cf->n_want; k++)
		if (cf->want[k] == s->cookie) {
			uint64_t *n = realloc(cf->rule->cookies, (cf->rule->n_cookies + 1) * sizeof(uint64_t));
			if (!n)
				return -ENOMEM;
			cf->rule->cookies = n;
			n[cf->rule->n_cookies++] = s->cookie;
		}
	return 0;
}

int pid_rule_adopt(Manager *m, Rule *rule, const SavedRule *sr) {
	_cleanup_free_ char *rel = NULL, *now = NULL;
	int r;

	if (manager_use_scopes(m)) {
		if (asprintf(&rule->scope, "netbump-pid-%d.scope", (int)rule->target.pid) < 0 ||
		    asprintf(&rule->cgroup_abs, "%s/netbump.slice/%s", m->cgroup_mount, rule->scope) < 0)
			return -ENOMEM;
	} else {
		r = manager_own_cgroup(m);
		if (r < 0)
			return r;
		if (asprintf(&rule->cgroup_abs, "%s/pid-%d", m->own_cgroup_abs, (int)rule->target.pid) < 0)
			return -ENOMEM;
		rule->made_cgroup = true;
	}
	/* A user's rule made its cgroup where the process was (and still
	 * has it there when root took the rule over since). */
	if (access(rule->cgroup_abs, F_OK) < 0 && sr->n_moved > 0) {
		free(rule->cgroup_abs);
		free(rule->scope);
		rule->scope = NULL;
		if (asprintf(&rule->cgroup_abs, "%s%s/netbump-pid-%d", m->cgroup_mount,
			     streq(sr->moved[0].from, "/") ? "" : sr->moved[0].from, (int)rule->target.pid) < 0)
			return -ENOMEM;
		rule->made_cgroup = true;
	}
	if (cg_populated(rule->cgroup_abs) <= 0)
		return -ESRCH; /* everyone left while we were down */
	r = cg_get_id(rule->cgroup_abs, &rule->key);
	if (r < 0)
		return r;

	/* The pidfd is for the process only if it is still in our cgroup: a
	 * PID reused meanwhile would be somewhere else. */
	if (pidfd_open_pid(rule->target.pid, &rule->pidfd) >= 0 &&
	    (cg_pid_get_path(rule->target.pid, &now) < 0 || !streq(now, rule->cgroup_abs + strlen(m->cgroup_mount)) ||
	     pidfd_is_alive(rule->pidfd) <= 0)) {
		close(rule->pidfd);
		rule->pidfd = -1;
	}

	for (size_t k = 0; k < sr->n_moved; k++) {
		char *from = strdup(sr->moved[k].from);
		if (!from || moved_add(rule, sr->moved[k].pid, from) < 0) {
			free(from);
			return -ENOMEM;
		}
		if (sr->moved[k].from_unit)
			rule->moved[rule->n_moved - 1].from_unit = strdup(sr->moved[k].from_unit);
	}
	if (sr->n_cookies > 0) {
		CookieFilter cf = { .want = sr->cookies, .n_want = sr->n_cookies, .rule = rule };
		if (!m->diag)
			(void)sock_diag_open(&m->diag);
		if (m->diag)
			(void)sock_diag_dump(m->diag, keep_live_cookie, &cf);
	}
	return 0;
}

/* ---- cgroup emptiness ---- */

static int events_cb(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
	Rule *rule = userdata;
	int r = cg_populated(rule->cgroup_abs);

	if (r != 0 && !(ev->mask & IN_IGNORED))
		return 0;
	log_struct(LOG_INFO, RULE_FIELDS(rule), "%s: no process left in %s; the rule ends.", rule->name,
		   rule->cgroup_abs);
	manager_rule_expired(rule->manager, rule);
	return 0;
}

/* The process of a pid rule exited: its children (if any) keep the rule
 * through its cgroup, which is renamed so that the PID, once reused, can get
 * a rule of its own. */
static int pidfd_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	Rule *rule = userdata;
	Manager *m = rule->manager;

	rule->pidfd_watch = sd_event_source_disable_unref(rule->pidfd_watch);
	grip_exited(m, rule);
	rule->exited = true;
	if (rule->cgroup_abs && rule->made_cgroup && !rule->scope) {
		_cleanup_free_ char *to = NULL;
		if (asprintf(&to, "%s-%llu", rule->cgroup_abs, (unsigned long long)rule->id) >= 0 &&
		    rename(rule->cgroup_abs, to) >= 0) {
			free(rule->cgroup_abs);
			rule->cgroup_abs = TAKE_PTR(to);
		}
	}
	if (cg_populated(rule->cgroup_abs) > 0)
		log_struct(LOG_INFO, RULE_FIELDS(rule), "%s exited; its children keep the limit (%s).", rule->name,
			   rule->cgroup_abs + strlen(m->cgroup_mount));
	(void)manager_state_save(m);
	return 0;
}

int rule_watch_pid(Manager *m, Rule *rule) {
	if (rule->pidfd < 0)
		return 0;
	return sd_event_add_io(m->event, &rule->pidfd_watch, rule->pidfd, EPOLLIN, pidfd_cb, rule);
}

int rule_watch_cgroup(Manager *m, Rule *rule) {
	_cleanup_free_ char *fn = NULL;
	int r;

	if (asprintf(&fn, "%s/cgroup.events", rule->cgroup_abs) < 0)
		return -ENOMEM;
	r = sd_event_add_inotify(m->event, &rule->events_watch, fn, IN_MODIFY, events_cb, rule);
	if (r < 0)
		return r;
	/* It may have emptied before the watch was in place. */
	if (cg_populated(rule->cgroup_abs) == 0)
		return -ESRCH;
	return 0;
}
