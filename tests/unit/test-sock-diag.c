/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sock-diag against the running kernel: our own TCP and UDP sockets over
 * loopback, found by inode and by dump, with the cookie SO_COOKIE gives.
 * Needs no privileges; run as root it also checks the lookup as nobody.
 */

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "cgroup-util.h"
#include "macro.h"
#include "sock-diag.h"
#include "tests.h"

#define MAX_WANT 16
#define NOBODY 65534

struct want {
	const char *what;
	int fd;
	uint8_t family;
	uint8_t protocol;
	uint8_t state;
	uint64_t inode;
	uint64_t cookie;
	unsigned seen; /* by the dump */
};

static struct want wants[MAX_WANT];
static size_t n_wants;
static uint64_t our_cgroup_id; /* 0 when cgroup v2 is not there to ask */

static uint64_t fd_inode(int fd) {
	struct stat st;

	ASSERT_OK(fstat(fd, &st));
	return (uint64_t) st.st_ino;
}

static uint64_t fd_cookie(int fd) {
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	ASSERT_OK(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len));
	ASSERT_EQ(len, sizeof(cookie));
	return cookie;
}

static void want(const char *what, int fd, uint8_t family, uint8_t protocol, uint8_t state) {
	ASSERT_TRUE(n_wants < MAX_WANT);
	wants[n_wants++] = (struct want) {
		.what = what,
		.fd = fd,
		.family = family,
		.protocol = protocol,
		.state = state,
		.inode = fd_inode(fd),
		.cookie = fd_cookie(fd),
	};
}

static int new_socket(int family, int type) {
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	ASSERT_TRUE(fd >= 0);
	return fd;
}

static void bind_loopback(int fd, int family, struct sockaddr_storage *ret, socklen_t *ret_len) {
	struct sockaddr_storage ss = {};
	socklen_t len;

	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *) &ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	ASSERT_OK(bind(fd, (struct sockaddr *) &ss, len));
	ASSERT_OK(getsockname(fd, (struct sockaddr *) ret, &len));
	*ret_len = len;
}

static bool have_ipv6(void) {
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	_cleanup_close_ int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	return fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof(a)) >= 0;
}

static void make_sockets(void) {
	static const int families[] = { AF_INET, AF_INET6 };
	bool v6 = have_ipv6();

	if (!v6)
		fprintf(stderr, "No IPv6 loopback: testing IPv4 only.\n");

	for (size_t i = 0; i < ELEMENTSOF(families); i++) {
		int family = families[i], listener, client, server, udp, udp_conn;
		struct sockaddr_storage addr;
		socklen_t len;

		if (family == AF_INET6 && !v6)
			continue;

		listener = new_socket(family, SOCK_STREAM);
		bind_loopback(listener, family, &addr, &len);
		ASSERT_OK(listen(listener, 4));
		want(family == AF_INET ? "TCP/4 listener" : "TCP/6 listener", listener, family, IPPROTO_TCP,
		     TCP_LISTEN);

		client = new_socket(family, SOCK_STREAM);
		ASSERT_OK(connect(client, (struct sockaddr *) &addr, len));
		server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		ASSERT_TRUE(server >= 0);
		want(family == AF_INET ? "TCP/4 client" : "TCP/6 client", client, family, IPPROTO_TCP,
		     TCP_ESTABLISHED);
		want(family == AF_INET ? "TCP/4 accepted" : "TCP/6 accepted", server, family, IPPROTO_TCP,
		     TCP_ESTABLISHED);

		/* UDP reuses TCP's state numbers: unconnected is TCP_CLOSE. */
		udp = new_socket(family, SOCK_DGRAM);
		bind_loopback(udp, family, &addr, &len);
		want(family == AF_INET ? "UDP/4 bound" : "UDP/6 bound", udp, family, IPPROTO_UDP, TCP_CLOSE);

		udp_conn = new_socket(family, SOCK_DGRAM);
		ASSERT_OK(connect(udp_conn, (struct sockaddr *) &addr, len));
		want(family == AF_INET ? "UDP/4 connected" : "UDP/6 connected", udp_conn, family, IPPROTO_UDP,
		     TCP_ESTABLISHED);
	}
}

static void find_cgroup_id(void) {
	_cleanup_free_ char *mnt = NULL, *path = NULL, *full = NULL;

	if (cg_find_mount(&mnt) < 0 || cg_pid_get_path(getpid(), &path) < 0) {
		fprintf(stderr, "No cgroup v2: not checking cgroup ids.\n");
		return;
	}
	ASSERT_TRUE(asprintf(&full, "%s%s", mnt, path) > 0);
	if (cg_get_id(full, &our_cgroup_id) < 0) {
		fprintf(stderr, "Cannot read the id of %s: not checking cgroup ids.\n", full);
		our_cgroup_id = 0;
	}
}

