/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "cgroup-util.h"
#include "macro.h"
#include "mountns.h"

/* mkdir -p, below a directory that exists. */
static int mkdir_parents(const char *path) {
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return negative_errno();
		if (!s)
			return 0;
		*s = '/';
	}
}

int mountns_mount_cgroup2(char **ret_mount) {
	_cleanup_free_ char *host = NULL;
	struct stat st;
	int r;

	r = cg_find_mount_in("/proc/1/mountinfo", &host);
	if (r < 0)
		return -ENOMEDIUM;
	*ret_mount = strdup(host);
	if (!*ret_mount)
		return -ENOMEM;

	/* Our own mount namespace, and nothing of it propagates back: the
	 * namespace we came from (ip netns exec's, or the host's) keeps its
	 * mounts as they are. */
	if (unshare(CLONE_NEWNS) < 0)
		return negative_errno();
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return negative_errno();

	/* A fresh sysfs has /sys/fs/cgroup, empty and read-only: on a hybrid
	 * host the mount point below it needs a tmpfs to be made in. */
	if (stat(host, &st) < 0) {
		if (strncmp(host, "/sys/fs/cgroup/", 15) != 0)
			return -ENOENT;
		if (mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755") < 0)
			return negative_errno();
		r = mkdir_parents(host);
		if (r < 0)
			return r;
	}
	if (mount("cgroup2", host, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME, NULL) < 0)
		return negative_errno();
	return 0;
}
