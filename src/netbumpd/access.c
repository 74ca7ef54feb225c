/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "bpf.h"
#include "cgroup-util.h"
#include "kind.h"
#include "log.h"
#include "macro.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"
#include "rule-index.h"
#include "rule.h"
#include "scope-map.h"

/* At most this many denial lines per second in the journal; the rest are
 * counted and summed up in one line. */
#define DENIALS_PER_SEC 10u
/* Denials remembered for top: who was refused what, lately. */
#define RECENT_MAX 64u

typedef struct Recent {
	struct nb_denial d;
	uint32_t count;
	uint64_t last_usec; /* CLOCK_MONOTONIC, 0: empty slot */
} Recent;

typedef struct AccessRuntime {
	struct bpf_link *links[4];
	struct ring_buffer *rb;
	sd_event_source *rb_io;
	uint64_t window_usec; /* CLOCK_MONOTONIC start of the current second */
	unsigned logged;      /* lines in it */
	uint64_t suppressed;  /* denials not logged in it */
	uint64_t next_id;
	Recent recent[RECENT_MAX];
} AccessRuntime;

static uint64_t mono_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static AccessRuntime *rt_of(Manager *m) {
	return m->access_rt;
}

/* move_back: the target's processes go back where no other rule keeps
 * them (grip.h); a target that is gone has none to move. */
static void access_rule_free(Manager *m, AccessRule *a, bool move_back) {
	if (!a)
		return;
	if (a->carrier)
		a->carrier->access = NULL;
	rule_carrier_free(m, a->carrier, move_back);
	target_done(&a->target);
	free(a->name);
	free(a->remote);
	free(a->persist_file);
	scope_done(&a->scope);
	free(a);
}

AccessRule *access_find(Manager *m, const char *target, const char *remote) {
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (streq(a->name, target) && streq(a->remote, remote))
			return a;
	return NULL;
}

AccessRule *access_find_sid(Manager *m, uint32_t sid) {
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->sid == sid)
			return a;
	return NULL;
}

/* ---- the state file: one line per rule, "deny|allow OWNER SCOPE TARGET" ---- */

static char *access_path(Manager *m) {
	char *p = NULL;

	return asprintf(&p, "%s/access", m->state_dir) < 0 ? NULL : p;
}

