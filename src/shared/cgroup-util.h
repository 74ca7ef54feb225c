/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cgroup v2 helpers: where it is mounted, ids, path containment. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The cgroup2 mount point from /proc/self/mountinfo (first one found).
 * -ENOMEDIUM when cgroup v2 is not mounted. */
int cg_find_mount(char **ret);
/* The same from another mountinfo file ("/proc/1/mountinfo": where the
 * host has it, seen from a mount namespace that lacks it). */
int cg_find_mount_in(const char *mountinfo, char **ret);

/* The cgroup id the kernel reports to BPF (bpf_skb_cgroup_id() and friends):
 * the kernfs node id, read with name_to_handle_at(2). */
int cg_get_id(const char *path, uint64_t *ret);

/* True when path equals root or lies below it, comparing whole components.
 * Both are normalized ("/" or "/a/b"). */
bool cg_path_is_inside(const char *path, const char *root);

/* The cgroup v2 path of a process ("/a/b"), from /proc/PID/cgroup's "0::"
 * line. */
int cg_pid_get_path(pid_t pid, char **ret);

/* The path (relative to the mount, "/a/b") of the cgroup with that id, as
 * the kernel reports it to BPF and sock_diag (open_by_handle_at(2), needs
 * CAP_DAC_READ_SEARCH). -ESTALE when it no longer exists. */
/* 1 when a process is in the cgroup or below it (cgroup.events), 0 when
 * not or when the cgroup is gone, -errno otherwise. */
int cg_populated(const char *cgroup_abs);

int cg_path_from_id(const char *mount, uint64_t id, char **ret);

/* Moves process pid into the cgroup at the absolute path cgroup_abs (writes
 * its cgroup.procs): 0 or -errno (-ESRCH: the process is gone). */
int cg_write_pid(const char *cgroup_abs, pid_t pid);
