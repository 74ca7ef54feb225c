/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exe:PATH: every process whose executable is the file at PATH, those that
 * run when the rule is set and those started later, with the children they
 * start.
 *
 * The file is known by its identity, (device, inode), as the kernel knows
 * the image of an exec. The rule's processes are mirrored in place, as a
 * user's pid: rule's are: each goes into a cgroup of the rule's made inside
 * the cgroup it runs in, <its cgroup>/netbump-exe-DEV-INO (a place), so
 * every cgroup around it (root's rules, cgroup.kill, a unit's accounting)
 * still has it, and its sockets are classified by the place, the deepest
 * cgroup of their ancestry. The children it starts are born in the place.
 * The sockets it had before the move keep their cgroup and are mirrored by
 * cookie, as a pid: rule's are, which also covers those it opened between
 * its exec and the move.
 *
 * Processes started later are reported by the exec hook (bpf/exe.bpf.h):
 * one hash lookup per exec, attached only while an exe: rule exists. Those
 * running when the rule is set are found by a walk of /proc.
 *
 * A rule of a user's covers that user's processes only (the real uid after
 * the exec, checked by the hook and again here); root's covers everyone's.
 * The file replaced under its path (a package upgrade renames a new inode
 * over it) is looked at again on the inotify event of its directory: the
 * rule follows the new inode, processes still running the old one keep
 * their place.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf.h"
#include "cgroup-util.h"
#include "exe-file.h"
#include "kind-exe.h"
#include "kind.h"
#include "log.h"
#include "netbump.skel.h"
#include "netbump/exe.h"
#include "netbump/netbump.h"
#include "proc-util.h"
#include "process.h"
#include "ramp.h"
#include "scope-map.h"
#include "sock-diag.h"
#include "access.h"
#include "unit.h"

/* A cgroup of the rule's inside the cgroup its processes came from. */
typedef struct ExePlace {
	Rule *rule;
	char *abs;
	uint64_t id;
	sd_event_source *watch; /* its cgroup.events: gone once empty */
} ExePlace;

typedef struct ExeRule {
	struct nb_exe_key key; /* as the exec hook sees the file */
	uint64_t st_dev;       /* as stat(2) does (ExeFile.dev) */
	bool keyed;  /* key is in exe_rules */
	bool hooked; /* counted in Manager.exe_hooked */
	char *place_name; /* "netbump-exe-DEV-INO" of the file when the rule was made */
	ExePlace **places;
	size_t n_places;
	sd_event_source *dir_watch;
	uint64_t taken;   /* processes it moved */
	uint64_t outside; /* processes it found outside the cgroup root, left alone */
	/* sockets that processes reported at exec had made by the time they
	 * were moved (mirrored by cookie): how often the race between exec
	 * and move mattered */
	uint64_t early_sockets;
} ExeRule;

static ExeRule *exe_of(const Rule *r) {
	return r->exe;
}

/* ---- the exec hook ---- */

static int exe_ring_cb(void *ctx, void *data, size_t size);