static int access_save(Manager *m) {
	_cleanup_free_ char *path = access_path(m), *tmp = NULL;
	FILE *f;
	int r = 0;

	if (!path || asprintf(&tmp, "%s.new", path) < 0)
		return -ENOMEM;
	if (!m->access_rules) {
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (AccessRule *a = m->access_rules; a; a = a->next)
		fprintf(f, "%s %u %s %s\n", a->allow ? "allow" : "deny", (unsigned)a->owner, a->remote, a->name);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

/* ---- maps ---- */

static int run_iter(struct bpf_program *prog) {
	struct bpf_link *link = bpf_program__attach_iter(prog, NULL);
	char buf[64];
	int fd, r = 0;

	if (!link)
		return negative_errno();
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		r = negative_errno();
	else {
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		if (n < 0)
			r = negative_errno();
		close(fd);
	}
	bpf_link__destroy(link);
	return r;
}

/* Destroys the open sockets a deny now covers (scope-hooks.bpf.h). */
void access_reap(Manager *m) {
	uint64_t before;
	int r;

	if (!m->skel)
		return;
	before = m->skel->bss->nb_scope_destroyed;
	r = run_iter(m->skel->progs.nb_scope_reap_tcp);
	if (r >= 0)
		r = run_iter(m->skel->progs.nb_scope_reap_udp);
	if (r < 0)
		log_full_errno(LOG_NOTICE, r, "Cannot end the open connections a deny covers (%m): their packets are dropped instead.");
	else if (m->skel->bss->nb_scope_destroyed > before)
		log_info("Ended %llu open connection(s) a deny covers.",
			 (unsigned long long)(m->skel->bss->nb_scope_destroyed - before));
}

static int access_write(Manager *m, AccessRule *a, const char **ret_error, char **ret_reason) {
	int r;

	if (!m->skel)
		return 0;
	r = scope_map_add_scope(m, &a->scope, &a->sid);
	if (r < 0)
		return r;
	r = scope_keys_update(m, a->carrier);
	if (r < 0) {
		uint32_t sid = a->sid;
		a->sid = 0;
		scope_access_drop(m, a->carrier);
		scope_map_del_scope(m, &a->scope, sid);
		return r;
	}
	/* A pid:'s or exe:'s processes move into their cgroups now: what
	 * they make from here on is covered by the cgroup key, what they
	 * have by the cookies (scope_target_sync()). */
	r = rule_carrier_attach(m, a->carrier, ret_error, ret_reason);
	manager_bpf_bump_gen(m);
	if (r >= 0 && !a->allow)
		access_reap(m);
	return r;
}

static void access_unwrite(Manager *m, AccessRule *a) {
	uint32_t sid = a->sid;

	if (!m->skel || !sid)
		return;
	a->sid = 0;
	scope_access_drop(m, a->carrier);
	manager_bpf_bump_gen(m);
	scope_map_del_scope(m, &a->scope, sid);
}

/* ---- set / unset ---- */

int access_set(Manager *m, const char *target, const char *remote, bool allow, uid_t caller, AccessRule **ret,
	       const char **ret_error, char **ret_reason) {
	AccessRule *a, *existing;
	const char *why = NULL, *bad = NULL;
	Target t;
	int r;

	*ret_reason = NULL;
	r = target_parse(target, &t, &why);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, r, "invalid target '%s': %s", target, why);
	a = calloc(1, sizeof(*a));
	if (!a) {
		target_done(&t);
		return -ENOMEM;
	}
	a->target = t;
	a->allow = allow;
	a->owner = caller;
	a->name = target_to_string(&a->target);
	r = scope_parse(remote, &a->scope, &why, &bad);
	if (r < 0) {
		access_rule_free(m, a, true);
		return rule_fail(ret_error, ret_reason, E_INVALID, r, "invalid scope '%s': %s", remote, why);
	}
	a->remote = scope_to_string(&a->scope);
	if (!a->name || !a->remote) {
		access_rule_free(m, a, true);
		return -ENOMEM;
	}
	/* Loopback is the host talking to itself: local services and tools,
	 * netbumpd's own clients among them, live on it. Denying it for a
	 * target would break them, not keep anything off the network. */
	if (!allow && scope_has_loopback(&a->scope)) {
		r = rule_fail(ret_error, ret_reason, E_INVALID, -EINVAL,
			      "scope '%s' covers loopback (127.0.0.0/8, ::1): netbump never denies the host's traffic "
			      "with itself (local services, tools); name the ranges without it",
			      a->remote);
		access_rule_free(m, a, true);
		return r;
	}
	/* Whose the target is (a non-root caller may name only its own) and
	 * what it is now, as for a rule on it. */
	r = rule_carrier_new(m, a->name, a->remote, caller, &a->carrier, ret_error, ret_reason);
	if (r < 0) {
		access_rule_free(m, a, true);
		return r;
	}
	a->carrier->access = a;
	/* Named as the target resolved is (a user by uid, a socket by inode). */
	{
		char *name = strdup(a->carrier->name);
		Target rt;

		if (!name || target_parse(name, &rt, &why) < 0) {
			free(name);
			access_rule_free(m, a, true);
			return -ENOMEM;
		}
		if (rt.kind == TARGET_USER) {
			rt.uid = a->carrier->target.uid;
			rt.resolved = 1;
		}
		free(a->name);
		a->name = name;
		target_done(&a->target);
		a->target = rt;
	}
	/* A user may lift its own denies by unset, never another's: an allow
	 * of a user's is refused while a deny of anyone else's exists. */
	if (caller != 0 && allow)
		for (AccessRule *d = m->access_rules; d; d = d->next)
			if (!d->allow && d->owner != caller) {
				r = rule_fail(ret_error, ret_reason, E_DENIED, -EPERM,
					      "not-owner: %s --remote %s was denied by uid %u; only root may allow what "
					      "another user denied",
					      d->name, d->remote, (unsigned)d->owner);
				access_rule_free(m, a, true);
				return r;
			}
	if (rules_find_scoped(m, &a->target, a->remote)) {
		r = rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
			      "%s --remote %s has a limit; a rule is one per target and scope: unset it first", a->name,
			      a->remote);
		access_rule_free(m, a, true);
		return r;
	}

	existing = access_find(m, a->name, a->remote);
	if (existing) {
		if (caller != 0 && existing->owner != caller) {
			r = rule_fail(ret_error, ret_reason, E_DENIED, -EPERM, "not-owner: %s --remote %s was made by uid %u",
				      existing->name, existing->remote, (unsigned)existing->owner);
			access_rule_free(m, a, true);
			return r;
		}
		access_rule_free(m, a, true);
		if (existing->allow != allow || existing->owner != caller) {
			bool old_allow = existing->allow;
			uid_t old_owner = existing->owner;

			existing->allow = allow;
			existing->owner = caller;
			r = m->skel ? scope_keys_rewrite(m, existing->carrier) : 0;
			if (r >= 0)
				r = access_save(m);
			if (r < 0) {
				existing->allow = old_allow;
				existing->owner = old_owner;
				if (m->skel)
					(void)scope_keys_rewrite(m, existing->carrier);
				return rule_fail(ret_error, ret_reason, E_FAILED, r, "cannot change %s --remote %s: %s",
						 existing->name, existing->remote, strerror(-r));
			}
			manager_bpf_bump_gen(m);
			if (!allow)
				access_reap(m);
		}
		*ret = existing;
		return 0;
	}

	if (m->access_rt)
		a->id = ++rt_of(m)->next_id;
	a->next = m->access_rules;
	m->access_rules = a;
	r = access_save(m);
	if (r >= 0)
		r = access_write(m, a, ret_error, ret_reason);
	if (r < 0) {
		m->access_rules = a->next;
		access_unwrite(m, a);
		(void)access_save(m);
		if (*ret_reason)
			; /* the target's own reason (its process exited) */
		else if (r == -E2BIG)
			r = rule_fail(ret_error, ret_reason, E_FULL, r,
				      "%s already has %u scoped rules and deny/allow rules (the most one target may have)",
				      a->name, (unsigned)NB_SCOPES_PER_KEY);
		else
			r = rule_fail(ret_error, ret_reason, E_FAILED, r,
				      "cannot put %s --remote %s in force: %s; nothing was changed", a->name, a->remote,
				      strerror(-r));
		access_rule_free(m, a, true);
		return r;
	}
	*ret = a;
	return 0;
}

