/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

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

static void log_to_stderr(int level, const char *file, int line, const char *msg) {
	if (journal_stream())
		fprintf(stderr, "<%d>%s\n", level, msg);
	else if (max_level >= LOG_DEBUG)
		fprintf(stderr, "%s%s%s:%d: %s\n", log_prefix ?: "", log_prefix ? ": " : "", file, line, msg);
	else
		fprintf(stderr, "%s%s%s\n", log_prefix ?: "", log_prefix ? ": " : "", msg);
}

/* Messages carry what clients sent (targets, paths, names): a newline in
 * one would start a forged line of its own ("<0>" and all, on the journal's
 * stream), an escape sequence would act on the terminal of whoever reads
 * the log. Every message goes out with those escaped (utf8_escape_into()),
 * whatever its source. */
#define LOG_LINE_MAX 2048
#define LOG_ESCAPED_MAX (LOG_LINE_MAX * 4)

static void log_format(char escaped[static LOG_ESCAPED_MAX], int error, const char *fmt, va_list ap) {
	char buf[LOG_LINE_MAX];
	int n;

	errno = error;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	utf8_escape_into(buf, (size_t)n, escaped, LOG_ESCAPED_MAX);
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
	int e = error < 0 ? -error : error;

	if (level <= max_level) {
		char buf[LOG_ESCAPED_MAX];
		va_list ap;

		va_start(ap, fmt);
		log_format(buf, e, fmt, ap);
		va_end(ap);
		log_to_stderr(level, file, line, buf);
	}
	return e ? -e : -EIO;
}

const char *log_uint_to_string(uint64_t v, char buf[static LOG_UINT_MAX]) {
	snprintf(buf, LOG_UINT_MAX, "%" PRIu64, v);
	return buf;
}

/* journald's rule for field names (systemd.journal-fields(7)): upper case
 * letters, digits and underscores, not starting with a digit; a leading
 * underscore is for trusted fields journald adds itself. */
static bool field_name_ok(const char *n) {
	size_t l = n ? strlen(n) : 0;

	if (l == 0 || l > 64 || n[0] == '_' || (n[0] >= '0' && n[0] <= '9'))
		return false;
	for (size_t i = 0; i < l; i++)
		if (!((n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

#define LOG_STRUCT_FIELDS_MAX 16

/* The message and its fields in one journal entry, through the native
 * protocol (the stream on stderr carries text only). */
static int log_to_journal(int level, int error, const char *file, int line, const LogField *fields, const char *msg) {
	char *v[LOG_STRUCT_FIELDS_MAX + 7] = {};
	struct iovec iov[LOG_STRUCT_FIELDS_MAX + 7];
	size_t n = 0;
	int r = 0;

	/* sd_journal_sendv() returns success when there is no journald to
	 * send to (libsystemd drops the entry on ENOENT): look first, so that
	 * the text is not lost. */
	if (access("/run/systemd/journal/socket", F_OK) < 0)
		return -errno;

	if (asprintf(&v[n++], "MESSAGE=%s", msg) < 0 || asprintf(&v[n++], "PRIORITY=%d", level) < 0 ||
	    asprintf(&v[n++], "CODE_FILE=%s", file) < 0 || asprintf(&v[n++], "CODE_LINE=%d", line) < 0 ||
	    (log_prefix && asprintf(&v[n++], "SYSLOG_IDENTIFIER=%s", log_prefix) < 0) ||
	    (error && asprintf(&v[n++], "ERRNO=%d", error) < 0)) {
		v[--n] = NULL; /* asprintf() leaves it undefined on failure */
		r = -ENOMEM;
		goto finish;
	}
	for (const LogField *f = fields; f && f->name && n < ELEMENTSOF(v); f++) {
		_cleanup_free_ char *value = NULL;

		if (!f->value || !field_name_ok(f->name))
			continue;
		/* Escaped as the message is: journalctl matches TARGET= on
		 * the same text the message shows. */
		value = utf8_escape(f->value, strlen(f->value));
		if (!value || asprintf(&v[n++], "%s=%s", f->name, value) < 0) {
			if (value)
				v[--n] = NULL;
			r = -ENOMEM;
			goto finish;
		}
	}
	for (size_t i = 0; i < n; i++)
		iov[i] = (struct iovec){ .iov_base = v[i], .iov_len = strlen(v[i]) };
	r = sd_journal_sendv(iov, (int)n);
finish:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	return r;
}

int log_struct_internal(int level, int error, const char *file, int line, const LogField *fields, const char *fmt,
			...) {
	int e = error < 0 ? -error : error;

	if (level <= max_level) {
		char buf[LOG_ESCAPED_MAX];
		va_list ap;

		va_start(ap, fmt);
		log_format(buf, e, fmt, ap);
		va_end(ap);
		/* No journal socket (or it refused): the text still goes out. */
		if (!journal_stream() || log_to_journal(level, e, file, line, fields, buf) < 0)
			log_to_stderr(level, file, line, buf);
	}
	return e ? -e : -EIO;
}
