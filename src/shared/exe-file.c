/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "exe-file.h"
#include "macro.h"

uint32_t exe_kernel_dev(dev_t dev) {
	return (uint32_t)(major(dev) << 20 | (minor(dev) & 0xfffff));
}

int exe_mountinfo_dev(const char *mountinfo, uint64_t mnt_id, uint32_t *ret) {
	for (const char *line = mountinfo; line && *line;) {
		unsigned long long id, parent;
		unsigned maj, min;

		if (sscanf(line, "%llu %llu %u:%u ", &id, &parent, &maj, &min) == 4 && id == mnt_id) {
			*ret = (uint32_t)(maj << 20 | (min & 0xfffff));
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -ENOENT;
}

/* The kernel's device of the file system fd is on: that of its mount
 * (statx(2) STATX_MNT_ID, Linux 5.8), else st_dev. */
static uint32_t fs_kernel_dev(int fd, dev_t st_dev) {
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *text = NULL;
	struct statx stx;
	size_t n = 0;
	uint32_t kdev;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
		return exe_kernel_dev(st_dev);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f || getdelim(&text, &n, '\0', f) < 0 || exe_mountinfo_dev(text, stx.stx_mnt_id, &kdev) < 0)
		return exe_kernel_dev(st_dev);
	return kdev;
}

int exe_shebang_interpreter(const char *head, size_t n, char **ret) {
	size_t a = 2, b;

	if (n < 2 || head[0] != '#' || head[1] != '!')
		return -EINVAL;
	while (a < n && (head[a] == ' ' || head[a] == '\t'))
		a++;
	for (b = a; b < n && head[b] != ' ' && head[b] != '\t' && head[b] != '\n' && head[b] != '\0'; b++)
		;
	*ret = b > a ? strndup(head + a, b - a) : strdup("(none)");
	return *ret ? 0 : -ENOMEM;
}

static int fail(char **ret_reason, int r, const char *fmt, const char *a, const char *b) {
	if (asprintf(ret_reason, fmt, a, b, b) < 0)
		*ret_reason = NULL;
	return r;
}

int exe_file_check(const char *path, ExeFile *ret, char **ret_reason) {
	_cleanup_close_ int fd = -1;
	char head[256];
	struct stat st;
	ssize_t n;

	*ret_reason = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int r = negative_errno();
		if (r == -ENOENT || r == -ENOTDIR)
			return fail(ret_reason, -ENOENT, "no such file: %s", path, NULL);
		if (asprintf(ret_reason, "cannot open %s: %s", path, strerror(-r)) < 0)
			*ret_reason = NULL;
		return r;
	}
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (S_ISDIR(st.st_mode))
		return fail(ret_reason, -EISDIR, "%s is a directory, not a program", path, NULL);
	if (!S_ISREG(st.st_mode))
		return fail(ret_reason, -EINVAL, "%s is not a regular file, so not a program anyone can run", path, NULL);
	if (!(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
		return fail(ret_reason, -ENOEXEC, "%s is not executable (no execute permission bit): the kernel would run no process from it",
			    path, NULL);
	n = pread(fd, head, sizeof(head), 0);
	if (n < 0)
		return negative_errno();
	if (n >= 2 && head[0] == '#' && head[1] == '!') {
		_cleanup_free_ char *interp = NULL;
		int r = exe_shebang_interpreter(head, (size_t)n, &interp);
		if (r < 0)
			return r;
		/* execve(2): the kernel runs the interpreter with the script
		 * as an argument; the process's executable is the interpreter. */
		return fail(ret_reason, -ENOEXEC,
			    "%s is a script: the kernel runs its interpreter %s, which is what /proc/PID/exe of its processes "
			    "names, so exe: cannot tell them from other %s programs; limit the interpreter's processes by "
			    "pid:, or start the script with netbump-wrap",
			    path, interp);
	}
	if (n < 4 || memcmp(head, "\177ELF", 4) != 0)
		return fail(ret_reason, -ENOEXEC,
			    "%s is not an ELF program: the kernel would run it through an interpreter (binfmt_misc), "
			    "which /proc/PID/exe would name, or not at all",
			    path, NULL);
	*ret = (ExeFile){ .ino = (uint64_t)st.st_ino, .kdev = fs_kernel_dev(fd, st.st_dev), .dev = (uint64_t)st.st_dev };
	return 0;
}
