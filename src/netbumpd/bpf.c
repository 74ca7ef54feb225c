/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "access.h"
#include "bpf.h"
#include "cgroup-util.h"
#include "conntrack.h"
#include "iface.h"
#include "log.h"
#include "manager.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"
#include "process.h"

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

/* ---- what survives a crash ----
 *
 * The maps and the cgroup links are pinned in a bpffs: /sys/fs/bpf where
 * the host has it (one directory per netbumpd, named after its state
 * directory), else a bpffs netbumpd mounts in its state directory. A
 * SIGKILLed run so leaves its programs attached and classifying (the tcx
 * links of nb_fwd_egress too, netns.c), against
 * the same maps, until the next start takes them over: it loads its
 * programs on the pinned maps, swaps them into the pinned links (and the
 * ingress filters, iface.c), and finds the classes and entries as the
 * killed run left them. A clean stop removes the pins, and the links go. */
#define BPF_FS_MAGIC_ 0xcafe4a11
/* include/uapi/asm-generic/socket.h, 5.14; the system's headers may predate it. */
#define NB_SO_NETNS_COOKIE 71

/* The pinned maps ("bss": the rule generation) and links. frags and flows
 * are not among them: they remember the owners of datagrams in flight and of
 * ping and raw sockets' peers for a moment (netbump.h, "Fragments and other
 * protocols"), so a start makes them anew; a socket's next packet out fills
 * flows again. */
static const char *const map_names[8] = { "sock_rules", "cgroup_rules", "uid_rules", "sk_tags",
					   "ifaces",     "acct",         "events",    "bss" };

typedef struct Pin {
	const char *name;
	struct bpf_map *map;
} Pin;

/* The maps in map_names' order (below). */
static size_t pinned_maps(struct netbump_bpf *s, Pin v[static 8]) {
	struct bpf_map *maps[8] = { s->maps.sock_rules, s->maps.cgroup_rules, s->maps.uid_rules, s->maps.sk_tags,
				    s->maps.ifaces,     s->maps.acct,         s->maps.events,    s->maps.bss };
	for (size_t k = 0; k < 8; k++)
		v[k] = (Pin){ map_names[k], maps[k] };
	return 8;
}

/* The first three are in every run; the fourth only in one with
 * accounting (a killed run without it is taken over all the same); the
 * connect/sendmsg links of deny (access.c) last, so that a deny keeps
 * refusing connect() with EPERM while no netbumpd runs, not only dropping
 * packets (a killed run of a version without them is taken over too). */
static const char *const link_names[] = { "link_sock_create", "link_egress",   "link_sock_release",
					  "link_ingress_acct", "link_connect4", "link_connect6",
					  "link_sendmsg4",     "link_sendmsg6" };
#define LINKS_ALWAYS 3

static bool is_bpffs(const char *path) {
	struct statfs sf;
	return statfs(path, &sf) >= 0 && (uint32_t)sf.f_type == BPF_FS_MAGIC_;
}

static char *pin_path(Manager *m, const char *name) {
	char *p = NULL;
	if (asprintf(&p, "%s/%s", m->pin_dir, name) < 0)
		return NULL;
	return p;
}

/* Where this netbumpd pins; NULL (nothing survives a crash) where no bpffs
 * can be had. */
