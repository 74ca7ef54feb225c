/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What /proc says about processes: their socket inodes, descendants and
 * owner, plus pidfds to follow them.
 *
 * All functions take a pid > 0 (-EINVAL otherwise) and give -ESRCH when no
 * such process exists (or it vanished while we looked), -EACCES when /proc
 * hides the answer from us (another user's fds without CAP_SYS_PTRACE).
 * Nothing here logs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* proc_descendants() refuses to collect more processes than this (-E2BIG). */
#define PROC_DESCENDANTS_MAX 65536u

/* The socket inodes among the open fds of a process ("socket:[N]" links in
 * /proc/PID/fd), sorted ascending, each once even when several fds share a
 * socket. A process with no sockets (or a zombie, which has no fds) gives
 * *ret = NULL and *ret_n = 0. */
int proc_socket_inodes(pid_t pid, uint64_t **ret, size_t *ret_n);

/* The socket inode behind one fd of a process: -ENOTSOCK if that fd is not
 * a socket, -EBADF if it is not open. */
int proc_fd_socket_inode(pid_t pid, int fd, uint64_t *ret);

/* One open fd of a process that is a socket, and the socket's inode. */
typedef struct ProcSocketFd {
	int fd;
	uint64_t inode;
} ProcSocketFd;

/* Every fd of a process that is a socket, in /proc/PID/fd's order (a socket
 * held by several fds appears once per fd); a zombie has none. */
int proc_socket_fds(pid_t pid, ProcSocketFd **ret, size_t *ret_n);

/* The fd of a process that holds the socket with that inode (one of them,
 * when several do): -ENOENT when none does. */
int proc_fd_of_socket(pid_t pid, uint64_t inode, int *ret_fd);

/* A process and fd that hold the socket with that inode, found by reading
 * every /proc/N/fd: -ENOENT when no process shows it, or -EACCES when some
 * could not be read and none of the others showed it. As costly as a
 * look at every open file of the machine: a last resort. */
int proc_find_socket(uint64_t inode, pid_t *ret_pid, int *ret_fd);

/* pid and all of its descendants alive now, pid first, then breadth first.
 * Read from /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN), else from
 * the ppid of every /proc/N/stat. Processes fork and exit while we read, so
 * this is a best-effort view, as proc(5) warns for the children file: a
 * child forked after its parent was read is missed. Each pid appears once.
 * -E2BIG beyond PROC_DESCENDANTS_MAX processes. */
int proc_descendants(pid_t pid, pid_t **ret, size_t *ret_n);
/* The same, always by scanning /proc/N/stat: what proc_descendants() does
 * without CONFIG_PROC_CHILDREN. Exported so tests can run that path. */
int proc_descendants_by_stat(pid_t pid, pid_t **ret, size_t *ret_n);

/* The parent pid from /proc/PID/stat (0 for init and kthreadd). */
int proc_get_ppid(pid_t pid, pid_t *ret);

/* The real uid of a process: the first field of /proc/PID/status "Uid:", as
 * seen from our user namespace. */
int proc_get_uid(pid_t pid, uid_t *ret);

/* pidfd_open(2) (Linux 5.3), called by its syscall number because glibc
 * only wraps it from 2.36 on. The fd is close-on-exec. */
int pidfd_open_pid(pid_t pid, int *ret_fd);

/* 1 while the process runs, 0 once it has exited (a zombie counts as
 * exited: the pidfd polls readable as soon as the process is gone, reaped
 * or not), -errno (-EBADF for a bad fd). */
int pidfd_is_alive(int pidfd);
