/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sock-find.c: sockets sock_diag cannot show (another network namespace's,
 * or one in no hash table), found through a process's descriptor
 * (sock-fd.h): "Other network namespaces" in netbump(7).
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "manager.h"
#include "sock-diag.h"

/* The socket behind fd of process pid, as sock_fd_info() tells it, with
 * cgroup_id from the tag nb_sock_create gave it (sk_tags, looked up by the
 * descriptor; 0 without one). Errors as sock_fd_take(). */
int sock_find_fd(Manager *m, pid_t pid, int fd, struct sock_info *ret);

/* The socket with that inode: by fd of pid first when pid > 0 (a
 * sock:PID:FD target's), else through any process that holds it
 * (proc_find_socket(), every /proc/N/fd). -ENOENT when none shows it. */
int sock_find_inode(Manager *m, uint64_t inode, pid_t pid, int fd, struct sock_info *ret);
