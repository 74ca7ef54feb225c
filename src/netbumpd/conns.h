/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* conns.c: io.netbump.Manager.Connections, the view per connection. */
#pragma once

#include "manager.h"

int method_connections(Client *c, json_object *params);
void manager_conns_free(Manager *m);
