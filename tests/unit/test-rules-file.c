/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rules files' grammar (netbump.rules(5)): set's words per line, comments, quotes, errors
 * naming FILE:LINE, limits, and the lines netbumpd writes reading back as the same rule. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "rules-file.h"
#include "set-args.h"
#include "tests.h"

static int parse(const char *text, RuleLine *ret, char **err) {
	return rules_parse_line(text, "/sys/fs/cgroup", ret, err, NULL, NULL, "f", 1);
}

static void line_done(RuleLine *l) {
	free(l->target);
	free(l->remote);
	*l = (RuleLine){};
}

/* text parses as target and values */
static void ok(const char *text, const char *target, uint64_t up, uint64_t down, uint64_t min_up, uint64_t min_down,
	       int prio) {
	_cleanup_free_ char *err = NULL;
	RuleLine l = {};
	int r = parse(text, &l, &err);

	if (r != 1)
		fprintf(stderr, "'%s': %d %s\n", text, r, err ?: "");
	ASSERT_EQ(r, 1);
	ASSERT_STREQ(l.target, target);
	ASSERT_EQ(l.up, up);
	ASSERT_EQ(l.down, down);
	ASSERT_EQ(l.min_up, min_up);
	ASSERT_EQ(l.min_down, min_down);
	ASSERT_EQ(l.priority, prio);
	line_done(&l);
}

/* text is refused with a message containing want */
static void bad(const char *text, const char *want) {
	_cleanup_free_ char *err = NULL;
	RuleLine l = {};
	int r = parse(text, &l, &err);

	if (r >= 0 || !err || !strstr(err, want))
		fprintf(stderr, "'%s': %d '%s' (wanted '%s')\n", text, r, err ?: "", want);
	ASSERT_TRUE(r < 0);
	ASSERT_TRUE(err && strstr(err, want));
}

static void test_lines(void) {
	RuleLine l = {};
	char *err = NULL;

	ok("user@backup 5mbit", "user@backup", 5000000, 5000000, 0, 0, 1);
	ok("  user@1000 --up 2mbit   # upload only", "user@1000", 2000000, 0, 0, 0, 1);
	ok("unit:rsync --down=10mbit --priority low", "unit:rsync.service", 0, 10000000, 0, 0, 2);
	ok("all 100mbit --min 1mbit", "all", 100000000, 100000000, 1000000, 1000000, 1);
	ok("cgroup:/a --min-up 1mbit --priority high", "cgroup:/a", 0, 0, 1000000, 0, 0);
	ok("cgroup:/sys/fs/cgroup/a/b 1mbit", "cgroup:/a/b", 1000000, 1000000, 0, 0, 1);
	ok("cgroup:\"/sys//fs/cgroup/. a/\" 1mbit", "cgroup:/. a", 1000000, 1000000, 0, 0, 1);
	ok("cgroup:\"/a b/c\\\"d\" 1mbit", "cgroup:/a b/c\"d", 1000000, 1000000, 0, 0, 1);
	ok("cgroup:'/x y' 1mbit", "cgroup:/x y", 1000000, 1000000, 0, 0, 1);
	ok("user@backup 5mbit --persistent", "user@backup", 5000000, 5000000, 0, 0, 1);
	ok("user@backup 5mbit\r", "user@backup", 5000000, 5000000, 0, 0, 1);
	ok("user@backup --priority normal", "user@backup", 0, 0, 0, 0, 1);
	/* exe: lines, as set takes them */
	ok("exe:/usr/bin//rsync 5mbit", "exe:/usr/bin/rsync", 5000000, 5000000, 0, 0, 1);

	/* no rule */
	ASSERT_EQ(parse("", &l, &err), 0);
	ASSERT_EQ(parse("   \t ", &l, &err), 0);
	ASSERT_EQ(parse("# user@1 5mbit", &l, &err), 0);

	/* set's own messages */
	bad("user@backup 5mbitt", "invalid rate '5mbitt'");
	bad("user@backup 5 mbit", "has its unit 'mbit' apart");
	bad("user@backup", "usage: set TARGET RATE");
	bad("user@backup unlimited", "would limit nothing");
	bad("user@backup 1mbit --min 2mbit", "--min 2mbit is above the limit 1mbit");
	bad("user@backup 1mbit --bogus", "unknown option '--bogus' for set");
	bad("user@backup 1mbit 2mbit", "unexpected argument '2mbit'");
	bad("user@backup --priority urgent", "invalid priority 'urgent'");
	bad("foo:bar 1mbit", "invalid target 'foo:bar'");
	bad("cgroup:a 1mbit", "invalid target");
	bad("cgroup:/a/../b 1mbit", "invalid target");
	bad("unit:x.timer 1mbit", "cannot limit 'unit:x.timer'");
	bad("cgroup:\"/a 1mbit", "quote \" opened at column 8 is not closed");
	/* what does not outlive a restart */
	bad("pid:1 1mbit", "names a process, which does not outlive a restart");
	bad("sock:1234 1mbit", "names a socket");
	bad("exe:rsync 1mbit", "exe: needs an absolute path");
}

