/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * TCP and UDP sockets of our network namespace through NETLINK_SOCK_DIAG
 * (inet_diag, sock_diag(7)): inode, socket cookie, owner uid and cgroup.
 *
 * Works without privileges: inet_diag dumps every socket of the caller's
 * network namespace to anyone (that is how ss(8) runs as a user); only
 * extras we do not ask for (INET_DIAG_MARK, ...) need CAP_NET_ADMIN.
 *
 * What the kernel cannot show: a socket that is in no hash table. A TCP
 * socket that is neither bound, listening nor connected, and a UDP socket
 * that is not bound yet (no explicit bind(), no connect(), nothing sent) are
 * invisible, so sock_diag_find_inode() gives -ENOENT for them. A TCP socket
 * that is only bound shows (as TCP_CLOSE) on kernels that dump
 * TCP_BOUND_INACTIVE sockets, which we ask for with all state bits; older
 * kernels do not show it. Nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct sock_info {
	/* idiag_cookie[0] | (uint64_t) idiag_cookie[1] << 32: the kernel splits
	 * sock_gen_cookie() low word first (sock_diag_save_cookie()), so this is
	 * the value of getsockopt(SO_COOKIE) and bpf_get_socket_cookie(). */
	uint64_t cookie;
	/* The sockfs inode, as in "socket:[N]" and fstat()'s st_ino; 0 for
	 * TIME_WAIT and SYN_RECV mini-sockets, which have no file. */
	uint64_t inode;
	/* sk_uid (the creator's fsuid) as seen from our user namespace. */
	uint32_t uid;
	/* The cgroup v2 id of the task that created the socket (an accepted
	 * socket inherits its listener's): INET_DIAG_CGROUP_ID, which kernels
	 * with CONFIG_SOCK_CGROUP_DATA send unasked (there is no idiag_ext bit
	 * for it: it is attribute 21 and idiag_ext has 8 bits). 0 when the
	 * kernel does not send it. */
	uint64_t cgroup_id;
	uint8_t family;   /* AF_INET / AF_INET6 */
	uint8_t protocol; /* IPPROTO_TCP / IPPROTO_UDP */
	/* TCP_* state from <netinet/tcp.h>. UDP uses two of them too:
	 * TCP_CLOSE (7) when unconnected, TCP_ESTABLISHED (1) after connect(). */
	uint8_t state;
	/* The two ends: addresses in network order (IPv4 in the first four
	 * bytes), ports in host order. */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	/* TCP only, with sock_diag_want_bytes(): bytes the peer acknowledged
	 * (tcp_info's tcpi_bytes_acked, less the SYN's one) and bytes received
	 * (tcpi_bytes_received). */
	bool has_bytes;
	uint64_t bytes_sent, bytes_received;
};

/* Return 0 to go on, > 0 to stop the dump early (the function then returns
 * that value), < 0 to fail it with that error. */
typedef int (*sock_diag_cb)(const struct sock_info *s, void *userdata);

struct sock_diag;

int sock_diag_open(struct sock_diag **ret);
struct sock_diag *sock_diag_free(struct sock_diag *d);

static inline void sock_diag_freep(struct sock_diag **p) {
	sock_diag_free(*p);
}
#define _cleanup_sock_diag_ __attribute__((cleanup(sock_diag_freep)))

/* Every TCP and UDP socket, IPv4 and IPv6, in all states (listening,
 * TIME_WAIT and SYN_RECV included), of the caller's network namespace: one
 * dump per (family, protocol), TCP/IPv4, TCP/IPv6, UDP/IPv4, UDP/IPv6. A
 * dual-stack IPv6 socket is reported once, as AF_INET6.
 *
 * Returns 0, cb's positive stop value, or -errno: cb's error, the kernel's
 * (e.g. -ENOENT when inet_diag or udp_diag is missing), socket errors, or
 * -EAGAIN when the kernel flagged a dump NLM_F_DUMP_INTR. In that last case
 * cb has seen only real sockets, but possibly not all of them and some
 * twice; the dump is not retried here because cb has already acted on what
 * it saw — the caller decides whether to run it again. */
int sock_diag_dump(struct sock_diag *d, sock_diag_cb cb, void *userdata);

/* Whether later dumps ask TCP sockets for their byte counters (INET_DIAG_INFO,
 * a few hundred bytes more per socket): off by default. */
void sock_diag_want_bytes(struct sock_diag *d, bool on);

/* The socket with that inode: -ENOENT if none (see above for the sockets the
 * kernel cannot show), -EINVAL for inode 0, -EOVERFLOW above UINT32_MAX
 * (inet_diag_msg has 32 bits for it). Scans the dumps, so it costs as much
 * as sock_diag_dump(); an interrupted dump that did not show the socket is
 * retried up to three times before giving -EAGAIN. */
int sock_diag_find_inode(struct sock_diag *d, uint64_t inode, struct sock_info *ret);
