/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The generator's unit-file parser (generators/unit-file.c) on arbitrary
 * text, as netbump-generator reads it from a unit file or drop-in: parsed in
 * place, with the continuation-line scratch buffer reused from file to file.
 * A violated invariant aborts: a finding.
 *   - it returns 0;
 *   - a rate it keeps is in range and names our path and a line of the text;
 *   - the limit is "bad" exactly when it logged an error;
 *   - a text without "Netbump" sets nothing and logs nothing;
 *   - parsing the same text again, with the scratch buffer reused or new,
 *     gives the same limit.
 * gen_log() is the generator's; here it formats each message (so bad format
 * arguments are seen by the sanitizers) and counts it.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generator-log.h"
#include "rate.h"
#include "unit-file.h"

#define UNIT "fuzz@x.service"
#define PATH "/etc/systemd/system/fuzz@.service.d/10-limit.conf"

static unsigned n_logged, n_errors;

int gen_log(int level, int error, const char *fmt, ...) {
	char buf[1024];
	va_list ap;
	int e = error < 0 ? -error : error;

	n_logged++;
	if (level <= LOG_ERR)
		n_errors++;
	errno = e;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return e ? -e : -EIO;
}

static void fail(const char *what) {
	fprintf(stderr, "fuzz-unit-file: %s\n", what);
	abort();
}

static void check_setting(const Setting *s, unsigned n_lines) {
	if (!s->set) {
		if (s->bps != 0 || s->path || s->line != 0)
			fail("an unset rate keeps a value");
		return;
	}
	if (s->bps < RATE_MIN_BPS || s->bps > RATE_MAX_BPS)
		fail("a rate out of range was kept");
	if (!s->path || strcmp(s->path, PATH) != 0)
		fail("a rate names the wrong file");
	if (s->line < 1 || s->line > n_lines)
		fail("a rate names a line the text does not have");
}

static bool setting_eq(const Setting *a, const Setting *b) {
	return a->set == b->set && a->bps == b->bps && a->path == b->path && a->line == b->line;
}

/* Parses a private copy of the text: the parser writes into it. */
static Limit parse(UnitFileParser *p, const uint8_t *data, size_t size) {
	Limit l = {};
	char *buf = malloc(size + 1);

	if (!buf)
		fail("out of memory");
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (unit_file_parse(p, &l, UNIT, PATH, buf, size) != 0)
		fail("unit_file_parse failed");
	free(buf);
	return l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	/* The generator keeps one parser for the whole run. */
	static UnitFileParser kept;
	UnitFileParser fresh = {};
	unsigned n_lines = 1;
	Limit a, b, c;

	for (size_t i = 0; i < size; i++)
		n_lines += data[i] == '\n';

	n_logged = n_errors = 0;
	a = parse(&kept, data, size);
	check_setting(&a.up, n_lines);
	check_setting(&a.down, n_lines);
	if (a.bad != (n_errors > 0))
		fail("'bad' and the errors logged disagree");
	if (!memmem(data, size, "Netbump", 7) && (a.up.set || a.down.set || a.bad || n_logged > 0))
		fail("a text without 'Netbump' set or logged something");

	b = parse(&kept, data, size);
	c = parse(&fresh, data, size);
	free(fresh.line);
	if (!setting_eq(&a.up, &b.up) || !setting_eq(&a.down, &b.down) || a.bad != b.bad)
		fail("the same text parsed twice gives different limits");
	if (!setting_eq(&a.up, &c.up) || !setting_eq(&a.down, &c.down) || a.bad != c.bad)
		fail("the limit depends on what the parser read before");
	return 0;
}
