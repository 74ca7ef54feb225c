/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access.c: deny and allow rules ("netbumpctl deny TARGET --remote SCOPE",
 * "allow ..."). An access rule is target + scope like a scoped limit (one
 * of the two per target + scope), with no class: the BPF programs drop
 * (deny) the target's traffic to and from the scope, or exempt a narrower
 * target from a deny (allow), by the walk of scope.bpf.h. New connections
 * fail at connect()/sendmsg() with EPERM (scope-hooks.bpf.h), open ones are
 * destroyed when the deny is set (ECONNABORTED) and their packets dropped
 * either way. Each denial is counted per rule and reported, rate-limited,
 * to the journal.
 *
 * Targets: any kind. The target is resolved and followed by a Rule of the
 * access rule's own (its carrier, in no list of rules): a unit's cgroup as
 * it restarts, a pid:'s or exe:'s processes moved into cgroups of
 * netbump's (shared with the other rules on the same target, grip.h). A
 * deny on a target that ends (a pid: whose processes all exited, a sock:
 * closed) ends with it. Kept in STATE_DIR/access.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager.h"
#include "scope.h"
#include "target.h"

typedef struct AccessRule {
	uint64_t id;
	bool allow;      /* else deny */
	uid_t owner;     /* who made it */
	Target target;
	char *name;      /* canonical target */
	char *remote;    /* canonical scope */
	Scope scope;
	uint32_t sid;    /* its scope id in the maps, 0: not written */
	/* Its target resolved and followed (rule.h rule_carrier_new()): the
	 * keys it is written under are this one's Rule.scope_keys. */
	struct Rule *carrier;
	char *persist_file; /* the rules file line that makes it (persist.h), NULL: none */
	unsigned persist_line;
	struct AccessRule *next;
} AccessRule;

/* Makes (or turns around) the rule; remote is canonical. */
int access_set(Manager *m, const char *target, const char *remote, bool allow, uid_t caller, AccessRule **ret,
	       const char **ret_error, char **ret_reason);
/* -ENOENT (and nothing set) when there is no such access rule. */
int access_unset(Manager *m, const char *target, const char *remote, uid_t caller, const char **ret_error,
		 char **ret_reason);
AccessRule *access_find(Manager *m, const char *target, const char *remote);
AccessRule *access_find_sid(Manager *m, uint32_t sid);
json_object *access_json(Manager *m, const AccessRule *a);
/* The rules, as the List reply's "access" array, those uid may see. */
json_object *access_list_json(Manager *m, uid_t uid);

/* The deny rule that refuses a socket of uid made in the cgroup with that
 * id (0: not known) its traffic with addr (16 bytes, IPv4 mapped), by the
 * order of the BPF walk; NULL when none does (or an allow exempts it). */
const AccessRule *access_denies(Manager *m, uid_t uid, uint64_t cgroup_id, const uint8_t addr[16]);

/* Denials of the last ACCESS_RECENT_USEC seconds that uid may see, as
 * entries of the Connections reply with "denied" set (top marks them). */
#define ACCESS_RECENT_USEC (10u * 1000000u)
void access_recent_add_json(Manager *m, uid_t uid, json_object *connections);

/* At start, once the programs are loaded: the connect/sendmsg programs
 * attached at cgfd (the cgroup root), denial events read, the rules of
 * the state directory put back. Failures degrade (logged). */
void access_start(Manager *m, int cgfd);
/* Ends the open connections the denies cover now (their keys changed). */
void access_reap(Manager *m);
/* The target of a's is gone (a pid:'s cgroup emptied): a ends. */
void access_expired(Manager *m, AccessRule *a);
/* A socket closed: a deny or allow on it ends. */
void access_socket_released(Manager *m, uint64_t cookie);
/* Lets go of the targets (their processes go back), before the rules go. */
void access_release_targets(Manager *m);
void access_stop(Manager *m);
