/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "rate.h"
#include "tests.h"

static void ok(const char *s, uint64_t want, bool want_bytes) {
	uint64_t v = 0;
	bool bytes = !want_bytes;

	if (rate_parse(s, &v, &bytes) < 0) {
		fprintf(stderr, "rate_parse(\"%s\") failed\n", s);
		exit(EXIT_FAILURE);
	}
	if (v != want || bytes != want_bytes) {
		fprintf(stderr, "rate_parse(\"%s\") = %llu%s, want %llu%s\n", s, (unsigned long long)v,
			bytes ? " (bytes)" : "", (unsigned long long)want, want_bytes ? " (bytes)" : "");
		exit(EXIT_FAILURE);
	}
}

static void bad(const char *s, int want) {
	uint64_t v = 4242;
	int r = rate_parse(s, &v, NULL);

	if (r != want || v != 4242) {
		fprintf(stderr, "rate_parse(\"%s\") = %d (value %llu), want %d and untouched\n", s, r,
			(unsigned long long)v, want);
		exit(EXIT_FAILURE);
	}
}

static void fmt(uint64_t bps, const char *want) {
	char buf[RATE_STRING_MAX];
	ASSERT_STREQ(rate_format(bps, buf), want);
}

int main(void) {
	/* tc(8): bit units, binary and decimal prefixes, case-insensitive. */
	ok("5mbit", 5000000, false);
	ok("500kbit", 500000, false);
	ok("1gbit", 1000000000, false);
	ok("2mibit", 2 * 1024 * 1024, false);
	ok("8Mbit", 8000000, false);
	ok("1.5mbit", 1500000, false);
	ok("100kibit", 102400, false);
	ok("1tbit", UINT64_C(1000000000000), false);
	ok("1e6bit", 1000000, false);
	ok("64", 64, false); /* a bare number is bit/s */
	ok("64bit", 64, false);
	/* bps units are bytes per second. */
	ok("10mbps", 80000000, true);
	ok("10MBps", 80000000, true);
	ok("1kibps", 8192, true);
	ok("100bps", 800, true);

	bad("", -EINVAL);
	bad("mbit", -EINVAL);
	bad("5 mbit", -EINVAL);
	bad(" 5mbit", -EINVAL);
	bad("-5mbit", -EINVAL);
	bad("+5mbit", -EINVAL);
	bad("5mbitx", -EINVAL);
	bad("5xbit", -EINVAL);
	bad("0x10mbit", -EINVAL);
	bad("infmbit", -EINVAL);
	bad("nan", -EINVAL);
	bad("5.mbit.", -EINVAL);
	bad("0", -ERANGE);
	bad("7bit", -ERANGE);
	bad("0.5bps", -ERANGE);
	bad("11tbit", -ERANGE);
	bad("99999999999999999999999999mbit", -ERANGE);
	bad("1e400mbit", -ERANGE);
	bad("18446744073709551616", -ERANGE);
	bad("1111111111111111111111111111111111111111111111111111111111111111111111111", -ERANGE);

	fmt(8000000, "8mbit");
	fmt(500000, "500kbit");
	fmt(1000000000, "1gbit");
	fmt(2 * 1024 * 1024, "2mibit");
	fmt(1500000, "1.5mbit");
	fmt(300, "300bit");
	fmt(UINT64_C(10000000000000), "10tbit");

	/* Round trip: what we print parses back to the same value. */
	for (uint64_t v = 8; v < UINT64_C(10000000000000); v = v * 7 + 3) {
		char buf[RATE_STRING_MAX];
		uint64_t back;
		ASSERT_OK(rate_parse(rate_format(v, buf), &back, NULL));
		/* Decimal output keeps three digits: within 0.1%. */
		ASSERT_TRUE(back <= v + v / 1000 + 1 && back + v / 1000 + 1 >= v);
	}
	return 0;
}