static int hook_get(Manager *m) {
	_cleanup_close_ int cgfd = -1;
	uint32_t zero = 0;
	int fd;

	if (m->exec_link) {
		m->exe_hooked++;
		return 0;
	}
	if (!m->exe_ring) {
		if (ring_buffer__add(m->events, bpf_map__fd(m->skel->maps.exe_events), exe_ring_cb, m) < 0)
			return negative_errno();
		m->exe_ring = true;
	}
	cgfd = open(m->cgroup_root_abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return negative_errno();
	fd = cgfd;
	if (bpf_map__update_elem(m->skel->maps.exe_root, &zero, sizeof(zero), &fd, sizeof(fd), BPF_ANY) < 0)
		return negative_errno();
	m->exec_link = bpf_program__attach(m->skel->progs.nb_exec);
	if (!m->exec_link)
		return negative_errno();
	m->exe_hooked = 1;
	log_debug("exec hook attached.");
	return 0;
}

static void hook_put(Manager *m) {
	if (m->exe_hooked > 0 && --m->exe_hooked == 0 && m->exec_link) {
		bpf_link__destroy(m->exec_link);
		m->exec_link = NULL;
		log_debug("exec hook detached (no exe: rule left).");
	}
}

static int key_set(Manager *m, Rule *rule) {
	ExeRule *x = exe_of(rule);
	uint32_t want = rule->owner == 0 ? NB_EXE_ANY_UID : (uint32_t)rule->owner;

	if (bpf_map__update_elem(m->skel->maps.exe_rules, &x->key, sizeof(x->key), &want, sizeof(want), BPF_ANY) < 0)
		return negative_errno();
	x->keyed = true;
	return 0;
}

static void key_del(Manager *m, Rule *rule) {
	ExeRule *x = exe_of(rule);

	if (x->keyed && m->skel)
		(void)bpf_map__delete_elem(m->skel->maps.exe_rules, &x->key, sizeof(x->key), 0);
	x->keyed = false;
}

/* ---- places ---- */

/* An unscoped rule's class for the sockets made in the place; a scoped
 * rule or a deny/allow has the place as a key of scope_keys instead
 * (scope-map.h). */
static bool place_in_rule_maps(const ExePlace *p) {
	return !p->rule->remote && !p->rule->access && !p->rule->leans;
}

static int place_map_set(Manager *m, const ExePlace *p) {
	struct nb_class v = { .minor = p->rule->minor, .flags = rule_flags(p->rule) };

	if (!place_in_rule_maps(p))
		return 0;

	if (bpf_map__update_elem(m->skel->maps.cgroup_rules, &p->id, sizeof(p->id), &v, sizeof(v), BPF_ANY) < 0)
		return negative_errno();
	return 0;
}

static void place_map_del(Manager *m, const ExePlace *p) {
	if (m->skel && place_in_rule_maps(p))
		(void)bpf_map__delete_elem(m->skel->maps.cgroup_rules, &p->id, sizeof(p->id), 0);
}

/* Moves what is in the place back to the cgroup around it, then removes
 * it. Bounded: a process that forks as fast as we move could keep it busy. */
static void place_free(Manager *m, ExePlace *p, bool move_back) {
	_cleanup_free_ char *parent = NULL;

	if (!p)
		return;
	p->watch = sd_event_source_disable_unref(p->watch);
	place_map_del(m, p);
	parent = strdup(p->abs);
	if (parent)
		*strrchr(parent, '/') = '\0';
	if (parent && move_back)
		for (int round = 0; round < 8 && cg_populated(p->abs) > 0; round++) {
			_cleanup_free_ char *fn = NULL, *line = NULL;
			_cleanup_fclose_ FILE *f = NULL;
			size_t cap = 0;

			if (asprintf(&fn, "%s/cgroup.procs", p->abs) < 0 || !(f = fopen(fn, "re")))
				break;
			while (getline(&line, &cap, f) > 0) {
				pid_t pid = (pid_t)strtol(line, NULL, 10);
				if (pid > 0)
					(void)cg_write_pid(parent, pid);
			}
		}
	if (rmdir(p->abs) < 0 && errno != ENOENT)
		log_struct_errno(LOG_WARNING, errno, RULE_FIELDS(p->rule), "%s: failed to remove %s: %m", p->rule->name,
				 p->abs);
	free(p->abs);
	free(p);
}

static void place_drop(Manager *m, Rule *rule, ExePlace *p) {
	ExeRule *x = exe_of(rule);

	for (size_t k = 0; k < x->n_places; k++)
		if (x->places[k] == p) {
			x->places[k] = x->places[--x->n_places];
			break;
		}
	place_free(m, p, true);
	scope_target_sync(m, rule);
}

/* The place emptied (its processes and their children exited): it goes,
 * so that nothing of ours keeps the cgroup around it from being removed. */
static int place_events_cb(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
	ExePlace *p = userdata;

	if (cg_populated(p->abs) != 0 && !(ev->mask & IN_IGNORED))
		return 0;
	place_drop(p->rule->manager, p->rule, p);
	return 0;
}

/* The rule's place in the cgroup at from (relative to the mount), made
 * (or taken over: a leftover of ours) where there is none yet. */
static int place_get(Manager *m, Rule *rule, const char *from, ExePlace **ret) {
	ExeRule *x = exe_of(rule);
	_cleanup_free_ char *abs = NULL, *fn = NULL;
	ExePlace *p, **nv;
	int r;

	if (asprintf(&abs, "%s%s/%s", m->cgroup_mount, streq(from, "/") ? "" : from, x->place_name) < 0)
		return -ENOMEM;
	for (size_t k = 0; k < x->n_places; k++)
		if (streq(x->places[k]->abs, abs)) {
			*ret = x->places[k];
			return 0;
		}
	if (mkdir(abs, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	p = calloc(1, sizeof(*p));
	nv = p ? realloc(x->places, (x->n_places + 1) * sizeof(*nv)) : NULL;
	if (!nv) {
		free(p);
		(void)rmdir(abs);
		return -ENOMEM;
	}
	x->places = nv;
	p->rule = rule;
	p->abs = TAKE_PTR(abs);
	r = cg_get_id(p->abs, &p->id);
	if (r >= 0)
		r = place_map_set(m, p);
	if (r >= 0 && asprintf(&fn, "%s/cgroup.events", p->abs) < 0)
		r = -ENOMEM;
	if (r >= 0)
		r = sd_event_add_inotify(m->event, &p->watch, fn, IN_MODIFY, place_events_cb, p);
	if (r < 0) {
		place_free(m, p, true);
		return r;
	}
	x->places[x->n_places++] = p;
	scope_target_sync(m, rule);
	*ret = p;
	return 0;
}

/* ---- taking processes in ---- */

typedef struct Inodes {
	uint64_t *v;
	size_t n;
	Rule *rule;
	size_t added;
} Inodes;

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int mirror_cb(const struct sock_info *s, void *userdata) {
	Inodes *set = userdata;
	Rule *rule = set->rule;
	uint64_t *n;

	if (!s->inode || !bsearch(&s->inode, set->v, set->n, sizeof(uint64_t), cmp_u64))
		return 0;
	for (size_t k = 0; k < rule->n_cookies; k++)
		if (rule->cookies[k] == s->cookie)
			return 0;
	n = realloc(rule->cookies, (rule->n_cookies + 1) * sizeof(uint64_t));
	if (!n)
		return -ENOMEM;
	rule->cookies = n;
	rule->cookies[rule->n_cookies++] = s->cookie;
	set->added++;
	return 0;
}

static bool is_place_of(const ExeRule *x, const char *path) {
	const char *slash = strrchr(path, '/');
	return slash && streq(slash + 1, x->place_name);
}

/* Moves one process into the rule's place in its cgroup and notes its
 * socket inodes. 1: moved (or already in), 0: not the rule's to move. */
static int move_one(Manager *m, Rule *rule, pid_t pid, Inodes *set) {
	ExeRule *x = exe_of(rule);
	_cleanup_free_ char *from = NULL;
	_cleanup_free_ uint64_t *inodes = NULL;
	ExePlace *p;
	size_t ni = 0;
	uid_t uid;
	int r;

	/* A user's rule: only that user's processes (a child that runs as
	 * someone else, setuid, is not the user's to move). */
	if (rule->owner != 0 && (proc_get_uid(pid, &uid) < 0 || uid != rule->owner))
		return 0;
	if (cg_pid_get_path(pid, &from) < 0)
		return 0; /* gone */
	if (!cg_path_is_inside(from, m->cgroup_root)) {
		x->outside++;
		return 0;
	}
	/* As for a user's pid: rule: where systemd manages the cgroup for
	 * someone else (a system service running as the user), only root's
	 * rule may make a cgroup in it. */
	if (rule->owner != 0 && manager_use_scopes(m) && cgroup_delegate(m, from) != rule->owner)
		return 0;
	if (is_place_of(x, from)) {
		/* Already in (a child born there), or in a place a killed run
		 * made: taken over. */
		_cleanup_free_ char *up = strdup(from);
		if (!up)
			return -ENOMEM;
		*strrchr(up, '/') = '\0';
		r = place_get(m, rule, *up ? up : "/", &p);
		return r < 0 ? r : 1;
	}
	r = place_get(m, rule, from, &p);
	if (r < 0) {
		log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule), "%s: cannot make its cgroup in %s for process %d: %m",
				 rule->name, from, (int)pid);
		return 0;
	}
	r = cg_write_pid(p->abs, pid);
	if (r < 0) {
		if (r != -ESRCH)
			log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule), "%s: cannot move process %d into %s: %m",
					 rule->name, (int)pid, p->abs);
		if (cg_populated(p->abs) == 0)
			place_drop(m, rule, p);
		return 0;
	}
	x->taken++;
	if (proc_socket_inodes(pid, &inodes, &ni) >= 0 && ni > 0) {
		uint64_t *nv = realloc(set->v, (set->n + ni) * sizeof(uint64_t));
		if (!nv)
			return -ENOMEM;
		set->v = nv;
		memcpy(set->v + set->n, inodes, ni * sizeof(uint64_t));
		set->n += ni;
	}
	return 1;
}

