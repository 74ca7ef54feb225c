/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BPF data path through BPF_PROG_TEST_RUN on crafted packets.
 *
 * Runs in a private network namespace and a private cgroup (a child of the
 * cgroup2 mount, removed at the end); nb_sock_create is attached to that
 * cgroup only (nb_egress, nb_ingress_acct and nb_sock_release too, for
 * datagrams over lo and closing sockets), nb_ingress is never attached, so nothing on the machine
 * is touched. Needs root; exits 77 with a reason otherwise.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <netbump/netbump.h>
#include "macro.h"
#include "netbump.skel.h"

#define EXIT_SKIP 77

/* Return codes of tc programs (linux/pkt_cls.h). */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

/* skb->priority every run starts with, to see whether a program wrote it. */
#define PRIO_UNTOUCHED 0x5a5au
/* An IFB ifindex for the ifaces map; bpf_redirect() only records it. */
#define FAKE_IFB_IFINDEX 4242u

#define MINOR_TEST 0x10u   /* rule on the test cgroup */
#define MINOR_UPONLY 0x11u
#define MINOR_DOWNONLY 0x12u
#define MINOR_UID 0x20u    /* rule on our uid */
#define MINOR_ALL 0x21u    /* rule on everything */
#define MINOR_CHILD 0x30u  /* rule on the test cgroup's child */
#define MINOR_SOCK 0x40u   /* rules on single sockets */
#define MINOR_SOCK2 0x41u
#define MINOR_LISTENER 0x42u /* rule on a listening socket */

static unsigned n_passed, n_failed;

_printf_(2, 3) static bool check(bool ok, const char *fmt, ...) {
	va_list ap;

	printf("%s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (ok)
		n_passed++;
	else
		n_failed++;
	return ok;
}

_printf_(1, 2) static int skip(const char *fmt, ...) {
	va_list ap;

	printf("SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return EXIT_SKIP;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
	if (level == LIBBPF_DEBUG && !getenv("NB_TEST_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* ---- environment -------------------------------------------------------- */

struct env {
	struct netbump_bpf *skel;
	struct bpf_link *sock_create_link;
	struct bpf_link *egress_link;
	struct bpf_link *ingress_acct_link;
	struct bpf_link *release_link;
	int prio_map_fd, prio_prog_fd; /* see prio_probe_setup() */
	char mnt[PATH_MAX];       /* cgroup2 mount point */
	unsigned mnt_level;       /* absolute cgroup level of the mount's root */
	char orig[PATH_MAX];      /* our cgroup when we started */
	char test[PATH_MAX];      /* private cgroup, child of the mount root */
	char child[PATH_MAX];     /* its child */
	bool test_made, child_made, moved;
	uint64_t test_id, child_id;
	unsigned ifindex;         /* lo in our namespace */
	uint64_t gen;             /* what we last wrote to nb_rules_gen */
};

static unsigned path_depth(const char *p) {
	unsigned n = 0;

	for (const char *s = p; *s; s++)
		if (*s != '/' && (s == p || s[-1] == '/'))
			n++;
	return n;
}

/* cgroup2 mount point and the cgroup path of its root (not "/" under a
 * cgroup namespace or a bind mount), from /proc/self/mountinfo. */
static int find_cgroup2(char *ret_mnt, size_t mnt_size, char *ret_root, size_t root_size) {
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t n = 0;

	if (!f)
		return negative_errno();
	while (getline(&line, &n, f) > 0) {
		char root[PATH_MAX], mnt[PATH_MAX], fstype[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || !streq(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2)
			continue;
		if (strlen(mnt) >= mnt_size || strlen(root) >= root_size)
			return -ENAMETOOLONG;
		strcpy(ret_mnt, mnt);
		strcpy(ret_root, root);
		return 0;
	}
	return -ENOENT;
}

/* Our cgroup2 path relative to the mount root ("0::/path" in /proc/self/cgroup). */
static int own_cgroup(const char *mnt_root, char *ret, size_t size) {
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	_cleanup_free_ char *line = NULL;
	size_t n = 0, rl = strlen(mnt_root);

	if (!f)
		return negative_errno();
	while (getline(&line, &n, f) > 0) {
		char *p;

		if (strncmp(line, "0::", 3) != 0)
			continue;
		p = line + 3;
		p[strcspn(p, "\n")] = 0;
		/* Strip the mount's root if the path is given from above it. */
		if (!streq(mnt_root, "/") && strncmp(p, mnt_root, rl) == 0)
			p += rl;
		if ((size_t)snprintf(ret, size, "%s", p) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	return -ENOENT;
}

static int write_str(const char *path, const char *s) {
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t l = strlen(s);

	if (fd < 0)
		return negative_errno();
	if (write(fd, s, l) != l)
		return negative_errno();
	return 0;
}

static int cgroup_enter(const char *dir) {
	char path[PATH_MAX + 16], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_str(path, pid);
}

static int cgroup_make(const char *dir, uint64_t *ret_id) {
	struct stat st;

	if (mkdir(dir, 0755) < 0)
		return negative_errno();
	if (stat(dir, &st) < 0)
		return negative_errno();
	*ret_id = st.st_ino; /* the kernfs inode number is the cgroup id */
	return 0;
}

static int loopback_up(void) {
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {};

	if (fd < 0)
		return negative_errno();
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return negative_errno();
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return negative_errno();
	return 0;
}

static void env_teardown(struct env *e) {
	if (e->prio_prog_fd >= 0)
		close(e->prio_prog_fd);
	if (e->prio_map_fd >= 0)
		close(e->prio_map_fd);
	bpf_link__destroy(e->release_link);
	bpf_link__destroy(e->egress_link);
	bpf_link__destroy(e->ingress_acct_link);
	bpf_link__destroy(e->sock_create_link);
	netbump_bpf__destroy(e->skel);
	if (e->moved && cgroup_enter(e->orig) < 0)
		fprintf(stderr, "Failed to move back to %s: %m\n", e->orig);
	if (e->child_made && rmdir(e->child) < 0)
		fprintf(stderr, "Failed to remove %s: %m\n", e->child);
	if (e->test_made && rmdir(e->test) < 0)
		fprintf(stderr, "Failed to remove %s: %m\n", e->test);
}

/* ---- maps ----------------------------------------------------------------- */

static void bump_gen(struct env *e) {
	/* One writer: a plain store of the next value (see netbump.h). */
	e->skel->bss->nb_rules_gen = ++e->gen;
}

static int set_cgroup_rule(struct env *e, uint64_t id, uint32_t minor, uint32_t flags) {
	struct nb_class c = { .minor = minor, .flags = flags | NB_F_SPLIT | NB_F_SMALL_FIRST };

	return bpf_map__update_elem(e->skel->maps.cgroup_rules, &id, sizeof(id), &c, sizeof(c), BPF_ANY);
}

static int del_cgroup_rule(struct env *e, uint64_t id) {
	return bpf_map__delete_elem(e->skel->maps.cgroup_rules, &id, sizeof(id), 0);
}

static int set_sock_rule(struct env *e, uint64_t cookie, uint32_t minor, uint32_t flags) {
	struct nb_class c = { .minor = minor, .flags = flags | NB_F_SPLIT | NB_F_SMALL_FIRST };

	return bpf_map__update_elem(e->skel->maps.sock_rules, &cookie, sizeof(cookie), &c, sizeof(c), BPF_ANY);
}

static int del_sock_rule(struct env *e, uint64_t cookie) {
	return bpf_map__delete_elem(e->skel->maps.sock_rules, &cookie, sizeof(cookie), 0);
}

/* 0 if sock_rules has an entry for the cookie, -ENOENT if not. */
static int get_sock_rule(struct env *e, uint64_t cookie) {
	struct nb_class c;

	return bpf_map__lookup_elem(e->skel->maps.sock_rules, &cookie, sizeof(cookie), &c, sizeof(c), 0) < 0 ? -errno
	                                                                                                          : 0;
}

static int set_uid_rule(struct env *e, uint32_t uid, uint32_t minor, uint32_t flags) {
	struct nb_class c = { .minor = minor, .flags = flags | NB_F_SPLIT | NB_F_SMALL_FIRST };

	return bpf_map__update_elem(e->skel->maps.uid_rules, &uid, sizeof(uid), &c, sizeof(c), BPF_ANY);
}

static int del_uid_rule(struct env *e, uint32_t uid) {
	return bpf_map__delete_elem(e->skel->maps.uid_rules, &uid, sizeof(uid), 0);
}

static int set_iface(struct env *e, uint32_t ifindex, uint32_t ifb) {
	struct nb_iface v = { .ifb_ifindex = ifb };

	return bpf_map__update_elem(e->skel->maps.ifaces, &ifindex, sizeof(ifindex), &v, sizeof(v), BPF_ANY);
}

static int del_iface(struct env *e, uint32_t ifindex) {
	return bpf_map__delete_elem(e->skel->maps.ifaces, &ifindex, sizeof(ifindex), 0);
}

/* The socket's tag as user space sees it (sk_storage maps take an fd key). */
static int get_tag(struct env *e, int fd, struct nb_sk_tag *ret) {
	int r = bpf_map__lookup_elem(e->skel->maps.sk_tags, &fd, sizeof(fd), ret, sizeof(*ret), 0);

	return r < 0 ? -errno : 0;
}

/* ---- sockets and packets -------------------------------------------------- */

struct sock {
	int fd;
	int family, type;
	uint16_t port; /* host order */
};

static const char *loopback_addr(int family) {
	return family == AF_INET ? "127.0.0.1" : "::1";
}

static int sockaddr_make(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len) {
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		*len = sizeof(*a);
		return inet_pton(AF_INET, addr, &a->sin_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	*len = sizeof(*a);
	return inet_pton(AF_INET6, addr, &a->sin6_addr) == 1 ? 0 : -EINVAL;
}

static uint16_t sock_port(int fd) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A UDP socket or a listening TCP socket on the loopback address, any port. */
static int sock_open(int family, int type, struct sock *ret) {
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r;

	r = sockaddr_make(family, loopback_addr(family), 0, &ss, &len);
	if (r < 0)
		return r;
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, 8) < 0)) {
		r = negative_errno();
		close(fd);
		return r;
	}
	*ret = (struct sock){ .fd = fd, .family = family, .type = type, .port = sock_port(fd) };
	return 0;
}

/* A TCP connection to listener l over the loopback: the client and the
 * accepted child (which never passes through cgroup/sock_create). */
static int sock_connect(const struct sock *l, struct sock *ret_client, struct sock *ret_child) {
	struct sockaddr_storage ss;
	socklen_t len;
	int c, a, r;

	r = sockaddr_make(l->family, loopback_addr(l->family), l->port, &ss, &len);
	if (r < 0)
		return r;
	c = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		return negative_errno();
	if (connect(c, (struct sockaddr *)&ss, len) < 0) {
		r = negative_errno();
		close(c);
		return r;
	}
	a = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0) {
		r = negative_errno();
		close(c);
		return r;
	}
	*ret_client = (struct sock){ .fd = c, .family = l->family, .type = SOCK_STREAM, .port = sock_port(c) };
	*ret_child = (struct sock){ .fd = a, .family = l->family, .type = SOCK_STREAM, .port = l->port };
	return 0;
}

/* The kernel's cookie of the socket (SO_COOKIE), 0 on error. */
static uint64_t sock_cookie(const struct sock *s) {
	uint64_t c = 0;
	socklen_t l = sizeof(c);

	if (getsockopt(s->fd, SOL_SOCKET, SO_COOKIE, &c, &l) < 0 || l != sizeof(c))
		return 0;
	return c;
}

static void sock_close(struct sock *s) {
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

#define REMOTE_PORT 40000
#define PAYLOAD_LEN 16

/*
 * Ethernet + IPv4/IPv6 + TCP/UDP + payload from sport to dport on the
 * loopback address; ip_opts bytes of NOP options after an IPv4 header.
 * Checksums are left 0: nothing on this path verifies them.
 */
static size_t packet_build(uint8_t *buf, size_t size, int family, int proto, uint16_t sport, uint16_t dport,
                           unsigned ip_opts) {
	size_t l4_len = (proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr)) + PAYLOAD_LEN;
	struct ether_header *eth = (void *)buf;
	uint8_t *l4;
	size_t len;

	memset(buf, 0, size);
	memcpy(eth->ether_dhost, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	memcpy(eth->ether_shost, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);

	if (family == AF_INET) {
		struct iphdr *ip = (void *)(eth + 1);

		eth->ether_type = htons(ETHERTYPE_IP);
		ip->version = 4;
		ip->ihl = 5 + ip_opts / 4;
		ip->ttl = 64;
		ip->protocol = proto;
		ip->tot_len = htons(ip->ihl * 4 + l4_len);
		inet_pton(AF_INET, "127.0.0.1", &ip->saddr);
		inet_pton(AF_INET, "127.0.0.1", &ip->daddr);
		memset(ip + 1, IPOPT_NOP, ip_opts);
		l4 = (uint8_t *)ip + ip->ihl * 4;
	} else {
		struct ip6_hdr *ip6 = (void *)(eth + 1);

		eth->ether_type = htons(ETHERTYPE_IPV6);
		ip6->ip6_flow = htonl(6u << 28);
		ip6->ip6_plen = htons(l4_len);
		ip6->ip6_nxt = proto;
		ip6->ip6_hlim = 64;
		inet_pton(AF_INET6, "::1", &ip6->ip6_src);
		inet_pton(AF_INET6, "::1", &ip6->ip6_dst);
		l4 = (uint8_t *)(ip6 + 1);
	}

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		th->source = htons(sport);
		th->dest = htons(dport);
		th->doff = sizeof(*th) / 4;
		th->ack = 1;
		th->window = htons(1000);
	} else {
		struct udphdr *uh = (void *)l4;

		uh->source = htons(sport);
		uh->dest = htons(dport);
		uh->len = htons(l4_len);
	}
	len = l4 + l4_len - buf;
	return len <= size ? len : 0;
}

/* A packet to socket s (from REMOTE_PORT). */
static size_t packet_to(uint8_t *buf, size_t size, const struct sock *s) {
	return packet_build(buf, size, s->family, s->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP,
	                    REMOTE_PORT, s->port, 0);
}

/* ---- running programs ------------------------------------------------------- */

struct run {
	int err;        /* bpf_prog_test_run_opts() */
	uint32_t retval;
	uint32_t priority;
};

static struct run prog_run(const struct bpf_program *prog, const void *pkt, size_t len, uint32_t ifindex) {
	struct __sk_buff skb = { .ifindex = ifindex, .priority = PRIO_UNTOUCHED };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
	            .data_in = pkt,
	            .data_size_in = len,
	            .ctx_in = &skb,
	            .ctx_size_in = sizeof(skb),
	            .ctx_out = &skb,
	            .ctx_size_out = sizeof(skb),
	            .repeat = 1);
	struct run r = {};

	r.err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts) < 0 ? -errno : 0;
	r.retval = opts.retval;
	r.priority = skb.priority;
	return r;
}

static struct run ingress(struct env *e, const void *pkt, size_t len) {
	return prog_run(e->skel->progs.nb_ingress, pkt, len, e->ifindex);
}

/* The tc program must redirect to the IFB with the rule's leaf class for
 * a frame of that length as priority. */
static void expect_redirect(struct env *e, const void *pkt, size_t len, uint32_t minor, const char *what) {
	struct run r = ingress(e, pkt, len);
	uint32_t leaf = len <= ETH_HLEN + NB_SMALL_LEN ? NB_MINOR_SMALL(minor) : NB_MINOR_BULK(minor);

	check(r.err == 0 && r.retval == TC_ACT_REDIRECT && r.priority == NB_CLASSID(leaf),
	      "ingress %s: redirect, priority %x:%x (err %d, retval %u, priority %#x)", what, NB_HTB_MAJOR, leaf,
	      r.err, r.retval, r.priority);
}

/* The tc program must let the packet pass unchanged. */
static void expect_pass(struct env *e, const void *pkt, size_t len, const char *what) {
	struct run r = ingress(e, pkt, len);

	check(r.err == 0 && r.retval == TC_ACT_OK && r.priority == PRIO_UNTOUCHED,
	      "ingress %s: pass, priority untouched (err %d, retval %u, priority %#x)", what, r.err, r.retval,
	      r.priority);
}

/*
 * Frames with an IPv4/IPv6 ethertype but shorter than that header: since a
 * 2026 syzbot fix, bpf_prog_test_run_skb() refuses them with EINVAL before
 * the program runs (lore: 20260408034623.180320-2-sun.jian.kdev@gmail.com),
 * so on such kernels these cases cannot be exercised here; on older ones the
 * program must pass them. Refusals are reported, counted neither way.
 */
static unsigned n_refused;

static void expect_pass_or_refused(struct env *e, const void *pkt, size_t len, const char *what) {
	struct run r = ingress(e, pkt, len);

	if (r.err == -EINVAL) {
		printf("note ingress %s (%zu bytes): the kernel refuses this test run (EINVAL)\n", what, len);
		n_refused++;
		return;
	}
	check(r.err == 0 && r.retval == TC_ACT_OK && r.priority == PRIO_UNTOUCHED,
	      "ingress %s: pass, priority untouched (err %d, retval %u, priority %#x)", what, r.err, r.retval,
	      r.priority);
}

static void expect_sock_redirect(struct env *e, const struct sock *s, uint32_t minor, const char *what) {
	uint8_t pkt[256];
	size_t len = packet_to(pkt, sizeof(pkt), s);

	expect_redirect(e, pkt, len, minor, what);
}

static void expect_sock_pass(struct env *e, const struct sock *s, const char *what) {
	uint8_t pkt[256];
	size_t len = packet_to(pkt, sizeof(pkt), s);

	expect_pass(e, pkt, len, what);
}

/* nb_egress: always allows (1); priority is the class or untouched (0). */
static void expect_egress(struct env *e, uint32_t minor, const char *what) {
	uint8_t pkt[256];
	size_t len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_UDP, REMOTE_PORT, REMOTE_PORT + 1, 0);
	struct run r = prog_run(e->skel->progs.nb_egress, pkt, len, 0);
	uint32_t want = minor ? NB_CLASSID(NB_MINOR_SMALL(minor)) : PRIO_UNTOUCHED;

	if (minor)
		check(r.err == 0 && r.retval == 1 && r.priority == want,
		      "egress %s: allow, priority %x:%x (err %d, retval %u, priority %#x)", what, NB_HTB_MAJOR,
		      minor, r.err, r.retval, r.priority);
	else
		check(r.err == 0 && r.retval == 1 && r.priority == want,
		      "egress %s: allow, priority untouched (err %d, retval %u, priority %#x)", what, r.err,
		      r.retval, r.priority);
}

static void expect_tag(struct env *e, const struct sock *s, uint64_t cgroup_id, unsigned level, uint32_t minor,
                       uint64_t rules_gen, const char *what) {
	struct nb_sk_tag t;
	int r = get_tag(e, s->fd, &t);

	check(r == 0 && t.level == level && t.cgroup[level] == cgroup_id && t.cgroup[0] == 1 &&
	              t.uid == getuid() && t.cls.minor == minor && t.gen == NB_TAG_GEN(rules_gen),
	      "tag of %s: level %u, cgroup %llu, uid %u, minor %#x, gen %llu "
	      "(err %d, level %u, cgroup %llu, uid %u, minor %#x, gen %llu)",
	      what, level, (unsigned long long)cgroup_id, getuid(), minor,
	      (unsigned long long)NB_TAG_GEN(rules_gen), r, r ? 0 : t.level,
	      r ? 0ull : (unsigned long long)t.cgroup[t.level < NB_MAX_DEPTH ? t.level : 0], r ? 0 : t.uid,
	      r ? 0 : t.cls.minor, r ? 0ull : (unsigned long long)t.gen);
}

/* ---- skb->priority of real packets -------------------------------------------
 *
 * nb_egress runs on real sockets only when they really send (a test run
 * gives it a dummy socket), and what it decides is skb->priority, which no
 * socket option reports. Over lo the priority reaches the receiver
 * unchanged, so a socket filter on the receiving socket records it: a
 * seven-instruction eBPF program (written out here, it needs no object
 * file) storing skb->priority into slot 0 of a one-entry array.
 */

#define PRIO_NONE 0xdeadbeefu /* the slot before a packet arrives */

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

static int prio_probe_setup(struct env *e) {
	const struct bpf_insn insns[] = {
		/* r6 = skb->priority */
		INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_6, BPF_REG_1, offsetof(struct __sk_buff, priority), 0),
		/* key 0 at fp - 4; r0 = lookup(map, fp - 4) */
		INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, 0), /* imm: map fd, below */
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		/* if (r0) *r0 = r6 */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 1, 0),
		INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_0, BPF_REG_6, 0, 0),
		/* keep the whole packet */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -1),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	struct bpf_insn prog[sizeof(insns) / sizeof(insns[0])];

	e->prio_map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "nb_test_prio", sizeof(uint32_t), sizeof(uint32_t), 1, NULL);
	if (e->prio_map_fd < 0)
		return -errno;
	memcpy(prog, insns, sizeof(prog));
	prog[2].imm = e->prio_map_fd;
	e->prio_prog_fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "nb_test_prio", "Dual BSD/GPL", prog,
	                                sizeof(prog) / sizeof(prog[0]), NULL);
	if (e->prio_prog_fd < 0)
		return -errno;
	return 0;
}

