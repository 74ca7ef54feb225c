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
 * Private network namespace and cgroup (bench/test-run.h); only
 * nb_sock_create is attached, to that cgroup. Root needed.
 *
 *   scope-cost [REPEAT]    prints one JSON object
 * Built and run by bench/scope.sh.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <netbump/netbump.h>
#include "netbump.skel.h"
#include "test-run.h"

#define SID 5u

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
	struct netbump_bpf *skel = NULL;
	struct nb_iface iface = { .ifb_ifindex = 4242 };
	struct sockaddr_in sa;
	uint32_t lo, uid = getuid(), in_addr, out_addr;
	struct nb_class cls = { .minor = 0x10, .flags = NB_F_UP | NB_F_DOWN | NB_F_SPLIT | NB_F_SMALL_FIRST };
	double none_cached, none_single, cached[3], walk[3];
	int s = -1, ret, prog;
	uint8_t pkt[256];
	size_t len;
	Bench b;

	ret = bench_setup(&b, "scope-cost");
	if (ret)
		return ret;
	ret = 1;
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
	s = bench_tagged_socket(&b, skel->progs.nb_sock_create, &sa);
	if (s < 0) {
		errno = -s;
		goto out;
	}
	len = bench_udp_frame(pkt, sizeof(pkt), in_addr, ntohs(sa.sin_port));

	none_cached = bench_time_repeat(prog, pkt, len, lo, repeat);
	none_single = time_alternating(prog, pkt, len, lo, in_addr, out_addr, singles);

	for (size_t k = 0; k < 3; k++) {
		struct nb_scope_key key = { .key = uid, .kind = NB_SCOPE_KIND_UID };
		struct nb_scope_set set = { .n = 1, .e = { { .sid = SID, .cls = { .minor = 0x11, .flags = cls.flags } } } };

		if (load_cidrs(skel, sizes[k]) < 0 ||
		    bpf_map__update_elem(skel->maps.scope_keys, &key, sizeof(key), &set, sizeof(set), BPF_ANY) < 0)
			goto out;
		skel->bss->nb_scope_kinds = 1u << NB_SCOPE_KIND_UID;
		skel->bss->nb_rules_gen++;
		bench_udp_frame(pkt, sizeof(pkt), in_addr, ntohs(sa.sin_port));
		cached[k] = bench_time_repeat(prog, pkt, len, lo, repeat);
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
	netbump_bpf__destroy(skel);
	bench_cleanup(&b);
	return ret;
}
