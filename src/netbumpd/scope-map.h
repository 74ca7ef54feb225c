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

/* The key a scoped rule's target has in the BPF programs:
 * NB_SCOPE_KIND_* in *ret_kind, 0 with -EOPNOTSUPP for kinds that cannot
 * be scoped (pid:, sock:). */
int scope_rule_key(const Rule *r, uint32_t *ret_kind, uint64_t *ret_key);

/* Writes r (a scoped rule whose classes are made) into the maps, or moves
 * it to its target's current key (a unit restarted); the caller bumps the
 * generation. */
int scope_map_set(Manager *m, Rule *r);
/* Takes r out of the maps. */
void scope_map_del(Manager *m, Rule *r);

/* Scoped rules and access rules (access.h) under the key (kind, key),
 * to keep each key within NB_SCOPES_PER_KEY. */
unsigned scope_entries_at(Manager *m, uint32_t kind, uint64_t key);
/* Scoped rules on the same target as r other than r. */
unsigned scope_rules_on_target(Manager *m, const Rule *r);

/* The pieces, for access.c: a scope id with the CIDRs of sc in the trie
 * (and "lan" brought up to date where sc uses a word), and back. */
int scope_map_add_scope(Manager *m, const Scope *sc, uint32_t *ret_sid);
void scope_map_del_scope(Manager *m, const Scope *sc, uint32_t sid);
/* Rewrites the scope_keys entry of (kind, key) and the kinds the
 * programs look at. */
int scope_map_key_sync(Manager *m, uint32_t kind, uint64_t key);

/* The interfaces' addresses changed (RTM_NEWADDR/RTM_DELADDR, or
 * notifications were lost): "lan" read again where a rule in force uses
 * "lan" or "internet", new entries written before old ones go (no moment
 * where a subnet is neither), the generation bumped, and the open
 * connections a deny now covers ended. */
void scope_map_lan_changed(Manager *m);

void scope_state_free(Manager *m);