/* Records the priority of what s receives; its reads time out after 2 s. */
static int prio_probe_attach(struct env *e, const struct sock *s) {
	struct timeval tv = { .tv_sec = 2 };

	if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_BPF, &e->prio_prog_fd, sizeof(e->prio_prog_fd)) < 0 ||
	    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return negative_errno();
	return 0;
}

static int prio_set(struct env *e, uint32_t v) {
	uint32_t k = 0;

	return bpf_map_update_elem(e->prio_map_fd, &k, &v, BPF_ANY) < 0 ? -errno : 0;
}

static uint32_t prio_get(struct env *e) {
	uint32_t k = 0, v = PRIO_NONE;

	bpf_map_lookup_elem(e->prio_map_fd, &k, &v);
	return v;
}

/*
 * Sends one byte from `from` to `to` (a UDP socket, or the TCP peer of a
 * connected `from`), receives it on `to` (probe attached) and returns the
 * priority the packet arrived with, PRIO_NONE if it did not.
 */
static uint32_t send_priority_len(struct env *e, const struct sock *from, const struct sock *to, size_t len) {
	char buf[1024] = { 'x' };

	if (len > sizeof(buf) || prio_set(e, PRIO_NONE) < 0)
		return PRIO_NONE;
	if (from->type == SOCK_DGRAM) {
		struct sockaddr_storage ss;
		socklen_t sl;

		if (sockaddr_make(to->family, loopback_addr(to->family), to->port, &ss, &sl) < 0 ||
		    sendto(from->fd, buf, len, 0, (struct sockaddr *)&ss, sl) != (ssize_t)len)
			return PRIO_NONE;
	} else if (send(from->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return PRIO_NONE;
	if (recv(to->fd, buf, len, MSG_WAITALL) != (ssize_t)len)
		return PRIO_NONE;
	return prio_get(e);
}

static uint32_t send_priority(struct env *e, const struct sock *from, const struct sock *to) {
	return send_priority_len(e, from, to, 1);
}

/* Egress on a real socket: priority is the rule's class for small packets
 * (minor), or 0 (none set). */
static void expect_send_priority(struct env *e, const struct sock *from, const struct sock *to, uint32_t minor,
                                 const char *what) {
	uint32_t want = minor ? NB_CLASSID(NB_MINOR_SMALL(minor)) : 0, got = send_priority(e, from, to);

	check(got == want, "egress %s: priority %#x (got %#x%s)", what, want, got,
	      got == PRIO_NONE ? ", nothing received" : "");
}

/* The tag's cookies: its own and the listener's it was accepted from. */
static void expect_tag_cookie(struct env *e, const struct sock *s, uint64_t cookie, uint64_t listener,
                              const char *what) {
	struct nb_sk_tag t;
	int r = get_tag(e, s->fd, &t);

	check(r == 0 && cookie != 0 && t.cookie == cookie && t.listener_cookie == listener,
	      "tag of %s: cookie %llu, listener cookie %llu (err %d, cookie %llu, listener cookie %llu)", what,
	      (unsigned long long)cookie, (unsigned long long)listener, r, r ? 0ull : (unsigned long long)t.cookie,
	      r ? 0ull : (unsigned long long)t.listener_cookie);
}

/* ---- the tests ---------------------------------------------------------------- */

/* ---- remote scopes (scope.bpf.h) ------------------------------------------------ */

#define MINOR_SCOPE 0x50u   /* scoped rule on the test cgroup */
#define MINOR_SCOPE2 0x51u  /* ... a narrower one */
#define MINOR_LAN 0x52u
#define MINOR_INET 0x53u
#define SID_A 5u
#define SID_B 6u
#define SID_DENY 8u

static int scope_cidr(struct env *e, uint32_t sid, const char *text, unsigned len) {
	struct nb_scope_lpm_key k = { .sid = htonl(sid) };
	uint8_t v4[4];
	uint32_t v;

	if (inet_pton(AF_INET, text, v4) == 1) {
		k.addr[10] = k.addr[11] = 0xff;
		memcpy(k.addr + 12, v4, 4);
		len += 96;
	} else if (inet_pton(AF_INET6, text, k.addr) != 1)
		return -EINVAL;
	k.prefixlen = 32 + len;
	v = len;
	return bpf_map__update_elem(e->skel->maps.scope_cidrs, &k, sizeof(k), &v, sizeof(v), BPF_ANY);
}

static int scope_set(struct env *e, uint32_t kind, uint64_t key, const struct nb_scope_ent *ents, unsigned n) {
	struct nb_scope_key k = { .key = key, .kind = kind };
	struct nb_scope_set set = { .n = n };

	if (n == 0)
		return bpf_map__delete_elem(e->skel->maps.scope_keys, &k, sizeof(k), 0);
	memcpy(set.e, ents, n * sizeof(*ents));
	return bpf_map__update_elem(e->skel->maps.scope_keys, &k, sizeof(k), &set, sizeof(set), BPF_ANY);
}

/* A packet to socket s from the remote address `from`. */
static size_t packet_from(uint8_t *buf, size_t size, const struct sock *s, const char *from) {
	size_t len = packet_to(buf, size, s);

	if (s->family == AF_INET)
		inet_pton(AF_INET, from, buf + ETH_HLEN + 12);
	else
		inet_pton(AF_INET6, from, buf + ETH_HLEN + 8);
	return len;
}

static void expect_from(struct env *e, const struct sock *s, const char *from, uint32_t minor) {
	uint8_t pkt[256];
	size_t len = packet_from(pkt, sizeof(pkt), s, from);
	char what[128];

	snprintf(what, sizeof(what), "scoped, %s from %s", s->family == AF_INET ? "UDP/IPv4" : "UDP/IPv6", from);
	expect_redirect(e, pkt, len, minor, what);
}

static void expect_denied(struct env *e, const struct sock *s, const char *from, bool denied) {
	uint8_t pkt[256];
	size_t len = packet_from(pkt, sizeof(pkt), s, from);
	struct run r = ingress(e, pkt, len);

	if (denied)
		check(r.err == 0 && r.retval == TC_ACT_SHOT, "ingress from %s: denied, dropped (err %d, retval %u)", from,
		      r.err, r.retval);
	else
		check(r.err == 0 && r.retval == TC_ACT_REDIRECT, "ingress from %s: allowed (err %d, retval %u)", from,
		      r.err, r.retval);
}

static uint64_t denied_packets(struct env *e, uint32_t sid) {
	int ncpu = libbpf_num_possible_cpus();
	struct nb_scope_stats st[ncpu > 0 ? ncpu : 1];
	uint64_t n = 0;

	if (ncpu <= 0 || bpf_map__lookup_elem(e->skel->maps.scope_stats, &sid, sizeof(sid), st,
					      sizeof(st[0]) * ncpu, 0) < 0)
		return UINT64_MAX;
	for (int i = 0; i < ncpu; i++)
		n += st[i].denied_packets;
	return n;
}

static int on_denial(void *ctx, void *data, size_t size) {
	struct nb_denial *d = ctx;

	/* The first one: the IPv4 socket's. */
	if (size == sizeof(*d) && d->sid == 0)
		memcpy(d, data, size);
	return 0;
}

static void test_scopes(struct env *e, const struct sock *udp4, const struct sock *udp6) {
	uint32_t kinds = 1u << NB_SCOPE_KIND_CGROUP | 1u << NB_SCOPE_KIND_UID;
	struct nb_scope_ent ents[3] = {
		{ .sid = SID_A, .cls = { .minor = MINOR_SCOPE, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST } },
	};
	struct nb_sk_tag t;
	int r;

	if (scope_cidr(e, SID_A, "198.18.0.0", 31) < 0 || scope_cidr(e, SID_A, "fd18::", 64) < 0 ||
	    scope_set(e, NB_SCOPE_KIND_CGROUP, e->test_id, ents, 1) < 0) {
		check(false, "fill scope maps: %m");
		return;
	}
	/* Without the kinds set the programs never look. */
	bump_gen(e);
	expect_from(e, udp4, "198.18.0.1", MINOR_TEST);
	e->skel->bss->nb_scope_kinds = kinds;
	bump_gen(e);

	/* The edges of the prefix, both families; the unscoped rule of the
	 * same cgroup outside it. The same unconnected socket alternates:
	 * its cache follows the remote. */
	expect_from(e, udp4, "198.18.0.1", MINOR_SCOPE);
	expect_from(e, udp4, "198.18.0.0", MINOR_SCOPE);
	expect_from(e, udp4, "198.18.0.2", MINOR_TEST);
	expect_from(e, udp4, "198.17.255.255", MINOR_TEST);
	expect_from(e, udp4, "198.18.0.1", MINOR_SCOPE);
	expect_from(e, udp6, "fd18::ffff:ffff:ffff:ffff", MINOR_SCOPE);
	expect_from(e, udp6, "fd18::", MINOR_SCOPE);
	expect_from(e, udp6, "fd18:0:0:1::", MINOR_TEST);
	expect_from(e, udp6, "fd17:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MINOR_TEST);
	/* An IPv4-mapped IPv6 source is not the IPv4 address's traffic on
	 * the wire, and the trie keeps the two apart only by the mapping. */
	expect_from(e, udp6, "::ffff:198.18.0.1", MINOR_SCOPE);
	t.scoped = UINT32_MAX;
	r = get_tag(e, udp4->fd, &t);
	check(r == 0 && t.scoped == 1, "tag of a socket with scoped rules: scoped (got %u)", t.scoped);

	/* The longest matching prefix wins among a key's scoped rules. */
	ents[1] = (struct nb_scope_ent){ .sid = SID_B, .cls = { .minor = MINOR_SCOPE2, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST } };
	scope_cidr(e, SID_B, "198.18.0.1", 32);
	scope_set(e, NB_SCOPE_KIND_CGROUP, e->test_id, ents, 2);
	bump_gen(e);
	expect_from(e, udp4, "198.18.0.1", MINOR_SCOPE2);
	expect_from(e, udp4, "198.18.0.0", MINOR_SCOPE);

	/* "lan" and "internet": by the lan trie (sid 1). */
	scope_cidr(e, NB_SCOPE_SID_LAN, "10.0.0.0", 8);
	scope_cidr(e, NB_SCOPE_SID_LAN, "fe80::", 10);
	ents[0] = (struct nb_scope_ent){ .words = NB_SCOPE_LAN, .sid = 9, .cls = { .minor = MINOR_LAN, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST } };
	ents[1] = (struct nb_scope_ent){ .words = NB_SCOPE_INTERNET, .sid = 10, .cls = { .minor = MINOR_INET, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST } };
	scope_set(e, NB_SCOPE_KIND_CGROUP, e->test_id, ents, 2);
	bump_gen(e);
	expect_from(e, udp4, "10.1.2.3", MINOR_LAN);
	expect_from(e, udp4, "11.0.0.1", MINOR_INET);
	expect_from(e, udp6, "fe80::1", MINOR_LAN);
	expect_from(e, udp6, "2001:db8::1", MINOR_INET);
	/* Loopback is neither. */
	{
		struct nb_scope_lpm_key k = { .prefixlen = 32 + 104, .sid = htonl(NB_SCOPE_SID_LAN),
					      .addr = { [10] = 0xff, [11] = 0xff, [12] = 127 } };
		uint32_t v = 104 | NB_SCOPE_V_LOOPBACK;

		bpf_map__update_elem(e->skel->maps.scope_cidrs, &k, sizeof(k), &v, sizeof(v), BPF_ANY);
		bump_gen(e);
		expect_from(e, udp4, "127.0.0.1", MINOR_TEST);
	}

	/* Deny on "all", an allow on the cgroup makes the exception. */
	{
		struct ring_buffer *rb;
		struct nb_denial d = {};
		struct nb_scope_ent deny = { .sid = SID_DENY, .action = NB_SCOPE_DENY };
		struct nb_scope_ent allow = { .sid = SID_DENY + 1, .action = NB_SCOPE_ALLOW };
		uint64_t before = denied_packets(e, SID_DENY);
		uint8_t want[16] = { [10] = 0xff, [11] = 0xff, 198, 19, 1, 1 };

		scope_set(e, NB_SCOPE_KIND_CGROUP, e->test_id, NULL, 0);
		scope_cidr(e, SID_DENY, "198.19.1.0", 24);
		scope_cidr(e, SID_DENY, "fd18:0:0:2::", 64);
		scope_cidr(e, SID_DENY + 1, "198.19.1.0", 24);
		scope_set(e, NB_SCOPE_KIND_UID, NB_UID_ALL, &deny, 1);
		bump_gen(e);
		rb = ring_buffer__new(bpf_map__fd(e->skel->maps.denials), on_denial, &d, NULL);
		expect_denied(e, udp4, "198.19.1.1", true);
		expect_denied(e, udp4, "198.19.0.255", false);
		expect_denied(e, udp6, "fd18:0:0:2::5", true);
		expect_denied(e, udp6, "fd18:0:0:3::5", false);
		/* The unscoped class stays where not denied. */
		expect_from(e, udp4, "198.19.2.1", MINOR_TEST);
		check(denied_packets(e, SID_DENY) == before + 2, "scope_stats: 2 denied packets counted (got %llu)",
		      (unsigned long long)(denied_packets(e, SID_DENY) - before));
		if (rb) {
			ring_buffer__consume(rb);
			check(d.sid == SID_DENY && memcmp(d.addr, want, 16) == 0 && d.uid == getuid() && d.dir == NB_DENIAL_IN &&
			              d.proto == IPPROTO_UDP && d.port == REMOTE_PORT,
			      "denial event: sid %u, remote 198.19.1.1, uid, in, UDP port %u (got sid %u, uid %u, dir %u, proto %u, port %u)",
			      SID_DENY, REMOTE_PORT, d.sid, d.uid, d.dir, d.proto, d.port);
			ring_buffer__free(rb);
		} else
			check(false, "ring buffer on denials: %m");
		scope_set(e, NB_SCOPE_KIND_CGROUP, e->test_id, &allow, 1);
		bump_gen(e);
		expect_denied(e, udp4, "198.19.1.1", false);
		expect_from(e, udp4, "198.19.1.1", MINOR_TEST);
		scope_set(e, NB_SCOPE_KIND_CGROUP, e->test_id, NULL, 0);
		bump_gen(e);
		expect_denied(e, udp4, "198.19.1.1", true);
		scope_set(e, NB_SCOPE_KIND_UID, NB_UID_ALL, NULL, 0);
		bump_gen(e);
		expect_denied(e, udp4, "198.19.1.1", false);
	}

	e->skel->bss->nb_scope_kinds = 0;
	bump_gen(e);
	expect_from(e, udp4, "198.18.0.1", MINOR_TEST);
	t.scoped = UINT32_MAX;
	r = get_tag(e, udp4->fd, &t);
	check(r == 0 && t.scoped == 0, "no scoped rules left: tag unscoped (got %u)", t.scoped);
}

enum { S_UDP4, S_TCP4, S_UDP6, S_TCP6, S_CLIENT4, S_CHILD4, S_CLIENT6, S_CHILD6, S_EARLY, S_UNTAGGED,
       S_KID_UDP4, S_KID_TCP6, _S_MAX };

static const char *const sock_name[_S_MAX] = {
	[S_UDP4] = "UDP 127.0.0.1",
	[S_TCP4] = "TCP listener 127.0.0.1",
	[S_UDP6] = "UDP ::1",
	[S_TCP6] = "TCP listener ::1",
	[S_CLIENT4] = "TCP client 127.0.0.1",
	[S_CHILD4] = "accepted TCP 127.0.0.1",
	[S_CLIENT6] = "TCP client ::1",
	[S_CHILD6] = "accepted TCP ::1",
	[S_EARLY] = "UDP made before the rule",
	[S_UNTAGGED] = "UDP made before sock_create was attached",
	[S_KID_UDP4] = "UDP 127.0.0.1 in the child cgroup",
	[S_KID_TCP6] = "TCP listener ::1 in the child cgroup",
};

static void test_malformed(struct env *e, const struct sock *udp4, const struct sock *tcp4, const struct sock *udp6) {
	uint8_t pkt[256], bad[256];
	size_t len, full;

	/* Each starts from a packet that would redirect. */
	len = packet_to(pkt, sizeof(pkt), udp4);
	expect_redirect(e, pkt, len, MINOR_TEST, "well-formed UDP/IPv4 (reference)");
	{
		/* Frames past ETH_HLEN + NB_SMALL_LEN go to the bulk leaf. */
		uint8_t big[1514] = {};

		memcpy(big, pkt, len);
		expect_redirect(e, big, sizeof(big), MINOR_TEST, "full-size UDP/IPv4 frame (bulk)");
		expect_redirect(e, big, ETH_HLEN + NB_SMALL_LEN, MINOR_TEST, "frame of NB_SMALL_LEN (small)");
		expect_redirect(e, big, ETH_HLEN + NB_SMALL_LEN + 1, MINOR_TEST, "frame one byte longer (bulk)");

		/* A rule without NB_F_SMALL_FIRST: its own class, whatever the size. */
		struct nb_class flat = { .minor = MINOR_TEST, .flags = NB_F_UP | NB_F_DOWN };
		struct run r;

		check(bpf_map__update_elem(e->skel->maps.cgroup_rules, &e->test_id, sizeof(e->test_id), &flat,
					   sizeof(flat), BPF_ANY) == 0, "cgroup rule without NB_F_SMALL_FIRST");
		bump_gen(e);
		r = ingress(e, big, sizeof(big));
		check(r.retval == TC_ACT_REDIRECT && r.priority == NB_CLASSID(MINOR_TEST),
		      "ingress, rule without small-packet leaf, full frame: priority %#x (got %#x)",
		      NB_CLASSID(MINOR_TEST), r.priority);
		r = ingress(e, pkt, len);
		check(r.retval == TC_ACT_REDIRECT && r.priority == NB_CLASSID(MINOR_TEST),
		      "ingress, rule without small-packet leaf, small frame: priority %#x (got %#x)",
		      NB_CLASSID(MINOR_TEST), r.priority);

		/* Split, the small leaf not made yet: everything to the bulk leaf. */
		struct nb_class bulk_only = { .minor = MINOR_TEST, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT };

		check(bpf_map__update_elem(e->skel->maps.cgroup_rules, &e->test_id, sizeof(e->test_id), &bulk_only,
					   sizeof(bulk_only), BPF_ANY) == 0, "cgroup rule with NB_F_SPLIT only");
		bump_gen(e);
		r = ingress(e, big, sizeof(big));
		check(r.retval == TC_ACT_REDIRECT && r.priority == NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)),
		      "ingress, small leaf not made yet, full frame: priority %#x (got %#x)",
		      NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)), r.priority);
		r = ingress(e, pkt, len);
		check(r.retval == TC_ACT_REDIRECT && r.priority == NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)),
		      "ingress, small leaf not made yet, small frame: priority %#x (got %#x)",
		      NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)), r.priority);
		set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);
		bump_gen(e);
	}

	memcpy(bad, pkt, ETH_HLEN);
	((struct ether_header *)bad)->ether_type = htons(ETHERTYPE_ARP);
	expect_pass(e, bad, ETH_HLEN, "Ethernet header only (ARP ethertype)");
	expect_pass_or_refused(e, pkt, ETH_HLEN, "Ethernet header only (IPv4 ethertype)");
	expect_pass_or_refused(e, pkt, ETH_HLEN + 10, "truncated IPv4 header");

	/* A minimum-size frame that is all padding after the Ethernet header. */
	memset(bad, 0, ETH_ZLEN);
	memcpy(bad, pkt, ETH_HLEN);
	expect_pass(e, bad, ETH_ZLEN, "IPv4 ethertype, zero padding (version 0, ihl 0)");

	memcpy(bad, pkt, len);
	bad[ETH_HLEN] = 0x43; /* version 4, ihl 3 */
	expect_pass(e, bad, len, "IPv4 ihl 3");

	memcpy(bad, pkt, len);
	bad[ETH_HLEN] = 0x4f; /* ihl 15: 60-byte header, past the end of this packet */
	expect_pass(e, bad, len, "IPv4 ihl 15 beyond the packet");

	memcpy(bad, pkt, len);
	bad[ETH_HLEN] = 0x65; /* version 6 in an IPv4 frame */
	expect_pass(e, bad, len, "IPv4 ethertype, version 6");

	memcpy(bad, pkt, len);
	((struct iphdr *)(bad + ETH_HLEN))->frag_off = htons(100); /* offset 800 */
	expect_pass(e, bad, len, "IPv4 non-first fragment, no first fragment seen");

	memcpy(bad, pkt, len);
	((struct ether_header *)bad)->ether_type = htons(ETHERTYPE_ARP);
	expect_pass(e, bad, len, "ARP ethertype");

	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_UDP, REMOTE_PORT, udp4->port, 8);
	expect_redirect(e, pkt, len, MINOR_TEST, "IPv4 with 8 bytes of options (ihl 7)");
	expect_pass(e, pkt, ETH_HLEN + 28 + 4, "IPv4 ihl 7, UDP header cut by the options");

	/* Every truncation of a TCP/IPv4 packet to the listener: shorter than
	 * the IPv4 header the kernel may refuse it; then the program passes it
	 * while the TCP header is incomplete, and redirects from the full TCP
	 * header on. */
	full = packet_to(pkt, sizeof(pkt), tcp4);
	{
		size_t l3 = ETH_HLEN + sizeof(struct iphdr), hdr = l3 + sizeof(struct tcphdr);
		unsigned wrong = 0, refused = 0;

		for (size_t l = ETH_HLEN; l <= full; l++) {
			struct run r = ingress(e, pkt, l);
			uint32_t want = l >= hdr ? TC_ACT_REDIRECT : TC_ACT_OK;

			if (l < l3 && r.err == -EINVAL) {
				refused++;
				continue;
			}
			if (r.err != 0 || r.retval != want) {
				printf("     length %zu: err %d retval %u\n", l, r.err, r.retval);
				wrong++;
			}
		}
		if (refused > 0)
			printf("note the kernel refused the %u lengths below %zu (EINVAL)\n", refused, l3);
		check(wrong == 0, "ingress TCP/IPv4 cut to %d..%zu bytes: pass below %zu (truncated TCP header), "
		      "redirect from there", ETH_HLEN, full, hdr);
	}

	len = packet_to(pkt, sizeof(pkt), udp6);
	expect_pass_or_refused(e, pkt, ETH_HLEN + 30, "truncated IPv6 header");
	expect_pass(e, pkt, ETH_HLEN + sizeof(struct ip6_hdr) + 4, "truncated UDP header over IPv6");

	memcpy(bad, pkt, len);
	((struct ip6_hdr *)(bad + ETH_HLEN))->ip6_nxt = IPPROTO_HOPOPTS;
	expect_pass(e, bad, len, "IPv6 hop-by-hop header whose length runs past the packet");

	memcpy(bad, pkt, len);
	((struct ip6_hdr *)(bad + ETH_HLEN))->ip6_nxt = IPPROTO_ICMPV6;
	expect_pass(e, bad, len, "ICMPv6");

	memcpy(bad, pkt, len);
	bad[ETH_HLEN] = 0x45; /* version 4 in an IPv6 frame */
	expect_pass(e, bad, len, "IPv6 ethertype, version 4");
}

