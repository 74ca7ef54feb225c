/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "grip.h"
#include "kind.h"
#include "log.h"
#include "rule-index.h"
#include "rule.h"
#include "scope-map.h"

bool grip_kind(const Rule *r) {
	return rule_kind(r)->grip_move != NULL;
}

static bool same_target(const Rule *a, const Rule *b) {
	RuleId x, y;

	return rule_id_of(&a->target, &x) >= 0 && rule_id_of(&b->target, &y) >= 0 && rule_id_eq(&x, &y);
}

/* The other rules on a target, holders and leaners alike: the rules,
 * then the deny/allow targets. A pid: whose process exited is another
 * target than the process that has its PID now: the rules on the one
 * that exited see each other only. */
typedef struct OnTarget {
	Manager *m;
	const Rule *r;
	Rule *rule;         /* the last rule returned, NULL: none yet */
	AccessRule *access; /* the last deny/allow returned */
	bool rules_done;
} OnTarget;

static Rule *on_target_next(OnTarget *it) {
	if (!it->rules_done) {
		for (it->rule = it->rule ? it->rule->next : it->m->rules; it->rule; it->rule = it->rule->next)
			if (it->rule != it->r && it->rule->exited == it->r->exited && same_target(it->rule, it->r))
				return it->rule;
		it->rules_done = true;
		it->access = NULL;
	}
	for (it->access = it->access ? it->access->next : it->m->access_rules; it->access; it->access = it->access->next) {
		Rule *q = it->access->carrier;
		if (q && q != it->r && q->exited == it->r->exited && same_target(q, it->r))
			return q;
	}
	return NULL;
}

#define FOREACH_ON_TARGET(q, mgr, rule) \
	for (OnTarget _it = { .m = (mgr), .r = (rule) }, *_p = &_it; _p; _p = NULL) \
		for (Rule *q = on_target_next(&_it); q; q = on_target_next(&_it))

Rule *grip_holder(Manager *m, const Rule *r) {
	if (!grip_kind(r))
		return NULL;
	FOREACH_ON_TARGET(q, m, r)
		if (!q->leans)
			return q;
	return NULL;
}

int grip_lean(Manager *m, Rule *r, Rule *holder) {
	free(r->nest_path);
	r->nest_path = NULL;
	if (holder->nest_path) {
		r->nest_path = strdup(holder->nest_path);
		if (!r->nest_path)
			return -ENOMEM;
	}
	r->nest_uid = holder->nest_uid;
	r->leans = true;
	return 0;
}

int grip_handover(Manager *m, Rule *r) {
	Rule *to = NULL;

	if (!grip_kind(r) || r->leans)
		return 0;
	/* The unscoped rule first (there is none but r, which holds it),
	 * then a scoped one, then a deny/allow's. */
	FOREACH_ON_TARGET(q, m, r)
		if (q->leans && (!to || (to->access && !q->access)))
			to = q;
	if (!to)
		return 0;
	rule_kind(r)->grip_move(m, r, to);
	to->leans = false;
	r->leans = true;
	log_struct(LOG_INFO, RULE_FIELDS(to), "%s: %s keeps its processes.", r->name,
		   to->access ? "a deny/allow on it" : "a scoped rule on it");
	scope_target_sync(m, to);
	return 1;
}

int grip_take(Manager *m, Rule *r) {
	Rule *holder;
	int k;

	if (!r->leans || r->remote || r->access)
		return 0;
	holder = grip_holder(m, r);
	if (!holder)
		return 0;
	rule_kind(r)->grip_move(m, holder, r);
	holder->leans = true;
	r->leans = false;
	k = rule_bpf_set(m, r);
	scope_target_sync(m, r);
	return k;
}

void grip_exited(Manager *m, Rule *holder) {
	FOREACH_ON_TARGET(q, m, holder)
		if (q->leans)
			q->exited = true;
}

void grip_end_leaners(Manager *m, Rule *holder) {
	for (;;) {
		Rule *leaner = NULL;

		FOREACH_ON_TARGET(q, m, holder)
			if (q->leans) {
				leaner = q;
				break;
			}
		if (!leaner)
			return;
		log_struct(LOG_INFO, RULE_FIELDS(leaner), "%s%s%s: its target is gone; it ends.", leaner->name,
			   leaner->remote ? " --remote " : "", leaner->remote ?: "");
		manager_rule_expired(m, leaner);
	}
}
