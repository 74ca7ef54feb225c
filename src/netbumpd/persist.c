/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "kind.h"
#include "log.h"
#include "persist.h"
#include "rate.h"
#include "rule-index.h"
#include "rule.h"
#include "rules-file.h"
#include "state.h"

#define OWN_HEADER                                                                                     \
	"# Persistent rules of `netbumpctl set --persistent`, one per line in set's words\n"           \
	"# (netbump.rules(5)). netbumpd rewrites this file; it never writes the others here.\n"

void persist_spec_free(PersistSpec *p) {
	if (!p)
		return;
	free(p->file);
	free(p);
}

static void missed_clear(Manager *m) {
	for (size_t k = 0; k < m->n_persist_missed; k++) {
		free(m->persist_missed[k].file);
		free(m->persist_missed[k].target);
		free(m->persist_missed[k].reason);
	}
	free(m->persist_missed);
	m->persist_missed = NULL;
	m->n_persist_missed = 0;
}

void manager_persist_free(Manager *m) {
	missed_clear(m);
	if (m->persist_boot) {
		rule_set_done(m->persist_boot);
		free(m->persist_boot);
		m->persist_boot = NULL;
	}
}

static void missed_add(Manager *m, const RuleLine *l, const char *reason) {
	PersistMiss *v = realloc(m->persist_missed, (m->n_persist_missed + 1) * sizeof(PersistMiss));

	log_struct(LOG_WARNING, LOG_FIELDS({ "TARGET", l->target }), "%s:%u: the %s on %s%s%s is not in force: %s",
		   l->file, l->line, l->access == RULES_DENY ? "deny" : l->access == RULES_ALLOW ? "allow" : "rule",
		   l->target, l->remote ? " --remote " : "", l->remote ?: "", reason);
	if (!v)
		return;
	m->persist_missed = v;
	v[m->n_persist_missed] = (PersistMiss){ .file = strdup(l->file), .line = l->line, .target = strdup(l->target),
						.reason = strdup(reason) };
	m->n_persist_missed++;
}

static void missed_remove(Manager *m, const char *target) {
	size_t n = 0;

	for (size_t k = 0; k < m->n_persist_missed; k++) {
		PersistMiss *x = &m->persist_missed[k];
		if (x->target && streq(x->target, target)) {
			free(x->file);
			free(x->target);
			free(x->reason);
		} else
			m->persist_missed[n++] = *x;
	}
	m->n_persist_missed = n;
}

static void warn_log(void *userdata, const char *file, unsigned line, const char *message) {
	log_notice("%s:%u: %s", file, line, message);
}

static int load(Manager *m, RuleSet *ret, char **ret_error) {
	return rules_load_dir(m->config_dir, m->cgroup_mount, ret, ret_error, warn_log, m);
}

static char *own_path(Manager *m) {
	char *p = NULL;

	if (asprintf(&p, "%s/" RULES_SUBDIR "/" RULES_OWN_FILE, m->config_dir) < 0)
		return NULL;
	return p;
}

/* A line's target as rules are named: a user by uid. */
static int line_resolve(const RuleLine *l, Target *ret, char **ret_canonical, char **ret_reason) {
	const char *why = NULL;
	Target t;
	int r;

	r = target_parse(l->target, &t, &why);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return asprintf(ret_reason, "invalid target: %s", why) < 0 ? -ENOMEM : r;
	/* A user by uid, a program by its real path: as rules are keyed. */
	r = target_resolve(&t);
	if (r < 0 && t.kind == TARGET_USER && r != -ENOMEM) {
		int k = r == -ENOENT ? asprintf(ret_reason, "unknown user: %s", t.user_name)
				     : asprintf(ret_reason, "cannot look up user %s: %s", t.user_name, strerror(-r));
		target_done(&t);
		return k < 0 ? -ENOMEM : r;
	}
	if (r == -ENOMEM) {
		target_done(&t);
		return r;
	}
	*ret_canonical = target_to_string(&t);
	if (!*ret_canonical) {
		target_done(&t);
		return -ENOMEM;
	}
	*ret = t;
	return 0;
}

/* The rule in force on a request's canonical target and scope (NULL:
 * unscoped), NULL: none. */
static Rule *rule_of_scoped(Manager *m, const char *canonical, const char *remote) {
	const char *why = NULL;
	Rule *rule = NULL;
	Target t;

	if (target_parse(canonical, &t, &why) < 0)
		return NULL;
	if (target_resolve(&t) >= 0)
		rule = remote ? rules_find_scoped(m, &t, remote) : rules_find_target(m, &t);
	target_done(&t);
	return rule;
}


