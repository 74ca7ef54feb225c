/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The view per connection (netbumpctl top, by connection): every TCP
 * connection and connected UDP socket netbumpd's namespace has, with both
 * ends, its process, the rule it falls under and, for TCP, the bytes each
 * way and the rates since the previous call (tcp_info's counters through
 * sock_diag; UDP sockets have none). A user sees its own sockets, root all.
 * The previous call's counters are kept by socket cookie, so that two
 * callers a second apart each get rates over what passed between theirs.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conns.h"
#include "macro.h"
#include "proc-util.h"
#include "rule.h"
#include "server.h"
#include "sock-diag.h"
#include "top.h"

#define CONNS_MAX 4096u /* in one reply: the busiest first */
#define CONNS_KEEP_USEC (60 * UINT64_C(1000000))

typedef struct ConnSample {
	uint64_t cookie;
	uint64_t sent, received;
	uint64_t usec; /* when they were read */
} ConnSample;

struct ConnsState {
	ConnSample *prev; /* by cookie */
	size_t n_prev;
};

typedef struct Conn {
	struct sock_info si;
	int64_t up_bps, down_bps; /* -1: not known (UDP, or first seen) */
} Conn;

typedef struct Collect {
	uid_t caller;
	Conn *v;
	size_t n, cap;
} Collect;

typedef struct InodePid {
	uint64_t inode;
	pid_t pid;
} InodePid;

static int cmp_sample(const void *a, const void *b) {
	uint64_t x = ((const ConnSample *)a)->cookie, y = ((const ConnSample *)b)->cookie;
	return x < y ? -1 : x > y;
}

static int cmp_inode(const void *a, const void *b) {
	uint64_t x = ((const InodePid *)a)->inode, y = ((const InodePid *)b)->inode;
	return x < y ? -1 : x > y;
}

static int collect_cb(const struct sock_info *s, void *userdata) {
	Collect *c = userdata;

	/* connections only: no listeners, no unconnected UDP, no TIME_WAIT */
	if (s->inode == 0 || s->state == TCP_LISTEN || (s->protocol == IPPROTO_UDP && s->state != TCP_ESTABLISHED) ||
	    (s->protocol == IPPROTO_TCP && s->state == TCP_CLOSE))
		return 0;
	if (c->caller != 0 && s->uid != c->caller)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		Conn *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = (Conn){ .si = *s, .up_bps = -1, .down_bps = -1 };
	return 0;
}

/* Which process has which socket: one pass over /proc/PID/fd of the
 * processes the caller may see. */
static int inode_pids(uid_t caller, InodePid **ret, size_t *ret_n) {
	InodePid *v = NULL;
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		_cleanup_free_ uint64_t *inodes = NULL;
		size_t ni = 0;
		char *end;
		long pid;
		uid_t uid;

		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > INT32_MAX)
			continue;
		if (caller != 0 && (proc_get_uid((pid_t)pid, &uid) < 0 || uid != caller))
			continue;
		if (proc_socket_inodes((pid_t)pid, &inodes, &ni) < 0 || ni == 0)
			continue;
		InodePid *nv = realloc(v, (n + ni) * sizeof(*v));
		if (!nv) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		for (size_t k = 0; k < ni; k++)
			v[n++] = (InodePid){ .inode = inodes[k], .pid = (pid_t)pid };
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_inode);
	*ret = v;
	*ret_n = n;
	return 0;
}

static char *end_string(uint8_t family, const uint8_t addr[16], uint16_t port) {
	char a[INET6_ADDRSTRLEN], *s = NULL;

	if (!inet_ntop(family, addr, a, sizeof(a)))
		return NULL;
	if (asprintf(&s, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, (unsigned)port) < 0)
		return NULL;
	return s;
}

static int cmp_conn(const void *a, const void *b) {
	const Conn *x = a, *y = b;
	int64_t rx = (x->up_bps > 0 ? x->up_bps : 0) + (x->down_bps > 0 ? x->down_bps : 0);
	int64_t ry = (y->up_bps > 0 ? y->up_bps : 0) + (y->down_bps > 0 ? y->down_bps : 0);
	return rx > ry ? -1 : rx < ry;
}