/* ---- fragments, extension headers, other protocols ------------------------------
 *
 * A packet builder for what packet_build() cannot make: IPv6 extension
 * header chains, fragment headers, ICMP. Addresses are the loopback's, as
 * there; checksums 0. */

struct pb {
	uint8_t buf[2048];
	size_t len;
	int family;
	size_t nh; /* offset of the byte naming the next header */
};

static void pb_start(struct pb *b, int family) {
	struct ether_header *eth = (void *)b->buf;

	memset(b, 0, sizeof(*b));
	b->family = family;
	memcpy(eth->ether_dhost, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	memcpy(eth->ether_shost, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	if (family == AF_INET) {
		struct iphdr *ip = (void *)(eth + 1);

		eth->ether_type = htons(ETHERTYPE_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		inet_pton(AF_INET, "127.0.0.1", &ip->saddr);
		inet_pton(AF_INET, "127.0.0.1", &ip->daddr);
		b->nh = ETH_HLEN + offsetof(struct iphdr, protocol);
		b->len = ETH_HLEN + sizeof(*ip);
	} else {
		struct ip6_hdr *ip6 = (void *)(eth + 1);

		eth->ether_type = htons(ETHERTYPE_IPV6);
		ip6->ip6_flow = htonl(6u << 28);
		ip6->ip6_hlim = 64;
		inet_pton(AF_INET6, "::1", &ip6->ip6_src);
		inet_pton(AF_INET6, "::1", &ip6->ip6_dst);
		b->nh = ETH_HLEN + offsetof(struct ip6_hdr, ip6_nxt);
		b->len = ETH_HLEN + sizeof(*ip6);
	}
}

/* Appends a header of type `type` and `size` bytes (its own next-header
 * byte first, as IPv6 extension headers and nothing else here have). */
static uint8_t *pb_push(struct pb *b, uint8_t type, size_t size, bool chains) {
	uint8_t *h = b->buf + b->len;

	b->buf[b->nh] = type;
	if (chains)
		b->nh = b->len;
	b->len += size;
	return h;
}

/* An IPv6 hop-by-hop, routing or destination options header of `units`
 * 8-byte units, padded with PadN; AH of `units` 4-byte units. */
static void pb_ext(struct pb *b, uint8_t type, unsigned units) {
	size_t size = type == IPPROTO_AH ? units * 4 : units * 8;
	uint8_t *h = pb_push(b, type, size, true);

	h[1] = type == IPPROTO_AH ? units - 2 : units - 1;
	if (type != IPPROTO_AH && type != IPPROTO_ROUTING) {
		h[2] = 1; /* PadN over the rest */
		h[3] = size - 4;
	}
}

/* Fragment `offset` (8-byte units) of datagram `id`, more to come or not. */
static void pb_frag(struct pb *b, unsigned offset, bool more, uint32_t id) {
	if (b->family == AF_INET) {
		struct iphdr *ip = (void *)(b->buf + ETH_HLEN);

		ip->frag_off = htons(offset | (more ? IP_MF : 0));
		ip->id = htons(id);
		return;
	}
	struct ip6_frag *f = (void *)pb_push(b, IPPROTO_FRAGMENT, sizeof(struct ip6_frag), true);

	f->ip6f_offlg = htons(offset << 3 | (more ? 1 : 0));
	f->ip6f_ident = htonl(id);
}

static void pb_udp(struct pb *b, uint16_t sport, uint16_t dport) {
	struct udphdr *uh = (void *)pb_push(b, IPPROTO_UDP, sizeof(*uh), false);

	uh->source = htons(sport);
	uh->dest = htons(dport);
}

static void pb_tcp(struct pb *b, uint16_t sport, uint16_t dport) {
	struct tcphdr *th = (void *)pb_push(b, IPPROTO_TCP, sizeof(*th), false);

	th->source = htons(sport);
	th->dest = htons(dport);
	th->doff = sizeof(*th) / 4;
	th->ack = 1;
}

/* An ICMP (IPv4) or ICMPv6 header: type, code 0, identifier, sequence 1. */
static void pb_icmp(struct pb *b, uint8_t type, uint16_t id) {
	uint8_t *h = pb_push(b, b->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6, 8, false);

	h[0] = type;
	h[4] = id >> 8;
	h[5] = id & 0xff;
	h[7] = 1;
}

/* Only the protocol, for a later fragment or a protocol without header. */
static void pb_proto(struct pb *b, uint8_t proto) {
	pb_push(b, proto, 0, false);
}

/* payload bytes of zeros; the IP lengths set; the frame's length. */
static size_t pb_end(struct pb *b, size_t payload) {
	if (b->len + payload > sizeof(b->buf))
		return 0;
	b->len += payload;
	if (b->family == AF_INET)
		((struct iphdr *)(b->buf + ETH_HLEN))->tot_len = htons(b->len - ETH_HLEN);
	else
		((struct ip6_hdr *)(b->buf + ETH_HLEN))->ip6_plen = htons(b->len - ETH_HLEN - sizeof(struct ip6_hdr));
	return b->len;
}

/* A piece of a datagram goes to the bulk leaf, whatever its size. */
static void expect_bulk(struct env *e, struct pb *b, size_t len, uint32_t minor, const char *what) {
	struct run r = ingress(e, b->buf, len);
	uint32_t want = NB_CLASSID(NB_MINOR_BULK(minor));

	check(r.err == 0 && r.retval == TC_ACT_REDIRECT && r.priority == want,
	      "ingress %s: redirect, priority %#x (err %d, retval %u, priority %#x)", what, want, r.err, r.retval,
	      r.priority);
}

static void expect_drop(struct env *e, struct pb *b, size_t len, const char *what) {
	struct run r = ingress(e, b->buf, len);

	check(r.err == 0 && r.retval == TC_ACT_SHOT && r.priority == PRIO_UNTOUCHED,
	      "ingress %s: drop (err %d, retval %u, priority %#x)", what, r.err, r.retval, r.priority);
}

static void flows_clear(struct env *e) {
	struct nb_flow_key k;

	while (bpf_map__get_next_key(e->skel->maps.flows, NULL, &k, sizeof(k)) == 0)
		if (bpf_map__delete_elem(e->skel->maps.flows, &k, sizeof(k), 0) < 0)
			break;
	while (bpf_map__get_next_key(e->skel->maps.frags, NULL, &k, sizeof(k)) == 0)
		if (bpf_map__delete_elem(e->skel->maps.frags, &k, sizeof(k), 0) < 0)
			break;
}

/*
 * Fragments: the first is classified by its socket, the later ones with
 * it, from the frags map; one that overtakes its first takes the class of
 * the last datagram between the same addresses. The test cgroup's rule
 * (MINOR_TEST) holds udp4/udp6; `free_udp4` is a socket under no rule
 * while this runs (its cgroup, the child, is exempted meanwhile).
 */
static void test_fragments(struct env *e, const struct sock *udp4, const struct sock *udp6,
                           const struct sock *free_udp4) {
	struct pb b;
	size_t len;

	flows_clear(e);
	/* free_udp4's cgroup exempt from the rules for now. */
	set_cgroup_rule(e, e->child_id, 0, 0);
	bump_gen(e);

	/* A later fragment whose first never came: nothing to go by. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 185, true, 0x1233);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 1480);
	expect_pass(e, b.buf, len, "IPv4 middle fragment, no first fragment seen from its source");

	/* IPv4, 4000 bytes of UDP in three fragments. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 0, true, 0x1234);
	pb_udp(&b, REMOTE_PORT, udp4->port);
	len = pb_end(&b, 1472);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv4 first fragment");
	pb_start(&b, AF_INET);
	pb_frag(&b, 185, true, 0x1234);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 1480);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv4 middle fragment");
	pb_start(&b, AF_INET);
	pb_frag(&b, 370, false, 0x1234);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 40);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv4 last fragment, 74 bytes (bulk leaf, as its datagram)");

	/* The next datagram's last fragment comes first (reordered): the class
	 * of the last datagram from that source. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 185, false, 0x1235);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 100);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv4 last fragment before its first (reordered)");
	/* Another protocol between the same addresses has no such owner. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 185, false, 0x1235);
	pb_proto(&b, 253);
	len = pb_end(&b, 100);
	expect_pass(e, b.buf, len, "IPv4 fragment of protocol 253, none of it seen");

	/* A datagram for a socket under no rule: its fragments pass, and the
	 * reordered fallback now follows it. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 0, true, 0x2000);
	pb_udp(&b, REMOTE_PORT, free_udp4->port);
	len = pb_end(&b, 1472);
	expect_pass(e, b.buf, len, "IPv4 first fragment to a socket under no rule");
	pb_start(&b, AF_INET);
	pb_frag(&b, 185, false, 0x2000);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 100);
	expect_pass(e, b.buf, len, "IPv4 last fragment, datagram to a socket under no rule");
	/* The first datagram's id again, after the other one: still its own. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 370, false, 0x1234);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 40);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv4 fragment of the first datagram, by its id");
	set_cgroup_rule(e, e->child_id, MINOR_CHILD, NB_F_UP | NB_F_DOWN);
	bump_gen(e);

	{
		struct nb_flow_key k = { .family = 4, .proto = IPPROTO_UDP, .id = 0x1234 };
		struct nb_owner o;

		inet_pton(AF_INET, "127.0.0.1", &k.remote[0]);
		inet_pton(AF_INET, "127.0.0.1", &k.local[0]);
		check(bpf_map__lookup_elem(e->skel->maps.frags, &k, sizeof(k), &o, sizeof(o), 0) == 0 &&
		              o.cls.minor == MINOR_TEST && o.acct.uid == getuid() && o.acct.cgroup == e->test_id,
		      "frags entry of the first datagram: minor %#x, uid %u, cgroup %llu", MINOR_TEST, getuid(),
		      (unsigned long long)e->test_id);
	}

	/* IPv6: fragment header, UDP behind it in the first fragment. */
	pb_start(&b, AF_INET6);
	pb_frag(&b, 0, true, 0xabcdef01);
	pb_udp(&b, REMOTE_PORT, udp6->port);
	len = pb_end(&b, 1440);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv6 first fragment");
	pb_start(&b, AF_INET6);
	pb_frag(&b, 181, true, 0xabcdef01);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 1448);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv6 middle fragment");
	pb_start(&b, AF_INET6);
	pb_frag(&b, 362, false, 0xabcdef01);
	pb_proto(&b, IPPROTO_UDP);
	len = pb_end(&b, 8);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv6 last fragment, 70 bytes");

	/* Hop-by-hop before the fragment header, destination options in the
	 * fragmentable part: later fragments name the options header (60),
	 * not UDP, and are matched by it. */
	pb_start(&b, AF_INET6);
	pb_ext(&b, IPPROTO_HOPOPTS, 1);
	pb_frag(&b, 0, true, 0x77);
	pb_ext(&b, IPPROTO_DSTOPTS, 2);
	pb_udp(&b, REMOTE_PORT, udp6->port);
	len = pb_end(&b, 1400);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv6 first fragment: hop-by-hop, fragment, dest-options, UDP");
	pb_start(&b, AF_INET6);
	pb_ext(&b, IPPROTO_HOPOPTS, 1);
	pb_frag(&b, 180, false, 0x77);
	pb_proto(&b, IPPROTO_DSTOPTS);
	len = pb_end(&b, 500);
	expect_bulk(e, &b, len, MINOR_TEST, "IPv6 later fragment of that datagram (next header 60)");

	/* Atomic fragment (offset 0, no more): a whole datagram. */
	pb_start(&b, AF_INET6);
	pb_frag(&b, 0, false, 0x78);
	pb_udp(&b, REMOTE_PORT, udp6->port);
	len = pb_end(&b, PAYLOAD_LEN);
	expect_redirect(e, b.buf, len, MINOR_TEST, "IPv6 atomic fragment, small (small-packet leaf)");
}

/* IPv6 extension header chains in front of TCP and UDP. */
static void test_exthdrs(struct env *e, const struct sock *tcp6, const struct sock *udp6) {
	struct pb b;
	size_t len;

	pb_start(&b, AF_INET6);
	pb_ext(&b, IPPROTO_DSTOPTS, 1);
	pb_tcp(&b, REMOTE_PORT, tcp6->port);
	len = pb_end(&b, 1000);
	expect_bulk(e, &b, len, MINOR_TEST, "TCP/IPv6 behind a destination options header");

	pb_start(&b, AF_INET6);
	pb_ext(&b, IPPROTO_HOPOPTS, 1);
	pb_ext(&b, IPPROTO_DSTOPTS, 3);
	pb_ext(&b, IPPROTO_ROUTING, 1);
	pb_ext(&b, IPPROTO_AH, 6);
	pb_ext(&b, IPPROTO_DSTOPTS, 1);
	pb_udp(&b, REMOTE_PORT, udp6->port);
	len = pb_end(&b, PAYLOAD_LEN);
	expect_redirect(e, b.buf, len, MINOR_TEST, "UDP/IPv6 behind hop-by-hop, dest-options, routing, AH, dest-options");

	/* NB_MAX_EXTHDRS are walked; one more is dropped. */
	pb_start(&b, AF_INET6);
	for (unsigned i = 0; i < NB_MAX_EXTHDRS; i++)
		pb_ext(&b, i == 0 ? IPPROTO_HOPOPTS : IPPROTO_DSTOPTS, 1);
	pb_tcp(&b, REMOTE_PORT, tcp6->port);
	len = pb_end(&b, 1000);
	expect_bulk(e, &b, len, MINOR_TEST, "TCP/IPv6 behind NB_MAX_EXTHDRS extension headers");

	pb_start(&b, AF_INET6);
	for (unsigned i = 0; i < NB_MAX_EXTHDRS + 1; i++)
		pb_ext(&b, IPPROTO_DSTOPTS, 1);
	pb_tcp(&b, REMOTE_PORT, tcp6->port);
	len = pb_end(&b, 1000);
	expect_drop(e, &b, len, "TCP/IPv6 behind NB_MAX_EXTHDRS + 1 extension headers");

	/* A chain cut by the end of the packet: left to the kernel. */
	pb_start(&b, AF_INET6);
	pb_ext(&b, IPPROTO_DSTOPTS, 1);
	len = pb_end(&b, 0);
	b.buf[len - 8 + 1] = 10; /* claims 88 bytes */
	expect_pass(e, b.buf, len, "IPv6 dest-options header longer than the packet");

	/* Not on a managed interface: no drop either. */
	pb_start(&b, AF_INET6);
	for (unsigned i = 0; i < NB_MAX_EXTHDRS + 1; i++)
		pb_ext(&b, IPPROTO_DSTOPTS, 1);
	pb_tcp(&b, REMOTE_PORT, tcp6->port);
	len = pb_end(&b, 1000);
	del_iface(e, e->ifindex);
	expect_pass(e, b.buf, len, "TCP/IPv6 behind too many extension headers, unmanaged interface");
	set_iface(e, e->ifindex, FAKE_IFB_IFINDEX);
}

/* Sends one packet from s to the loopback address (a real send through the
 * egress hook); true when the kernel took it. */
static bool send_to_lo(int fd, int family, const void *data, size_t len) {
	struct sockaddr_storage ss;
	socklen_t sl;

	if (sockaddr_make(family, loopback_addr(family), 0, &ss, &sl) < 0)
		return false;
	return sendto(fd, data, len, 0, (struct sockaddr *)&ss, sl) == (ssize_t)len;
}

/*
 * ICMP of ping sockets and another protocol of a raw socket: nb_egress
 * remembers the owner of what they send, nb_ingress classifies the
 * replies with it.
 */
static void test_other_protos(struct env *e) {
	_cleanup_close_ int ping4 = -1, ping6 = -1, raw = -1;
	uint8_t echo[64] = {};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint16_t id4 = 0, id6 = 0;
	struct pb b;
	size_t len;

	flows_clear(e);

	/* Ping sockets for our gid, in our own namespace only. */
	if (write_str("/proc/sys/net/ipv4/ping_group_range", "0 2147483647") < 0) {
		check(false, "allow ping sockets: %m");
		return;
	}
	ping4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	ping6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 253);
	if (ping4 < 0 || ping6 < 0 || raw < 0) {
		check(false, "open ping and raw sockets: %m");
		return;
	}

	/* Before anything was sent: nothing known. */
	pb_start(&b, AF_INET);
	pb_icmp(&b, 0, 1);
	len = pb_end(&b, 56);
	expect_pass(e, b.buf, len, "ICMP echo reply, no request seen");

	echo[0] = 8; /* echo request; the kernel sets the identifier */
	check(send_to_lo(ping4, AF_INET, echo, sizeof(echo)), "ping 127.0.0.1 through a ping socket");
	if (getsockname(ping4, (struct sockaddr *)&ss, &sl) == 0)
		id4 = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	echo[0] = 128;
	check(send_to_lo(ping6, AF_INET6, echo, sizeof(echo)), "ping ::1 through a ping socket");
	sl = sizeof(ss);
	if (getsockname(ping6, (struct sockaddr *)&ss, &sl) == 0)
		id6 = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	check(send_to_lo(raw, AF_INET, "x", 1), "send protocol 253 through a raw socket");

	pb_start(&b, AF_INET);
	pb_icmp(&b, 0, id4);
	len = pb_end(&b, 56);
	expect_redirect(e, b.buf, len, MINOR_TEST, "ICMP echo reply to the ping socket");
	pb_start(&b, AF_INET);
	pb_icmp(&b, 0, id4 + 1);
	len = pb_end(&b, 56);
	expect_pass(e, b.buf, len, "ICMP echo reply with another identifier");
	pb_start(&b, AF_INET);
	pb_icmp(&b, 3, 0);
	len = pb_end(&b, 56);
	expect_pass(e, b.buf, len, "ICMP destination unreachable (no socket sent such)");

	pb_start(&b, AF_INET6);
	pb_icmp(&b, 129, id6);
	len = pb_end(&b, 1200);
	expect_bulk(e, &b, len, MINOR_TEST, "ICMPv6 echo reply to the ping socket, 1200 bytes");
	pb_start(&b, AF_INET6);
	pb_ext(&b, IPPROTO_DSTOPTS, 1);
	pb_icmp(&b, 129, id6);
	len = pb_end(&b, 56);
	expect_redirect(e, b.buf, len, MINOR_TEST, "ICMPv6 echo reply behind a dest-options header");

	pb_start(&b, AF_INET);
	pb_proto(&b, 253);
	len = pb_end(&b, 1000);
	expect_bulk(e, &b, len, MINOR_TEST, "protocol 253 from the peer a raw socket sent it to");

	/* A large echo reply in fragments: the first has the identifier. */
	pb_start(&b, AF_INET);
	pb_frag(&b, 0, true, 0x4444);
	pb_icmp(&b, 0, id4);
	len = pb_end(&b, 1472);
	expect_bulk(e, &b, len, MINOR_TEST, "ICMP echo reply, first fragment");
	pb_start(&b, AF_INET);
	pb_frag(&b, 185, false, 0x4444);
	pb_proto(&b, IPPROTO_ICMP);
	len = pb_end(&b, 600);
	expect_bulk(e, &b, len, MINOR_TEST, "ICMP echo reply, last fragment");

	/* The rule changes: the entry follows at the socket's next packet. */
	set_cgroup_rule(e, e->test_id, MINOR_DOWNONLY, NB_F_DOWN);
	bump_gen(e);
	echo[0] = 8;
	check(send_to_lo(ping4, AF_INET, echo, sizeof(echo)), "ping 127.0.0.1 again after a rule change");
	pb_start(&b, AF_INET);
	pb_icmp(&b, 0, id4);
	len = pb_end(&b, 56);
	expect_redirect(e, b.buf, len, MINOR_DOWNONLY, "ICMP echo reply after the rule changed");
	set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);
	bump_gen(e);

	/* Uploads of other protocols: nb_egress gives them the rule's class
	 * as any socket's. A raw socket gets a copy of what it sends over lo,
	 * with the priority it left with. */
	if (e->prio_prog_fd >= 0) {
		struct sock r = { .fd = raw, .family = AF_INET, .type = SOCK_RAW };
		char buf[128];

		if (prio_probe_attach(e, &r) < 0 || prio_set(e, PRIO_NONE) < 0)
			check(false, "probe on the raw socket: %m");
		else {
			uint32_t want = NB_CLASSID(NB_MINOR_SMALL(MINOR_TEST)), got;

			check(send_to_lo(raw, AF_INET, "x", 1), "send protocol 253 once more");
			got = recv(raw, buf, sizeof(buf), 0) > 0 ? prio_get(e) : PRIO_NONE;
			check(got == want, "egress of a raw socket: priority %#x (got %#x)", want, got);
		}
	}
}