static void test_text(void) {
	RuleSet s = {};
	char *err = NULL;
	const char *t1 = "# comment\n\nuser@1 5mbit\n  unit:a --up 1mbit\n";

	ASSERT_EQ(rules_parse_text("/d/a.rules", t1, strlen(t1), NULL, &s, &err, NULL, NULL), 0);
	ASSERT_EQ(s.n, 2);
	ASSERT_STREQ(s.v[0].file, "/d/a.rules");
	ASSERT_EQ(s.v[0].line, 3);
	ASSERT_EQ(s.v[1].line, 4);
	ASSERT_STREQ(s.v[1].target, "unit:a.service");

	/* one bad line: an error naming FILE:LINE, the set as it was */
	const char *t2 = "all 1gbit\nuser@2 5mbit\nuser@3 5mbitt\n";
	ASSERT_EQ(rules_parse_text("/d/b.rules", t2, strlen(t2), NULL, &s, &err, NULL, NULL), -EINVAL);
	ASSERT_TRUE(strncmp(err, "/d/b.rules:3: invalid rate '5mbitt'", 35) == 0);
	ASSERT_EQ(s.n, 2);
	free(err);

	/* one target, one line, across files */
	const char *t3 = "user@9 1mbit\nunit:a.service 2mbit\n";
	ASSERT_EQ(rules_parse_text("/d/c.rules", t3, strlen(t3), NULL, &s, &err, NULL, NULL), -EINVAL);
	ASSERT_STREQ(err, "/d/c.rules:2: unit:a.service has a rule already, at /d/a.rules:4: one line per target");
	ASSERT_EQ(s.n, 2);
	free(err);

	/* a NUL byte, an over-long line */
	ASSERT_EQ(rules_parse_text("/d/n.rules", "all 1mbit\n\0x", 12, NULL, &s, &err, NULL, NULL), -EINVAL);
	ASSERT_TRUE(strstr(err, "NUL byte") != NULL);
	free(err);
	{
		_cleanup_free_ char *big = malloc(RULES_LINE_MAX + 20);
		memset(big, ' ', RULES_LINE_MAX + 10);
		memcpy(big, "all 1mbit", 9);
		big[RULES_LINE_MAX + 10] = '\n';
		ASSERT_EQ(rules_parse_text("/d/l.rules", big, RULES_LINE_MAX + 11, NULL, &s, &err, NULL, NULL),
			  -EINVAL);
		ASSERT_STREQ(err, "/d/l.rules:1: line longer than 8192 bytes");
		free(err);
	}
	ASSERT_EQ(s.n, 2);
	rule_set_done(&s);
}

static unsigned warnings;
static void count_warning(void *userdata, const char *file, unsigned line, const char *message) {
	ASSERT_EQ(line, 1);
	ASSERT_TRUE(strstr(message, "BYTES") != NULL);
	warnings++;
}

static void write_file(const char *path, const char *text) {
	FILE *f = fopen(path, "we");
	ASSERT_TRUE(f);
	fputs(text, f);
	ASSERT_EQ(fclose(f), 0);
}

