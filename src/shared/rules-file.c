/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "rate.h"
#include "rules-file.h"
#include "scope.h"
#include "set-args.h"
#include "target.h"

void rule_set_done(RuleSet *s) {
	for (size_t k = 0; k < s->n; k++) {
		free(s->v[k].file);
		free(s->v[k].target);
		free(s->v[k].remote);
	}
	free(s->v);
	*s = (RuleSet){};
}

void rules_words_free(char **argv) {
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}

static int words_push(char ***v, int *n, const char *s, size_t len) {
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strndup(s, len);
	if (!nv[*n])
		return -ENOMEM;
	nv[++*n] = NULL;
	return 0;
}

int rules_split_words(const char *line, int *ret_argc, char ***ret_argv, char **ret_error) {
	_cleanup_free_ char *word = malloc(strlen(line) + 1);
	char **v = NULL;
	const char *p = line;
	int n = 0, r;

	*ret_error = NULL;
	if (!word)
		return -ENOMEM;
	r = words_push(&v, &n, "set", 3);
	while (r >= 0) {
		size_t l = 0;

		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (!*p || *p == '#')
			break;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r') {
			char q = *p;

			if (q == '\'' || q == '"') {
				const char *start = p++;

				while (*p && *p != q) {
					if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					word[l++] = *p++;
				}
				if (!*p) {
					rules_words_free(v);
					return asprintf(ret_error, "quote %c opened at column %zu is not closed", q,
							(size_t)(start - line) + 1) < 0
						       ? -ENOMEM
						       : -EINVAL;
				}
				p++;
			} else if (q == '\\' && p[1]) {
				word[l++] = p[1];
				p += 2;
			} else
				word[l++] = *p++;
		}
		r = words_push(&v, &n, word, l);
	}
	if (r < 0) {
		rules_words_free(v);
		return r;
	}
	*ret_argc = n;
	*ret_argv = v;
	return 0;
}

typedef struct WarnCtx {
	RulesWarn warn;
	void *userdata;
	const char *file;
	unsigned line;
} WarnCtx;

static void warn_relay(void *userdata, const char *message) {
	WarnCtx *w = userdata;

	if (w->warn)
		w->warn(w->userdata, w->file, w->line, message);
}

/* A scope as a line gives it: its canonical form in *ret, or -EINVAL and
 * *ret_error. A deny never covers loopback (access.h). */
static int line_scope(const char *word, bool deny, char **ret, char **ret_error) {
	const char *why = NULL, *bad = NULL;
	Scope sc;
	int r;

	r = scope_parse(word, &sc, &why, &bad);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return asprintf(ret_error, "invalid scope '%s'%s%s%s: %s", word, bad ? " at '" : "", bad ?: "",
				bad ? "'" : "", why ?: "invalid") < 0
			       ? -ENOMEM
			       : -EINVAL;
	if (deny && scope_has_loopback(&sc)) {
		scope_done(&sc);
		return asprintf(ret_error,
				"scope '%s' covers loopback (127.0.0.0/8, ::1): netbump never denies the host's "
				"traffic with itself; name the ranges without it",
				word) < 0
			       ? -ENOMEM
			       : -EINVAL;
	}
	*ret = scope_to_string(&sc);
	scope_done(&sc);
	return *ret ? 0 : -ENOMEM;
}

/* "deny|allow TARGET --remote SCOPE": the words after the verb. */
static int parse_access(int argc, char **argv, const char **ret_target, const char **ret_scope, char **ret_error) {
	const char *target = NULL, *scope = NULL;

	for (int k = 2; k < argc; k++) {
		const char *v = NULL;

		if (!scope && set_args_option(argv[k], "--remote", argc, argv, &k, &v)) {
			if (!v)
				return asprintf(ret_error, "--remote needs a scope") < 0 ? -ENOMEM : -EINVAL;
			scope = v;
		} else if (!target && argv[k][0] != '-')
			target = argv[k];
		else
			return asprintf(ret_error, "unexpected word '%s': a %s line is '%s TARGET --remote SCOPE'",
					argv[k], argv[1], argv[1]) < 0
				       ? -ENOMEM
				       : -EINVAL;
	}
	if (!target || !scope)
		return asprintf(ret_error, "a %s line is '%s TARGET --remote SCOPE'", argv[1], argv[1]) < 0 ? -ENOMEM
													   : -EINVAL;
	*ret_target = target;
	*ret_scope = scope;
	return 0;
}

