/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The live view's data: io.netbump.Manager.Top.
 *
 * The BPF programs count each socket owner's traffic in the acct map (see
 * "Accounting" in netbump.h). Every second (stats_timer_cb) the daemon reads
 * the whole map, sums the per-CPU values and keeps that sample and the one
 * before, sorted by owner; a Top call turns them into one row per process:
 * its bytes so far, its rates over the last interval, who it is (from /proc)
 * and which rule applies to it (manager_rule_for(), the precedence the BPF
 * programs apply).
 *
 * Owners whose creating process is not known (sockets from before the
 * daemon: tgid 0) or gone are attributed by cgroup and uid: to the one
 * process of that uid in the cgroup if there is exactly one, else to a row
 * without PID for the cgroup. (A PID the kernel gives to a new process while
 * sockets of the old one live on, in the same cgroup and uid, would share its
 * counters: PIDs come back only after pid_max others.)
 *
 * Authorization: root sees every process; another uid sees the traffic of
 * the sockets it owns, and the rules List shows it. What it may change is
 * decided by Set and Unset as always.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup-util.h"
#include "log.h"
#include "manager.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"
#include "proc-util.h"
#include "rule.h"
#include "server.h"
#include "top.h"

/* Keys and values read per batch call; doubled when a hash bucket holds more
 * (ENOSPC). */
#define BATCH_START 256u
/* Rebuild the cgroup id -> path table at most this often on a miss. */
#define CGROUP_RESCAN_USEC (5u * 1000000u)
#define CMDLINE_MAX 256

typedef struct AcctEntry {
	struct nb_acct_key key;
	struct nb_acct v; /* summed over the CPUs */
} AcctEntry;

typedef struct AcctSample {
	uint64_t usec; /* CLOCK_MONOTONIC when read, 0 = none */
	AcctEntry *e;  /* sorted by key */
	size_t n;
} AcctSample;

typedef struct CgroupName {
	uint64_t id;
	char *path; /* relative to the cgroup2 mount */
} CgroupName;

struct TopState {
	AcctSample prev, cur;
	int ncpu;
	bool batch_unsupported;
	bool foreign_pids; /* we are not in the initial PID namespace */
	CgroupName *cgroups;
	size_t n_cgroups;
	uint64_t cgroups_usec; /* when the table was built */
};

static int key_cmp(const void *a, const void *b) {
	const struct nb_acct_key *x = a, *y = b;

	if (x->cgroup != y->cgroup)
		return x->cgroup < y->cgroup ? -1 : 1;
	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return 0;
}

static void sample_done(AcctSample *s) {
	free(s->e);
	*s = (AcctSample){};
}

static void cgroups_clear(struct TopState *t) {
	for (size_t k = 0; k < t->n_cgroups; k++)
		free(t->cgroups[k].path);
	free(t->cgroups);
	t->cgroups = NULL;
	t->n_cgroups = 0;
}

void manager_top_free(Manager *m) {
	if (!m->top)
		return;
	sample_done(&m->top->prev);
	sample_done(&m->top->cur);
	cgroups_clear(m->top);
	free(m->top);
	m->top = NULL;
}

