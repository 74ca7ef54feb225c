/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rules: one per target, each with one HTB minor id used on every managed
 * interface (upload) and its IFB (download). A rule is fully in place on
 * every interface before the BPF maps point packets at it, and is taken out
 * of the maps before its classes go, so no packet is ever steered to a
 * class that does not exist.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup-util.h"
#include "log.h"
#include "manager.h"
#include "netbump/netbump.h"
#include "rate.h"

#define E_INVALID "io.netbump.Manager.InvalidParameter"
#define E_NOTFOUND "io.netbump.Manager.TargetNotFound"
#define E_NORULE "io.netbump.Manager.NoSuchRule"
#define E_FULL "io.netbump.Manager.TooManyRules"
#define E_FAILED "io.netbump.Manager.Failed"

static int fail(const char **ret_error, char **ret_reason, const char *error, int r, const char *fmt, ...)
	_printf_(5, 6);
static int fail(const char **ret_error, char **ret_reason, const char *error, int r, const char *fmt, ...) {
	va_list ap;

	*ret_error = error;
	va_start(ap, fmt);
	if (vasprintf(ret_reason, fmt, ap) < 0)
		*ret_reason = NULL;
	va_end(ap);
	return r;
}

static Rule *find_rule(Manager *m, const char *name) {
	for (Rule *r = m->rules; r; r = r->next)
		if (streq(r->name, name))
			return r;
	return NULL;
}

static int minor_alloc(Manager *m, uint32_t *ret) {
	for (uint32_t x = NB_MINOR_MIN; x <= NB_MINOR_MAX; x++) {
		/* The leaf qdisc under class 6e62:x gets handle x:, which must
		 * not collide with the root's own major. */
		if (x == NB_HTB_MAJOR)
			continue;
		if (!(m->minor_used[x / 8] & (1u << (x % 8)))) {
			m->minor_used[x / 8] |= (uint8_t)(1u << (x % 8));
			*ret = x;
			return 0;
		}
	}
	return -ENOSPC;
}

static void minor_free(Manager *m, uint32_t x) {
	m->minor_used[x / 8] &= (uint8_t)~(1u << (x % 8));
}

static void rule_free(Manager *m, Rule *r) {
	if (!r)
		return;
	if (r->minor)
		minor_free(m, r->minor);
	target_done(&r->target);
	free(r->name);
	free(r);
}

/* Resolves a target to the key the BPF programs match on. */
static int resolve_key(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	int r;

	switch (rule->target.kind) {
	case TARGET_CGROUP: {
		_cleanup_free_ char *abs = NULL;
		struct stat st;

		if (!cg_path_is_inside(rule->target.path, m->cgroup_root))
			return fail(ret_error, ret_reason, E_INVALID, -EPERM,
				    "%s is outside the cgroup root %s that this netbumpd manages", rule->name,
				    m->cgroup_root);
		if (asprintf(&abs, "%s%s", m->cgroup_mount, streq(rule->target.path, "/") ? "" : rule->target.path) < 0)
			return -ENOMEM;
		if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
			return fail(ret_error, ret_reason, E_NOTFOUND, -ENOENT, "no such cgroup: %s", rule->target.path);
		r = cg_get_id(abs, &rule->key);
		if (r < 0)
			return fail(ret_error, ret_reason, E_NOTFOUND, r, "cannot read the id of cgroup %s: %s",
				    rule->target.path, strerror(-r));
		return 0;
	}
	case TARGET_USER:
		r = target_resolve(&rule->target);
		if (r == -ENOENT)
			return fail(ret_error, ret_reason, E_NOTFOUND, r, "unknown user: %s", rule->target.user_name);
		if (r < 0)
			return fail(ret_error, ret_reason, E_FAILED, r, "cannot look up user %s: %s",
				    rule->target.user_name, strerror(-r));
		rule->key = rule->target.uid;
		return 0;
	default:
		return fail(ret_error, ret_reason, E_INVALID, -EINVAL, "unsupported target kind");
	}
}

/* Applies a rule's rates on every interface, going from (old_up, old_down).
 * On failure puts every interface back to the old rates. */
static int apply_everywhere(Manager *m, Rule *rule, uint64_t old_up, uint64_t old_down) {
	Iface *i;
	int r = 0;

	for (i = m->ifaces; i; i = i->next) {
		r = iface_apply_rule(m, i, rule, old_up, old_down);
		if (r < 0)
			break;
	}
	if (r >= 0)
		return 0;

	uint64_t new_up = rule->up_bps, new_down = rule->down_bps;
	for (Iface *j = m->ifaces; j != i; j = j->next) {
		rule->up_bps = new_up;
		rule->down_bps = new_down;
		Rule back = *rule;
		back.up_bps = old_up;
		back.down_bps = old_down;
		(void)iface_apply_rule(m, j, &back, new_up, new_down);
	}
	rule->up_bps = new_up;
	rule->down_bps = new_down;
	return r;
}

