/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup-util.h"
#include "macro.h"

/* mountinfo escapes blanks, tabs, newlines and backslashes as \ooo. */
static void unescape_octal(char *s) {
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else
			*w++ = *r;
	}
	*w = '\0';
}

int cg_find_mount(char **ret) {
	return cg_find_mount_in("/proc/self/mountinfo", ret);
}

int cg_find_mount_in(const char *mountinfo, char **ret) {
	_cleanup_fclose_ FILE *f = fopen(mountinfo, "re");
	_cleanup_free_ char *line = NULL;
	size_t n = 0;

	if (!f)
		return negative_errno();
	while (getline(&line, &n, f) > 0) {
		/* id parent major:minor root mountpoint options [optional...] - fstype source super */
		char *save = NULL, *mnt = NULL, *tok;
		int field = 0;
		bool after_sep = false;

		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), field++) {
			if (field == 4)
				mnt = tok;
			else if (streq(tok, "-") && field > 5)
				after_sep = true;
			else if (after_sep) {
				if (streq(tok, "cgroup2") && mnt) {
					char *m = strdup(mnt);
					if (!m)
						return -ENOMEM;
					unescape_octal(m);
					*ret = m;
					return 0;
				}
				break;
			}
		}
	}
	return -ENOMEDIUM;
}

int cg_get_id(const char *path, uint64_t *ret) {
	union {
		struct file_handle fh;
		uint8_t space[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mnt_id;
	struct stat st;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt_id, 0) >= 0 && h.fh.handle_bytes == sizeof(uint64_t)) {
		uint64_t id;
		memcpy(&id, h.fh.f_handle, sizeof(id));
		*ret = id;
		return 0;
	}
	/* Without file handles, kernfs inode numbers are the same ids on 64-bit. */
	if (stat(path, &st) < 0)
		return negative_errno();
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*ret = (uint64_t)st.st_ino;
	return 0;
}

bool cg_path_is_inside(const char *path, const char *root) {
	size_t l = strlen(root);

	if (streq(root, "/"))
		return path[0] == '/';
	return strncmp(path, root, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

int cg_pid_get_path(pid_t pid, char **ret) {
	char fn[64];
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t n = 0;
	ssize_t l;

	snprintf(fn, sizeof(fn), "/proc/%d/cgroup", (int)pid);
	f = fopen(fn, "re");
	if (!f)
		return negative_errno();
	while ((l = getline(&line, &n, f)) > 0) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		if (line[l - 1] == '\n')
			line[l - 1] = '\0';
		char *p = strdup(line + 3);
		if (!p)
			return -ENOMEM;
		*ret = p;
		return 0;
	}
	return -ENOMEDIUM;
}

/* kernfs file handles: type FILEID_KERNFS, the 64-bit node id as payload. */
#define FILEID_KERNFS 0xfe

int cg_path_from_id(const char *mount, uint64_t id, char **ret) {
	union {
		struct file_handle fh;
		uint8_t space[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = { .fh.handle_bytes = sizeof(uint64_t), .fh.handle_type = FILEID_KERNFS };
	_cleanup_close_ int mfd = -1, fd = -1;
	char link[64], buf[4096];
	size_t ml = strlen(mount);
	ssize_t n;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	mfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return negative_errno();
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	if (strncmp(buf, mount, ml) != 0 || (buf[ml] != '/' && buf[ml] != '\0'))
		return -EXDEV; /* another mount of the hierarchy */
	*ret = strdup(buf[ml] ? buf + ml : "/");
	return *ret ? 0 : -ENOMEM;
}

int cg_populated(const char *cgroup_abs) {
	_cleanup_free_ char *fn = NULL, *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t cap = 0;

	if (asprintf(&fn, "%s/cgroup.events", cgroup_abs) < 0)
		return -ENOMEM;
	f = fopen(fn, "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno();
	while (getline(&line, &cap, f) > 0)
		if (strncmp(line, "populated ", 10) == 0)
			return line[10] == '1';
	return -EBADMSG;
}

int cg_write_pid(const char *cgroup_abs, pid_t pid) {
	_cleanup_free_ char *fn = NULL;
	_cleanup_close_ int fd = -1;
	char buf[16];
	int n;

	if (asprintf(&fn, "%s/cgroup.procs", cgroup_abs) < 0)
		return -ENOMEM;
	fd = open(fn, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, n) != n)
		return negative_errno();
	return 0;
}
