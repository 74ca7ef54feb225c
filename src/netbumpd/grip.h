/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * grip.c: pid: and exe: targets are brought into rules by acting on their
 * processes (moved into cgroups of netbump's, their open sockets followed
 * by cookie). One target may have several rules (its unscoped rule, scoped
 * ones, the target of a deny or allow): they share one grip on it. One of
 * them holds it (the cgroups, moved processes, cookies, watches) and the
 * others lean on it: a leaner's scope keys are the holder's (scope-map.h).
 * The unscoped rule holds the grip whenever it exists: it is the one whose
 * classes the kernel's rule maps point at. A holder that is unset hands
 * the grip to a leaner instead of moving the processes back; a target that
 * is gone (a pid:'s cgroup emptied) ends its leaners with its holder.
 */
#pragma once

#include "manager.h"

/* Whether the kind shares its grip (pid:, exe:). */
bool grip_kind(const Rule *r);
/* The rule (or deny/allow target) on r's target other than r that holds
 * the grip, NULL: none. */
Rule *grip_holder(Manager *m, const Rule *r);
/* r leans on holder: where its traffic comes from is the holder's. */
int grip_lean(Manager *m, Rule *r, Rule *holder);
/* r holds the grip and goes (unset): a leaner takes it. 1: handed over,
 * 0: r has no leaner (the caller lets go of the processes). */
int grip_handover(Manager *m, Rule *r);
/* r, an unscoped rule just made that leans, takes the grip (its maps
 * pointed at what it holds). */
int grip_take(Manager *m, Rule *r);
/* The process of a pid: holder exited (its children keep the rules): its
 * leaners say so too, before the holder does. */
void grip_exited(Manager *m, Rule *holder);
/* The target of holder is gone: the rules that lean on it end. */
void grip_end_leaners(Manager *m, Rule *holder);
