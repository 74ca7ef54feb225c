/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *log_prefix;
static int stderr_is_journal = -1;

void log_set_max_level(int level) {
	max_level = level;
}

int log_get_max_level(void) {
	return max_level;
}

void log_set_prefix(const char *prefix) {
	log_prefix = prefix;
}

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

/* $JOURNAL_STREAM names the device:inode of the stream systemd connected our
 * stderr to (systemd.exec(5)); only then is a "<N>" prefix meaningful. */
static bool journal_stream(void) {
	if (stderr_is_journal < 0) {
		const char *e = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;

		stderr_is_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) >= 0 &&
				    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	}
	return stderr_is_journal;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
	int e = error < 0 ? -error : error;

	if (level <= max_level) {
		char buf[2048];
		va_list ap;

		errno = e;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);

		if (journal_stream())
			fprintf(stderr, "<%d>%s\n", level, buf);
		else if (max_level >= LOG_DEBUG)
			fprintf(stderr, "%s%s%s:%d: %s\n", log_prefix ?: "", log_prefix ? ": " : "", file, line, buf);
		else
			fprintf(stderr, "%s%s%s\n", log_prefix ?: "", log_prefix ? ": " : "", buf);
	}
	return e ? -e : -EIO;
}
