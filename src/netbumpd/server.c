/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Varlink server: io.netbump.Manager.{Set,Unset,List,Status}. Each client
 * has its own bounded input buffer and output queue; a client that sends
 * garbage gets an error for that message and nothing else changes; one that
 * sends more than a request may hold is answered and disconnected.
 *
 * No client can hold the daemon: each is served at most
 * CLIENT_MESSAGES_PER_TURN messages at a time. What it pipelined beyond
 * that waits in the run queue, which a worker of lower priority than every
 * socket serves one client's turn per event loop iteration, round robin: a
 * new request (root's first, whose connections have a higher priority)
 * waits for one turn, not for every queued message. A client whose unread
 * replies reach CLIENT_OUTPUT_PAUSE is not read from, nor are its queued
 * messages handled, until it reads; one that takes none of its replies for
 * CLIENT_WRITE_TIMEOUT_USEC is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "iface.h"
#include "kind-exe.h"
#include "log.h"
#include "access.h"
#include "grip.h"
#include "manager.h"
#include "netbump/netbump.h"
#include "persist.h"
#include "rate.h"
#include "request.h"
#include "paths.h"
#include "rule.h"
#include "server.h"
#include "conns.h"
#include "top.h"

#define MAX_CLIENTS 128
/* One user may hold this many connections, so that no user (busy or not)
 * can take every slot; root always finds one. */
#define MAX_CLIENTS_PER_UID 16
/* A request is one small message: 5 s to finish one once begun. */
#define CLIENT_READ_TIMEOUT_USEC (5u * 1000000u)
/* Connections kept open without a word are closed after 10 minutes. */
#define CLIENT_IDLE_TIMEOUT_USEC (600u * 1000000u)
#define OUTPUT_MAX (VARLINK_REPLY_MAX * 2)
/* Messages handled per turn of a client (each may be a List of every rule). */
#define CLIENT_MESSAGES_PER_TURN 4u
/* Replies held for a client that does not read them, past which it is not
 * served: its requests wait in its socket. One reply larger than this (a
 * List of thousands of rules) is still sent whole. */
#define CLIENT_OUTPUT_PAUSE (1024u * 1024u)
/* A client with replies unsent that takes none of them for 10 s is gone. */
#define CLIENT_WRITE_TIMEOUT_USEC (10u * 1000000u)
/* Out of descriptors, the listening socket rests this long (or until a
 * client goes) instead of waking us for a connection it cannot accept. */
#define LISTEN_RETRY_USEC (250u * 1000u)
/* Priorities of the event sources: root's requests first, then other
 * clients' sockets and the listening socket, then queued work. */
#define PRIORITY_ROOT_CLIENT (SD_EVENT_PRIORITY_NORMAL - 10)
#define PRIORITY_RUN_QUEUE (SD_EVENT_PRIORITY_NORMAL + 10)

static void listen_resume(Manager *m);

static void run_queue_remove(Manager *m, Client *c) {
	Client *prev = NULL;

	if (!c->queued)
		return;
	for (Client *x = m->run_head; x; prev = x, x = x->run_next)
		if (x == c) {
			if (prev)
				prev->run_next = c->run_next;
			else
				m->run_head = c->run_next;
			if (m->run_tail == c)
				m->run_tail = prev;
			break;
		}
	c->run_next = NULL;
	c->queued = false;
}

static void client_free(Client *c) {
	Manager *m = c->manager;

	run_queue_remove(m, c);
	for (Client **p = &m->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			m->n_clients--;
			break;
		}
	sd_event_source_disable_unref(c->io);
	if (c->fd >= 0)
		close(c->fd);
	vl_buffer_done(&c->in);
	free(c->out);
	free(c);
	/* a descriptor is free again */
	listen_resume(m);
}

void manager_clients_free(Manager *m) {
	while (m->clients)
		client_free(m->clients);
	m->run_worker = sd_event_source_disable_unref(m->run_worker);
	m->listen_retry = sd_event_source_disable_unref(m->listen_retry);
}

/* Appends to the output buffer, which grows by doubling: a List of 10,000
 * rules is written in thousands of pieces. */
static int client_append(Client *c, const char *s, size_t len) {
	if (c->out_done > 0) {
		memmove(c->out, c->out + c->out_done, c->out_size - c->out_done);
		c->out_size -= c->out_done;
		c->out_done = 0;
	}
	/* A client that asks and never reads may not make us hold unbounded
	 * memory for it. */
	if (c->out_size + len > OUTPUT_MAX)
		return -ENOBUFS;
	if (c->out_size + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
		while (cap < c->out_size + len)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (!n)
			return -ENOMEM;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_size, s, len);
	c->out_size += len;
	return 0;
}

/* The whole output has been sent: a buffer that held a large reply goes
 * back to the system rather than staying the size of the largest one. */
static void client_out_sent(Client *c) {
	c->out_size = c->out_done = 0;
	if (c->out_cap > 64 * 1024) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

int client_queue(Client *c, json_object *msg) {
	size_t len;
	const char *s;
	int r;

	if (!msg)
		return -ENOMEM;
	s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
	r = s ? client_append(c, s, len + 1) : -ENOMEM; /* with its NUL: the message's end */
	json_object_put(msg);
	return r;
}

/* Queues the reply {"parameters": P + "rules": [...]}, the rules written one
 * by one: a tree of json-c objects for 10,000 rules would take ~40 MB for a
 * moment, and the heap kept most of it afterwards. */
static int client_queue_with_rules(Client *c, json_object *p) {
	Manager *m = c->manager;
	size_t start = c->out_size - c->out_done, len;
	const char *s;
	bool first = true;
	int r;

	if (!p)
		return -ENOMEM;
	(void)manager_refresh_stats(m);
	s = json_object_to_json_string_length(p, JSON_C_TO_STRING_PLAIN, &len);
	r = s ? client_append(c, "{\"parameters\":{\"rules\":[", strlen("{\"parameters\":{\"rules\":[")) : -ENOMEM;
	for (Rule *rule = m->rules; r >= 0 && rule; rule = rule->next) {
		if (!rule_visible_to(m, rule, c->uid))
			continue;
		json_object *o = rule_json(rule);
		size_t n;
		if (o) /* List and Status say where rules do not shape; Top needs not */
			rule_paths_json(m, rule, o);
		const char *t = o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n) : NULL;
		r = t ? client_append(c, ",", first ? 0 : 1) : -ENOMEM;
		if (r >= 0)
			r = client_append(c, t, n);
		json_object_put(o);
		first = false;
	}
	/* P's own members follow, "{}" adding none. */
	if (r >= 0)
		r = client_append(c, "]", 1);
	if (r >= 0 && len > 2)
		r = client_append(c, ",", 1);
	if (r >= 0)
		r = client_append(c, s + 1, len - 1);
	if (r >= 0)
		r = client_append(c, "}", 2); /* with the NUL */
	json_object_put(p);
	if (r < 0)
		c->out_size = c->out_done + start; /* none of it */
	return r;
}

static json_object *error_params(const char *key, const char *value, const char *reason) {
	json_object *p = json_object_new_object();
	if (!p)
		return NULL;
	if (key && value)
		json_object_object_add(p, key, json_object_new_string(value));
	if (reason)
		json_object_object_add(p, "reason", json_object_new_string(reason));
	return p;
}

int reply_error(Client *c, const char *error, const char *key, const char *value, const char *reason) {
	return client_queue(c, vl_error_new(error, error_params(key, value, reason)));
}

static json_object *stats_json(const RuleStats *s) {
	json_object *o = json_object_new_object();
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)s->bytes));
	json_object_object_add(o, "packets", json_object_new_int64((int64_t)s->packets));
	json_object_object_add(o, "drops", json_object_new_int64((int64_t)s->drops));
	json_object_object_add(o, "backlog", json_object_new_int64((int64_t)s->backlog));
	json_object_object_add(o, "rate", json_object_new_int64((int64_t)s->rate_bps));
	return o;
}

