/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Apart from log.c, which needs libsystemd: netbump-generator uses this alone. */
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

int log_level_from_string(const char *s) {
	static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

	if (!s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	if (streq(s, "error"))
		return LOG_ERR;
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (streq(s, names[i]))
			return (int)i;
	return -EINVAL;
}
