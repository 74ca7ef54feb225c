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
#include "grip.h"
#include "kind.h"
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

int scope_rule_keys(Manager *m, const Rule *r, ScopeKey **ret, size_t *ret_n) {
	const Rule *h = r->leans ? grip_holder(m, r) : r;
	_cleanup_free_ uint64_t *cgroups = NULL;
	ScopeKeySource src = {};
	int k;

	*ret = NULL;
	*ret_n = 0;
	if (!h)
		return 0; /* nothing holds its target now */
	switch (h->target.kind) {
	case TARGET_USER:
	case TARGET_ALL:
		src.kind = NB_SCOPE_KIND_UID;
		src.key = h->key; /* the uid, NB_UID_ALL for all */
		/* 0 is root's uid, not "none": the one key a target may have 0 as */
		if (h->key == 0) {
			*ret = calloc(1, sizeof(ScopeKey));
			if (!*ret)
				return -ENOMEM;
			**ret = (ScopeKey){ .kind = NB_SCOPE_KIND_UID, .key = 0 };
			*ret_n = 1;
			return 0;
		}
		break;
	case TARGET_SOCK:
		src.kind = NB_SCOPE_KIND_SOCK;
		src.key = h->key; /* the cookie */
		break;
	default:
		/* cgroup:, unit:, machine:, container:, pid:: the cgroup id, 0
		 * while there is none (a unit not running); pid: and exe: add
		 * their cgroups and the sockets they follow (grip.h). */
		src.kind = NB_SCOPE_KIND_CGROUP;
		src.key = h->key;
		if (rule_kind(h)->grip_cgroups) {
			k = rule_kind(h)->grip_cgroups(h, &cgroups, &src.n_cgroups);
			if (k < 0)
				return k;
			src.cgroups = cgroups;
		}
		if (rule_kind(h)->grip_move) {
			src.cookies = h->cookies;
			src.n_cookies = h->n_cookies;
		}
	}
	return scope_keys_build(&src, ret, ret_n);
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

		if (!r->remote || !r->sid || !scope_keys_has(r->scope_keys, r->n_scope_keys, kind, key))
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

		if (!a->sid || !a->carrier ||
		    !scope_keys_has(a->carrier->scope_keys, a->carrier->n_scope_keys, kind, key))
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
		if (r->remote && r->sid)
			kinds |= scope_keys_kinds(r->scope_keys, r->n_scope_keys);
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->sid && a->carrier)
			kinds |= scope_keys_kinds(a->carrier->scope_keys, a->carrier->n_scope_keys);
	m->skel->bss->nb_scope_kinds = kinds;
}

/* Points the entries of r (a scoped rule, or the target of a deny/allow:
 * its sid is written by key_sync()) at its keys as they are now: written
 * under the new ones, then taken from those it no longer has. */
int scope_keys_update(Manager *m, Rule *r) {
	_cleanup_free_ ScopeKey *old = NULL;
	bool changed;
	ScopeKey *keys = NULL;
	size_t n = 0, n_old = r->n_scope_keys;
	int k;

	k = scope_rule_keys(m, r, &keys, &n);
	if (k < 0)
		return k;
	if (scope_keys_same(keys, n, r->scope_keys, r->n_scope_keys)) {
		free(keys);
		return 0;
	}
	changed = true;
	old = r->scope_keys;
	r->scope_keys = keys;
	r->n_scope_keys = n;
	for (size_t i = 0; i < n; i++) {
		k = key_sync(m, keys[i].kind, keys[i].key);
		if (k < 0) {
			/* As it was: the old keys, the new ones without it. */
			r->scope_keys = TAKE_PTR(old);
			r->n_scope_keys = n_old;
			for (size_t j = 0; j <= i; j++)
				(void)key_sync(m, keys[j].kind, keys[j].key);
			free(keys);
			return k;
		}
	}
	for (size_t i = 0; i < n_old; i++)
		if (!scope_keys_has(keys, n, old[i].kind, old[i].key))
			(void)key_sync(m, old[i].kind, old[i].key);
	kinds_sync(m);
	return changed;
}

int scope_keys_rewrite(Manager *m, const Rule *r) {
	int k = 0;

	for (size_t i = 0; i < r->n_scope_keys; i++) {
		int q = key_sync(m, r->scope_keys[i].kind, r->scope_keys[i].key);
		if (q < 0 && k == 0)
			k = q;
	}
	kinds_sync(m);
	return k;
}

/* The keys of r dropped: r->sid (or its deny/allow's) is 0 already. */
static void keys_drop(Manager *m, Rule *r) {
	_cleanup_free_ ScopeKey *old = r->scope_keys;
	size_t n = r->n_scope_keys;

	r->scope_keys = NULL;
	r->n_scope_keys = 0;
	for (size_t i = 0; i < n; i++)
		(void)key_sync(m, old[i].kind, old[i].key);
	kinds_sync(m);
}

int scope_map_set(Manager *m, Rule *r) {
	ScopeState *s = state_get(m);
	bool fresh = r->sid == 0;
	int k;

	if (!s)
		return -ENOMEM;
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
	/* Its class changed (a direction, the small-packet leaf): every
	 * key's entry says it. */
	if (!fresh)
		(void)scope_keys_rewrite(m, r);
	k = scope_keys_update(m, r);
	if (k < 0)
		goto fail;
	kinds_sync(m);
	return 0;
fail:
	if (fresh) {
		for (size_t i = 0; i < r->remote_scope.n_cidrs; i++)
			cidr_del(m, r->sid, &r->remote_scope.cidrs[i]);
		sid_free(s, r->sid);
		r->sid = 0;
		keys_drop(m, r);
	}
	return k;
}

void scope_map_del(Manager *m, Rule *r) {
	ScopeState *s = state_get(m);
	uint32_t sid = r->sid;

	if (!sid)
		return;
	r->sid = 0; /* out of key_sync() and kinds_sync() */
	keys_drop(m, r);
	for (size_t i = 0; i < r->remote_scope.n_cidrs; i++)
		cidr_del(m, sid, &r->remote_scope.cidrs[i]);
	if (s)
		sid_free(s, sid);
}

void scope_access_drop(Manager *m, Rule *carrier) {
	keys_drop(m, carrier);
}

static bool same_target(const Rule *a, const Rule *b) {
	RuleId x, y;

	return rule_id_of(&a->target, &x) >= 0 && rule_id_of(&b->target, &y) >= 0 && rule_id_eq(&x, &y);
}

void scope_target_sync(Manager *m, const Rule *r) {
	bool changed = false, reap = false;

	if (!m->skel)
		return;
	for (Rule *q = m->rules; q; q = q->next)
		if (q->remote && q->sid && same_target(q, r)) {
			if (scope_keys_update(m, q) < 0)
				log_struct(LOG_WARNING, RULE_FIELDS(q), "%s --remote %s: cannot follow its target's sockets and cgroups.",
					   q->name, q->remote);
			changed = true;
		}
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->sid && a->carrier && same_target(a->carrier, r)) {
			int k = scope_keys_update(m, a->carrier);

			if (k < 0)
				log_warning("%s %s --remote %s: cannot follow its target's sockets and cgroups.",
					    a->allow ? "allow" : "deny", a->name, a->remote);
			changed = true;
			/* A socket the target had before it was taken in (an
			 * exe:'s process that connected right after its exec) is
			 * ended as a deny ends those open when it is set. */
			reap |= k > 0 && !a->allow;
		}
	if (changed)
		manager_bpf_bump_gen(m);
	if (reap)
		access_reap(m);
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
