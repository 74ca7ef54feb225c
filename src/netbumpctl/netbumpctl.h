/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the verbs of netbumpctl in other files share with netbumpctl.c. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "macro.h"

/* Exit codes: 0 success, 1 the daemon refused or failed, 2 bad usage or
 * input (nothing was sent), 3 the daemon could not be reached. */
enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

/* --socket (or $NETBUMP_SOCKET, or the default) and --json, wherever they
 * were given on the command line. */
extern const char *arg_socket;
extern bool arg_json;

/* An error: "netbumpctl: MESSAGE" on stderr. With --json, a command that
 * fails without having printed JSON prints the first such message as
 * {"error": ..., "parameters": {"reason": MESSAGE, "exit_code": N}}. */
_printf_(1, 2) void ctl_error(const char *fmt, ...);
/* o on stdout as JSON, slashes as they are ("cgroup:/a/b"). */
void ctl_print_json(json_object *o);

/* top [--once] [--group process|user|unit|rule] ... (top.c) */
int verb_top(int argc, char *argv[]);