json_object *rule_json(const Rule *r) {
	json_object *o = json_object_new_object();
	char cls[16];

	snprintf(cls, sizeof(cls), "%x:%x", NB_HTB_MAJOR, r->minor);
	json_object_object_add(o, "id", json_object_new_int64((int64_t)r->id));
	json_object_object_add(o, "target", json_object_new_string(r->name));
	json_object_object_add(o, "kind", json_object_new_string(target_kind_to_string(r->target.kind)));
	/* The scope (--remote) of a scoped rule, null: all its target's traffic. */
	json_object_object_add(o, "remote", r->remote ? json_object_new_string(r->remote) : NULL);
	json_object_object_add(o, "class", json_object_new_string(cls));
	json_object_object_add(o, "up", json_object_new_int64((int64_t)r->up_bps));
	json_object_object_add(o, "down", json_object_new_int64((int64_t)r->down_bps));
	json_object_object_add(o, "up_stats", stats_json(&r->up));
	json_object_object_add(o, "down_stats", stats_json(&r->down));
	json_object_object_add(o, "transient", json_object_new_boolean(r->transient));
	json_object_object_add(o, "owner", json_object_new_int64((int64_t)r->owner));
	json_object_object_add(o, "degraded", json_object_new_boolean(r->cls_up.on && manager_degraded(r->manager)));
	/* false while the small-packet leaves are still to come (netbump(7),
	 * Classes): what a reader of the kernel's classes waits for */
	json_object_object_add(o, "complete", json_object_new_boolean(rule_complete(r)));
	json_object_object_add(o, "min_up", json_object_new_int64((int64_t)r->min_up));
	json_object_object_add(o, "min_down", json_object_new_int64((int64_t)r->min_down));
	json_object_object_add(o, "priority", json_object_new_string(priority_to_string(r->priority)));
	json_object_object_add(o, "parent", r->parent ? json_object_new_string(r->parent->name) : NULL);
	/* Whether each direction goes through a class of its own (its limit,
	 * or one it inherits from an enclosing rule): false, its traffic that
	 * way is not shaped. */
	json_object_object_add(o, "shaped_up", json_object_new_boolean(r->cls_up.on));
	json_object_object_add(o, "shaped_down", json_object_new_boolean(r->cls_down.on));
	if (r->target.kind == TARGET_PID) {
		/* A rule that leans on another on the same process (grip.h)
		 * shows what that one holds. */
		const Rule *h = r->leans ? grip_holder(r->manager, r) : r;

		json_object_object_add(o, "cgroup", h && h->cgroup_abs ? json_object_new_string(h->cgroup_abs + strlen(r->manager->cgroup_mount)) : NULL);
		json_object_object_add(o, "processes_moved", json_object_new_int64(h ? (int64_t)h->n_moved : 0));
		json_object_object_add(o, "sockets_mirrored", json_object_new_int64(h ? (int64_t)h->n_cookies : 0));
		json_object_object_add(o, "exited", json_object_new_boolean(r->exited));
	}
	if (r->target.kind == TARGET_SOCK)
		json_object_object_add(o, "cookie", json_object_new_int64((int64_t)r->key));
	if (r->target.kind == TARGET_EXE)
		exe_rule_json(r, o);
	persist_rule_json(r, o);
	return o;
}

