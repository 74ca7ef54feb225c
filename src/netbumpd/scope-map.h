/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scope-map.c: scoped rules (--remote) in the BPF maps of scope.bpf.h:
 * each rule's CIDRs in scope_cidrs under a scope id of its own, the
 * scoped rules of one target key together in scope_keys, and what "lan"
 * stands for on this host under NB_SCOPE_SID_LAN.
 */
#pragma once

#include <stdint.h>

#include "manager.h"

/* The keys of a scoped rule's target, or of a deny/allow's (its
 * carrier), in the BPF programs (scope-keys.h): a rule that leans on
 * another (grip.h) has that one's. */
int scope_rule_keys(Manager *m, const Rule *r, ScopeKey **ret, size_t *ret_n);

/* Writes r (a scoped rule whose classes are made) into the maps, or moves
 * it to its target's current key (a unit restarted); the caller bumps the
 * generation. */
int scope_map_set(Manager *m, Rule *r);
/* Takes r out of the maps. */
void scope_map_del(Manager *m, Rule *r);

/* Scoped rules on the same target as r other than r. */
unsigned scope_rules_on_target(Manager *m, const Rule *r);

/* The pieces, for access.c: a scope id with the CIDRs of sc in the trie
 * (and "lan" brought up to date where sc uses a word), and back. */
int scope_map_add_scope(Manager *m, const Scope *sc, uint32_t *ret_sid);
void scope_map_del_scope(Manager *m, const Scope *sc, uint32_t sid);
/* Writes the entries of r (a scoped rule or a deny/allow's carrier) under
 * its target's keys as they are now, and takes them from those it no
 * longer has: 1 when they changed, 0 when not; -E2BIG (nothing changed)
 * where a key would hold more than NB_SCOPES_PER_KEY. The caller bumps the
 * generation. */
int scope_keys_update(Manager *m, Rule *r);
/* Writes the entries under r's keys again (a deny turned into an allow). */
int scope_keys_rewrite(Manager *m, const Rule *r);
/* Takes a deny/allow's entries out (its sid 0 already). */
void scope_access_drop(Manager *m, Rule *carrier);
/* The cgroups or sockets of r's target changed (a unit restarted, a
 * process of an exe: moved, a socket closed): the scoped rules and
 * deny/allow on it follow, and the generation is bumped. */
void scope_target_sync(Manager *m, const Rule *r);

/* The interfaces' addresses changed (RTM_NEWADDR/RTM_DELADDR, or
 * notifications were lost): "lan" read again where a rule in force uses
 * "lan" or "internet", new entries written before old ones go (no moment
 * where a subnet is neither), the generation bumped, and the open
 * connections a deny now covers ended. */
void scope_map_lan_changed(Manager *m);

void scope_state_free(Manager *m);