static bool runs_file(pid_t pid, const ExeRule *x) {
	char fn[32];
	struct stat st;

	snprintf(fn, sizeof(fn), "/proc/%d/exe", (int)pid);
	return stat(fn, &st) >= 0 && (uint64_t)st.st_ino == x->key.ino && (uint64_t)st.st_dev == x->st_dev;
}

/* Takes a process running the rule's program, and its children, into the
 * rule; its open sockets are mirrored. The process first: a child it forks
 * from then on is born in the place; those forked before are listed after
 * the move. */
static int take(Manager *m, Rule *rule, pid_t pid, Inodes *set) {
	_cleanup_close_ int pidfd = -1;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r;

	/* The PID of the event may have exited and been reused since; the
	 * pidfd pins the process the checks below are about. */
	if (pidfd_open_pid(pid, &pidfd) < 0 || !runs_file(pid, exe_of(rule)))
		return 0;
	r = move_one(m, rule, pid, set);
	if (r <= 0)
		return r;
	if (pidfd_is_alive(pidfd) <= 0)
		return 0;
	if (proc_descendants(pid, &pids, &n) >= 0)
		for (size_t k = 1; k < n; k++) {
			r = move_one(m, rule, pids[k], set);
			if (r < 0)
				return r;
		}
	return 1;
}