/*
 * Socket rules (sock_rules, by cookie) beat the cgroup rule on the test
 * cgroup, which every socket here falls under otherwise; a rule on a
 * listener covers the connections it accepts. Ingress through test runs,
 * egress on real datagrams and segments over lo.
 */
static void test_sock_rules(struct env *e, struct sock *s) {
	struct sock recv4 = { .fd = -1 }, nocookie = { .fd = -1 };
	uint64_t c_udp4 = sock_cookie(&s[S_UDP4]), c_tcp4 = sock_cookie(&s[S_TCP4]);
	uint64_t c_child4 = sock_cookie(&s[S_CHILD4]);
	uint8_t pkt[256];
	size_t len;
	int r;

	r = prio_probe_setup(e);
	if (r < 0) {
		check(false, "load the priority probe (socket filter): %s", strerror(-r));
		return;
	}
	r = sock_open(AF_INET, SOCK_DGRAM, &recv4);
	if (r >= 0)
		r = prio_probe_attach(e, &recv4);
	if (r >= 0)
		r = prio_probe_attach(e, &s[S_CLIENT4]);
	if (r < 0) {
		check(false, "set up receivers with the priority probe: %s", strerror(-r));
		goto out;
	}
	check(c_udp4 != 0 && c_tcp4 != 0 && c_child4 != 0, "SO_COOKIE gives the sockets' cookies");

	set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_send_priority(e, &s[S_UDP4], &recv4, MINOR_TEST, "UDP 127.0.0.1, cgroup rule (reference)");
	{
		/* A datagram over NB_SMALL_LEN goes to the bulk leaf, one of
		 * that size exactly (IP + UDP headers + payload) to the small one. */
		uint32_t got = send_priority_len(e, &s[S_UDP4], &recv4, 1000);
		check(got == NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)), "egress 1000-byte UDP datagram: bulk class %#x (got %#x)",
		      NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)), got);
		got = send_priority_len(e, &s[S_UDP4], &recv4, NB_SMALL_LEN - 28);
		check(got == NB_CLASSID(NB_MINOR_SMALL(MINOR_TEST)), "egress %u-byte IP packet: small class %#x (got %#x)",
		      NB_SMALL_LEN, NB_CLASSID(NB_MINOR_SMALL(MINOR_TEST)), got);
		got = send_priority_len(e, &s[S_UDP4], &recv4, NB_SMALL_LEN - 27);
		check(got == NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)), "egress %u-byte IP packet: bulk class %#x (got %#x)",
		      NB_SMALL_LEN + 1, NB_CLASSID(NB_MINOR_BULK(MINOR_TEST)), got);
	}

	/* Ingress runs first after the bump: it re-classifies the stale tag
	 * with the cookie stored in it. */
	set_sock_rule(e, c_udp4, MINOR_SOCK, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_SOCK, "UDP 127.0.0.1, socket rule beats cgroup rule");
	expect_send_priority(e, &s[S_UDP4], &recv4, MINOR_SOCK, "UDP 127.0.0.1, socket rule beats cgroup rule");
	expect_sock_redirect(e, &s[S_UDP6], MINOR_TEST, "UDP ::1 in the same cgroup, no socket rule");
	expect_sock_redirect(e, &s[S_EARLY], MINOR_TEST, "other UDP 127.0.0.1 in the same cgroup, no socket rule");
	expect_send_priority(e, &s[S_EARLY], &recv4, MINOR_TEST, "other UDP 127.0.0.1 in the same cgroup");

	/* Socket rules beat uid rules too. */
	set_uid_rule(e, getuid(), MINOR_UID, NB_F_UP | NB_F_DOWN);
	del_cgroup_rule(e, e->test_id);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_SOCK, "UDP 127.0.0.1, socket rule beats uid rule");
	expect_sock_redirect(e, &s[S_UDP6], MINOR_UID, "UDP ::1, uid rule only");
	/* The rule on everything: after the user's, before nothing. */
	set_uid_rule(e, NB_UID_ALL, MINOR_ALL, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP6], MINOR_UID, "UDP ::1, uid rule beats the rule on everything");
	del_uid_rule(e, getuid());
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP6], MINOR_ALL, "UDP ::1, only the rule on everything");
	expect_sock_redirect(e, &s[S_UDP4], MINOR_SOCK, "UDP 127.0.0.1, socket rule beats the rule on everything");
	del_uid_rule(e, NB_UID_ALL);
	set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);

	/* Directions, and minor 0 = exempt from the cgroup rule. */
	set_sock_rule(e, c_udp4, MINOR_SOCK2, NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_SOCK2, "UDP 127.0.0.1, socket rule down only");
	expect_send_priority(e, &s[S_UDP4], &recv4, 0, "UDP 127.0.0.1, socket rule down only");
	set_sock_rule(e, c_udp4, 0, 0);
	bump_gen(e);
	expect_sock_pass(e, &s[S_UDP4], "UDP 127.0.0.1, socket exempt (minor 0)");
	expect_send_priority(e, &s[S_UDP4], &recv4, 0, "UDP 127.0.0.1, socket exempt (minor 0)");

	del_sock_rule(e, c_udp4);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_TEST, "UDP 127.0.0.1, socket rule deleted: cgroup rule again");
	expect_send_priority(e, &s[S_UDP4], &recv4, MINOR_TEST, "UDP 127.0.0.1, socket rule deleted: cgroup rule again");

	/* A rule on the listener: the listener and its accepted child, not the
	 * client (the other end, same cgroup). */
	set_sock_rule(e, c_tcp4, MINOR_LISTENER, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_TCP4], MINOR_LISTENER, "TCP listener 127.0.0.1, socket rule on it");
	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, s[S_CLIENT4].port, s[S_TCP4].port, 0);
	expect_redirect(e, pkt, len, MINOR_LISTENER, "TCP/IPv4 to the accepted child, rule on its listener");
	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, s[S_TCP4].port, s[S_CLIENT4].port, 0);
	expect_redirect(e, pkt, len, MINOR_TEST, "TCP/IPv4 to the client, rule on the listener of its peer");

	/* The child's first segment out: egress gives its tag its own cookie
	 * and keeps the listener's as listener_cookie. */
	expect_send_priority(e, &s[S_CHILD4], &s[S_CLIENT4], MINOR_LISTENER,
	                     "accepted TCP 127.0.0.1, rule on its listener");
	expect_tag_cookie(e, &s[S_CHILD4], c_child4, c_tcp4, "accepted TCP child after it sent");
	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, s[S_CLIENT4].port, s[S_TCP4].port, 0);
	expect_redirect(e, pkt, len, MINOR_LISTENER, "TCP/IPv4 to the accepted child after it sent, rule on its listener");

	/* A rule on the child itself beats the listener's. */
	set_sock_rule(e, c_child4, MINOR_SOCK, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_redirect(e, pkt, len, MINOR_SOCK, "TCP/IPv4 to the accepted child, rules on it and on its listener");
	expect_send_priority(e, &s[S_CHILD4], &s[S_CLIENT4], MINOR_SOCK,
	                     "accepted TCP 127.0.0.1, rules on it and on its listener");
	expect_sock_redirect(e, &s[S_TCP4], MINOR_LISTENER, "TCP listener 127.0.0.1, rules on it and on a child");

	del_sock_rule(e, c_child4);
	del_sock_rule(e, c_tcp4);
	bump_gen(e);
	expect_redirect(e, pkt, len, MINOR_TEST, "TCP/IPv4 to the accepted child, socket rules deleted");
	expect_send_priority(e, &s[S_CHILD4], &s[S_CLIENT4], MINOR_TEST, "accepted TCP 127.0.0.1, socket rules deleted");

	/* A tag without a cookie (cookie 0: written so from here, as a tag
	 * made by an older data path would be): ingress cannot see the socket
	 * rule, the next packet out fills the cookie in, then both do. */
	r = sock_open(AF_INET, SOCK_DGRAM, &nocookie);
	if (r < 0) {
		check(false, "open a UDP socket: %s", strerror(-r));
		goto out;
	}
	{
		struct nb_sk_tag t;

		r = get_tag(e, nocookie.fd, &t);
		if (r >= 0) {
			t.cookie = 0;
			r = bpf_map__update_elem(e->skel->maps.sk_tags, &nocookie.fd, sizeof(nocookie.fd), &t, sizeof(t),
			                         BPF_EXIST) < 0 ? -errno : 0;
		}
		if (r >= 0)
			r = get_tag(e, nocookie.fd, &t);
		if (!check(r >= 0 && t.cookie == 0, "clear the cookie of a tag from user space (err %d)", r))
			goto out;
	}
	set_sock_rule(e, sock_cookie(&nocookie), MINOR_SOCK, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &nocookie, MINOR_TEST, "UDP with a tag without cookie: cgroup rule only");
	expect_send_priority(e, &nocookie, &recv4, MINOR_SOCK, "UDP with a tag without cookie: socket rule");
	expect_tag_cookie(e, &nocookie, sock_cookie(&nocookie), 0, "UDP with a tag without cookie, after sending");
	expect_sock_redirect(e, &nocookie, MINOR_SOCK, "UDP with a tag without cookie, after sending: socket rule");
	del_sock_rule(e, sock_cookie(&nocookie));
	bump_gen(e);

out:
	sock_close(&nocookie);
	sock_close(&recv4);
}