static int method_access(Client *c, const Request *req) {
	const char *error = NULL;
	_cleanup_free_ char *reason = NULL;
	AccessRule *a;
	int r;

	r = req->persistent ? persist_access(c->manager, req, &a, &error, &reason)
			    : access_set(c->manager, req->canonical, req->remote, req->access == REQUEST_ALLOW, c->uid, &a,
					 &error, &reason);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_struct(LOG_NOTICE, LOG_FIELDS({ "TARGET", req->target }, { "UID", LOG_UINT(c->uid) }),
			   "Refused %s %s --remote %s from uid %u: %s", req->access == REQUEST_ALLOW ? "allow" : "deny",
			   req->target, req->remote, (unsigned)c->uid, reason ?: strerror(-r));
		return reply_error(c, error ?: "io.netbump.Manager.Failed", "target", req->target, reason ?: strerror(-r));
	}
	log_struct(LOG_INFO, LOG_FIELDS({ "TARGET", a->name }, { "UID", LOG_UINT(c->uid) }), "%s %s --remote %s.",
		   a->allow ? "Allow" : "Deny", a->name, a->remote);
	json_object *p = json_object_new_object();
	json_object_object_add(p, "access", access_json(c->manager, a));
	return client_queue(c, vl_reply_new(p));
}

static int method_set(Client *c, const Request *req) {
	Manager *m = c->manager;
	const char *error = NULL;
	_cleanup_free_ char *reason = NULL;
	Rule *rule;
	int r;

	if (req->access)
		return method_access(c, req);

	r = req->persistent ? persist_set(m, req, &rule, &error, &reason)
			    : manager_set_rule(m, &req->rule, &rule, &error, &reason);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_struct(LOG_NOTICE, LOG_FIELDS({ "TARGET", req->target }, { "UID", LOG_UINT(c->uid) }),
			   "Refused Set %s from uid %u: %s", req->target, (unsigned)c->uid, reason ?: strerror(-r));
		return reply_error(c, error ?: "io.netbump.Manager.Failed", "target", req->target, reason ?: strerror(-r));
	}
	char up[RATE_STRING_MAX], down[RATE_STRING_MAX];
	log_struct(LOG_INFO,
		   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", req->target }, { "UID", LOG_UINT(c->uid) }),
		   "Rule %s%s%s: up %s, down %s (class %x:%x).", rule->name, rule->remote ? " --remote " : "",
		   rule->remote ?: "",
		   rule->up_bps ? rate_format(rule->up_bps, up) : "unlimited",
		   rule->down_bps ? rate_format(rule->down_bps, down) : "unlimited", NB_HTB_MAJOR, rule->minor);

	json_object *p = json_object_new_object();
	json_object *o = rule_json(rule);
	if (o)
		rule_paths_json(m, rule, o);
	json_object_object_add(p, "rule", o);
	return client_queue(c, vl_reply_new(p));
}