static bool rule_matches(const Rule *r, uint64_t up, uint64_t down, uint64_t min_up, uint64_t min_down, int prio) {
	return r->up_bps == up && r->down_bps == down && r->min_up == min_up && r->min_down == min_down &&
	       (int)r->priority == prio;
}

static int rule_set_persist(Rule *r, const char *file, unsigned line, uint64_t up, uint64_t down, uint64_t min_up,
			    uint64_t min_down, int prio) {
	PersistSpec *p = calloc(1, sizeof(*p));

	if (!p || !(p->file = strdup(file))) {
		free(p);
		return -ENOMEM;
	}
	*p = (PersistSpec){ .file = p->file, .line = line, .up = up, .down = down, .min_up = min_up,
			    .min_down = min_down, .priority = (Priority)prio };
	persist_spec_free(r->persist);
	r->persist = p;
	return 0;
}

/* all, users, cgroups and units by depth, the rest: each rule comes in
 * inside the rules around it. */
static unsigned line_rank(const RuleLine *l) {
	const char *t = l->target;
	unsigned depth = 0;

	for (const char *c = t; *c && depth < 99; c++)
		depth += *c == '/';
	return streq(t, "all")			 ? 0
	       : strncmp(t, "user@", 5) == 0	 ? 100
	       : strncmp(t, "cgroup:", 7) == 0 ? 200 + depth
	       : strncmp(t, "unit:", 5) == 0	 ? 300
						 : 1000;
}

static const RuleSet *sort_set;
static int by_rank(const void *a, const void *b) {
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	unsigned rx = line_rank(&sort_set->v[x]), ry = line_rank(&sort_set->v[y]);

	return rx != ry ? (rx < ry ? -1 : 1) : (x < y ? -1 : x > y);
}

static int ptr_cmp(const void *a, const void *b) {
	const Rule *x = *(Rule *const *)a, *y = *(Rule *const *)b;
	return x < y ? -1 : x > y;
}

static int access_set_persist(AccessRule *a, const char *file, unsigned line) {
	char *f = strdup(file);

	if (!f)
		return -ENOMEM;
	free(a->persist_file);
	a->persist_file = f;
	a->persist_line = line;
	return 0;
}

/* A deny or allow line: the access rule in force made what it says. */
static int apply_access(Manager *m, const RuleLine *l, const char *canonical, AccessRule **seen, size_t *n_seen,
			PersistReport *rep) {
	_cleanup_free_ char *reason = NULL;
	const char *error = NULL;
	bool allow = l->access == RULES_ALLOW;
	AccessRule *a = access_find(m, canonical, l->remote);
	int r;

	for (size_t k = 0; a && k < *n_seen; k++)
		if (seen[k] == a) {
			if (asprintf(&reason, "%s --remote %s is the target and scope of %s:%u too: one line per target "
					      "and scope",
				     canonical, l->remote, a->persist_file ?: "?", a->persist_line) < 0)
				return -ENOMEM;
			missed_add(m, l, reason);
			return 0;
		}
	if (a && a->allow == allow && a->owner == 0)
		rep->unchanged++;
	else {
		bool existed = a != NULL;

		r = access_set(m, canonical, l->remote, allow, 0, &a, &error, &reason);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			missed_add(m, l, reason ?: strerror(-r));
			return 0;
		}
		if (existed)
			rep->changed++;
		else
			rep->added++;
		log_struct(LOG_INFO, LOG_FIELDS({ "TARGET", a->name }), "%s:%u: %s %s --remote %s %s.", l->file, l->line,
			   allow ? "allow" : "deny", a->name, a->remote, existed ? "changed" : "added");
	}
	r = access_set_persist(a, l->file, l->line);
	if (r < 0)
		return r;
	seen[(*n_seen)++] = a;
	return 0;
}

