/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What scope matching (bpf/scope.bpf.h) adds to one packet: nb_ingress
 * through BPF_PROG_TEST_RUN on a UDP frame for a tagged socket whose user
 * has a scoped rule of N CIDRs (N = 1, 100, 10000 host routes in one LPM
 * trie scope), against the same with no scoped rule (nb_scope_kinds 0).
 *
 *   cached: the same remote on every packet, the per-socket cache answers
 *           (a TCP or connected UDP socket): repeat runs, the kernel's mean;
 *   walk:   the remote changes on every packet (an unconnected socket
 *           talking to many peers), so every packet walks the rules and the
 *           trie: one run at a time, the remote alternating between an
 *           address in the scope and one outside, the mean of the runs'
 *           durations; "none" timed the same way for the difference.
 *
 * Private network namespace and cgroup (removed at the end); only
 * nb_sock_create is attached, to that cgroup. Root needed.
 *
 *   scope-cost [REPEAT]    prints one JSON object
 * Built and run by bench/scope.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <netbump/netbump.h>
#include "netbump.skel.h"

#define SID 5u

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int write_str(const char *path, const char *s) {
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		r = -errno;
	close(fd);
	return r;
}

static int cgroup2_mount(char *buf, size_t size) {
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

/* A UDP frame from saddr:40000 to port on 127.0.0.1, 64 bytes of payload. */
static size_t udp_frame(uint8_t *buf, size_t size, uint32_t saddr, uint16_t port) {
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

/* Mean ns per run over repeat runs, the best of 5 loops. */
static double time_repeat(int prog, const void *pkt, size_t len, uint32_t ifindex, uint32_t repeat) {
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

/* Mean ns of n single runs, the remote alternating between a and b. */
static double time_alternating(int prog, uint8_t *pkt, size_t len, uint32_t ifindex, uint32_t a, uint32_t b,
			       uint32_t n) {
	struct __sk_buff skb = { .ifindex = ifindex };
	struct iphdr *ip = (void *)(pkt + sizeof(struct ethhdr));
	double sum = 0;

	for (uint32_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len, .ctx_in = &skb,
			    .ctx_size_in = sizeof(skb), .repeat = 1);

		ip->saddr = i % 2 ? b : a;
		if (bpf_prog_test_run_opts(prog, &opts) < 0)
			return -1;
		sum += opts.duration;
	}
	return sum / n;
}

static int load_cidrs(struct netbump_bpf *skel, unsigned n) {
	for (unsigned i = 0; i < n; i++) {
		/* 198.18.0.1 .. : host routes in the benchmarking range */
		struct nb_scope_lpm_key k = { .prefixlen = 32 + 128, .sid = htonl(SID),
					      .addr = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 18 + (uint8_t)((i + 1) >> 16),
							[14] = (uint8_t)((i + 1) >> 8), [15] = (uint8_t)(i + 1) } };
		uint32_t v = 128;

		if (bpf_map__update_elem(skel->maps.scope_cidrs, &k, sizeof(k), &v, sizeof(v), BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

int main(int argc, char *argv[]) {
	static const unsigned sizes[] = { 1, 100, 10000 };
	uint32_t repeat = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
	uint32_t singles = repeat / 10 ? repeat / 10 : 1;
	char mnt[1024], cg[1200], procs[1300], pid[32], orig[1100];
	struct netbump_bpf *skel = NULL;
	struct bpf_link *link = NULL;
	struct nb_iface iface = { .ifb_ifindex = 4242 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	uint32_t lo, uid = getuid(), in_addr, out_addr;
	struct nb_class cls = { .minor = 0x10, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST };
	double none_cached, none_single, cached[3], walk[3];
	int cgfd = -1, s = -1, ret = 1, fd, prog;
	uint8_t pkt[256];
	size_t len;
	struct ifreq ifr = {};

	libbpf_set_print(libbpf_quiet);
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
	if (cgroup2_mount(mnt, sizeof(mnt)) < 0) {
		fprintf(stderr, "no cgroup2\n");
		return 77;
	}
	snprintf(cg, sizeof(cg), "%s/netbump-scope-cost.%d", mnt, getpid());
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(orig, sizeof(orig), "%s/cgroup.procs", mnt);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (mkdir(cg, 0755) < 0) {
		perror(cg);
		return 1;
	}
	cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	lo = if_nametoindex("lo");
	inet_pton(AF_INET, "198.18.0.1", &in_addr);
	inet_pton(AF_INET, "198.19.255.254", &out_addr);

	skel = netbump_bpf__open();
	if (!skel || netbump_bpf__load(skel) < 0)
		goto out;
	prog = bpf_program__fd(skel->progs.nb_ingress);
	bpf_map__update_elem(skel->maps.ifaces, &lo, sizeof(lo), &iface, sizeof(iface), BPF_ANY);
	bpf_map__update_elem(skel->maps.uid_rules, &uid, sizeof(uid), &cls, sizeof(cls), BPF_ANY);
	skel->bss->nb_rules_gen = 1;
	link = bpf_program__attach_cgroup(skel->progs.nb_sock_create, cgfd);
	if (!link || write_str(procs, pid) < 0)
		goto out;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(s, (struct sockaddr *)&sa, &sl) < 0)
		goto out;
	write_str(orig, pid);
	bpf_link__destroy(link);
	link = NULL;
	len = udp_frame(pkt, sizeof(pkt), in_addr, ntohs(sa.sin_port));

	none_cached = time_repeat(prog, pkt, len, lo, repeat);
	none_single = time_alternating(prog, pkt, len, lo, in_addr, out_addr, singles);

	for (size_t k = 0; k < 3; k++) {
		struct nb_scope_key key = { .key = uid, .kind = NB_SCOPE_KIND_UID };
		struct nb_scope_set set = { .n = 1, .e = { { .sid = SID, .cls = { .minor = 0x11, .flags = cls.flags } } } };

		if (load_cidrs(skel, sizes[k]) < 0 ||
		    bpf_map__update_elem(skel->maps.scope_keys, &key, sizeof(key), &set, sizeof(set), BPF_ANY) < 0)
			goto out;
		skel->bss->nb_scope_kinds = 1u << NB_SCOPE_KIND_UID;
		skel->bss->nb_rules_gen++;
		udp_frame(pkt, sizeof(pkt), in_addr, ntohs(sa.sin_port));
		cached[k] = time_repeat(prog, pkt, len, lo, repeat);
		walk[k] = time_alternating(prog, pkt, len, lo, in_addr, out_addr, singles);
	}
	printf("{\"repeat\": %u, \"singles\": %u, \"none\": {\"cached_ns\": %.1f, \"single_ns\": %.1f}, \"scoped\": [", repeat,
	       singles, none_cached, none_single);
	for (size_t k = 0; k < 3; k++)
		printf("%s{\"cidrs\": %u, \"cached_ns\": %.1f, \"walk_ns\": %.1f}", k ? ", " : "", sizes[k], cached[k], walk[k]);
	printf("]}\n");
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "scope-cost: setup failed: %s\n", strerror(errno));
	if (s >= 0)
		close(s);
	bpf_link__destroy(link);
	netbump_bpf__destroy(skel);
	if (cgfd >= 0)
		close(cgfd);
	write_str(orig, pid);
	rmdir(cg);
	return ret;
}