int access_unset(Manager *m, const char *target, const char *remote, uid_t caller, const char **ret_error,
		 char **ret_reason) {
	AccessRule *a = access_find(m, target, remote);
	int r;

	*ret_reason = NULL;
	if (!a)
		return -ENOENT;
	if (caller != 0 && a->owner != caller)
		return rule_fail(ret_error, ret_reason, E_DENIED, -EPERM, "not-owner: %s --remote %s was made by uid %u",
				 a->name, a->remote, (unsigned)a->owner);
	for (AccessRule **p = &m->access_rules; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			break;
		}
	r = access_save(m);
	if (r < 0) {
		a->next = m->access_rules;
		m->access_rules = a;
		return rule_fail(ret_error, ret_reason, E_FAILED, r,
				 "cannot record the change in the state directory %s (%s); the rule stays", m->state_dir,
				 strerror(-r));
	}
	access_unwrite(m, a);
	access_rule_free(m, a, true);
	return 0;
}

/* ---- seen ---- */

static void denied_of(Manager *m, uint32_t sid, uint64_t *ret_packets, uint64_t *ret_bytes) {
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ struct nb_scope_stats *st = NULL;

	*ret_packets = *ret_bytes = 0;
	if (!m->skel || sid == 0 || ncpu <= 0)
		return;
	st = calloc((size_t)ncpu, sizeof(*st));
	if (!st || bpf_map__lookup_elem(m->skel->maps.scope_stats, &sid, sizeof(sid), st, sizeof(*st) * (size_t)ncpu, 0) < 0)
		return;
	for (int i = 0; i < ncpu; i++) {
		*ret_packets += st[i].denied_packets;
		*ret_bytes += st[i].denied_bytes;
	}
}