int rules_parse_line(const char *text, const char *cgroup_mount, RuleLine *ret, char **ret_error, RulesWarn warn,
		     void *userdata, const char *file, unsigned line) {
	WarnCtx w = { .warn = warn, .userdata = userdata, .file = file, .line = line };
	_cleanup_free_ char *target = NULL, *remote = NULL;
	char **argv = NULL;
	const char *reason = NULL, *given = NULL, *scope = NULL;
	int access = 0;
	SetArgs a = {};
	Target t;
	int argc, r;

	*ret_error = NULL;
	r = rules_split_words(text, &argc, &argv, ret_error);
	if (r < 0)
		return r;
	if (argc == 1) {
		rules_words_free(argv);
		return 0;
	}
	if (streq(argv[1], "deny") || streq(argv[1], "allow")) {
		access = streq(argv[1], "deny") ? RULES_DENY : RULES_ALLOW;
		r = parse_access(argc, argv, &given, &scope, ret_error);
	} else {
		r = set_args_parse(argc, argv, &a, ret_error, warn_relay, &w);
		given = a.target;
		scope = a.remote;
	}
	if (r >= 0)
		r = set_args_target(given, cgroup_mount, &target, ret_error);
	if (r >= 0 && target_parse(target, &t, &reason) >= 0) {
		TargetKind kind = t.kind;

		target_done(&t);
		/* The number of a process or a socket names another one, or
		 * none, after a restart. */
		if (kind == TARGET_PID || kind == TARGET_SOCK)
			r = asprintf(ret_error,
				     "%s names a %s, which does not outlive a restart: a rules file takes lasting "
				     "targets (unit:, cgroup:, user@, all)",
				     target, kind == TARGET_PID ? "process" : "socket") < 0
				    ? -ENOMEM
				    : -EINVAL;
	}
	/* The scope is part of the rule's identity: in its canonical form. */
	if (r >= 0 && scope)
		r = line_scope(scope, access == RULES_DENY, &remote, ret_error);
	if (r >= 0) {
		*ret = (RuleLine){
			.target = TAKE_PTR(target),
			.remote = TAKE_PTR(remote),
			.access = access,
			.up = a.has_limit[0] ? a.limit[0] : 0,
			.down = a.has_limit[1] ? a.limit[1] : 0,
			.min_up = a.has_min[0] ? a.min[0] : 0,
			.min_down = a.has_min[1] ? a.min[1] : 0,
			.priority = !a.priority ? 1 : streq(a.priority, "high") ? 0 : streq(a.priority, "low") ? 2 : 1,
		};
		r = 1;
	}
	/* (the error may name words of argv: it is a copy) */
	rules_words_free(argv);
	return r;
}

