/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bandwidth limit one unit file or drop-in declares (systemd.syntax(7)):
 * NetbumpRate=, NetbumpUploadRate= and NetbumpDownloadRate= in [X-Netbump],
 * or the same keys with an "X-" prefix in any section. The generator's parser,
 * on its own so that tests/fuzz/fuzz-unit-file.c can call it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Setting {
	bool set;
	uint64_t bps;
	const char *path; /* where it was set, for the drop-in's header */
	unsigned line;
} Setting;

typedef struct Limit {
	Setting up, down;
	bool bad;
} Limit;

/* Scratch space reused from file to file: a logical line joined from
 * continuation lines. Zero-initialize; free(line) when done. */
typedef struct UnitFileParser {
	char *line;
	size_t line_size;
} UnitFileParser;

/* Parses buf, the len bytes of the file at path (buf[len] must be '\0'; the
 * text is modified in place), and applies what it sets to *l in file order:
 * an empty assignment resets, a bad rate sets l->bad. Problems are logged with
 * gen_log(), naming unit, path and line. Returns 0, or -ENOMEM (logged). */
int unit_file_parse(UnitFileParser *c, Limit *l, const char *unit, const char *path, char *buf, size_t len);
