/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UTF-8 checks and escaping of untrusted text (what clients send) before it
 * reaches a log line or a terminal: control characters and bytes that are not
 * UTF-8 never go out raw. Nothing here allocates except utf8_escape().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The length (1..4) of the well-formed UTF-8 sequence at s (n bytes left),
 * 0 when the byte at s starts none: a stray continuation byte, an overlong
 * form, a surrogate (U+D800..U+DFFF), a code point above U+10FFFF or a
 * sequence cut short. The code point goes to *ret_cp when not NULL. */
size_t utf8_sequence(const char *s, size_t n, unsigned *ret_cp);

/* Whether the n bytes at s are well-formed UTF-8 throughout (NUL counts as
 * a valid character here: callers that refuse it check it themselves). */
bool utf8_is_valid(const char *s, size_t n);

/* Writes s (n bytes) into buf (size bytes, NUL-terminated, cut short at a
 * whole escape when it does not fit) with what a terminal or a line-based
 * log would act on escaped: \n \r \t, other C0 controls, DEL and NUL as
 * \xNN; C1 controls and the line and paragraph separators (U+0080..U+009F,
 * U+2028, U+2029) as \uNNNN; each byte that is not UTF-8 as \xNN. Everything
 * else, backslashes included, is copied. Returns the length written. */
size_t utf8_escape_into(const char *s, size_t n, char *buf, size_t size);

/* The same into a new string (NULL on OOM). */
char *utf8_escape(const char *s, size_t n);
