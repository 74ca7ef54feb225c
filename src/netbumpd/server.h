/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* server.c: the Varlink server: clients, requests, replies. */
#pragma once

#include "manager.h"

int manager_listen(Manager *m);
/* Whether a netbumpd answers on our socket path already. */
bool manager_socket_in_use(Manager *m);
int client_queue(Client *c, json_object *msg);
int reply_error(Client *c, const char *error, const char *key, const char *value, const char *reason);
json_object *rule_json(const Rule *r);
void manager_clients_free(Manager *m);
/* Disconnects clients past the read or idle timeout (called every second). */
void manager_clients_expire(Manager *m);
