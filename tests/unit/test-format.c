/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "format.h"
#include "tests.h"

static void rate(uint64_t bps, const char *bits, const char *bytes) {
	char buf[FORMAT_MAX];

	ASSERT_STREQ(format_rate(bps, FORMAT_BITS, buf), bits);
	ASSERT_STREQ(format_rate(bps, FORMAT_BYTES, buf), bytes);
}

static void bytes(uint64_t b, const char *want) {
	char buf[FORMAT_MAX];

	ASSERT_STREQ(format_bytes(b, buf), want);
}

static void limit(uint64_t bps, const char *want) {
	char buf[FORMAT_MAX];

	ASSERT_STREQ(format_limit(bps, buf), want);
}

int main(void) {
	/* Idle is a rate with a unit, like any other. */
	rate(0, "0bit", "0B/s");
	rate(8, "8bit", "1B/s");
	rate(999, "999bit", "124B/s");
	/* Always three significant digits, whatever the value. */
	rate(1000, "1.00kbit", "125B/s");
	rate(4995000, "5.00mbit", "624kB/s");
	rate(4994000, "4.99mbit", "624kB/s");
	rate(187969, "188kbit", "23.5kB/s");
	rate(12345678, "12.3mbit", "1.54MB/s");
	rate(123456789, "123mbit", "15.4MB/s");
	/* Rounding up to 1000 moves to the next unit. */
	rate(999700, "1.00mbit", "125kB/s");
	rate(999499, "999kbit", "125kB/s");
	rate(UINT64_C(10000000000000), "10.0tbit", "1.25TB/s");
	rate(UINT64_MAX, "18446744tbit", "2305843TB/s");

	bytes(0, "0B");
	bytes(999, "999B");
	bytes(1000, "0.98KiB");
	bytes(2048, "2.00KiB");
	bytes(1536 * 1024, "1.50MiB");
	bytes(UINT64_C(12900000), "12.3MiB");
	bytes(UINT64_C(1) << 40, "1.00TiB");

	limit(0, "unlimited");
	limit(5000000, "5mbit");
	limit(123457000, "123.457mbit");
	limit(2 * 1024 * 1024, "2mibit");
	return 0;
}
