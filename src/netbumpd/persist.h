/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistent rules: the lines of CONFIG/rules.d/ *.rules (netbump.rules(5),
 * read by src/shared/rules-file.c), in force while netbumpd runs.
 *
 * netbumpd alone writes rules files, and only one: RULES_OWN_FILE, for
 * `netbumpctl set --persistent` and `unset --persistent`, so that the
 * file and the rule in force cannot disagree (the rule changes first, the
 * file is rewritten whole, a temporary file renamed over it, and the rule
 * goes back as it was if the file cannot be written). Every other file is
 * the administrator's: netbumpd reads it and never writes it; a request
 * about a rule from such a file is refused naming its file and line.
 *
 * The files say what the persistent rules are (each line fully: what it
 * does not give is unlimited, no minimum, priority normal). At start and
 * on reload (Reload, SIGHUP) they are all read first; any error refuses
 * the whole reading, naming FILE:LINE and why, and nothing changes. Then
 * the persistent rules in force are made to match: a new line's rule
 * added, a changed one changed live (as set does), one whose line is gone
 * removed; a rule whose line did not change is not touched. Rules made at
 * run time on other targets are left alone; one on a target a line names
 * becomes that line's. A line whose rule cannot be in force now (no such
 * cgroup, unknown user) is reported, and tried again at the next reload.
 */
#pragma once

#include <json-c/json.h>

#include "access.h"
#include "manager.h"
#include "request.h"

typedef struct PersistReport {
	unsigned added, changed, removed, unchanged;
} PersistReport;

void persist_spec_free(PersistSpec *p);
void manager_persist_free(Manager *m);

/* At start, before anything is touched: the files read (an error fails the
 * start). After the killed run's rules are back: applied. */
int manager_persist_read(Manager *m);
void manager_persist_apply_boot(Manager *m);

/* Reload: 0 and *ret, or < 0 with *ret_reason (nothing changed). */
int manager_persist_reload(Manager *m, PersistReport *ret, char **ret_reason);

/* Set and Unset with "persistent": true. */
int persist_set(Manager *m, const Request *req, Rule **ret, const char **ret_error, char **ret_reason);
int persist_unset(Manager *m, const Request *req, const char **ret_error, char **ret_reason);
/* Set with "access" (deny, allow) and "persistent": true: the access rule
 * in force and its line "deny|allow TARGET --remote SCOPE" in
 * RULES_OWN_FILE. */
int persist_access(Manager *m, const Request *req, AccessRule **ret, const char **ret_error, char **ret_reason);
/* A plain Unset of a persistent rule (remote: a scoped limit or a deny or
 * allow, NULL: the unscoped rule) is refused: the next start would bring
 * it back. 0: it may go. */
int persist_check_unset(Manager *m, const char *canonical, const char *remote, const char **ret_error,
			char **ret_reason);

/* "source", "persistent" and "overridden" of a rule in List. */
void persist_rule_json(const Rule *r, json_object *o);
/* The lines not in force, [{"target", "source", "reason"}]. */
json_object *persist_missed_json(Manager *m);
