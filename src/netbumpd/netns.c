/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Other network namespaces routed through netbumpd's (netns.h). It keeps
 *   - a netns_links entry (ifindex -> peer netns id) for every link whose
 *     peer is in another namespace: nothing is attached there;
 *   - nb_fwd_egress at tcx egress of every interface iface.c shapes: a
 *     tcx bpf_link (kernel 6.6) pinned beside the cgroup links (bpf.c) as
 *     link_fwd_egress_IFINDEX, so a SIGKILLed run's program goes on
 *     classifying uploads of other namespaces until the next start swaps
 *     its own in (bpf_link_update: no moment without one); a stop unpins
 *     and closes it, and it goes.
 * The netns_links map is not pinned: a killed run's program keeps its own
 * (the link holds the program, the program the map) until the restart
 * replaces the program, and the restart fills its own map first.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conntrack.h"
#include "log.h"
#include "netbump.skel.h"
#include "netns.h"

/* enum bpf_attach_type value of tcx egress (include/uapi/linux/bpf.h,
 * 6.6): the system's headers may predate it, libbpf passes it through. */
#define NB_TCX_EGRESS 47
/* enum bpf_link_type value of a tcx link (likewise). */
#define NB_LINK_TYPE_TCX 11
/* The pin of an interface's nb_fwd_egress link: PREFIX + ifindex. */
#define FWD_PIN_PREFIX "link_fwd_egress_"

typedef struct NsAttach {
	uint32_t ifindex;
	char name[IF_NAMESIZE];
	int32_t nsid; /* links into another namespace; -1 for egress */
	int fd;       /* egress: the tcx link, -1: not attached (why says why) */
	bool seen;
	char why[160];
	struct NsAttach *next;
} NsAttach;

typedef struct NetnsState {
	NsAttach *links;  /* links into other namespaces */
	NsAttach *egress; /* shaped interfaces */
	char shaped_on[512];
	char ct_why[384]; /* why masqueraded traffic is not shaped (netns_paths()) */
} NetnsState;

static NsAttach *find(NsAttach *l, uint32_t ifindex) {
	for (; l; l = l->next)
		if (l->ifindex == ifindex)
			return l;
	return NULL;
}

static char *fwd_pin_path(Manager *m, uint32_t ifindex) {
	char *p = NULL;
	if (!m->pin_dir || asprintf(&p, "%s/" FWD_PIN_PREFIX "%" PRIu32, m->pin_dir, ifindex) < 0)
		return NULL;
	return p;
}

static void detach(Manager *m, NsAttach *a) {
	if (a->fd >= 0) {
		/* Unpinned first: the link goes with its last reference. */
		_cleanup_free_ char *p = fwd_pin_path(m, a->ifindex);
		if (p)
			(void)unlink(p);
		close(a->fd);
	}
	a->fd = -1;
	if (a->nsid >= 0 && m->skel)
		(void)bpf_map__delete_elem(m->skel->maps.netns_links, &a->ifindex, sizeof(a->ifindex), 0);
}

/* The tcx link a killed run pinned for this interface, now running prog:
 * its descriptor, or -errno (none, not a tcx link there, or the swap
 * failed: the caller attaches anew). */