json_object *access_json(Manager *m, const AccessRule *a) {
	json_object *o = json_object_new_object();
	uint64_t packets, bytes;

	if (!o)
		return NULL;
	denied_of(m, a->sid, &packets, &bytes);
	json_object_object_add(o, "target", json_object_new_string(a->name));
	json_object_object_add(o, "remote", json_object_new_string(a->remote));
	json_object_object_add(o, "action", json_object_new_string(a->allow ? "allow" : "deny"));
	json_object_object_add(o, "owner", json_object_new_int64((int64_t)a->owner));
	/* Packets the rule dropped and connect()/sendmsg() calls it refused
	 * (an allow drops none). */
	json_object_object_add(o, "denied_packets", json_object_new_int64((int64_t)packets));
	json_object_object_add(o, "denied_bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(o, "enforced", json_object_new_boolean(a->sid != 0));
	json_object_object_add(o, "persistent", json_object_new_boolean(a->persist_file != NULL));
	if (a->persist_file) {
		char *src = NULL;

		if (asprintf(&src, "%s:%u", a->persist_file, a->persist_line) >= 0)
			json_object_object_add(o, "source", json_object_new_string(src));
		free(src);
	}
	return o;
}

json_object *access_list_json(Manager *m, uid_t uid) {
	json_object *arr = json_object_new_array();

	if (!arr)
		return NULL;
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (uid == 0 || a->owner == uid || (a->target.kind == TARGET_USER && a->target.uid == uid) ||
		    a->target.kind == TARGET_ALL)
			json_object_array_add(arr, access_json(m, a));
	return arr;
}

/* ---- denial events ---- */

static const char *const dir_words[] = {
	[NB_DENIAL_OUT] = "to",
	[NB_DENIAL_IN] = "from",
	[NB_DENIAL_CONNECT] = "connect to",
};

static bool same_flow(const struct nb_denial *a, const struct nb_denial *b) {
	return a->uid == b->uid && a->tgid == b->tgid && a->port == b->port && a->proto == b->proto &&
	       a->sid == b->sid && memcmp(a->addr, b->addr, 16) == 0;
}

/* The same refused flow again, else its slot, else the oldest's. */
static void recent_add(AccessRuntime *rt, const struct nb_denial *d, uint64_t now) {
	Recent *slot = &rt->recent[0];

	for (size_t k = 0; k < RECENT_MAX; k++) {
		Recent *x = &rt->recent[k];

		if (x->last_usec && same_flow(&x->d, d)) {
			x->count++;
			x->last_usec = now;
			return;
		}
		if (x->last_usec < slot->last_usec)
			slot = x;
	}
	*slot = (Recent){ .d = *d, .count = 1, .last_usec = now };
}

static void addr_string(const uint8_t a[16], char *buf, size_t n) {
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(a, mapped, sizeof(mapped)) == 0)
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)n);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)n);
}

void access_recent_add_json(Manager *m, uid_t uid, json_object *connections) {
	AccessRuntime *rt = rt_of(m);
	uint64_t now = mono_usec();

	if (!rt)
		return;
	for (size_t k = 0; k < RECENT_MAX; k++) {
		const Recent *x = &rt->recent[k];
		const AccessRule *a;
		char addr[INET6_ADDRSTRLEN] = "?", *remote = NULL, *why = NULL;
		json_object *o;

		if (!x->last_usec || now - x->last_usec > ACCESS_RECENT_USEC || (uid != 0 && x->d.uid != uid))
			continue;
		a = access_find_sid(m, x->d.sid);
		addr_string(x->d.addr, addr, sizeof(addr));
		if (asprintf(&remote, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, x->d.port) < 0)
			remote = NULL;
		if (asprintf(&why, "deny %s --remote %s", a ? a->name : "?", a ? a->remote : "?") < 0)
			why = NULL;
		o = json_object_new_object();
		if (o) {
			json_object_object_add(o, "cookie", json_object_new_int64((int64_t)(k + 1) << 48));
			json_object_object_add(o, "target", NULL);
			json_object_object_add(o, "protocol", json_object_new_string(x->d.proto == 17 ? "udp" : "tcp"));
			json_object_object_add(o, "local", NULL);
			json_object_object_add(o, "remote", remote ? json_object_new_string(remote) : NULL);
			json_object_object_add(o, "uid", json_object_new_int64((int64_t)x->d.uid));
			json_object_object_add(o, "pid", json_object_new_int64((int64_t)x->d.tgid));
			json_object_object_add(o, "rule", NULL);
			json_object_object_add(o, "up", json_object_new_int64(0));
			json_object_object_add(o, "down", json_object_new_int64(0));
			json_object_object_add(o, "denied", why ? json_object_new_string(why) : NULL);
			json_object_object_add(o, "denied_count", json_object_new_int64(x->count));
			json_object_array_add(connections, o);
		}
		free(remote);
		free(why);
	}
}

/* The rule of the most specific key that decides, as scope.bpf.h walks:
 * cgroups deepest first, then the user, then all; at one key the longest
 * match. */