/* Makes the persistent rules in force what set says. */
static int apply_set(Manager *m, const RuleSet *set, PersistReport *rep) {
	_cleanup_free_ size_t *order = calloc(set->n ?: 1, sizeof(size_t));
	_cleanup_free_ Rule **seen = calloc(set->n ?: 1, sizeof(Rule *));
	_cleanup_free_ size_t *seen_line = calloc(set->n ?: 1, sizeof(size_t));
	_cleanup_free_ AccessRule **seen_acc = calloc(set->n ?: 1, sizeof(AccessRule *));
	size_t n_seen = 0, n_gone = 0, n_seen_acc = 0;
	_cleanup_free_ char **gone = NULL;
	_cleanup_free_ char **gone_remote = NULL;

	*rep = (PersistReport){};
	if (!order || !seen || !seen_line || !seen_acc)
		return -ENOMEM;
	missed_clear(m);
	for (size_t k = 0; k < set->n; k++)
		order[k] = k;
	sort_set = set;
	qsort(order, set->n, sizeof(size_t), by_rank);

	for (size_t i = 0; i < set->n; i++) {
		const RuleLine *l = &set->v[order[i]];
		_cleanup_free_ char *canonical = NULL, *reason = NULL;
		const char *error = NULL;
		Target t;
		Rule *rule;
		bool twin = false;
		int r;

		r = line_resolve(l, &t, &canonical, &reason);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			missed_add(m, l, reason);
			continue;
		}
		if (l->access) {
			r = apply_access(m, l, canonical, seen_acc, &n_seen_acc, rep);
			target_done(&t);
			if (r < 0)
				return r;
			continue;
		}
		rule = l->remote ? rules_find_scoped(m, &t, l->remote) : rules_find_target(m, &t);
		target_done(&t);
		for (size_t k = 0; rule && k < n_seen; k++)
			if (seen[k] == rule) {
				const RuleLine *o = &set->v[seen_line[k]];
				free(reason);
				reason = NULL;
				if (asprintf(&reason, "%s is the target of %s:%u too: one line per target", canonical,
					     o->file, o->line) < 0)
					return -ENOMEM;
				missed_add(m, l, reason);
				twin = true;
			}
		if (twin)
			continue;

		if (rule && rule_matches(rule, l->up, l->down, l->min_up, l->min_down, l->priority)) {
			/* Nothing to change on the interfaces: the same rule, now the line's. */
			bool was = rule->persist && rule->persist->file;
			rule->owner = 0;
			rep->unchanged++;
			if (!was)
				log_struct(LOG_INFO, RULE_FIELDS(rule), "%s:%u: rule %s in force as it was.", l->file,
					   l->line, rule->name);
		} else {
			RuleRequest req = { .target = canonical,
					    .remote = l->remote,
					    .has_up = true,
					    .up_bps = l->up,
					    .has_down = true,
					    .down_bps = l->down,
					    .has_min_up = true,
					    .min_up = l->min_up,
					    .has_min_down = true,
					    .min_down = l->min_down,
					    .has_priority = true,
					    .priority = (Priority)l->priority,
					    .caller = 0 };
			bool existed = rule != NULL;
			char up[RATE_STRING_MAX], down[RATE_STRING_MAX];

			r = manager_set_rule(m, &req, &rule, &error, &reason);
			if (r == -ENOMEM)
				return r;
			if (r < 0) {
				missed_add(m, l, reason ?: strerror(-r));
				continue;
			}
			if (existed)
				rep->changed++;
			else
				rep->added++;
			log_struct(LOG_INFO, RULE_FIELDS(rule), "%s:%u: rule %s%s%s %s: up %s, down %s.", l->file,
				   l->line, rule->name, rule->remote ? " --remote " : "", rule->remote ?: "",
				   existed ? "changed" : "added",
				   rule->up_bps ? rate_format(rule->up_bps, up) : "unlimited",
				   rule->down_bps ? rate_format(rule->down_bps, down) : "unlimited");
		}
		if (rule_set_persist(rule, l->file, l->line, l->up, l->down, l->min_up, l->min_down, l->priority) < 0)
			return -ENOMEM;
		seen_line[n_seen] = order[i];
		seen[n_seen++] = rule;
	}

	/* The persistent rules whose lines are gone. */
	qsort(seen, n_seen, sizeof(Rule *), ptr_cmp);
	for (Rule *r = m->rules; r; r = r->next)
		if (r->persist && !bsearch(&r, seen, n_seen, sizeof(Rule *), ptr_cmp)) {
			char **ng = realloc(gone, (n_gone + 1) * sizeof(char *));
			if (!ng)
				return -ENOMEM;
			gone = ng;
			ng = realloc(gone_remote, (n_gone + 1) * sizeof(char *));
			if (!ng)
				return -ENOMEM;
			gone_remote = ng;
			gone[n_gone] = strdup(r->name);
			gone_remote[n_gone] = r->remote ? strdup(r->remote) : NULL;
			if (!gone[n_gone] || (r->remote && !gone_remote[n_gone])) {
				free(gone[n_gone]);
				free(gone_remote[n_gone]);
				return -ENOMEM;
			}
			n_gone++;
		}
	for (size_t k = 0; k < n_gone; k++) {
		_cleanup_free_ char *reason = NULL;
		const char *error = NULL;
		int r = manager_unset_rule_scoped(m, gone[k], gone_remote[k], 0, &error, &reason);

		if (r < 0)
			log_warning("Cannot remove rule %s%s%s, whose line is gone from the rules files: %s", gone[k],
				    gone_remote[k] ? " --remote " : "", gone_remote[k] ?: "", reason ?: strerror(-r));
		else {
			log_struct(LOG_INFO, LOG_FIELDS({ "RULE", gone[k] }, { "TARGET", gone[k] }),
				   "Rule %s%s%s removed: its line is gone from the rules files.", gone[k],
				   gone_remote[k] ? " --remote " : "", gone_remote[k] ?: "");
			rep->removed++;
		}
		free(gone[k]);
		free(gone_remote[k]);
	}
	/* The persistent deny and allow rules whose lines are gone. */
	for (AccessRule *a = m->access_rules, *next; a; a = next) {
		bool kept = false;

		next = a->next;
		for (size_t k = 0; k < n_seen_acc && !kept; k++)
			kept = seen_acc[k] == a;
		if (kept || !a->persist_file)
			continue;
		_cleanup_free_ char *reason = NULL, *name = strdup(a->name), *remote = strdup(a->remote);
		const char *error = NULL;
		bool allow = a->allow;
		int r = name && remote ? access_unset(m, name, remote, 0, &error, &reason) : -ENOMEM;

		if (r < 0)
			log_warning("Cannot remove %s %s --remote %s, whose line is gone from the rules files: %s",
				    allow ? "allow" : "deny", name ?: "?", remote ?: "?", reason ?: strerror(-r));
		else {
			log_struct(LOG_INFO, LOG_FIELDS({ "TARGET", name }), "%s %s --remote %s removed: its line is gone from the rules files.",
				   allow ? "Allow" : "Deny", name, remote);
			rep->removed++;
		}
		/* access_unset() freed a; next is still in the list */
	}
	(void)manager_state_save(m);
	return 0;
}