static json_object *conn_json(Manager *m, const Conn *c, const InodePid *ip, size_t n_ip, uid_t caller) {
	_cleanup_free_ char *local = end_string(c->si.family, c->si.src, c->si.sport);
	_cleanup_free_ char *remote = end_string(c->si.family, c->si.dst, c->si.dport);
	_cleanup_free_ char *comm = NULL, *cmdline = NULL, *user = user_name(c->si.uid), *target = NULL;
	InodePid key = { .inode = c->si.inode };
	const InodePid *hit = bsearch(&key, ip, n_ip, sizeof(*ip), cmp_inode);
	json_object *o = json_object_new_object();
	Rule *rule;

	if (!o)
		return NULL;
	if (hit)
		process_names(hit->pid, &comm, &cmdline);
	rule = manager_rule_for_socket(m, &c->si);
	if (rule && !rule_visible_to(m, rule, caller))
		rule = NULL;
	if (asprintf(&target, "sock:%llu", (unsigned long long)c->si.inode) < 0)
		target = NULL;
	json_object_object_add(o, "cookie", json_object_new_int64((int64_t)c->si.cookie));
	json_object_object_add(o, "target", target ? json_object_new_string(target) : NULL);
	json_object_object_add(o, "protocol", json_object_new_string(c->si.protocol == IPPROTO_TCP ? "tcp" : "udp"));
	json_object_object_add(o, "local", local ? json_object_new_string(local) : NULL);
	json_object_object_add(o, "remote", remote ? json_object_new_string(remote) : NULL);
	json_object_object_add(o, "uid", json_object_new_int64((int64_t)c->si.uid));
	json_object_object_add(o, "user", user ? json_object_new_string(user) : NULL);
	json_object_object_add(o, "pid", json_object_new_int64(hit ? hit->pid : 0));
	json_object_object_add(o, "comm", comm ? json_object_new_string(comm) : NULL);
	json_object_object_add(o, "rule", rule ? json_object_new_string(rule->name) : NULL);
	json_object_object_add(o, "up", json_object_new_int64(rule ? (int64_t)rule->up_bps : 0));
	json_object_object_add(o, "down", json_object_new_int64(rule ? (int64_t)rule->down_bps : 0));
	json_object_object_add(o, "up_bytes",
			       c->si.has_bytes ? json_object_new_int64((int64_t)c->si.bytes_sent) : NULL);
	json_object_object_add(o, "down_bytes",
			       c->si.has_bytes ? json_object_new_int64((int64_t)c->si.bytes_received) : NULL);
	json_object_object_add(o, "up_rate", c->up_bps >= 0 ? json_object_new_int64(c->up_bps) : NULL);
	json_object_object_add(o, "down_rate", c->down_bps >= 0 ? json_object_new_int64(c->down_bps) : NULL);
	/* A deny that covers it (its packets are dropped): top marks it. */
	{
		uint8_t addr[16];
		const AccessRule *d;

		if (c->si.family == AF_INET)
			scope_addr_from_v4(c->si.dst, addr);
		else
			memcpy(addr, c->si.dst, 16);
		d = m->access_rules ? access_denies(m, c->si.uid, c->si.cgroup_id, addr) : NULL;
		if (d) {
			_cleanup_free_ char *why = NULL;
			if (asprintf(&why, "deny %s --remote %s", d->name, d->remote) >= 0)
				json_object_object_add(o, "denied", json_object_new_string(why));
		}
	}
	return o;
}

void manager_conns_free(Manager *m) {
	if (!m->conns)
		return;
	free(m->conns->prev);
	free(m->conns);
	m->conns = NULL;
}

