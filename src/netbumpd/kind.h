/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kind.c, kind-*.c: what a rule does that depends on its target's kind,
 * one table per kind, asked through kind_of() instead of a switch on the
 * kind wherever it matters.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "manager.h"

/* Varlink errors of the rule methods. */
#define E_INVALID "io.netbump.Manager.InvalidParameter"
#define E_NOTFOUND "io.netbump.Manager.TargetNotFound"
#define E_NORULE "io.netbump.Manager.NoSuchRule"
#define E_FULL "io.netbump.Manager.TooManyRules"
#define E_FAILED "io.netbump.Manager.Failed"
#define E_DENIED "io.netbump.Manager.PermissionDenied"
#define E_QUOTA "io.netbump.Manager.QuotaExceeded"

/* Sets *ret_error and a formatted *ret_reason, returns r. */
int rule_fail(const char **ret_error, char **ret_reason, const char *error, int r, const char *fmt, ...)
	_printf_(5, 6);

/* What a target's TCP flows are, for a socket dump: sockets made in one of
 * cgroups, with one of cookies, or owned by uid (-1: none). */
typedef struct FlowSet {
	uint64_t *cgroups;
	size_t n_cgroups;
	const uint64_t *cookies;
	size_t n_cookies;
	int uid;
} FlowSet;

typedef struct KindOps {
	/* Whose the target is must be known (and where it is checked) before
	 * resolve(), which may act on it (a pid: its processes go to a scope). */
	bool owner_first;
	/* The rule ends when its target is gone (a pid: its cgroup empties). */
	bool transient;
	/* A cgroup's rule: one per cgroup, whatever names it (Rule.key is the
	 * cgroup's id). */
	bool one_per_cgroup;
	/* attach() lands the download of the flows it brings in itself. */
	bool lands_itself;
	/* Finds what the BPF programs match on (Rule.key) and what the kind
	 * keeps of its target; where its traffic comes from (Rule.nest_path,
	 * nest_uid, nest.h) once that is known. */
	int (*resolve)(Manager *m, Rule *r, const char **ret_error, char **ret_reason);
	/* The user the target belongs to, (uid_t)-1 where it is nobody's in
	 * particular: a non-root caller may only name its own. */
	int (*owner)(Manager *m, Rule *r, uid_t *ret, const char **ret_error, char **ret_reason);
	/* Refuses a target outside the cgroup root netbumpd manages (NULL: it
	 * cannot be). */
	int (*in_root)(Manager *m, Rule *r, const char **ret_error, char **ret_reason);
	/* Where its traffic comes from (Rule.nest_path, nest_uid): again when
	 * the target moves (a unit restarted). NULL: resolve() did it. */
	void (*place)(Manager *m, Rule *r);
	/* Whether the rule applies to uid: its processes or sockets fall under it. */
	bool (*applies_to)(Manager *m, const Rule *r, uid_t uid);
	/* Points the BPF maps at the rule's classes, and lets go of them. */
	int (*map_set)(Manager *m, Rule *r);
	void (*map_del)(Manager *m, Rule *r);
	/* Brings the target's traffic into the rule once its classes and the
	 * maps are in place (a pid: its processes move, its sockets are
	 * mirrored). On failure the caller takes the rule out again. NULL:
	 * the maps alone do it. */
	int (*attach)(Manager *m, Rule *r, const char **ret_error, char **ret_reason);
	/* Lets go of what the rule holds of its target, when it ends or is
	 * not made after all (a pid: its cgroup and watches; its processes go
	 * back with move_back). NULL: nothing held. */
	void (*release)(Manager *m, Rule *r, bool move_back);
	/* Looks at the target again on a Set of the rule as it is (a unit:
	 * its cgroup now). NULL: nothing changes under the same name. */
	int (*refresh)(Manager *m, Rule *r);
	/* What its flows are (fs zeroed, uid -1 by the caller); false when it
	 * cannot have any now, without a dump. */
	bool (*flows)(Manager *m, const Rule *r, FlowSet *fs);
	/* Kinds that act on processes (grip.h): hands what from holds of its
	 * target (cgroups, moved processes, cookies, watches) to to, which
	 * leans on it; an unscoped from's rule-map entries go first. NULL:
	 * each rule resolves its target on its own. */
	void (*grip_move)(Manager *m, Rule *from, Rule *to);
	/* The cgroup ids the grip holds besides Rule.key (exe:'s cgroups), in
	 * a new array; NULL: none. */
	int (*grip_cgroups)(const Rule *r, uint64_t **ret, size_t *ret_n);
} KindOps;

const KindOps *kind_of(TargetKind kind);

static inline const KindOps *rule_kind(const Rule *r) {
	return kind_of(r->target.kind);
}

/* ---- helpers the kinds share (kind.c) ---- */

/* The user a cgroup (relative to the mount) is delegated to: it owns the
 * directory; (uid_t)-1 for root's. */
uid_t cgroup_delegate(Manager *m, const char *rel);
bool cgroup_owned_by(Manager *m, const char *rel, uid_t uid);
/* Whether a process of uid runs in the cgroup at path (relative) or below. */
bool uid_runs_in(Manager *m, uid_t uid, const char *path);
/* Forgets what uid_runs_in() read (on stop). */
void uid_cgroups_clear(void);
/* The owner of a process, checked through its pidfd. */
int pidfd_owner(int pidfd, pid_t pid, uid_t *ret);
/* Adds the ids of the cgroup at dir (absolute) and its descendants. */
int flowset_add_subtree(FlowSet *fs, const char *dir);
