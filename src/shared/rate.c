/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "rate.h"

/* The units of iproute2's tc/tc_util.c get_rate(), documented in tc(8). */
static const struct {
	const char *name;
	double scale; /* bits per unit */
	bool bytes;
} units[] = {
	{ "bit", 1., false },
	{ "kibit", 1024., false },
	{ "kbit", 1000., false },
	{ "mibit", 1024. * 1024., false },
	{ "mbit", 1000000., false },
	{ "gibit", 1024. * 1024. * 1024., false },
	{ "gbit", 1000000000., false },
	{ "tibit", 1024. * 1024. * 1024. * 1024., false },
	{ "tbit", 1000000000000., false },
	{ "bps", 8., true },
	{ "kibps", 8. * 1024., true },
	{ "kbps", 8. * 1000., true },
	{ "mibps", 8. * 1024. * 1024., true },
	{ "mbps", 8. * 1000000., true },
	{ "gibps", 8. * 1024. * 1024. * 1024., true },
	{ "gbps", 8. * 1000000000., true },
	{ "tibps", 8. * 1024. * 1024. * 1024. * 1024., true },
	{ "tbps", 8. * 1000000000000., true },
};

static bool is_digit(char c) {
	return c >= '0' && c <= '9';
}

int rate_parse(const char *s, uint64_t *ret_bps, bool *ret_bytes_unit) {
	const char *p = s;
	double scale = 1., v;
	bool bytes = false, digits = false;
	char num[64];

	if (!s)
		return -EINVAL;

	/* Validate the number ourselves: strtod() would also take "0x10",
	 * "inf", "nan", signs and leading blanks, none of which is a rate. */
	while (is_digit(*p)) {
		p++;
		digits = true;
	}
	if (*p == '.') {
		p++;
		while (is_digit(*p)) {
			p++;
			digits = true;
		}
	}
	if (!digits)
		return -EINVAL;
	if ((*p == 'e' || *p == 'E') && (is_digit(p[1]) || ((p[1] == '+' || p[1] == '-') && is_digit(p[2])))) {
		p += 2;
		while (is_digit(*p))
			p++;
	}
	if ((size_t)(p - s) >= sizeof(num))
		return -ERANGE;
	memcpy(num, s, p - s);
	num[p - s] = '\0';

	if (*p != '\0') {
		size_t i;

		for (i = 0; i < ELEMENTSOF(units); i++)
			if (strcasecmp(p, units[i].name) == 0)
				break;
		if (i >= ELEMENTSOF(units))
			return -EINVAL;
		scale = units[i].scale;
		bytes = units[i].bytes;
	}

	errno = 0;
	v = strtod(num, NULL);
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	v = round(v * scale);
	if (v < (double)RATE_MIN_BPS || v > (double)RATE_MAX_BPS)
		return -ERANGE;

	*ret_bps = (uint64_t)v;
	if (ret_bytes_unit)
		*ret_bytes_unit = bytes;
	return 0;
}

char *rate_format(uint64_t bps, char buf[static RATE_STRING_MAX]) {
	static const struct {
		uint64_t scale;
		const char *name;
	} dec[] = {
		{ UINT64_C(1000000000000), "tbit" },
		{ UINT64_C(1000000000), "gbit" },
		{ UINT64_C(1000000), "mbit" },
		{ UINT64_C(1000), "kbit" },
	}, bin[] = {
		{ UINT64_C(1099511627776), "tibit" },
		{ UINT64_C(1073741824), "gibit" },
		{ UINT64_C(1048576), "mibit" },
		{ UINT64_C(1024), "kibit" },
	};
	size_t d, i;
	char *e;

	for (d = 0; d < ELEMENTSOF(dec) && bps < dec[d].scale; d++)
		;
	if (d >= ELEMENTSOF(dec)) {
		snprintf(buf, RATE_STRING_MAX, "%llubit", (unsigned long long)bps);
		return buf;
	}
	/* Whole decimal units, then whole binary units, so that what the user
	 * typed ("8mbit", "2mibit") comes back unchanged; else three decimals. */
	if (bps % dec[d].scale == 0) {
		snprintf(buf, RATE_STRING_MAX, "%llu%s", (unsigned long long)(bps / dec[d].scale), dec[d].name);
		return buf;
	}
	for (i = 0; i < ELEMENTSOF(bin); i++)
		if (bps >= bin[i].scale) {
			if (bps % bin[i].scale == 0) {
				snprintf(buf, RATE_STRING_MAX, "%llu%s", (unsigned long long)(bps / bin[i].scale),
					 bin[i].name);
				return buf;
			}
			break;
		}
	snprintf(buf, RATE_STRING_MAX, "%.3f", (double)bps / (double)dec[d].scale);
	e = buf + strlen(buf) - 1;
	while (*e == '0')
		*e-- = '\0';
	if (*e == '.')
		*e = '\0';
	strncat(buf, dec[d].name, RATE_STRING_MAX - strlen(buf) - 1);
	return buf;
}
