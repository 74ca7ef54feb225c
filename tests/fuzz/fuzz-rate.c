/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rate_parse() on arbitrary text. A rate that parses must be in range, and
 * what rate_format() prints for it must parse back to within 0.1% (the three
 * decimals rate_format() keeps lose at most 0.05%). Anything else aborts:
 * a finding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rate.h"

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

static void fail(const char *what, const char *in, const char *out, uint64_t a, uint64_t b) {
	fprintf(stderr, "fuzz-rate: %s: input \"%s\" -> %llu -> \"%s\" -> %llu\n", what, in, (unsigned long long)a,
		out ?: "", (unsigned long long)b);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char buf[RATE_STRING_MAX], *s;
	uint64_t v = SENTINEL, w = SENTINEL, diff;
	bool bytes = false, bytes2 = true;
	int r;

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	r = rate_parse(s, &v, &bytes);
	if (r < 0) {
		/* Documented errors only, and out-parameters untouched. */
		if (r != -EINVAL && r != -ERANGE)
			fail("unexpected error", s, NULL, v, 0);
		if (v != SENTINEL)
			fail("value set on failure", s, NULL, v, 0);
		free(s);
		return 0;
	}
	if (v < RATE_MIN_BPS || v > RATE_MAX_BPS)
		fail("out of range", s, NULL, v, 0);

	memset(buf, 0x7f, sizeof(buf));
	rate_format(v, buf);
	if (!memchr(buf, '\0', sizeof(buf)))
		fail("unterminated format", s, NULL, v, 0);

	r = rate_parse(buf, &w, &bytes2);
	if (r < 0)
		fail("formatted rate does not parse", s, buf, v, 0);
	/* rate_format() prints bit units only. */
	if (bytes2)
		fail("formatted rate uses a byte unit", s, buf, v, w);
	diff = w > v ? w - v : v - w;
	if (diff * 1000 > v)
		fail("formatted rate differs by more than 0.1%", s, buf, v, w);

	free(s);
	return 0;
}
