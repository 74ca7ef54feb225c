/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * target_parse() on arbitrary text. A target that parses must print a
 * canonical form that parses again to the very same canonical form; a
 * refusal must say why. Anything else aborts: a finding. target_resolve()
 * is left out: it asks NSS, which is neither ours nor fast.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

static void fail(const char *what, const char *in, const char *a, const char *b) {
	fprintf(stderr, "fuzz-target: %s: input \"%s\" -> \"%s\" -> \"%s\"\n", what, in, a ?: "(null)",
		b ?: "(null)");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	Target t = {}, t2 = {};
	const char *reason = NULL;
	char *s, *a = NULL, *b = NULL;
	int r;

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	r = target_parse(s, &t, &reason);
	if (r < 0) {
		/* -EOPNOTSUPP: a valid name of something that cannot be
		 * limited (a timer unit) */
		if ((r == -EINVAL || r == -EOPNOTSUPP) && !reason)
			fail("refused without a reason", s, NULL, NULL);
		if (r != -EINVAL && r != -EOPNOTSUPP && r != -ENOMEM)
			fail("unexpected error", s, NULL, NULL);
		free(s);
		return 0;
	}
	if (!target_kind_to_string(t.kind))
		fail("unknown kind", s, NULL, NULL);

	a = target_to_string(&t);
	if (!a)
		fail("no canonical form", s, NULL, NULL);
	if (target_parse(a, &t2, &reason) < 0)
		fail(reason ?: "canonical form does not parse", s, a, NULL);
	if (t2.kind != t.kind)
		fail("canonical form changes the kind", s, a, NULL);
	b = target_to_string(&t2);
	if (!b || strcmp(a, b) != 0)
		fail("canonical form is not stable", s, a, b);

	free(a);
	free(b);
	target_done(&t);
	target_done(&t2);
	free(s);
	return 0;
}
