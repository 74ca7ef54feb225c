/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * machine:NAME and container:NAME rules (kind-machine.c, kind-container.c):
 * a name that outlives its cgroup. Like unit:, the rule stays when the
 * machine or container stops (its key is 0 then) and follows the name to
 * the cgroup it has when it starts again, recreated under a new ID
 * included: the name is what the user limited.
 */
#pragma once

#include <stdbool.h>

#include "container.h"
#include "manager.h"

typedef struct NamedTarget {
	/* machine: machined's MachineNew/MachineRemoved for its name */
	struct sd_bus_slot *watch;
	/* container: what the name resolved to last (id "" : nothing yet) */
	Container c;
	/* container: its cgroup when last looked (absolute), NULL: none */
	char *cgroup;
	/* why it is not limited now, NULL while it is */
	char *why;
} NamedTarget;

/* Frees what a machine: or container: rule holds (rule_free()). */
void named_done(Rule *r);
/* Looks again at container: rules whose cgroup is gone or not found yet
 * (the daemon's one-second timer). */
void manager_containers_tick(Manager *m);