static int method_unset(Client *c, const Request *req) {
	const char *error = NULL;
	_cleanup_free_ char *reason = NULL;
	int r;

	if (req->persistent)
		r = persist_unset(c->manager, req, &error, &reason);
	else if (req->remote) {
		/* A target + scope is a limit or a deny/allow, never both; one
		 * of a rules file goes only with its line. */
		r = c->uid == 0 ? persist_check_unset(c->manager, req->canonical, req->remote, &error, &reason) : 0;
		if (r >= 0)
			r = access_unset(c->manager, req->canonical, req->remote, c->uid, &error, &reason);
		if (r == -ENOENT)
			r = manager_unset_rule_scoped(c->manager, req->canonical, req->remote, c->uid, &error, &reason);
	} else {
		/* A rule of a hand-written file goes only with its line. */
		r = c->uid == 0 ? persist_check_unset(c->manager, req->canonical, NULL, &error, &reason) : 0;
		if (r >= 0)
			r = manager_unset_rule_scoped(c->manager, req->canonical, NULL, c->uid, &error, &reason);
	}
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_struct(r == -EPERM ? LOG_NOTICE : LOG_INFO,
			   LOG_FIELDS({ "TARGET", req->target }, { "UID", LOG_UINT(c->uid) }),
			   "Refused Unset %s from uid %u: %s", req->target, (unsigned)c->uid, reason ?: strerror(-r));
		return reply_error(c, error, "target", req->target, reason ?: strerror(-r));
	}
	log_struct(LOG_INFO,
		   LOG_FIELDS({ "RULE", req->canonical }, { "TARGET", req->target }, { "UID", LOG_UINT(c->uid) }),
		   "Rule %s%s%s removed.", req->target, req->remote ? " --remote " : "", req->remote ?: "");
	return client_queue(c, vl_reply_new(NULL));
}

static int method_list(Client *c, const Request *req) {
	Manager *m = c->manager;
	json_object *p;
	Rule *applies = NULL;

	/* With a target: which rule it falls under. */
	if (req->canonical) {
		const char *error = NULL;
		_cleanup_free_ char *reason = NULL;
		int r;

		r = manager_rule_for(m, req->canonical, &applies, &error, &reason);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return reply_error(c, error, "target", req->target, reason ?: strerror(-r));
		if (applies && !rule_visible_to(m, applies, c->uid))
			applies = NULL;
	}
	p = json_object_new_object();
	if (!p)
		return -ENOMEM;
	if (req->canonical)
		json_object_object_add(p, "applies", applies ? json_object_new_string(applies->name) : NULL);
	/* Deny and allow rules, with what they dropped (access.h). */
	json_object_object_add(p, "access", access_list_json(m, c->uid));
	/* Root's lines that are not in force, and why. */
	if (c->uid == 0 && m->n_persist_missed > 0)
		json_object_object_add(p, "persistent_not_in_force", persist_missed_json(m));
	return client_queue_with_rules(c, p);
}

static const char *leaf_string(LeafKind leaf) {
	switch (leaf) {
	case LEAF_FQ_CODEL:
		return "fq_codel";
	case LEAF_BFIFO:
		return "bfifo up, tbf+bfifo down below 200 Mbit/s";
	default:
		return "not probed yet";
	}
}

static int method_status(Client *c, const Request *req) {
	Manager *m = c->manager;
	json_object *p, *a;

	p = json_object_new_object();
	if (!p)
		return -ENOMEM;
	json_object_object_add(p, "version", json_object_new_string(NETBUMP_VERSION));
	json_object_object_add(p, "uptime_usec", json_object_new_int64((int64_t)(now_usec() - m->start_usec)));
	json_object_object_add(p, "cgroup_root", json_object_new_string(m->cgroup_root));
	json_object_object_add(p, "cgroup_mount", json_object_new_string(m->cgroup_mount));
	json_object_object_add(p, "leaf_qdisc", json_object_new_string(leaf_string(m->leaf)));
	json_object_object_add(p, "accounting", json_object_new_boolean(m->accounting));
	a = json_object_new_array();
	for (Iface *i = m->ifaces; i; i = i->next) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(i->name));
		json_object_object_add(o, "ifindex", json_object_new_int((int)i->ifindex));
		json_object_object_add(o, "shaped", json_object_new_boolean(!i->skipped));
		if (i->skipped)
			json_object_object_add(o, "reason", json_object_new_string(i->skipped));
		else
			json_object_object_add(o, "ifb", json_object_new_string(i->ifb_name));
		if (i->degraded)
			json_object_object_add(o, "degraded", json_object_new_string(i->degraded));
		json_object_array_add(a, o);
	}
	json_object_object_add(p, "interfaces", a);
	/* All the daemon's rules are counted; those the caller may see (as
	 * List shows them) are listed. */
	json_object_object_add(p, "rule_count", json_object_new_int((int)m->n_rules));
	json_object_object_add(p, "config_dir", json_object_new_string(m->config_dir));
	if (c->uid == 0 && m->n_persist_missed > 0)
		json_object_object_add(p, "persistent_not_in_force", persist_missed_json(m));
	return client_queue_with_rules(c, p);
}