static void check_info(const struct want *w, const struct sock_info *s) {
	if (s->inode != w->inode || s->cookie != w->cookie || s->family != w->family ||
	    s->protocol != w->protocol || s->state != w->state || s->uid != getuid() ||
	    (our_cgroup_id != 0 && s->cgroup_id != our_cgroup_id)) {
		fprintf(stderr,
			"%s: got inode %llu cookie %llu family %u protocol %u state %u uid %u cgroup %llu, "
			"want inode %llu cookie %llu family %u protocol %u state %u uid %u cgroup %llu\n",
			w->what, (unsigned long long) s->inode, (unsigned long long) s->cookie, s->family,
			s->protocol, s->state, s->uid, (unsigned long long) s->cgroup_id,
			(unsigned long long) w->inode, (unsigned long long) w->cookie, w->family, w->protocol,
			w->state, (unsigned) getuid(), (unsigned long long) our_cgroup_id);
		exit(EXIT_FAILURE);
	}
}

static void test_find(struct sock_diag *d) {
	for (size_t i = 0; i < n_wants; i++) {
		struct sock_info s = {};

		ASSERT_OK(sock_diag_find_inode(d, wants[i].inode, &s));
		check_info(&wants[i], &s);
	}
	fprintf(stderr, "Found %zu sockets by inode; e.g. %s: cookie %llu, cgroup id %llu.\n", n_wants,
		wants[0].what, (unsigned long long) wants[0].cookie, (unsigned long long) our_cgroup_id);
}

static void test_missing(struct sock_diag *d) {
	struct sock_info s = { .inode = 4242 };
	uint64_t inode;
	int fd;

	/* A closed socket is gone at once (UDP has no TIME_WAIT). */
	fd = new_socket(AF_INET, SOCK_DGRAM);
	{
		struct sockaddr_storage addr;
		socklen_t len;

		bind_loopback(fd, AF_INET, &addr, &len);
	}
	inode = fd_inode(fd);
	ASSERT_OK(sock_diag_find_inode(d, inode, &s));
	close(fd);
	s.inode = 4242;
	ASSERT_EQ(sock_diag_find_inode(d, inode, &s), -ENOENT);
	ASSERT_EQ(s.inode, 4242); /* untouched on failure */

	/* As sock-diag.h warns: a UDP socket in no hash table is invisible. */
	fd = new_socket(AF_INET, SOCK_DGRAM);
	ASSERT_EQ(sock_diag_find_inode(d, fd_inode(fd), &s), -ENOENT);
	close(fd);

	ASSERT_EQ(sock_diag_find_inode(d, 0, &s), -EINVAL);
	ASSERT_EQ(sock_diag_find_inode(d, UINT64_C(1) << 32, &s), -EOVERFLOW);
	ASSERT_EQ(sock_diag_find_inode(NULL, 1, &s), -EINVAL);
	ASSERT_EQ(s.inode, 4242);
}

struct dump_ctx {
	size_t total;
	size_t stop_after; /* 0: never */
	int fail_with;     /* 0: never */
};

static int dump_cb(const struct sock_info *s, void *userdata) {
	struct dump_ctx *ctx = userdata;

	ASSERT_TRUE(s->family == AF_INET || s->family == AF_INET6);
	ASSERT_TRUE(s->protocol == IPPROTO_TCP || s->protocol == IPPROTO_UDP);
	ctx->total++;
	if (ctx->fail_with != 0)
		return ctx->fail_with;
	if (ctx->stop_after != 0 && ctx->total == ctx->stop_after)
		return 7;
	for (size_t i = 0; i < n_wants; i++)
		if (wants[i].inode == s->inode) {
			check_info(&wants[i], s);
			wants[i].seen++;
		}
	return 0;
}

static void test_dump(struct sock_diag *d) {
	struct dump_ctx ctx = {};

	ASSERT_EQ(sock_diag_dump(d, dump_cb, &ctx), 0);
	ASSERT_TRUE(ctx.total >= n_wants);
	for (size_t i = 0; i < n_wants; i++) {
		if (wants[i].seen != 1) {
			fprintf(stderr, "%s seen %u times by the dump\n", wants[i].what, wants[i].seen);
			exit(EXIT_FAILURE);
		}
	}

	/* A positive return stops the dump and comes back; an error fails it.
	 * Either way the socket stays usable. */
	ctx = (struct dump_ctx) { .stop_after = 2 };
	ASSERT_EQ(sock_diag_dump(d, dump_cb, &ctx), 7);
	ASSERT_EQ(ctx.total, 2);
	ctx = (struct dump_ctx) { .fail_with = -ENOTRECOVERABLE };
	ASSERT_EQ(sock_diag_dump(d, dump_cb, &ctx), -ENOTRECOVERABLE);
	ASSERT_EQ(ctx.total, 1);
	test_find(d);

	ASSERT_EQ(sock_diag_dump(NULL, dump_cb, &ctx), -EINVAL);
	ASSERT_EQ(sock_diag_dump(d, NULL, &ctx), -EINVAL);
}

