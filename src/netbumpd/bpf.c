/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "manager.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"

/* libbpf speaks one level below us: its warnings are our notices, and the
 * verifier's chatter only shows with --log-level=debug. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
	int l = level == LIBBPF_WARN ? LOG_NOTICE : LOG_DEBUG;
	char buf[1024];
	size_t n;

	if (l > log_get_max_level())
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	log_full_errno(l, 0, "libbpf: %s", buf);
	return 0;
}

int manager_bpf_load(Manager *m) {
	_cleanup_close_ int cgfd = -1;
	struct netbump_bpf *skel;
	int r;

	libbpf_set_print(libbpf_print);

	/* Per-process accounting is a load-time constant (see "Accounting" in
	 * netbump.h). A kernel that refuses it (one that does not offer
	 * bpf_get_current_pid_tgid() to cgroup/sock_create programs) gets the
	 * programs without it. */
	for (bool account = !m->no_accounting;; account = false) {
		skel = netbump_bpf__open();
		if (!skel)
			return log_error_errno(negative_errno(), "Failed to open the BPF object: %m");
		m->skel = skel;
		skel->rodata->nb_account = account;
		if (!account)
			(void)bpf_map__set_max_entries(skel->maps.acct, 1);

		r = netbump_bpf__load(skel);
		if (r >= 0) {
			m->accounting = account;
			break;
		}
		if (!account)
			return log_error_errno(r, "Failed to load the BPF programs (is BPF and BTF available, are we root?): %m");
		log_full_errno(LOG_NOTICE, r, "The kernel refused the per-process accounting (%m); loading without it: "
			       "netbumpctl top will show the rules only.");
		netbump_bpf__destroy(skel);
		m->skel = NULL;
	}
	log_debug("Per-process accounting %s.", m->accounting ? "on" : "off");

	/* Tags start at generation 0, so every socket is classified once. */
	__atomic_store_n(&skel->bss->nb_rules_gen, 1, __ATOMIC_RELEASE);

	cgfd = open(m->cgroup_root_abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return log_error_errno(errno, "Failed to open cgroup %s: %m", m->cgroup_root_abs);

	/* Links, not pinned: if we crash the kernel detaches them for us. */
	m->sock_link = bpf_program__attach_cgroup(skel->progs.nb_sock_create, cgfd);
	if (!m->sock_link) {
		r = negative_errno();
		return log_error_errno(r, "Failed to attach cgroup/sock_create to %s: %m", m->cgroup_root_abs);
	}
	m->egress_link = bpf_program__attach_cgroup(skel->progs.nb_egress, cgfd);
	if (!m->egress_link) {
		r = negative_errno();
		return log_error_errno(r, "Failed to attach cgroup_skb/egress to %s: %m", m->cgroup_root_abs);
	}
	/* Drops a closing socket's sock_rules entry and reports it in the
	 * events ring buffer (see netbump.h). */
	m->release_link = bpf_program__attach_cgroup(skel->progs.nb_sock_release, cgfd);
	if (!m->release_link) {
		r = negative_errno();
		return log_error_errno(r, "Failed to attach cgroup/sock_release to %s: %m", m->cgroup_root_abs);
	}
	m->ingress_prog_fd = bpf_program__fd(skel->progs.nb_ingress);
	log_debug("BPF programs attached at %s.", m->cgroup_root_abs);
	return 0;
}

void manager_bpf_unload(Manager *m) {
	if (m->release_link) {
		bpf_link__destroy(m->release_link);
		m->release_link = NULL;
	}
	if (m->egress_link) {
		bpf_link__destroy(m->egress_link);
		m->egress_link = NULL;
	}
	if (m->sock_link) {
		bpf_link__destroy(m->sock_link);
		m->sock_link = NULL;
	}
	m->ingress_prog_fd = -1;
	if (m->skel) {
		netbump_bpf__destroy(m->skel);
		m->skel = NULL;
	}
}

void manager_bpf_bump_gen(Manager *m) {
	/* Maps first, generation second: a program that sees the new
	 * generation also sees the new rules. */
	__atomic_fetch_add(&m->skel->bss->nb_rules_gen, 1, __ATOMIC_SEQ_CST);
}

static struct bpf_map *rule_map(Manager *m, const Rule *r, void *key, size_t *ret_size) {
	if (r->target.kind == TARGET_CGROUP || r->target.kind == TARGET_PID || r->target.kind == TARGET_UNIT) {
		memcpy(key, &r->key, sizeof(uint64_t));
		*ret_size = sizeof(uint64_t);
		return m->skel->maps.cgroup_rules;
	}
	uint32_t uid = (uint32_t)r->key;
	memcpy(key, &uid, sizeof(uid));
	*ret_size = sizeof(uint32_t);
	return m->skel->maps.uid_rules;
}

int manager_bpf_set_rule(Manager *m, const Rule *r) {
	struct nb_class v = {
		.minor = r->minor,
		.flags = rule_flags(r),
	};
	uint8_t key[8];
	size_t ks;
	struct bpf_map *map = rule_map(m, r, key, &ks);

	if (bpf_map__update_elem(map, key, ks, &v, sizeof(v), BPF_ANY) < 0)
		return negative_errno();
	return 0;
}

int manager_bpf_del_rule(Manager *m, const Rule *r) {
	uint8_t key[8];
	size_t ks;
	struct bpf_map *map = rule_map(m, r, key, &ks);

	if (bpf_map__delete_elem(map, key, ks, 0) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

/* A rule on one socket, by cookie (SO_COOKIE, sock_diag's idiag_cookie).
 * The caller bumps the generation afterwards. nb_sock_release deletes the
 * entry itself when the socket closes and reports it in the events ring
 * buffer. */
int manager_bpf_set_sock(Manager *m, uint64_t cookie, uint32_t minor, uint32_t flags) {
	struct nb_class v = { .minor = minor, .flags = flags };

	/* The BPF side never looks cookie 0 up: it means "unknown". */
	if (cookie == 0)
		return -EINVAL;
	if (bpf_map__update_elem(m->skel->maps.sock_rules, &cookie, sizeof(cookie), &v, sizeof(v), BPF_ANY) < 0)
		return negative_errno();
	return 0;
}

/* Already gone is success: the socket may have closed (nb_sock_release). */
int manager_bpf_del_sock(Manager *m, uint64_t cookie) {
	if (!m->skel)
		return 0;
	if (bpf_map__delete_elem(m->skel->maps.sock_rules, &cookie, sizeof(cookie), 0) < 0 && errno != ENOENT)
		return negative_errno();
	return 0;
}

int manager_bpf_set_iface(Manager *m, const Iface *i) {
	struct nb_iface v = { .ifb_ifindex = i->ifb_ifindex };
	uint32_t k = i->ifindex;

	if (bpf_map__update_elem(m->skel->maps.ifaces, &k, sizeof(k), &v, sizeof(v), BPF_ANY) < 0)
		return negative_errno();
	/* Tags cache whether their interface is managed (acct_ifindex). */
	manager_bpf_bump_gen(m);
	return 0;
}

int manager_bpf_del_iface(Manager *m, uint32_t ifindex) {
	if (!m->skel)
		return 0;
	if (bpf_map__delete_elem(m->skel->maps.ifaces, &ifindex, sizeof(ifindex), 0) < 0 && errno != ENOENT)
		return negative_errno();
	manager_bpf_bump_gen(m);
	return 0;
}