static void pin_dir_prepare(Manager *m) {
	if (!m->state_dir)
		return;
	if (is_bpffs("/sys/fs/bpf")) {
		/* Named after the state directory, '/' as '-': the pins of
		 * the netbumpd that uses it ("/sys/fs/bpf/netbump-run-netbump"),
		 * and '.' as '_': a bpffs refuses names with a dot (bpf_lookup(),
		 * kernel/bpf/inode.c). */
		_cleanup_free_ char *real = realpath(m->state_dir, NULL);
		const char *d = real ?: m->state_dir;
		if (asprintf(&m->pin_dir, "/sys/fs/bpf/netbump%s", d) < 0) {
			m->pin_dir = NULL;
			return;
		}
		for (char *c = m->pin_dir + strlen("/sys/fs/bpf/"); *c; c++)
			if (*c == '/')
				*c = '-';
			else if (*c == '.')
				*c = '_';
		if (mkdir(m->pin_dir, 0700) >= 0 || errno == EEXIST)
			return;
		/* A bpffs of our own in the state directory, then. */
		log_full_errno(LOG_NOTICE, errno, "Cannot make %s (%m); pinning in %s/bpf instead.", m->pin_dir,
			       m->state_dir);
		free(m->pin_dir);
		m->pin_dir = NULL;
	}
	if (asprintf(&m->pin_dir, "%s/bpf", m->state_dir) < 0) {
		m->pin_dir = NULL;
		return;
	}
	if (mkdir(m->pin_dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	m->pin_mounted = true; /* ours: made by this run or a killed one */
	if (!is_bpffs(m->pin_dir) && mount("bpf", m->pin_dir, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		goto fail;
	return;
fail:
	log_full_errno(LOG_NOTICE, errno, "Cannot mount a bpffs on %s (%m): a crash will leave traffic unshaped until the next start.",
			 m->pin_dir);
	(void)rmdir(m->pin_dir);
	m->pin_mounted = false;
	free(m->pin_dir);
	m->pin_dir = NULL;
}

static void pins_remove(Manager *m) {
	if (!m->pin_dir)
		return;
	for (size_t k = 0; k < 8; k++) {
		_cleanup_free_ char *p = pin_path(m, map_names[k]);
		if (p)
			(void)unlink(p);
	}
	for (size_t k = 0; k < ELEMENTSOF(link_names); k++) {
		_cleanup_free_ char *p = pin_path(m, link_names[k]);
		if (p)
			(void)unlink(p);
	}
	/* netns.c's, one per interface: link_fwd_egress_IFINDEX */
	DIR *d = opendir(m->pin_dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (strncmp(de->d_name, "link_fwd_egress_", strlen("link_fwd_egress_")) == 0)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
}

/* Whether the pins of a killed run are all there, and its programs are
 * attached where ours would be (the same cgroup root): a state to take
 * over. Anything less is removed (its links go with the pins) and the start
 * is afresh. The tcx links of nb_fwd_egress (netns.c) are taken over, or
 * removed, interface by interface when the interfaces are set up. */
static bool pins_adoptable(Manager *m) {
	struct bpf_link_info info = {};
	uint32_t len = sizeof(info);
	uint64_t root_id = 0;
	bool ok = true, any = false;

	if (!m->pin_dir)
		return false;
	for (size_t k = 0; k < 8; k++) {
		_cleanup_free_ char *p = pin_path(m, map_names[k]);
		bool there = p && access(p, F_OK) >= 0;
		ok = ok && there;
		any = any || there;
	}
	for (size_t k = 0; k < LINKS_ALWAYS; k++) {
		_cleanup_free_ char *p = pin_path(m, link_names[k]);
		_cleanup_close_ int fd = p ? bpf_obj_get(p) : -1;
		any = any || fd >= 0;
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0 || cg_get_id(m->cgroup_root_abs, &root_id) < 0 ||
		    info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != root_id)
			ok = false;
	}
	if (any && !ok) {
		log_notice("The pins a previous run left in %s are not all there, or for another cgroup root: starting afresh.",
			   m->pin_dir);
		pins_remove(m);
	}
	return ok;
}

/* Reuses the pinned maps of a killed run in the skeleton about to load:
 * all of them, or (false) none. */
static bool maps_adopt(Manager *m, struct netbump_bpf *s) {
	Pin v[8];
	size_t n = pinned_maps(s, v);
	int fds[8];
	bool ok = m->pin_dir != NULL;

	for (size_t k = 0; k < n; k++) {
		_cleanup_free_ char *p = ok ? pin_path(m, v[k].name) : NULL;
		fds[k] = p ? bpf_obj_get(p) : -1;
		ok = ok && fds[k] >= 0;
	}
	for (size_t k = 0; k < n && ok; k++)
		ok = bpf_map__reuse_fd(v[k].map, fds[k]) >= 0;
	for (size_t k = 0; k < n; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	return ok;
}

static int maps_pin(Manager *m) {
	Pin v[8];
	size_t n = pinned_maps(m->skel, v);

	if (!m->pin_dir)
		return 0;
	for (size_t k = 0; k < n; k++) {
		_cleanup_free_ char *p = pin_path(m, v[k].name);
		if (!p)
			return -ENOMEM;
		(void)unlink(p);
		if (bpf_map__pin(v[k].map, p) < 0)
			return log_warning_errno(negative_errno(), "Failed to pin map %s: %m", p);
	}
	return 0;
}

/* The cgroup link of prog: the pinned one of a killed run, now running
 * prog, or a new one, pinned. */
static struct bpf_link *link_attach(Manager *m, struct bpf_program *prog, int cgfd, size_t k) {
	return manager_bpf_link_attach(m, prog, cgfd, link_names[k]);
}

struct bpf_link *manager_bpf_link_attach(Manager *m, struct bpf_program *prog, int cgfd, const char *name) {
	_cleanup_free_ char *p = m->pin_dir ? pin_path(m, name) : NULL;
	struct bpf_link *l = NULL;

	if (p && m->adopted) {
		l = bpf_link__open(p);
		if (l && bpf_link__update_program(l, prog) < 0) {
			log_full_errno(LOG_NOTICE, negative_errno(), "Cannot take over %s (%m); attaching anew.", p);
			(void)bpf_link__unpin(l);
			bpf_link__destroy(l);
			l = NULL;
		}
		if (l)
			return l;
	}
	l = bpf_program__attach_cgroup(prog, cgfd);
	if (l && p) {
		(void)unlink(p);
		if (bpf_link__pin(l, p) < 0)
			log_full_errno(LOG_NOTICE, negative_errno(), "Failed to pin %s: %m", p);
	}
	return l;
}

/* The cookie of the network namespace we run in (SO_NETNS_COOKIE, Linux
 * 5.14): the accounting tells our sockets from those of other namespaces by
 * it (nb_acct_managed()). 0 where the kernel cannot say. */
static uint64_t own_netns_cookie(void) {
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, NB_SO_NETNS_COOKIE, &cookie, &len) < 0)
		return 0;
	return cookie;
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
	pin_dir_prepare(m);
	/* With the pins of a killed run first (with accounting, then without,
	 * as it may have run), then afresh: maps of another version, or a
	 * kernel that refuses the accounting. */
	bool adopt = pins_adoptable(m);
	/* Whether the accounting tells our namespace's sockets apart
	 * (nb_acct_managed()): a kernel whose cgroup_skb programs lack
	 * bpf_get_netns_cookie() gets it without, rather than none. */
	uint64_t netns_cookie = own_netns_cookie();
	/* Masqueraded traffic of other namespaces needs the conntrack kfuncs;
	 * without them the programs load with that part left out (nb_ct). */
	free(m->ct_why);
	m->ct_why = NULL;
	bool ct = ct_kfunc_probe(&m->ct_why) > 0, ct_retry = false;
	r = -ENOENT;
	for (int attempt = adopt ? 0 : 2;; attempt++) {
		bool account = !m->no_accounting && attempt % 2 == 0, adopting = attempt < 2;

		if (m->no_accounting && attempt % 2 == 0)
			continue;
		if (attempt >= 4)
			return log_error_errno(r, "Failed to load the BPF programs (is BPF and BTF available, are we root?): %m");
		if (attempt == 2 && adopt) {
			log_full_errno(LOG_NOTICE, r, "Cannot load the programs on the maps a previous run pinned (%m); starting afresh.");
			pins_remove(m);
		}
		skel = netbump_bpf__open();
		if (!skel)
			return log_error_errno(negative_errno(), "Failed to open the BPF object: %m");
		m->skel = skel;
		skel->rodata->nb_account = account;
		skel->rodata->nb_netns_cookie = account ? netns_cookie : 0;
		skel->rodata->nb_ct = ct;
		if (!account)
			(void)bpf_map__set_max_entries(skel->maps.acct, 1);
		m->adopted = adopting && maps_adopt(m, skel);
		if (adopting && !m->adopted) {
			netbump_bpf__destroy(skel); /* no map half reused */
			m->skel = NULL;
			r = -ENOENT;
			attempt = 1;
			continue;
		}

		r = netbump_bpf__load(skel);
		if (r >= 0) {
			if (ct_retry) {
				log_notice("The kernel refused the conntrack lookups; loaded without them: traffic of "
					   "other namespaces behind NAT will not be shaped.");
				free(m->ct_why);
				m->ct_why = strdup("the kernel refused the BPF programs' conntrack lookups");
			}
			m->accounting = account;
			m->ct_lookup = ct;
			break;
		}
		netbump_bpf__destroy(skel);
		m->skel = NULL;
		if (account && netns_cookie) {
			log_full_errno(LOG_NOTICE, r, "The kernel refused the accounting by network namespace (%m); "
				       "netbumpctl top may count sockets of other namespaces twice or not at all.");
			netns_cookie = 0;
			attempt--; /* the same, without */
			continue;
		}
		if (ct) {
			/* Once more, the same way but without the conntrack lookups. */
			ct = false;
			ct_retry = true;
			attempt--;
			continue;
		}
		if (ct_retry) {
			/* Refused without them too: not theirs to blame. */
			ct = true;
			ct_retry = false;
		}
		if (account && attempt % 2 == 0)
			log_full_errno(LOG_NOTICE, r, "The kernel refused the per-process accounting (%m); loading without it: "
				       "netbumpctl top will show the rules only.");
	}
	log_debug("Per-process accounting %s.", m->accounting ? "on" : "off");
	if (m->ct_lookup)
		log_debug("Masqueraded traffic of other namespaces is looked up in conntrack.");
	else
		log_debug("No conntrack lookups: %s.", m->ct_why ?: "?");

	if (m->adopted)
		log_info("Taking over the BPF maps and programs of a previous run.");
	else {
		/* Tags start at generation 0, so every socket is classified once. */
		__atomic_store_n(&skel->bss->nb_rules_gen, 1, __ATOMIC_RELEASE);
		pins_remove(m); /* those of a run we could not take over */
		(void)maps_pin(m);
	}

	cgfd = open(m->cgroup_root_abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return log_error_errno(errno, "Failed to open cgroup %s: %m", m->cgroup_root_abs);

	m->sock_link = link_attach(m, skel->progs.nb_sock_create, cgfd, 0);
	if (!m->sock_link) {
		r = negative_errno();
		return log_error_errno(r, "Failed to attach cgroup/sock_create to %s: %m", m->cgroup_root_abs);
	}
	m->egress_link = link_attach(m, skel->progs.nb_egress, cgfd, 1);
	if (!m->egress_link) {
		r = negative_errno();
		return log_error_errno(r, "Failed to attach cgroup_skb/egress to %s: %m", m->cgroup_root_abs);
	}
	/* Drops a closing socket's sock_rules entry and reports it in the
	 * events ring buffer (see netbump.h). */
	m->release_link = link_attach(m, skel->progs.nb_sock_release, cgfd, 2);
	if (!m->release_link) {
		r = negative_errno();
		return log_error_errno(r, "Failed to attach cgroup/sock_release to %s: %m", m->cgroup_root_abs);
	}
	/* Counts downloads as their sockets receive them (netbump.h,
	 * "Accounting"). */
	if (m->accounting) {
		m->ingress_acct_link = link_attach(m, skel->progs.nb_ingress_acct, cgfd, 3);
		if (!m->ingress_acct_link) {
			r = negative_errno();
			return log_error_errno(r, "Failed to attach cgroup_skb/ingress to %s: %m", m->cgroup_root_abs);
		}
	} else if (m->pin_dir) {
		/* a killed run's, which counted: it goes with its pin */
		_cleanup_free_ char *p = pin_path(m, link_names[3]);
		if (p)
			(void)unlink(p);
	}
	m->ingress_prog_fd = bpf_program__fd(skel->progs.nb_ingress);
	/* Deny/allow: connect()/sendmsg() refused at once, their events, their
	 * rules put back (access.c). */
	access_start(m, cgfd);
	log_debug("BPF programs attached at %s.", m->cgroup_root_abs);
	return 0;
}

void manager_bpf_unload(Manager *m) {
	/* Unpinned first: the links go with their last reference. */
	pins_remove(m);
	if (m->pin_dir) {
		if (m->pin_mounted && umount2(m->pin_dir, MNT_DETACH) < 0)
			log_warning_errno(errno, "Failed to unmount %s: %m", m->pin_dir);
		(void)rmdir(m->pin_dir);
		m->pin_mounted = false;
		free(m->pin_dir);
		m->pin_dir = NULL;
	}
	if (m->exec_link) { /* exe: rules let go of it when they end */
		bpf_link__destroy(m->exec_link);
		m->exec_link = NULL;
		m->exe_hooked = 0;
	}
	if (m->ingress_acct_link) {
		bpf_link__destroy(m->ingress_acct_link);
		m->ingress_acct_link = NULL;
	}
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
	if (r->target.kind == TARGET_CGROUP || r->target.kind == TARGET_PID || target_kind_follows_cgroup(r->target.kind)) {
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

/* Deletes the entries of one rule map whose class no rule has. Keys are
 * gathered first: deleting while walking would restart the walk. */
static void prune_map(Manager *m, struct bpf_map *map, size_t key_size) {
	uint8_t key[8], next[8];
	void *keys = NULL;
	size_t n = 0, cap = 0;
	bool first = true;

	for (;;) {
		if (bpf_map__get_next_key(map, first ? NULL : key, next, key_size) < 0)
			break;
		first = false;
		memcpy(key, next, key_size);
		struct nb_class v;
		if (bpf_map__lookup_elem(map, key, key_size, &v, sizeof(v), 0) < 0)
			continue;
		Rule *r = v.minor <= NB_RULE_MINOR_MAX ? m->by_minor[v.minor] : NULL;
		if (r && v.minor == r->minor)
			continue;
		if (n == cap) {
			void *nk = realloc(keys, (cap = cap ? cap * 2 : 64) * key_size);
			if (!nk)
				break;
			keys = nk;
		}
		memcpy((uint8_t *)keys + n++ * key_size, key, key_size);
	}
	for (size_t k = 0; k < n; k++)
		(void)bpf_map__delete_elem(map, (uint8_t *)keys + k * key_size, key_size, 0);
	if (n)
		log_info("Removed %zu %s entries of the previous run that no rule has now.", n, bpf_map__name(map));
	free(keys);
}

void manager_bpf_prune(Manager *m) {
	uint32_t key, next, *gone = NULL;
	size_t n = 0;
	bool first = true;

	prune_map(m, m->skel->maps.sock_rules, sizeof(uint64_t));
	prune_map(m, m->skel->maps.cgroup_rules, sizeof(uint64_t));
	prune_map(m, m->skel->maps.uid_rules, sizeof(uint32_t));
	/* Interfaces the killed run shaped and this one does not. */
	while (bpf_map__get_next_key(m->skel->maps.ifaces, first ? NULL : &key, &next, sizeof(next)) >= 0) {
		first = false;
		key = next;
		if (manager_find_iface(m, key))
			continue;
		uint32_t *g = realloc(gone, (n + 1) * sizeof(*g));
		if (!g)
			break;
		gone = g;
		gone[n++] = key;
	}
	for (size_t k = 0; k < n; k++)
		(void)manager_bpf_del_iface(m, gone[k]);
	free(gone);
}
