/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proc-util against the running kernel, unprivileged: our own sockets in
 * /proc/self/fd, a two-level process tree, uids and pidfds.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "macro.h"
#include "proc-util.h"
#include "tests.h"

/* A name with everything that breaks naive /proc/PID/stat parsers. */
#define NASTY_COMM "x) 1 (y ) Z"

static uint64_t fd_inode(int fd) {
	struct stat st;

	ASSERT_OK(fstat(fd, &st));
	return (uint64_t) st.st_ino;
}

static bool contains_u64(const uint64_t *v, size_t n, uint64_t x) {
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static bool contains_pid(const pid_t *v, size_t n, pid_t x) {
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void test_sockets(void) {
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	_cleanup_close_ int tcp = -1, udp = -1, file = -1, dup_fd = -1;
	int pair[2];
	_cleanup_free_ uint64_t *inodes = NULL;
	uint64_t inode = 0;
	size_t n = 0;

	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(tcp >= 0);
	ASSERT_OK(bind(tcp, (struct sockaddr *) &a, sizeof(a)));
	ASSERT_OK(listen(tcp, 1));
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(udp >= 0);
	/* The same socket twice must be listed once. */
	dup_fd = fcntl(udp, F_DUPFD_CLOEXEC, 0);
	ASSERT_TRUE(dup_fd >= 0);

	ASSERT_OK(proc_socket_inodes(getpid(), &inodes, &n));
	ASSERT_TRUE(n >= 4);
	ASSERT_TRUE(contains_u64(inodes, n, fd_inode(pair[0])));
	ASSERT_TRUE(contains_u64(inodes, n, fd_inode(pair[1])));
	ASSERT_TRUE(contains_u64(inodes, n, fd_inode(tcp)));
	ASSERT_TRUE(contains_u64(inodes, n, fd_inode(udp)));
	for (size_t i = 1; i < n; i++)
		ASSERT_TRUE(inodes[i - 1] < inodes[i]); /* sorted, no duplicates */

	ASSERT_OK(proc_fd_socket_inode(getpid(), tcp, &inode));
	ASSERT_EQ(inode, fd_inode(tcp));
	ASSERT_OK(proc_fd_socket_inode(getpid(), pair[1], &inode));
	ASSERT_EQ(inode, fd_inode(pair[1]));

	file = open(SRCDIR "/meson.build", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(file >= 0);
	inode = 4242;
	ASSERT_EQ(proc_fd_socket_inode(getpid(), file, &inode), -ENOTSOCK);
	ASSERT_EQ(inode, 4242); /* untouched on failure */
	ASSERT_EQ(proc_fd_socket_inode(getpid(), -1, &inode), -EBADF);
	ASSERT_EQ(proc_fd_socket_inode(getpid(), INT_MAX, &inode), -EBADF);

	close(pair[0]);
	close(pair[1]);
}

static void test_no_sockets(pid_t child) {
	uint64_t *inodes = (uint64_t *) 1;
	size_t n = 99;

	/* The child closed all its sockets (it has none: only pipes). */
	ASSERT_OK(proc_socket_inodes(child, &inodes, &n));
	ASSERT_EQ(n, 0);
	ASSERT_TRUE(inodes == NULL);
}

static void check_tree(pid_t child, pid_t grandchild) {
	_cleanup_free_ pid_t *pids = NULL;
	pid_t ppid = 0;
	size_t n = 0;

	ASSERT_OK(proc_descendants(getpid(), &pids, &n));
	ASSERT_EQ(n, 3);
	ASSERT_EQ(pids[0], getpid());
	ASSERT_TRUE(contains_pid(pids, n, child));
	ASSERT_TRUE(contains_pid(pids, n, grandchild));
	free(TAKE_PTR(pids));

	ASSERT_OK(proc_descendants(child, &pids, &n));
	ASSERT_EQ(n, 2);
	ASSERT_EQ(pids[0], child);
	ASSERT_EQ(pids[1], grandchild);
	free(TAKE_PTR(pids));

	ASSERT_OK(proc_descendants(grandchild, &pids, &n));
	ASSERT_EQ(n, 1);
	ASSERT_EQ(pids[0], grandchild);
	free(TAKE_PTR(pids));

	/* The /proc/N/stat scan, with a comm full of ") (" and blanks. */
	ASSERT_OK(proc_descendants_by_stat(getpid(), &pids, &n));
	ASSERT_EQ(n, 3);
	ASSERT_EQ(pids[0], getpid());
	ASSERT_EQ(pids[1], child);
	ASSERT_EQ(pids[2], grandchild);
	free(TAKE_PTR(pids));

	ASSERT_OK(proc_get_ppid(grandchild, &ppid));
	ASSERT_EQ(ppid, child);
	ASSERT_OK(proc_get_ppid(child, &ppid));
	ASSERT_EQ(ppid, getpid());
}

/* In a child: stdio on /dev/null, the two pipe ends as fds 3 and 4, every
 * other fd closed, so that no socket the test runner passed us (stdout on a
 * journal socket, say) is inherited. */
static void child_only_pipes(int *ready_w, int *release_r) {
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int a = fcntl(*ready_w, F_DUPFD, 10), b = fcntl(*release_r, F_DUPFD, 10);

	if (null < 0 || a < 0 || b < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
	    dup2(a, 3) < 0 || dup2(b, 4) < 0 || close_range(5, ~0u, 0) < 0)
		_exit(EXIT_FAILURE);
	*ready_w = 3;
	*release_r = 4;
}

static void test_tree(void) {
	int ready[2], release[2], pidfd = -1;
	pid_t child, grandchild = 0, got;
	struct pollfd p;
	uid_t uid = 4242;
	int status;

	ASSERT_OK(pipe2(ready, O_CLOEXEC));
	ASSERT_OK(pipe2(release, O_CLOEXEC));

	child = fork();
	ASSERT_TRUE(child >= 0);
	if (child == 0) {
		char c;

		close(ready[0]);
		close(release[1]);
		child_only_pipes(&ready[1], &release[0]);
		if (prctl(PR_SET_NAME, NASTY_COMM) < 0)
			_exit(EXIT_FAILURE);
		grandchild = fork();
		if (grandchild < 0)
			_exit(EXIT_FAILURE);
		if (grandchild == 0) {
			pid_t self = getpid();

			if (write(ready[1], &self, sizeof(self)) != sizeof(self))
				_exit(EXIT_FAILURE);
			/* Blocks until the parent closes its end. */
			(void) !read(release[0], &c, 1);
			_exit(EXIT_SUCCESS);
		}
		(void) !read(release[0], &c, 1);
		if (waitpid(grandchild, &status, 0) != grandchild)
			_exit(EXIT_FAILURE);
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
	}

	close(ready[1]);
	close(release[0]);
	ASSERT_EQ(read(ready[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
	ASSERT_TRUE(grandchild > 0);

	check_tree(child, grandchild);
	test_no_sockets(grandchild);

	ASSERT_OK(proc_get_uid(child, &uid));
	ASSERT_EQ(uid, getuid());

	ASSERT_OK(pidfd_open_pid(child, &pidfd));
	ASSERT_EQ(pidfd_is_alive(pidfd), 1);

	/* Let both go; the child exits after reaping the grandchild. */
	close(release[1]);
	p = (struct pollfd) { .fd = pidfd, .events = POLLIN };
	ASSERT_EQ(poll(&p, 1, 10000), 1);
	/* Exited but not reaped: a zombie is not alive. */
	ASSERT_EQ(pidfd_is_alive(pidfd), 0);
	{
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;

		uint64_t inode = 4242;

		/* A zombie has no fds and no children (and, to anyone but root,
		 * a /proc/PID/fd it may not open: it belongs to root then). */
		ASSERT_OK(proc_descendants(child, &pids, &n));
		ASSERT_EQ(n, 1);
		test_no_sockets(child);
		ASSERT_EQ(proc_fd_socket_inode(child, 0, &inode), -EBADF);
		ASSERT_EQ(inode, 4242);
	}

	got = waitpid(child, &status, 0);
	ASSERT_EQ(got, child);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(pidfd_is_alive(pidfd), 0);

	/* Reaped: every reader says the process is gone. */
	{
		uint64_t *inodes = NULL, inode = 0;
		pid_t *pids = NULL;
		size_t n = 0;

		ASSERT_EQ(proc_socket_inodes(child, &inodes, &n), -ESRCH);
		ASSERT_EQ(proc_fd_socket_inode(child, 0, &inode), -ESRCH);
		ASSERT_EQ(proc_descendants(child, &pids, &n), -ESRCH);
		ASSERT_EQ(proc_get_uid(child, &uid), -ESRCH);
		ASSERT_EQ(pidfd_open_pid(child, &status), -ESRCH);
	}

	close(pidfd);
	close(ready[0]);
}

static void test_self(void) {
	uid_t uid = 4242;
	int pidfd = -1;

	ASSERT_OK(proc_get_uid(getpid(), &uid));
	ASSERT_EQ(uid, getuid());

	ASSERT_OK(pidfd_open_pid(getpid(), &pidfd));
	ASSERT_TRUE(pidfd >= 0);
	ASSERT_TRUE(fcntl(pidfd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(pidfd_is_alive(pidfd), 1);
	close(pidfd);
}

static void test_garbage(void) {
	/* Above PID_MAX_LIMIT (4 Mi): never a process. */
	static const pid_t bad[] = { 0, -1, INT_MIN, INT_MAX };
	_cleanup_close_ int file = -1;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		uint64_t *inodes = NULL, inode = 4242;
		pid_t *pids = NULL, ppid = 4242;
		uid_t uid = 4242;
		size_t n = 4242;
		int fd = 4242, want = bad[i] > 0 ? -ESRCH : -EINVAL;

		ASSERT_EQ(proc_socket_inodes(bad[i], &inodes, &n), want);
		ASSERT_EQ(proc_fd_socket_inode(bad[i], 0, &inode), want);
		ASSERT_EQ(proc_descendants(bad[i], &pids, &n), want);
		ASSERT_EQ(proc_descendants_by_stat(bad[i], &pids, &n), want);
		ASSERT_EQ(proc_get_ppid(bad[i], &ppid), want);
		ASSERT_EQ(proc_get_uid(bad[i], &uid), want);
		ASSERT_EQ(pidfd_open_pid(bad[i], &fd), want);
		/* Out-parameters untouched on failure. */
		ASSERT_TRUE(inodes == NULL && pids == NULL);
		ASSERT_EQ(n, 4242);
		ASSERT_EQ(inode, 4242);
		ASSERT_EQ(ppid, 4242);
		ASSERT_EQ(uid, 4242);
		ASSERT_EQ(fd, 4242);
	}

	ASSERT_EQ(pidfd_is_alive(-1), -EBADF);
	/* Not a pidfd: must not pass for an exited process. */
	file = open(SRCDIR "/meson.build", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(file >= 0);
	ASSERT_EQ(pidfd_is_alive(file), -EBADF);
}

int main(void) {
	test_sockets();
	test_tree();
	test_self();
	test_garbage();
	return EXIT_SUCCESS;
}