int manager_persist_read(Manager *m) {
	_cleanup_free_ char *error = NULL;
	RuleSet *set = calloc(1, sizeof(RuleSet));
	int r;

	if (!set)
		return log_oom();
	r = load(m, set, &error);
	if (r < 0) {
		free(set);
		if (r == -ENOMEM)
			return log_oom();
		return log_error_errno(r,
				       "%s: netbumpd does not start without its persistent rules; fix that, then start "
				       "it again (nothing was changed).",
				       error ?: "cannot read the rules files");
	}
	m->persist_boot = set;
	return 0;
}

void manager_persist_apply_boot(Manager *m) {
	PersistReport rep;
	RuleSet empty = {};

	/* No files read (a failed start before): what was restored as
	 * persistent is not removed on that account. */
	if (!m->persist_boot)
		return;
	if (apply_set(m, m->persist_boot ?: &empty, &rep) < 0)
		log_oom();
	if (m->persist_boot->n > 0 || rep.removed > 0)
		log_notice("Persistent rules from %s/" RULES_SUBDIR ": %u in force, %zu not (see above).", m->config_dir,
			   rep.added + rep.changed + rep.unchanged, m->n_persist_missed);
	rule_set_done(m->persist_boot);
	free(m->persist_boot);
	m->persist_boot = NULL;
}

int manager_persist_reload(Manager *m, PersistReport *ret, char **ret_reason) {
	_cleanup_(rule_set_done) RuleSet set = {};
	_cleanup_free_ char *error = NULL;
	int r;

	*ret_reason = NULL;
	r = load(m, &set, &error);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		if (asprintf(ret_reason, "%s; nothing changed, the rules in force stay as they were",
			     error ?: strerror(-r)) < 0)
			return -ENOMEM;
		log_warning("Reload refused: %s", *ret_reason);
		return r;
	}
	r = apply_set(m, &set, ret);
	if (r < 0)
		return r;
	log_notice("Reloaded %s/" RULES_SUBDIR ": %u added, %u changed, %u removed, %u unchanged, %zu not in force.",
		   m->config_dir, ret->added, ret->changed, ret->removed, ret->unchanged, m->n_persist_missed);
	return 0;
}

