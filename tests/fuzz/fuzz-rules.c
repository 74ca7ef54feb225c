/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A rules file (netbump.rules(5)) of arbitrary text. Its reading either
 * refuses it with "FILE:..." and a reason, or gives rules each of which,
 * written back as netbumpd writes lines, reads as the same rule. Anything
 * else aborts: a finding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules-file.h"

static void fail(const char *what, const char *a, const char *b) {
	fprintf(stderr, "fuzz-rules: %s: \"%s\" \"%s\"\n", what, a ?: "(null)", b ?: "(null)");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	RuleSet set = {};
	char *error = NULL;
	int r;

	r = rules_parse_text("/f.rules", (const char *)data, size, "/sys/fs/cgroup", &set, &error, NULL, NULL);
	if (r < 0) {
		if (r != -ENOMEM && (!error || strncmp(error, "/f.rules:", 9) != 0))
			fail("refused without FILE:LINE", error, NULL);
		if (set.n != 0)
			fail("refused but kept rules", error, NULL);
		free(error);
		return 0;
	}
	for (size_t k = 0; k < set.n; k++) {
		const RuleLine *l = &set.v[k];
		char *line = rules_format_rule_line(l);
		RuleLine back = {};
		char *why = NULL;

		if (!line)
			fail("no line written", l->target, NULL);
		if (rules_parse_line(line, "/sys/fs/cgroup", &back, &why, NULL, NULL, "w", 1) != 1)
			fail(why ?: "written line does not read", l->target, line);
		if (strcmp(back.target, l->target) != 0 || back.up != l->up || back.down != l->down ||
		    back.min_up != l->min_up || back.min_down != l->min_down || back.priority != l->priority ||
		    back.access != l->access || !back.remote != !l->remote ||
		    (l->remote && strcmp(back.remote, l->remote) != 0))
			fail("written line reads as another rule", l->target, line);
		free(back.target);
		free(back.remote);
		free(line);
	}
	rule_set_done(&set);
	return 0;
}