const AccessRule *access_denies(Manager *m, uid_t uid, uint64_t cgroup_id, const uint8_t addr[16]) {
	_cleanup_free_ char *path = NULL;
	const AccessRule *best = NULL;
	int best_len = -1;
	size_t best_depth = 0;
	int best_rank = -1; /* 2 cgroup, 1 user, 0 all */

	if (cgroup_id)
		(void)cg_path_from_id(m->cgroup_mount, cgroup_id, &path);
	for (const AccessRule *a = m->access_rules; a; a = a->next) {
		int rank, len;
		size_t depth = 0;

		if (a->target.kind == TARGET_CGROUP) {
			if (!path || !cg_path_is_inside(path, a->target.path))
				continue;
			rank = 2;
			depth = strlen(a->target.path);
		} else if (a->target.kind == TARGET_USER) {
			if (a->target.uid != uid)
				continue;
			rank = 1;
		} else if (a->target.kind == TARGET_ALL)
			rank = 0;
		else
			continue;
		len = scope_match_len(&a->scope, addr, NULL, 0);
		if (len < 0)
			continue;
		if (rank > best_rank || (rank == best_rank && (depth > best_depth || (depth == best_depth && len > best_len)))) {
			best = a;
			best_rank = rank;
			best_depth = depth;
			best_len = len;
		}
	}
	return best && !best->allow ? best : NULL;
}

static int on_denial(void *ctx, void *data, size_t size) {
	Manager *m = ctx;
	AccessRuntime *rt = rt_of(m);
	struct nb_denial d;
	char addr[INET6_ADDRSTRLEN] = "?", port[8] = "";
	const AccessRule *a;
	uint64_t now = mono_usec();

	if (size < sizeof(d))
		return 0;
	memcpy(&d, data, sizeof(d));
	recent_add(rt, &d, now);
	if (now - rt->window_usec >= 1000000u) {
		if (rt->suppressed)
			log_notice("%llu more denial(s) in the last second not logged one by one.",
				   (unsigned long long)rt->suppressed);
		rt->window_usec = now;
		rt->logged = 0;
		rt->suppressed = 0;
	}
	if (rt->logged >= DENIALS_PER_SEC) {
		rt->suppressed++;
		return 0;
	}
	rt->logged++;
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (memcmp(d.addr, mapped, sizeof(mapped)) == 0)
		inet_ntop(AF_INET, d.addr + 12, addr, sizeof(addr));
	else
		inet_ntop(AF_INET6, d.addr, addr, sizeof(addr));
	if (d.port)
		snprintf(port, sizeof(port), "%u", d.port);
	a = access_find_sid(m, d.sid);
	log_struct(LOG_NOTICE,
		   LOG_FIELDS({ "DENY_RULE", a ? a->name : NULL }, { "DENY_SCOPE", a ? a->remote : NULL },
			      { "TARGET", a ? a->name : NULL }, { "UID", LOG_UINT(d.uid) },
			      { "PID", d.tgid ? LOG_UINT(d.tgid) : NULL }, { "REMOTE", addr },
			      { "REMOTE_PORT", d.port ? port : NULL }, { "PROTO", LOG_UINT(d.proto) },
			      { "SOCKET_COOKIE", d.cookie ? LOG_UINT(d.cookie) : NULL }),
		   "Denied: uid %u%s%s %s %s%s%s (deny %s --remote %s).", d.uid, d.tgid ? " pid " : "",
		   d.tgid ? LOG_UINT(d.tgid) : "", d.dir < ELEMENTSOF(dir_words) ? dir_words[d.dir] : "with", addr,
		   d.port ? " port " : "", port, a ? a->name : "?", a ? a->remote : "?");
	return 0;
}

static int rb_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	Manager *m = userdata;
	int r = ring_buffer__consume(rt_of(m)->rb);

	if (r < 0)
		log_warning_errno(r, "Failed to read denial events: %m");
	return 0;
}

/* ---- start / stop ---- */

static void access_restore(Manager *m) {
	_cleanup_free_ char *path = access_path(m);
	_cleanup_fclose_ FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!path)
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *action = line, *owner, *scope, *target, *end;
		unsigned long uid;
		AccessRule *a = NULL;
		const char *error = NULL;
		_cleanup_free_ char *reason = NULL;

		/* "deny|allow OWNER SCOPE TARGET": the target last, it may hold spaces */
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		owner = strchr(action, ' ');
		scope = owner ? strchr(owner + 1, ' ') : NULL;
		target = scope ? strchr(scope + 1, ' ') : NULL;
		if (!target || !target[1])
			continue;
		*owner++ = *scope++ = *target++ = '\0';
		errno = 0;
		uid = strtoul(owner, &end, 10);
		if (errno || *end || uid > UINT32_MAX || (!streq(action, "deny") && !streq(action, "allow")))
			continue;
		/* The PID may name another process by now; a limit's pid: rule
		 * comes back by its cgroup (state.h), a deny has none of its
		 * own to be found by. */
		if (strncmp(target, "pid:", 4) == 0) {
			log_notice("Not restoring %s %s --remote %s: after a restart the PID may be another process's.",
				   action, target, scope);
			continue;
		}
		if (access_set(m, target, scope, streq(action, "allow"), (uid_t)uid, &a, &error, &reason) < 0)
			log_notice("Not restoring %s %s --remote %s: %s", action, target, scope, reason ?: "failed");
		else
			log_info("Restored %s %s --remote %s.", action, a->name, a->remote);
	}
	free(line);
}

