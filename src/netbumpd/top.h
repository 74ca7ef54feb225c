/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* top.c: per-process traffic for io.netbump.Manager.Top. */
#pragma once

#include "manager.h"

/* Reads the acct map (every second, from the statistics timer). */
int manager_top_sample(Manager *m);
void manager_top_free(Manager *m);
int method_top(Client *c, json_object *params);