int manager_set_rule(Manager *m, const RuleRequest *req, Rule **ret, const char **ret_error, char **ret_reason) {
	Rule *rule, *existing;
	const char *why = NULL;
	Target t;
	int r;

	*ret_reason = NULL;
	if (!req->has_up && !req->has_down)
		return fail(ret_error, ret_reason, E_INVALID, -EINVAL, "neither an upload nor a download rate given");
	if ((req->has_up && req->up_bps && (req->up_bps < RATE_MIN_BPS || req->up_bps > RATE_MAX_BPS)) ||
	    (req->has_down && req->down_bps && (req->down_bps < RATE_MIN_BPS || req->down_bps > RATE_MAX_BPS)))
		return fail(ret_error, ret_reason, E_INVALID, -ERANGE, "rate out of range (8bit to 10tbit)");

	r = target_parse(req->target, &t, &why);
	if (r < 0)
		return fail(ret_error, ret_reason, E_INVALID, r, "invalid target '%s': %s", req->target, why);

	rule = calloc(1, sizeof(*rule));
	if (!rule) {
		target_done(&t);
		return -ENOMEM;
	}
	rule->target = t;
	rule->name = target_to_string(&rule->target);
	if (!rule->name) {
		rule_free(m, rule);
		return -ENOMEM;
	}
	r = resolve_key(m, rule, ret_error, ret_reason);
	if (r < 0) {
		rule_free(m, rule);
		return r;
	}
	/* The canonical name of a user given by name is by uid. */
	free(rule->name);
	rule->name = target_to_string(&rule->target);
	if (!rule->name) {
		rule_free(m, rule);
		return -ENOMEM;
	}

	existing = find_rule(m, rule->name);
	if (existing) {
		uint64_t old_up = existing->up_bps, old_down = existing->down_bps;
		bool flags_change;

		rule_free(m, rule);
		if (req->has_up)
			existing->up_bps = req->up_bps;
		if (req->has_down)
			existing->down_bps = req->down_bps;
		if (existing->up_bps == 0 && existing->down_bps == 0) {
			existing->up_bps = old_up;
			existing->down_bps = old_down;
			return fail(ret_error, ret_reason, E_INVALID, -EINVAL,
				    "that would leave %s with no limit: use unset", existing->name);
		}
		flags_change = (!old_up != !existing->up_bps) || (!old_down != !existing->down_bps);

		/* A direction that loses its limit leaves the maps before its
		 * class goes; one that gains a limit gets its class first. */
		if (flags_change && ((old_up && !existing->up_bps) || (old_down && !existing->down_bps))) {
			(void)manager_bpf_set_rule(m, existing);
			manager_bpf_bump_gen(m);
		}
		r = apply_everywhere(m, existing, old_up, old_down);
		if (r < 0) {
			existing->up_bps = old_up;
			existing->down_bps = old_down;
			(void)manager_bpf_set_rule(m, existing);
			manager_bpf_bump_gen(m);
			return fail(ret_error, ret_reason, E_FAILED, r, "the kernel refused the change: %s",
				    strerror(-r));
		}
		if (flags_change) {
			r = manager_bpf_set_rule(m, existing);
			manager_bpf_bump_gen(m);
			if (r < 0)
				return fail(ret_error, ret_reason, E_FAILED, r, "cannot update the BPF map: %s",
					    strerror(-r));
		}
		*ret = existing;
		return 0;
	}

	if (!req->has_up && !req->has_down)
		return -EINVAL;
	rule->up_bps = req->has_up ? req->up_bps : 0;
	rule->down_bps = req->has_down ? req->down_bps : 0;
	if (rule->up_bps == 0 && rule->down_bps == 0) {
		rule_free(m, rule);
		return fail(ret_error, ret_reason, E_INVALID, -EINVAL, "a new rule needs at least one rate");
	}
	r = minor_alloc(m, &rule->minor);
	if (r < 0) {
		rule_free(m, rule);
		return fail(ret_error, ret_reason, E_FULL, r, "no HTB class id left (65533 rules in use)");
	}
	r = apply_everywhere(m, rule, 0, 0);
	if (r < 0) {
		rule_free(m, rule);
		return fail(ret_error, ret_reason, E_FAILED, r, "the kernel refused the class: %s", strerror(-r));
	}
	r = manager_bpf_set_rule(m, rule);
	if (r < 0) {
		for (Iface *i = m->ifaces; i; i = i->next)
			(void)iface_remove_rule(m, i, rule);
		rule_free(m, rule);
		return fail(ret_error, ret_reason, E_FAILED, r, "cannot update the BPF map: %s", strerror(-r));
	}
	manager_bpf_bump_gen(m);

	rule->id = m->next_rule_id++;
	/* Keep creation order: append. */
	Rule **p = &m->rules;
	while (*p)
		p = &(*p)->next;
	*p = rule;
	m->n_rules++;
	*ret = rule;
	return 0;
}

