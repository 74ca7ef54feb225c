/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Generators log to /dev/kmsg (systemd.generator(7)), not through log.c
 * (which only knows stderr): gen_log(), defined in netbump-generator.c, takes
 * over the usual log_*() names for the generator and the unit-file parser.
 */
#pragma once

#include "log.h"
#include "macro.h"

/* Logs and returns -|error| (-EIO when error is 0); %m expands to
 * strerror(|error|). Messages at LOG_ERR or worse make the generator fail. */
int gen_log(int level, int error, const char *fmt, ...) _printf_(3, 4);

#undef log_debug
#undef log_warning
#undef log_error
#undef log_debug_errno
#undef log_warning_errno
#undef log_error_errno
#undef log_oom
#define log_debug(...) gen_log(LOG_DEBUG, 0, __VA_ARGS__)
#define log_warning(...) gen_log(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) gen_log(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) gen_log(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) gen_log(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) gen_log(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() gen_log(LOG_ERR, ENOMEM, "Out of memory.")
