/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "target.h"
#include "utf8.h"

static const char *const kind_names[_TARGET_KIND_MAX] = {
	[TARGET_CGROUP] = "cgroup",
	[TARGET_USER] = "user",
	[TARGET_PID] = "pid",
	[TARGET_SOCK] = "sock",
	[TARGET_UNIT] = "unit",
	[TARGET_ALL] = "all",
	[TARGET_MACHINE] = "machine",
	[TARGET_CONTAINER] = "container",
	[TARGET_EXE] = "exe",
};

/* machined's rule for machine names is a host name's (hostname_is_valid()
 * in systemd: at most 64 bytes of letters, digits, '-', '_' and '.');
 * Docker's for container names is [a-zA-Z0-9][a-zA-Z0-9_.-]+, and an ID
 * or its prefix is hex: one check covers all three. */
static int name_check(const char *s, size_t max, const char *what, const char **ret_reason) {
	size_t l = strlen(s);

	if (l == 0 || l > max)
		return *ret_reason = what, -EINVAL;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
		return *ret_reason = what, -EINVAL;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '_' || *c == '.'))
			return *ret_reason = what, -EINVAL;
	return 0;
}

static int container_spec_check(const char *s, const char **ret_reason) {
	static const char *const bad = "invalid container (expected container:NAME, container:ID or a unique ID "
				       "prefix, optionally container:docker:NAME or container:podman:NAME)";
	const char *colon = strchr(s, ':');

	if (colon) {
		size_t l = (size_t)(colon - s);
		if (!((l == 6 && strncmp(s, "docker", 6) == 0) || (l == 6 && strncmp(s, "podman", 6) == 0)))
			return *ret_reason = "unknown container runtime (expected container:docker:NAME or "
					     "container:podman:NAME)",
			       -EINVAL;
		s = colon + 1;
	}
	return name_check(s, 255, bad, ret_reason);
}

const char *target_kind_to_string(TargetKind k) {
	return k >= 0 && k < _TARGET_KIND_MAX ? kind_names[k] : NULL;
}

/* Collapses "//", refuses "." and ".." (a rule must name one cgroup, not a
 * walk), refuses control characters; keeps a leading "/" and drops a
 * trailing one. */
