/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netbumpctl top: which process uses the link right now, and a limit on it
 * without leaving the view.
 *
 * Once a second it calls io.netbump.Manager.Top (per-process counters the
 * BPF data path keeps, see "Accounting" in netbump.h, and the rules as List
 * gives them), groups the rows by process, user, unit or rule (or calls
 * Connections for one row per connection), sorts them by
 * total rate and draws them full-screen with ncurses. Keys act on the
 * selected row through Set and Unset, as `netbumpctl set/unset` would; the
 * daemon's answer (an error such as "not yours") shows in the status line.
 *
 * --once prints one snapshot (text, or with --json the grouped rows and the
 * rules) for scripts.
 */
#include <curses.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "format.h"
#include "macro.h"
#include "netbumpctl.h"
#include "rate.h"
#include "varlink.h"

#define REFRESH_MSEC 1000
#define CALL_TIMEOUT_MS 10000
#define PROMPT_MAX 32

typedef enum Group {
	GROUP_PROCESS,
	GROUP_USER,
	GROUP_UNIT,
	GROUP_RULE,
	GROUP_CONNECTION, /* rows from Connections, one per socket */
	_GROUP_MAX,
} Group;

static const char *const group_names[_GROUP_MAX] = {
	[GROUP_PROCESS] = "process",
	[GROUP_USER] = "user",
	[GROUP_UNIT] = "unit",
	[GROUP_RULE] = "rule",
	[GROUP_CONNECTION] = "connection",
};

typedef enum Sort {
	SORT_RATE,  /* up + down rate now, then total bytes */
	SORT_TOTAL, /* bytes since the process was first seen */
	SORT_NAME,  /* NAME column */
	_SORT_MAX,
} Sort;

static const char *const sort_names[_SORT_MAX] = {
	[SORT_RATE] = "rate",
	[SORT_TOTAL] = "total",
	[SORT_NAME] = "name",
};

/* How the rows are made and shown: command line options, changed by keys. */
typedef struct TopOptions {
	Group group;
	Sort sort;
	FormatUnit unit; /* rates in bit/s or bytes/s */
	char filter[PROMPT_MAX + 1]; /* only rows that contain it; "" all */
} TopOptions;

/* One line of the view: a process, or what a grouping merged. */
typedef struct Row {
	char *key;     /* identity, to keep the selection across refreshes */
	char *target;  /* what the keys act on; NULL: nothing (e.g. "no rule") */
	char *name;    /* NAME column: command, user, unit or rule */
	char *user;    /* USER column */
	char *rule;    /* the rule that applies (NULL: unlimited) */
	long long id;  /* PID or UID column; -1: none */
	unsigned n;    /* processes merged */
	uint64_t up_limit, down_limit;
	uint64_t up_rate, down_rate, up_bytes, down_bytes, up_packets, down_packets;
} Row;

typedef struct Snapshot {
	json_object *msg;    /* the reply, owns what follows */
	json_object *procs;  /* array */
	json_object *rules;  /* array */
	bool accounting;
	uint64_t interval_usec;
	Row *rows;
	size_t n_rows;
} Snapshot;

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t jget_u64(json_object *o, const char *key) {
	json_object *v;
	int64_t x;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	x = json_object_get_int64(v);
	return x < 0 ? 0 : (uint64_t)x;
}