static int method_get_info(Client *c, const Request *req) {
	json_object *p = json_object_new_object(), *a = json_object_new_array();

	json_object_object_add(p, "vendor", json_object_new_string("netbump"));
	json_object_object_add(p, "product", json_object_new_string("netbumpd"));
	json_object_object_add(p, "version", json_object_new_string(NETBUMP_VERSION));
	json_object_object_add(p, "url", json_object_new_string(""));
	json_object_array_add(a, json_object_new_string(VARLINK_INTERFACE));
	json_object_array_add(a, json_object_new_string("org.varlink.service"));
	json_object_object_add(p, "interfaces", a);
	return client_queue(c, vl_reply_new(p));
}

/* The rules files read again; root's alone. */
static int method_reload(Client *c, const Request *req) {
	Manager *m = c->manager;
	_cleanup_free_ char *reason = NULL;
	PersistReport rep;
	json_object *p;
	int r;

	if (c->uid != 0)
		return reply_error(c, "io.netbump.Manager.PermissionDenied", NULL, NULL,
				   "only root can reload the persistent rules");
	r = manager_persist_reload(m, &rep, &reason);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return reply_error(c, "io.netbump.Manager.InvalidParameter", NULL, NULL, reason ?: strerror(-r));
	p = json_object_new_object();
	if (!p)
		return -ENOMEM;
	json_object_object_add(p, "config_dir", json_object_new_string(m->config_dir));
	json_object_object_add(p, "added", json_object_new_int((int)rep.added));
	json_object_object_add(p, "changed", json_object_new_int((int)rep.changed));
	json_object_object_add(p, "removed", json_object_new_int((int)rep.removed));
	json_object_object_add(p, "unchanged", json_object_new_int((int)rep.unchanged));
	json_object_object_add(p, "not_in_force", persist_missed_json(m));
	return client_queue(c, vl_reply_new(p));
}

static int method_top_request(Client *c, const Request *req) {
	return method_top(c, req->parameters);
}

static int method_connections_request(Client *c, const Request *req) {
	return method_connections(c, req->parameters);
}

static int client_dispatch(Client *c, json_object *msg) {
	static int (*const methods[_REQUEST_METHOD_MAX])(Client *c, const Request *req) = {
		[REQUEST_SET] = method_set,
		[REQUEST_UNSET] = method_unset,
		[REQUEST_LIST] = method_list,
		[REQUEST_STATUS] = method_status,
		[REQUEST_TOP] = method_top_request,
		[REQUEST_GET_INFO] = method_get_info,
		[REQUEST_CONNECTIONS] = method_connections_request,
		[REQUEST_RELOAD] = method_reload,
	};
	_cleanup_(request_done) Request req = {};
	_cleanup_(request_error_done) RequestError e = {};
	size_t pending;
	int r;

	r = request_parse(msg, c->uid, &req, &e);
	if (r == -ENOMEM || (r < 0 && !e.error))
		return -ENOMEM;
	if (r < 0) {
		/* What would change something, and strings we cannot take,
		 * are worth a line; a bad List is not. */
		if (r == -EILSEQ || e.method == REQUEST_SET || e.method == REQUEST_UNSET) {
			const char *name = request_method_name(e.method), *target = NULL;

			name = name ? strrchr(name, '.') + 1 : "a request";
			if (e.key && streq(e.key, "target"))
				target = e.value;
			log_struct(LOG_NOTICE, LOG_FIELDS({ "TARGET", target }, { "UID", LOG_UINT(c->uid) }),
				   "Refused %s%s%s from uid %u: %s", name, target ? " " : "", target ?: "",
				   (unsigned)c->uid, e.reason);
		}
		return reply_error(c, e.error, e.key, e.value, e.reason);
	}
	/* Deferred small-packet leaves wait while requests come. */
	if (c->manager->small_since)
		manager_small_schedule(c->manager);
	pending = c->out_size - c->out_done;
	r = methods[req.method](c, &req);
	/* Varlink: a oneway call gets no reply. (Appending may have moved what
	 * was pending to the buffer's start.) */
	if (r >= 0 && req.oneway)
		c->out_size = c->out_done + pending;
	return r;
}

static size_t client_pending(const Client *c) {
	return c->out_size - c->out_done;
}

static bool client_paused(const Client *c) {
	return client_pending(c) >= CLIENT_OUTPUT_PAUSE;
}

static bool client_has_message(const Client *c) {
	return c->in.size > 0 && memchr(c->in.data, 0, c->in.size);
}

