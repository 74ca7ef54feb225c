/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nesting: which rule encloses which, and the HTB class each rule wants.
 *
 * A rule nests inside the rule that held its target's traffic before it
 * existed: the innermost rule that contains it. Containment follows the
 * targets, from the outside in:
 *   all                          everything netbumpd classifies
 *   user@UID                     the traffic of that user's processes and
 *                                sockets, and cgroups delegated to the user
 *   cgroup: / unit: (by depth)   the cgroup's subtree: deeper cgroups, the
 *                                pid: rules of processes that came from it,
 *                                the sockets made in it
 *   pid:                         the sockets the process had or makes
 *   sock:
 * A cgroup that is not delegated to one user (root's, holding several
 * users' processes) is not inside any user rule: its rule holds its
 * processes whoever runs them, as the BPF classifier looks at cgroups
 * before users. Each rule's class is a child of its parent's class, so
 * every enclosing limit bounds it. A direction a rule does not limit gets a
 * class too when an enclosing rule limits it (its ceiling inherited), so
 * that the other rules keep bounding it.
 *
 * Everything here is pure: no system call, no netlink; tests/unit/test-nest.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Manager Manager;
typedef struct Rule Rule;

typedef enum Priority {
	PRIORITY_HIGH,
	PRIORITY_NORMAL,
	PRIORITY_LOW,
	_PRIORITY_MAX,
} Priority;

const char *priority_to_string(Priority p);
/* -EINVAL for anything but "high", "normal" and "low". */
int priority_from_string(const char *s, Priority *ret);

/* HTB allows 8 levels; the leaves under a rule class take one. */
#define NEST_DEPTH_MAX 7u

/* The ceiling of a class in a direction its rule does not limit: the
 * enclosing classes bound it. */
#define NEST_CEIL_INHERIT UINT64_C(100000000000)
/* The guaranteed rate of a nested class without --min: as good as none,
 * it borrows everything from its parent. */
#define NEST_RATE_NONE UINT64_C(8)

/* One direction of a rule's classes, as wanted or as made. */
typedef struct ClassSpec {
	bool on;         /* the rule has a class in this direction */
	uint32_t parent; /* classid of the parent: the HTB root or the enclosing rule's class */
	uint64_t ceil;   /* bit/s: its limit, or NEST_CEIL_INHERIT */
	uint64_t rate;   /* bit/s guaranteed: the limit at the top, its --min (or none) nested */
	uint64_t own;    /* bit/s guaranteed to the rule's own leaf classes: its rate, or with
			  * children as little as to a child without a minimum */
	uint64_t top;    /* bit/s: the limit of the top class it is under (or its own) */
	uint8_t prio;    /* HTB prio of its small-packet leaf; the bulk leaf's is one more */
} ClassSpec;

/* Whether rule q contains rule r (q != r): r's traffic is part of q's. */
bool nest_contains(const Rule *q, const Rule *r);

/* The innermost rule of m that contains r, or NULL: r's parent. */
Rule *nest_find_parent(Manager *m, const Rule *r);

/* Links r under parent (NULL: top level) / takes it out of its parent's
 * children. */
void nest_link(Manager *m, Rule *r, Rule *parent);
void nest_unlink(Manager *m, Rule *r);

/* The rules that r, about to be added under parent, contains: those that
 * move under r. Among parent's children (or the top level), and for a
 * cgroup's rule also among the children of user rules (a cgroup's rule
 * comes first). Returns their number, and a new array in *ret (NULL when
 * none). */
int nest_contained(Manager *m, const Rule *parent, const Rule *r, Rule ***ret);

/* Rule levels from the top down to r (1: a top-level rule), and the levels
 * of r's subtree below it (0: no children). */
unsigned nest_depth(const Rule *r);
unsigned nest_height(const Rule *r);

/* The class r wants in one direction, given its parent and children as
 * linked now and the parent's class as wanted. */
void nest_class_spec(const Rule *r, bool up, ClassSpec *ret);

/* Whether r would get a class in that direction (it or an enclosing rule
 * limits it). */
bool nest_has_class(const Rule *r, bool up);

/* Whether the guaranteed minimums of parent's children (with child's taken
 * as min_up / min_down instead of what it has) fit in what parent
 * guarantees; NULL if they do, else a static reason. parent NULL: top level,
 * where a minimum has no effect and always fits. */
const char *nest_check_min(const Rule *parent, const Rule *child, uint64_t min_up, uint64_t min_down);
