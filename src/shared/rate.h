/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rates in tc(8)'s grammar: a decimal number and an optional unit, matched
 * case-insensitively as tc does. "bit" units count bits per second, "bps"
 * units count BYTES per second (so "10mbps" is 80 Mbit/s); a bare number is
 * bits per second. Rates are kept in bits per second.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Smallest and largest accepted rates in bit/s: HTB needs at least one byte
 * per second; 10 Tbit/s is far beyond any link and keeps every later
 * computation (bytes, ticks, bursts) free of overflow. */
#define RATE_MIN_BPS UINT64_C(8)
#define RATE_MAX_BPS UINT64_C(10000000000000)

/* Parses s into bits per second. *ret_bytes_unit (may be NULL) is set when
 * the unit counted bytes ("mbps", "KiBps", ...), which users often mistake
 * for megabits. Returns -EINVAL on garbage or an unknown unit, -ERANGE when
 * the rate is below RATE_MIN_BPS or above RATE_MAX_BPS. */
int rate_parse(const char *s, uint64_t *ret_bps, bool *ret_bytes_unit);

/* Formats bits per second the way a user would type it: "8mbit", "2mibit",
 * "1.5mbit", "300bit". Returns buf. */
#define RATE_STRING_MAX 32
char *rate_format(uint64_t bps, char buf[static RATE_STRING_MAX]);
