/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"
#include "access.h"
#include "bpf.h"
#include "process.h"
#include "rule-index.h"
#include "scope-map.h"

/* What the maps hold besides the rules: which scope ids are taken, and
 * the "lan" entries written (to take out those that are no longer). */
typedef struct ScopeState {
	uint8_t sid_used[NB_MAX_SCOPE_SIDS / 8];
	ScopeCidr *lan;
	size_t n_lan;
} ScopeState;

static ScopeState *state_get(Manager *m) {
	if (!m->scopes) {
		m->scopes = calloc(1, sizeof(ScopeState));
		if (m->scopes)
			m->scopes->sid_used[0] = 0x3; /* 0: none, 1: lan */
	}
	return m->scopes;
}

void scope_state_free(Manager *m) {
	if (!m->scopes)
		return;
	free(m->scopes->lan);
	free(m->scopes);
	m->scopes = NULL;
}

static int sid_alloc(ScopeState *s, uint32_t *ret) {
	for (uint32_t i = 2; i < NB_MAX_SCOPE_SIDS; i++)
		if (!(s->sid_used[i / 8] & (1u << (i % 8)))) {
			s->sid_used[i / 8] |= (uint8_t)(1u << (i % 8));
			*ret = i;
			return 0;
		}
	return -ENOSPC;
}

static void sid_free(ScopeState *s, uint32_t sid) {
	if (sid > NB_SCOPE_SID_LAN && sid < NB_MAX_SCOPE_SIDS)
		s->sid_used[sid / 8] &= (uint8_t)~(1u << (sid % 8));
}

