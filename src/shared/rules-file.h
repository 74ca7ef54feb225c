/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rules files (netbump.rules(5)): DIR/rules.d/ *.rules, read in byte order
 * of their names. One rule per line in `netbumpctl set`'s own words
 * (set-args.h), "#" to the end of a line a comment, words split at blanks,
 * '...' and "..." (with \" and \\) for a word that has blanks in it:
 *
 *   user@backup --up 2mbit
 *   unit:rsync 5mbit --priority low
 *   cgroup:"/system.slice/my app.service" 10mbit
 *   user@backup 2mbit --remote internet
 *   deny user@guest --remote 198.18.0.0/15
 *   allow user@admin --remote 198.18.0.1/32
 *
 * A line is a limit (set's words, --remote SCOPE included) or, starting
 * with "deny" or "allow", an access rule (`netbumpctl deny TARGET --remote
 * SCOPE`). A rule is its target and its scope: one line per target + scope.
 *
 * A line fully says its rule: what it does not give is unlimited, no
 * minimum, priority normal. Any error makes the whole set refused, the
 * message "FILE:LINE: why" (or "FILE: why"): reading all the files, or
 * none. Parsing only; resolving users and cgroups is the daemon's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RULES_SUBDIR "rules.d"
#define RULES_SUFFIX ".rules"
/* The file netbumpd writes for `netbumpctl set --persistent`; every other
 * file is the administrator's, and netbumpd never writes it. */
#define RULES_OWN_FILE "50-netbumpctl.rules"
/* Limits: a rules file is a few lines a person wrote. */
#define RULES_FILE_MAX (1024u * 1024u)
#define RULES_LINE_MAX 8192u
#define RULES_FILES_MAX 1024u

typedef struct RuleLine {
	char *file;   /* the file's path */
	unsigned line; /* 1-based */
	char *target; /* canonical as set-args.h makes it (a user still by name) */
	uint64_t up, down, min_up, min_down; /* bit/s, 0: unlimited / none */
	int priority;                        /* 0 high, 1 normal, 2 low (nest.h's Priority) */
	char *remote; /* the scope in its canonical form (scope.h), NULL: unscoped */
	int access;   /* 0 a limit, RULES_DENY or RULES_ALLOW (then remote is set, no rates) */
} RuleLine;

enum { RULES_DENY = 1, RULES_ALLOW = 2 };

typedef struct RuleSet {
	RuleLine *v;
	size_t n;
} RuleSet;

void rule_set_done(RuleSet *s);

typedef void (*RulesWarn)(void *userdata, const char *file, unsigned line, const char *message);

/* One line's words: 0 and *ret_argv (NULL-terminated, argv[0] = "set", free
 * with rules_words_free()) and *ret_argc; *ret_argc == 1 for a line with
 * no rule (blank, comment). -EINVAL with *ret_error (an unterminated
 * quote), -ENOMEM. */
int rules_split_words(const char *line, int *ret_argc, char ***ret_argv, char **ret_error);
void rules_words_free(char **argv);

/* One line: 1 and *ret filled (but file and line), 0 for a line without a
 * rule, -EINVAL with *ret_error (free() it). */
int rules_parse_line(const char *text, const char *cgroup_mount, RuleLine *ret, char **ret_error, RulesWarn warn,
		     void *userdata, const char *file, unsigned line);

/* The rules of one file's text (len bytes) appended to set; on error
 * -EINVAL and *ret_error "FILE:LINE: why", set as it was. */
int rules_parse_text(const char *file, const char *text, size_t len, const char *cgroup_mount, RuleSet *set,
		     char **ret_error, RulesWarn warn, void *userdata);

/* Reads a file whole (at most RULES_FILE_MAX): -errno with *ret_error. */
int rules_read_file(const char *path, char **ret_text, size_t *ret_len, char **ret_error);

/* Every rule of config_dir/rules.d/ *.rules: 0 with *ret (no directory, no
 * file: no rules), or < 0 with *ret_error and nothing in *ret. A target
 * given twice (in one file or two) is an error naming both places. */
int rules_load_dir(const char *config_dir, const char *cgroup_mount, RuleSet *ret, char **ret_error, RulesWarn warn,
		   void *userdata);

/* The line of l (target, scope, what it does), as rules_parse_line()
 * reads it back: "user@backup 5mbit --remote lan", "deny all --remote
 * 198.18.0.1/32". */
char *rules_format_rule_line(const RuleLine *l);

/* The line that gives a rule these values, in set's words:
 * "user@backup 5mbit", "unit:x.service --up 2mbit --priority low". */
char *rules_format_line(const char *target, uint64_t up, uint64_t down, uint64_t min_up, uint64_t min_down,
			int priority);
