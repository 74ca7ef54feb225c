/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netbump-generator(8): a systemd.generator(7) that turns the bandwidth limit a
 * service declares in its unit files (NetbumpRate= in [X-Netbump], or
 * X-NetbumpRate= in any section) into one drop-in per unit that registers the
 * unit with netbumpd(8) when it starts and removes the rule when it stops.
 *
 * Generators run before PID 1 loads any unit and may not talk to any other
 * process (systemd.generator(7)), so this reads the unit search path itself and
 * applies systemd's precedence rules (systemd.unit(5), "UNIT FILE LOAD PATH"
 * and the drop-in paragraphs of its DESCRIPTION):
 *   - for each unit name the file or symlink found first in the path wins; a
 *     symlink to /dev/null or an empty file masks the unit;
 *   - drop-ins NAME.d/ *.conf are read for the unit's name, its template
 *     (foo@.service.d/ for foo@bar.service), every dash prefix of the name
 *     before '@' (foo-.service.d/ for foo-bar.service) and its type
 *     (service.d/), applied in the order of their file names; of equally named
 *     files the one in the more specific place wins: type.d/ loses against all
 *     others, then the earlier search directory wins, and within one directory
 *     the instance beats the template beats the longer prefix. This is what
 *     systemd 252 does (checked with `systemd-analyze verify` on unknown keys,
 *     which it reports only for the drop-ins it reads);
 *   - an alias (a symlink to a unit file of another name) is not a unit of its
 *     own: the unit is handled under the name of its file, and drop-ins that
 *     are only in the alias's NAME.d/ are not seen.
 * A template that declares a limit gets the drop-in in foo@.service.d/, which
 * then applies to every instance, also those started later; an instance with a
 * file or drop-in directory of its own gets its own foo@bar.service.d/
 * drop-in, which replaces the template's.
 *
 * The output directories (argv) are never read: all generators run at once,
 * so what they hold is incomplete.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "generator-log.h"
#include "log.h"
#include "macro.h"
#include "rate.h"
#include "unit-file.h"

#ifndef BINDIR
#define BINDIR "/usr/local/bin"
#endif
#define NETBUMPCTL_PATH BINDIR "/netbumpctl"
#define DROPIN_NAME "50-netbump.conf"

/* The default system unit load path of systemd 252 as `systemd-analyze
 * unit-paths` prints it on Debian 12, in priority order (systemd.unit(5)). The
 * generator directories are in it so that the order is right, but they are
 * never read (see above); /lib/systemd/system is found to be /usr/lib's twin
 * on merged-/usr systems and read once. */
static const char *const default_unit_path[] = {
	"/etc/systemd/system.control",
	"/run/systemd/system.control",
	"/run/systemd/transient",
	"/run/systemd/generator.early",
	"/etc/systemd/system",
	"/etc/systemd/system.attached",
	"/run/systemd/system",
	"/run/systemd/system.attached",
	"/run/systemd/generator",
	"/usr/local/lib/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/run/systemd/generator.late",
};

/* Unit types, systemd.unit(5). */
static const char *const unit_types[] = {
	"service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope",
};
#define TYPE_SERVICE 0
#define UNIT_NAME_MAX 255 /* systemd.unit(5): "must not exceed 255 characters" */

/* ------------------------------------------------------------------------ */
/* Logging: generators cannot use syslog(3), they write to /dev/kmsg
 * (systemd.generator(7)). NETBUMP_GENERATOR_LOG=stderr logs to stderr instead
 * (tests); so does a missing /dev/kmsg. SYSTEMD_LOG_LEVEL sets the level, as
 * for systemd's own generators. */

static int log_kmsg_fd = -1;
static int log_level_max = LOG_INFO;
static unsigned log_n_errors;

static void log_setup(void) {
	const char *target = getenv("NETBUMP_GENERATOR_LOG"), *level = getenv("SYSTEMD_LOG_LEVEL");

	if (level && log_level_from_string(level) >= 0)
		log_level_max = log_level_from_string(level);
	if (target && streq(target, "stderr"))
		return;
	log_kmsg_fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
}