/* Mirrors the sockets whose inodes take() noted. */
static void mirror(Manager *m, Rule *rule, Inodes *set, bool land) {
	int r = 0;

	if (set->n == 0)
		return;
	qsort(set->v, set->n, sizeof(uint64_t), cmp_u64);
	if (!m->diag)
		r = sock_diag_open(&m->diag);
	for (int attempt = 0; r >= 0 && attempt < 3; attempt++) {
		r = sock_diag_dump(m->diag, mirror_cb, set);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0)
		log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule),
				 "Failed to list the sockets of %s's processes; their existing sockets stay unlimited: %m",
				 rule->name);
	if (set->added > 0) {
		if (land && !rule->remote && !rule->access)
			(void)ramp_prepare(m, rule);
		pid_rule_sync_cookies(m, rule);
		scope_target_sync(m, rule);
	}
}

/* Every process that runs the rule's program now. */
static int scan(Manager *m, Rule *rule, bool land) {
	ExeRule *x = exe_of(rule);
	Inodes set = { .rule = rule };
	uint64_t before = x->taken;
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir("/proc");
	if (!d)
		return negative_errno();
	x->outside = 0;
	while (r >= 0 && (de = readdir(d))) {
		char *end;
		long pid;

		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno != 0 || *end || pid <= 0 || pid > INT32_MAX || pid == getpid())
			continue;
		r = take(m, rule, (pid_t)pid, &set);
	}
	closedir(d);
	mirror(m, rule, &set, land);
	free(set.v);
	manager_bpf_bump_gen(m);
	log_struct(LOG_INFO, RULE_FIELDS(rule),
		   "%s: %llu running process(es) taken in, %zu socket(s) mirrored, %zu cgroup(s)%s.", rule->name,
		   (unsigned long long)(x->taken - before), rule->n_cookies, x->n_places,
		   x->outside ? "; processes outside the cgroup root are left alone" : "");
	return r;
}

/* The rule (or deny/allow target) holding the grip on the file key
 * names, from from on (NULL: the first). */