void access_start(Manager *m, int cgfd) {
	struct bpf_program *progs[4] = { m->skel->progs.nb_connect4, m->skel->progs.nb_connect6,
					 m->skel->progs.nb_sendmsg4, m->skel->progs.nb_sendmsg6 };
	static const char *const pins[4] = { "link_connect4", "link_connect6", "link_sendmsg4", "link_sendmsg6" };
	AccessRuntime *rt = calloc(1, sizeof(*rt));
	int r;

	if (!rt) {
		log_oom();
		return;
	}
	m->access_rt = rt;
	rt->rb = ring_buffer__new(bpf_map__fd(m->skel->maps.denials), on_denial, m, NULL);
	if (!rt->rb)
		log_warning_errno(negative_errno(), "Failed to open the denial ring buffer, denials are not logged: %m");
	else {
		r = sd_event_add_io(m->event, &rt->rb_io, ring_buffer__epoll_fd(rt->rb), EPOLLIN, rb_io_cb, m);
		if (r < 0)
			log_warning_errno(r, "Failed to watch the denial ring buffer, denials are not logged: %m");
	}
	/* The rules first, the links then: a killed run's pinned links keep
	 * refusing with its programs and maps until ours hold the same
	 * denies (no moment where a deny is lifted). */
	access_restore(m);
	for (size_t k = 0; k < ELEMENTSOF(progs); k++) {
		rt->links[k] = manager_bpf_link_attach(m, progs[k], cgfd, pins[k]);
		if (!rt->links[k])
			log_warning_errno(negative_errno(),
					  "Failed to attach %s: denied connections fail by their packets being dropped, "
					  "not at once: %m",
					  bpf_program__name(progs[k]));
	}
}

/* Takes a out of the list and the maps and frees it, the state file
 * rewritten. */
static void access_drop(Manager *m, AccessRule *a, bool move_back) {
	for (AccessRule **p = &m->access_rules; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			break;
		}
	(void)access_save(m);
	access_unwrite(m, a);
	access_rule_free(m, a, move_back);
}

void access_expired(Manager *m, AccessRule *a) {
	log_struct(LOG_INFO, LOG_FIELDS({ "TARGET", a->name }, { "UID", LOG_UINT(a->owner) }),
		   "%s %s --remote %s: its target is gone; it ends.", a->allow ? "allow" : "deny", a->name, a->remote);
	access_drop(m, a, false);
}

void access_socket_released(Manager *m, uint64_t cookie) {
	for (AccessRule *a = m->access_rules, *next; a; a = next) {
		next = a->next;
		if (a->carrier && a->carrier->target.kind == TARGET_SOCK && a->carrier->key == cookie)
			access_expired(m, a);
		else if (a->carrier && !a->carrier->leans && a->carrier->n_cookies > 0) {
			Rule *c = a->carrier;
			for (size_t k = 0; k < c->n_cookies; k++)
				if (c->cookies[k] == cookie) {
					c->cookies[k] = c->cookies[--c->n_cookies];
					scope_target_sync(m, c);
					break;
				}
		}
	}
}

void access_release_targets(Manager *m) {
	for (AccessRule *a = m->access_rules; a; a = a->next) {
		if (a->carrier)
			a->carrier->access = NULL;
		rule_carrier_free(m, a->carrier, true);
		a->carrier = NULL;
	}
}

void access_stop(Manager *m) {
	AccessRuntime *rt = rt_of(m);

	access_release_targets(m);
	while (m->access_rules) {
		AccessRule *a = m->access_rules;
		m->access_rules = a->next;
		access_rule_free(m, a, true);
	}
	if (!rt)
		return;
	sd_event_source_disable_unref(rt->rb_io);
	ring_buffer__free(rt->rb);
	for (size_t k = 0; k < ELEMENTSOF(rt->links); k++)
		bpf_link__destroy(rt->links[k]);
	free(rt);
	m->access_rt = NULL;
}
