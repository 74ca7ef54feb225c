/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rates and byte counts for people to read, the same in every view
 * (netbumpctl list, set, status and top):
 *   - a measured rate has three significant digits and tc(8)'s units:
 *     "0bit", "950bit", "1.00kbit", "12.3mbit", "188kbit"; or in bytes per
 *     second "0B/s", "1.25MB/s" (decimal, as the rate units);
 *   - a byte count three significant digits in binary units: "0B",
 *     "512B", "2.00KiB", "12.3MiB";
 *   - a limit exactly as it can be typed back ("5mbit", "123.457mbit",
 *     see rate_format()), "unlimited" for none.
 * At most FORMAT_MAX - 1 characters each.
 */
#pragma once

#include <stdint.h>

#define FORMAT_MAX 32

typedef enum FormatUnit {
	FORMAT_BITS,  /* bit/s in tc(8)'s units */
	FORMAT_BYTES, /* B/s, kB/s, MB/s ... */
} FormatUnit;

char *format_rate(uint64_t bps, FormatUnit unit, char buf[static FORMAT_MAX]);
char *format_bytes(uint64_t bytes, char buf[static FORMAT_MAX]);
/* 0 is "unlimited". */
char *format_limit(uint64_t bps, char buf[static FORMAT_MAX]);
