/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netbump's keys in the text of one unit file or drop-in (unit-file.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "generator-log.h"
#include "macro.h"
#include "rate.h"
#include "unit-file.h"

enum {
	DIR_UP = 1,
	DIR_DOWN = 2,
};

static bool strn_eq(const char *s, size_t n, const char *lit) {
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* NetbumpRate, NetbumpUploadRate, NetbumpDownloadRate -> directions; 0 else. */
static int rate_key(const char *key, size_t n) {
	if (strn_eq(key, n, "NetbumpRate"))
		return DIR_UP | DIR_DOWN;
	if (strn_eq(key, n, "NetbumpUploadRate"))
		return DIR_UP;
	if (strn_eq(key, n, "NetbumpDownloadRate"))
		return DIR_DOWN;
	return 0;
}

static void apply_rate(Limit *l, const char *unit, const char *path, unsigned line, const char *key, size_t key_len,
		       int dirs, const char *value) {
	char buf[RATE_STRING_MAX];
	bool bytes = false;
	uint64_t bps;
	int k;

	if (value[0] == '\0') {
		/* An empty assignment resets, as for systemd's own list settings. */
		if (dirs & DIR_UP)
			l->up = (Setting){};
		if (dirs & DIR_DOWN)
			l->down = (Setting){};
		return;
	}
	k = rate_parse(value, &bps, &bytes);
	if (k == -ERANGE) {
		log_error("%s: %s:%u: rate '%s' in %.*s= is out of range (8bit to 10tbit); not limiting %s", unit, path, line,
			  value, (int)key_len, key, unit);
		l->bad = true;
		return;
	}
	if (k < 0) {
		log_error("%s: %s:%u: invalid rate '%s' in %.*s= (expected a tc(8) rate such as 500kbit, 5mbit, 1gbit); "
			  "not limiting %s",
			  unit, path, line, value, (int)key_len, key, unit);
		l->bad = true;
		return;
	}
	if (bytes)
		log_warning("%s: %s:%u: '%s' counts BYTES per second, i.e. %s; use 'bit' units for bits", unit, path, line,
			    value, rate_format(bps, buf));
	if (dirs & DIR_UP)
		l->up = (Setting){ .set = true, .bps = bps, .path = path, .line = line };
	if (dirs & DIR_DOWN)
		l->down = (Setting){ .set = true, .bps = bps, .path = path, .line = line };
}

static char *strip(char *s, char **end) {
	while (s < *end && (*s == ' ' || *s == '\t'))
		s++;
	while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
		(*end)--;
	**end = '\0';
	return s;
}

/* One logical line (systemd.syntax(7)): a section header, or KEY=VALUE with
 * the blanks around '=' ignored. */
static void parse_line(Limit *l, const char *unit, const char *path, unsigned line, char *s, char *end,
		       bool *in_section, bool *in_netbump) {
	char *eq, *key, *key_end, *value;
	int dirs;

	if (s[0] == '[') {
		*in_section = end > s + 1 && end[-1] == ']';
		*in_netbump = strn_eq(s, end - s, "[X-Netbump]");
		return;
	}
	eq = memchr(s, '=', end - s);
	if (!eq || !*in_section)
		return; /* systemd warns about these itself */
	key = s;
	key_end = eq;
	while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '\t'))
		key_end--;
	value = strip(eq + 1, &end);

	if (key_end - key > 2 && key[0] == 'X' && key[1] == '-' && (dirs = rate_key(key + 2, key_end - key - 2)))
		apply_rate(l, unit, path, line, key, key_end - key, dirs, value);
	else if ((dirs = rate_key(key, key_end - key))) {
		if (*in_netbump)
			apply_rate(l, unit, path, line, key, key_end - key, dirs, value);
		else
			log_warning("%s: %s:%u: %.*s= outside [X-Netbump] is not read: use X-%.*s= here", unit, path, line,
				    (int)(key_end - key), key, (int)(key_end - key), key);
	} else if (*in_netbump)
		log_warning("%s: %s:%u: unknown key %.*s= in [X-Netbump], ignoring", unit, path, line, (int)(key_end - key),
			    key);
}

static int line_reserve(UnitFileParser *c, size_t n) {
	if (n > c->line_size) {
		char *p = realloc(c->line, n);

		if (!p)
			return -ENOMEM;
		c->line = p;
		c->line_size = n;
	}
	return 0;
}

/* Lines ending in a backslash continue on the next line that is not a comment
 * (systemd.syntax(7)). */
int unit_file_parse(UnitFileParser *c, Limit *l, const char *unit, const char *path, char *buf, size_t len) {
	char *p = buf, *end = buf + len;
	bool in_section = false, in_netbump = false, cont = false;
	unsigned lineno = 0, start = 0;
	size_t cont_len = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', end - p), *e = nl ? nl : end, *s;

		lineno++;
		s = strip(p, &e);
		p = nl ? nl + 1 : end;

		if (s[0] == '#' || s[0] == ';' || (!cont && s == e))
			continue;
		if (!cont)
			start = lineno;
		if (e > s && e[-1] == '\\') {
			if (line_reserve(c, cont_len + (e - s) + 1) < 0)
				return log_oom();
			memcpy(c->line + cont_len, s, e - s - 1);
			cont_len += e - s - 1;
			c->line[cont_len++] = ' ';
			cont = true;
			continue;
		}
		if (cont) {
			if (line_reserve(c, cont_len + (e - s) + 1) < 0)
				return log_oom();
			memcpy(c->line + cont_len, s, e - s);
			cont_len += e - s;
			c->line[cont_len] = '\0';
			s = c->line;
			e = c->line + cont_len;
			cont = false;
			cont_len = 0;
		}
		parse_line(l, unit, path, start, s, e, &in_section, &in_netbump);
	}
	if (cont) {
		/* The file ends in a backslash: take what was joined. */
		while (cont_len > 0 && c->line[cont_len - 1] == ' ')
			cont_len--;
		c->line[cont_len] = '\0';
		parse_line(l, unit, path, start, c->line, c->line + cont_len, &in_section, &in_netbump);
	}
	return 0;
}