static const char *jget_str(json_object *o, const char *key) {
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *jget_rule(json_object *rules, const char *target) {
	for (size_t k = 0; target && rules && k < json_object_array_length(rules); k++) {
		json_object *r = json_object_array_get_idx(rules, k);
		const char *t = jget_str(r, "target");

		if (t && streq(t, target))
			return r;
	}
	return NULL;
}

/* "8mbit/-": the limits up and down as tc(8) writes rates; "-" alone for
 * none. */
static char *fmt_limits(uint64_t up, uint64_t down, char buf[static 2 * RATE_STRING_MAX + 2]) {
	char a[RATE_STRING_MAX], b[RATE_STRING_MAX];

	if (!up && !down)
		return strcpy(buf, "-");
	snprintf(buf, 2 * RATE_STRING_MAX + 2, "%s/%s", up ? rate_format(up, a) : "-", down ? rate_format(down, b) : "-");
	return buf;
}

/* s cut or padded to exactly width terminal columns (multibyte aware:
 * invalid bytes and control characters become '?'). */
static void fit(const char *s, int width, bool right, char *out, size_t size) {
	mbstate_t st = {};
	size_t o = 0;
	int used = 0;
	char tmp[1024];

	if (width <= 0 || size == 0) {
		if (size)
			out[0] = '\0';
		return;
	}
	s = s ?: "";
	for (size_t i = 0; s[i] && o + MB_LEN_MAX + 1 < sizeof(tmp);) {
		wchar_t wc;
		size_t l = mbrtowc(&wc, s + i, strlen(s + i), &st);
		int w;

		if (l == (size_t)-1 || l == (size_t)-2 || l == 0) {
			memset(&st, 0, sizeof(st));
			wc = L'?';
			l = 1;
			w = 1;
			if (used + w > width)
				break;
			tmp[o++] = '?';
		} else {
			w = wcwidth(wc);
			if (w < 0) {
				w = 1;
				if (used + w > width)
					break;
				tmp[o++] = '?';
			} else {
				if (used + w > width)
					break;
				memcpy(tmp + o, s + i, l);
				o += l;
			}
		}
		used += w;
		i += l;
	}
	tmp[o] = '\0';
	if ((size_t)(width - used) + o + 1 > size) {
		snprintf(out, size, "%s", tmp);
		return;
	}
	if (right)
		snprintf(out, size, "%*s%s", width - used, "", tmp);
	else
		snprintf(out, size, "%s%*s", tmp, width - used, "");
}

/* ---- the daemon --------------------------------------------------------------- */

typedef struct Conn {
	int fd;
} Conn;

static int conn_open(Conn *c) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (c->fd >= 0)
		return 0;
	if (strlen(arg_socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, arg_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	c->fd = fd;
	return 0;
}

static void conn_close(Conn *c) {
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Calls a method on the kept connection (reconnecting once if the daemon
 * went away). On success *ret_msg is the reply, *ret its parameters. On a
 * refusal: 1 and *ret_error the daemon's reason (or error name), malloc'ed.
 * Negative errno when the daemon cannot be reached. */
static int conn_call(Conn *c, const char *method, json_object *params, json_object **ret_msg, json_object **ret,
		     char **ret_error) {
	char full[128];
	json_object *msg = NULL, *p = NULL;
	const char *error = NULL;
	int r;

	snprintf(full, sizeof(full), VARLINK_INTERFACE ".%s", method);
	for (int attempt = 0;; attempt++) {
		r = conn_open(c);
		if (r >= 0) {
			json_object_get(params);
			r = vl_call_sync(c->fd, full, params, CALL_TIMEOUT_MS, &msg);
		}
		if (r >= 0)
			break;
		conn_close(c);
		if (attempt > 0) {
			json_object_put(params);
			return r;
		}
	}
	json_object_put(params);
	if (vl_reply_parse(msg, &error, &p) < 0) {
		json_object_put(msg);
		*ret_error = strdup("malformed reply from netbumpd");
		return 1;
	}
	if (error) {
		const char *reason = jget_str(p, "reason"), *param = jget_str(p, "parameter");
		const char *short_error = strrchr(error, '.') ? strrchr(error, '.') + 1 : error;

		if (param)
			r = asprintf(ret_error, "%s (parameter '%s')", reason ?: short_error, param);
		else
			r = asprintf(ret_error, "%s", reason ?: short_error);
		if (r < 0)
			*ret_error = NULL;
		json_object_put(msg);
		return 1;
	}
	*ret_msg = msg;
	*ret = p;
	return 0;
}

/* ---- grouping ----------------------------------------------------------------- */

static void row_done(Row *r) {
	free(r->key);
	free(r->target);
	free(r->name);
	free(r->user);
	free(r->rule);
}

static void snapshot_done(Snapshot *s) {
	for (size_t k = 0; k < s->n_rows; k++)
		row_done(&s->rows[k]);
	free(s->rows);
	json_object_put(s->msg);
	*s = (Snapshot){};
}

static Row *row_find_or_add(Snapshot *s, size_t *allocated, const char *key) {
	Row *r;

	for (size_t k = 0; k < s->n_rows; k++)
		if (streq(s->rows[k].key, key))
			return &s->rows[k];
	if (s->n_rows == *allocated) {
		size_t na = *allocated ? *allocated * 2 : 32;
		Row *n = realloc(s->rows, na * sizeof(*n));
		if (!n)
			return NULL;
		s->rows = n;
		*allocated = na;
	}
	r = &s->rows[s->n_rows];
	*r = (Row){ .id = -1, .key = strdup(key) };
	if (!r->key)
		return NULL;
	s->n_rows++;
	return r;
}

static int set_str(char **p, const char *v) {
	if (*p || !v)
		return 0;
	*p = strdup(v);
	return *p ? 0 : -ENOMEM;
}

static void row_add_traffic(Row *r, json_object *o) {
	r->up_rate += jget_u64(o, "up_rate");
	r->down_rate += jget_u64(o, "down_rate");
	r->up_bytes += jget_u64(o, "up_bytes");
	r->down_bytes += jget_u64(o, "down_bytes");
	r->up_packets += jget_u64(o, "up_packets");
	r->down_packets += jget_u64(o, "down_packets");
	r->n++;
}

/* The limits of the rule on exactly this target, if there is one. */
static void row_own_limits(Row *r, json_object *rules) {
	json_object *rule = jget_rule(rules, r->target);

	if (!rule)
		return;
	r->up_limit = jget_u64(rule, "up");
	r->down_limit = jget_u64(rule, "down");
	free(r->rule);
	r->rule = strdup(r->target);
}

/* Does a cgroup path lie in a user's own service manager (user@UID.service)?
 * Those units are not the system manager's, so unit: cannot name them. */
static bool in_user_manager(const char *path) {
	return path && strstr(path, "/user@") != NULL;
}

static int row_compare(const void *a, const void *b, void *userdata) {
	const Row *x = a, *y = b;
	const Sort *sort = userdata;
	uint64_t tx = x->up_rate + x->down_rate, ty = y->up_rate + y->down_rate;
	uint64_t bx = x->up_bytes + x->down_bytes, by = y->up_bytes + y->down_bytes;
	int c;

	switch (*sort) {
	case SORT_NAME:
		c = strverscmp(x->name ?: "", y->name ?: "");
		if (c != 0)
			return c;
		break;
	case SORT_TOTAL:
		if (bx != by)
			return bx > by ? -1 : 1;
		break;
	default:
		break;
	}
	if (tx != ty)
		return tx > ty ? -1 : 1;
	if (bx != by)
		return bx > by ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* Does the row show text (case-insensitively) in its name, user, target
 * or rule? */
static bool row_matches(const Row *r, const char *text) {
	return !*text || (r->name && strcasestr(r->name, text)) || (r->user && strcasestr(r->user, text)) ||
	       (r->target && strcasestr(r->target, text)) || (r->rule && strcasestr(r->rule, text));
}

/* Keeps the rows the filter lets through, in the order asked for. */
static void snapshot_arrange(Snapshot *s, const TopOptions *o) {
	size_t n = 0;

	for (size_t k = 0; k < s->n_rows; k++) {
		if (row_matches(&s->rows[k], o->filter))
			s->rows[n++] = s->rows[k];
		else
			row_done(&s->rows[k]);
	}
	s->n_rows = n;
	if (n > 0)
		qsort_r(s->rows, n, sizeof(*s->rows), row_compare, (void *)&o->sort);
}

/* One row per connection (the Connections reply): what the other end is,
 * and what has it here. */
static int snapshot_connections(Snapshot *s) {
	size_t allocated = 0;

	for (size_t k = 0; s->procs && k < json_object_array_length(s->procs); k++) {
		json_object *o = json_object_array_get_idx(s->procs, k);
		const char *remote = jget_str(o, "remote"), *local = jget_str(o, "local"), *comm = jget_str(o, "comm");
		const char *proto = jget_str(o, "protocol"), *user = jget_str(o, "user");
		long long pid = (long long)jget_u64(o, "pid");
		char key[64], name[512], uidbuf[32];
		Row *r;

		snprintf(key, sizeof(key), "conn:%llu", (unsigned long long)jget_u64(o, "cookie"));
		snprintf(name, sizeof(name), "%s %s <- %s%s%s", proto ?: "?", remote ?: "?", local ?: "?", comm ? " " : "",
			 comm ?: "");
		snprintf(uidbuf, sizeof(uidbuf), "%llu", (unsigned long long)jget_u64(o, "uid"));
		r = row_find_or_add(s, &allocated, key);
		if (!r)
			return -ENOMEM;
		/* A flow a deny refuses: marked where its rule would be. */
		char denied[600];
		const char *rule = jget_str(o, "rule");
		if (jget_str(o, "denied")) {
			snprintf(denied, sizeof(denied), "DENIED (%s)", jget_str(o, "denied"));
			rule = denied;
		}
		if (set_str(&r->name, name) < 0 || set_str(&r->target, jget_str(o, "target")) < 0 ||
		    set_str(&r->rule, rule) < 0 || set_str(&r->user, user ?: uidbuf) < 0)
			return -ENOMEM;
		r->id = pid > 0 ? pid : -1;
		r->up_limit = jget_u64(o, "up");
		r->down_limit = jget_u64(o, "down");
		row_add_traffic(r, o);
	}
	return 0;
}

static int snapshot_group(Snapshot *s, Group g) {
	size_t allocated = 0;
	char key[4200];

	if (g == GROUP_CONNECTION)
		return snapshot_connections(s);

	for (size_t k = 0; s->procs && k < json_object_array_length(s->procs); k++) {
		json_object *o = json_object_array_get_idx(s->procs, k);
		long long pid = (long long)jget_u64(o, "pid");
		unsigned long uid = (unsigned long)jget_u64(o, "uid");
		const char *comm = jget_str(o, "comm"), *cmdline = jget_str(o, "cmdline"), *user = jget_str(o, "user");
		const char *cgroup = jget_str(o, "cgroup"), *unit = jget_str(o, "unit");
		const char *unit_cg = jget_str(o, "unit_cgroup"), *rule = jget_str(o, "rule");
		char target[4200], name[4200], uidbuf[32];
		Row *r;

		snprintf(uidbuf, sizeof(uidbuf), "%lu", uid);
		switch (g) {
		case GROUP_PROCESS:
			if (pid > 0) {
				snprintf(key, sizeof(key), "pid:%lld", pid);
				snprintf(target, sizeof(target), "pid:%lld", pid);
				snprintf(name, sizeof(name), "%s", cmdline ?: comm ?: "?");
			} else {
				snprintf(key, sizeof(key), "cgroup:%s uid %lu", cgroup ?: "?", uid);
				snprintf(target, sizeof(target), "cgroup:%s", cgroup ?: "/");
				snprintf(name, sizeof(name), "(older sockets in %s)", cgroup ?: "?");
			}
			break;
		case GROUP_USER:
			snprintf(key, sizeof(key), "user@%lu", uid);
			snprintf(target, sizeof(target), "user@%lu", uid);
			snprintf(name, sizeof(name), "%s", user ?: uidbuf);
			break;
		case GROUP_UNIT:
			if (unit && !in_user_manager(unit_cg)) {
				snprintf(key, sizeof(key), "unit:%s", unit);
				snprintf(target, sizeof(target), "unit:%s", unit);
				snprintf(name, sizeof(name), "%s", unit);
			} else {
				/* No unit the system manager knows: the cgroup. */
				const char *cg = unit_cg ?: cgroup ?: "/";
				snprintf(key, sizeof(key), "cgroup:%s", cg);
				snprintf(target, sizeof(target), "cgroup:%s", cg);
				snprintf(name, sizeof(name), "%s", unit ?: cg);
			}
			break;
		case GROUP_RULE:
		default:
			snprintf(key, sizeof(key), "rule:%s", rule ?: "");
			snprintf(target, sizeof(target), "%s", rule ?: "");
			snprintf(name, sizeof(name), "%s", rule ?: "(no rule)");
			break;
		}

		r = row_find_or_add(s, &allocated, key);
		if (!r)
			return -ENOMEM;
		if (r->n == 0) {
			if (set_str(&r->name, name) < 0 || (target[0] && set_str(&r->target, target) < 0))
				return -ENOMEM;
			if (g == GROUP_PROCESS) {
				r->id = pid > 0 ? pid : -1;
				if (set_str(&r->rule, rule) < 0)
					return -ENOMEM;
				r->up_limit = jget_u64(o, "up");
				r->down_limit = jget_u64(o, "down");
			} else if (g == GROUP_USER)
				r->id = (long long)uid;
			if (set_str(&r->user, user ?: uidbuf) < 0)
				return -ENOMEM;
		} else if (r->user && !streq(r->user, user ?: uidbuf)) {
			free(r->user);
			r->user = strdup("*");
			if (!r->user)
				return -ENOMEM;
		}
		row_add_traffic(r, o);
	}

	/* By user, the USER column names it; NAME says how many processes. */
	for (size_t k = 0; g == GROUP_USER && k < s->n_rows; k++) {
		Row *r = &s->rows[k];

		free(r->name);
		if (asprintf(&r->name, "%u process%s", r->n, r->n == 1 ? "" : "es") < 0)
			r->name = NULL;
	}

	/* Other groupings show the limit of the group's own rule; by rule,
	 * every rule has a row, with the class counters when there is no
	 * process accounting. */
	for (size_t k = 0; g != GROUP_PROCESS && k < s->n_rows; k++)
		row_own_limits(&s->rows[k], s->rules);
	for (size_t k = 0; g == GROUP_RULE && s->rules && k < json_object_array_length(s->rules); k++) {
		json_object *rule = json_object_array_get_idx(s->rules, k), *us = NULL, *ds = NULL;
		const char *t = jget_str(rule, "target");
		Row *r;

		if (!t)
			continue;
		snprintf(key, sizeof(key), "rule:%s", t);
		r = row_find_or_add(s, &allocated, key);
		if (!r)
			return -ENOMEM;
		if (set_str(&r->name, t) < 0 || set_str(&r->target, t) < 0)
			return -ENOMEM;
		row_own_limits(r, s->rules);
		if (!s->accounting) {
			json_object_object_get_ex(rule, "up_stats", &us);
			json_object_object_get_ex(rule, "down_stats", &ds);
			r->up_rate = jget_u64(us, "rate");
			r->down_rate = jget_u64(ds, "rate");
			r->up_bytes = jget_u64(us, "bytes");
			r->down_bytes = jget_u64(ds, "bytes");
			r->up_packets = jget_u64(us, "packets");
			r->down_packets = jget_u64(ds, "packets");
		}
	}
	return 0;
}

/* Calls Top and groups the reply. 1 with *ret_error on a refusal. */
static int snapshot_take(Conn *c, const TopOptions *o, Snapshot *ret, char **ret_error) {
	Snapshot s = {};
	json_object *p = NULL, *v;
	int r;

	r = conn_call(c, o->group == GROUP_CONNECTION ? "Connections" : "Top", NULL, &s.msg, &p, ret_error);
	if (r != 0)
		return r;
	if (!json_object_object_get_ex(p, o->group == GROUP_CONNECTION ? "connections" : "processes", &s.procs) ||
	    !json_object_is_type(s.procs, json_type_array))
		s.procs = NULL;
	if (o->group == GROUP_CONNECTION)
		s.accounting = true; /* rates from the sockets' own counters */
	if (!json_object_object_get_ex(p, "rules", &s.rules) || !json_object_is_type(s.rules, json_type_array))
		s.rules = NULL;
	if (o->group != GROUP_CONNECTION)
		s.accounting = json_object_object_get_ex(p, "accounting", &v) && json_object_get_boolean(v);
	s.interval_usec = jget_u64(p, "interval_usec");
	r = snapshot_group(&s, o->group);
	if (r < 0) {
		snapshot_done(&s);
		return r;
	}
	snapshot_arrange(&s, o);
	*ret = s;
	return 0;
}

/* ---- layout ------------------------------------------------------------------- */

/* Column widths; NAME takes what is left, RULE shows from 100 columns on. */
/* Column widths; LIMIT as wide as the widest limits shown (within W_LIMIT
 * and W_LIMIT_MAX, "123.457mbit/123.457mbit"), NAME takes what is left, RULE
 * shows from 100 columns on. */
enum { W_ID = 7, W_USER = 8, W_RATE = 8, W_BYTES = 8, W_LIMIT = 11, W_LIMIT_MAX = 23, W_NAME_MIN = 10 };

typedef struct Layout {
	int name, rule; /* widths; rule 0 = not shown */
	int limit;
} Layout;

static Layout layout_for(int cols, Group g, const Snapshot *s) {
	Layout l = { .limit = W_LIMIT };
	int fixed;

	for (size_t k = 0; s && k < s->n_rows; k++) {
		char lim[2 * RATE_STRING_MAX + 2];
		int w = (int)strlen(fmt_limits(s->rows[k].up_limit, s->rows[k].down_limit, lim));

		if (w > l.limit)
			l.limit = w < W_LIMIT_MAX ? w : W_LIMIT_MAX;
	}
	fixed = W_ID + 1 + W_USER + 1 + 2 * (W_RATE + 1) + 2 * (W_BYTES + 1) + l.limit;

	l.name = cols - fixed - 1;
	if (g != GROUP_RULE && l.name >= 2 * 18) {
		l.rule = l.name / 3;
		if (l.rule > 40)
			l.rule = 40;
		l.name -= l.rule + 1;
	}
	if (l.name < W_NAME_MIN)
		l.name = W_NAME_MIN;
	return l;
}

static const char *id_header(Group g) {
	return g == GROUP_PROCESS || g == GROUP_CONNECTION ? "PID" : g == GROUP_USER ? "UID" : "PROCS";
}

static const char *name_header(Group g) {
	return g == GROUP_PROCESS	? "COMMAND"
	       : g == GROUP_USER	? "PROCESSES"
	       : g == GROUP_UNIT	? "UNIT/CGROUP"
	       : g == GROUP_CONNECTION ? "CONNECTION (REMOTE <- LOCAL)"
				       : "RULE";
}

/* One line of text for a row (or the header when r is NULL), at most cols
 * columns. */
static void format_line(const Row *r, const TopOptions *o, Layout l, char *out, size_t size) {
	char id[32], user[64], name[1024], rule[512], ur[FORMAT_MAX], dr[FORMAT_MAX], ub[FORMAT_MAX], db[FORMAT_MAX],
		lim[2 * RATE_STRING_MAX + 2];
	Group g = o->group;
	char f_id[64], f_user[128], f_name[4096], f_rule[2048], f_lim[128];

	if (!r) {
		fit(id_header(g), W_ID, true, f_id, sizeof(f_id));
		fit("USER", W_USER, false, f_user, sizeof(f_user));
		fit(name_header(g), l.name, false, f_name, sizeof(f_name));
		fit("RULE", l.rule, false, f_rule, sizeof(f_rule));
		fit("LIMIT UP/DN", l.limit, false, f_lim, sizeof(f_lim));
		snprintf(out, size, "%s %s %s %*s %*s %*s %*s %s%s%s", f_id, f_user, f_name, W_RATE, "UP", W_RATE,
			 "DOWN", W_BYTES, "UP-TOTAL", W_BYTES, "DN-TOTAL", f_lim, l.rule ? " " : "",
			 l.rule ? f_rule : "");
		return;
	}
	if (g == GROUP_PROCESS || g == GROUP_USER || g == GROUP_CONNECTION)
		r->id >= 0 ? snprintf(id, sizeof(id), "%lld", r->id) : snprintf(id, sizeof(id), "-");
	else
		snprintf(id, sizeof(id), "%u", r->n);
	snprintf(user, sizeof(user), "%s", r->user ?: "-");
	snprintf(name, sizeof(name), "%s", r->name ?: "?");
	snprintf(rule, sizeof(rule), "%s", r->rule ?: "-");
	fit(id, W_ID, true, f_id, sizeof(f_id));
	fit(user, W_USER, false, f_user, sizeof(f_user));
	fit(name, l.name, false, f_name, sizeof(f_name));
	fit(rule, l.rule, false, f_rule, sizeof(f_rule));
	fit(fmt_limits(r->up_limit, r->down_limit, lim), l.limit, false, f_lim, sizeof(f_lim));
	snprintf(out, size, "%s %s %s %*s %*s %*s %*s %s%s%s", f_id, f_user, f_name, W_RATE, format_rate(r->up_rate, o->unit, ur),
		 W_RATE, format_rate(r->down_rate, o->unit, dr), W_BYTES, format_bytes(r->up_bytes, ub), W_BYTES,
		 format_bytes(r->down_bytes, db), f_lim, l.rule ? " " : "", l.rule ? f_rule : "");
}

/* ---- --once ------------------------------------------------------------------- */

static json_object *row_to_json(const Row *r, Group g) {
	json_object *o = json_object_new_object();

	json_object_object_add(o, "key", json_object_new_string(r->key));
	json_object_object_add(o, "target", r->target ? json_object_new_string(r->target) : NULL);
	json_object_object_add(o, "name", r->name ? json_object_new_string(r->name) : NULL);
	if (g == GROUP_PROCESS || g == GROUP_CONNECTION)
		json_object_object_add(o, "pid", json_object_new_int64(r->id > 0 ? r->id : 0));
	if (g == GROUP_USER)
		json_object_object_add(o, "uid", json_object_new_int64(r->id));
	json_object_object_add(o, "user", r->user ? json_object_new_string(r->user) : NULL);
	json_object_object_add(o, "processes", json_object_new_int64(r->n));
	json_object_object_add(o, "rule", r->rule ? json_object_new_string(r->rule) : NULL);
	json_object_object_add(o, "up", json_object_new_int64((int64_t)r->up_limit));
	json_object_object_add(o, "down", json_object_new_int64((int64_t)r->down_limit));
	json_object_object_add(o, "up_rate", json_object_new_int64((int64_t)r->up_rate));
	json_object_object_add(o, "down_rate", json_object_new_int64((int64_t)r->down_rate));
	json_object_object_add(o, "up_bytes", json_object_new_int64((int64_t)r->up_bytes));
	json_object_object_add(o, "down_bytes", json_object_new_int64((int64_t)r->down_bytes));
	json_object_object_add(o, "up_packets", json_object_new_int64((int64_t)r->up_packets));
	json_object_object_add(o, "down_packets", json_object_new_int64((int64_t)r->down_packets));
	return o;
}

/* The width --once fills: $COLUMNS when it is a number (as a shell sets it,
 * or a script asks), else the terminal's when stdout is one, else 132. */
static int once_width(void) {
	const char *e = getenv("COLUMNS");
	struct winsize ws;
	char *end = NULL;
	long v;

	if (e && *e) {
		errno = 0;
		v = strtol(e, &end, 10);
		if (errno == 0 && end && !*end && v >= 40 && v <= 4000)
			return (int)v;
	}
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 132;
}

static int top_once(Conn *c, const TopOptions *opts) {
	Group g = opts->group;
	_cleanup_free_ char *error = NULL;
	Snapshot s = {};
	int r;

	r = snapshot_take(c, opts, &s, &error);
	/* Connections' rates are over the time since the daemon last read
	 * their counters: read them, and a second later again. */
	if (r == 0 && g == GROUP_CONNECTION) {
		snapshot_done(&s);
		(void)usleep(REFRESH_MSEC * 1000);
		r = snapshot_take(c, opts, &s, &error);
	}
	if (r < 0) {
		ctl_error("cannot reach netbumpd at %s: %s", arg_socket, strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (r > 0) {
		ctl_error("%s", error ?: "Top failed");
		return EXIT_REFUSED;
	}
	if (arg_json) {
		json_object *o = json_object_new_object(), *a = json_object_new_array();

		json_object_object_add(o, "group", json_object_new_string(group_names[g]));
		json_object_object_add(o, "sort", json_object_new_string(sort_names[opts->sort]));
		json_object_object_add(o, "filter", opts->filter[0] ? json_object_new_string(opts->filter) : NULL);
		json_object_object_add(o, "accounting", json_object_new_boolean(s.accounting));
		json_object_object_add(o, "interval_usec", json_object_new_int64((int64_t)s.interval_usec));
		for (size_t k = 0; k < s.n_rows; k++)
			json_object_array_add(a, row_to_json(&s.rows[k], g));
		json_object_object_add(o, "rows", a);
		json_object_object_add(o, "rules", json_object_get(s.rules));
		ctl_print_json(o);
		json_object_put(o);
	} else {
		Layout l = layout_for(once_width(), g, &s);
		char line[8192];

		if (!s.accounting)
			printf("(per-process accounting is off in netbumpd: rules only)\n");
		for (size_t k = 0; k <= s.n_rows; k++) {
			format_line(k == 0 ? NULL : &s.rows[k - 1], opts, l, line, sizeof(line));
			/* No trailing blanks in a pipe. */
			for (size_t e = strlen(line); e > 0 && line[e - 1] == ' '; e--)
				line[e - 1] = '\0';
			printf("%s\n", line);
		}
	}
	snapshot_done(&s);
	return 0;
}

/* ---- the full-screen view ----------------------------------------------------- */

typedef enum PromptKind {
	PROMPT_NONE,
	PROMPT_BOTH,
	PROMPT_UP,
	PROMPT_DOWN,
	PROMPT_FILTER,
} PromptKind;

typedef struct View {
	Conn conn;
	TopOptions opts;
	Snapshot snap;
	bool have_snap;
	char *selected_key; /* survives refreshes and re-sorting */
	size_t sel, first;  /* selected row, first row shown */
	char status[512];
	bool status_error;
	PromptKind prompt;
	char *prompt_target; /* fixed when the prompt opens */
	uint64_t prompt_up, prompt_down; /* the target's own limits then */
	bool prompt_own;
	char input[PROMPT_MAX + 1];
} View;

static volatile sig_atomic_t quit_signal;
static bool curses_active;

static void on_quit_signal(int sig) {
	quit_signal = sig;
}

static void restore_terminal(void) {
	if (curses_active) {
		endwin();
		curses_active = false;
	}
}

_printf_(3, 4) static void set_status(View *v, bool error, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->status, sizeof(v->status), fmt, ap);
	va_end(ap);
	v->status_error = error;
}

static void view_refresh(View *v) {
	_cleanup_free_ char *error = NULL;
	Snapshot s = {};
	int r;

	r = snapshot_take(&v->conn, &v->opts, &s, &error);
	if (r < 0) {
		set_status(v, true, "cannot reach netbumpd at %s: %s", arg_socket, strerror(-r));
		return;
	}
	if (r > 0) {
		set_status(v, true, "Top: %s", error ?: "failed");
		return;
	}
	if (v->have_snap)
		snapshot_done(&v->snap);
	v->snap = s;
	v->have_snap = true;

	/* Keep the same row selected wherever it moved. */
	v->sel = 0;
	for (size_t k = 0; v->selected_key && k < v->snap.n_rows; k++)
		if (streq(v->snap.rows[k].key, v->selected_key)) {
			v->sel = k;
			break;
		}
	free(v->selected_key);
	v->selected_key = v->snap.n_rows ? strdup(v->snap.rows[v->sel].key) : NULL;
}

static void view_select(View *v, long delta) {
	long n = (long)v->snap.n_rows, s = (long)v->sel + delta;

	if (!v->have_snap || n == 0)
		return;
	if (s < 0)
		s = 0;
	if (s >= n)
		s = n - 1;
	v->sel = (size_t)s;
	free(v->selected_key);
	v->selected_key = strdup(v->snap.rows[v->sel].key);
}

static const Row *view_selected(View *v) {
	if (!v->have_snap || v->sel >= v->snap.n_rows)
		return NULL;
	return &v->snap.rows[v->sel];
}

static void view_draw(View *v) {
	int rows, cols, list_rows;
	Layout l;
	char line[8192], a[FORMAT_MAX], b[FORMAT_MAX], clock[16];
	uint64_t up = 0, down = 0;
	time_t now = time(NULL);
	struct tm tm;

	getmaxyx(stdscr, rows, cols);
	erase();
	if (rows < 3 || cols < 20) {
		mvaddnstr(0, 0, "netbumpctl top: terminal too small", cols);
		refresh();
		return;
	}
	l = layout_for(cols, v->opts.group, v->have_snap ? &v->snap : NULL);
	list_rows = rows - 3;

	for (size_t k = 0; v->have_snap && k < v->snap.n_rows; k++) {
		up += v->snap.rows[k].up_rate;
		down += v->snap.rows[k].down_rate;
	}
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&now, &tm));
	snprintf(line, sizeof(line), "netbumpctl top - %s - by %s, sorted by %s%s%s%s - up %s down %s%s%s", clock,
		 group_names[v->opts.group], sort_names[v->opts.sort], v->opts.filter[0] ? " - filter '" : "",
		 v->opts.filter, v->opts.filter[0] ? "'" : "", format_rate(up, v->opts.unit, a),
		 format_rate(down, v->opts.unit, b), v->have_snap && !v->snap.accounting ? " - accounting off" : "",
		 v->have_snap && v->snap.interval_usec ? "" : " - measuring");
	mvaddnstr(0, 0, line, cols);

	format_line(NULL, &v->opts, l, line, sizeof(line));
	attron(A_REVERSE);
	mvaddnstr(1, 0, line, cols);
	for (int x = (int)strlen(line); x < cols; x++)
		mvaddch(1, x, ' ');
	attroff(A_REVERSE);

	if (v->have_snap) {
		if (v->sel < v->first)
			v->first = v->sel;
		if (list_rows > 0 && v->sel >= v->first + (size_t)list_rows)
			v->first = v->sel - (size_t)list_rows + 1;
		for (int y = 0; y < list_rows && v->first + (size_t)y < v->snap.n_rows; y++) {
			size_t k = v->first + (size_t)y;

			format_line(&v->snap.rows[k], &v->opts, l, line, sizeof(line));
			if (k == v->sel)
				attron(A_REVERSE | A_BOLD);
			mvaddnstr(2 + y, 0, line, cols);
			if (k == v->sel) {
				for (int x = (int)strlen(line); x < cols; x++)
					mvaddch(2 + y, x, ' ');
				attroff(A_REVERSE | A_BOLD);
			}
		}
		if (v->snap.n_rows == 0)
			mvaddnstr(2, 0,
				  v->opts.filter[0] ? "(no row matches the filter; / and Enter on nothing clears it)"
				  : v->snap.accounting ? "(no traffic seen yet)"
						       : "(no rules)",
				  cols);
	}

	/* Status line: the prompt, a message, or the keys. */
	move(rows - 1, 0);
	clrtoeol();
	if (v->prompt == PROMPT_FILTER) {
		snprintf(line, sizeof(line), "Show rows containing (name, user, target or rule; Esc cancels): %s",
			 v->input);
		attron(A_BOLD);
		mvaddnstr(rows - 1, 0, line, cols);
		attroff(A_BOLD);
		curs_set(1);
	} else if (v->prompt != PROMPT_NONE) {
		snprintf(line, sizeof(line), "%s limit of %s (e.g. 8mbit, 'unlimited'; Esc cancels): %s",
			 v->prompt == PROMPT_BOTH ? "Up+down" : v->prompt == PROMPT_UP ? "Upload" : "Download",
			 v->prompt_target, v->input);
		attron(A_BOLD);
		mvaddnstr(rows - 1, 0, line, cols);
		attroff(A_BOLD);
		curs_set(1);
	} else {
		curs_set(0);
		if (v->status[0]) {
			if (v->status_error)
				attron(A_BOLD);
			mvaddnstr(rows - 1, 0, v->status, cols);
			if (v->status_error)
				attroff(A_BOLD);
		} else
			mvaddnstr(rows - 1, 0,
				  "l limit  u up  d down  r remove  g group  s sort  b bits/bytes  / filter  ? help  q quit",
				  cols);
	}
	refresh();
}

/* Set (or Unset) on the prompt's target with what was typed. */
static void view_apply_prompt(View *v) {
	_cleanup_free_ char *error = NULL;
	json_object *params, *msg = NULL, *reply = NULL;
	uint64_t bps = 0;
	bool bytes = false, unset = false;
	char shown[RATE_STRING_MAX];
	const char *in = v->input;
	int r;

	while (*in == ' ')
		in++;
	if (!*in) {
		set_status(v, false, "No rate given: nothing changed.");
		return;
	}
	if (streq(in, "unlimited") || streq(in, "none") || streq(in, "-") || streq(in, "0"))
		bps = 0;
	else {
		r = rate_parse(in, &bps, &bytes);
		if (r < 0) {
			set_status(v, true, "Invalid rate '%s' (%s): expected e.g. 500kbit, 8mbit, 1gbit", in,
				   r == -ERANGE ? "out of range, 8bit to 10tbit" : "unknown form");
			return;
		}
	}

	/* Lifting the last limited direction is removing the rule. */
	if (bps == 0 && (v->prompt == PROMPT_BOTH || !v->prompt_own ||
			 (v->prompt == PROMPT_UP && !v->prompt_down) || (v->prompt == PROMPT_DOWN && !v->prompt_up)))
		unset = true;

	params = json_object_new_object();
	json_object_object_add(params, "target", json_object_new_string(v->prompt_target));
	if (!unset) {
		if (v->prompt != PROMPT_DOWN)
			json_object_object_add(params, "up", json_object_new_int64((int64_t)bps));
		if (v->prompt != PROMPT_UP)
			json_object_object_add(params, "down", json_object_new_int64((int64_t)bps));
	}
	r = conn_call(&v->conn, unset ? "Unset" : "Set", params, &msg, &reply, &error);
	json_object_put(msg);
	if (r < 0)
		set_status(v, true, "cannot reach netbumpd: %s", strerror(-r));
	else if (r > 0)
		set_status(v, true, "%s %s refused: %s", unset ? "Unset" : "Set", v->prompt_target, error ?: "?");
	else if (unset)
		set_status(v, false, "%s: limit removed.", v->prompt_target);
	else
		set_status(v, false, "%s: %s limited to %s%s%s", v->prompt_target,
			   v->prompt == PROMPT_BOTH ? "up and down" : v->prompt == PROMPT_UP ? "upload" : "download",
			   rate_format(bps, shown), bytes ? " (note: 'bps' units count BYTES per second)" : "", "");
}

static void view_unset(View *v) {
	_cleanup_free_ char *error = NULL;
	const Row *row = view_selected(v);
	json_object *params, *msg = NULL, *reply = NULL;
	int r;

	if (!row || !row->target) {
		set_status(v, true, "Nothing to remove here.");
		return;
	}
	if (!jget_rule(v->snap.rules, row->target)) {
		if (row->rule)
			set_status(v, true, "%s has no rule of its own; it falls under %s (press g for the rule view)",
				   row->target, row->rule);
		else
			set_status(v, true, "%s has no limit.", row->target);
		return;
	}
	params = json_object_new_object();
	json_object_object_add(params, "target", json_object_new_string(row->target));
	r = conn_call(&v->conn, "Unset", params, &msg, &reply, &error);
	json_object_put(msg);
	if (r < 0)
		set_status(v, true, "cannot reach netbumpd: %s", strerror(-r));
	else if (r > 0)
		set_status(v, true, "Unset %s refused: %s", row->target, error ?: "?");
	else
		set_status(v, false, "%s: limit removed.", row->target);
}

static void view_open_prompt(View *v, PromptKind kind) {
	const Row *row = view_selected(v);
	json_object *rule;

	if (!row || !row->target) {
		set_status(v, true, "Nothing to limit here%s.",
			   v->opts.group == GROUP_RULE ? ": traffic under no rule has no target (group by process)" : "");
		return;
	}
	free(v->prompt_target);
	v->prompt_target = strdup(row->target);
	if (!v->prompt_target)
		return;
	rule = jget_rule(v->snap.rules, row->target);
	v->prompt_own = rule != NULL;
	v->prompt_up = jget_u64(rule, "up");
	v->prompt_down = jget_u64(rule, "down");
	v->prompt = kind;
	v->input[0] = '\0';
	v->status[0] = '\0';
}

/* A key while the prompt is open. true: act on it now. */
static bool view_prompt_key(View *v, int ch) {
	size_t l = strlen(v->input);

	switch (ch) {
	case 27: /* Esc */
	case 7:  /* ^G */
		v->prompt = PROMPT_NONE;
		set_status(v, false, "Cancelled.");
		return false;
	case '\n':
	case '\r':
	case KEY_ENTER:
		return true; /* the caller acts, then closes the prompt */
	case KEY_BACKSPACE:
	case 127:
	case 8:
		if (l > 0)
			v->input[l - 1] = '\0';
		return false;
	case 21: /* ^U */
		v->input[0] = '\0';
		return false;
	default:
		if (ch >= 0x20 && ch < 0x7f && l < PROMPT_MAX) {
			v->input[l] = (char)ch;
			v->input[l + 1] = '\0';
		}
		return false;
	}
}

static uint64_t now_msec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int top_interactive(Conn *conn, const TopOptions *opts) {
	View v = { .conn = *conn, .opts = *opts };
	struct sigaction sa = { .sa_handler = on_quit_signal };
	SCREEN *screen;
	uint64_t next = 0;
	int rows, cols;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		ctl_error("top needs a terminal; use 'top --once' (and --json) in scripts");
		return EXIT_USAGE;
	}
	/* Before ncurses starts: it leaves handlers it finds in place. No
	 * SA_RESTART, so a signal ends the wait for a key at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Reach the daemon before taking over the screen. */
	view_refresh(&v);
	if (!v.have_snap) {
		ctl_error("%s", v.status);
		conn_close(&v.conn);
		return v.status[0] && strstr(v.status, "cannot reach") ? EXIT_UNREACHABLE : EXIT_REFUSED;
	}

	setlocale(LC_ALL, "");
	screen = newterm(NULL, stdout, stdin);
	if (!screen) {
		ctl_error("cannot drive terminal '%s'", getenv("TERM") ?: "(TERM unset)");
		conn_close(&v.conn);
		return EXIT_USAGE;
	}
	curses_active = true;
	atexit(restore_terminal);
	/* Esc cancels a prompt at once: a key sequence (an arrow) arrives
	 * within milliseconds, not the second ncurses waits by default. */
	set_escdelay(25);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	next = now_msec() + REFRESH_MSEC;

	while (!quit_signal) {
		uint64_t now = now_msec();
		bool act = false;
		int ch;

		view_draw(&v);
		timeout(now >= next ? 0 : (int)(next - now));
		ch = getch();
		if (quit_signal)
			break;
		if (ch == ERR) {
			if (now_msec() >= next) {
				view_refresh(&v);
				next = now_msec() + REFRESH_MSEC;
			}
			continue;
		}
		if (ch == KEY_RESIZE)
			continue; /* drawn again at the top of the loop */
		if (v.prompt == PROMPT_FILTER) {
			if (view_prompt_key(&v, ch)) {
				snprintf(v.opts.filter, sizeof(v.opts.filter), "%s", v.input);
				set_status(&v, false, v.opts.filter[0] ? "Showing rows containing '%s'." : "%sShowing all rows.",
					   v.opts.filter);
				v.prompt = PROMPT_NONE;
				v.first = 0;
				act = true;
			}
		} else if (v.prompt != PROMPT_NONE) {
			if (view_prompt_key(&v, ch)) {
				view_apply_prompt(&v);
				v.prompt = PROMPT_NONE;
				act = true;
			}
		} else {
			getmaxyx(stdscr, rows, cols);
			(void)cols;
			switch (ch) {
			case 'q':
			case 'Q':
				quit_signal = -1;
				break;
			case KEY_UP:
			case 'k':
				view_select(&v, -1);
				break;
			case KEY_DOWN:
			case 'j':
				view_select(&v, 1);
				break;
			case KEY_PPAGE:
				view_select(&v, -(rows > 4 ? rows - 3 : 1));
				break;
			case KEY_NPAGE:
			case ' ':
				view_select(&v, rows > 4 ? rows - 3 : 1);
				break;
			case KEY_HOME:
				view_select(&v, -(long)v.snap.n_rows);
				break;
			case KEY_END:
				view_select(&v, (long)v.snap.n_rows);
				break;
			case 'l':
			case 'L':
				view_open_prompt(&v, PROMPT_BOTH);
				break;
			case 'u':
			case 'U':
				view_open_prompt(&v, PROMPT_UP);
				break;
			case 'd':
			case 'D':
				view_open_prompt(&v, PROMPT_DOWN);
				break;
			case 'r':
			case 'x':
			case KEY_DC:
				view_unset(&v);
				act = true;
				break;
			case 'g':
			case 'G':
				v.opts.group = (Group)((v.opts.group + 1) % _GROUP_MAX);
				free(v.selected_key);
				v.selected_key = NULL;
				v.first = 0;
				set_status(&v, false, "Grouped by %s.", group_names[v.opts.group]);
				act = true;
				break;
			case 's':
			case 'S':
				v.opts.sort = (Sort)((v.opts.sort + 1) % _SORT_MAX);
				set_status(&v, false, "Sorted by %s.", sort_names[v.opts.sort]);
				act = true;
				break;
			case 'b':
			case 'B':
				v.opts.unit = v.opts.unit == FORMAT_BITS ? FORMAT_BYTES : FORMAT_BITS;
				set_status(&v, false, "Rates in %s.",
					   v.opts.unit == FORMAT_BITS ? "bits per second" : "bytes per second");
				break;
			case '/':
				v.prompt = PROMPT_FILTER;
				snprintf(v.input, sizeof(v.input), "%s", v.opts.filter);
				v.status[0] = '\0';
				break;
			case '?':
			case 'h':
				set_status(&v, false,
					   "l: limit up+down  u: upload  d: download  r/x: remove  g: process/user/unit/rule"
					   "  s: sort by rate/total/name  b: bits/bytes  /: filter  j/k/arrows: select  q: quit");
				break;
			case 12: /* ^L */
				clearok(stdscr, TRUE);
				break;
			default:
				break;
			}
		}
		if (act) {
			view_refresh(&v);
			next = now_msec() + REFRESH_MSEC;
		}
	}

	restore_terminal();
	delscreen(screen);
	if (v.have_snap)
		snapshot_done(&v.snap);
	free(v.selected_key);
	free(v.prompt_target);
	conn_close(&v.conn);
	return quit_signal > 0 ? 128 + quit_signal : 0;
}

/* "--name VALUE", "--name=VALUE" (or the short form "-x VALUE"): whether a
 * is that option; its value, or NULL when none follows. */
static bool top_option(const char *a, const char *name, const char *short_name, int argc, char *argv[], int *k,
		       const char **ret_value) {
	size_t l = strlen(name);

	if ((short_name && streq(a, short_name)) || streq(a, name)) {
		*ret_value = *k + 1 < argc ? argv[++*k] : NULL;
		return true;
	}
	if (strncmp(a, name, l) == 0 && a[l] == '=') {
		*ret_value = a + l + 1;
		return true;
	}
	return false;
}

/* The index of v in names[n], or -1. */
static int name_index(const char *v, const char *const *names, int n) {
	for (int x = 0; v && x < n; x++)
		if (streq(v, names[x]))
			return x;
	return -1;
}

int verb_top(int argc, char *argv[]) {
	Conn conn = { .fd = -1 };
	TopOptions o = { .group = GROUP_PROCESS, .sort = SORT_RATE, .unit = FORMAT_BITS };
	bool once = false;
	int r, x;

	for (int k = 1; k < argc; k++) {
		const char *a = argv[k], *v = NULL;

		if (streq(a, "--once"))
			once = true;
		else if (streq(a, "--bytes"))
			o.unit = FORMAT_BYTES;
		else if (top_option(a, "--group", "-g", argc, argv, &k, &v)) {
			x = name_index(v, group_names, _GROUP_MAX);
			if (x < 0) {
				ctl_error(v ? "unknown grouping '%s' (expected process, user, unit, rule or connection)"
					    : "%s--group needs process, user, unit, rule or connection",
					  v ?: "");
				return EXIT_USAGE;
			}
			o.group = (Group)x;
		} else if (top_option(a, "--sort", NULL, argc, argv, &k, &v)) {
			x = name_index(v, sort_names, _SORT_MAX);
			if (x < 0) {
				ctl_error(v ? "unknown order '%s' (expected rate, total or name)"
					    : "%s--sort needs rate, total or name",
					  v ?: "");
				return EXIT_USAGE;
			}
			o.sort = (Sort)x;
		} else if (top_option(a, "--filter", NULL, argc, argv, &k, &v)) {
			if (!v || strlen(v) > PROMPT_MAX) {
				ctl_error("--filter needs a text of at most %d bytes", PROMPT_MAX);
				return EXIT_USAGE;
			}
			snprintf(o.filter, sizeof(o.filter), "%s", v);
		} else {
			ctl_error("unexpected argument '%s' for top (netbumpctl top --help explains)", a);
			return EXIT_USAGE;
		}
	}
	if (arg_json && !once) {
		ctl_error("top --json prints one snapshot: add --once");
		return EXIT_USAGE;
	}
	if (once) {
		r = top_once(&conn, &o);
		conn_close(&conn);
		return r;
	}
	return top_interactive(&conn, &o);
}
