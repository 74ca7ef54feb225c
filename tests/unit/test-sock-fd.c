/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sock-fd and proc-util's socket descriptors against the running kernel,
 * unprivileged: our own sockets, taken through pidfd_getfd() as netbumpd
 * takes another process's, including one sock_diag cannot show (a TCP
 * socket neither bound nor connected). Another network namespace's needs
 * root: tests/integration/test-netns-forward.sh.
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "proc-util.h"
#include "sock-diag.h"
#include "sock-fd.h"
#include "tests.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static uint64_t fd_inode(int fd) {
	struct stat st;

	ASSERT_OK(fstat(fd, &st));
	return (uint64_t) st.st_ino;
}

static uint64_t fd_cookie(int fd) {
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	ASSERT_OK(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len));
	return c;
}

/* Taken back through our own pidfd: the same socket, as the kernel knows it. */
static void check_taken(int fd, int family, int protocol) {
	_cleanup_close_ int taken = -1;
	struct sock_info si;
	int r;

	r = sock_fd_take(getpid(), fd, &taken);
	if (r == -ENOSYS) {
		fprintf(stderr, "pidfd_getfd() missing (Linux < 5.6)\n");
		exit(EXIT_TEST_SKIP);
	}
	ASSERT_OK(r);
	ASSERT_TRUE(taken != fd);
	ASSERT_TRUE(fcntl(taken, F_GETFD) & FD_CLOEXEC);
	ASSERT_OK(sock_fd_info(taken, &si));
	ASSERT_TRUE(si.cookie != 0);
	ASSERT_EQ(si.cookie, fd_cookie(fd));
	ASSERT_EQ(si.inode, fd_inode(fd));
	ASSERT_EQ(si.uid, geteuid());
	ASSERT_EQ(si.family, family);
	ASSERT_EQ(si.protocol, protocol);
	ASSERT_EQ(si.cgroup_id, 0);
}

static bool has_pair(const ProcSocketFd *v, size_t n, int fd, uint64_t inode) {
	for (size_t k = 0; k < n; k++)
		if (v[k].fd == fd && v[k].inode == inode)
			return true;
	return false;
}

int main(void) {
	_cleanup_close_ int tcp = -1, udp6 = -1, file = -1, dup_fd = -1;
	_cleanup_free_ ProcSocketFd *fds = NULL;
	struct sock_info si;
	size_t n = 0;
	int pair[2], taken = -1, fd;
	pid_t pid;

	/* Neither bound nor connected: in no hash table, so no sock_diag dump
	 * shows it (sock-diag.h); its descriptor still does. */
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(tcp);
	udp6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(udp6);
	check_taken(tcp, AF_INET, IPPROTO_TCP);
	check_taken(udp6, AF_INET6, IPPROTO_UDP);

	/* A Unix socket is a socket, but not one netbump limits. */
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
	ASSERT_OK(sock_fd_take(getpid(), pair[0], &taken));
	ASSERT_EQ(sock_fd_info(taken, &si), -EPROTONOSUPPORT);
	close(taken);

	/* Not a socket; not open; no such process. */
	file = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_OK(file);
	ASSERT_EQ(sock_fd_take(getpid(), file, &taken), -ENOTSOCK);
	ASSERT_EQ(sock_fd_info(file, &si), -ENOTSOCK);
	ASSERT_EQ(sock_fd_take(getpid(), 1000000, &taken), -EBADF);
	ASSERT_EQ(sock_fd_take(getpid(), -1, &taken), -EINVAL);
	ASSERT_EQ(sock_fd_take(0, tcp, &taken), -EINVAL);

	/* Every socket fd with its inode, a dup()ed one under both fds. */
	dup_fd = dup(tcp);
	ASSERT_OK(dup_fd);
	ASSERT_OK(proc_socket_fds(getpid(), &fds, &n));
	ASSERT_TRUE(has_pair(fds, n, tcp, fd_inode(tcp)));
	ASSERT_TRUE(has_pair(fds, n, dup_fd, fd_inode(tcp)));
	ASSERT_TRUE(has_pair(fds, n, udp6, fd_inode(udp6)));
	ASSERT_TRUE(has_pair(fds, n, pair[1], fd_inode(pair[1])));
	ASSERT_TRUE(!has_pair(fds, n, file, fd_inode(file)));

	ASSERT_OK(proc_fd_of_socket(getpid(), fd_inode(udp6), &fd));
	ASSERT_EQ(fd, udp6);
	ASSERT_EQ(proc_fd_of_socket(getpid(), fd_inode(file), &fd), -ENOENT);
	ASSERT_EQ(proc_fd_of_socket(getpid(), 0, &fd), -EINVAL);

	/* Through every process: ours is the one that holds it. */
	ASSERT_OK(proc_find_socket(fd_inode(udp6), &pid, &fd));
	ASSERT_EQ(pid, getpid());
	ASSERT_EQ(fd, udp6);
	close(pair[0]);
	close(pair[1]);
	/* -EACCES where some process's fds were hidden from us (another user's,
	 * or a container's as root), -ENOENT where none was. */
	int r = proc_find_socket(fd_inode(file), &pid, &fd);
	ASSERT_TRUE(r == -ENOENT || r == -EACCES);
	return 0;
}