/* Sends what the kernel takes now. -errno: the client is gone. */
static int client_flush(Client *c) {
	bool progress = false;

	while (c->out_done < c->out_size) {
		ssize_t n = send(c->fd, c->out + c->out_done, c->out_size - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		c->out_done += n;
		progress = true;
	}
	if (c->out_done >= c->out_size) {
		client_out_sent(c);
		c->out_waiting_since = 0;
	} else if (progress || c->out_waiting_since == 0)
		c->out_waiting_since = now_usec();
	return 0;
}

/* Handles at most max complete messages. -errno: drop the client. */
static int client_handle(Client *c, unsigned max) {
	for (unsigned n = 0; n < max && !c->closing && !client_paused(c); n++) {
		json_object *msg = NULL;
		const char *reason = NULL;
		int k = vl_buffer_take(&c->in, &msg, &reason);

		if (k == 0)
			break;
		if (k == -EBADMSG) {
			k = reply_error(c, VARLINK_INTERFACE ".InvalidRequest", NULL, NULL, reason);
			if (k < 0)
				return k;
			continue;
		}
		if (k < 0)
			return k;
		k = client_dispatch(c, msg);
		json_object_put(msg);
		if (k < 0)
			return log_struct_errno(LOG_WARNING, k, LOG_FIELDS({ "UID", LOG_UINT(c->uid) }),
						"Dropping client uid %u: %m", (unsigned)c->uid);
	}
	return 0;
}

static void run_worker_arm(Manager *m);

/* After any change: what to wait for, whether to queue, whether to close.
 * -errno: drop the client. */
static int client_update(Client *c) {
	Manager *m = c->manager;
	uint32_t ev = 0;
	bool more = client_has_message(c);

	if (c->eof && !more)
		c->closing = true; /* everything it sent is answered */
	if (c->closing && client_pending(c) == 0)
		return -ECONNRESET;
	/* Read only into a buffer with nothing complete left in it: what
	 * is there is handled first, in turn. */
	if (!c->closing && !c->eof && !client_paused(c) && !more && c->in.size < c->in.max)
		ev |= EPOLLIN;
	if (client_pending(c) > 0)
		ev |= EPOLLOUT;
	if (!c->closing && !client_paused(c) && more && !c->queued) {
		c->queued = true;
		c->run_next = NULL;
		if (m->run_tail)
			m->run_tail->run_next = c;
		else
			m->run_head = c;
		m->run_tail = c;
		run_worker_arm(m);
	}
	/* Start the read timeout on a message begun but not finished (and
	 * not while it is us who do not read the rest). */
	if (c->in.size == 0 || more || !(ev & EPOLLIN))
		c->partial_since = 0;
	else if (c->partial_since == 0)
		c->partial_since = now_usec();
	return sd_event_source_set_io_events(c->io, ev);
}

/* One turn of the client at the head of the run queue per dispatch: the
 * loop polls its sockets between two turns. */
static int run_worker_cb(sd_event_source *s, void *userdata) {
	Manager *m = userdata;
	Client *c = m->run_head;
	int r;

	if (c) {
		run_queue_remove(m, c);
		r = client_handle(c, CLIENT_MESSAGES_PER_TURN);
		if (r >= 0)
			r = client_flush(c);
		if (r >= 0)
			r = client_update(c);
		if (r < 0)
			client_free(c);
	}
	if (m->run_head)
		run_worker_arm(m);
	return 0;
}

static void run_worker_arm(Manager *m) {
	if (!m->run_worker) {
		if (sd_event_add_defer(m->event, &m->run_worker, run_worker_cb, m) < 0)
			return;
		(void)sd_event_source_set_priority(m->run_worker, PRIORITY_RUN_QUEUE);
	}
	(void)sd_event_source_set_enabled(m->run_worker, SD_EVENT_ONESHOT);
}

static int client_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	Client *c = userdata;
	int r = 0;

	/* The peer closed its socket. What it sent before is still read and
	 * handled (a oneway call needs no one to answer), in turns as ever;
	 * but when we are not reading (its replies wait, or its messages
	 * do), the hangup would wake us again and again: it goes now. */
	if ((revents & EPOLLERR) ||
	    ((revents & EPOLLHUP) && (c->eof || c->closing || client_paused(c) || client_has_message(c)))) {
		client_free(c);
		return 0;
	}
	if (revents & EPOLLOUT)
		r = client_flush(c);
	if (r >= 0 && (revents & (EPOLLIN | EPOLLHUP)) && !c->closing && !c->eof && !client_paused(c)) {
		c->last_activity = now_usec();
		r = vl_buffer_fill(&c->in, c->fd);
		if (r == 0) {
			c->eof = true;
		} else if (r == -EMSGSIZE) {
			/* one message fills the buffer (none is complete): say
			 * why and go */
			r = reply_error(c, VARLINK_INTERFACE ".InvalidRequest", NULL, NULL, "message too long");
			c->closing = true;
		} else if (r == -EAGAIN || r == -ENOBUFS || r > 0)
			r = 0;
		/* A first few messages now; what it pipelined beyond them
		 * waits for its turn in the run queue. */
		if (r >= 0 && !c->queued)
			r = client_handle(c, CLIENT_MESSAGES_PER_TURN);
		if (r >= 0)
			r = client_flush(c);
	}
	if (r >= 0)
		r = client_update(c);
	if (r < 0)
		client_free(c);
	return 0;
}