static int normalize_cgroup_path(const char *in, char **ret, const char **ret_reason) {
	_cleanup_free_ char *out = NULL;
	size_t n = 0, len = strlen(in);
	const char *p = in;

	if (in[0] != '/')
		return *ret_reason = "cgroup path must start with '/'", -EINVAL;
	if (len >= TARGET_PATH_MAX)
		return *ret_reason = "cgroup path too long", -EINVAL;
	if (!utf8_is_valid(in, len))
		return *ret_reason = "cgroup path is not UTF-8", -EINVAL;

	out = malloc(len + 2);
	if (!out)
		return -ENOMEM;

	while (*p) {
		const char *e;
		size_t l;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchrnul(p, '/');
		l = e - p;
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return *ret_reason = "cgroup path must not contain '.' or '..'", -EINVAL;
		for (const char *c = p; c < e; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f ||
			    /* C1 controls, U+0080..U+009F: a terminal may act on them */
			    ((unsigned char)c[0] == 0xc2 && (unsigned char)c[1] >= 0x80 && (unsigned char)c[1] <= 0x9f))
				return *ret_reason = "cgroup path contains a control character", -EINVAL;
		out[n++] = '/';
		memcpy(out + n, p, l);
		n += l;
		p = e;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/* An exe: path: absolute (the daemon does not share the caller's working
 * directory), UTF-8, no control character; "//" collapsed and a trailing
 * '/' dropped. "." and ".." are left for realpath(3) (target_resolve()). */
static int normalize_exe_path(const char *in, char **ret, const char **ret_reason) {
	size_t len = strlen(in), n = 0;
	char *out;

	if (len == 0)
		return *ret_reason = "missing path after 'exe:' (expected exe:/ABSOLUTE/PATH)", -EINVAL;
	if (in[0] != '/')
		return *ret_reason = "exe: needs an absolute path (expected exe:/ABSOLUTE/PATH; netbumpd does not "
				     "know your working directory)",
		       -EINVAL;
	if (len >= TARGET_PATH_MAX)
		return *ret_reason = "exe: path too long", -EINVAL;
	if (!utf8_is_valid(in, len))
		return *ret_reason = "exe: path is not UTF-8", -EINVAL;
	for (const char *c = in; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f ||
		    ((unsigned char)c[0] == 0xc2 && (unsigned char)c[1] >= 0x80 && (unsigned char)c[1] <= 0x9f))
			return *ret_reason = "exe: path contains a control character", -EINVAL;
	out = malloc(len + 1);
	if (!out)
		return -ENOMEM;
	for (const char *c = in; *c; c++)
		if (!(*c == '/' && n > 0 && out[n - 1] == '/'))
			out[n++] = *c;
	if (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	if (n == 1)
		return free(out), *ret_reason = "exe: path names a directory ('/'), not a program", -EINVAL;
	*ret = out;
	return 0;
}

static int parse_uid(const char *s, uid_t *ret) {
	unsigned long long v = 0;

	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*p - '0');
		if (v >= UINT32_MAX) /* (uid_t) -1 is "no uid" in every syscall */
			return -ERANGE;
	}
	if (s[0] == '0' && s[1])
		return -EINVAL; /* "007": refuse ambiguous forms */
	*ret = (uid_t)v;
	return 0;
}

/* A positive decimal number up to max, no sign, no leading zero. */
static int parse_positive(const char *s, const char **ret_end, unsigned long long max, unsigned long long *ret) {
	unsigned long long v = 0;
	const char *p = s;

	if (*p < '1' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (max - (unsigned)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*ret_end = p;
	*ret = v;
	return 0;
}

/* systemd.unit(5): a name of at most 255 bytes from [a-zA-Z0-9:_.\\@-].
 * Only units that own a cgroup can be limited: services, scopes, slices,
 * sockets, mounts and swaps. A name without one of systemd's suffixes is a
 * service, as systemctl(1) reads it ("backup" is "backup.service").
 * Returns 0 and a new name in *ret (suffix added where needed), -EINVAL for
 * a name systemd would refuse, -EOPNOTSUPP for a unit without a cgroup. */
static int unit_name_normalize(const char *s, char **ret, const char **ret_reason) {
	static const char *const with_cgroup[] = { ".service", ".scope", ".slice", ".socket", ".mount", ".swap" };
	static const char *const without[] = { ".target", ".timer", ".path", ".device", ".automount" };
	size_t l = strlen(s);
	bool suffix = false;

	if (l == 0 || l > 255 || s[0] == '.' || s[0] == '-')
		return *ret_reason = "invalid unit name (expected e.g. unit:backup.service)", -EINVAL;
	for (size_t i = 0; i < l; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
		      c == '_' || c == '.' || c == '\\' || c == '@' || c == '-'))
			return *ret_reason = "invalid unit name: systemd allows letters, digits and :_.\\@- "
					     "(expected e.g. unit:backup.service)",
			       -EINVAL;
	}
	for (size_t i = 0; i < ELEMENTSOF(without); i++) {
		size_t sl = strlen(without[i]);
		if (l > sl && streq(s + l - sl, without[i]))
			return *ret_reason = "a valid unit, but timers, targets, paths, devices and automounts run no "
					     "processes of their own, so there is nothing to limit: name the unit "
					     "they start (e.g. unit:NAME.service)",
			       -EOPNOTSUPP;
	}
	for (size_t i = 0; i < ELEMENTSOF(with_cgroup); i++) {
		size_t sl = strlen(with_cgroup[i]);
		if (l > sl && streq(s + l - sl, with_cgroup[i]))
			suffix = true;
	}
	/* A template ("foo@.service") has no cgroup; an instance does. */
	if (strstr(s, "@.") || (!suffix && s[l - 1] == '@'))
		return *ret_reason = "a template unit runs nothing itself: name an instance (e.g. unit:getty@tty1.service)",
		       -EOPNOTSUPP;
	if (suffix)
		*ret = strdup(s);
	else {
		if (l + strlen(".service") > 255)
			return *ret_reason = "invalid unit name (longer than 255 bytes with .service)", -EINVAL;
		if (asprintf(ret, "%s.service", s) < 0)
			*ret = NULL;
	}
	return *ret ? 0 : -ENOMEM;
}

/* What useradd(8) accepts, plus the '$' machine accounts end with. */
static bool valid_user_name(const char *s) {
	size_t l = strlen(s);

	if (l == 0 || l > 256 || s[0] == '-')
		return false;
	for (size_t i = 0; i < l; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.' || (c == '$' && i == l - 1)))
			return false;
	}
	return true;
}

int target_parse(const char *s, Target *ret, const char **ret_reason) {
	const char *dummy;
	Target t = {};
	int r;

	if (!ret_reason)
		ret_reason = &dummy;
	if (!s || !*s)
		return *ret_reason = "empty target", -EINVAL;

	/* Exactly "all": "all:" or "ALL" would look like a kind of its own. */
	if (streq(s, "all"))
		t.kind = TARGET_ALL;
	else if (strncmp(s, "cgroup:", 7) == 0) {
		t.kind = TARGET_CGROUP;
		r = normalize_cgroup_path(s + 7, &t.path, ret_reason);
		if (r < 0)
			return r;
	} else if (strncmp(s, "user@", 5) == 0) {
		const char *u = s + 5;

		t.kind = TARGET_USER;
		if (!*u)
			return *ret_reason = "missing user after 'user@'", -EINVAL;
		if (u[0] >= '0' && u[0] <= '9') {
			r = parse_uid(u, &t.uid);
			if (r < 0)
				return *ret_reason = r == -ERANGE ? "uid out of range" : "invalid uid", -EINVAL;
			t.resolved = 1;
		} else {
			if (!valid_user_name(u))
				return *ret_reason = "invalid user name", -EINVAL;
			t.user_name = strdup(u);
			if (!t.user_name)
				return -ENOMEM;
		}
	} else if (strncmp(s, "pid:", 4) == 0) {
		unsigned long long v;
		const char *e;

		t.kind = TARGET_PID;
		r = parse_positive(s + 4, &e, INT32_MAX, &v);
		if (r < 0 || *e)
			return *ret_reason = r == -ERANGE ? "pid out of range" : "invalid pid (expected pid:NUMBER)", -EINVAL;
		t.pid = (pid_t)v;
	} else if (strncmp(s, "sock:", 5) == 0) {
		unsigned long long a, b;
		const char *e;

		t.kind = TARGET_SOCK;
		r = parse_positive(s + 5, &e, UINT64_MAX, &a);
		if (r < 0)
			return *ret_reason = "invalid socket (expected sock:INODE or sock:PID:FD)", -EINVAL;
		if (*e == '\0') {
			t.inode = a;
			t.resolved = 1;
		} else if (*e == ':') {
			if (a > INT32_MAX)
				return *ret_reason = "pid out of range", -EINVAL;
			/* fd 0 is a valid descriptor */
			if (e[1] == '0' && e[2] == '\0') {
				b = 0;
				e += 2;
			} else {
				r = parse_positive(e + 1, &e, INT32_MAX, &b);
				if (r < 0)
					return *ret_reason = "invalid fd (expected sock:PID:FD)", -EINVAL;
			}
			if (*e)
				return *ret_reason = "invalid socket (expected sock:INODE or sock:PID:FD)", -EINVAL;
			t.pid = (pid_t)a;
			t.fd = (int)b;
		} else
			return *ret_reason = "invalid socket (expected sock:INODE or sock:PID:FD)", -EINVAL;
	} else if (strncmp(s, "unit:", 5) == 0) {
		t.kind = TARGET_UNIT;
		r = unit_name_normalize(s + 5, &t.unit, ret_reason);
		if (r < 0)
			return r;
	} else if (strncmp(s, "machine:", 8) == 0) {
		t.kind = TARGET_MACHINE;
		r = name_check(s + 8, 64, "invalid machine name (at most 64 letters, digits, '-', '_' or '.', as "
					  "machinectl list shows it)",
			       ret_reason);
		if (r < 0)
			return r;
		t.name = strdup(s + 8);
		if (!t.name)
			return -ENOMEM;
	} else if (strncmp(s, "container:", 10) == 0) {
		t.kind = TARGET_CONTAINER;
		r = container_spec_check(s + 10, ret_reason);
		if (r < 0)
			return r;
		t.name = strdup(s + 10);
		if (!t.name)
			return -ENOMEM;
	} else if (strncmp(s, "exe:", 4) == 0) {
		t.kind = TARGET_EXE;
		r = normalize_exe_path(s + 4, &t.exe, ret_reason);
		if (r < 0)
			return r;
	} else
		return *ret_reason = "unknown target kind (expected cgroup:/PATH, user@USER, pid:PID, sock:INODE, "
				     "sock:PID:FD, unit:NAME, machine:NAME, container:NAME, exe:/PATH or all)",
		       -EINVAL;

	*ret = t;
	return 0;
}

int target_resolve(Target *t) {
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	if (t->kind == TARGET_EXE) {
		char *real = realpath(t->exe, NULL);

		if (real) {
			free(t->exe);
			t->exe = real;
		} else if (errno == ENOMEM)
			return -ENOMEM;
		return 0;
	}
	if (t->kind != TARGET_USER || t->resolved)
		return 0;
	r = getpwnam_r(t->user_name, &pw, buf, sizeof(buf), &res);
	if (r != 0)
		return -r;
	if (!res)
		return -ENOENT;
	t->uid = pw.pw_uid;
	t->resolved = 1;
	return 0;
}

char *target_to_string(const Target *t) {
	char *s = NULL;

	switch (t->kind) {
	case TARGET_CGROUP:
		if (asprintf(&s, "cgroup:%s", t->path) < 0)
			return NULL;
		return s;
	case TARGET_USER:
		if (!t->resolved)
			return t->user_name && asprintf(&s, "user@%s", t->user_name) >= 0 ? s : NULL;
		if (asprintf(&s, "user@%u", (unsigned)t->uid) < 0)
			return NULL;
		return s;
	case TARGET_PID:
		if (asprintf(&s, "pid:%d", (int)t->pid) < 0)
			return NULL;
		return s;
	case TARGET_SOCK:
		if (t->resolved) {
			if (asprintf(&s, "sock:%llu", (unsigned long long)t->inode) < 0)
				return NULL;
		} else if (asprintf(&s, "sock:%d:%d", (int)t->pid, t->fd) < 0)
			return NULL;
		return s;
	case TARGET_UNIT:
		if (asprintf(&s, "unit:%s", t->unit) < 0)
			return NULL;
		return s;
	case TARGET_ALL:
		return strdup("all");
	case TARGET_MACHINE:
	case TARGET_CONTAINER:
		if (asprintf(&s, "%s:%s", kind_names[t->kind], t->name) < 0)
			return NULL;
		return s;
	case TARGET_EXE:
		if (asprintf(&s, "exe:%s", t->exe) < 0)
			return NULL;
		return s;
	default:
		return NULL;
	}
}

void target_done(Target *t) {
	if (!t)
		return;
	free(t->path);
	free(t->user_name);
	free(t->unit);
	free(t->name);
	free(t->exe);
	*t = (Target){};
}
