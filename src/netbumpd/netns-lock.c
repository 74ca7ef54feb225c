/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "netns-lock.h"

static socklen_t lock_address(struct sockaddr_un *sa) {
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	/* sun_path[0] = '\0': the abstract namespace; the length, not a NUL,
	 * ends the name */
	memcpy(sa->sun_path + 1, NETNS_LOCK_NAME, strlen(NETNS_LOCK_NAME));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(NETNS_LOCK_NAME));
}

/* Printable ASCII only: what another process says ends up in our log. */
static void clean(char *s) {
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

static char *proc_comm(pid_t pid) {
	char path[64], buf[64] = "";
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	clean(buf);
	return strdup(buf);
}

/* Who holds the name: its credentials (SO_PEERCRED, as of its listen())
 * and, from a root process, the line it sends on connect. */
static char *describe_holder(void) {
	struct sockaddr_un sa;
	socklen_t len = lock_address(&sa), cl = sizeof(struct ucred);
	struct ucred cred = {};
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *comm = NULL;
	char said[512] = "", *s = NULL;
	struct pollfd p;
	size_t got = 0;

	/* Non-blocking: a holder that never accepts (not a netbumpd) has a
	 * full backlog, and a blocking connect would wait for ever. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return NULL;
	/* Bounded: a holder that says nothing is described by its
	 * credentials alone. */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (cred.uid == 0 && got < sizeof(said) - 1 && poll(&p, 1, 1000) > 0) {
		ssize_t n = read(fd, said + got, sizeof(said) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	said[got] = '\0';
	said[strcspn(said, "\n")] = '\0';
	clean(said);
	if (cred.pid > 0)
		comm = proc_comm(cred.pid);
	if (cred.pid <= 0)
		(void)asprintf(&s, "a process of another PID namespace (uid %u)%s%s", (unsigned)cred.uid,
			       said[0] ? ": " : "", said);
	else
		(void)asprintf(&s, "%s (pid %d, uid %u)%s%s", comm ?: "?", (int)cred.pid, (unsigned)cred.uid,
			       said[0] ? ", " : "", said);
	return s;
}

int netns_lock_take(Manager *m, char **ret_holder) {
	struct sockaddr_un sa;
	socklen_t len = lock_address(&sa);
	_cleanup_close_ int fd = -1;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		int r = -errno;
		if (r == -EADDRINUSE && ret_holder)
			*ret_holder = describe_holder();
		return r;
	}
	if (listen(fd, 8) < 0)
		return -errno;
	m->netns_lock_fd = TAKE_FD(fd);
	return 0;
}

static int lock_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	Manager *m = userdata;
	_cleanup_close_ int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	char line[512];
	int n;

	if (c < 0)
		return 0;
	n = snprintf(line, sizeof(line), "socket %s, state directory %s\n", m->socket_path, m->state_dir);
	/* One short line into an empty socket buffer: it fits, or the asker
	 * goes without it. */
	if (n > 0)
		(void)send(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	return 0;
}

int netns_lock_serve(Manager *m) {
	if (m->netns_lock_fd < 0)
		return 0;
	return sd_event_add_io(m->event, &m->netns_lock_io, m->netns_lock_fd, EPOLLIN, lock_io, m);
}

void netns_lock_release(Manager *m) {
	m->netns_lock_io = sd_event_source_disable_unref(m->netns_lock_io);
	if (m->netns_lock_fd >= 0) {
		close(m->netns_lock_fd);
		m->netns_lock_fd = -1;
	}
}