struct events_seen {
	unsigned n;
	uint64_t cookie; /* of the last event */
	uint32_t type, pad;
	size_t size;
};

static int on_event(void *ctx, void *data, size_t size) {
	struct events_seen *seen = ctx;
	struct nb_event ev = {};

	memcpy(&ev, data, size < sizeof(ev) ? size : sizeof(ev));
	seen->n++;
	seen->cookie = ev.cookie;
	seen->type = ev.type;
	seen->pad = ev.pad;
	seen->size = size;
	return 0;
}

/* Closes s and reads the events ring buffer: exactly one release event for
 * s if it had a socket rule, none otherwise. The program runs in close(),
 * so the event is there before poll(); the timeouts only bound the wait. */
static void expect_close_event(struct env *e, struct ring_buffer *rb, struct sock *s, bool has_rule, const char *what) {
	uint64_t cookie = sock_cookie(s);
	int r, n;

	sock_close(s);
	r = get_sock_rule(e, cookie);
	if (has_rule)
		check(r == -ENOENT, "close %s: its socket rule is gone (lookup: %d)", what, r);
	n = ring_buffer__poll(rb, has_rule ? 1000 : 200);
	if (n >= 0) {
		int m = ring_buffer__consume(rb);

		n = m < 0 ? m : n + m;
	}
	if (has_rule)
		check(n == 1, "close %s: one event (got %d)", what, n);
	else
		check(n == 0, "close %s: no event (got %d)", what, n);
}

