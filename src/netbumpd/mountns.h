/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cgroup2 for a netbumpd started where /sys was remounted.
 *
 * `ip netns exec NS CMD` runs CMD in a mount namespace of its own and mounts
 * a fresh sysfs on /sys there (ip-netns(8)), so that /sys/class/net shows
 * NS's interfaces. That sysfs has nothing mounted below it: no cgroup2 at
 * /sys/fs/cgroup (or /sys/fs/cgroup/unified), no bpffs at /sys/fs/bpf.
 * netbumpd cannot classify without cgroup2; the cgroup tree itself is one
 * per machine, only its mount is missing.
 */
#pragma once

/* When this mount namespace has no cgroup2 but PID 1's has (at
 * *ret_mount, e.g. "/sys/fs/cgroup/unified"): moves this process into a
 * mount namespace of its own whose mounts propagate nowhere, and mounts
 * cgroup2 at that same path there, so that paths under the mount mean what
 * they mean on the host. Nothing changes for any other process.
 * Returns 0 and the mount point; -ENOMEDIUM when PID 1 has no cgroup2
 * either (or its mounts cannot be read); -errno when the mount failed
 * (*ret_mount is then still set, for the message). */
int mountns_mount_cgroup2(char **ret_mount);
