/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "rate.h"
#include "set-args.h"
#include "target.h"

const char set_args_usage[] = "usage: set TARGET RATE | set TARGET [--up RATE] [--down RATE] [--min RATE]\n"
			      "                  [--min-up RATE] [--min-down RATE] [--priority high|normal|low]\n"
			      "                  [--remote SCOPE] [--persistent]\n"
			      "                  (netbumpctl set --help explains)";

typedef struct Ctx {
	char **error;
	SetArgsWarn warn;
	void *userdata;
} Ctx;

_printf_(2, 3) static int fail(Ctx *c, const char *fmt, ...) {
	va_list ap;
	int r;

	if (*c->error)
		return -EINVAL;
	va_start(ap, fmt);
	r = vasprintf(c->error, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*c->error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

_printf_(2, 3) static void warn(Ctx *c, const char *fmt, ...) {
	_cleanup_free_ char *m = NULL;
	va_list ap;
	int r;

	if (!c->warn)
		return;
	va_start(ap, fmt);
	r = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (r >= 0)
		c->warn(c->userdata, m);
}

/* A word that is only a unit of tc(8) ("mbit", "kbps"): "5 mbit" was meant
 * as one rate. */
static bool is_rate_unit(const char *s) {
	uint64_t v;
	char buf[64];

	if (!s || !*s || (s[0] >= '0' && s[0] <= '9') || strlen(s) > 8)
		return false;
	snprintf(buf, sizeof(buf), "1%s", s);
	return rate_parse(buf, &v, NULL) >= 0 || (rate_parse(buf, &v, NULL) == -ERANGE);
}

static bool is_bare_number(const char *s) {
	size_t n = strspn(s, "0123456789.");
	return n > 0 && s[n] == '\0';
}

/* what: "upload ", "download " or ""; next: the word after it (NULL if
 * none), to catch "5 mbit". */
static int parse_rate(Ctx *c, const char *what, const char *s, const char *next, uint64_t *ret) {
	bool bytes = false;
	char buf[RATE_STRING_MAX];
	int r;

	if (streq(s, "unlimited") || streq(s, "none")) {
		*ret = 0;
		return 0;
	}
	if (is_bare_number(s) && is_rate_unit(next))
		return fail(c, "%srate '%s' has its unit '%s' apart: write them as one word, '%s%s'", what, s, next, s,
			    next);
	r = rate_parse(s, ret, &bytes);
	if (r == -ERANGE && is_bare_number(s))
		return fail(c,
			    "%srate '%s' has no unit, so it counts bit/s, out of range (8bit to 10tbit): "
			    "give a unit, e.g. '%skbit' or '%smbit'",
			    what, s, s, s);
	if (r == -ERANGE)
		return fail(c, "%srate '%s' out of range (8bit to 10tbit)", what, s);
	if (r < 0)
		return fail(c, "invalid %srate '%s' (expected e.g. 500kbit, 5mbit, 1gbit)", what, s);
	if (bytes)
		warn(c, "'%s' counts BYTES per second, i.e. %s; use 'bit' units for bits", s, rate_format(*ret, buf));
	else if (is_bare_number(s))
		warn(c, "'%s' has no unit: %s bit/s (did you mean %skbit or %smbit?)", s, s, s, s);
	return 0;
}

/* A minimum in bit/s: a rate, or "none" / "0" for no guaranteed minimum.
 * "unlimited" would read as "guarantee everything": refused. */
static int parse_min(Ctx *c, const char *option, const char *s, const char *next, uint64_t *ret) {
	if (streq(s, "none") || streq(s, "0")) {
		*ret = 0;
		return 0;
	}
	if (streq(s, "unlimited"))
		return fail(c, "%s takes a rate or 'none' (no guaranteed minimum), not '%s'", option, s);
	return parse_rate(c, "minimum ", s, next, ret);
}

static const char *const priorities[] = { "high", "normal", "low" };

/* "--name VALUE" or "--name=VALUE": whether a is that option; its value, or
 * NULL when none follows. */
bool set_args_option(const char *a, const char *name, int argc, char *const argv[], int *k, const char **ret_value) {
	size_t l = strlen(name);

	if (strncmp(a, name, l) != 0 || (a[l] != '\0' && a[l] != '='))
		return false;
	if (a[l] == '=')
		*ret_value = a + l + 1;
	else
		*ret_value = *k + 1 < argc ? argv[++*k] : NULL;
	return true;
}

int set_args_parse(int argc, char *const argv[], SetArgs *ret, char **ret_error, SetArgsWarn warn_cb,
		   void *userdata) {
	enum { LIMIT, MIN, PRIORITY, REMOTE };
	static const struct {
		const char *name;
		int what;
		int dir; /* 0 up, 1 down, 2 both */
	} options[] = {
		{ "--up", LIMIT, 0 },
		{ "--down", LIMIT, 1 },
		{ "--min", MIN, 2 },
		{ "--min-up", MIN, 0 },
		{ "--min-down", MIN, 1 },
		{ "--priority", PRIORITY, 2 },
		{ "--remote", REMOTE, 2 },
	};
	static const char *const dir_word[2] = { "upload ", "download " };
	Ctx c = { .error = ret_error, .warn = warn_cb, .userdata = userdata };
	bool options_done = false;
	SetArgs a = {};
	int r;

	*ret_error = NULL;
	for (int k = 1; k < argc; k++) {
		const char *w = argv[k], *v = NULL;
		size_t o;

		if (!options_done && streq(w, "--")) {
			options_done = true;
			continue;
		}
		if (options_done || w[0] != '-' || w[1] != '-' || !w[2]) {
			if (!a.target)
				a.target = w;
			else if (!a.has_limit[0] && !a.has_limit[1]) {
				r = parse_rate(&c, "", w, k + 1 < argc ? argv[k + 1] : NULL, &a.limit[0]);
				if (r < 0)
					return r;
				a.limit[1] = a.limit[0];
				a.has_limit[0] = a.has_limit[1] = a.limit_both = true;
				a.limit_word[0] = a.limit_word[1] = w;
			} else
				return fail(&c, "unexpected argument '%s'", w);
			continue;
		}
		if (streq(w, "--persistent")) {
			a.persistent = true;
			continue;
		}

		for (o = 0; o < ELEMENTSOF(options); o++)
			if (set_args_option(w, options[o].name, argc, argv, &k, &v))
				break;
		if (o == ELEMENTSOF(options))
			return fail(&c, "unknown option '%s' for set", w);
		if (!v)
			return fail(&c, "%s needs %s", options[o].name,
				    options[o].what == PRIORITY ? "high, normal or low" :
				    options[o].what == REMOTE   ? "a scope (CIDRs, lan, internet)" :
								  "a rate");

		switch (options[o].what) {
		case LIMIT: {
			int d = options[o].dir;

			r = parse_rate(&c, dir_word[d], v, k + 1 < argc ? argv[k + 1] : NULL, &a.limit[d]);
			if (r < 0)
				return r;
			a.has_limit[d] = true;
			a.limit_word[d] = v;
			a.limit_both = false;
			break;
		}
		case MIN: {
			uint64_t m;

			r = parse_min(&c, options[o].name, v, k + 1 < argc ? argv[k + 1] : NULL, &m);
			if (r < 0)
				return r;
			for (int d = 0; d < 2; d++)
				if (options[o].dir == d || options[o].dir == 2) {
					a.has_min[d] = true;
					a.min[d] = m;
					a.min_word[d] = v;
					a.min_option[d] = options[o].name;
				}
			break;
		}
		case REMOTE:
			a.remote = v; /* the daemon checks it (scope.h) */
			break;
		case PRIORITY:
			a.priority = NULL;
			for (size_t i = 0; i < ELEMENTSOF(priorities); i++)
				if (streq(v, priorities[i]))
					a.priority = priorities[i];
			if (!a.priority)
				return fail(&c, "invalid priority '%s' (expected high, normal or low)", v);
			break;
		}
	}

	if (!a.target || (!a.has_limit[0] && !a.has_limit[1] && !a.has_min[0] && !a.has_min[1] && !a.priority))
		return fail(&c, "%s", set_args_usage);
	if (a.limit_both && a.limit[0] == 0 && !a.has_min[0] && !a.has_min[1] && !a.priority)
		return fail(&c, "'%s' as the only rate would limit nothing: use unset", a.limit_word[0]);

	/* A minimum above the rule's own limit could never be given. Only what
	 * these words say is known here; the daemon checks a minimum against
	 * a limit the rule already has. */
	for (int d = 0; d < 2; d++)
		if (a.has_min[d] && a.has_limit[d] && a.limit[d] > 0 && a.min[d] > a.limit[d]) {
			bool both = streq(a.min_option[d], "--min") && a.limit_both;
			return fail(&c, "%s %s is above the %slimit %s", a.min_option[d], a.min_word[d],
				    both ? "" : dir_word[d], a.limit_word[d]);
		}

	*ret = a;
	return 0;
}

int set_args_rate(const char *what, const char *s, const char *next, uint64_t *ret, char **ret_error, SetArgsWarn warn_cb,
		  void *userdata) {
	Ctx c = { .error = ret_error, .warn = warn_cb, .userdata = userdata };

	*ret_error = NULL;
	return parse_rate(&c, what, s, next, ret);
}

int set_args_target(const char *s, const char *cgroup_mount, char **ret, char **ret_error) {
	_cleanup_free_ char *fixed = NULL;
	const char *reason = NULL;
	Target t;
	int r;

	*ret_error = NULL;
	r = target_parse(s, &t, &reason);
	/* A path under the cgroup2 mount, compared once normalized
	 * ("cgroup:/sys//fs/cgroup/a/"), is the path relative to it. */
	if (r >= 0 && t.kind == TARGET_CGROUP && cgroup_mount && !streq(cgroup_mount, "/")) {
		size_t ml = strlen(cgroup_mount);

		if (strncmp(t.path, cgroup_mount, ml) == 0 && (t.path[ml] == '/' || t.path[ml] == '\0')) {
			if (asprintf(&fixed, "cgroup:%s", t.path[ml] ? t.path + ml : "/") < 0) {
				target_done(&t);
				return -ENOMEM;
			}
			target_done(&t);
			s = fixed;
			r = target_parse(s, &t, &reason);
		}
	}
	if (r == -ENOMEM)
		return r;
	if (r == -EOPNOTSUPP) {
		if (asprintf(ret_error, "cannot limit '%s': %s", s, reason) < 0)
			return -ENOMEM;
		return r;
	}
	if (r < 0) {
		if (asprintf(ret_error, "invalid target '%s': %s", s, reason ?: "out of memory") < 0)
			return -ENOMEM;
		return -EINVAL;
	}
	*ret = target_to_string(&t);
	target_done(&t);
	return *ret ? 0 : -ENOMEM;
}
