/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BPF_PROG_TEST_RUN harness of bench/scope-cost.c and bench/acct-cost.c:
 * a private network namespace with lo up and a private cgroup (removed at
 * the end), a UDP socket tagged by a skeleton's nb_sock_create as in real
 * use, a UDP frame for it, and the kernel's timing of a program's runs.
 * Root needed.
 */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

typedef struct Bench {
	char mnt[1024];   /* where cgroup2 is mounted */
	char cg[1200];    /* the private cgroup */
	char procs[1300]; /* ... its cgroup.procs */
	char orig[1100];  /* the mount's cgroup.procs, where the process goes back */
	char pid[32];
	int cgfd;
} Bench;

static int bench_libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static inline int bench_write_str(const char *path, const char *s) {
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		r = -errno;
	close(fd);
	return r;
}

static inline int bench_cgroup2_mount(char *buf, size_t size) {
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char root[1024], mnt[1024], fstype[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) == 2 && strcmp(root, "/") == 0) {
			snprintf(buf, size, "%s", mnt);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

/* The namespace and the cgroup <mount>/netbump-NAME.PID: 0, else the exit
 * status (77: cannot, skipped). */
static inline int bench_setup(Bench *b, const char *name) {
	struct ifreq ifr = {};
	int fd;

	*b = (Bench){ .cgfd = -1 };
	libbpf_set_print(bench_libbpf_quiet);
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare");
		return 77;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)) {
		perror("lo up");
		return 1;
	}
	close(fd);
	if (bench_cgroup2_mount(b->mnt, sizeof(b->mnt)) < 0) {
		fprintf(stderr, "no cgroup2\n");
		return 77;
	}
	snprintf(b->cg, sizeof(b->cg), "%s/netbump-%s.%d", b->mnt, name, getpid());
	snprintf(b->procs, sizeof(b->procs), "%s/cgroup.procs", b->cg);
	snprintf(b->orig, sizeof(b->orig), "%s/cgroup.procs", b->mnt);
	snprintf(b->pid, sizeof(b->pid), "%d", getpid());
	if (mkdir(b->cg, 0755) < 0) {
		perror(b->cg);
		return 1;
	}
	b->cgfd = open(b->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return 0;
}

/* A UDP socket bound on 127.0.0.1, made in the private cgroup with
 * sock_create attached there (and only then): tagged as in real use. The
 * socket, its address in *ret_sa; -errno on failure. */
static inline int bench_tagged_socket(Bench *b, struct bpf_program *sock_create, struct sockaddr_in *ret_sa) {
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct bpf_link *link;
	int s = -EIO;

	link = bpf_program__attach_cgroup(sock_create, b->cgfd);
	if (!link || bench_write_str(b->procs, b->pid) < 0) {
		bpf_link__destroy(link);
		return -errno;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(s, (struct sockaddr *)&sa, &sl) < 0) {
		int r = -errno;
		if (s >= 0)
			close(s);
		s = r;
	}
	bench_write_str(b->orig, b->pid);
	bpf_link__destroy(link);
	if (s >= 0)
		*ret_sa = sa;
	return s;
}

static inline void bench_cleanup(Bench *b) {
	if (b->cgfd >= 0)
		close(b->cgfd);
	b->cgfd = -1;
	if (b->cg[0]) {
		bench_write_str(b->orig, b->pid);
		rmdir(b->cg);
	}
}

/* A UDP frame from saddr:40000 to port on 127.0.0.1, 64 bytes of payload. */
static inline size_t bench_udp_frame(uint8_t *buf, size_t size, uint32_t saddr, uint16_t port) {
	struct ethhdr *eth = (void *)buf;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *uh = (void *)(ip + 1);
	size_t len = sizeof(*eth) + sizeof(*ip) + sizeof(*uh) + 64;

	if (len > size)
		return 0;
	memset(buf, 0, len);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(len - sizeof(*eth));
	ip->saddr = saddr;
	ip->daddr = htonl(INADDR_LOOPBACK);
	uh->source = htons(40000);
	uh->dest = htons(port);
	uh->len = htons(len - sizeof(*eth) - sizeof(*ip));
	return len;
}

/* Mean ns per run of the program prog over repeat runs, -1 on error: the
 * best of 5 loops, the least disturbed by the rest of the machine. */
static inline double bench_time_repeat(int prog, const void *pkt, size_t len, uint32_t ifindex, uint32_t repeat) {
	struct __sk_buff skb = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len, .ctx_in = &skb,
		    .ctx_size_in = sizeof(skb), .repeat = repeat);
	double best = -1;

	for (int k = 0; k < 5; k++) {
		if (bpf_prog_test_run_opts(prog, &opts) < 0)
			return -1;
		if (best < 0 || opts.duration < best)
			best = opts.duration;
	}
	return best;
}
