/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "manager.h"
#include "rule-index.h"

int rule_id_of(const Target *t, RuleId *ret) {
	RuleId id = { .kind = t->kind };

	switch (t->kind) {
	case TARGET_CGROUP:
		id.str = t->path;
		break;
	case TARGET_UNIT:
		id.str = t->unit;
		break;
	case TARGET_MACHINE:
	case TARGET_CONTAINER:
		id.str = t->name;
		break;
	case TARGET_USER:
		if (!t->resolved)
			return -EINVAL;
		id.num = t->uid;
		break;
	case TARGET_PID:
		id.num = (uint64_t)t->pid;
		break;
	case TARGET_SOCK:
		if (!t->resolved)
			return -EINVAL;
		id.num = t->inode;
		break;
	case TARGET_ALL:
		break;
	case TARGET_EXE:
		id.str = t->exe;
		break;
	default:
		return -EINVAL;
	}
	if ((t->kind == TARGET_CGROUP || target_kind_follows_cgroup(t->kind) || t->kind == TARGET_EXE) && !id.str)
		return -EINVAL;
	*ret = id;
	return 0;
}

int rule_id_of_rule(const Rule *r, RuleId *ret) {
	int k = rule_id_of(&r->target, ret);

	if (k >= 0)
		ret->remote = r->remote;
	return k;
}

static bool str_eq(const char *a, const char *b) {
	return a == b || (a && b && streq(a, b));
}

bool rule_id_eq(const RuleId *a, const RuleId *b) {
	return a->kind == b->kind && a->num == b->num && str_eq(a->str, b->str) && str_eq(a->remote, b->remote);
}

/* FNV-1a over the kind, the number and the string; not the scope: a
 * target's scoped rules share its bucket. */
static uint32_t hash_bytes(uint32_t h, const void *p, size_t n) {
	for (const unsigned char *c = p; n > 0; n--, c++)
		h = (h ^ *c) * 16777619u;
	return h;
}

static unsigned id_bucket(const RuleId *id) {
	uint32_t h = 2166136261u;
	uint32_t kind = id->kind;

	h = hash_bytes(h, &kind, sizeof(kind));
	h = hash_bytes(h, &id->num, sizeof(id->num));
	if (id->str)
		h = hash_bytes(h, id->str, strlen(id->str));
	return h % RULE_NAME_BUCKETS;
}

static unsigned key_bucket(uint64_t key) {
	return (unsigned)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 40) % RULE_NAME_BUCKETS;
}

/* A cgroup's one rule, as the kernel knows it: scoped rules are extra. */
static bool keyed(const Rule *r) {
	return (r->target.kind == TARGET_CGROUP || target_kind_follows_cgroup(r->target.kind)) && !r->remote;
}

Rule *rules_find(Manager *m, const RuleId *id) {
	for (Rule *r = m->by_id[id_bucket(id)]; r; r = r->id_next) {
		RuleId rid;
		if (!r->exited && rule_id_of_rule(r, &rid) >= 0 && rule_id_eq(&rid, id))
			return r;
	}
	return NULL;
}

Rule *rules_find_target(Manager *m, const Target *t) {
	RuleId id;
	return rule_id_of(t, &id) >= 0 ? rules_find(m, &id) : NULL;
}

Rule *rules_find_scoped(Manager *m, const Target *t, const char *remote) {
	RuleId id;

	if (rule_id_of(t, &id) < 0)
		return NULL;
	id.remote = remote;
	return rules_find(m, &id);
}

Rule *rules_find_user(Manager *m, uid_t uid) {
	return rules_find(m, &(RuleId){ .kind = TARGET_USER, .num = uid });
}

Rule *rules_find_all(Manager *m) {
	return rules_find(m, &(RuleId){ .kind = TARGET_ALL });
}

Rule *rules_find_cgroup_path(Manager *m, const char *path) {
	return rules_find(m, &(RuleId){ .kind = TARGET_CGROUP, .str = path });
}

Rule *rules_find_cgroup(Manager *m, uint64_t id, const Rule *except) {
	if (id == 0)
		return NULL;
	for (Rule *r = m->by_key[key_bucket(id)]; r; r = r->key_next)
		if (r != except && r->key == id && keyed(r))
			return r;
	return NULL;
}

static void key_add(Manager *m, Rule *r) {
	unsigned b = key_bucket(r->key);
	r->key_next = m->by_key[b];
	m->by_key[b] = r;
}

static void key_del(Manager *m, Rule *r) {
	for (Rule **q = &m->by_key[key_bucket(r->key)]; *q; q = &(*q)->key_next)
		if (*q == r) {
			*q = r->key_next;
			r->key_next = NULL;
			return;
		}
}

void rules_index_add(Manager *m, Rule *r) {
	RuleId id;
	unsigned b;

	if (rule_id_of(&r->target, &id) < 0)
		return; /* not resolved: never made into a rule */
	b = id_bucket(&id);
	r->id_next = m->by_id[b];
	m->by_id[b] = r;
	if (keyed(r))
		key_add(m, r);
	if (target_kind_follows_cgroup(r->target.kind))
		m->n_units++;
	r->indexed = true;
}

void rules_index_del(Manager *m, Rule *r) {
	RuleId id;

	if (!r->indexed || rule_id_of(&r->target, &id) < 0)
		return;
	for (Rule **q = &m->by_id[id_bucket(&id)]; *q; q = &(*q)->id_next)
		if (*q == r) {
			*q = r->id_next;
			break;
		}
	if (keyed(r))
		key_del(m, r);
	if (target_kind_follows_cgroup(r->target.kind))
		m->n_units--;
	r->indexed = false;
}

void rules_rekey(Manager *m, Rule *r, uint64_t key) {
	if (r->indexed && keyed(r))
		key_del(m, r);
	r->key = key;
	if (r->indexed && keyed(r))
		key_add(m, r);
}
