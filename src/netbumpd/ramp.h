/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ramp.c: the soft landing of download limits on flows already running. */
#pragma once

#include "manager.h"

/* A new download limit on a target whose TCP flows already run: measure
 * their rate for a moment, then step down to the limit. Called after the
 * rule's classes exist and before any of those flows is classified to them. */
int ramp_prepare(Manager *m, Rule *rule);
/* An existing download limit lowered from old: step down from there. */
int ramp_lower(Manager *m, Rule *rule, uint64_t old);
void ramp_stop(Rule *rule);
