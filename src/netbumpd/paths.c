/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "named.h"
#include "netlink.h"
#include "netns-state.h"
#include "paths-cache.h"
#include "paths.h"
#include "proc-watch.h"

/* Processes looked at per rule: enough to find the namespaces of a
 * container or two, bounded for a List of thousands of rules. */
#define PATHS_PIDS_MAX 64
#define PATHS_DEPTH_MAX 8

static uint64_t netns_of(pid_t pid) {
	char path[64];
	struct stat st;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/net");
	return stat(path, &st) >= 0 ? (uint64_t)st.st_ino : 0;
}

static uint64_t netns_of_cb(pid_t pid, void *userdata) {
	(void)userdata;
	return pid > 0 ? netns_of(pid) : 0;
}

typedef struct Scan {
	PathsCache *c;
	unsigned pids;
	uint64_t own;
} Scan;

static void scan_cgroup(const char *dir, unsigned depth, Scan *s) {
	_cleanup_free_ char *procs = NULL;
	FILE *f;
	struct dirent *de;
	DIR *d;
	int pid;

	if (depth > PATHS_DEPTH_MAX || s->pids >= PATHS_PIDS_MAX || asprintf(&procs, "%s/cgroup.procs", dir) < 0)
		return;
	f = fopen(procs, "re");
	if (f) {
		while (s->pids < PATHS_PIDS_MAX && fscanf(f, "%d", &pid) == 1) {
			uint64_t ino = netns_of(pid);

			s->pids++;
			if (ino != 0 && ino != s->own)
				(void)paths_cache_add(s->c, ino, pid);
		}
		fclose(f);
	}
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) && s->pids < PATHS_PIDS_MAX) {
		_cleanup_free_ char *sub = NULL;
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", dir, de->d_name) >= 0)
			scan_cgroup(sub, depth + 1, s);
	}
	closedir(d);
}

/* The cgroup a rule's processes are in (absolute), NULL for kinds that
 * have none (user@, sock:, all). */
static char *rule_cgroup_abs(Manager *m, const Rule *r) {
	char *abs = NULL;

	if (r->target.kind == TARGET_PID && r->cgroup_abs)
		return strdup(r->cgroup_abs);
	if (r->target.kind != TARGET_CGROUP && !target_kind_follows_cgroup(r->target.kind))
		return NULL;
	if (!r->key || !r->nest_path)
		return NULL;
	if (asprintf(&abs, "%s%s", m->cgroup_mount, streq(r->nest_path, "/") ? "" : r->nest_path) < 0)
		return NULL;
	return abs;
}

static void add_path(json_object *a, const char *key, const char *value, bool shaped, const char *reason,
		     unsigned *unshaped) {
	json_object *p = json_object_new_object();

	json_object_object_add(p, key, json_object_new_string(value));
	json_object_object_add(p, "shaped", json_object_new_boolean(shaped));
	if (reason)
		json_object_object_add(p, "reason", json_object_new_string(reason));
	if (!shaped)
		(*unshaped)++;
	json_object_array_add(a, p);
}

static void named_json(const Rule *r, json_object *o) {
	json_object *n;

	if (r->target.kind == TARGET_MACHINE) {
		n = json_object_new_object();
		json_object_object_add(n, "name", json_object_new_string(r->target.name));
		json_object_object_add(n, "unit", r->target.unit ? json_object_new_string(r->target.unit) : NULL);
		json_object_object_add(n, "cgroup", r->key && r->nest_path ? json_object_new_string(r->nest_path) : NULL);
		json_object_object_add(o, "machine", n);
	} else if (r->target.kind == TARGET_CONTAINER && r->named) {
		const Container *c = &r->named->c;

		n = json_object_new_object();
		json_object_object_add(n, "runtime",
				       c->id[0] ? json_object_new_string(container_runtime_to_string(c->runtime)) : NULL);
		json_object_object_add(n, "id", c->id[0] ? json_object_new_string(c->id) : NULL);
		json_object_object_add(n, "name", c->name ? json_object_new_string(c->name) : NULL);
		json_object_object_add(n, "cgroup", r->key && r->nest_path ? json_object_new_string(r->nest_path) : NULL);
		json_object_object_add(o, "container", n);
	}
}

/* The other network namespaces the rule's processes run in and their
 * state: as found before while nothing can have changed it
 * (paths-cache.h), else looked up again. */
