/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A socket of another process, taken by its descriptor: pidfd_getfd(2)
 * (Linux 5.6) gives us a descriptor of the same socket, which answers
 * getsockopt(SO_COOKIE) wherever the socket lives. That is how netbumpd
 * knows sockets that sock_diag cannot show: those of another network
 * namespace (inet_diag dumps the caller's only) and those in no hash
 * table (a socket neither bound nor connected).
 *
 * pidfd_getfd needs the right to ptrace the process (CAP_SYS_PTRACE for
 * another user's): the same as reading its /proc/PID/fd. The descriptor
 * taken is only a reference: closing it leaves the socket to its process.
 * Nothing here logs.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "sock-diag.h"

/* A descriptor (close-on-exec) of the socket behind fd of process pid:
 * -ENOTSOCK when that is no socket, -EBADF when fd is not open, -ESRCH when
 * there is no such process, -EPERM when we may not ptrace it. */
int sock_fd_take(pid_t pid, int fd, int *ret);

/* What a socket descriptor says of itself, as sock_diag would (sock-diag.h):
 * cookie, inode, uid (the socket inode's owner, which is the socket's
 * sk_uid), family and protocol. state, the ends and cgroup_id stay 0: the
 * descriptor does not tell them. -EPROTONOSUPPORT for a socket that is
 * not TCP or UDP over IPv4 or IPv6. */
int sock_fd_info(int sfd, struct sock_info *ret);
