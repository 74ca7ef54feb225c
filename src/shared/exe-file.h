/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exe: targets: the program file a rule names, checked the way the kernel
 * will see it, and its identity as the BPF exec hook reads it.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

typedef struct ExeFile {
	uint64_t ino;  /* st_ino: the kernel's inode->i_ino */
	uint32_t kdev; /* the file system's device, inode->i_sb->s_dev, in the
			* kernel's encoding (exe_kernel_dev()): what the exec
			* hook reads; from the mount the file is on (its
			* /proc/self/mountinfo "MAJOR:MINOR"), which st_dev is
			* not on every file system (a btrfs subvolume reports a
			* device of its own) */
	uint64_t dev;  /* st_dev as stat(2) reports it: what /proc/PID/exe of
			* a process running the file gives */
} ExeFile;

/* The kernel's dev_t (include/linux/kdev_t.h: MAJOR << 20 | MINOR), what
 * sb->s_dev holds, from a user-space st_dev (glibc's encoding). */
uint32_t exe_kernel_dev(dev_t dev);

/* The "MAJOR:MINOR" of mount mnt_id in a mountinfo text (proc(5)), in
 * the kernel's encoding; -ENOENT when it has no such mount. */
int exe_mountinfo_dev(const char *mountinfo, uint64_t mnt_id, uint32_t *ret);

/* The interpreter a "#!" line names (the first word after "#!", blanks
 * skipped), from the first n bytes of a file; -EINVAL when head is no such
 * line. */
int exe_shebang_interpreter(const char *head, size_t n, char **ret);

/* Whether the file at path (absolute, resolved) is a program /proc/PID/exe
 * would name: a regular file with an execute bit, an ELF image. A script
 * ("#!"), anything binfmt_misc would hand to an interpreter, a directory, a
 * file without an execute bit are refused with a reason in *ret_reason
 * (allocated). -ENOENT: no such file. */
int exe_file_check(const char *path, ExeFile *ret, char **ret_reason);