static Rule *holder_of_key(Manager *m, const struct nb_exe_key *key) {
	for (Rule *r = m->rules; r; r = r->next)
		if (r->target.kind == TARGET_EXE && r->exe && r->exe->keyed && r->exe->key.ino == key->ino &&
		    r->exe->key.dev == key->dev)
			return r;
	for (AccessRule *a = m->access_rules; a; a = a->next) {
		Rule *r = a->carrier;
		if (r && r->target.kind == TARGET_EXE && r->exe && r->exe->keyed && r->exe->key.ino == key->ino &&
		    r->exe->key.dev == key->dev)
			return r;
	}
	return NULL;
}

void exe_rules_on_exec(Manager *m, const struct nb_exe_event *ev) {
	for (Rule *rule = holder_of_key(m, &(struct nb_exe_key){ .ino = ev->ino, .dev = ev->dev }); rule; rule = NULL) {
		ExeRule *x = exe_of(rule);
		Inodes set = { .rule = rule };

		if (rule->owner != 0 && ev->uid != rule->owner)
			return;
		if (take(m, rule, (pid_t)ev->pid, &set) > 0) {
			mirror(m, rule, &set, false);
			x->early_sockets += set.added;
			if (set.added > 0)
				manager_bpf_bump_gen(m);
			log_struct(LOG_DEBUG, RULE_FIELDS(rule), "%s: process %u taken in.", rule->name, ev->pid);
		}
		free(set.v);
		return;
	}
}

static int exe_ring_cb(void *ctx, void *data, size_t size) {
	struct nb_exe_event ev;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	exe_rules_on_exec(ctx, &ev);
	return 0;
}

/* ---- the file replaced ---- */

static Rule *rule_of_key(Manager *m, const struct nb_exe_key *key, const Rule *except) {
	for (Rule *r = m->rules; r; r = r->next)
		if (r != except && r->target.kind == TARGET_EXE && r->exe && r->exe->key.ino == key->ino &&
		    r->exe->key.dev == key->dev)
			return r;
	for (AccessRule *a = m->access_rules; a; a = a->next) {
		Rule *r = a->carrier;
		if (r && r != except && r->target.kind == TARGET_EXE && r->exe && r->exe->key.ino == key->ino &&
		    r->exe->key.dev == key->dev)
			return r;
	}
	return NULL;
}

static int dir_cb(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
	Rule *rule = userdata;
	Manager *m = rule->manager;
	ExeRule *x = exe_of(rule);
	const char *base = strrchr(rule->target.exe, '/') + 1;
	_cleanup_free_ char *why = NULL;
	struct nb_exe_key old = x->key;
	ExeFile f;

	if (ev->len == 0 || !streq(ev->name, base))
		return 0;
	if (exe_file_check(rule->target.exe, &f, &why) < 0)
		return 0; /* gone or not a program (yet): the old one stays */
	if (f.ino == old.ino && f.kdev == old.dev)
		return 0;
	if (rule_of_key(m, &(struct nb_exe_key){ .ino = f.ino, .dev = f.kdev }, rule)) {
		log_struct(LOG_WARNING, RULE_FIELDS(rule), "%s: the file now is the one another exe: rule names; left as it was.",
			   rule->name);
		return 0;
	}
	key_del(m, rule);
	x->key = (struct nb_exe_key){ .ino = f.ino, .dev = f.kdev };
	if (key_set(m, rule) < 0) {
		x->key = old;
		(void)key_set(m, rule);
		return 0;
	}
	x->st_dev = f.dev;
	log_struct(LOG_INFO, RULE_FIELDS(rule), "%s: the file was replaced (inode %llu, was %llu); the rule follows it.",
		   rule->name, (unsigned long long)f.ino, (unsigned long long)old.ino);
	(void)scan(m, rule, true);
	return 0;
}

/* ---- the kind ---- */

static void exe_place(Manager *m, Rule *rule) {
	/* Its processes may run anywhere: it nests inside its owner's user
	 * rule (a user's), else at the top, under all. */
	free(rule->nest_path);
	rule->nest_path = NULL;
	rule->nest_uid = rule->owner != 0 ? rule->owner : (uid_t)-1;
}