/* At the client limit, a new client takes the place of the one idle the
 * longest (nothing half-read, nothing to send), so that idle connections,
 * however many, never lock others out. */
static bool evict_idle_client(Manager *m, uid_t newcomer, bool same_uid_only) {
	Client *victim = NULL;

	for (Client *c = m->clients; c; c = c->next) {
		bool idle = c->in.size == 0 && c->out_done >= c->out_size;
		/* For root anyone but root may go, busy or not. */
		bool eligible = same_uid_only ? c->uid == newcomer && idle : idle || (newcomer == 0 && c->uid != 0);

		if (eligible && (!victim || c->last_activity < victim->last_activity))
			victim = c;
	}
	if (!victim)
		return false;
	log_debug("Client limit reached: closing the longest idle connection (uid %u).", (unsigned)victim->uid);
	client_free(victim);
	return true;
}

void manager_clients_expire(Manager *m) {
	uint64_t now = now_usec();

	for (Client *c = m->clients, *next; c; c = next) {
		next = c->next;
		if (c->partial_since && now - c->partial_since > CLIENT_READ_TIMEOUT_USEC) {
			log_struct(LOG_NOTICE, LOG_FIELDS({ "UID", LOG_UINT(c->uid) }),
				   "Client uid %u sent half a message and stalled; disconnecting.", (unsigned)c->uid);
			client_free(c);
		} else if (c->out_waiting_since && now - c->out_waiting_since > CLIENT_WRITE_TIMEOUT_USEC) {
			log_struct(LOG_NOTICE, LOG_FIELDS({ "UID", LOG_UINT(c->uid) }),
				   "Client uid %u has left %zu bytes of replies unread for %u s; disconnecting.",
				   (unsigned)c->uid, client_pending(c), CLIENT_WRITE_TIMEOUT_USEC / 1000000u);
			client_free(c);
		} else if (now - c->last_activity > CLIENT_IDLE_TIMEOUT_USEC && c->out_done >= c->out_size) {
			client_free(c);
		}
	}
}

/* A client turned away at the connection limit hears why before the
 * connection closes: one error, sent without waiting (a new connection's
 * buffer is empty, so it fits; if not, the client sees only the close). A
 * request it sent already is not read: the kernel then tells it
 * ECONNRESET, after our error. */
static void refuse_client(int fd, const char *reason) {
	_cleanup_free_ char *s = NULL;
	json_object *msg = vl_error_new(VARLINK_INTERFACE ".TooManyConnections", error_params(NULL, NULL, reason));
	size_t len;

	if (msg && vl_serialize(msg, &s, &len) >= 0)
		(void)send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (msg)
		json_object_put(msg);
	close(fd);
}

static int listen_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
	listen_resume(userdata);
	return 0;
}

static void listen_resume(Manager *m) {
	int enabled = 0;

	if (!m->listen_io || sd_event_source_get_enabled(m->listen_io, &enabled) < 0 || enabled)
		return;
	(void)sd_event_source_set_enabled(m->listen_io, SD_EVENT_ON);
	if (m->listen_retry)
		(void)sd_event_source_set_enabled(m->listen_retry, SD_EVENT_OFF);
}

/* accept(2) failed for want of a resource (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM): the connection stays in the backlog and the socket readable, so
 * the loop would call us again at once, for ever. The socket rests until a
 * client goes or LISTEN_RETRY_USEC passes; the waiting connections are
 * accepted then. */
static void listen_pause(Manager *m, int error) {
	uint64_t at = now_usec() + LISTEN_RETRY_USEC;

	/* once per shortage, not every LISTEN_RETRY_USEC */
	log_full_errno(m->listen_starved ? LOG_DEBUG : LOG_WARNING, error,
		       "Cannot accept a connection (%m); not accepting for %u ms or until a client goes.",
		       LISTEN_RETRY_USEC / 1000u);
	m->listen_starved = true;
	(void)sd_event_source_set_enabled(m->listen_io, SD_EVENT_OFF);
	if (!m->listen_retry) {
		if (sd_event_add_time(m->event, &m->listen_retry, CLOCK_MONOTONIC, at, 10000, listen_retry_cb, m) < 0) {
			/* without a timer, a client's close resumes it */
			m->listen_retry = NULL;
			return;
		}
	} else
		(void)sd_event_source_set_time(m->listen_retry, at);
	(void)sd_event_source_set_enabled(m->listen_retry, SD_EVENT_ONESHOT);
}

