/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The words of `netbumpctl set`: TARGET RATE | TARGET [--up R] [--down R]
 * [--min R] [--min-up R] [--min-down R] [--priority P] [--remote SCOPE] [--persistent].
 * One grammar for the command line and for the lines of the rules files
 * (netbump.rules(5)): netbumpctl parses its arguments here and netbumpd
 * each line of /etc/netbump/rules.d/ *.rules, so a line is what one would
 * type after "netbumpctl set".
 *
 * Nothing here prints or logs: an error comes back as a message naming the
 * bad word and why, warnings (a rate in BYTES per second, a number without
 * a unit) through a callback.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* What set was asked for, one direction at a time: 0 up, 1 down. The words
 * are the caller's own (borrowed from argv), for messages that name them. */
typedef struct SetArgs {
	const char *target; /* as given */
	bool has_limit[2], has_min[2];
	uint64_t limit[2], min[2]; /* bit/s; a limit of 0 lifts it, a minimum of 0 is none */
	const char *limit_word[2], *min_word[2];
	const char *min_option[2]; /* "--min", "--min-up" or "--min-down" */
	bool limit_both;           /* the limit came as the one RATE */
	const char *priority;      /* "high", "normal", "low" (static), NULL: not given */
	const char *remote;        /* --remote SCOPE as given, NULL: not given */
	bool persistent;           /* --persistent */
} SetArgs;

typedef void (*SetArgsWarn)(void *userdata, const char *message);

/* Parses argv[1..argc-1] (argv[0] is the verb, "set"). 0 and *ret filled, or
 * -EINVAL with *ret_error saying what is wrong (free() it), or -ENOMEM.
 * warn (may be NULL) hears each warning. */
int set_args_parse(int argc, char *const argv[], SetArgs *ret, char **ret_error, SetArgsWarn warn, void *userdata);

/* One rate as set and run take it: "5mbit", "unlimited" (0). what names it
 * in messages ("upload ", "download " or ""), next is the word after it
 * (NULL: none), to catch "5 mbit". */
int set_args_rate(const char *what, const char *s, const char *next, uint64_t *ret, char **ret_error, SetArgsWarn warn,
		  void *userdata);

/* Checks a target and returns its canonical form, the one a rule is named
 * by: "unit:backup" becomes "unit:backup.service" and, where cgroup2 is
 * mounted at cgroup_mount (may be NULL), "cgroup:/sys/fs/cgroup/a" becomes
 * "cgroup:/a". -EINVAL (not a target) or -EOPNOTSUPP (one that cannot be
 * limited) with *ret_error, or -ENOMEM. A user stays as named. */
int set_args_target(const char *s, const char *cgroup_mount, char **ret, char **ret_error);

/* Whether word a is option name, as "--name VALUE" (the next word, *k
 * moved on to it) or "--name=VALUE"; *ret_value is NULL when no value
 * follows. */
bool set_args_option(const char *a, const char *name, int argc, char *const argv[], int *k, const char **ret_value);

/* "usage: ..." as set prints it on a line that says nothing. */
extern const char set_args_usage[];