static int place_name_of(const ExeFile *f, char **ret) {
	return asprintf(ret, EXE_PLACE_PREFIX "%x-%llu", f->kdev, (unsigned long long)f->ino) < 0 ? -ENOMEM : 0;
}

int exe_place_name(const char *path, char **ret) {
	_cleanup_free_ char *why = NULL;
	ExeFile f;
	int r;

	r = exe_file_check(path, &f, &why);
	if (r < 0)
		return r;
	return place_name_of(&f, ret);
}

static int exe_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *why = NULL;
	ExeFile f;
	Rule *twin;
	int r;

	r = exe_file_check(rule->target.exe, &f, &why);
	if (r == -ENOENT)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r, "%s", why ?: "no such file");
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, r, "%s", why ?: strerror(-r));
	rule->exe = calloc(1, sizeof(ExeRule));
	if (!rule->exe)
		return -ENOMEM;
	rule->exe->key = (struct nb_exe_key){ .ino = f.ino, .dev = f.kdev };
	rule->exe->st_dev = f.dev;
	twin = rule_of_key(m, &rule->exe->key, rule);
	if (twin)
		return rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
				 "%s is the same file as %s (a hard link), which has a rule: change or unset %s", rule->name,
				 twin->name, twin->name);
	if (place_name_of(&f, &rule->exe->place_name) < 0) {
		rule->exe->place_name = NULL;
		return -ENOMEM;
	}
	exe_place(m, rule);
	return 0;
}

/* Whose processes it covers is the caller's choice: a user's rule covers
 * the user's own. */
static int exe_owner(Manager *m, Rule *rule, uid_t *ret, const char **ret_error, char **ret_reason) {
	*ret = rule->owner;
	return 0;
}

static bool exe_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return r->owner == 0 || r->owner == uid;
}

static int exe_map_set(Manager *m, Rule *rule) {
	ExeRule *x = exe_of(rule);
	int r;

	if (!x)
		return 0; /* it leans (grip.h) */
	for (size_t k = 0; k < x->n_places; k++) {
		r = place_map_set(m, x->places[k]);
		if (r < 0)
			return r;
	}
	pid_rule_sync_cookies(m, rule);
	return 0;
}

static void exe_map_del(Manager *m, Rule *rule) {
	ExeRule *x = exe_of(rule);

	if (!x)
		return;
	key_del(m, rule);
	for (size_t k = 0; k < x->n_places; k++)
		place_map_del(m, x->places[k]);
}

static int exe_attach(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	ExeRule *x = exe_of(rule);
	_cleanup_free_ char *dir = NULL;
	int r;

	r = hook_get(m);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r,
				 "cannot attach the exec hook (tp_btf/sched_process_exec): %s; nothing was changed",
				 strerror(-r));
	x->hooked = true;
	/* The key first, then the walk: a process that execs meanwhile is
	 * reported and found twice, and taken once. */
	r = key_set(m, rule);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot update the BPF map exe_rules: %s",
				 strerror(-r));
	dir = strdup(rule->target.exe);
	if (!dir)
		return -ENOMEM;
	*strrchr(dir, '/') = '\0';
	r = sd_event_add_inotify(m->event, &x->dir_watch, *dir ? dir : "/",
				 IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_ATTRIB | IN_ONLYDIR, dir_cb, rule);
	if (r < 0)
		log_struct_errno(LOG_WARNING, r, RULE_FIELDS(rule),
				 "%s: cannot watch %s (%m): a new file put at its path is not followed.", rule->name,
				 *dir ? dir : "/");
	r = scan(m, rule, true);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot take the running processes in: %s; nothing was changed",
				 strerror(-r));
	return 0;
}

static void exe_release(Manager *m, Rule *rule, bool move_back) {
	ExeRule *x = exe_of(rule);

	if (!x)
		return;
	key_del(m, rule);
	x->dir_watch = sd_event_source_disable_unref(x->dir_watch);
	if (!rule->remote && !rule->access)
		pid_rule_forget_cookies(m, rule);
	/* Processes always go back: a place must not outlive its rule. */
	for (size_t k = 0; k < x->n_places; k++)
		place_free(m, x->places[k], true);
	free(x->places);
	x->places = NULL;
	x->n_places = 0;
	if (x->hooked)
		hook_put(m);
	x->hooked = false;
	free(x->place_name);
	free(x);
	rule->exe = NULL;
}

