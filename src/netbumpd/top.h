/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* top.c: per-process traffic for io.netbump.Manager.Top. */
#pragma once

#include "manager.h"

/* Reads the acct map (every second, from the statistics timer). */
int manager_top_sample(Manager *m);
void manager_top_free(Manager *m);
int method_top(Client *c, json_object *params);
/* comm and a printable command line of a process (NULL where unknown). */
void process_names(pid_t pid, char **ret_comm, char **ret_cmdline);
/* A uid's user name, NULL if it has none. */
char *user_name(uid_t uid);
/* bit/s of bytes over usec (0 when usec is). */
uint64_t rate_of(uint64_t bytes, uint64_t usec);
