/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "macro.h"
#include "rate.h"

/* v in the first unit; base between units. Three significant digits: the
 * unit is the one that keeps the rounded value below 1000, so that 999.7
 * becomes "1.00k..." rather than "1000". Values in the first unit are
 * whole numbers (bits, bytes). */
static char *format_scaled(uint64_t v, double base, const char *const *units, size_t n_units,
			   char buf[static FORMAT_MAX]) {
	double x = (double)v;
	size_t u = 0;

	if (v < 1000 || n_units == 1) {
		snprintf(buf, FORMAT_MAX, "%llu%s", (unsigned long long)v, units[0]);
		return buf;
	}
	while (u + 1 < n_units && x >= 999.5) {
		x /= base;
		u++;
	}
	snprintf(buf, FORMAT_MAX, x < 9.995 ? "%.2f%s" : x < 99.95 ? "%.1f%s" : "%.0f%s", x, units[u]);
	return buf;
}

char *format_rate(uint64_t bps, FormatUnit unit, char buf[static FORMAT_MAX]) {
	static const char *const bits[] = { "bit", "kbit", "mbit", "gbit", "tbit" };
	static const char *const bytes[] = { "B/s", "kB/s", "MB/s", "GB/s", "TB/s" };

	if (unit == FORMAT_BYTES)
		return format_scaled(bps / 8, 1000., bytes, ELEMENTSOF(bytes), buf);
	return format_scaled(bps, 1000., bits, ELEMENTSOF(bits), buf);
}

char *format_bytes(uint64_t b, char buf[static FORMAT_MAX]) {
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

	return format_scaled(b, 1024., units, ELEMENTSOF(units), buf);
}

char *format_limit(uint64_t bps, char buf[static FORMAT_MAX]) {
	char r[RATE_STRING_MAX];

	if (bps == 0)
		return strcpy(buf, "unlimited");
	snprintf(buf, FORMAT_MAX, "%s", rate_format(bps, r));
	return buf;
}