static int take_over(Manager *m, const char *pin, uint32_t ifindex, struct bpf_program *prog) {
	struct bpf_link_info info = {};
	uint32_t len = sizeof(info);
	_cleanup_close_ int fd = -1;

	if (!m->adopted)
		return -ENOENT;
	fd = bpf_obj_get(pin);
	if (fd < 0)
		return negative_errno();
	/* The ifindex is the first field of tcx's part of the union, as of
	 * xdp's, which the system's headers name. */
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return negative_errno();
	if (info.type != NB_LINK_TYPE_TCX || info.xdp.ifindex != ifindex)
		return -ESTALE;
	if (bpf_link_update(fd, bpf_program__fd(prog), NULL) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

static void attach(Manager *m, NsAttach *a, struct bpf_program *prog) {
	_cleanup_free_ char *pin = fwd_pin_path(m, a->ifindex);
	int fd = pin ? take_over(m, pin, a->ifindex, prog) : -ENOENT;

	if (fd >= 0) {
		log_debug("Took over %s's %s link of a previous run.", a->name, bpf_program__name(prog));
		a->fd = fd;
		a->why[0] = '\0';
		return;
	}
	if (fd != -ENOENT)
		log_full_errno(LOG_NOTICE, fd, "Cannot take over %s's %s link of a previous run (%m); attaching anew.",
			       a->name, bpf_program__name(prog));
	/* A killed run's link that could not be taken over stays until the
	 * new one is there (two programs that agree for a moment), then
	 * goes with its pin. */
	fd = bpf_link_create(bpf_program__fd(prog), (int)a->ifindex, NB_TCX_EGRESS, NULL);
	if (fd < 0) {
		snprintf(a->why, sizeof(a->why), "cannot attach to %s (tcx, kernel 6.6): %s", a->name, strerror(-fd));
		log_warning_errno(fd, "Failed to attach %s to %s: %m; traffic of other network namespaces through it is not shaped.",
				  bpf_program__name(prog), a->name);
		if (pin)
			(void)unlink(pin);
		return;
	}
	a->fd = fd;
	a->why[0] = '\0';
	if (pin) {
		(void)unlink(pin);
		if (bpf_obj_pin(fd, pin) < 0)
			log_full_errno(LOG_NOTICE, negative_errno(),
				       "Failed to pin %s (%m): a crash will leave uploads of other network namespaces through %s unshaped until the next start.",
				       pin, a->name);
	}
}

/* Pins of nb_fwd_egress links on interfaces not shaped now (a killed
 * run's, on an interface this run leaves alone or that is gone): removed,
 * and their links go. */
static void pins_sweep(Manager *m, NsAttach *egress) {
	DIR *d = m->pin_dir ? opendir(m->pin_dir) : NULL;
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		char *end;
		unsigned long ifindex;
		NsAttach *a;

		if (strncmp(n, FWD_PIN_PREFIX, strlen(FWD_PIN_PREFIX)) != 0)
			continue;
		errno = 0;
		ifindex = strtoul(n + strlen(FWD_PIN_PREFIX), &end, 10);
		a = errno == 0 && *end == '\0' && ifindex <= UINT32_MAX ? find(egress, (uint32_t)ifindex) : NULL;
		if (a && a->fd >= 0)
			continue;
		(void)unlinkat(dirfd(d), n, 0);
	}
	closedir(d);
}

static NsAttach *attach_new(NsAttach **list, uint32_t ifindex, const char *name, int32_t nsid) {
	NsAttach *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->ifindex = ifindex;
	a->nsid = nsid;
	a->fd = -1;
	a->seen = true;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->next = *list;
	*list = a;
	return a;
}

static void sweep(Manager *m, NsAttach **list) {
	for (NsAttach **p = list; *p;) {
		NsAttach *a = *p;
		if (a->seen) {
			p = &a->next;
			continue;
		}
		if (a->nsid >= 0)
			log_info("Network namespace %d via %s is gone; stopped following it.", a->nsid, a->name);
		detach(m, a);
		*p = a->next;
		free(a);
	}
}

typedef struct Links {
	struct nl_link *v;
	size_t n;
} Links;

static int collect_cb(const struct nl_link *l, void *userdata) {
	Links *ls = userdata;
	struct nl_link *n = realloc(ls->v, (ls->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	n[ls->n++] = *l;
	ls->v = n;
	return 0;
}

static void link_add(Manager *m, NetnsState *s, const struct nl_link *l) {
	NsAttach *a = find(s->links, l->ifindex);
	uint32_t nsid = (uint32_t)l->link_netnsid;

	if (a && a->nsid == l->link_netnsid) {
		a->seen = true;
		snprintf(a->name, sizeof(a->name), "%s", l->name);
		return;
	}
	if (a) /* moved to another peer namespace: the next sweep drops it */
		return;
	a = attach_new(&s->links, l->ifindex, l->name, l->link_netnsid);
	if (!a) {
		log_oom();
		return;
	}
	if (bpf_map__update_elem(m->skel->maps.netns_links, &a->ifindex, sizeof(a->ifindex), &nsid, sizeof(nsid),
				 BPF_ANY) < 0) {
		int r = negative_errno();
		snprintf(a->why, sizeof(a->why), "cannot register %s with the BPF programs: %s", a->name, strerror(-r));
		log_warning_errno(r, "Failed to register %s with the BPF programs: %m", a->name);
		return;
	}
	log_info("Following network namespace %d via %s: its traffic is shaped where it leaves this one.", a->nsid,
		 a->name);
}

void netns_sync(Manager *m) {
	NetnsState *s = m->netns;
	Links ls = {};
	int r = -EAGAIN;

	if (!m->skel || !m->nl)
		return;
	if (!s) {
		s = m->netns = calloc(1, sizeof(*s));
		if (!s) {
			log_oom();
			return;
		}
	}
	for (int attempt = 0; attempt < 3 && r == -EAGAIN; attempt++) {
		ls.n = 0;
		r = nl_link_dump(m->nl, collect_cb, &ls);
	}
	if (r < 0) {
		log_warning_errno(r, "Failed to list links for other network namespaces: %m");
		free(ls.v);
		return;
	}

	for (NsAttach *a = s->links; a; a = a->next)
		a->seen = false;
	for (size_t k = 0; k < ls.n; k++)
		if (ls.v[k].link_netnsid >= 0 && !ls.v[k].loopback)
			link_add(m, s, &ls.v[k]);
	sweep(m, &s->links);
	/* A link whose peer moved (its entry was dropped above): anew. */
	for (size_t k = 0; k < ls.n; k++)
		if (ls.v[k].link_netnsid >= 0 && !ls.v[k].loopback && !find(s->links, ls.v[k].ifindex))
			link_add(m, s, &ls.v[k]);
	free(ls.v);

	for (NsAttach *a = s->egress; a; a = a->next)
		a->seen = false;
	for (Iface *i = m->ifaces; i; i = i->next) {
		NsAttach *a;
		if (i->skipped)
			continue;
		a = find(s->egress, i->ifindex);
		if (a) {
			a->seen = true;
			snprintf(a->name, sizeof(a->name), "%s", i->name);
			continue;
		}
		a = attach_new(&s->egress, i->ifindex, i->name, -1);
		if (!a) {
			log_oom();
			continue;
		}
		attach(m, a, m->skel->progs.nb_fwd_egress);
	}
	sweep(m, &s->egress);
	pins_sweep(m, s->egress);
	/* What netns_paths() says may differ now: paths.c looks again. */
	m->netns_gen++;
}

static void list_free(Manager *m, NsAttach **list) {
	while (*list) {
		NsAttach *a = *list;
		*list = a->next;
		detach(m, a);
		free(a);
	}
}

void netns_stop(Manager *m) {
	if (!m->netns)
		return;
	list_free(m, &m->netns->links);
	list_free(m, &m->netns->egress);
	free(m->netns);
	m->netns = NULL;
	m->netns_gen++;
}

size_t netns_paths(Manager *m, netns_path_cb cb, void *userdata) {
	NetnsState *s = m->netns;
	const char *no_egress = NULL, *ct_gap = NULL;
	size_t n = 0, len = 0;

	if (!s)
		return 0;
	/* Where the forwarded traffic can meet a rule's classes: the shaped
	 * interfaces whose egress program is attached. */
	s->shaped_on[0] = '\0';
	for (NsAttach *e = s->egress; e; e = e->next) {
		if (e->fd < 0) {
			no_egress = e->why;
			continue;
		}
		int k = snprintf(s->shaped_on + len, sizeof(s->shaped_on) - len, "%s%s", len ? ", " : "", e->name);
		if (k < 0 || (size_t)k >= sizeof(s->shaped_on) - len)
			break;
		len += (size_t)k;
	}
	/* Conntrack runs here, so a namespace's traffic may leave masqueraded,
	 * and the programs cannot find its sockets then: not shaped, as far
	 * as anyone can tell from here. */
	if (!m->ct_lookup && ct_present()) {
		snprintf(s->ct_why, sizeof(s->ct_why),
			 "conntrack runs here, so it may be masqueraded (NAT), and masqueraded traffic cannot be "
			 "traced to its sockets without the conntrack lookups: %s",
			 m->ct_why ?: "?");
		ct_gap = s->ct_why;
	}
	for (NsAttach *a = s->links; a; a = a->next, n++) {
		NetnsPath p = {
			.ifindex = a->ifindex,
			.name = a->name,
			.nsid = a->nsid,
			.up = !a->why[0] && len > 0,
			.down = !a->why[0] && len > 0,
			.shaped_on = s->shaped_on,
		};
		if (a->why[0])
			p.why = a->why;
		else if (len == 0)
			p.why = no_egress ?: "no interface of this namespace is shaped";
		else if (ct_gap) {
			p.up = p.down = false;
			p.why = ct_gap;
		}
		if (cb)
			cb(&p, userdata);
	}
	return n;
}

int netns_path_format(const NetnsPath *p, char *buf, size_t size) {
	int k;

	if (p->up && p->down)
		k = snprintf(buf, size, "netns %d via %s: shaped on %s", p->nsid, p->name, p->shaped_on);
	else if (p->down)
		k = snprintf(buf, size, "netns %d via %s: downloads shaped on %s, uploads not: %s", p->nsid, p->name,
			     p->shaped_on, p->why ?: "?");
	else
		k = snprintf(buf, size, "netns %d via %s: not shaped: %s", p->nsid, p->name, p->why ?: "?");
	return k < 0 ? -EIO : k;
}