static PathsCache *rule_namespaces(Manager *m, Rule *r) {
	_cleanup_free_ char *cg = rule_cgroup_abs(m, r);
	uint64_t proc_gen = 0;
	bool watched = proc_watch_gen(m, &proc_gen), keep = true;
	uint64_t now = now_usec();
	Scan s = {};

	if (!r->paths) {
		r->paths = calloc(1, sizeof(*r->paths));
		if (!r->paths)
			return NULL;
	}
	if (paths_cache_fresh(r->paths, cg, watched, proc_gen, m->netns_gen, now, netns_of_cb, NULL))
		return r->paths;
	if (paths_cache_begin(r->paths, cg, proc_gen, m->netns_gen, now) < 0)
		return NULL;
	s.c = r->paths;
	s.own = netns_of(0);
	if (cg)
		scan_cgroup(cg, 0, &s);
	for (size_t k = 0; k < s.c->n; k++) {
		PathsNs *p = &s.c->ns[k];
		NetnsShaped st = {};

		if (netns_state_of(m, r, p->ino, p->pid, &st) < 0) {
			keep = false; /* out of memory: not shown, and looked up again */
			continue;
		}
		/* Not entered (the process went meanwhile?): not kept. */
		if (!st.via && netns_of(p->pid) != p->ino)
			keep = false;
		p->known = true;
		p->shaped = st.shaped;
		p->reason = TAKE_PTR(st.reason);
		p->via = TAKE_PTR(st.via);
	}
	paths_cache_end(s.c, keep && watched);
	return s.c;
}

void rule_paths_json(Manager *m, Rule *r, json_object *o) {
	json_object *a = json_object_new_array();
	const PathsCache *c;
	unsigned unshaped = 0;

	if (!a)
		return;
	named_json(r, o);
	/* Why a named target is not limited now (not running, gone). */
	if (target_kind_follows_cgroup(r->target.kind) && !r->key) {
		const char *why = r->named && r->named->why ? r->named->why : "not running: the limit applies when it starts";
		json_object_object_add(o, "waiting", json_object_new_string(why));
	}

	for (Iface *i = m->ifaces; i; i = i->next) {
		_cleanup_free_ char *why = NULL;

		if (i->skipped && streq(i->skipped, "an IFB device"))
			continue; /* someone else's IFB: traffic passes it on its way to a real interface */
		if (i->degraded)
			(void)asprintf(&why, "%s: uploads through %s are not shaped until it is removed", i->degraded,
				       i->name);
		add_path(a, "interface", i->name, !i->skipped && !i->degraded, i->skipped ?: why, &unshaped);
	}

	c = rule_namespaces(m, r);
	for (size_t k = 0; c && k < c->n; k++) {
		const PathsNs *p = &c->ns[k];
		char name[48];

		if (!p->known)
			continue;
		snprintf(name, sizeof(name), "net:[%llu]", (unsigned long long)p->ino);
		add_path(a, "namespace", name, p->shaped, p->shaped ? NULL : p->reason, &unshaped);
		if (p->via)
			json_object_object_add(json_object_array_get_idx(a, json_object_array_length(a) - 1), "via",
					       json_object_new_string(p->via));
	}
	json_object_object_add(o, "paths", a);
	json_object_object_add(o, "unshaped", json_object_new_int((int)unshaped));
}

typedef struct IfCheck {
	char **want;
	bool *found;
	char *have; /* the names that exist, for the message */
	size_t have_len;
} IfCheck;

static int if_check_cb(const struct nl_link *l, void *userdata) {
	IfCheck *c = userdata;

	for (size_t k = 0; c->want[k]; k++)
		if (streq(c->want[k], l->name) && !l->loopback)
			c->found[k] = true;
	if (l->loopback || (streq(l->kind, "ifb") && strncmp(l->name, NB_IFB_PREFIX, strlen(NB_IFB_PREFIX)) == 0))
		return 0;
	char *n = realloc(c->have, c->have_len + strlen(l->name) + 3);
	if (!n)
		return -ENOMEM;
	c->have = n;
	c->have_len += (size_t)sprintf(c->have + c->have_len, "%s%s", c->have_len ? ", " : "", l->name);
	return 0;
}

int manager_check_interfaces(Manager *m) {
	_cleanup_free_ bool *found = NULL;
	struct nl *nl = NULL;
	IfCheck c = { .want = m->only_ifaces };
	size_t n = 0;
	int r;

	if (!m->only_ifaces)
		return 0;
	while (m->only_ifaces[n])
		n++;
	found = calloc(n, sizeof(bool));
	if (!found)
		return log_oom();
	c.found = found;
	r = nl_open(&nl);
	if (r < 0)
		return log_error_errno(r, "Failed to open rtnetlink socket: %m");
	r = nl_link_dump(nl, if_check_cb, &c);
	nl = nl_free(nl);
	if (r < 0) {
		free(c.have);
		return log_error_errno(r, "Failed to list the interfaces: %m");
	}
	for (size_t k = 0; k < n; k++)
		if (!found[k]) {
			r = log_error_errno(-ENODEV,
					    "--interface %s: no such interface in this network namespace (%s%s), so "
					    "nothing would be shaped there; nothing was changed.",
					    m->only_ifaces[k], c.have ? "there are: " : "it has none but loopback",
					    c.have ?: "");
			break;
		}
	free(c.have);
	return r < 0 ? r : 0;
}
