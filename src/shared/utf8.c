/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* RFC 3629, section 4: the well-formed byte sequences. */
size_t utf8_sequence(const char *s, size_t n, unsigned *ret_cp) {
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp, min;
	size_t len;

	if (n == 0)
		return 0;
	if (p[0] < 0x80) {
		len = 1;
		cp = p[0];
		min = 0;
	} else if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (ret_cp)
		*ret_cp = cp;
	return len;
}

bool utf8_is_valid(const char *s, size_t n) {
	while (n > 0) {
		size_t l = utf8_sequence(s, n, NULL);
		if (l == 0)
			return false;
		s += l;
		n -= l;
	}
	return true;
}

size_t utf8_escape_into(const char *s, size_t n, char *buf, size_t size) {
	size_t o = 0;

	if (size == 0)
		return 0;
	while (n > 0) {
		char esc[8];
		const char *piece = s;
		unsigned cp = 0;
		size_t l = utf8_sequence(s, n, &cp), plen;

		if (l == 0) {
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)*s);
			piece = esc;
			l = 1;
		} else if (cp == '\n' || cp == '\r' || cp == '\t') {
			esc[0] = '\\';
			esc[1] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
			esc[2] = '\0';
			piece = esc;
		} else if (cp < 0x20 || cp == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", cp);
			piece = esc;
		} else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
			snprintf(esc, sizeof(esc), "\\u%04x", cp);
			piece = esc;
		}
		plen = piece == s ? l : strlen(piece);
		if (o + plen >= size)
			break;
		memcpy(buf + o, piece, plen);
		o += plen;
		s += l;
		n -= l;
	}
	buf[o] = '\0';
	return o;
}

char *utf8_escape(const char *s, size_t n) {
	/* At most 4 bytes out per byte in: "\xNN" for one byte ("\u0085" takes
	 * 6 for 2). */
	size_t size = n > (SIZE_MAX - 1) / 4 ? 0 : n * 4 + 1;
	char *buf = size ? malloc(size) : NULL;

	if (!buf)
		return NULL;
	utf8_escape_into(s, n, buf, size);
	return buf;
}