static int listen_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	Manager *m = userdata;
	Client *c;
	int cfd, r;

	struct ucred cred;
	socklen_t sl = sizeof(cred);

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		/* gone before we took it, or a signal: nothing waits */
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			return 0;
		listen_pause(m, errno);
		return 0;
	}
	if (m->listen_starved) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 0) == 0) {
			log_info("Every waiting connection accepted again.");
			m->listen_starved = false;
		}
	}
	/* Who is asking is what the kernel says, not what the client claims. */
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0) {
		close(cfd);
		return 0;
	}
	if (cred.uid != 0) {
		unsigned mine = 0;
		for (Client *o = m->clients; o; o = o->next)
			mine += o->uid == cred.uid;
		if (mine >= MAX_CLIENTS_PER_UID && !evict_idle_client(m, cred.uid, true)) {
			_cleanup_free_ char *why = NULL;

			log_struct(LOG_NOTICE, LOG_FIELDS({ "UID", LOG_UINT(cred.uid) }),
				   "uid %u holds %u busy connections; refusing another.", (unsigned)cred.uid, mine);
			if (asprintf(&why, "uid %u already has %u connections in use (the most one user may hold); "
				     "try again when one is done", (unsigned)cred.uid, mine) < 0)
				why = NULL;
			refuse_client(cfd, why ?: "too many connections");
			return 0;
		}
	}
	if (m->n_clients >= MAX_CLIENTS && !evict_idle_client(m, cred.uid, false)) {
		_cleanup_free_ char *why = NULL;

		log_warning("Too many busy clients (%u); refusing a connection.", m->n_clients);
		if (asprintf(&why, "netbumpd serves %u connections, all in use (its limit); try again when one is done",
			     m->n_clients) < 0)
			why = NULL;
		refuse_client(cfd, why ?: "too many connections");
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->manager = m;
	c->fd = cfd;
	c->uid = cred.uid;
	c->last_activity = now_usec();
	vl_buffer_init(&c->in, VARLINK_REQUEST_MAX);
	r = sd_event_add_io(m->event, &c->io, cfd, EPOLLIN, client_io_cb, c);
	if (r < 0) {
		close(cfd);
		free(c);
		return 0;
	}
	if (c->uid == 0)
		(void)sd_event_source_set_priority(c->io, PRIORITY_ROOT_CLIENT);
	c->next = m->clients;
	m->clients = c;
	m->n_clients++;
	return 0;
}

static int mkdir_parents(const char *path) {
	_cleanup_free_ char *p = strdup(path);
	char *s;

	if (!p)
		return -ENOMEM;
	for (s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	return 0;
}

bool manager_socket_in_use(Manager *m) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (sd_listen_fds(0) > 0 || strlen(m->socket_path) >= sizeof(sa.sun_path))
		return false; /* systemd hands us the socket: it is ours */
	strcpy(sa.sun_path, m->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) >= 0;
}

int manager_listen(Manager *m) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int n, r;

	n = sd_listen_fds(1);
	if (n > 1)
		return log_error_errno(-EINVAL, "Expected one listening socket from systemd, got %d.", n);
	if (n == 1) {
		m->listen_fd = SD_LISTEN_FDS_START;
		m->listen_fd_passed = true;
		(void)fcntl(m->listen_fd, F_SETFL, O_NONBLOCK);
	} else {
		if (strlen(m->socket_path) >= sizeof(sa.sun_path))
			return log_error_errno(-ENAMETOOLONG, "Socket path too long: %s", m->socket_path);
		strcpy(sa.sun_path, m->socket_path);

		r = mkdir_parents(m->socket_path);
		if (r < 0)
			return log_error_errno(r, "Failed to create the directory of %s: %m", m->socket_path);

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return log_error_errno(errno, "Failed to create socket: %m");

		/* A socket file nobody answers on is left over from a crash;
		 * one that answers belongs to a running netbumpd. */
		if (access(m->socket_path, F_OK) >= 0) {
			_cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) >= 0)
				return log_error_errno(-EADDRINUSE, "Another netbumpd is listening on %s.",
						       m->socket_path);
			(void)unlink(m->socket_path);
		}

		/* Everyone may connect; each request is checked against the
		 * caller's SO_PEERCRED uid. */
		mode_t old = umask(0111);
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
		if (r < 0)
			return log_error_errno(errno, "Failed to bind %s: %m", m->socket_path);
		if (chmod(m->socket_path, 0666) < 0)
			return log_error_errno(errno, "Failed to set the mode of %s: %m", m->socket_path);
		if (listen(fd, SOMAXCONN) < 0)
			return log_error_errno(errno, "Failed to listen on %s: %m", m->socket_path);
		m->listen_fd = TAKE_FD(fd);
	}
	r = sd_event_add_io(m->event, &m->listen_io, m->listen_fd, EPOLLIN, listen_io_cb, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the socket: %m");
	return 0;
}