static int entries_push(AcctSample *s, size_t *allocated, const struct nb_acct_key *key, const struct nb_acct *percpu,
			int ncpu) {
	AcctEntry *e;

	if (s->n == *allocated) {
		size_t na = *allocated ? *allocated * 2 : 64;
		AcctEntry *n = realloc(s->e, na * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->e = n;
		*allocated = na;
	}
	e = &s->e[s->n++];
	e->key = *key;
	e->v = (struct nb_acct){};
	for (int c = 0; c < ncpu; c++) {
		e->v.up_bytes += percpu[c].up_bytes;
		e->v.up_packets += percpu[c].up_packets;
		e->v.down_bytes += percpu[c].down_bytes;
		e->v.down_packets += percpu[c].down_packets;
	}
	return 0;
}

/* The whole map in as few syscalls as the kernel allows (BPF_MAP_LOOKUP_BATCH,
 * Linux 5.6); -EINVAL/-ENOTSUP from kernels without it for this map type. */
static int read_batch(struct TopState *t, int fd, AcctSample *s, size_t *allocated) {
	size_t cap = BATCH_START;
	_cleanup_free_ struct nb_acct_key *keys = NULL;
	_cleanup_free_ struct nb_acct *vals = NULL;
	uint32_t in = 0, out = 0;
	bool first = true;

	for (;;) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		uint32_t count = cap;
		int r;

		if (!keys) {
			keys = calloc(cap, sizeof(*keys));
			vals = calloc(cap * (size_t)t->ncpu, sizeof(*vals));
			if (!keys || !vals)
				return -ENOMEM;
		}
		r = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &count, &opts);
		r = r < 0 ? -errno : 0;
		if (r == -ENOSPC && count == 0) {
			/* One bucket holds more than cap entries: retry bigger. */
			cap *= 2;
			free(keys);
			free(vals);
			keys = NULL;
			vals = NULL;
			continue;
		}
		if (r < 0 && r != -ENOENT)
			return r;
		for (uint32_t k = 0; k < count; k++) {
			int q = entries_push(s, allocated, &keys[k], vals + (size_t)k * t->ncpu, t->ncpu);
			if (q < 0)
				return q;
		}
		if (r == -ENOENT)
			return 0;
		in = out;
		first = false;
	}
}