static void test_dir(void) {
	char tmp[] = "/tmp/test-rules-file.XXXXXX", path[256];
	RuleSet s = {};
	char *err = NULL;

	ASSERT_TRUE(mkdtemp(tmp));
	/* no rules.d: no rules */
	ASSERT_EQ(rules_load_dir(tmp, NULL, &s, &err, NULL, NULL), 0);
	ASSERT_EQ(s.n, 0);
	snprintf(path, sizeof(path), "%s/rules.d", tmp);
	ASSERT_OK(mkdir(path, 0755));
	snprintf(path, sizeof(path), "%s/rules.d/20-b.rules", tmp);
	write_file(path, "user@2 1mbps\n");
	snprintf(path, sizeof(path), "%s/rules.d/10-a.rules", tmp);
	write_file(path, "user@1 1mbit\n");
	snprintf(path, sizeof(path), "%s/rules.d/.hidden.rules", tmp);
	write_file(path, "garbage\n");
	snprintf(path, sizeof(path), "%s/rules.d/notes.txt", tmp);
	write_file(path, "garbage\n");
	/* in name order, hidden files and other suffixes left out; warnings name their line */
	ASSERT_EQ(rules_load_dir(tmp, NULL, &s, &err, count_warning, NULL), 0);
	ASSERT_EQ(s.n, 2);
	ASSERT_STREQ(s.v[0].target, "user@1");
	ASSERT_STREQ(s.v[1].target, "user@2");
	ASSERT_EQ(s.v[1].up, 8000000);
	ASSERT_EQ(warnings, 1);
	rule_set_done(&s);

	/* a directory, a FIFO, a file too large: refused by name, no rules */
	snprintf(path, sizeof(path), "%s/rules.d/30-dir.rules", tmp);
	ASSERT_OK(mkdir(path, 0755));
	ASSERT_EQ(rules_load_dir(tmp, NULL, &s, &err, NULL, NULL), -EINVAL);
	ASSERT_TRUE(strstr(err, "30-dir.rules: not a regular file") != NULL);
	ASSERT_EQ(s.n, 0);
	free(err);
	ASSERT_OK(rmdir(path));
	snprintf(path, sizeof(path), "%s/rules.d/30-fifo.rules", tmp);
	ASSERT_OK(mkfifo(path, 0644));
	ASSERT_EQ(rules_load_dir(tmp, NULL, &s, &err, NULL, NULL), -EINVAL);
	ASSERT_TRUE(strstr(err, "30-fifo.rules: not a regular file") != NULL);
	free(err);
	ASSERT_OK(unlink(path));
	snprintf(path, sizeof(path), "%s/rules.d/30-big.rules", tmp);
	{
		FILE *f = fopen(path, "we");
		ASSERT_TRUE(f);
		for (unsigned k = 0; k < RULES_FILE_MAX / 64 + 1; k++)
			fprintf(f, "# %61s\n", "padding");
		ASSERT_EQ(fclose(f), 0);
	}
	ASSERT_EQ(rules_load_dir(tmp, NULL, &s, &err, NULL, NULL), -EFBIG);
	ASSERT_TRUE(strstr(err, "30-big.rules:") && strstr(err, "larger than"));
	free(err);
	ASSERT_OK(unlink(path));
	/* a bad line in the second file: nothing of the first either */
	snprintf(path, sizeof(path), "%s/rules.d/20-b.rules", tmp);
	write_file(path, "user@2 1mbit\n\nuser@3 --up\n");
	ASSERT_EQ(rules_load_dir(tmp, NULL, &s, &err, NULL, NULL), -EINVAL);
	ASSERT_TRUE(strstr(err, "/rules.d/20-b.rules:3: --up needs a rate") != NULL);
	ASSERT_EQ(s.n, 0);
	free(err);

	ASSERT_OK(unlink(path));
	snprintf(path, sizeof(path), "%s/rules.d/10-a.rules", tmp);
	ASSERT_OK(unlink(path));
	snprintf(path, sizeof(path), "%s/rules.d/.hidden.rules", tmp);
	ASSERT_OK(unlink(path));
	snprintf(path, sizeof(path), "%s/rules.d/notes.txt", tmp);
	ASSERT_OK(unlink(path));
	snprintf(path, sizeof(path), "%s/rules.d", tmp);
	ASSERT_OK(rmdir(path));
	ASSERT_OK(rmdir(tmp));
}

/* A line netbumpd writes reads back as the same rule. */
static void roundtrip(const char *target, uint64_t up, uint64_t down, uint64_t min_up, uint64_t min_down, int prio,
		      const char *want) {
	_cleanup_free_ char *line = rules_format_line(target, up, down, min_up, min_down, prio);

	ASSERT_TRUE(line);
	if (want)
		ASSERT_STREQ(line, want);
	ok(line, target, up, down, min_up, min_down, prio);
}

static void test_format(void) {
	roundtrip("user@backup", 5000000, 5000000, 0, 0, 1, "user@backup 5mbit");
	roundtrip("user@1000", 2000000, 0, 0, 0, 1, "user@1000 --up 2mbit");
	roundtrip("unit:a.service", 0, 3000000, 0, 0, 2, "unit:a.service --down 3mbit --priority low");
	roundtrip("all", 10000000, 10000000, 1000000, 1000000, 0, "all 10mbit --min 1mbit --priority high");
	roundtrip("cgroup:/a", 10000000, 20000000, 1000000, 0, 1, "cgroup:/a --up 10mbit --down 20mbit --min-up 1mbit");
	roundtrip("cgroup:/a", 0, 0, 0, 0, 1, "cgroup:/a --priority normal");
	roundtrip("cgroup:/a b/\"c\"", 1000000, 1000000, 0, 0, 1, "\"cgroup:/a b/\\\"c\\\"\" 1mbit");
	roundtrip("cgroup:/#x", 1000000, 1000000, 0, 0, 1, NULL);
	/* rates rate_format() rounds are written in bit/s */
	roundtrip("user@1", 1000500, 1234567, 0, 0, 1, "user@1 --up 1000500bit --down 1234567bit");
	roundtrip("user@1", 2097152, 2097152, 0, 0, 1, "user@1 2mibit");
}