/* Writes the whole file: a temporary file renamed over it, on disk before
 * the rename (it has to outlive the machine, unlike the state file). */
static int own_write(Manager *m, const char *text, size_t len, char **ret_reason) {
	_cleanup_free_ char *dir = NULL, *path = own_path(m), *tmp = NULL;
	_cleanup_close_ int fd = -1, dfd = -1;
	int r = 0;

	if (!path || asprintf(&dir, "%s/" RULES_SUBDIR, m->config_dir) < 0 ||
	    asprintf(&tmp, "%s/." RULES_OWN_FILE ".XXXXXX", dir) < 0)
		return -ENOMEM;
	if ((mkdir(m->config_dir, 0755) < 0 && errno != EEXIST) || (mkdir(dir, 0755) < 0 && errno != EEXIST))
		r = negative_errno();
	if (r >= 0) {
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0)
			r = negative_errno();
	}
	for (size_t done = 0; r >= 0 && done < len;) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = negative_errno();
		else
			done += n;
	}
	if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		r = negative_errno();
	if (r >= 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0) {
		if (fd >= 0)
			(void)unlink(tmp);
		return asprintf(ret_reason, "cannot write %s: %s", path, strerror(-r)) < 0 ? -ENOMEM : r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

/* The own file's text with line `line` replaced by `with` (NULL: removed;
 * line 0: `with` appended). *ret_line: where `with` is. */
static char *text_edit(const char *text, size_t len, unsigned line, const char *with, unsigned *ret_line) {
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	unsigned k = 0;

	if (!f)
		return NULL;
	if (!text) {
		fputs(OWN_HEADER, f);
		k = 2;
	} else
		for (const char *p = text; p < text + len;) {
			const char *e = memchr(p, '\n', text + len - p) ?: text + len;

			k++;
			if (k == line && with) {
				fprintf(f, "%s\n", with);
				*ret_line = k;
			} else if (k != line)
				fprintf(f, "%.*s\n", (int)(e - p), p);
			p = e + 1;
		}
	if (line == 0 && with) {
		fprintf(f, "%s\n", with);
		*ret_line = k + 1;
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static bool streq_ptr(const char *a, const char *b) {
	return a && b ? streq(a, b) : a == b;
}

/* The line of set that names canonical (or the words given) with scope
 * remote (NULL: unscoped): NULL if none. */
static const RuleLine *set_find(const RuleSet *set, const char *given, const char *canonical, const char *remote) {
	for (size_t k = 0; k < set->n; k++) {
		_cleanup_free_ char *c = NULL, *why = NULL;
		Target t;

		if (!streq_ptr(set->v[k].remote, remote))
			continue;
		if (streq(set->v[k].target, given) || streq(set->v[k].target, canonical))
			return &set->v[k];
		if (line_resolve(&set->v[k], &t, &c, &why) >= 0) {
			target_done(&t);
			if (streq(c, canonical))
				return &set->v[k];
		}
	}
	return NULL;
}

/* Root's, and of a target that outlives a restart; the files read. */
static int persist_prepare(Manager *m, const Request *req, const char *verb, RuleSet *set, const char **ret_error,
			   char **ret_reason) {
	_cleanup_free_ char *error = NULL;
	const char *why = NULL;
	Target t;
	int r;

	if (req->rule.caller != 0)
		return rule_fail(ret_error, ret_reason, E_DENIED, -EPERM,
				 "only root can %s a persistent rule: they are in %s/" RULES_SUBDIR
				 ", root's files (leave out --persistent for a rule until netbumpd stops)",
				 verb, m->config_dir);
	if (target_parse(req->canonical, &t, &why) >= 0) {
		TargetKind kind = t.kind;

		target_done(&t);
		if (kind == TARGET_PID || kind == TARGET_SOCK)
			return rule_fail(ret_error, ret_reason, E_INVALID, -EINVAL,
					 "%s names a %s, which does not outlive a restart: only lasting targets "
					 "(unit:, cgroup:, user@, all) can be persistent",
					 req->target, kind == TARGET_PID ? "process" : "socket");
	}
	r = load(m, set, &error);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_INVALID, r,
				 "the rules files do not read: %s; fix that first (nothing changed)", error);
	return 0;
}

/* The line of req's target and scope in the rules files (NULL: none),
 * refused when it is in a file netbumpd does not write; then the text of
 * netbumpd's own file (path), NULL when it does not exist yet. */
static int own_line_find(const Request *req, const RuleSet *set, const char *path, const RuleLine **ret_found,
			 char **ret_text, size_t *ret_len, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *error = NULL;
	const RuleLine *found = set_find(set, req->target, req->canonical, req->remote);
	int r;

	if (found && !streq(found->file, path))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EEXIST,
				 "the persistent rule on %s%s%s is %s:%u, which netbumpd does not write: change that "
				 "line and run 'netbumpctl reload'",
				 req->target, req->remote ? " --remote " : "", req->remote ?: "", found->file, found->line);
	r = rules_read_file(path, ret_text, ret_len, &error);
	if (r < 0 && r != -ENOENT)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s; nothing changed", error);
	if (r == -ENOENT)
		*ret_text = NULL;
	*ret_found = found;
	return 0;
}

/* A change whose line could not be written was put back: says so. */
static void reason_nothing_changed(const char **ret_error, char **ret_reason) {
	char *full = NULL;

	*ret_error = E_FAILED;
	if (*ret_reason && asprintf(&full, "%s; nothing changed", *ret_reason) >= 0) {
		free(*ret_reason);
		*ret_reason = full;
	}
}

int persist_set(Manager *m, const Request *req, Rule **ret, const char **ret_error, char **ret_reason) {
	_cleanup_(rule_set_done) RuleSet set = {};
	_cleanup_free_ char *path = own_path(m), *text = NULL, *line = NULL, *out = NULL;
	const RuleLine *found;
	RuleRequest back = { .has_up = true, .has_down = true, .has_min_up = true, .has_min_down = true,
			     .has_priority = true };
	Rule *rule, *existing;
	uid_t old_owner = 0;
	size_t len = 0;
	unsigned at = 0;
	int r;

	*ret_reason = NULL;
	if (!path)
		return -ENOMEM;
	r = persist_prepare(m, req, "make", &set, ret_error, ret_reason);
	if (r < 0)
		return r;
	r = own_line_find(req, &set, path, &found, &text, &len, ret_error, ret_reason);
	if (r < 0)
		return r;

	existing = rule_of_scoped(m, req->canonical, req->remote);
	if (existing) {
		back.up_bps = existing->up_bps;
		back.down_bps = existing->down_bps;
		back.min_up = existing->min_up;
		back.min_down = existing->min_down;
		back.priority = existing->priority;
		old_owner = existing->owner;
	}
	r = manager_set_rule(m, &req->rule, &rule, ret_error, ret_reason);
	if (r < 0)
		return r;

	RuleLine rl = { .target = (char *)req->target, .remote = req->remote, .up = rule->up_bps,
			.down = rule->down_bps, .min_up = rule->min_up, .min_down = rule->min_down,
			.priority = (int)rule->priority };
	line = rules_format_rule_line(&rl);
	out = line ? text_edit(text, len, found ? found->line : 0, line, &at) : NULL;
	r = out ? own_write(m, out, strlen(out), ret_reason) : -ENOMEM;
	if (r < 0) {
		_cleanup_free_ char *reason2 = NULL;
		const char *error2 = NULL;
		int k;

		/* Not in the file, not done: as it was. */
		if (existing) {
			back.target = rule->name;
			back.remote = rule->remote;
			k = manager_set_rule(m, &back, &rule, &error2, &reason2);
			rule->owner = old_owner;
			(void)manager_state_save_rule(m, rule);
		} else
			k = manager_unset_rule_scoped(m, rule->name, rule->remote, 0, &error2, &reason2);
		if (k < 0)
			log_warning("%s: cannot undo the change: %s", req->target, reason2 ?: strerror(-k));
		if (!*ret_reason && asprintf(ret_reason, "out of memory") < 0)
			*ret_reason = NULL;
		reason_nothing_changed(ret_error, ret_reason);
		return r;
	}
	r = rule_set_persist(rule, path, at, rule->up_bps, rule->down_bps, rule->min_up, rule->min_down,
			     (int)rule->priority);
	if (r < 0)
		return r;
	(void)manager_state_save_rule(m, rule);
	missed_remove(m, found ? found->target : req->target);
	log_struct(LOG_INFO, RULE_FIELDS(rule), "Rule %s made persistent: %s:%u.", rule->name, path, at);
	*ret = rule;
	return 0;
}

int persist_access(Manager *m, const Request *req, AccessRule **ret, const char **ret_error, char **ret_reason) {
	_cleanup_(rule_set_done) RuleSet set = {};
	_cleanup_free_ char *path = own_path(m), *text = NULL, *line = NULL, *out = NULL;
	bool allow = req->access == REQUEST_ALLOW, old_allow = false;
	const char *verb = allow ? "allow" : "deny";
	const RuleLine *found;
	AccessRule *a, *existing;
	uid_t old_owner = 0;
	size_t len = 0;
	unsigned at = 0;
	int r;

	*ret_reason = NULL;
	if (!path)
		return -ENOMEM;
	r = persist_prepare(m, req, verb, &set, ret_error, ret_reason);
	if (r < 0)
		return r;
	r = own_line_find(req, &set, path, &found, &text, &len, ret_error, ret_reason);
	if (r < 0)
		return r;

	existing = access_find(m, req->canonical, req->remote);
	if (existing) {
		old_allow = existing->allow;
		old_owner = existing->owner;
	}
	r = access_set(m, req->canonical, req->remote, allow, 0, &a, ret_error, ret_reason);
	if (r < 0)
		return r;
	RuleLine rl = { .target = (char *)req->target, .remote = a->remote, .access = allow ? RULES_ALLOW : RULES_DENY };
	line = rules_format_rule_line(&rl);
	out = line ? text_edit(text, len, found ? found->line : 0, line, &at) : NULL;
	r = out ? own_write(m, out, strlen(out), ret_reason) : -ENOMEM;
	if (r < 0) {
		_cleanup_free_ char *reason2 = NULL;
		const char *error2 = NULL;
		AccessRule *back = NULL;
		int k;

		/* Not in the file, not done: as it was. */
		if (existing)
			k = access_set(m, req->canonical, req->remote, old_allow, old_owner, &back, &error2, &reason2);
		else
			k = access_unset(m, req->canonical, req->remote, 0, &error2, &reason2);
		if (k < 0)
			log_warning("%s --remote %s: cannot undo the change: %s", req->target, req->remote,
				    reason2 ?: strerror(-k));
		reason_nothing_changed(ret_error, ret_reason);
		return r;
	}
	r = access_set_persist(a, path, at);
	if (r < 0)
		return r;
	missed_remove(m, found ? found->target : req->target);
	log_struct(LOG_INFO, LOG_FIELDS({ "TARGET", a->name }), "%s %s --remote %s made persistent: %s:%u.",
		   allow ? "Allow" : "Deny", a->name, a->remote, path, at);
	*ret = a;
	return 0;
}

int persist_unset(Manager *m, const Request *req, const char **ret_error, char **ret_reason) {
	_cleanup_(rule_set_done) RuleSet set = {};
	_cleanup_free_ char *path = own_path(m), *text = NULL, *error = NULL, *out = NULL;
	const RuleLine *found;
	unsigned removed, at = 0;
	size_t len = 0;
	Rule *rule = NULL;
	int r;

	*ret_reason = NULL;
	if (!path)
		return -ENOMEM;
	r = persist_prepare(m, req, "remove", &set, ret_error, ret_reason);
	if (r < 0)
		return r;
	found = set_find(&set, req->target, req->canonical, req->remote);
	if (!found)
		return rule_fail(ret_error, ret_reason, E_NORULE, -ENOENT,
				 "no persistent rule for %s%s%s in %s/" RULES_SUBDIR, req->target,
				 req->remote ? " --remote " : "", req->remote ?: "", m->config_dir);
	if (!streq(found->file, path))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "the persistent rule on %s is %s:%u, which netbumpd does not write: remove that line "
				 "and run 'netbumpctl reload'",
				 req->target, found->file, found->line);
	r = rules_read_file(path, &text, &len, &error);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s; nothing changed", error);
	removed = found->line;
	out = text_edit(text, len, removed, NULL, &at);
	if (!out)
		return -ENOMEM;
	r = own_write(m, out, strlen(out), ret_reason);
	if (r < 0) {
		char *full = NULL;
		*ret_error = E_FAILED;
		if (*ret_reason && asprintf(&full, "%s; nothing changed", *ret_reason) >= 0) {
			free(*ret_reason);
			*ret_reason = full;
		}
		return r;
	}
	missed_remove(m, found->target);
	/* The lines below it moved up one. */
	for (Rule *x = m->rules; x; x = x->next)
		if (x->persist && x->persist->file && streq(x->persist->file, path) && x->persist->line > removed)
			x->persist->line--;
	for (size_t k = 0; k < m->n_persist_missed; k++)
		if (streq(m->persist_missed[k].file, path) && m->persist_missed[k].line > removed)
			m->persist_missed[k].line--;
	for (AccessRule *a = m->access_rules; a; a = a->next)
		if (a->persist_file && streq(a->persist_file, path) && a->persist_line > removed)
			a->persist_line--;

	if (found->access) {
		AccessRule *a = access_find(m, req->canonical, req->remote);

		if (!a)
			return 0; /* the line was not in force */
		free(a->persist_file);
		a->persist_file = NULL;
		r = access_unset(m, req->canonical, req->remote, 0, ret_error, ret_reason);
		if (r < 0)
			return r;
		log_struct(LOG_INFO, LOG_FIELDS({ "TARGET", req->target }),
			   "Persistent %s %s --remote %s removed, and its line %s:%u.",
			   found->access == RULES_ALLOW ? "allow" : "deny", req->canonical, req->remote, path, removed);
		return 0;
	}
	rule = rule_of_scoped(m, req->canonical, req->remote);
	if (!rule)
		return 0; /* the line was not in force */
	persist_spec_free(rule->persist);
	rule->persist = NULL;
	r = manager_unset_rule_scoped(m, req->canonical, req->remote, 0, ret_error, ret_reason);
	if (r < 0)
		return r;
	log_struct(LOG_INFO, LOG_FIELDS({ "RULE", req->canonical }, { "TARGET", req->target }),
		   "Persistent rule %s removed, and its line %s:%u.", req->canonical, path, removed);
	return 0;
}

