/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tree.c: the rule tree on the interfaces: classes made, changed, moved and pruned. */
#pragma once

#include "manager.h"

/* Makes a new rule's classes (as nest.c wants them) on every interface. */
int tree_make(Manager *m, Rule *r, char **ret_why);
/* Deletes a rule's classes on every interface (the maps let go of them). */
void tree_unmake(Manager *m, Rule *r);
/* Brings r's classes (and with subtree those of every rule under it) to
 * what nest.c wants now: in place where the parent stays, rebuilt where it
 * changed. */
int tree_sync(Manager *m, Rule *r, bool subtree, char **ret_why);
/* New classes for r and its subtree under r's parent as linked now, under
 * new minors: made, the maps switched, the old ones deleted. */
int tree_rebuild(Manager *m, Rule *top, char **ret_why);
/* The classes of every rule on an interface that comes up, parents first. */
int tree_add_iface(Manager *m, Iface *i);
/* After the rules of a killed run came back on its classes: its
 * small-packet leaves kept, classes no rule has now deleted. */
void tree_adopt_finish(Manager *m);