_printf_(2, 3) static int set_error(char **ret_error, const char *fmt, ...) {
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(ret_error, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*ret_error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

static bool streq_ptr(const char *a, const char *b) {
	return a && b ? streq(a, b) : a == b;
}

static size_t set_find(const RuleSet *s, const char *target, const char *remote) {
	for (size_t k = 0; k < s->n; k++)
		if (streq(s->v[k].target, target) && streq_ptr(s->v[k].remote, remote))
			return k;
	return SIZE_MAX;
}

int rules_parse_text(const char *file, const char *text, size_t len, const char *cgroup_mount, RuleSet *set,
		     char **ret_error, RulesWarn warn, void *userdata) {
	size_t n0 = set->n;
	unsigned line = 0;
	int r = 0;

	*ret_error = NULL;
	if (memchr(text, '\0', len))
		return set_error(ret_error, "%s: has a NUL byte: not a text file", file);
	for (const char *p = text; r >= 0 && p < text + len;) {
		const char *e = memchr(p, '\n', text + len - p) ?: text + len;
		_cleanup_free_ char *s = NULL, *why = NULL;
		size_t l = e - p;
		RuleLine rl;

		line++;
		if (l > RULES_LINE_MAX) {
			r = set_error(ret_error, "%s:%u: line longer than %u bytes", file, line, RULES_LINE_MAX);
			break;
		}
		if (l > 0 && p[l - 1] == '\r')
			l--;
		s = strndup(p, l);
		p = e + 1;
		if (!s) {
			r = -ENOMEM;
			break;
		}
		r = rules_parse_line(s, cgroup_mount, &rl, &why, warn, userdata, file, line);
		if (r == -ENOMEM)
			break;
		if (r < 0) {
			r = set_error(ret_error, "%s:%u: %s", file, line, why ?: "invalid");
			break;
		}
		if (r == 0)
			continue;
		size_t twin = set_find(set, rl.target, rl.remote);
		if (twin != SIZE_MAX) {
			r = set_error(ret_error, "%s:%u: %s%s%s has a rule already, at %s:%u: one line per target%s", file,
				      line, rl.target, rl.remote ? " --remote " : "", rl.remote ?: "", set->v[twin].file,
				      set->v[twin].line, rl.remote ? " and scope" : "");
			free(rl.target);
			free(rl.remote);
			break;
		}
		RuleLine *nv = realloc(set->v, (set->n + 1) * sizeof(RuleLine));
		rl.file = strdup(file);
		if (!nv || !rl.file) {
			if (nv)
				set->v = nv;
			free(rl.file);
			free(rl.target);
			free(rl.remote);
			r = -ENOMEM;
			break;
		}
		rl.line = line;
		set->v = nv;
		set->v[set->n++] = rl;
		r = 0;
	}
	if (r < 0) {
		for (size_t k = n0; k < set->n; k++) {
			free(set->v[k].file);
			free(set->v[k].target);
			free(set->v[k].remote);
		}
		set->n = n0;
		if (n0 == 0) {
			free(set->v);
			set->v = NULL;
		}
		return r;
	}
	return 0;
}

int rules_read_file(const char *path, char **ret_text, size_t *ret_len, char **ret_error) {
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	*ret_error = NULL;
	/* O_NONBLOCK: a FIFO in the directory must not hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int r = negative_errno();
		return set_error(ret_error, "%s: cannot read: %s", path, strerror(-r)), r;
	}
	if (!S_ISREG(st.st_mode))
		return set_error(ret_error, "%s: not a regular file", path), -EINVAL;
	if ((uint64_t)st.st_size > RULES_FILE_MAX)
		return set_error(ret_error, "%s: %llu bytes, larger than the %u a rules file may have", path,
				 (unsigned long long)st.st_size, RULES_FILE_MAX),
		       -EFBIG;
	buf = malloc(RULES_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	/* Read to the end, whatever stat said: the file may grow meanwhile. */
	for (;;) {
		ssize_t n = read(fd, buf + len, RULES_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = negative_errno();
			return set_error(ret_error, "%s: cannot read: %s", path, strerror(-r)), r;
		}
		if (n == 0)
			break;
		len += n;
		if (len > RULES_FILE_MAX)
			return set_error(ret_error, "%s: larger than the %u bytes a rules file may have", path,
					 RULES_FILE_MAX),
			       -EFBIG;
	}
	buf[len] = '\0';
	*ret_text = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int name_cmp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_rules_name(const char *name) {
	size_t l = strlen(name), sl = strlen(RULES_SUFFIX);

	/* Hidden files are editors' and our own temporary files. */
	return name[0] != '.' && l > sl && streq(name + l - sl, RULES_SUFFIX);
}

int rules_load_dir(const char *config_dir, const char *cgroup_mount, RuleSet *ret, char **ret_error, RulesWarn warn,
		   void *userdata) {
	_cleanup_free_ char *dir = NULL;
	_cleanup_(rule_set_done) RuleSet set = {};
	char **names = NULL;
	size_t n = 0;
	DIR *d;
	struct dirent *de;
	int r = 0;

	*ret_error = NULL;
	if (asprintf(&dir, "%s/" RULES_SUBDIR, config_dir) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*ret = (RuleSet){};
			return 0;
		}
		r = negative_errno();
		return set_error(ret_error, "%s: cannot read the directory: %s", dir, strerror(-r)), r;
	}
	while (r >= 0 && (errno = 0, de = readdir(d))) {
		if (!is_rules_name(de->d_name))
			continue;
		if (n >= RULES_FILES_MAX) {
			r = set_error(ret_error, "%s: more than %u rules files", dir, RULES_FILES_MAX);
			break;
		}
		char **nv = realloc(names, (n + 1) * sizeof(char *));
		if (!nv) {
			r = -ENOMEM;
			break;
		}
		names = nv;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	if (r >= 0 && errno != 0) {
		r = negative_errno();
		set_error(ret_error, "%s: cannot read the directory: %s", dir, strerror(-r));
	}
	closedir(d);
	if (r >= 0 && n > 0)
		qsort(names, n, sizeof(char *), name_cmp);
	for (size_t k = 0; r >= 0 && k < n; k++) {
		_cleanup_free_ char *path = NULL, *text = NULL;
		size_t len;

		if (asprintf(&path, "%s/%s", dir, names[k]) < 0) {
			r = -ENOMEM;
			break;
		}
		r = rules_read_file(path, &text, &len, ret_error);
		if (r >= 0)
			r = rules_parse_text(path, text, len, cgroup_mount, &set, ret_error, warn, userdata);
	}
	for (size_t k = 0; k < n; k++)
		free(names[k]);
	free(names);
	if (r < 0)
		return r;
	*ret = set;
	set = (RuleSet){};
	return 0;
}

/* A word as the splitter reads it back: quoted when it has to be. */
static int append_word(char **buf, size_t *len, size_t *cap, const char *w) {
	bool quote = !*w || w[0] == '#' || strpbrk(w, " \t\r'\"\\");
	size_t need = *len + 2 * strlen(w) + 4;

	if (need > *cap) {
		char *nb = realloc(*buf, need * 2);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = need * 2;
	}
	if (*len > 0)
		(*buf)[(*len)++] = ' ';
	if (quote)
		(*buf)[(*len)++] = '"';
	for (const char *c = w; *c; c++) {
		if (quote && (*c == '"' || *c == '\\'))
			(*buf)[(*len)++] = '\\';
		(*buf)[(*len)++] = *c;
	}
	if (quote)
		(*buf)[(*len)++] = '"';
	(*buf)[*len] = '\0';
	return 0;
}

/* rate_format()'s words when they read back as the same rate, else bit/s:
 * a line written is the rule exactly. */
static const char *exact_rate(uint64_t bps, char buf[static RATE_STRING_MAX]) {
	uint64_t back;

	if (rate_parse(rate_format(bps, buf), &back, NULL) < 0 || back != bps)
		snprintf(buf, RATE_STRING_MAX, "%llubit", (unsigned long long)bps);
	return buf;
}

char *rules_format_line(const char *target, uint64_t up, uint64_t down, uint64_t min_up, uint64_t min_down,
			int priority) {
	static const char *const prio[] = { "high", "normal", "low" };
	char *buf = NULL, a[RATE_STRING_MAX], b[RATE_STRING_MAX];
	size_t len = 0, cap = 0;
	int r;

	r = append_word(&buf, &len, &cap, target);
	if (r >= 0 && up == down && up > 0)
		r = append_word(&buf, &len, &cap, exact_rate(up, a));
	else {
		if (r >= 0 && up > 0)
			r = append_word(&buf, &len, &cap, "--up");
		if (r >= 0 && up > 0)
			r = append_word(&buf, &len, &cap, exact_rate(up, a));
		if (r >= 0 && down > 0)
			r = append_word(&buf, &len, &cap, "--down");
		if (r >= 0 && down > 0)
			r = append_word(&buf, &len, &cap, exact_rate(down, a));
	}
	if (r >= 0 && min_up == min_down && min_up > 0) {
		r = append_word(&buf, &len, &cap, "--min");
		if (r >= 0)
			r = append_word(&buf, &len, &cap, exact_rate(min_up, b));
	} else {
		if (r >= 0 && min_up > 0)
			r = append_word(&buf, &len, &cap, "--min-up");
		if (r >= 0 && min_up > 0)
			r = append_word(&buf, &len, &cap, exact_rate(min_up, b));
		if (r >= 0 && min_down > 0)
			r = append_word(&buf, &len, &cap, "--min-down");
		if (r >= 0 && min_down > 0)
			r = append_word(&buf, &len, &cap, exact_rate(min_down, b));
	}
	/* A rule of nothing but its priority says it, even "normal". */
	if (r >= 0 && priority >= 0 && priority <= 2 &&
	    (priority != 1 || (up == 0 && down == 0 && min_up == 0 && min_down == 0))) {
		r = append_word(&buf, &len, &cap, "--priority");
		if (r >= 0)
			r = append_word(&buf, &len, &cap, prio[priority]);
	}
	if (r < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *rules_format_rule_line(const RuleLine *l) {
	char *buf = NULL, *rule = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (l->access) {
		r = append_word(&buf, &len, &cap, l->access == RULES_DENY ? "deny" : "allow");
		if (r >= 0)
			r = append_word(&buf, &len, &cap, l->target);
	} else {
		rule = rules_format_line(l->target, l->up, l->down, l->min_up, l->min_down, l->priority);
		if (!rule)
			return NULL;
		/* the rule's words as they are, quoting and all */
		buf = rule;
		len = strlen(rule);
		cap = len + 1;
	}
	if (r >= 0 && l->remote)
		r = append_word(&buf, &len, &cap, "--remote");
	if (r >= 0 && l->remote)
		r = append_word(&buf, &len, &cap, l->remote);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