static void test_release(struct env *e, struct sock *s) {
	struct sock a = { .fd = -1 }, b = { .fd = -1 }, c = { .fd = -1 };
	struct events_seen seen = {};
	struct ring_buffer *rb = NULL;
	uint64_t ca, cc, c_child6, c_tcp6;
	int r;

	{
		_cleanup_close_ int cg = open(e->test, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		e->release_link = cg < 0 ? NULL : bpf_program__attach_cgroup(e->skel->progs.nb_sock_release, cg);
		if (!check(e->release_link, "attach nb_sock_release to %s", e->test))
			return;
	}
	rb = ring_buffer__new(bpf_map__fd(e->skel->maps.events), on_event, &seen, NULL);
	if (!check(rb, "ring_buffer__new on the events map"))
		return;
	/* What the daemon adds to its sd-event loop. */
	check(ring_buffer__epoll_fd(rb) >= 0, "the events ring buffer has an epoll fd");

	if ((r = sock_open(AF_INET, SOCK_DGRAM, &a)) < 0 || (r = sock_open(AF_INET6, SOCK_DGRAM, &b)) < 0 ||
	    (r = sock_open(AF_INET, SOCK_DGRAM, &c)) < 0) {
		check(false, "open sockets: %s", strerror(-r));
		goto out;
	}
	ca = sock_cookie(&a);
	cc = sock_cookie(&c);
	c_child6 = sock_cookie(&s[S_CHILD6]);
	c_tcp6 = sock_cookie(&s[S_TCP6]);
	set_sock_rule(e, ca, MINOR_SOCK, NB_F_UP | NB_F_DOWN);
	set_sock_rule(e, cc, MINOR_SOCK, NB_F_UP | NB_F_DOWN);
	set_sock_rule(e, c_child6, MINOR_SOCK2, NB_F_UP | NB_F_DOWN);
	set_sock_rule(e, c_tcp6, MINOR_LISTENER, NB_F_UP | NB_F_DOWN);
	bump_gen(e);

	expect_close_event(e, rb, &a, true, "UDP 127.0.0.1 with a socket rule");
	check(seen.n == 1 && seen.cookie == ca && seen.type == NB_EVENT_SOCK_RELEASED && seen.pad == 0 &&
	              seen.size == sizeof(struct nb_event),
	      "the event: cookie %llu, NB_EVENT_SOCK_RELEASED, %zu bytes (cookie %llu, type %u, pad %u, %zu bytes)",
	      (unsigned long long)ca, sizeof(struct nb_event), (unsigned long long)seen.cookie, seen.type, seen.pad,
	      seen.size);

	expect_close_event(e, rb, &b, false, "UDP ::1 without a socket rule");

	/* Deleted by user space first: nothing left to report. */
	del_sock_rule(e, cc);
	expect_close_event(e, rb, &c, false, "UDP 127.0.0.1 whose socket rule user space deleted first");

	/* An accepted child is released under its own cookie, not the one its
	 * tag was cloned with; the listener's rule stays until it closes. */
	expect_close_event(e, rb, &s[S_CHILD6], true, "accepted TCP ::1 with a socket rule");
	check(seen.cookie == c_child6, "the event carries the child's cookie %llu (got %llu)",
	      (unsigned long long)c_child6, (unsigned long long)seen.cookie);
	r = get_sock_rule(e, c_tcp6);
	check(r == 0, "the listener's socket rule is still there (lookup: %d)", r);
	expect_close_event(e, rb, &s[S_TCP6], true, "TCP listener ::1 with a socket rule");
	check(seen.cookie == c_tcp6, "the event carries the listener's cookie %llu (got %llu)",
	      (unsigned long long)c_tcp6, (unsigned long long)seen.cookie);

	check(e->skel->bss->nb_events_lost == 0, "no event lost (nb_events_lost %llu)",
	      (unsigned long long)e->skel->bss->nb_events_lost);
out:
	sock_close(&a);
	sock_close(&b);
	sock_close(&c);
	ring_buffer__free(rb);
}

/* ---- accounting ------------------------------------------------------------------
 *
 * The per-process counters (acct, see "Accounting" in netbump.h): egress and
 * the receiving socket's ingress on real datagrams over lo (the sink is one
 * of ours: what one of our sockets sends to it counts both ways), egress GSO
 * packets through the test run's gso_segs, none at tc ingress (before the
 * shaper), and the load-time switch off.
 */

/* The counters of one owner, summed over the CPUs; zeros when absent. */
static int acct_get(struct bpf_map *map, uint64_t cgroup, uint32_t tgid, uint32_t uid, struct nb_acct *ret) {
	struct nb_acct_key key = { .cgroup = cgroup, .tgid = tgid, .uid = uid };
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ struct nb_acct *v = NULL;

	memset(ret, 0, sizeof(*ret));
	if (ncpu <= 0)
		return -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map__lookup_elem(map, &key, sizeof(key), v, sizeof(*v) * ncpu, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	for (int c = 0; c < ncpu; c++) {
		ret->up_bytes += v[c].up_bytes;
		ret->up_packets += v[c].up_packets;
		ret->down_bytes += v[c].down_bytes;
		ret->down_packets += v[c].down_packets;
	}
	return 1;
}

/* Bytes and packets of every owner together, and how many owners. */
static struct nb_acct acct_total(struct bpf_map *map, unsigned *ret_n) {
	struct nb_acct t = {}, one;
	struct nb_acct_key key, next;
	void *prev = NULL;
	unsigned n = 0;

	while (bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
		key = next;
		prev = &key;
		if (acct_get(map, key.cgroup, key.tgid, key.uid, &one) > 0) {
			t.up_bytes += one.up_bytes;
			t.up_packets += one.up_packets;
			t.down_bytes += one.down_bytes;
			t.down_packets += one.down_packets;
			n++;
		}
	}
	if (ret_n)
		*ret_n = n;
	return t;
}

/* A test run with gso_segs (and gso_size) in the context, as a GSO or GRO
 * packet of that many segments. */
static struct run prog_run_segs(const struct bpf_program *prog, const void *pkt, size_t len, uint32_t ifindex,
                                uint32_t segs, uint32_t seg_size) {
	struct __sk_buff skb = { .ifindex = ifindex, .priority = PRIO_UNTOUCHED, .gso_segs = segs, .gso_size = seg_size };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
	            .data_in = pkt,
	            .data_size_in = len,
	            .ctx_in = &skb,
	            .ctx_size_in = sizeof(skb),
	            .ctx_out = &skb,
	            .ctx_size_out = sizeof(skb),
	            .repeat = 1);
	struct run r = {};

	r.err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts) < 0 ? -errno : 0;
	r.retval = opts.retval;
	r.priority = skb.priority;
	return r;
}

