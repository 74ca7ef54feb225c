/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "proc-util.h"
#include "sock-fd.h"

/* The same number on every architecture (syscalls from 424 on are). */
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

int sock_fd_take(pid_t pid, int fd, int *ret) {
	_cleanup_close_ int pidfd = -1, sfd = -1;
	struct stat st;
	int r;

	if (!ret || fd < 0)
		return -EINVAL;
	r = pidfd_open_pid(pid, &pidfd);
	if (r < 0)
		return r;
	/* flags must be 0; the new descriptor is close-on-exec. */
	sfd = (int) syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (sfd < 0)
		return negative_errno();
	if (fstat(sfd, &st) < 0)
		return negative_errno();
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	*ret = TAKE_FD(sfd);
	return 0;
}

static int sockopt_int(int sfd, int opt, int *ret) {
	socklen_t len = sizeof(*ret);

	if (getsockopt(sfd, SOL_SOCKET, opt, ret, &len) < 0)
		return negative_errno();
	return 0;
}

int sock_fd_info(int sfd, struct sock_info *ret) {
	struct sock_info si = {};
	socklen_t len = sizeof(si.cookie);
	int domain, protocol, r;
	struct stat st;

	if (!ret)
		return -EINVAL;
	if (fstat(sfd, &st) < 0)
		return negative_errno();
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	r = sockopt_int(sfd, SO_DOMAIN, &domain);
	if (r >= 0)
		r = sockopt_int(sfd, SO_PROTOCOL, &protocol);
	if (r < 0)
		return r;
	if ((domain != AF_INET && domain != AF_INET6) || (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP))
		return -EPROTONOSUPPORT;
	if (getsockopt(sfd, SOL_SOCKET, SO_COOKIE, &si.cookie, &len) < 0)
		return negative_errno();
	si.inode = (uint64_t) st.st_ino;
	si.uid = (uint32_t) st.st_uid;
	si.family = (uint8_t) domain;
	si.protocol = (uint8_t) protocol;
	*ret = si;
	return 0;
}