/* One key at a time, for kernels without batch lookups. */
static int read_iterate(struct TopState *t, int fd, AcctSample *s, size_t *allocated) {
	_cleanup_free_ struct nb_acct *vals = calloc(t->ncpu, sizeof(*vals));
	struct nb_acct_key key, next;
	bool first = true;

	if (!vals)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, vals) < 0)
			continue; /* evicted meanwhile */
		int r = entries_push(s, allocated, &key, vals, t->ncpu);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The kernel records PIDs as the initial PID namespace numbers them
 * (bpf_get_current_pid_tgid()); in another namespace they name other
 * processes, or none. Its /proc/self/ns/pid inode is fixed
 * (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
static bool in_initial_pid_namespace(void) {
	struct stat st;

	return stat("/proc/self/ns/pid", &st) < 0 || st.st_ino == 0xEFFFFFFCu;
}

int manager_top_sample(Manager *m) {
	AcctSample s = {};
	size_t allocated = 0;
	int fd, r;

	if (!m->accounting || !m->skel)
		return 0;
	if (!m->top) {
		m->top = calloc(1, sizeof(*m->top));
		if (!m->top)
			return -ENOMEM;
		m->top->ncpu = libbpf_num_possible_cpus();
		m->top->foreign_pids = !in_initial_pid_namespace();
		if (m->top->foreign_pids)
			log_notice("netbumpd runs in a PID namespace of its own: the BPF programs see PIDs of the "
				   "initial one, so netbumpctl top attributes traffic by cgroup and user only.");
	}
	if (m->top->ncpu <= 0)
		return -EINVAL;

	fd = bpf_map__fd(m->skel->maps.acct);
	r = -EINVAL;
	if (!m->top->batch_unsupported) {
		r = read_batch(m->top, fd, &s, &allocated);
		if (r == -EINVAL || r == -ENOTSUP || r == -EOPNOTSUPP) {
			log_debug("Batch lookups not supported on the accounting map, reading it key by key.");
			m->top->batch_unsupported = true;
			sample_done(&s);
			allocated = 0;
		}
	}
	if (m->top->batch_unsupported)
		r = read_iterate(m->top, fd, &s, &allocated);
	if (r < 0) {
		sample_done(&s);
		return log_debug_errno(r, "Failed to read the accounting map: %m");
	}
	if (s.n > 0)
		qsort(s.e, s.n, sizeof(*s.e), key_cmp);
	s.usec = now_usec();

	sample_done(&m->top->prev);
	m->top->prev = m->top->cur;
	m->top->cur = s;
	return 0;
}

/* ---- who an owner is ------------------------------------------------------ */

static void closedirp(DIR **d) {
	if (*d)
		closedir(*d);
}

static int cgroups_scan_dir(struct TopState *t, size_t *allocated, const char *abs, size_t mount_len, unsigned depth) {
	_cleanup_(closedirp) DIR *d = NULL;
	uint64_t id;
	struct dirent *de;

	if (cg_get_id(abs, &id) >= 0) {
		if (t->n_cgroups == *allocated) {
			size_t na = *allocated ? *allocated * 2 : 64;
			CgroupName *n = realloc(t->cgroups, na * sizeof(*n));
			if (!n)
				return -ENOMEM;
			t->cgroups = n;
			*allocated = na;
		}
		t->cgroups[t->n_cgroups].id = id;
		t->cgroups[t->n_cgroups].path = strdup(abs[mount_len] ? abs + mount_len : "/");
		if (!t->cgroups[t->n_cgroups].path)
			return -ENOMEM;
		t->n_cgroups++;
	}
	if (depth >= NB_MAX_DEPTH)
		return 0;
	d = opendir(abs);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		int r;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", abs, de->d_name) < 0)
			return -ENOMEM;
		r = cgroups_scan_dir(t, allocated, sub, mount_len, depth + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The path of a cgroup id below our root (relative to the mount), NULL if
 * unknown. The table is rebuilt on a miss, at most every few seconds. */
static const char *cgroup_path_of(Manager *m, uint64_t id) {
	struct TopState *t = m->top;
	uint64_t now = now_usec();
	size_t allocated;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < t->n_cgroups; k++)
			if (t->cgroups[k].id == id)
				return t->cgroups[k].path;
		if (pass > 0 || (t->cgroups_usec && now - t->cgroups_usec < CGROUP_RESCAN_USEC))
			return NULL;
		cgroups_clear(t);
		allocated = 0;
		t->cgroups_usec = now;
		if (cgroups_scan_dir(t, &allocated, m->cgroup_root_abs, strlen(m->cgroup_mount), 0) < 0)
			cgroups_clear(t);
	}
	return NULL;
}

/* The one process of uid in a cgroup (relative path), or 0. */
static pid_t cgroup_only_process(Manager *m, const char *path, uid_t uid) {
	_cleanup_free_ char *fn = NULL, *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t n = 0;
	pid_t found = 0;

	if (asprintf(&fn, "%s%s/cgroup.procs", m->cgroup_mount, streq(path, "/") ? "" : path) < 0)
		return 0;
	f = fopen(fn, "re");
	if (!f)
		return 0;
	while (getline(&line, &n, f) > 0) {
		uid_t u;
		pid_t p = (pid_t)strtol(line, NULL, 10);

		if (p <= 0 || proc_get_uid(p, &u) < 0 || u != uid)
			continue;
		if (found)
			return 0; /* more than one */
		found = p;
	}
	return found;
}

static bool process_alive(pid_t pid) {
	char fn[32];

	snprintf(fn, sizeof(fn), "/proc/%d", (int)pid);
	return pid > 0 && access(fn, F_OK) >= 0;
}

static char *read_small_file(const char *fn, size_t max, size_t *ret_len) {
	_cleanup_close_ int fd = open(fn, O_RDONLY | O_CLOEXEC);
	char *buf;
	ssize_t l;

	if (fd < 0)
		return NULL;
	buf = malloc(max + 1);
	if (!buf)
		return NULL;
	l = read(fd, buf, max);
	if (l < 0) {
		free(buf);
		return NULL;
	}
	buf[l] = '\0';
	if (ret_len)
		*ret_len = (size_t)l;
	return buf;
}

/* comm and a printable command line (arguments joined by blanks, control
 * characters replaced, cut at CMDLINE_MAX). */
void process_names(pid_t pid, char **ret_comm, char **ret_cmdline) {
	char fn[64];
	size_t l = 0;
	char *comm, *cmd;

	snprintf(fn, sizeof(fn), "/proc/%d/comm", (int)pid);
	comm = read_small_file(fn, 64, NULL);
	if (comm) {
		comm[strcspn(comm, "\n")] = '\0';
		/* a process names itself (PR_SET_NAME): nothing a terminal
		 * would act on */
		for (char *c = comm; *c; c++)
			if ((unsigned char)*c < ' ' || *c == 0x7f)
				*c = '?';
	}
	snprintf(fn, sizeof(fn), "/proc/%d/cmdline", (int)pid);
	cmd = read_small_file(fn, CMDLINE_MAX, &l);
	if (cmd) {
		while (l > 0 && cmd[l - 1] == '\0')
			l--;
		cmd[l] = '\0';
		for (size_t k = 0; k < l; k++)
			if ((unsigned char)cmd[k] < ' ' || cmd[k] == 0x7f)
				cmd[k] = ' ';
		if (l == 0) {
			free(cmd);
			cmd = NULL;
		}
	}
	*ret_comm = comm;
	*ret_cmdline = cmd;
}

/* The last *.service or *.scope component of a cgroup path, and the path up
 * to it. */
static char *unit_of_cgroup(const char *path, char **ret_unit_cgroup) {
	const char *best = NULL, *best_end = NULL;

	for (const char *p = path; p && *p;) {
		const char *s = p[0] == '/' ? p + 1 : p, *e = strchrnul(s, '/');
		size_t l = (size_t)(e - s);

		if ((l > 8 && memcmp(e - 8, ".service", 8) == 0) || (l > 6 && memcmp(e - 6, ".scope", 6) == 0)) {
			best = s;
			best_end = e;
		}
		p = *e ? e : NULL;
	}
	if (!best) {
		*ret_unit_cgroup = NULL;
		return NULL;
	}
	*ret_unit_cgroup = strndup(path, (size_t)(best_end - path));
	return strndup(best, (size_t)(best_end - best));
}

char *user_name(uid_t uid) {
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return NULL;
	return strdup(res->pw_name);
}

/* ---- rows --------------------------------------------------------------------- */

typedef struct Row {
	pid_t pid;         /* 0: not attributed to one process */
	uid_t uid;         /* the sockets' owner */
	char *cgroup;      /* pid 0: the cgroup of the sockets; else the process's */
	struct nb_acct total;
	uint64_t up_rate, down_rate; /* bit/s */
} Row;

static void rows_free(Row *rows, size_t n) {
	for (size_t k = 0; k < n; k++)
		free(rows[k].cgroup);
	free(rows);
}

static const AcctEntry *sample_find(const AcctSample *s, const struct nb_acct_key *key) {
	if (s->n == 0)
		return NULL;
	return bsearch(key, s->e, s->n, sizeof(*s->e), key_cmp);
}

static uint64_t counter_delta(uint64_t now, uint64_t before) {
	/* Backwards: the entry was evicted and made again meanwhile. */
	return now >= before ? now - before : now;
}

uint64_t rate_of(uint64_t bytes, uint64_t usec) {
	if (usec == 0)
		return 0;
	return (uint64_t)((long double)bytes * 8.0L * 1000000.0L / (long double)usec);
}

static int row_compare(const void *a, const void *b) {
	const Row *x = a, *y = b;
	uint64_t tx = x->up_rate + x->down_rate, ty = y->up_rate + y->down_rate;
	uint64_t bx = x->total.up_bytes + x->total.down_bytes, by = y->total.up_bytes + y->total.down_bytes;

	if (tx != ty)
		return tx > ty ? -1 : 1;
	if (bx != by)
		return bx > by ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Merges the owners into one row per process (or per cgroup and uid for
 * what cannot be put on a process). uid (uid_t)-1: everyone's. */
static int build_rows(Manager *m, uid_t only, Row **ret, size_t *ret_n, uint64_t *ret_interval) {
	const AcctSample *cur = &m->top->cur, *prev = &m->top->prev;
	uint64_t interval = prev->usec && cur->usec > prev->usec ? cur->usec - prev->usec : 0;
	Row *rows = NULL;
	size_t n = 0, allocated = 0;

	for (size_t k = 0; k < cur->n; k++) {
		const AcctEntry *e = &cur->e[k], *p = interval ? sample_find(prev, &e->key) : NULL;
		_cleanup_free_ char *path = NULL;
		pid_t pid = 0;
		Row *row = NULL;

		if (only != (uid_t)-1 && e->key.uid != only)
			continue;

		if (e->key.tgid != 0 && !m->top->foreign_pids && process_alive((pid_t)e->key.tgid))
			pid = (pid_t)e->key.tgid;
		else {
			const char *cg = cgroup_path_of(m, e->key.cgroup);

			if (cg)
				pid = cgroup_only_process(m, cg, e->key.uid);
			if (!pid) {
				/* Nothing left to show for an owner that is gone
				 * and silent. */
				if (!cg || (p && p->v.up_bytes == e->v.up_bytes && p->v.down_bytes == e->v.down_bytes))
					continue;
				path = strdup(cg);
				if (!path)
					goto oom;
			}
		}

		for (size_t j = 0; j < n && !row; j++)
			if (pid ? rows[j].pid == pid
				: rows[j].pid == 0 && rows[j].uid == e->key.uid && streq(rows[j].cgroup, path))
				row = &rows[j];
		if (!row) {
			if (n == allocated) {
				size_t na = allocated ? allocated * 2 : 32;
				Row *nr = realloc(rows, na * sizeof(*nr));
				if (!nr)
					goto oom;
				rows = nr;
				allocated = na;
			}
			row = &rows[n++];
			*row = (Row){ .pid = pid, .uid = e->key.uid, .cgroup = TAKE_PTR(path) };
		}
		row->total.up_bytes += e->v.up_bytes;
		row->total.up_packets += e->v.up_packets;
		row->total.down_bytes += e->v.down_bytes;
		row->total.down_packets += e->v.down_packets;
		if (interval) {
			/* An owner new since the previous sample: all of it is
			 * from this interval. */
			row->up_rate += rate_of(counter_delta(e->v.up_bytes, p ? p->v.up_bytes : 0), interval);
			row->down_rate += rate_of(counter_delta(e->v.down_bytes, p ? p->v.down_bytes : 0), interval);
		}
	}
	if (n > 0)
		qsort(rows, n, sizeof(*rows), row_compare);
	*ret = rows;
	*ret_n = n;
	*ret_interval = interval;
	return 0;
oom:
	rows_free(rows, n);
	return -ENOMEM;
}

/* The rule a row falls under, as the BPF programs decide it for the
 * process's new sockets; for a row without a process, for the cgroup, then
 * the user. */
static Rule *row_rule(Manager *m, const Row *row) {
	_cleanup_free_ char *reason = NULL;
	const char *error = NULL;
	Rule *rule = NULL;
	Target t = row->pid > 0 ? (Target){ .kind = TARGET_PID, .pid = row->pid }
				: (Target){ .kind = TARGET_CGROUP, .path = row->cgroup };

	if (!t.path && t.kind == TARGET_CGROUP)
		return NULL;
	if (manager_rule_for_target(m, &t, &rule, &error, &reason) < 0)
		rule = NULL;
	if (!rule && row->pid == 0) {
		free(reason);
		reason = NULL;
		t = (Target){ .kind = TARGET_USER, .uid = row->uid, .resolved = 1 };
		if (manager_rule_for_target(m, &t, &rule, &error, &reason) < 0)
			rule = NULL;
	}
	return rule;
}

static json_object *json_string_or_null(const char *s) {
	return s ? json_object_new_string(s) : NULL;
}

static json_object *row_json(Manager *m, const Row *row, uid_t caller) {
	_cleanup_free_ char *comm = NULL, *cmdline = NULL, *cg = NULL, *unit = NULL, *unit_cg = NULL, *user = NULL;
	json_object *o = json_object_new_object();
	Rule *rule;

	if (!o)
		return NULL;
	if (row->pid > 0) {
		process_names(row->pid, &comm, &cmdline);
		if (cg_pid_get_path(row->pid, &cg) < 0)
			cg = NULL;
	}
	if (!cg && row->cgroup)
		cg = strdup(row->cgroup);
	if (cg)
		unit = unit_of_cgroup(cg, &unit_cg);
	user = user_name(row->uid);
	rule = row_rule(m, row);
	if (rule && !rule_visible_to(m, rule, caller))
		rule = NULL;

	json_object_object_add(o, "pid", json_object_new_int64(row->pid));
	json_object_object_add(o, "comm", json_string_or_null(comm));
	json_object_object_add(o, "cmdline", json_string_or_null(cmdline));
	json_object_object_add(o, "uid", json_object_new_int64((int64_t)row->uid));
	json_object_object_add(o, "user", json_string_or_null(user));
	json_object_object_add(o, "cgroup", json_string_or_null(cg));
	json_object_object_add(o, "unit", json_string_or_null(unit));
	json_object_object_add(o, "unit_cgroup", json_string_or_null(unit_cg));
	json_object_object_add(o, "rule", json_string_or_null(rule ? rule->name : NULL));
	json_object_object_add(o, "up", json_object_new_int64(rule ? (int64_t)rule->up_bps : 0));
	json_object_object_add(o, "down", json_object_new_int64(rule ? (int64_t)rule->down_bps : 0));
	json_object_object_add(o, "up_rate", json_object_new_int64((int64_t)row->up_rate));
	json_object_object_add(o, "down_rate", json_object_new_int64((int64_t)row->down_rate));
	json_object_object_add(o, "up_bytes", json_object_new_int64((int64_t)row->total.up_bytes));
	json_object_object_add(o, "down_bytes", json_object_new_int64((int64_t)row->total.down_bytes));
	json_object_object_add(o, "up_packets", json_object_new_int64((int64_t)row->total.up_packets));
	json_object_object_add(o, "down_packets", json_object_new_int64((int64_t)row->total.down_packets));
	return o;
}

int method_top(Client *c, json_object *params) {
	Manager *m = c->manager;
	json_object *p, *a;
	Row *rows = NULL;
	size_t n = 0;
	uint64_t interval = 0, now;
	int r;

	json_object_object_foreach(params, key, val) {
		(void)val;
		return reply_error(c, "org.varlink.service.InvalidParameter", "parameter", key, "unknown parameter");
	}

	/* The timer samples every second; read now if it has not yet. */
	if (m->accounting && (!m->top || m->top->cur.usec == 0))
		(void)manager_top_sample(m);
	if (m->accounting && m->top) {
		r = build_rows(m, c->uid == 0 ? (uid_t)-1 : c->uid, &rows, &n, &interval);
		if (r < 0)
			return r;
	}
	(void)manager_refresh_stats(m);

	p = json_object_new_object();
	if (!p) {
		rows_free(rows, n);
		return -ENOMEM;
	}
	now = now_usec();
	json_object_object_add(p, "accounting", json_object_new_boolean(m->accounting));
	json_object_object_add(p, "interval_usec", json_object_new_int64((int64_t)interval));
	json_object_object_add(p, "age_usec",
			       json_object_new_int64(m->top && m->top->cur.usec ? (int64_t)(now - m->top->cur.usec) : 0));
	a = json_object_new_array();
	for (size_t k = 0; k < n; k++)
		json_object_array_add(a, row_json(m, &rows[k], c->uid));
	json_object_object_add(p, "processes", a);
	rows_free(rows, n);

	a = json_object_new_array();
	for (Rule *rule = m->rules; rule; rule = rule->next)
		if (rule_visible_to(m, rule, c->uid))
			json_object_array_add(a, rule_json(rule));
	json_object_object_add(p, "rules", a);
	return client_queue(c, vl_reply_new(p));
}