static void expect_acct_delta(const struct nb_acct *before, const struct nb_acct *after, uint64_t up_bytes,
                              uint64_t up_packets, uint64_t down_bytes, uint64_t down_packets, const char *what) {
	uint64_t ub = after->up_bytes - before->up_bytes, up = after->up_packets - before->up_packets;
	uint64_t db = after->down_bytes - before->down_bytes, dp = after->down_packets - before->down_packets;

	check(ub == up_bytes && up == up_packets && db == down_bytes && dp == down_packets,
	      "acct %s: up +%llu bytes +%llu packets, down +%llu bytes +%llu packets "
	      "(got up +%llu +%llu, down +%llu +%llu)",
	      what, (unsigned long long)up_bytes, (unsigned long long)up_packets, (unsigned long long)down_bytes,
	      (unsigned long long)down_packets, (unsigned long long)ub, (unsigned long long)up,
	      (unsigned long long)db, (unsigned long long)dp);
}

/* Sends len bytes of UDP payload from `from` to the UDP socket `to` over lo
 * and reads them back. */
static bool udp_send(const struct sock *from, const struct sock *to, size_t len) {
	struct sockaddr_storage ss;
	char buf[1500] = {};
	socklen_t sl;

	if (len > sizeof(buf) || sockaddr_make(to->family, loopback_addr(to->family), to->port, &ss, &sl) < 0 ||
	    sendto(from->fd, buf, len, 0, (struct sockaddr *)&ss, sl) != (ssize_t)len)
		return false;
	return recv(to->fd, buf, sizeof(buf), 0) == (ssize_t)len;
}

static uint32_t prog_xlated_len(const struct bpf_program *prog) {
	struct bpf_prog_info info = {};
	uint32_t l = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &l) < 0)
		return 0;
	return info.xlated_prog_len;
}

static void test_accounting(struct env *e, struct sock *s) {
	struct bpf_map *map = e->skel->maps.acct;
	struct sock sink = { .fd = -1 };
	struct netbump_bpf *off = NULL;
	struct nb_acct before, after, tb, ta;
	uint32_t me = (uint32_t)getpid(), uid = getuid();
	struct timeval tv = { .tv_sec = 2 };
	struct nb_sk_tag t;
	uint8_t pkt[256];
	unsigned n_before, n_after;
	size_t len;
	int r;

	/* Owners: the tag names the creating process, or 0 when the tag was
	 * made on egress for a socket from before the programs. */
	r = get_tag(e, s[S_UDP4].fd, &t);
	check(r == 0 && t.tgid == me && t.scoped == 0, "tag of %s: tgid %u, the creating process (err %d, tgid %u)",
	      sock_name[S_UDP4], me, r, r ? 0 : t.tgid);
	r = get_tag(e, s[S_UNTAGGED].fd, &t);
	check(r == 0 && t.tgid == 0, "tag of %s: tgid 0, creator unknown (err %d, tgid %u)", sock_name[S_UNTAGGED],
	      r, r ? 0 : t.tgid);

	r = sock_open(AF_INET, SOCK_DGRAM, &sink);
	if (r >= 0 && setsockopt(sink.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		r = negative_errno();
	if (r < 0) {
		check(false, "open a UDP receiver: %s", strerror(-r));
		goto out;
	}
	set_iface(e, e->ifindex, FAKE_IFB_IFINDEX);

	/* Upload: 100 bytes of payload leave as 100 + 8 + 20 + 14 link-layer
	 * bytes, one packet, under (test cgroup, this process, our uid); the
	 * sink, ours too, receives them as a download. */
	acct_get(map, e->test_id, me, uid, &before);
	if (!check(udp_send(&s[S_UDP4], &sink, 100), "send 100 bytes from %s", sock_name[S_UDP4]))
		goto out;
	acct_get(map, e->test_id, me, uid, &after);
	expect_acct_delta(&before, &after, 142, 1, 142, 1, "UDP/IPv4 datagram sent and received over a managed interface");

	/* IPv6: 40-byte header. */
	acct_get(map, e->test_id, me, uid, &before);
	{
		struct sock sink6 = { .fd = -1 };

		if (sock_open(AF_INET6, SOCK_DGRAM, &sink6) >= 0 &&
		    setsockopt(sink6.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) >= 0)
			check(udp_send(&s[S_UDP6], &sink6, 100), "send 100 bytes from %s", sock_name[S_UDP6]);
		sock_close(&sink6);
	}
	acct_get(map, e->test_id, me, uid, &after);
	expect_acct_delta(&before, &after, 162, 1, 162, 1, "UDP/IPv6 datagram sent and received over a managed interface");

	/* Not a managed interface: nothing counted, for anyone. Tags cache
	 * the answer per interface until the generation changes (netbump.h). */
	del_iface(e, e->ifindex);
	bump_gen(e);
	tb = acct_total(map, &n_before);
	check(udp_send(&s[S_UDP4], &sink, 100), "send 100 bytes from %s (lo unmanaged)", sock_name[S_UDP4]);
	ta = acct_total(map, &n_after);
	expect_acct_delta(&tb, &ta, 0, 0, 0, 0, "datagram sent over an unmanaged interface (all owners)");
	r = get_tag(e, s[S_UDP4].fd, &t);
	check(r == 0 && t.acct_ifindex == e->ifindex && t.acct_managed == 0,
	      "the tag caches lo as unmanaged (err %d, acct_ifindex %u, acct_managed %u)", r, r ? 0 : t.acct_ifindex,
	      r ? 0 : t.acct_managed);
	set_iface(e, e->ifindex, FAKE_IFB_IFINDEX);
	bump_gen(e);
	acct_get(map, e->test_id, me, uid, &before);
	check(udp_send(&s[S_UDP4], &sink, 100), "send 100 bytes from %s (lo managed again)", sock_name[S_UDP4]);
	acct_get(map, e->test_id, me, uid, &after);
	expect_acct_delta(&before, &after, 142, 1, 142, 1, "datagram sent and received once the interface is managed again");

	/* A socket tagged on egress: its own owner entry with tgid 0. */
	acct_get(map, e->test_id, 0, 0, &before);
	check(udp_send(&s[S_UNTAGGED], &sink, 10), "send 10 bytes from %s", sock_name[S_UNTAGGED]);
	acct_get(map, e->test_id, 0, 0, &after);
	expect_acct_delta(&before, &after, 52, 1, 0, 0, "datagram from a socket tagged on egress (tgid 0, uid 0)");

	/* tc ingress classifies a download and counts nothing: it is counted
	 * when the socket receives it, after the shaper. */
	acct_get(map, e->test_id, me, uid, &before);
	(void)packet_to(pkt, sizeof(pkt), &s[S_UDP4]);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_TEST, "UDP 127.0.0.1 (accounting)");
	acct_get(map, e->test_id, me, uid, &after);
	expect_acct_delta(&before, &after, 0, 0, 0, 0, "UDP/IPv4 frame at tc ingress");

	/* Nor a GRO packet of 4 segments. */
	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, s[S_CLIENT4].port, s[S_TCP4].port, 0);
	acct_get(map, e->test_id, me, uid, &before);
	{
		struct run rr = prog_run_segs(e->skel->progs.nb_ingress, pkt, len, e->ifindex, 4, PAYLOAD_LEN / 4);

		check(rr.err == 0 && rr.retval == TC_ACT_REDIRECT, "ingress GRO TCP/IPv4 of 4 segments: redirect (err %d, retval %u)",
		      rr.err, rr.retval);
	}
	acct_get(map, e->test_id, me, uid, &after);
	expect_acct_delta(&before, &after, 0, 0, 0, 0, "TCP/IPv4 GRO frame of 4 segments at tc ingress");

	/* No socket on the port, or an unmanaged interface: nothing counted. */
	tb = acct_total(map, &n_before);
	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_UDP, REMOTE_PORT, s[S_CLIENT4].port, 0);
	expect_pass(e, pkt, len, "UDP/IPv4 to a port without socket (accounting)");
	del_iface(e, e->ifindex);
	expect_sock_pass(e, &s[S_UDP4], "UDP 127.0.0.1 on an unmanaged interface (accounting)");
	set_iface(e, e->ifindex, FAKE_IFB_IFINDEX);
	ta = acct_total(map, &n_after);
	expect_acct_delta(&tb, &ta, 0, 0, 0, 0, "frames to no socket or on an unmanaged interface (all owners)");
	check(n_before == n_after, "no owner entry made for them (%u entries, then %u)", n_before, n_after);

	/* Egress test runs: the dummy socket of a test run is allocated in our
	 * cgroup with uid 0 and no tag: tgid 0. A GSO TCP/IPv4 packet of 3
	 * segments counts 2 more copies of 14 + 20 + 20 bytes. */
	len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, REMOTE_PORT, REMOTE_PORT + 1, 0);
	acct_get(map, e->test_id, 0, 0, &before);
	{
		struct run rr = prog_run_segs(e->skel->progs.nb_egress, pkt, len, 0, 3, PAYLOAD_LEN / 3);

		check(rr.err == 0 && rr.retval == 1, "egress GSO TCP/IPv4 of 3 segments: allow (err %d, retval %u)",
		      rr.err, rr.retval);
	}
	acct_get(map, e->test_id, 0, 0, &after);
	expect_acct_delta(&before, &after, len + 2 * 54, 3, 0, 0, "TCP/IPv4 GSO packet of 3 segments sent");

	/* Accounting off (the load-time constant false): no tgid in tags, no
	 * counter, and the verifier dropped the code. */
	off = netbump_bpf__open();
	if (!check(off, "open a second copy of the BPF object"))
		goto out;
	off->rodata->nb_account = false;
	r = netbump_bpf__load(off);
	if (!check(r == 0, "load it with nb_account = false (%d)", r))
		goto out;
	{
		struct nb_iface v = { .ifb_ifindex = FAKE_IFB_IFINDEX };
		uint32_t k = e->ifindex;
		uint32_t on_len = prog_xlated_len(e->skel->progs.nb_egress);
		uint32_t off_len = prog_xlated_len(off->progs.nb_egress);
		struct run rr;

		bpf_map__update_elem(off->maps.ifaces, &k, sizeof(k), &v, sizeof(v), BPF_ANY);
		len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_UDP, REMOTE_PORT, REMOTE_PORT + 1, 0);
		rr = prog_run(off->progs.nb_egress, pkt, len, 0);
		check(rr.err == 0 && rr.retval == 1, "egress without accounting: allow (err %d, retval %u)", rr.err,
		      rr.retval);
		acct_total(off->maps.acct, &n_after);
		check(n_after == 0, "egress without accounting: no counter (%u entries)", n_after);
		check(off_len > 0 && off_len < on_len,
		      "nb_egress without accounting is shorter: %u bytes of instructions, %u with", off_len, on_len);
		on_len = prog_xlated_len(e->skel->progs.nb_ingress_acct);
		off_len = prog_xlated_len(off->progs.nb_ingress_acct);
		check(off_len > 0 && off_len < on_len,
		      "nb_ingress_acct without accounting is shorter: %u bytes of instructions, %u with", off_len, on_len);
	}
out:
	netbump_bpf__destroy(off);
	sock_close(&sink);
}