/* As root, check that an unprivileged user gets the same answers. */
static void test_as_nobody(void) {
	pid_t pid;
	int status;

	if (getuid() != 0)
		return;

	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		_cleanup_sock_diag_ struct sock_diag *d = NULL;
		struct sock_info s;

		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(EXIT_FAILURE);
		if (sock_diag_open(&d) < 0)
			_exit(EXIT_FAILURE);
		for (size_t i = 0; i < n_wants; i++) {
			if (sock_diag_find_inode(d, wants[i].inode, &s) < 0)
				_exit(10 + (int) i);
			/* Sockets keep the uid of their creator, root here. */
			if (s.cookie != wants[i].cookie || s.uid != 0 ||
			    (our_cgroup_id != 0 && s.cgroup_id != our_cgroup_id))
				_exit(EXIT_FAILURE);
		}
		_exit(EXIT_SUCCESS);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	fprintf(stderr, "Same answers as uid %d.\n", NOBODY);
}

/* A TCP connection on loopback: both ends' addresses and ports, and with
 * sock_diag_want_bytes() the bytes each side sent and received. */
struct ends_ctx {
	uint64_t inode;
	struct sock_info info;
	bool seen;
};

static int ends_cb(const struct sock_info *s, void *userdata) {
	struct ends_ctx *ctx = userdata;

	if (s->inode == ctx->inode) {
		ctx->info = *s;
		ctx->seen = true;
	}
	return 0;
}

static void test_ends_and_bytes(struct sock_diag *d) {
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	_cleanup_close_ int l = new_socket(AF_INET, SOCK_STREAM), c = new_socket(AF_INET, SOCK_STREAM), s = -1;
	struct sockaddr_in local = {};
	char buf[4096] = {};
	struct ends_ctx ctx = {};
	size_t got = 0;

	ASSERT_OK(bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(listen(l, 1));
	ASSERT_OK(getsockname(l, (struct sockaddr *)&a, &len));
	ASSERT_OK(connect(c, (struct sockaddr *)&a, sizeof(a)));
	s = accept(l, NULL, NULL);
	ASSERT_TRUE(s >= 0);
	ASSERT_EQ(write(c, buf, 3000), 3000);
	while (got < 3000) {
		ssize_t n = read(s, buf, sizeof(buf));
		ASSERT_TRUE(n > 0);
		got += (size_t)n;
	}
	ASSERT_EQ(write(s, buf, 100), 100);
	ASSERT_EQ(read(c, buf, sizeof(buf)), 100);
	len = sizeof(local);
	ASSERT_OK(getsockname(c, (struct sockaddr *)&local, &len));

	ctx.inode = fd_inode(c);
	sock_diag_want_bytes(d, true);
	ASSERT_EQ(sock_diag_dump(d, ends_cb, &ctx), 0);
	sock_diag_want_bytes(d, false);
	ASSERT_TRUE(ctx.seen);
	ASSERT_EQ(ctx.info.sport, ntohs(local.sin_port));
	ASSERT_EQ(ctx.info.dport, ntohs(a.sin_port));
	ASSERT_TRUE(memcmp(ctx.info.dst, &a.sin_addr, 4) == 0);
	ASSERT_TRUE(memcmp(ctx.info.src, &local.sin_addr, 4) == 0);
	ASSERT_TRUE(ctx.info.has_bytes);
	ASSERT_EQ(ctx.info.bytes_received, 100);
	/* acknowledged: the peer read them all, and its reply came after */
	ASSERT_EQ(ctx.info.bytes_sent, 3000);

	/* not asked for: no counters */
	ctx.seen = false;
	ASSERT_EQ(sock_diag_dump(d, ends_cb, &ctx), 0);
	ASSERT_TRUE(ctx.seen && !ctx.info.has_bytes);
}

int main(void) {
	_cleanup_sock_diag_ struct sock_diag *d = NULL;

	ASSERT_EQ(sock_diag_open(NULL), -EINVAL);
	ASSERT_OK(sock_diag_open(&d));
	ASSERT_TRUE(sock_diag_free(NULL) == NULL);

	find_cgroup_id();
	make_sockets();
	test_find(d);
	test_dump(d);
	test_missing(d);
	test_ends_and_bytes(d);
	test_as_nobody();
	return EXIT_SUCCESS;
}