int method_connections(Client *c, json_object *params) {
	Manager *m = c->manager;
	Collect col = { .caller = c->uid };
	_cleanup_free_ InodePid *ip = NULL;
	_cleanup_free_ ConnSample *samples = NULL;
	size_t n_ip = 0, n_samples = 0;
	uint64_t now = now_usec(), since = 0;
	json_object *p, *a;
	int r;

	json_object_object_foreach(params, key, val) {
		(void)val;
		return reply_error(c, "org.varlink.service.InvalidParameter", "parameter", key, "unknown parameter");
	}
	if (!m->conns && !(m->conns = calloc(1, sizeof(*m->conns))))
		return -ENOMEM;
	if (!m->diag && (r = sock_diag_open(&m->diag)) < 0)
		return reply_error(c, "io.netbump.Manager.Failed", "reason", "sock_diag", strerror(-r));
	sock_diag_want_bytes(m->diag, true);
	r = sock_diag_dump(m->diag, collect_cb, &col);
	sock_diag_want_bytes(m->diag, false);
	if (r < 0 && r != -EAGAIN) {
		free(col.v);
		return reply_error(c, "io.netbump.Manager.Failed", "reason", "sock_diag", strerror(-r));
	}

	/* Rates against the previous call's counters, which these replace. */
	samples = calloc(col.n ?: 1, sizeof(*samples));
	if (!samples) {
		free(col.v);
		return -ENOMEM;
	}
	for (size_t k = 0; k < col.n; k++) {
		Conn *x = &col.v[k];
		ConnSample key = { .cookie = x->si.cookie }, *old;

		if (!x->si.has_bytes)
			continue;
		old = bsearch(&key, m->conns->prev, m->conns->n_prev, sizeof(key), cmp_sample);
		if (old && now > old->usec) {
			since = now - old->usec;
			if (x->si.bytes_sent >= old->sent)
				x->up_bps = (int64_t)rate_of(x->si.bytes_sent - old->sent, since);
			if (x->si.bytes_received >= old->received)
				x->down_bps = (int64_t)rate_of(x->si.bytes_received - old->received, since);
		}
		samples[n_samples++] = (ConnSample){ x->si.cookie, x->si.bytes_sent, x->si.bytes_received, now };
	}
	/* A caller sees only its own: keep the others' counters as they were
	 * (for a minute). */
	for (size_t k = 0; c->uid != 0 && k < m->conns->n_prev; k++) {
		bool seen = now - m->conns->prev[k].usec > CONNS_KEEP_USEC; /* gone long since: forgotten */
		for (size_t j = 0; j < n_samples && !seen; j++)
			seen = samples[j].cookie == m->conns->prev[k].cookie;
		if (!seen) {
			ConnSample *nv = realloc(samples, (n_samples + 1) * sizeof(*samples));
			if (!nv)
				break;
			samples = nv;
			samples[n_samples++] = m->conns->prev[k];
		}
	}
	qsort(samples, n_samples, sizeof(*samples), cmp_sample);
	free(m->conns->prev);
	m->conns->prev = TAKE_PTR(samples);
	m->conns->n_prev = n_samples;

	(void)inode_pids(c->uid, &ip, &n_ip);
	qsort(col.v, col.n, sizeof(*col.v), cmp_conn);
	p = json_object_new_object();
	a = json_object_new_array();
	if (!p || !a) {
		json_object_put(p);
		json_object_put(a);
		free(col.v);
		return -ENOMEM;
	}
	for (size_t k = 0; k < col.n && k < CONNS_MAX; k++) {
		json_object *o = conn_json(m, &col.v[k], ip, n_ip, c->uid);
		if (o)
			json_object_array_add(a, o);
	}
	free(col.v);
	/* Connections refused lately (connect()/sendmsg() EPERM, ended by a
	 * deny), which the socket dump no longer has. */
	access_recent_add_json(m, c->uid, a);
	json_object_object_add(p, "connections", a);
	json_object_object_add(p, "interval_usec", json_object_new_int64((int64_t)since));
	return client_queue(c, vl_reply_new(p));
}
