/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* exe: targets: which files name a program /proc/PID/exe would show, and
 * the identity the exec hook compares. No root needed. */
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
#include "tests.h"

static char dir[] = "/tmp/test-exe-file.XXXXXX";

static char *path_of(const char *name) {
	char *p = NULL;
	ASSERT_TRUE(asprintf(&p, "%s/%s", dir, name) >= 0);
	return p;
}

static char *write_file(const char *name, const void *data, size_t n, mode_t mode) {
	char *p = path_of(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(write(fd, data, n) == (ssize_t)n);
	close(fd);
	ASSERT_OK(chmod(p, mode));
	return p;
}

/* Refused with r, and the reason says want. */
static void refused(const char *path, int r, const char *want) {
	char *why = NULL;
	ExeFile f = { .ino = 4242 };
	int k = exe_file_check(path, &f, &why);

	if (k != r || !why || !strstr(why, want) || f.ino != 4242) {
		fprintf(stderr, "exe_file_check(%s) = %d (%s), want %d and \"%s\"\n", path, k, why ?: "(null)", r, want);
		exit(EXIT_FAILURE);
	}
	free(why);
}

static void shebang(const char *head, const char *want) {
	char *interp = NULL;

	ASSERT_OK(exe_shebang_interpreter(head, strlen(head), &interp));
	ASSERT_STREQ(interp, want);
	free(interp);
}

int main(void) {
	static const char elf[] = "\177ELF\2\1\1\0\0\0\0\0\0\0\0\0";
	_cleanup_free_ char *prog = NULL, *copy = NULL, *script = NULL, *env = NULL, *noexec = NULL, *text = NULL,
			    *empty = NULL, *missing = NULL, *fifo = NULL;
	char *why = NULL;
	ExeFile a, b;
	struct stat st;

	/* the kernel's dev_t: MAJOR << 20 | MINOR (include/linux/kdev_t.h) */
	ASSERT_EQ(exe_kernel_dev(makedev(254, 0)), (254u << 20));
	ASSERT_EQ(exe_kernel_dev(makedev(8, 17)), (8u << 20) | 17u);
	ASSERT_EQ(exe_kernel_dev(makedev(0, 300)), 300u); /* anonymous devices (tmpfs, overlayfs) */
	ASSERT_EQ(exe_kernel_dev(makedev(259, 0x12345)), (259u << 20) | 0x12345u);

	/* mountinfo: the mount's MAJOR:MINOR, the superblock's device */
	{
		static const char mi[] = "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
					 "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
					 "140 27 0:47 /@home /home rw - btrfs /dev/vdb rw,subvol=/@home\n";
		uint32_t d = 0;
		ASSERT_OK(exe_mountinfo_dev(mi, 27, &d));
		ASSERT_EQ(d, 254u << 20);
		ASSERT_OK(exe_mountinfo_dev(mi, 140, &d));
		ASSERT_EQ(d, 47u);
		ASSERT_OK(exe_mountinfo_dev(mi, 22, &d));
		ASSERT_EQ(d, 21u);
		ASSERT_EQ(exe_mountinfo_dev(mi, 2, &d), -ENOENT);
		ASSERT_EQ(exe_mountinfo_dev("", 27, &d), -ENOENT);
	}

	shebang("#!/bin/sh\n", "/bin/sh");
	shebang("#! /usr/bin/env python3\n", "/usr/bin/env");
	shebang("#!\t/usr/bin/perl -w\n", "/usr/bin/perl");
	shebang("#!/bin/bash", "/bin/bash"); /* no newline within what was read */
	shebang("#!\n", "(none)");
	ASSERT_EQ(exe_shebang_interpreter("\177ELF", 4, &why), -EINVAL);
	ASSERT_EQ(exe_shebang_interpreter("#", 1, &why), -EINVAL);

	ASSERT_TRUE(mkdtemp(dir));
	prog = write_file("prog", elf, sizeof(elf), 0755);
	copy = write_file("copy", elf, sizeof(elf), 0755);
	script = write_file("script", "#!/bin/sh\nexec true\n", 20, 0755);
	env = write_file("env-script", "#! /usr/bin/env python3\n", 24, 0700);
	noexec = write_file("noexec", elf, sizeof(elf), 0644);
	text = write_file("text", "echo hi\n", 8, 0755);
	empty = write_file("empty", "", 0, 0755);
	missing = path_of("missing");
	fifo = path_of("fifo");
	ASSERT_OK(mkfifo(fifo, 0755));

	ASSERT_OK(exe_file_check(prog, &a, &why));
	ASSERT_TRUE(why == NULL);
	ASSERT_OK(stat(prog, &st));
	ASSERT_EQ(a.ino, st.st_ino);
	ASSERT_EQ(a.dev, st.st_dev);
	/* the device of its mount: st_dev's on file systems without
	 * subvolumes (tmpfs, ext4: what /tmp is here) */
	ASSERT_EQ(a.kdev, exe_kernel_dev(st.st_dev));
	/* the same bytes at another path: another file */
	ASSERT_OK(exe_file_check(copy, &b, &why));
	ASSERT_TRUE(a.ino != b.ino);
	ASSERT_EQ(a.kdev, b.kdev);
	/* a hard link: the same file */
	{
		_cleanup_free_ char *hard = path_of("hard");
		ASSERT_OK(link(prog, hard));
		ASSERT_OK(exe_file_check(hard, &b, &why));
		ASSERT_EQ(a.ino, b.ino);
		ASSERT_OK(unlink(hard));
	}
	/* executable by someone: any execute bit will do */
	ASSERT_OK(chmod(copy, 0701));
	ASSERT_OK(exe_file_check(copy, &b, &why));

	refused(script, -ENOEXEC, "interpreter /bin/sh");
	refused(env, -ENOEXEC, "interpreter /usr/bin/env");
	refused(noexec, -ENOEXEC, "not executable");
	refused(text, -ENOEXEC, "not an ELF program");
	refused(empty, -ENOEXEC, "not an ELF program");
	refused(missing, -ENOENT, "no such file");
	refused(dir, -EISDIR, "is a directory");
	refused(fifo, -EINVAL, "not a regular file");
	{
		_cleanup_free_ char *under = path_of("prog/x");
		refused(under, -ENOENT, "no such file");
	}

	const char *names[] = { "prog", "copy", "script", "env-script", "noexec", "text", "empty", "fifo" };
	for (size_t k = 0; k < ELEMENTSOF(names); k++) {
		_cleanup_free_ char *p = path_of(names[k]);
		(void)unlink(p);
	}
	ASSERT_OK(rmdir(dir));
	return 0;
}