static int run_tests(struct env *e) {
	struct sock s[_S_MAX];
	unsigned lvl = e->mnt_level + 1; /* absolute level of the test cgroup */
	uid_t uid = getuid();
	int r;

	for (size_t i = 0; i < _S_MAX; i++)
		s[i].fd = -1;

	r = cgroup_enter(e->test);
	if (r < 0) {
		check(false, "move into %s: %s", e->test, strerror(-r));
		goto out;
	}
	e->moved = true;

	/* A socket from before the daemon: no tag until it sends. */
	r = sock_open(AF_INET, SOCK_DGRAM, &s[S_UNTAGGED]);
	if (r < 0)
		goto fail_sock;

	{
		/* The links hold the cgroup; the fd is only needed to attach. */
		_cleanup_close_ int cg = open(e->test, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		e->sock_create_link = cg < 0 ? NULL : bpf_program__attach_cgroup(e->skel->progs.nb_sock_create, cg);
		if (!e->sock_create_link) {
			check(false, "attach nb_sock_create to %s: %m", e->test);
			goto out;
		}
		e->egress_link = bpf_program__attach_cgroup(e->skel->progs.nb_egress, cg);
		if (!e->egress_link) {
			check(false, "attach nb_egress to %s: %m", e->test);
			goto out;
		}
		e->ingress_acct_link = bpf_program__attach_cgroup(e->skel->progs.nb_ingress_acct, cg);
		if (!e->ingress_acct_link) {
			check(false, "attach nb_ingress_acct to %s: %m", e->test);
			goto out;
		}
	}

	/* Created before any rule: classified "no class" at generation 0. */
	r = sock_open(AF_INET, SOCK_DGRAM, &s[S_EARLY]);
	if (r < 0)
		goto fail_sock;
	expect_tag(e, &s[S_EARLY], e->test_id, lvl, 0, 0, sock_name[S_EARLY]);
	expect_tag_cookie(e, &s[S_EARLY], sock_cookie(&s[S_EARLY]), 0, sock_name[S_EARLY]);
	{
		struct nb_sk_tag t;

		r = get_tag(e, s[S_UNTAGGED].fd, &t);
		check(r == -ENOENT, "no tag on a socket made before sock_create was attached (err %d)", r);
	}

	if (set_iface(e, e->ifindex, FAKE_IFB_IFINDEX) < 0 ||
	    set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN) < 0) {
		check(false, "fill maps: %m");
		goto out;
	}
	bump_gen(e);

	/* --- 1. cgroup rule, sockets made under it ----------------------------- */
	if ((r = sock_open(AF_INET, SOCK_DGRAM, &s[S_UDP4])) < 0 ||
	    (r = sock_open(AF_INET, SOCK_STREAM, &s[S_TCP4])) < 0 ||
	    (r = sock_open(AF_INET6, SOCK_DGRAM, &s[S_UDP6])) < 0 ||
	    (r = sock_open(AF_INET6, SOCK_STREAM, &s[S_TCP6])) < 0 ||
	    (r = sock_connect(&s[S_TCP4], &s[S_CLIENT4], &s[S_CHILD4])) < 0 ||
	    (r = sock_connect(&s[S_TCP6], &s[S_CLIENT6], &s[S_CHILD6])) < 0)
		goto fail_sock;

	expect_tag(e, &s[S_UDP4], e->test_id, lvl, MINOR_TEST, e->gen, sock_name[S_UDP4]);
	expect_tag(e, &s[S_TCP6], e->test_id, lvl, MINOR_TEST, e->gen, sock_name[S_TCP6]);
	/* BPF_F_CLONE: the accepted child carries the listener's tag. */
	expect_tag(e, &s[S_CHILD4], e->test_id, lvl, MINOR_TEST, e->gen, "accepted TCP child (cloned tag)");

	/* The cookie (SO_COOKIE) of every socket made after sock_create was
	 * attached; the accepted child has not sent yet, so its cloned tag
	 * still holds its listener's. */
	expect_tag_cookie(e, &s[S_UDP4], sock_cookie(&s[S_UDP4]), 0, sock_name[S_UDP4]);
	expect_tag_cookie(e, &s[S_TCP6], sock_cookie(&s[S_TCP6]), 0, sock_name[S_TCP6]);
	expect_tag_cookie(e, &s[S_CLIENT4], sock_cookie(&s[S_CLIENT4]), 0, sock_name[S_CLIENT4]);
	expect_tag_cookie(e, &s[S_CHILD4], sock_cookie(&s[S_TCP4]), 0,
	                  "accepted TCP child before it sent (cloned tag: the listener's cookie)");

	for (int i = S_UDP4; i <= S_TCP6; i++)
		expect_sock_redirect(e, &s[i], MINOR_TEST, sock_name[i]);

	{
		uint8_t pkt[256];
		size_t len;

		/* Established flows: client -> accepted child, child -> client. */
		len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, s[S_CLIENT4].port, s[S_TCP4].port, 0);
		expect_redirect(e, pkt, len, MINOR_TEST, "TCP/IPv4 to the accepted child");
		len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_TCP, s[S_TCP4].port, s[S_CLIENT4].port, 0);
		expect_redirect(e, pkt, len, MINOR_TEST, "TCP/IPv4 to the client");
		len = packet_build(pkt, sizeof(pkt), AF_INET6, IPPROTO_TCP, s[S_CLIENT6].port, s[S_TCP6].port, 0);
		expect_redirect(e, pkt, len, MINOR_TEST, "TCP/IPv6 to the accepted child");

		/* No socket on the port (the client's port over UDP has none). */
		len = packet_build(pkt, sizeof(pkt), AF_INET, IPPROTO_UDP, REMOTE_PORT, s[S_CLIENT4].port, 0);
		expect_pass(e, pkt, len, "UDP/IPv4 to a port without socket");
		len = packet_build(pkt, sizeof(pkt), AF_INET6, IPPROTO_TCP, REMOTE_PORT, s[S_UDP6].port, 0);
		expect_pass(e, pkt, len, "TCP/IPv6 to a port without socket");
	}

	/* The tag of the early socket is stale (gen 0): ingress re-classifies
	 * it from the stored ancestry and writes the result back. */
	expect_sock_redirect(e, &s[S_EARLY], MINOR_TEST, sock_name[S_EARLY]);
	expect_tag(e, &s[S_EARLY], e->test_id, lvl, MINOR_TEST, e->gen, "UDP made before the rule, after ingress");

	expect_sock_pass(e, &s[S_UNTAGGED], sock_name[S_UNTAGGED]);

	/* Once it sends, the real cgroup_skb egress hook (attached to the test
	 * cgroup) gives it a tag from the skb's socket: ancestry, uid, class.
	 * One datagram over lo, inside our private namespace. */
	{
		struct sockaddr_storage ss;
		socklen_t sl;

		if (sockaddr_make(AF_INET, "127.0.0.1", s[S_UDP4].port, &ss, &sl) < 0 ||
		    sendto(s[S_UNTAGGED].fd, "x", 1, 0, (struct sockaddr *)&ss, sl) != 1)
			check(false, "send from %s: %m", sock_name[S_UNTAGGED]);
		expect_tag(e, &s[S_UNTAGGED], e->test_id, lvl, MINOR_TEST, e->gen,
		           "UDP made before sock_create was attached, after sending (egress hook)");
		expect_tag_cookie(e, &s[S_UNTAGGED], sock_cookie(&s[S_UNTAGGED]), 0,
		                  "UDP made before sock_create was attached, after sending (egress hook)");
		expect_sock_redirect(e, &s[S_UNTAGGED], MINOR_TEST, "UDP made before sock_create, after sending");
	}

	/* An interface that is not in ifaces is not ours. */
	del_iface(e, e->ifindex);
	expect_sock_pass(e, &s[S_UDP4], "UDP 127.0.0.1 on an unmanaged interface");
	set_iface(e, e->ifindex, FAKE_IFB_IFINDEX);

	/* Upload-only rule: downloads are not redirected. */
	set_cgroup_rule(e, e->test_id, MINOR_UPONLY, NB_F_UP);
	bump_gen(e);
	expect_sock_pass(e, &s[S_UDP4], "UDP 127.0.0.1, rule NB_F_UP only");
	expect_sock_pass(e, &s[S_TCP6], "TCP listener ::1, rule NB_F_UP only");

	/* --- 2. uid rules, precedence ------------------------------------------- */
	del_cgroup_rule(e, e->test_id);
	set_uid_rule(e, uid, MINOR_UID, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_UID, "UDP 127.0.0.1, uid rule only");
	expect_sock_redirect(e, &s[S_TCP6], MINOR_UID, "TCP listener ::1, uid rule only");

	set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_UDP4], MINOR_TEST, "UDP 127.0.0.1, cgroup rule beats uid rule");

	/* Deepest cgroup wins: sockets made in the child cgroup. */
	r = cgroup_enter(e->child);
	if (r < 0) {
		check(false, "move into %s: %s", e->child, strerror(-r));
		goto out;
	}
	if ((r = sock_open(AF_INET, SOCK_DGRAM, &s[S_KID_UDP4])) < 0 ||
	    (r = sock_open(AF_INET6, SOCK_STREAM, &s[S_KID_TCP6])) < 0)
		goto fail_sock;
	r = cgroup_enter(e->test);
	if (r < 0) {
		check(false, "move back into %s: %s", e->test, strerror(-r));
		goto out;
	}
	expect_tag(e, &s[S_KID_UDP4], e->child_id, lvl + 1, MINOR_TEST, e->gen, sock_name[S_KID_UDP4]);

	/* Only the parent has a rule: the child's sockets fall under it. */
	expect_sock_redirect(e, &s[S_KID_UDP4], MINOR_TEST, "UDP in the child cgroup, rule on the parent");
	set_cgroup_rule(e, e->child_id, MINOR_CHILD, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_sock_redirect(e, &s[S_KID_UDP4], MINOR_CHILD, "UDP in the child cgroup, rules on parent and child");
	expect_sock_redirect(e, &s[S_KID_TCP6], MINOR_CHILD, "TCP ::1 in the child cgroup, rules on parent and child");
	expect_sock_redirect(e, &s[S_UDP4], MINOR_TEST, "UDP in the parent cgroup, rules on parent and child");

	/* A rule with minor 0 on the child exempts it from the parent's. */
	set_cgroup_rule(e, e->child_id, 0, 0);
	bump_gen(e);
	expect_sock_pass(e, &s[S_KID_UDP4], "UDP in the child cgroup, child exempt (minor 0)");
	expect_sock_redirect(e, &s[S_UDP4], MINOR_TEST, "UDP in the parent cgroup, child exempt");

	/* --- 3. egress ---------------------------------------------------------------
	 * The test run gives the skb a dummy socket allocated in our current
	 * cgroup (the test cgroup) with uid 0 and no tag: this exercises the
	 * "socket from before the daemon" path, filling the tag from the skb. */
	set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	expect_egress(e, MINOR_TEST, "cgroup rule up+down");
	set_cgroup_rule(e, e->test_id, MINOR_UPONLY, NB_F_UP);
	bump_gen(e);
	expect_egress(e, MINOR_UPONLY, "cgroup rule up only");
	set_cgroup_rule(e, e->test_id, MINOR_DOWNONLY, NB_F_DOWN);
	bump_gen(e);
	expect_egress(e, 0, "cgroup rule down only");
	del_cgroup_rule(e, e->test_id);
	bump_gen(e);
	if (uid == 0)
		expect_egress(e, MINOR_UID, "uid rule only (the dummy socket's uid is 0)");
	del_uid_rule(e, uid);
	bump_gen(e);
	expect_egress(e, 0, "no rule");

	set_cgroup_rule(e, e->test_id, MINOR_TEST, NB_F_UP | NB_F_DOWN);
	set_cgroup_rule(e, e->child_id, MINOR_CHILD, NB_F_UP | NB_F_DOWN);
	bump_gen(e);
	r = cgroup_enter(e->child);
	if (r < 0) {
		check(false, "move into %s: %s", e->child, strerror(-r));
		goto out;
	}
	expect_egress(e, MINOR_CHILD, "in the child cgroup, rules on parent and child");
	r = cgroup_enter(e->test);
	if (r < 0) {
		check(false, "move back into %s: %s", e->test, strerror(-r));
		goto out;
	}
	expect_egress(e, MINOR_TEST, "in the parent cgroup, rules on parent and child");

	/* --- 3b. remote scopes ------------------------------------------------------------ */
	test_scopes(e, &s[S_UDP4], &s[S_UDP6]);

	/* --- 4. malformed packets ------------------------------------------------------ */
	test_malformed(e, &s[S_UDP4], &s[S_TCP4], &s[S_UDP6]);

	/* --- 5. fragments and IPv6 extension headers ------------------------------------- */
	test_fragments(e, &s[S_UDP4], &s[S_UDP6], &s[S_KID_UDP4]);
	test_exthdrs(e, &s[S_TCP6], &s[S_UDP6]);

	/* --- 6. socket rules ------------------------------------------------------------- */
	test_sock_rules(e, s);

	/* --- 7. ICMP and other protocols ------------------------------------------------- */
	test_other_protos(e);

	/* --- 8. per-process accounting ---------------------------------------------------- */
	test_accounting(e, s);

	/* --- 9. socket release ------------------------------------------------------------ */
	test_release(e, s);
	goto out;

fail_sock:
	check(false, "open test sockets: %s", strerror(-r));
out:
	for (size_t i = 0; i < _S_MAX; i++)
		sock_close(&s[i]);
	return 0;
}

int main(void) {
	struct env e = { .prio_map_fd = -1, .prio_prog_fd = -1 };
	char mnt_root[PATH_MAX], own[PATH_MAX];
	int r;

	if (geteuid() != 0)
		return skip("needs root (BPF, cgroups, network namespaces)");

	libbpf_set_print(libbpf_print);

	r = find_cgroup2(e.mnt, sizeof(e.mnt), mnt_root, sizeof(mnt_root));
	if (r < 0)
		return skip("no cgroup2 mount found in /proc/self/mountinfo: %s", strerror(-r));
	r = own_cgroup(mnt_root, own, sizeof(own));
	if (r < 0)
		return skip("cannot find our cgroup2 path in /proc/self/cgroup: %s", strerror(-r));
	e.mnt_level = path_depth(mnt_root);
	if ((size_t)snprintf(e.orig, sizeof(e.orig), "%s%s", e.mnt, own) >= sizeof(e.orig) ||
	    (size_t)snprintf(e.test, sizeof(e.test), "%s/netbump-test-datapath.%d", e.mnt, getpid()) >= sizeof(e.test) ||
	    (size_t)snprintf(e.child, sizeof(e.child), "%s/child", e.test) >= sizeof(e.child))
		return skip("cgroup paths too long under %s", e.mnt);

	if (unshare(CLONE_NEWNET) < 0)
		return skip("cannot make a network namespace: %m");
	r = loopback_up();
	if (r < 0) {
		fprintf(stderr, "Failed to bring lo up: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	e.ifindex = if_nametoindex("lo");
	if (e.ifindex == 0) {
		fprintf(stderr, "No lo in the new namespace: %m\n");
		return EXIT_FAILURE;
	}

	e.skel = netbump_bpf__open_and_load();
	if (!e.skel) {
		r = -errno;
		if (r == -EPERM)
			return skip("cannot load BPF programs: %s", strerror(-r));
		fprintf(stderr, "Failed to load the BPF object: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}

	r = cgroup_make(e.test, &e.test_id);
	if (r < 0) {
		fprintf(stderr, "Failed to create %s: %s\n", e.test, strerror(-r));
		env_teardown(&e);
		return EXIT_FAILURE;
	}
	e.test_made = true;
	r = cgroup_make(e.child, &e.child_id);
	if (r < 0) {
		fprintf(stderr, "Failed to create %s: %s\n", e.child, strerror(-r));
		env_teardown(&e);
		return EXIT_FAILURE;
	}
	e.child_made = true;
	printf("cgroup2 at %s, test cgroup %s (id %llu), child id %llu, lo ifindex %u\n", e.mnt, e.test,
	       (unsigned long long)e.test_id, (unsigned long long)e.child_id, e.ifindex);

	run_tests(&e);
	env_teardown(&e);

	if (n_refused > 0)
		printf("%u case(s) refused by the kernel's test run, see the notes above\n", n_refused);
	printf("%u passed, %u failed\n", n_passed, n_failed);
	return n_failed == 0 && n_passed > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
