/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* iface.c: the interfaces netbumpd shapes: their IFBs, root HTBs, filters and classes. */
#pragma once

#include "manager.h"
#include "tc-plan.h"

int manager_recover_leftovers(Manager *m);
void manager_kept_clsact_free(Manager *m);
int manager_ifaces_enumerate(Manager *m);
int manager_link_monitor_start(Manager *m);
void manager_ifaces_free(Manager *m);
/* Finds changes made by others to our qdiscs, filters and IFBs: what was
 * removed is put back; a root qdisc someone replaced is reported (the
 * interface and its rules show as degraded), not fought over. */
void manager_ifaces_check(Manager *m);
bool manager_degraded(Manager *m);
Iface *manager_find_iface(Manager *m, uint32_t ifindex);
bool rule_small_first(Manager *m);
/* Makes the small-packet leaves of new rules a moment later, when no
 * request is waiting (iface.c): called for each rule made with them. */
void manager_small_schedule(Manager *m);
void manager_small_stop(Manager *m);
/* Whether every class and leaf of the rule the daemon will make is made
 * (false while its small-packet leaves wait for manager_small_schedule()). */
bool rule_complete(const Rule *r);
/* One direction of an interface as a plan sees it (downloads: its IFB);
 * false where the interface is not shaped. */
bool iface_tc_dev(Manager *m, Iface *i, bool up, TcDev *ret);
/* Sends a plan as one batch. When a step fails, the steps that succeeded
 * are undone and *ret_why (may be NULL) says which object failed and why,
 * with the kernel's message. */
int iface_plan_run(Manager *m, const TcPlan *p, char **ret_why);
/* Whether a download class made at this rate gets the segmenting leaf. */
bool leaf_segments(uint64_t bps);
/* The small-packet leaves of a rule made without them (both directions on
 * one interface); iface_del_small() takes them out again (the caller undoes
 * a failure on every interface). */
int iface_add_small(Manager *m, Iface *i, const Rule *r);
void iface_del_small(Manager *m, Iface *i, const Rule *r);
/* Sets the download ceiling (and at the top the rate) of a rule's class
 * without touching the rule (the landing, ramp.c). */
int iface_set_down_rate(Manager *m, Iface *i, const Rule *r, uint64_t rate);
/* Bytes through the rule's download classes so far. */
uint64_t iface_down_bytes(Manager *m, const Rule *r);