int persist_check_unset(Manager *m, const char *canonical, const char *remote, const char **ret_error,
			char **ret_reason) {
	_cleanup_free_ char *path = own_path(m);
	Rule *rule = rule_of_scoped(m, canonical, remote);
	AccessRule *a = remote ? access_find(m, canonical, remote) : NULL;

	*ret_reason = NULL;
	if (a && a->persist_file) {
		if (path && streq(a->persist_file, path))
			return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
					 "%s %s --remote %s is persistent (%s:%u): 'netbumpctl unset --persistent %s "
					 "--remote %s' removes it for good",
					 a->allow ? "allow" : "deny", a->name, a->remote, a->persist_file, a->persist_line,
					 a->name, a->remote);
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "%s %s --remote %s is persistent (%s:%u): remove that line and run 'netbumpctl reload'",
				 a->allow ? "allow" : "deny", a->name, a->remote, a->persist_file, a->persist_line);
	}
	if (!rule || !rule->persist || !rule->persist->file)
		return 0;
	if (path && streq(rule->persist->file, path))
		return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
				 "the rule on %s%s%s is persistent (%s:%u): 'netbumpctl unset --persistent %s%s%s' "
				 "removes it for good",
				 rule->name, remote ? " --remote " : "", remote ?: "", rule->persist->file,
				 rule->persist->line, rule->name, remote ? " --remote " : "", remote ?: "");
	return rule_fail(ret_error, ret_reason, E_INVALID, -EPERM,
			 "the rule on %s%s%s is persistent (%s:%u): remove that line and run 'netbumpctl reload'",
			 rule->name, remote ? " --remote " : "", remote ?: "", rule->persist->file, rule->persist->line);
}


