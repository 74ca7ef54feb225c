/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the per-process accounting adds to one packet: nb_egress and
 * nb_ingress run through BPF_PROG_TEST_RUN with repeat (the kernel times the
 * loop and reports the mean), loaded twice, with nb_account true and false.
 *
 * Private network namespace and cgroup (bench/test-run.h); nb_sock_create is
 * attached to that cgroup only, so the UDP socket made there has a tag with
 * its creator, as in real use; nothing else is attached. Root needed.
 *
 *   acct-cost [REPEAT]    prints one JSON object
 * Built and run by bench/accounting.sh.
 */
#include <stdint.h>
#include <stdlib.h>

#include <netbump/netbump.h>
#include "netbump.skel.h"
#include "test-run.h"

int main(int argc, char *argv[]) {
	uint32_t repeat = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
	struct netbump_bpf *skel[2] = {};
	double eg[2] = { -1, -1 }, eg_unmanaged[2] = { -1, -1 }, in[2] = { -1, -1 };
	int s[2] = { -1, -1 }, ret;
	uint8_t pkt[256];
	size_t len;
	Bench b;

	ret = bench_setup(&b, "acct-cost");
	if (ret)
		return ret;
	ret = 1;
	for (int v = 0; v < 2; v++) {
		struct nb_iface iface = { .ifb_ifindex = 4242 };
		uint32_t lo = if_nametoindex("lo");
		struct sockaddr_in sa;

		skel[v] = netbump_bpf__open();
		if (!skel[v])
			goto out;
		skel[v]->rodata->nb_account = v == 1;
		if (netbump_bpf__load(skel[v]) < 0)
			goto out;
		bpf_map__update_elem(skel[v]->maps.ifaces, &lo, sizeof(lo), &iface, sizeof(iface), BPF_ANY);
		skel[v]->bss->nb_rules_gen = 1;

		/* A socket tagged by this copy's sock_create. */
		s[v] = bench_tagged_socket(&b, skel[v]->progs.nb_sock_create, &sa);
		if (s[v] < 0) {
			errno = -s[v];
			goto out;
		}

		len = bench_udp_frame(pkt, sizeof(pkt), htonl(INADDR_LOOPBACK), ntohs(sa.sin_port));
		/* egress: the test run's own socket, on lo (managed) and on an
		 * ifindex that is not in ifaces */
		eg[v] = bench_time_repeat(bpf_program__fd(skel[v]->progs.nb_egress), pkt, len, 0, repeat);
		bpf_map__delete_elem(skel[v]->maps.ifaces, &lo, sizeof(lo), 0);
		eg_unmanaged[v] = bench_time_repeat(bpf_program__fd(skel[v]->progs.nb_egress), pkt, len, 0, repeat);
		bpf_map__update_elem(skel[v]->maps.ifaces, &lo, sizeof(lo), &iface, sizeof(iface), BPF_ANY);
		/* ingress: a frame for the tagged socket */
		in[v] = bench_time_repeat(bpf_program__fd(skel[v]->progs.nb_ingress), pkt, len, lo, repeat);
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
		netbump_bpf__destroy(skel[v]);
	}
	bench_cleanup(&b);
	return ret;
}
