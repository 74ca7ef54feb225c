/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging for the programs (never called above debug level from library
 * code). Messages go to stderr with a syslog-style "<N>" prefix when stderr is
 * the journal (systemd reads the prefix as the priority), plain otherwise.
 * log_struct() adds fields of our own (RULE=, TARGET=, UID=) for journalctl
 * to match on: sent with sd_journal_sendv() when stderr is the journal, the
 * message alone on stderr otherwise.
 */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "debug", "info", "notice", "warning", "err"/"error", "crit", or 0-7. */
int log_level_from_string(const char *s);
void log_set_prefix(const char *prefix);

/* Logs and returns -|error| (or -EIO when error is 0), so callers can
 * `return log_error_errno(r, "...: %m")`; %m expands to strerror(|error|). */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* A journal field of log_struct(): name in upper case letters, digits and
 * '_' (not first), as journald accepts them; a NULL value leaves the field
 * out. */
typedef struct LogField {
	const char *name;
	const char *value;
} LogField;

/* LOG_FIELDS({ "RULE", name }, { "UID", LOG_UINT(uid) }): the NULL-terminated
 * array log_struct() takes, valid in the enclosing block. */
#define LOG_FIELDS(...) ((const LogField[]){ __VA_ARGS__, { NULL, NULL } })
#define LOG_UINT_MAX 21
const char *log_uint_to_string(uint64_t v, char buf[static LOG_UINT_MAX]);
#define LOG_UINT(v) log_uint_to_string((uint64_t)(v), (char[LOG_UINT_MAX]){})

int log_struct_internal(int level, int error, const char *file, int line, const LogField *fields, const char *fmt,
			...) _printf_(6, 7);

/* log_struct(LOG_INFO, LOG_FIELDS({ "RULE", r->name }), "Rule %s set.", r->name):
 * the message as log_full_errno() would print it, plus the fields in the
 * journal. Returns like log_full_errno(). */
#define log_struct(level, fields, ...) log_struct_internal((level), 0, __FILE__, __LINE__, (fields), __VA_ARGS__)
#define log_struct_errno(level, error, fields, ...) \
	log_struct_internal((level), (error), __FILE__, __LINE__, (fields), __VA_ARGS__)
