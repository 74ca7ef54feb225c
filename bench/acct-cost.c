/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the per-process accounting adds to one packet: nb_egress and
 * nb_ingress run through BPF_PROG_TEST_RUN with repeat (the kernel times the
 * loop and reports the mean), loaded twice, with nb_account true and false.
 *
 * Private network namespace and cgroup (removed at the end); nb_sock_create is
 * attached to that cgroup only, so the UDP socket made there has a tag with
 * its creator, as in real use; nothing else is attached. Root needed.
 *
 *   acct-cost [REPEAT]    prints one JSON object
 * Built and run by bench/accounting.sh.
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

/* A UDP frame from 127.0.0.1:40000 to port on 127.0.0.1, 64 bytes of payload. */
static size_t udp_frame(uint8_t *buf, size_t size, uint16_t port) {
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
	ip->saddr = ip->daddr = htonl(INADDR_LOOPBACK);
	uh->source = htons(40000);
	uh->dest = htons(port);
	uh->len = htons(len - sizeof(*eth) - sizeof(*ip));
	return len;
}

/* Mean ns per run of prog over repeat runs, -1 on error. */
static double time_prog(const struct bpf_program *prog, const void *pkt, size_t len, uint32_t ifindex, uint32_t repeat) {
	struct __sk_buff skb = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len, .ctx_in = &skb,
		    .ctx_size_in = sizeof(skb), .repeat = repeat);
	double best = -1;

	/* The best of a few loops: the least disturbed by the rest of the machine. */
	for (int k = 0; k < 5; k++) {
		if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts) < 0)
			return -1;
		if (best < 0 || opts.duration < best)
			best = opts.duration;
	}
	return best;
}

int main(int argc, char *argv[]) {
	uint32_t repeat = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
	char mnt[1024], cg[1200], procs[1300], pid[32];
	struct netbump_bpf *skel[2] = {};
	struct bpf_link *link[2] = {};
	double eg[2] = { -1, -1 }, eg_unmanaged[2] = { -1, -1 }, in[2] = { -1, -1 };
	int cgfd = -1, s[2] = { -1, -1 }, ret = 1;
	uint8_t pkt[256];
	size_t len;
	struct ifreq ifr = {};
	int fd;

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
	snprintf(cg, sizeof(cg), "%s/netbump-acct-cost.%d", mnt, getpid());
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (mkdir(cg, 0755) < 0) {
		perror(cg);
		return 1;
	}
	cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (int v = 0; v < 2; v++) {
		struct nb_iface iface = { .ifb_ifindex = 4242 };
		uint32_t lo = if_nametoindex("lo");
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t sl = sizeof(sa);

		skel[v] = netbump_bpf__open();
		if (!skel[v])
			goto out;
		skel[v]->rodata->nb_account = v == 1;
		if (netbump_bpf__load(skel[v]) < 0)
			goto out;
		bpf_map__update_elem(skel[v]->maps.ifaces, &lo, sizeof(lo), &iface, sizeof(iface), BPF_ANY);
		skel[v]->bss->nb_rules_gen = 1;

		/* A socket made in the private cgroup with this copy's
		 * sock_create attached: tagged as in real use. */
		link[v] = bpf_program__attach_cgroup(skel[v]->progs.nb_sock_create, cgfd);
		if (!link[v] || write_str(procs, pid) < 0)
			goto out;
		s[v] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s[v] < 0 || bind(s[v], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(s[v], (struct sockaddr *)&sa, &sl) < 0)
			goto out;
		{
			char orig[1100];
			snprintf(orig, sizeof(orig), "%s/cgroup.procs", mnt);
			write_str(orig, pid);
		}
		bpf_link__destroy(link[v]);
		link[v] = NULL;

		len = udp_frame(pkt, sizeof(pkt), ntohs(sa.sin_port));
		/* egress: the test run's own socket, on lo (managed) and on an
		 * ifindex that is not in ifaces */
		eg[v] = time_prog(skel[v]->progs.nb_egress, pkt, len, 0, repeat);
		bpf_map__delete_elem(skel[v]->maps.ifaces, &lo, sizeof(lo), 0);
		eg_unmanaged[v] = time_prog(skel[v]->progs.nb_egress, pkt, len, 0, repeat);
		bpf_map__update_elem(skel[v]->maps.ifaces, &lo, sizeof(lo), &iface, sizeof(iface), BPF_ANY);
		/* ingress: a frame for the tagged socket */
		in[v] = time_prog(skel[v]->progs.nb_ingress, pkt, len, lo, repeat);
	}
	printf("{\"repeat\": %u, \"egress_ns\": {\"off\": %.1f, \"on\": %.1f}, "
	       "\"egress_unmanaged_ns\": {\"off\": %.1f, \"on\": %.1f}, \"ingress_ns\": {\"off\": %.1f, \"on\": %.1f}}\n",
	       repeat, eg[0], eg[1], eg_unmanaged[0], eg_unmanaged[1], in[0], in[1]);
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "acct-cost: setup failed: %s\n", strerror(errno));
	for (int v = 0; v < 2; v++) {
		if (s[v] >= 0)
			close(s[v]);
		bpf_link__destroy(link[v]);
		netbump_bpf__destroy(skel[v]);
	}
	if (cgfd >= 0)
		close(cgfd);
	rmdir(cg);
	return ret;
}
