/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Targets: what a rule limits.
 *   cgroup:/PATH   a cgroup v2, PATH relative to the cgroup2 mount as
 *                  /proc/PID/cgroup shows it ("0::/PATH")
 *   user@UID       every socket owned by that user
 *   user@NAME      the same, NAME resolved with getpwnam(3)
 *   pid:PID        a process, its threads and the children it starts
 *   sock:INODE     one socket, by the inode /proc/PID/fd shows ("socket:[N]")
 *   sock:PID:FD    the same, by a process's file descriptor
 *   unit:NAME      a systemd unit's cgroup, followed across restarts ("NAME"
 *                  alone is NAME.service)
 *   all            everything netbumpd shapes: the rule around every other
 *   machine:NAME   a machine systemd-machined knows (systemd-nspawn, any
 *                  runtime that registers): its unit's cgroup, followed by name
 *   container:NAME a Docker or Podman container by name, ID or unique ID
 *                  prefix; container:docker:NAME, container:podman:NAME
 *                  name the runtime (container.h resolves it)
 *   exe:PATH       every process whose executable (/proc/PID/exe) is the file
 *                  at PATH, absolute, and the children they start
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

typedef enum TargetKind {
	TARGET_CGROUP,
	TARGET_USER,
	TARGET_PID,
	TARGET_SOCK,
	TARGET_UNIT,
	TARGET_MACHINE,
	TARGET_CONTAINER,
	TARGET_EXE,
	TARGET_ALL, /* last, so that the kinds above keep their values */
	_TARGET_KIND_MAX,
} TargetKind;

typedef struct Target {
	TargetKind kind;
	char *path;      /* TARGET_CGROUP: normalized, "/" or "/a/b" */
	uid_t uid;       /* TARGET_USER, valid when name is NULL or resolved */
	char *user_name; /* TARGET_USER given by name, NULL when given by number */
	int resolved;    /* TARGET_USER: uid is known; TARGET_SOCK: inode is known */
	pid_t pid;       /* TARGET_PID; TARGET_SOCK given as PID:FD */
	int fd;          /* TARGET_SOCK given as PID:FD */
	uint64_t inode;  /* TARGET_SOCK */
	char *unit;      /* TARGET_UNIT: "backup.service" */
	char *name;      /* TARGET_MACHINE: "web"; TARGET_CONTAINER: "web", "docker:web", "3f2a9c" */
	char *exe;       /* TARGET_EXE: absolute, without "//" or a trailing '/';
			  * target_resolve() makes it the file's real path */
} Target;

/* Kinds that name a cgroup by something that outlives it (a unit, a
 * machine, a container): the rule's key is the cgroup it has now, 0 while
 * it has none, and follows the name to the next one. */
static inline int target_kind_follows_cgroup(TargetKind k) {
	return k == TARGET_UNIT || k == TARGET_MACHINE || k == TARGET_CONTAINER;
}

#define TARGET_PATH_MAX 4096

/* Parses s. On failure returns -EINVAL (not a target), -EOPNOTSUPP (a
 * valid unit that has no cgroup: a timer, a target, a template...) or
 * -ENOMEM, and, if ret_reason is not NULL, a static string saying what is
 * wrong with it. "unit:NAME" without a unit suffix is NAME.service, as
 * systemctl(1) reads it. Does not look anything up. */
int target_parse(const char *s, Target *ret, const char **ret_reason);

/* Resolves a user name to its uid. -ENOENT (unknown user) or -errno. An
 * exe: path becomes the real path of the file (symbolic links, "." and
 * ".." resolved, as /proc/PID/exe shows it); one that cannot be resolved
 * (gone) is kept as it is and is no error: the caller looks at the file. */
int target_resolve(Target *t);

/* The canonical form: "cgroup:/a/b", "user@1000", "pid:42", "sock:12345",
 * "all" (a user by number, a socket by inode once resolved). Returns a new string
 * or NULL on OOM. */
char *target_to_string(const Target *t);

void target_done(Target *t);
const char *target_kind_to_string(TargetKind k);