int scope_rule_key(const Rule *r, uint32_t *ret_kind, uint64_t *ret_key) {
	switch (r->target.kind) {
	case TARGET_USER:
	case TARGET_ALL:
		*ret_kind = NB_SCOPE_KIND_UID;
		*ret_key = r->key; /* the uid, NB_UID_ALL for all */
		return 0;
	case TARGET_CGROUP:
	case TARGET_UNIT:
		*ret_kind = NB_SCOPE_KIND_CGROUP;
		*ret_key = r->key; /* the cgroup id, 0: a unit not running */
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static void lpm_key(struct nb_scope_lpm_key *k, uint32_t sid, const ScopeCidr *c) {
	*k = (struct nb_scope_lpm_key){ .prefixlen = 32 + c->len, .sid = htonl(sid) };
	memcpy(k->addr, c->addr, 16);
}

static int cidr_put_value(Manager *m, uint32_t sid, const ScopeCidr *c, uint32_t v) {
	struct nb_scope_lpm_key k;

	lpm_key(&k, sid, c);
	if (bpf_map__update_elem(m->skel->maps.scope_cidrs, &k, sizeof(k), &v, sizeof(v), BPF_ANY) < 0)
		return negative_errno();
	return 0;
}

static int cidr_put(Manager *m, uint32_t sid, const ScopeCidr *c) {
	return cidr_put_value(m, sid, c, c->len);
}

static void cidr_del(Manager *m, uint32_t sid, const ScopeCidr *c) {
	struct nb_scope_lpm_key k;

	lpm_key(&k, sid, c);
	(void)bpf_map__delete_elem(m->skel->maps.scope_cidrs, &k, sizeof(k), 0);
}

static bool cidr_in(const ScopeCidr *l, size_t n, const ScopeCidr *c) {
	for (size_t i = 0; i < n; i++)
		if (l[i].len == c->len && memcmp(l[i].addr, c->addr, 16) == 0)
			return true;
	return false;
}

/* "lan" as it is now: the fixed prefixes and the subnets of the
 * interfaces in the daemon's network namespace, read again on each change
 * of a rule that uses a word. */
static int lan_refresh(Manager *m, ScopeState *s) {
	_cleanup_free_ ScopeCidr *host = NULL;
	ScopeCidr *all;
	size_t n_host = 0, n_fixed, n = 0;
	const ScopeCidr *fixed = scope_lan_prefixes(&n_fixed);
	int r;

	r = scope_lan_host_prefixes(&host, &n_host);
	if (r < 0)
		log_warning_errno(r, "Cannot read the interfaces' subnets for \"lan\", using the private ranges only: %m");
	all = calloc(n_fixed + n_host + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n_fixed + n_host; i++) {
		const ScopeCidr *c = i < n_fixed ? &fixed[i] : &host[i - n_fixed];
		if (!cidr_in(all, n, c))
			all[n++] = *c;
	}
	for (size_t i = 0; i < n; i++) {
		r = cidr_put(m, NB_SCOPE_SID_LAN, &all[i]);
		if (r < 0) {
			free(all);
			return r;
		}
	}
	/* Loopback, marked: a host subnet around it (none is) must not make
	 * it "lan" by the longest match. */
	if (s->n_lan == 0) {
		size_t n_lo;
		const ScopeCidr *lo = scope_loopback_prefixes(&n_lo);

		for (size_t i = 0; i < n_lo; i++) {
			r = cidr_put_value(m, NB_SCOPE_SID_LAN, &lo[i], lo[i].len | NB_SCOPE_V_LOOPBACK);
			if (r < 0) {
				free(all);
				return r;
			}
		}
	}
	for (size_t i = 0; i < s->n_lan; i++)
		if (!cidr_in(all, n, &s->lan[i]))
			cidr_del(m, NB_SCOPE_SID_LAN, &s->lan[i]);
	free(s->lan);
	s->lan = all;
	s->n_lan = n;
	return 0;
}

/* Rewrites the scope_keys entry of (kind, key) from the scoped rules
 * written under it, oldest first. */
static int key_sync(Manager *m, uint32_t kind, uint64_t key) {
	struct nb_scope_key k = { .key = key, .kind = kind };
	struct nb_scope_set set = {};

	for (Rule *r = m->rules; r; r = r->next) {
		struct nb_scope_ent *e;

		if (!r->remote || !r->sid || r->scope_kind != kind || r->scope_key != key)
			continue;
		if (set.n >= NB_SCOPES_PER_KEY)
			return -E2BIG;
		e = &set.e[set.n++];
		e->sid = r->sid;
		e->words = (r->remote_scope.lan ? NB_SCOPE_LAN : 0) | (r->remote_scope.internet ? NB_SCOPE_INTERNET : 0);
		e->action = NB_SCOPE_SHAPE;
		e->cls = (struct nb_class){ .minor = r->minor, .flags = rule_flags(r) };
	}
	for (AccessRule *a = m->access_rules; a; a = a->next) {
		struct nb_scope_ent *e;

		if (!a->sid || a->scope_kind != kind || a->scope_key != key)
			continue;
		if (set.n >= NB_SCOPES_PER_KEY)
			return -E2BIG;
		e = &set.e[set.n++];
		e->sid = a->sid;
		e->words = (a->scope.lan ? NB_SCOPE_LAN : 0) | (a->scope.internet ? NB_SCOPE_INTERNET : 0);
		e->action = a->allow ? NB_SCOPE_ALLOW : NB_SCOPE_DENY;
	}
	if (set.n == 0) {
		if (bpf_map__delete_elem(m->skel->maps.scope_keys, &k, sizeof(k), 0) < 0 && errno != ENOENT)
			return negative_errno();
		return 0;
	}
	if (bpf_map__update_elem(m->skel->maps.scope_keys, &k, sizeof(k), &set, sizeof(set), BPF_ANY) < 0)
		return negative_errno();
	return 0;
}

/* Which kinds have scoped rules, for the programs' shortcut. */
static void kinds_sync(Manager *m) {
	uint32_t kinds = 0;

	for (Rule *r = m->rules; r; r = r->next)
		if (r->remote && r->sid && r->scope_key)
			kinds |= 1u << r->scope_kind;
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->sid && a->scope_key)
			kinds |= 1u << a->scope_kind;
	m->skel->bss->nb_scope_kinds = kinds;
}

int scope_map_set(Manager *m, Rule *r) {
	ScopeState *s = state_get(m);
	uint32_t kind, old_kind = r->scope_kind;
	uint64_t key, old_key = r->scope_key;
	bool fresh = r->sid == 0;
	int k;

	if (!s)
		return -ENOMEM;
	k = scope_rule_key(r, &kind, &key);
	if (k < 0)
		return k;
	if (fresh) {
		k = sid_alloc(s, &r->sid);
		if (k < 0)
			return k;
		for (size_t i = 0; i < r->remote_scope.n_cidrs; i++) {
			k = cidr_put(m, r->sid, &r->remote_scope.cidrs[i]);
			if (k < 0)
				goto fail;
		}
	}
	if (r->remote_scope.lan || r->remote_scope.internet) {
		k = lan_refresh(m, s);
		if (k < 0)
			goto fail;
	}
	r->scope_kind = kind;
	r->scope_key = key;
	if (key != 0) {
		k = key_sync(m, kind, key);
		if (k < 0) {
			r->scope_kind = old_kind;
			r->scope_key = old_key;
			(void)key_sync(m, kind, key);
			goto fail;
		}
	}
	if (old_key != 0 && (old_key != key || old_kind != kind))
		(void)key_sync(m, old_kind, old_key);
	kinds_sync(m);
	return 0;
fail:
	if (fresh) {
		for (size_t i = 0; i < r->remote_scope.n_cidrs; i++)
			cidr_del(m, r->sid, &r->remote_scope.cidrs[i]);
		sid_free(s, r->sid);
		r->sid = 0;
	}
	return k;
}

void scope_map_del(Manager *m, Rule *r) {
	ScopeState *s = state_get(m);
	uint32_t sid = r->sid;

	if (!sid)
		return;
	r->sid = 0; /* out of key_sync() and kinds_sync() */
	if (r->scope_key)
		(void)key_sync(m, r->scope_kind, r->scope_key);
	kinds_sync(m);
	for (size_t i = 0; i < r->remote_scope.n_cidrs; i++)
		cidr_del(m, sid, &r->remote_scope.cidrs[i]);
	if (s)
		sid_free(s, sid);
	r->scope_key = 0;
}

unsigned scope_entries_at(Manager *m, uint32_t kind, uint64_t key) {
	unsigned n = 0;

	for (Rule *r = m->rules; r; r = r->next)
		n += r->remote && r->sid && r->scope_kind == kind && r->scope_key == key;
	for (AccessRule *a = m->access_rules; a; a = a->next)
		n += a->sid && a->scope_kind == kind && a->scope_key == key;
	return n;
}

int scope_map_add_scope(Manager *m, const Scope *sc, uint32_t *ret_sid) {
	ScopeState *s = state_get(m);
	uint32_t sid;
	int k;

	if (!s)
		return -ENOMEM;
	k = sid_alloc(s, &sid);
	if (k < 0)
		return k;
	for (size_t i = 0; i < sc->n_cidrs && k >= 0; i++)
		k = cidr_put(m, sid, &sc->cidrs[i]);
	if (k >= 0 && (sc->lan || sc->internet))
		k = lan_refresh(m, s);
	if (k < 0) {
		scope_map_del_scope(m, sc, sid);
		return k;
	}
	*ret_sid = sid;
	return 0;
}

void scope_map_del_scope(Manager *m, const Scope *sc, uint32_t sid) {
	for (size_t i = 0; i < sc->n_cidrs; i++)
		cidr_del(m, sid, &sc->cidrs[i]);
	if (m->scopes)
		sid_free(m->scopes, sid);
}

int scope_map_key_sync(Manager *m, uint32_t kind, uint64_t key) {
	int k = key ? key_sync(m, kind, key) : 0;

	kinds_sync(m);
	return k;
}

void scope_map_lan_changed(Manager *m) {
	ScopeState *s = m->scopes;
	bool words = false, deny = false;
	int k;

	if (!m->skel || !s)
		return;
	for (Rule *r = m->rules; r; r = r->next)
		words = words || (r->remote && r->sid && (r->remote_scope.lan || r->remote_scope.internet));
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->sid && (a->scope.lan || a->scope.internet)) {
			words = true;
			deny = deny || !a->allow;
		}
	if (!words)
		return; /* read afresh when a rule next uses a word */
	k = lan_refresh(m, s);
	if (k < 0) {
		log_warning_errno(k, "Failed to bring \"lan\" up to date with the interfaces' addresses: %m");
		return;
	}
	log_debug("\"lan\" is now %zu prefixes.", s->n_lan);
	manager_bpf_bump_gen(m);
	if (deny)
		access_reap(m);
}

unsigned scope_rules_on_target(Manager *m, const Rule *r) {
	RuleId a, b;
	unsigned n = 0;

	if (rule_id_of(&r->target, &a) < 0)
		return 0;
	for (Rule *q = m->rules; q; q = q->next)
		if (q != r && q->remote && rule_id_of(&q->target, &b) >= 0 && rule_id_eq(&a, &b))
			n++;
	return n;
}