int gen_log(int level, int error, const char *fmt, ...) {
	int e = error < 0 ? -error : error;

	if (level <= LOG_ERR)
		log_n_errors++;
	if (level <= log_level_max) {
		char buf[1024];
		va_list ap;
		int n;

		/* One write per message: /dev/kmsg takes each write as one record,
		 * "<N>" being its syslog priority (facility daemon). */
		if (log_kmsg_fd >= 0)
			n = snprintf(buf, sizeof(buf), "<%d>netbump-generator: ", LOG_DAEMON | level);
		else
			n = snprintf(buf, sizeof(buf), "netbump-generator: ");
		errno = e;
		va_start(ap, fmt);
		vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
		va_end(ap);
		n = strlen(buf);
		buf[n++] = '\n';
		if (log_kmsg_fd < 0 || write(log_kmsg_fd, buf, n) < 0)
			(void)!write(STDERR_FILENO, buf, n);
	}
	return e ? -e : -EIO;
}

/* ------------------------------------------------------------------------ */
/* An arena: everything the run allocates lives until it ends, and is freed at
 * once. */

typedef struct Chunk {
	struct Chunk *next;
	size_t used, size;
	_Alignas(16) char data[];
} Chunk;

typedef struct Arena {
	Chunk *head;
} Arena;

