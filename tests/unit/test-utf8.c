/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UTF-8 checks, the escaping of untrusted text, and log lines built from
 * it: no line a client's text goes into can be split, coloured or cut.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "tests.h"
#include "utf8.h"

static void check_escape(const char *in, size_t n, const char *want) {
	_cleanup_free_ char *got = utf8_escape(in, n);

	ASSERT_STREQ(got, want);
}

#define CHECK_ESCAPE(lit, want) check_escape((lit), sizeof(lit) - 1, (want))

/* What one log_info() call writes to stderr. */
static void check_log(const char *target, const char *want) {
	char buf[4096];
	int p[2], saved;
	ssize_t n;

	ASSERT_OK(pipe2(p, O_CLOEXEC));
	saved = dup(STDERR_FILENO);
	ASSERT_OK(saved);
	ASSERT_OK(dup2(p[1], STDERR_FILENO));
	log_info("Refused Set %s from uid %u: %s", target, 1000u, "bad");
	fflush(stderr);
	ASSERT_OK(dup2(saved, STDERR_FILENO));
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	ASSERT_TRUE(n > 0);
	buf[n] = '\0';
	ASSERT_STREQ(buf, want);
}

int main(void) {
	unsigned cp = 0;

	/* well-formed sequences of each length, and what is not one */
	ASSERT_EQ(utf8_sequence("a", 1, &cp), 1);
	ASSERT_EQ(cp, 'a');
	ASSERT_EQ(utf8_sequence("\xc3\xa9", 2, &cp), 2);
	ASSERT_EQ(cp, 0xe9);
	ASSERT_EQ(utf8_sequence("\xe2\x82\xac", 3, &cp), 3);
	ASSERT_EQ(cp, 0x20ac);
	ASSERT_EQ(utf8_sequence("\xf0\x9f\x98\x80", 4, &cp), 4);
	ASSERT_EQ(cp, 0x1f600);
	ASSERT_EQ(utf8_sequence("\xc0\xaf", 2, NULL), 0);         /* overlong '/' */
	ASSERT_EQ(utf8_sequence("\xe0\x80\xaf", 3, NULL), 0);     /* overlong '/' */
	ASSERT_EQ(utf8_sequence("\xed\xa0\x80", 3, NULL), 0);     /* U+D800 */
	ASSERT_EQ(utf8_sequence("\xf4\x90\x80\x80", 4, NULL), 0); /* above U+10FFFF */
	ASSERT_EQ(utf8_sequence("\x80", 1, NULL), 0);             /* stray continuation */
	ASSERT_EQ(utf8_sequence("\xe2\x82", 2, NULL), 0);         /* cut short */
	ASSERT_EQ(utf8_sequence("\xff", 1, NULL), 0);
	ASSERT_TRUE(utf8_is_valid("cgroup:/\xc3\xa9t\xc3\xa9", 13));
	ASSERT_TRUE(utf8_is_valid("a\0b", 3));
	ASSERT_TRUE(!utf8_is_valid("cgroup:/\xff", 9));
	ASSERT_TRUE(utf8_is_valid("", 0));

	/* escaping: controls, DEL, C1, separators and bad bytes; the rest as is */
	CHECK_ESCAPE("plain cgroup:/a/b", "plain cgroup:/a/b");
	CHECK_ESCAPE("a\nb\r\n<0>c\td", "a\\nb\\r\\n<0>c\\td");
	CHECK_ESCAPE("\x1b[31mred\x7f", "\\x1b[31mred\\x7f");
	CHECK_ESCAPE("x\0y", "x\\x00y");
	CHECK_ESCAPE("\xc2\x9b" "2J", "\\u009b2J");
	CHECK_ESCAPE("a\xe2\x80\xa8" "b", "a\\u2028b");
	CHECK_ESCAPE("\xff\xfe ok \xc3", "\\xff\\xfe ok \\xc3");
	CHECK_ESCAPE("\xc3\xa9\xf0\x9f\x98\x80", "\xc3\xa9\xf0\x9f\x98\x80");
	CHECK_ESCAPE("unit:a\\x2db.service", "unit:a\\x2db.service");

	/* cut at a whole escape when the buffer is short */
	{
		char buf[6];
		ASSERT_EQ(utf8_escape_into("ab\ncd", 5, buf, 5), 4);
		ASSERT_STREQ(buf, "ab\\n");
		ASSERT_EQ(utf8_escape_into("\xff", 1, buf, 4), 0);
		ASSERT_STREQ(buf, "");
	}

	/* a log line with a hostile target stays one line, without raw
	 * control characters */
	log_set_prefix("test");
	check_log("cgroup:/x\n<0>netbumpd: Rule all removed.", "test: Refused Set cgroup:/x\\n<0>netbumpd: Rule all removed. from uid 1000: bad\n");
	check_log("\x1b]0;owned\x07\xff", "test: Refused Set \\x1b]0;owned\\x07\\xff from uid 1000: bad\n");
	return 0;
}