void persist_rule_json(const Rule *r, json_object *o) {
	const PersistSpec *p = r->persist;
	_cleanup_free_ char *src = NULL;

	json_object_object_add(o, "persistent", json_object_new_boolean(p != NULL));
	if (!p || !p->file)
		return;
	if (asprintf(&src, "%s:%u", p->file, p->line) >= 0)
		json_object_object_add(o, "source", json_object_new_string(src));
	/* changed by a set at run time since its line was read */
	json_object_object_add(o, "overridden",
			       json_object_new_boolean(!rule_matches(r, p->up, p->down, p->min_up, p->min_down,
								     (int)p->priority)));
}

json_object *persist_missed_json(Manager *m) {
	json_object *a = json_object_new_array();

	for (size_t k = 0; a && k < m->n_persist_missed; k++) {
		const PersistMiss *x = &m->persist_missed[k];
		json_object *o = json_object_new_object();
		_cleanup_free_ char *src = NULL;

		if (!o || asprintf(&src, "%s:%u", x->file ?: "?", x->line) < 0) {
			json_object_put(o);
			continue;
		}
		json_object_object_add(o, "target", json_object_new_string(x->target ?: "?"));
		json_object_object_add(o, "source", json_object_new_string(src));
		json_object_object_add(o, "reason", json_object_new_string(x->reason ?: "?"));
		json_object_array_add(a, o);
	}
	return a;
}