static void *arena_alloc(Arena *a, size_t n) {
	Chunk *c = a->head;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->size - c->used < n) {
		size_t size = n > 65536 ? n : 65536;

		c = malloc(sizeof(Chunk) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

static void *arena_zalloc(Arena *a, size_t n) {
	void *p = arena_alloc(a, n);

	return p ? memset(p, 0, n) : NULL;
}

static char *arena_strndup(Arena *a, const char *s, size_t n) {
	char *p = arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void arena_done(Arena *a) {
	while (a->head) {
		Chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
}

/* ------------------------------------------------------------------------ */
/* Names, and what the search path holds for each. */

typedef enum NameKind {
	NAME_PLAIN,    /* foo.service, and dash prefixes such as foo-.service */
	NAME_TEMPLATE, /* foo@.service */
	NAME_INSTANCE, /* foo@bar.service */
	NAME_TYPE,     /* service: only as the top-level drop-in directory service.d/ */
} NameKind;

typedef enum FragState {
	FRAG_NONE,   /* no unit file of this name */
	FRAG_FILE,   /* a file, or a symlink to a file of the same name or to this instance's template */
	FRAG_MASKED, /* a symlink to /dev/null; an empty file is found to be masked when read */
	FRAG_ALIAS,  /* a symlink to a unit file of another name */
} FragState;

typedef enum Relevance {
	UNREAD = 0,
	EMPTY,      /* masked */
	IRRELEVANT, /* unreadable, or without "Netbump" */
	RELEVANT,
} Relevance;

typedef struct ConfFile {
	const char *name; /* "10-limit.conf" */
	Relevance relevance;
} ConfFile;

/* A search directory holding NAME.d/ for a record. */
typedef struct DropinDir {
	struct DropinDir *next;
	size_t dir;
	bool listed;
	ConfFile *files; /* sorted by name */
	size_t n_files;
} DropinDir;

typedef struct Record {
	const char *name;
	size_t len;
	uint32_t hash;
	NameKind kind;
	int type; /* index in unit_types */
	FragState frag;
	size_t frag_dir;
	Relevance frag_relevance;
	DropinDir *dropins, **dropins_tail; /* in search path order */
	int template_done;                  /* templates: 0 not yet, 1 drop-in written, -1 none */
} Record;

typedef struct SearchDir {
	const char *path;
	int fd;
} SearchDir;

/* One drop-in a unit might read; the winner per file name is chosen by prio. */
typedef struct Candidate {
	ConfFile *conf;
	const Record *owner;
	size_t dir;
	uint64_t prio; /* lower wins */
} Candidate;

typedef struct Context {
	Arena arena;
	SearchDir *dirs;
	size_t n_dirs;
	Record **slots; /* open addressing, power-of-two size */
	size_t n_slots, n_records;
	int out_fd; /* normal-dir */
	char *buf;  /* file contents */
	size_t buf_size;
	UnitFileParser parser;
	Candidate *cands;
	size_t cands_size;
	char dents[32768];
} Context;

static uint32_t hash_name(const char *s, size_t n) {
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static Record *record_get(const Context *c, const char *name, size_t len) {
	uint32_t h = hash_name(name, len);

	for (size_t i = h & (c->n_slots - 1);; i = (i + 1) & (c->n_slots - 1)) {
		Record *r = c->slots[i];

		if (!r)
			return NULL;
		if (r->hash == h && r->len == len && memcmp(r->name, name, len) == 0)
			return r;
	}
}

static int records_grow(Context *c) {
	size_t n = c->n_slots * 2;
	Record **s = calloc(n, sizeof(Record *));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_slots; i++) {
		Record *r = c->slots[i];
		size_t j;

		if (!r)
			continue;
		for (j = r->hash & (n - 1); s[j]; j = (j + 1) & (n - 1))
			;
		s[j] = r;
	}
	free(c->slots);
	c->slots = s;
	c->n_slots = n;
	return 0;
}

/* Classifies a unit name, a dash prefix name or a bare type (systemd.unit(5)):
 * a prefix of [A-Za-z0-9:_.\-], at most one '@' (not first), a known type
 * suffix. Returns the kind, or -EINVAL. */
static int classify_name(const char *s, size_t len, int *ret_type) {
	const char *dot, *at = NULL;

	for (size_t t = 0; t < ELEMENTSOF(unit_types); t++)
		if (len == strlen(unit_types[t]) && memcmp(s, unit_types[t], len) == 0) {
			*ret_type = (int)t;
			return NAME_TYPE;
		}
	if (len == 0 || len > UNIT_NAME_MAX)
		return -EINVAL;
	dot = memrchr(s, '.', len);
	if (!dot || dot == s)
		return -EINVAL;
	for (size_t t = 0;; t++) {
		if (t >= ELEMENTSOF(unit_types))
			return -EINVAL;
		if ((size_t)(s + len - dot - 1) == strlen(unit_types[t]) && memcmp(dot + 1, unit_types[t], s + len - dot - 1) == 0) {
			*ret_type = (int)t;
			break;
		}
	}
	for (const char *p = s; p < dot; p++) {
		char ch = *p;

		if (ch == '@') {
			if (at || p == s)
				return -EINVAL;
			at = p;
		} else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == ':' ||
			     ch == '-' || ch == '_' || ch == '.' || ch == '\\'))
			return -EINVAL;
	}
	if (!at)
		return NAME_PLAIN;
	return at + 1 == dot ? NAME_TEMPLATE : NAME_INSTANCE;
}

static int record_ensure(Context *c, const char *name, size_t len, Record **ret) {
	Record *r = record_get(c, name, len);
	int kind, type, k;

	if (r) {
		*ret = r;
		return 0;
	}
	kind = classify_name(name, len, &type);
	if (kind < 0)
		return kind;
	if ((c->n_records + 1) * 2 > c->n_slots) {
		k = records_grow(c);
		if (k < 0)
			return k;
	}
	r = arena_zalloc(&c->arena, sizeof(Record));
	if (!r || !(r->name = arena_strndup(&c->arena, name, len)))
		return -ENOMEM;
	r->len = len;
	r->hash = hash_name(name, len);
	r->kind = kind;
	r->type = type;
	r->dropins_tail = &r->dropins;
	for (size_t i = r->hash & (c->n_slots - 1);; i = (i + 1) & (c->n_slots - 1))
		if (!c->slots[i]) {
			c->slots[i] = r;
			break;
		}
	c->n_records++;
	*ret = r;
	return 0;
}

/* "foo@bar.service" -> "foo@.service" into buf. */
static size_t template_of(const Record *r, char buf[static UNIT_NAME_MAX + 1]) {
	const char *at = memchr(r->name, '@', r->len), *dot = memrchr(r->name, '.', r->len);
	size_t n = at + 1 - r->name;

	memcpy(buf, r->name, n);
	memcpy(buf + n, dot, r->name + r->len - dot);
	n += r->name + r->len - dot;
	buf[n] = '\0';
	return n;
}

/* ------------------------------------------------------------------------ */
/* Reading the search path. */

static bool ends_with(const char *s, size_t len, const char *suffix) {
	size_t n = strlen(suffix);

	return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* A symlink NAME in a unit directory: a mask, the unit's own file somewhere
 * else (`systemctl link`), an instance pointing at its template, or an alias. */
static FragState classify_symlink(const SearchDir *d, const Record *r) {
	char target[PATH_MAX], tmpl[UNIT_NAME_MAX + 1];
	const char *base;
	ssize_t n;

	n = readlinkat(d->fd, r->name, target, sizeof(target) - 1);
	if (n < 0) {
		log_debug_errno(errno, "Failed to read symlink %s/%s, ignoring: %m", d->path, r->name);
		return FRAG_NONE;
	}
	target[n] = '\0';
	if (streq(target, "/dev/null"))
		return FRAG_MASKED;
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (streq(base, r->name))
		return FRAG_FILE;
	if (r->kind == NAME_INSTANCE) {
		template_of(r, tmpl);
		if (streq(base, tmpl))
			return FRAG_FILE;
	}
	return FRAG_ALIAS;
}

static int scan_entry(Context *c, size_t i, const char *name, unsigned char d_type) {
	const SearchDir *d = &c->dirs[i];
	size_t len = strlen(name);
	Record *r;
	int k;

	if (name[0] == '.')
		return 0;
	if (d_type == DT_UNKNOWN) {
		struct stat st;

		if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		d_type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
	}

	if (ends_with(name, len, ".d")) {
		DropinDir *dd;

		if (d_type != DT_DIR && d_type != DT_LNK)
			return 0;
		k = record_ensure(c, name, len - 2, &r);
		if (k == -EINVAL)
			return 0;
		if (k < 0)
			return k;
		dd = arena_zalloc(&c->arena, sizeof(DropinDir));
		if (!dd)
			return -ENOMEM;
		dd->dir = i;
		*r->dropins_tail = dd;
		r->dropins_tail = &dd->next;
		return 0;
	}

	if (d_type != DT_REG && d_type != DT_LNK)
		return 0;
	k = record_ensure(c, name, len, &r);
	if (k == -EINVAL)
		return 0;
	if (k < 0)
		return k;
	if (r->kind == NAME_TYPE || r->frag != FRAG_NONE)
		return 0; /* a bare type is no unit; an earlier directory won */
	r->frag = d_type == DT_REG ? FRAG_FILE : classify_symlink(d, r);
	r->frag_dir = i;
	return 0;
}

static int scan_dir(Context *c, size_t i) {
	for (;;) {
		ssize_t n = getdents64(c->dirs[i].fd, c->dents, sizeof(c->dents));

		if (n < 0)
			return log_warning_errno(errno, "Failed to read directory %s, ignoring: %m", c->dirs[i].path);
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(c->dents + off);
			int k = scan_entry(c, i, de->d_name, de->d_type);

			if (k < 0)
				return log_oom();
			off += de->d_reclen;
		}
	}
}

static int conf_file_compare(const void *a, const void *b) {
	return strcmp(((const ConfFile *)a)->name, ((const ConfFile *)b)->name);
}

/* Lists the *.conf files and symlinks of DIR/NAME.d/, once. */
static int list_dropin_dir(Context *c, const Record *r, DropinDir *dd) {
	const SearchDir *d = &c->dirs[dd->dir];
	size_t n_alloc = 0;
	char path[UNIT_NAME_MAX + 3];
	_cleanup_close_ int fd = -1;

	if (dd->listed)
		return 0;
	dd->listed = true;
	snprintf(path, sizeof(path), "%s.d", r->name);
	fd = openat(d->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_debug_errno(errno, "Failed to open %s/%s, ignoring: %m", d->path, path);
	for (;;) {
		ssize_t n = getdents64(fd, c->dents, sizeof(c->dents));

		if (n < 0)
			return log_warning_errno(errno, "Failed to read directory %s/%s, ignoring: %m", d->path, path);
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *de = (struct dirent64 *)(c->dents + off);
			size_t len = strlen(de->d_name);

			off += de->d_reclen;
			if (de->d_name[0] == '.' || !ends_with(de->d_name, len, ".conf") ||
			    (de->d_type != DT_REG && de->d_type != DT_LNK && de->d_type != DT_UNKNOWN))
				continue;
			if (dd->n_files >= n_alloc) {
				ConfFile *f;

				n_alloc = n_alloc ? n_alloc * 2 : 8;
				f = arena_alloc(&c->arena, n_alloc * sizeof(ConfFile));
				if (!f)
					return log_oom();
				if (dd->n_files)
					memcpy(f, dd->files, dd->n_files * sizeof(ConfFile));
				dd->files = f;
			}
			dd->files[dd->n_files].name = arena_strndup(&c->arena, de->d_name, len);
			if (!dd->files[dd->n_files].name)
				return log_oom();
			dd->files[dd->n_files++].relevance = UNREAD;
		}
	}
	qsort(dd->files, dd->n_files, sizeof(ConfFile), conf_file_compare);
	return 0;
}

/* Reads DIR/PATH whole into c->buf, NUL-terminated. Symlinks are followed, so
 * a symlink to /dev/null reads as empty: masked, as an empty file is. A read
 * shorter than asked for ends the file: for a regular file it means end of
 * file (read(2), POSIX), and it saves a syscall per unit file. */
static int read_file(Context *c, const SearchDir *d, const char *path, size_t *ret_len) {
	_cleanup_close_ int fd = -1;
	size_t len = 0;

	fd = openat(d->fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t n;

		if (len + 1 >= c->buf_size) {
			char *b;

			if (c->buf_size >= 64 * 1024 * 1024)
				return -EFBIG;
			b = realloc(c->buf, c->buf_size * 2);
			if (!b)
				return -ENOMEM;
			c->buf = b;
			c->buf_size *= 2;
		}
		n = read(fd, c->buf + len, c->buf_size - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		len += n;
		if (len + 1 < c->buf_size)
			break;
	}
	c->buf[len] = '\0';
	*ret_len = len;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Parsing the limit out of a unit's files (unit-file.c). */

/* Reads and parses one file of unit (relpath in search dir d). *relevance
 * caches what the file holds, since drop-ins and templates are shared between
 * units. */
static int parse_file(Context *c, Limit *l, const char *unit, const SearchDir *d, const char *relpath,
		      Relevance *relevance) {
	size_t len;
	char *path;
	int k;

	if (*relevance == EMPTY || *relevance == IRRELEVANT)
		return 0;
	k = read_file(c, d, relpath, &len);
	if (k < 0) {
		*relevance = IRRELEVANT;
		if (k == -ENOMEM)
			return log_oom();
		/* A dangling symlink is allowed (systemd.unit(5)): the unit is not found. */
		return gen_log(k == -ENOENT ? LOG_DEBUG : LOG_WARNING, k, "%s: Failed to read %s/%s, ignoring: %m", unit,
			       d->path, relpath);
	}
	if (len == 0) {
		*relevance = EMPTY;
		return 0;
	}
	if (!memmem(c->buf, len, "Netbump", 7)) {
		*relevance = IRRELEVANT;
		return 0;
	}
	*relevance = RELEVANT;
	path = arena_alloc(&c->arena, strlen(d->path) + 1 + strlen(relpath) + 1);
	if (!path)
		return log_oom();
	sprintf(path, "%s/%s", d->path, relpath); /* sized above */
	return unit_file_parse(&c->parser, l, unit, path, c->buf, len);
}

static int candidate_compare(const void *a, const void *b) {
	const Candidate *x = a, *y = b;
	int k = strcmp(x->conf->name, y->conf->name);

	if (k != 0)
		return k;
	return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* Adds the drop-ins of name record r (rank: 0 for the unit's own name, then
 * template, then prefixes, longest first; type.d/ is class 1). */
static int add_candidates(Context *c, size_t *n, const Record *r, unsigned rank, bool type_level) {
	for (DropinDir *dd = r->dropins; dd; dd = dd->next) {
		int k = list_dropin_dir(c, r, dd);

		if (k == -ENOMEM)
			return k;
		for (size_t i = 0; i < dd->n_files; i++) {
			if (*n >= c->cands_size) {
				size_t size = c->cands_size ? c->cands_size * 2 : 64;
				Candidate *p = realloc(c->cands, size * sizeof(Candidate));

				if (!p)
					return log_oom();
				c->cands = p;
				c->cands_size = size;
			}
			c->cands[(*n)++] = (Candidate){
				.conf = &dd->files[i],
				.owner = r,
				.dir = dd->dir,
				.prio = (uint64_t)type_level << 48 | (uint64_t)dd->dir << 16 | rank,
			};
		}
	}
	return 0;
}

/* The drop-ins unit reads, winners only, in the order systemd applies them:
 * c->cands[0..*ret_n). */
static int collect_dropins(Context *c, const Record *u, size_t *ret_n) {
	char name[UNIT_NAME_MAX + 1];
	const char *dot = memrchr(u->name, '.', u->len), *at = memchr(u->name, '@', u->len);
	const char *prefix_end = at ? at : dot;
	unsigned rank = 0;
	size_t n = 0, w = 0;
	const Record *r;
	int k;

	k = add_candidates(c, &n, u, rank++, false);
	if (k < 0)
		return k;
	if (u->kind == NAME_INSTANCE && (r = record_get(c, name, template_of(u, name)))) {
		k = add_candidates(c, &n, r, rank, false);
		if (k < 0)
			return k;
	}
	rank++;
	/* Dash prefixes of the part before '@' or the suffix, longest first. */
	for (const char *p = prefix_end; p > u->name; p--) {
		size_t len;

		if (p[-1] != '-')
			continue;
		len = p - u->name;
		memcpy(name, u->name, len);
		memcpy(name + len, dot, u->name + u->len - dot);
		len += u->name + u->len - dot;
		if (len == u->len && memcmp(name, u->name, len) == 0)
			continue; /* "foo-.service" itself */
		r = record_get(c, name, len);
		if (r) {
			k = add_candidates(c, &n, r, rank, false);
			if (k < 0)
				return k;
		}
		rank++;
	}
	r = record_get(c, unit_types[u->type], strlen(unit_types[u->type]));
	if (r) {
		k = add_candidates(c, &n, r, 0, true);
		if (k < 0)
			return k;
	}

	if (n > 1)
		qsort(c->cands, n, sizeof(Candidate), candidate_compare);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || !streq(c->cands[i].conf->name, c->cands[w - 1].conf->name))
			c->cands[w++] = c->cands[i];
	*ret_n = w;
	return 0;
}

/* Computes the limit of unit u whose unit file is frag's. Returns 1 when the
 * unit is masked, 0 otherwise, or -errno. */
static int unit_limit(Context *c, const Record *u, Record *frag, Limit *ret) {
	Limit l = {};
	size_t n;
	int k;

	k = parse_file(c, &l, u->name, &c->dirs[frag->frag_dir], frag->name, &frag->frag_relevance);
	if (k == -ENOMEM)
		return k;
	if (frag->frag_relevance == EMPTY)
		return 1;
	k = collect_dropins(c, u, &n);
	if (k < 0)
		return k;
	for (size_t i = 0; i < n; i++) {
		const Candidate *cd = &c->cands[i];
		char rel[UNIT_NAME_MAX + 3 + NAME_MAX + 1];

		if (cd->conf->relevance == EMPTY || cd->conf->relevance == IRRELEVANT)
			continue;
		snprintf(rel, sizeof(rel), "%s.d/%s", cd->owner->name, cd->conf->name);
		k = parse_file(c, &l, u->name, &c->dirs[cd->dir], rel, &cd->conf->relevance);
		if (k == -ENOMEM)
			return k;
	}
	*ret = l;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing drop-ins. */

/* A rate as netbumpctl reads it back exactly: "5mbit", else whole bits. */
static const char *rate_word(uint64_t bps, char buf[static RATE_STRING_MAX]) {
	uint64_t back;

	rate_format(bps, buf);
	if (rate_parse(buf, &back, NULL) < 0 || back != bps)
		snprintf(buf, RATE_STRING_MAX, "%llubit", (unsigned long long)bps);
	return buf;
}

/* Writes text as NORMAL_DIR/UNIT.d/50-netbump.conf. */
static int write_dropin(Context *c, const char *unit, const char *text, size_t len) {
	char path[UNIT_NAME_MAX + 3 + sizeof(DROPIN_NAME)];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "%s.d", unit);
	if (mkdirat(c->out_fd, path, 0755) < 0 && errno != EEXIST)
		return log_error_errno(errno, "%s: Failed to create %s: %m", unit, path);
	snprintf(path, sizeof(path), "%s.d/" DROPIN_NAME, unit);
	fd = openat(c->out_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
	if (fd < 0)
		return log_error_errno(errno, "%s: Failed to create %s: %m", unit, path);
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(errno, "%s: Failed to write %s: %m", unit, path);
		}
		text += n;
		len -= n;
	}
	if (close(TAKE_FD(fd)) < 0)
		return log_error_errno(errno, "%s: Failed to write %s: %m", unit, path);
	return 0;
}

static void print_setting(FILE *f, const char *what, const Setting *s) {
	char buf[RATE_STRING_MAX];

	if (s->set)
		fprintf(f, "# %s %s, set at %s:%u\n", what, rate_word(s->bps, buf), s->path, s->line);
	else
		fprintf(f, "# %s unlimited\n", what);
}

/* Writes s with every '%' doubled, as systemd reads it back literally. */
static void fputs_specifier_escaped(FILE *f, const char *s) {
	for (; *s; s++) {
		if (*s == '%')
			fputc('%', f);
		fputc(*s, f);
	}
}

/* Writes the drop-in of unit u; with l NULL, the one that cancels the
 * template's drop-in for an instance without a limit of its own. */
static int emit(Context *c, const Record *u, const Record *frag, const Limit *l) {
	char up[RATE_STRING_MAX], down[RATE_STRING_MAX];
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f;
	int k;

	f = open_memstream(&text, &len);
	if (!f)
		return log_oom();
	fprintf(f, "# Automatically generated by netbump-generator(8) for %s.\n", u->name);
	if (!l)
		fprintf(f,
			"# %s has no valid bandwidth limit of its own: this file replaces the drop-in\n"
			"# " DROPIN_NAME " written for its template, so netbump does not limit it.\n",
			u->name);
	else {
		print_setting(f, "Upload:", &l->up);
		print_setting(f, "Download:", &l->down);
	}
	/* SourcePath= as systemd's own generators write it (systemd.unit(5)):
	 * the unit file this drop-in was made from; the settings' own files are
	 * named in the comments above. systemd expands specifiers in it. */
	fputs("\n[Unit]\nSourcePath=", f);
	fputs_specifier_escaped(f, c->dirs[frag->frag_dir].path);
	fputc('/', f);
	fputs_specifier_escaped(f, frag->name);
	fputc('\n', f);
	if (l) {
		/* '+': netbumpctl runs as root outside the unit's sandbox (which may
		 * hide the control socket), yet in the unit's cgroup: netbumpd lets
		 * only the owner of a unit's cgroup, root unless it is delegated,
		 * set a rule on the unit. No '-' on start: a unit running unlimited
		 * because the limiter failed is worse than one that does not start.
		 * The rule removal may fail (netbumpd already gone at shutdown)
		 * without failing the unit. %n keeps the text the same for every
		 * instance of a template. */
		fprintf(f,
			"Wants=netbumpd.socket\n"
			"After=netbumpd.socket\n"
			"\n[Service]\n"
			"ExecStartPre=+%s set unit:%%n --up %s --down %s\n"
			"ExecStopPost=-+%s unset unit:%%n\n",
			NETBUMPCTL_PATH, l->up.set ? rate_word(l->up.bps, up) : "unlimited",
			l->down.set ? rate_word(l->down.bps, down) : "unlimited", NETBUMPCTL_PATH);
	}
	k = fclose(f);
	if (k != 0 || !text)
		return log_oom();
	return write_dropin(c, u->name, text, len);
}

/* Handles unit u (a plain unit, a template, or an instance). Returns 1 when a
 * drop-in with a limit was written, 0 when not, -ENOMEM. */
static int process_unit(Context *c, Record *u) {
	char tname[UNIT_NAME_MAX + 1];
	Record *frag = u, *tmpl = NULL;
	bool limit = false;
	Limit l;
	int k;

	if (u->kind == NAME_TEMPLATE && u->template_done != 0)
		return u->template_done > 0;
	if (u->kind == NAME_INSTANCE) {
		/* The template first: whether it got a drop-in decides what an
		 * instance without a limit needs. */
		tmpl = record_get(c, tname, template_of(u, tname));
		if (tmpl && tmpl->frag == FRAG_FILE) {
			k = process_unit(c, tmpl);
			if (k < 0)
				return k;
		}
		if (u->frag == FRAG_NONE)
			frag = tmpl;
	}
	if (!frag || frag->frag != FRAG_FILE)
		return 0;

	k = unit_limit(c, u, frag, &l);
	if (k < 0)
		return k;
	if (k > 0)
		log_debug("%s: masked", u->name);
	else if (!l.up.set && !l.down.set)
		; /* no limit, or a bad one, which unit_limit() logged */
	else if (u->type != TYPE_SERVICE) {
		if (!l.bad)
			log_warning("%s: bandwidth limits apply to service units only (they need ExecStartPre=), ignoring",
				    u->name);
	} else if (streq(u->name, "netbumpd.service"))
		log_warning("%s: netbumpd cannot limit itself (its ExecStartPre= would wait for netbumpd), ignoring",
			    u->name);
	else
		limit = !l.bad;

	if (limit)
		k = emit(c, u, frag, &l);
	else if (k == 0 && tmpl && tmpl->template_done > 0)
		k = emit(c, u, frag, NULL);
	else
		k = 0;
	if (k == -ENOMEM)
		return k;
	limit = limit && k >= 0;
	if (u->kind == NAME_TEMPLATE)
		u->template_done = limit ? 1 : -1;
	return limit;
}

/* ------------------------------------------------------------------------ */

typedef struct DevIno {
	dev_t dev;
	ino_t ino;
} DevIno;

static int add_search_dir(Context *c, const char *path, DevIno *seen, size_t *n_seen) {
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (path[0] != '/') {
		log_warning("Ignoring relative unit directory '%s' in $SYSTEMD_UNIT_PATH", path);
		return 0;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			log_warning_errno(errno, "Failed to open %s, ignoring: %m", path);
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return log_warning_errno(errno, "Failed to stat %s, ignoring: %m", path);
	/* The same directory twice (/lib -> usr/lib) or an output directory. */
	for (size_t i = 0; i < *n_seen; i++)
		if (seen[i].dev == st.st_dev && seen[i].ino == st.st_ino) {
			log_debug("Not reading %s: seen already or a generator output directory", path);
			return 0;
		}
	seen[(*n_seen)++] = (DevIno){ st.st_dev, st.st_ino };
	c->dirs[c->n_dirs++] = (SearchDir){ .path = path, .fd = TAKE_FD(fd) };
	return 0;
}

/* The unit path: $SYSTEMD_UNIT_PATH when set (colon-separated; a trailing
 * empty component appends the defaults), else the defaults. */
static int setup_search_path(Context *c, char **outputs, size_t n_outputs) {
	const char *env = getenv("SYSTEMD_UNIT_PATH");
	size_t max = ELEMENTSOF(default_unit_path), n_seen = 0;
	_cleanup_free_ DevIno *seen = NULL;
	bool defaults = true;
	char *copy = NULL;

	if (env) {
		size_t len = strlen(env);

		for (const char *p = env; *p; p++)
			max += *p == ':';
		max += 1;
		defaults = len == 0 || env[len - 1] == ':';
		copy = arena_strndup(&c->arena, env, len);
		if (!copy)
			return log_oom();
	}
	c->dirs = arena_alloc(&c->arena, max * sizeof(SearchDir));
	seen = malloc((max + n_outputs) * sizeof(DevIno));
	if (!c->dirs || !seen)
		return log_oom();
	for (size_t i = 0; i < n_outputs; i++) {
		struct stat st;

		if (stat(outputs[i], &st) >= 0)
			seen[n_seen++] = (DevIno){ st.st_dev, st.st_ino };
	}
	if (copy)
		for (char *save = NULL, *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
			add_search_dir(c, p, seen, &n_seen);
	if (defaults)
		for (size_t i = 0; i < ELEMENTSOF(default_unit_path); i++)
			add_search_dir(c, default_unit_path[i], seen, &n_seen);
	return 0;
}

static uint64_t now_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int record_compare(const void *a, const void *b) {
	return strcmp((*(Record *const *)a)->name, (*(Record *const *)b)->name);
}

static int run(Context *c, char **outputs, size_t n_outputs) {
	_cleanup_free_ Record **units = NULL;
	size_t n_units = 0, n_written = 0;
	uint64_t start = now_usec();
	int k;

	c->out_fd = open(outputs[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->out_fd < 0)
		return log_error_errno(errno, "Failed to open output directory %s: %m", outputs[0]);
	c->n_slots = 4096;
	c->slots = calloc(c->n_slots, sizeof(Record *));
	c->buf_size = 65536;
	c->buf = malloc(c->buf_size);
	if (!c->slots || !c->buf)
		return log_oom();

	k = setup_search_path(c, outputs, n_outputs);
	if (k < 0)
		return k;
	for (size_t i = 0; i < c->n_dirs; i++) {
		k = scan_dir(c, i);
		if (k == -ENOMEM)
			return k;
	}

	/* Units: names with a unit file, and instances with a drop-in directory
	 * of their own (the others read what their template reads). */
	units = malloc(c->n_records * sizeof(Record *));
	if (!units)
		return log_oom();
	for (size_t i = 0; i < c->n_slots; i++) {
		Record *r = c->slots[i];

		if (r && r->kind != NAME_TYPE && (r->frag == FRAG_FILE || (r->kind == NAME_INSTANCE && r->frag == FRAG_NONE && r->dropins)))
			units[n_units++] = r;
	}
	qsort(units, n_units, sizeof(Record *), record_compare);
	for (size_t i = 0; i < n_units; i++) {
		k = process_unit(c, units[i]);
		if (k == -ENOMEM)
			return k;
		n_written += k > 0;
	}
	log_debug("%zu directories, %zu units, %zu limited, in %llu us", c->n_dirs, n_units, n_written,
		  (unsigned long long)(now_usec() - start));
	return 0;
}

static void context_done(Context *c) {
	for (size_t i = 0; i < c->n_dirs; i++)
		close(c->dirs[i].fd);
	if (c->out_fd >= 0)
		close(c->out_fd);
	free(c->slots);
	free(c->buf);
	free(c->parser.line);
	free(c->cands);
	arena_done(&c->arena);
}

int main(int argc, char *argv[]) {
	Context c = { .out_fd = -1 };

	log_setup();
	/* systemd passes normal-dir early-dir late-dir; "for tests, generators may
	 * be called with just one argument" (systemd.generator(7)). Only
	 * normal-dir is written: drop-ins there extend the unit without
	 * overriding the admin's own. */
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "Usage: %s NORMAL-DIR [EARLY-DIR LATE-DIR]\n", program_invocation_short_name);
		return EXIT_FAILURE;
	}
	(void)run(&c, argv + 1, argc - 1);
	context_done(&c);
	if (log_kmsg_fd >= 0)
		close(log_kmsg_fd);
	return log_n_errors > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
