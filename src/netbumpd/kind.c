/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup-util.h"
#include "kind.h"
#include "macro.h"
#include "proc-util.h"

extern const KindOps kind_cgroup, kind_unit, kind_user, kind_all, kind_pid, kind_sock, kind_exe, kind_machine,
	kind_container;

static const KindOps *const kinds[_TARGET_KIND_MAX] = {
	[TARGET_CGROUP] = &kind_cgroup,
	[TARGET_USER] = &kind_user,
	[TARGET_PID] = &kind_pid,
	[TARGET_SOCK] = &kind_sock,
	[TARGET_UNIT] = &kind_unit,
	[TARGET_ALL] = &kind_all,
	[TARGET_MACHINE] = &kind_machine,
	[TARGET_CONTAINER] = &kind_container,
	[TARGET_EXE] = &kind_exe,
};

const KindOps *kind_of(TargetKind kind) {
	/* target_parse() makes only these: anything else is a bug */
	assert((unsigned)kind < _TARGET_KIND_MAX && kinds[kind]);
	return kinds[kind];
}

uid_t cgroup_delegate(Manager *m, const char *rel) {
	_cleanup_free_ char *abs = NULL;
	struct stat st;

	if (!rel || asprintf(&abs, "%s%s", m->cgroup_mount, streq(rel, "/") ? "" : rel) < 0 || stat(abs, &st) < 0 ||
	    st.st_uid == 0)
		return (uid_t)-1;
	return st.st_uid;
}

bool cgroup_owned_by(Manager *m, const char *rel, uid_t uid) {
	_cleanup_free_ char *abs = NULL;
	struct stat st;

	if (asprintf(&abs, "%s%s", m->cgroup_mount, streq(rel, "/") ? "" : rel) < 0)
		return false;
	return stat(abs, &st) >= 0 && st.st_uid == uid;
}

/* The owner read from /proc belongs to the process the pidfd refers to
 * only if that process is still alive after the read (a PID is reused only
 * after its process is gone). */
int pidfd_owner(int pidfd, pid_t pid, uid_t *ret) {
	uid_t uid;
	int r = proc_get_uid(pid, &uid);

	if (r < 0)
		return r;
	if (pidfd_is_alive(pidfd) <= 0)
		return -ESRCH;
	*ret = uid;
	return 0;
}

/* The cgroups (paths relative to the mount) that a uid's processes run in,
 * read from /proc at most once per UID_CGROUPS_FRESH_USEC: a List asks about
 * every rule, and a scan of /proc per rule would make it quadratic; a
 * stream of List calls, served a few at a time in turns, one scan per turn
 * would make it most of the work. */
#define UID_CGROUPS_FRESH_USEC 20000u
static struct {
	uid_t uid;
	uint64_t when; /* sd_event_now() of the iteration that read it, 0 = none */
	char **paths;
	size_t n;
} uid_cgroups = { .uid = (uid_t)-1 };

void uid_cgroups_clear(void) {
	for (size_t k = 0; k < uid_cgroups.n; k++)
		free(uid_cgroups.paths[k]);
	free(uid_cgroups.paths);
	uid_cgroups.paths = NULL;
	uid_cgroups.n = 0;
	uid_cgroups.when = 0;
	uid_cgroups.uid = (uid_t)-1;
}

static void uid_cgroups_load(Manager *m, uid_t uid) {
	uint64_t now = 0;
	DIR *d;
	struct dirent *de;

	if (!m->event || sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
		now = now_usec();
	if (uid_cgroups.when && now >= uid_cgroups.when && now - uid_cgroups.when < UID_CGROUPS_FRESH_USEC &&
	    uid_cgroups.uid == uid)
		return;
	uid_cgroups_clear();
	uid_cgroups.uid = uid;
	uid_cgroups.when = now;
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *path = NULL, *end;
		bool seen = false;
		uid_t owner;
		long pid;

		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno != 0 || *end || pid <= 0 || pid > INT32_MAX)
			continue;
		if (proc_get_uid((pid_t)pid, &owner) < 0 || owner != uid || cg_pid_get_path((pid_t)pid, &path) < 0)
			continue;
		for (size_t k = 0; k < uid_cgroups.n && !seen; k++)
			seen = streq(uid_cgroups.paths[k], path);
		char **nv = seen ? NULL : realloc(uid_cgroups.paths, (uid_cgroups.n + 1) * sizeof(char *));
		if (!nv) {
			free(path);
			continue;
		}
		uid_cgroups.paths = nv;
		nv[uid_cgroups.n++] = path;
	}
	closedir(d);
}

bool uid_runs_in(Manager *m, uid_t uid, const char *path) {
	uid_cgroups_load(m, uid);
	for (size_t k = 0; k < uid_cgroups.n; k++)
		if (cg_path_is_inside(uid_cgroups.paths[k], path))
			return true;
	return false;
}

static int add_subtree(FlowSet *fs, const char *dir, unsigned depth) {
	uint64_t id, *n;
	DIR *d;
	struct dirent *de;

	if (depth > 32 || fs->n_cgroups > 4096 || cg_get_id(dir, &id) < 0)
		return 0;
	n = realloc(fs->cgroups, (fs->n_cgroups + 1) * sizeof(uint64_t));
	if (!n)
		return -ENOMEM;
	fs->cgroups = n;
	fs->cgroups[fs->n_cgroups++] = id;
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", dir, de->d_name) >= 0)
			(void)add_subtree(fs, sub, depth + 1);
	}
	closedir(d);
	return 0;
}

int flowset_add_subtree(FlowSet *fs, const char *dir) {
	return add_subtree(fs, dir, 0);
}