int manager_unset_rule(Manager *m, const char *target, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *name = NULL;
	const char *why = NULL;
	Target t;
	int r;

	*ret_reason = NULL;
	r = target_parse(target, &t, &why);
	if (r < 0)
		return fail(ret_error, ret_reason, E_INVALID, r, "invalid target '%s': %s", target, why);
	r = target_resolve(&t);
	if (r < 0) {
		target_done(&t);
		return fail(ret_error, ret_reason, E_NOTFOUND, r, "unknown user: %s", t.user_name ?: "");
	}
	name = target_to_string(&t);
	target_done(&t);
	if (!name)
		return -ENOMEM;

	for (Rule **p = &m->rules; *p; p = &(*p)->next)
		if (streq((*p)->name, name)) {
			Rule *rule = *p;
			*p = rule->next;
			m->n_rules--;
			(void)manager_bpf_del_rule(m, rule);
			manager_bpf_bump_gen(m);
			for (Iface *i = m->ifaces; i; i = i->next)
				(void)iface_remove_rule(m, i, rule);
			rule_free(m, rule);
			return 0;
		}
	return fail(ret_error, ret_reason, E_NORULE, -ENOENT, "no rule for %s", name);
}

void manager_rules_free(Manager *m) {
	while (m->rules) {
		Rule *r = m->rules;
		m->rules = r->next;
		if (m->skel)
			(void)manager_bpf_del_rule(m, r);
		rule_free(m, r);
	}
	m->n_rules = 0;
}

/* ---- statistics ---- */

typedef struct StatsAcc {
	Manager *m;
	bool down;
} StatsAcc;

static int class_stats_cb(const struct nl_class_stats *s, void *userdata) {
	StatsAcc *a = userdata;

	if ((s->classid >> 16) != NB_HTB_MAJOR)
		return 0;
	for (Rule *r = a->m->rules; r; r = r->next)
		if (r->minor == (s->classid & 0xffff)) {
			RuleStats *st = a->down ? &r->down : &r->up;
			st->bytes += s->bytes;
			st->packets += s->packets;
			st->drops += s->drops;
			st->backlog += s->backlog;
			break;
		}
	return 0;
}

/* Sums the class counters of every interface (upload) and IFB (download)
 * and derives each rule's rate since the previous refresh. */
int manager_refresh_stats(Manager *m) {
	uint64_t now = now_usec();
	int r = 0;

	for (Rule *rule = m->rules; rule; rule = rule->next) {
		rule->up.bytes = rule->up.packets = rule->up.drops = rule->up.backlog = 0;
		rule->down.bytes = rule->down.packets = rule->down.drops = rule->down.backlog = 0;
	}
	for (Iface *i = m->ifaces; i; i = i->next) {
		StatsAcc up = { m, false }, down = { m, true };
		if (i->skipped)
			continue;
		r = nl_class_dump(m->nl, i->ifindex, class_stats_cb, &up);
		if (r < 0)
			break;
		r = nl_class_dump(m->nl, i->ifb_ifindex, class_stats_cb, &down);
		if (r < 0)
			break;
	}
	for (Rule *rule = m->rules; rule; rule = rule->next) {
		RuleStats *d[2] = { &rule->up, &rule->down };
		for (int k = 0; k < 2; k++) {
			RuleStats *s = d[k];
			/* Rates over at least 200 ms, so that a List right after
			 * the timer does not divide a few bytes by nothing. */
			if (s->last_usec && now - s->last_usec >= 200000) {
				uint64_t delta = s->bytes >= s->last_bytes ? s->bytes - s->last_bytes : 0;
				s->rate_bps = delta * 8 * 1000000 / (now - s->last_usec);
			}
			if (!s->last_usec || now - s->last_usec >= 200000) {
				s->last_bytes = s->bytes;
				s->last_usec = now;
			}
		}
	}
	return r;
}