/* A Set of the rule as it is: root's may have made a user's its own, which
 * then covers everyone's processes. */
static int exe_refresh(Manager *m, Rule *rule) {
	int r;

	if (!rule->exe)
		return 0; /* it leans (grip.h) */
	exe_place(m, rule);
	r = key_set(m, rule);
	if (r < 0)
		return r;
	return scan(m, rule, true);
}

static bool exe_flows(Manager *m, const Rule *rule, FlowSet *fs) {
	ExeRule *x = exe_of(rule);

	if (!x || (x->n_places == 0 && rule->n_cookies == 0))
		return false;
	for (size_t k = 0; k < x->n_places; k++)
		(void)flowset_add_subtree(fs, x->places[k]->abs);
	fs->cookies = rule->cookies;
	fs->n_cookies = rule->n_cookies;
	return true;
}

/* The places and sockets go to to (grip.h), with the exec hook's key,
 * which says whose processes it takes (to's owner's). */
static void exe_grip_move(Manager *m, Rule *from, Rule *to) {
	ExeRule *x = exe_of(from);
	uint64_t *cookies = to->cookies;
	size_t n_cookies = to->n_cookies;

	if (!x)
		return;
	if (!from->remote && !from->access) {
		for (size_t k = 0; k < x->n_places; k++)
			place_map_del(m, x->places[k]);
		pid_rule_forget_cookies(m, from);
	}
	to->exe = x;
	from->exe = NULL;
	for (size_t k = 0; k < x->n_places; k++)
		x->places[k]->rule = to;
	if (x->dir_watch)
		(void)sd_event_source_set_userdata(x->dir_watch, to);
	to->cookies = from->cookies;
	to->n_cookies = from->n_cookies;
	from->cookies = cookies;
	from->n_cookies = n_cookies;
	/* An unscoped from's map_del() took the key out already. */
	if (x->hooked)
		(void)key_set(m, to);
}

static int exe_grip_cgroups(const Rule *rule, uint64_t **ret, size_t *ret_n) {
	const ExeRule *x = exe_of(rule);
	uint64_t *v;

	*ret = NULL;
	*ret_n = 0;
	if (!x || x->n_places == 0)
		return 0;
	v = calloc(x->n_places, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t k = 0; k < x->n_places; k++)
		v[k] = x->places[k]->id;
	*ret = v;
	*ret_n = x->n_places;
	return 0;
}

const char *exe_rule_place_for(Manager *m, const Rule *rule, const char *path) {
	const ExeRule *x = exe_of(rule);
	size_t n = strlen(m->cgroup_mount);

	for (size_t k = 0; x && k < x->n_places; k++)
		if (cg_path_is_inside(path, x->places[k]->abs + n))
			return x->places[k]->abs + n;
	return NULL;
}

void exe_rule_json(const Rule *rule, struct json_object *o) {
	const ExeRule *x = exe_of(rule);

	if (!x)
		return;
	json_object_object_add(o, "inode", json_object_new_int64((int64_t)x->key.ino));
	json_object_object_add(o, "cgroups", json_object_new_int64((int64_t)x->n_places));
	json_object_object_add(o, "processes_taken", json_object_new_int64((int64_t)x->taken));
	json_object_object_add(o, "sockets_mirrored", json_object_new_int64((int64_t)rule->n_cookies));
	json_object_object_add(o, "sockets_before_move", json_object_new_int64((int64_t)x->early_sockets));
}

const KindOps kind_exe = {
	.lands_itself = true,
	.resolve = exe_resolve,
	.owner = exe_owner,
	.place = exe_place,
	.applies_to = exe_applies_to,
	.map_set = exe_map_set,
	.map_del = exe_map_del,
	.attach = exe_attach,
	.release = exe_release,
	.refresh = exe_refresh,
	.flows = exe_flows,
	.grip_move = exe_grip_move,
	.grip_cgroups = exe_grip_cgroups,
};