static void test_set_args(void) {
	char *argv[] = { (char *)"set", (char *)"user@1", (char *)"--up", (char *)"1mbit", (char *)"--persistent", NULL };
	_cleanup_free_ char *err = NULL, *canon = NULL;
	SetArgs a;

	ASSERT_EQ(set_args_parse(5, argv, &a, &err, NULL, NULL), 0);
	ASSERT_TRUE(a.persistent);
	ASSERT_TRUE(a.has_limit[0] && !a.has_limit[1]);
	ASSERT_EQ(set_args_target("cgroup:/sys/fs/cgroup//a/", "/sys/fs/cgroup", &canon, &err), 0);
	ASSERT_STREQ(canon, "cgroup:/a");
	ASSERT_EQ(set_args_target("nope", NULL, &canon, &err), -EINVAL);
	ASSERT_TRUE(strstr(err, "invalid target 'nope'") != NULL);
}

/* text parses as access (0 a limit) on target with the canonical scope remote, and the line
 * written for it reads back the same */
static void scoped(const char *text, int access, const char *target, const char *remote, uint64_t up) {
	_cleanup_free_ char *err = NULL, *line = NULL, *err2 = NULL;
	RuleLine l = {}, back = {};
	int r = parse(text, &l, &err);

	if (r != 1)
		fprintf(stderr, "'%s': %d %s\n", text, r, err ?: "");
	ASSERT_EQ(r, 1);
	ASSERT_EQ(l.access, access);
	ASSERT_STREQ(l.target, target);
	ASSERT_STREQ(l.remote, remote);
	ASSERT_EQ(l.up, up);
	line = rules_format_rule_line(&l);
	ASSERT_TRUE(line != NULL);
	ASSERT_EQ(parse(line, &back, &err2), 1);
	ASSERT_EQ(back.access, access);
	ASSERT_STREQ(back.target, target);
	ASSERT_STREQ(back.remote, remote);
	ASSERT_EQ(back.up, up);
	line_done(&back);
	line_done(&l);
}

static void test_scoped(void) {
	_cleanup_(rule_set_done) RuleSet set = {};
	char *err = NULL;

	scoped("user@1000 8mbit --remote lan", 0, "user@1000", "lan", 8000000);
	/* canonical: CIDRs sorted, IPv4 first, words last */
	scoped("all --remote=internet,fd18::/64,198.18.0.0/15 1mbit", 0, "all", "198.18.0.0/15,fd18::/64,internet",
	       1000000);
	scoped("deny user@1000 --remote 198.18.0.1/32", RULES_DENY, "user@1000", "198.18.0.1/32", 0);
	scoped("deny --remote=lan all", RULES_DENY, "all", "lan", 0);
	scoped("allow user@backup --remote 198.18.0.1", RULES_ALLOW, "user@backup", "198.18.0.1/32", 0);
	bad("deny user@1000", "deny TARGET --remote SCOPE");
	bad("allow --remote lan", "allow TARGET --remote SCOPE");
	bad("deny user@1000 --remote lan 5mbit", "unexpected word '5mbit'");
	bad("deny user@1000 --remote 127.0.0.0/8", "covers loopback");
	bad("deny pid:1 --remote lan", "does not outlive a restart");
	bad("user@1000 1mbit --remote 198.18.0.1/15", "host bits set");
	bad("user@1000 1mbit --remote ''", "empty scope");
	/* one line per target and scope: an unscoped and a scoped rule and a deny on another scope are three */
	ASSERT_EQ(rules_parse_text("/a.rules",
				   "user@1000 5mbit\nuser@1000 1mbit --remote lan\ndeny user@1000 --remote internet\n", 78,
				   "/sys/fs/cgroup", &set, &err, NULL, NULL),
		  0);
	ASSERT_EQ(set.n, 3u);
	rule_set_done(&set);
	ASSERT_EQ(rules_parse_text("/a.rules", "user@1000 1mbit --remote lan\ndeny user@1000 --remote lan\n", 57,
				   "/sys/fs/cgroup", &set, &err, NULL, NULL),
		  -EINVAL);
	ASSERT_TRUE(err && strstr(err, "/a.rules:2: user@1000 --remote lan has a rule already, at /a.rules:1"));
	free(err);
	ASSERT_EQ(set.n, 0u);
}

int main(void) {
	test_scoped();
	test_lines();
	test_text();
	test_dir();
	test_format();
	test_set_args();
	printf("ok\n");
	return 0;
}
