/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state file holds what a killed run must hand to the next one: the
 * acknowledged rules (with their owners, and for pid rules the processes
 * moved and where from, and the sockets mirrored), and what the next run
 * could not recognize by its marks alone (the clsact qdiscs we added, or
 * that a killed run added and this one keeps: a clsact looks the same
 * whoever made it). A clean stop removes it with everything else.
 *
 *   clsact IFINDEX NAME|-                    (-: kept, no interface set up on it yet)
 *   rule ID OWNER UP DOWN TRANSIENT TARGET   (a later one of the same ID replaces it)
 *   class ID MINOR                           (its HTB class; of the rule line just before)
 *   share ID MIN_UP MIN_DOWN PRIORITY        (likewise; only where not 0 0 normal)
 *   moved ID PID FROM_UNIT|- FROM_PATH       (likewise)
 *   cookie ID COOKIE                         (likewise)
 *   unset ID
 *   origin PID FROM_UNIT|- FROM_PATH
 *   commit
 *
 * It is written before a request is acknowledged. Rewriting it whole made
 * each Set cost O(rules) (5 ms with 8000 rules), so while only rules change
 * the lines of the rules that changed are appended, each batch ending in
 * "commit"; a reader applies nothing after the last "commit", so a SIGKILL
 * in the middle of an append (a write can stop between pages) loses only
 * the change that was never acknowledged. When the file has grown to twice
 * its last whole size, or anything but the rules changed, it is rewritten
 * whole: a temporary file renamed over it, so a kill leaves either version.
 *
 * "origin" lines are the processes of a pid rule being removed: the rule is
 * no longer acknowledged, but until its processes are back where they came
 * from, a start after a crash must still know where that is. They are only
 * in a whole rewrite, and the next save rewrites the file without them.
 *
 * No fsync: the file has to survive the daemon, not the machine. The page
 * cache outlives a killed process, and the default /run does not outlive a
 * reboot, after which none of the qdiscs, cgroups or processes the rules
 * name exist either.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"
#include "state.h"

#define STATE_FILE "netbumpd.state"

static char *state_path(Manager *m, const char *suffix) {
	char *p = NULL;
	if (asprintf(&p, "%s/" STATE_FILE "%s", m->state_dir, suffix) < 0)
		return NULL;
	return p;
}

/* A hash of what a rule's lines say, cheap enough to take of every rule on
 * every save. Its target never changes, and moved processes are only ever
 * added: their number and PIDs stand for them. */
static uint64_t mix(uint64_t h, uint64_t v) {
	h = (h ^ v) * UINT64_C(0x9e3779b97f4a7c15);
	return h ^ (h >> 29);
}

static uint64_t rule_sig(const Rule *r) {
	uint64_t h = mix(mix(mix(r->id, r->owner), r->up_bps), r->down_bps);

	h = mix(mix(mix(h, r->transient), r->n_moved), r->n_cookies);
	h = mix(mix(mix(mix(h, r->min_up), r->min_down), (uint64_t)r->priority), r->minor);
	for (size_t k = 0; k < r->n_moved; k++)
		h = mix(h, (uint64_t)r->moved[k].pid);
	for (size_t k = 0; k < r->n_cookies; k++)
		h = mix(h, r->cookies[k]);
	return h ?: 1; /* 0 means "not written" */
}

/* A rule written for the first time: its entry (room reserved before). */
static void entry_add(struct StateFile *s, Rule *x) {
	s->rules[s->n_rules++] = (struct StateEntry){ .id = x->id, .rule = x, .pass = s->pass };
	x->state_slot = s->n_rules;
}

/* What a rewrite puts before the rules: the clsact qdiscs, and the rules of a
 * killed run not restored yet (they change only with a rewrite). */
static uint64_t head_sig(Manager *m) {
	uint64_t h = 0;

	for (Iface *i = m->ifaces; i; i = i->next)
		if (i->created_clsact)
			h = mix(h, i->ifindex);
	for (size_t k = 0; k < m->n_kept_clsact; k++)
		h = mix(h, m->kept_clsact[k]);
	for (size_t k = 0; k < m->n_saved; k++)
		if (m->saved[k].target)
			h = mix(h, m->saved[k].id);
	return h;
}

static void write_moved(FILE *f, const char *prefix, const Moved *v, size_t n) {
	for (size_t k = 0; k < n; k++)
		fprintf(f, "%s %d %s %s\n", prefix, (int)v[k].pid, v[k].from_unit ?: "-", v[k].from);
}

static void write_rule(FILE *f, uint64_t id, uid_t owner, uint64_t up, uint64_t down, bool transient,
		       const char *target, const char *remote, uint32_t minor, uint64_t min_up, uint64_t min_down, Priority priority,
		       const Moved *moved, size_t n_moved, const uint64_t *cookies, size_t n_cookies) {
	char prefix[32];

	fprintf(f, "rule %llu %u %llu %llu %d %s\n", (unsigned long long)id, (unsigned)owner,
		(unsigned long long)up, (unsigned long long)down, transient ? 1 : 0, target);
	/* Its scope: part of what the rule is. */
	if (remote)
		fprintf(f, "remote %llu %s\n", (unsigned long long)id, remote);
	/* Its class: a restart after a kill takes the classes over as they are. */
	if (minor)
		fprintf(f, "class %llu %u\n", (unsigned long long)id, (unsigned)minor);
	/* Its share of the parent, where it has one other than the default. */
	if (min_up || min_down || priority != PRIORITY_NORMAL)
		fprintf(f, "share %llu %llu %llu %d\n", (unsigned long long)id, (unsigned long long)min_up,
			(unsigned long long)min_down, (int)priority);
	snprintf(prefix, sizeof(prefix), "moved %llu", (unsigned long long)id);
	write_moved(f, prefix, moved, n_moved);
	for (size_t k = 0; k < n_cookies; k++)
		fprintf(f, "cookie %llu %llu\n", (unsigned long long)id, (unsigned long long)cookies[k]);
}

static void write_live_rule(FILE *f, const Rule *x) {
	write_rule(f, x->id, x->owner, x->up_bps, x->down_bps, x->transient, x->name, x->remote, x->minor, x->min_up, x->min_down,
		   x->priority, x->moved, x->n_moved, x->cookies, x->n_cookies);
}

static int entries_reserve(struct StateFile *s, size_t n) {
	struct StateEntry *v;

	if (n <= s->cap_rules)
		return 0;
	n = n < 64 ? 64 : n * 2;
	v = realloc(s->rules, n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->rules = v;
	s->cap_rules = n;
	return 0;
}

void manager_state_close(Manager *m) {
	if (m->state.fd >= 0)
		close(m->state.fd);
	m->state.fd = -1;
	free(m->state.rules);
	m->state.rules = NULL;
	m->state.n_rules = m->state.cap_rules = 0;
	for (Rule *r = m->rules; r; r = r->next)
		r->state_sig = r->state_slot = 0;
}

static int state_rewrite(Manager *m, const Rule *without) {
	_cleanup_free_ char *path = state_path(m, ""), *tmp = state_path(m, ".tmp");
	_cleanup_fclose_ FILE *f = NULL;
	long size;
	int fd, r;

	manager_state_close(m);
	if (!path || !tmp)
		return -ENOMEM;
	r = entries_reserve(&m->state, m->n_rules);
	if (r < 0)
		return r;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_warning_errno(errno, "Failed to write %s: %m", tmp);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	fprintf(f, "# netbumpd: what this run created (used to clean up after a crash)\n");
	for (Iface *i = m->ifaces; i; i = i->next)
		if (i->created_clsact)
			fprintf(f, "clsact %u %s\n", i->ifindex, i->name);
	for (size_t k = 0; k < m->n_kept_clsact; k++)
		fprintf(f, "clsact %u -\n", m->kept_clsact[k]);
	for (Rule *x = m->rules; x; x = x->next) {
		if (x == without)
			write_moved(f, "origin", x->moved, x->n_moved);
		else
			write_live_rule(f, x);
	}
	/* Rules of the killed run that this start has not put back yet (the
	 * file was read, and the leftovers cleared, before they are applied):
	 * a start killed before then must not lose them. One being restored
	 * has no target here any more. */
	for (size_t k = 0; k < m->n_saved; k++) {
		const SavedRule *sr = &m->saved[k];

		if (sr->target)
			write_rule(f, sr->id, sr->owner, sr->up, sr->down, sr->transient, sr->target, sr->remote, sr->minor, sr->min_up,
				   sr->min_down, sr->priority, sr->moved, sr->n_moved, sr->cookies, sr->n_cookies);
	}
	fprintf(f, "commit\n");
	size = ftell(f);
	if (fflush(f) != 0 || ferror(f) || size < 0) {
		r = negative_errno();
		(void)unlink(tmp);
		return log_warning_errno(r, "Failed to write %s: %m", tmp);
	}
	if (rename(tmp, path) < 0) {
		r = negative_errno();
		(void)unlink(tmp);
		return log_warning_errno(r, "Failed to replace %s: %m", path);
	}

	/* From now on appended to. */
	m->state.fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	m->state.size = m->state.full_size = (uint64_t)size;
	m->state.head_sig = head_sig(m);
	if (without) {
		/* The origins go with the next save, whatever it is. */
		close(m->state.fd);
		m->state.fd = -1;
		return 0;
	}
	for (Rule *x = m->rules; x; x = x->next) {
		x->state_sig = rule_sig(x);
		entry_add(&m->state, x);
	}
	return 0;
}

/* Appends a batch of lines that ends in "commit". */
static int journal_write(struct StateFile *s, const char *buf, size_t len) {
	ssize_t w = write(s->fd, buf, len);

	if (w != (ssize_t)len) {
		/* Whatever part got there has no "commit" after it yet, but a
		 * later append would give it one: rewrite next time instead. */
		int r = w < 0 ? negative_errno() : -EIO;
		close(s->fd);
		s->fd = -1;
		return log_warning_errno(r, "Failed to append to the state file: %m");
	}
	s->size += len;
	return 0;
}

/* Appends what changed since the file was last written: "unset" for each
 * rule gone, the lines of each rule new or changed. 0 when nothing did. */
static int state_append(Manager *m) {
	_cleanup_free_ char *buf = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	struct StateFile *s = &m->state;
	size_t len = 0, n_new = 0;
	int r;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	/* Entries whose rule is still in the list are seen in this pass; the
	 * others are gone (the rule may be freed: its pointer is not used). */
	s->pass++;
	for (Rule *x = m->rules; x; x = x->next)
		if (x->state_slot > 0 && x->state_slot <= s->n_rules && s->rules[x->state_slot - 1].rule == x &&
		    s->rules[x->state_slot - 1].id == x->id)
			s->rules[x->state_slot - 1].pass = s->pass;
	for (size_t k = 0; k < s->n_rules;) {
		if (s->rules[k].pass == s->pass) {
			k++;
			continue;
		}
		fprintf(f, "unset %llu\n", (unsigned long long)s->rules[k].id);
		s->rules[k] = s->rules[--s->n_rules];
		if (k < s->n_rules && s->rules[k].pass == s->pass)
			s->rules[k].rule->state_slot = k + 1;
	}
	for (Rule *x = m->rules; x; x = x->next) {
		uint64_t sig = x->state_new_sig = rule_sig(x);

		if (x->state_sig == sig)
			continue;
		if (x->state_sig == 0)
			n_new++;
		write_live_rule(f, x);
	}
	if (fflush(f) != 0)
		return -ENOMEM;
	if (len == 0)
		return 0;
	fputs("commit\n", f);
	if (fflush(f) != 0)
		return -ENOMEM;
	r = entries_reserve(s, s->n_rules + n_new);
	if (r < 0)
		return r;
	r = journal_write(s, buf, len);
	if (r < 0)
		return r;
	for (Rule *x = m->rules; x; x = x->next) {
		if (x->state_sig == 0)
			entry_add(s, x);
		x->state_sig = x->state_new_sig;
	}
	return 0;
}

/* Appending no longer serves: no file open to append to, the file twice
 * its last whole size, or what comes before the rules changed. */
static bool needs_rewrite(Manager *m) {
	struct StateFile *s = &m->state;

	return s->fd < 0 || s->size > 2 * s->full_size + 4096 || head_sig(m) != s->head_sig;
}

int manager_state_save_without(Manager *m, const Rule *without) {
	if (m->restoring)
		return 0;
	if (without || needs_rewrite(m))
		return state_rewrite(m, without);
	return state_append(m);
}

int manager_state_save(Manager *m) {
	return manager_state_save_without(m, NULL);
}

/* Every other change was saved when it was made (a save that failed left
 * the file to be rewritten whole): only this rule's lines can be new. */
int manager_state_save_rule(Manager *m, Rule *x) {
	struct StateFile *s = &m->state;
	_cleanup_free_ char *buf = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t len = 0;
	uint64_t sig;
	int r;

	if (m->restoring)
		return 0;
	if (needs_rewrite(m))
		return manager_state_save(m);
	sig = rule_sig(x);
	if (sig == x->state_sig)
		return 0;
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	write_live_rule(f, x);
	fputs("commit\n", f);
	if (fflush(f) != 0)
		return -ENOMEM;
	if (x->state_sig == 0) {
		r = entries_reserve(s, s->n_rules + 1);
		if (r < 0)
			return r;
	}
	r = journal_write(s, buf, len);
	if (r < 0)
		return r;
	if (x->state_sig == 0)
		entry_add(s, x);
	x->state_sig = sig;
	return 0;
}

void manager_state_remove(Manager *m) {
	_cleanup_free_ char *path = state_path(m, ""), *tmp = state_path(m, ".tmp");

	manager_state_close(m);
	if (path)
		(void)unlink(path);
	if (tmp)
		(void)unlink(tmp);
}

static void chomp(char *s) {
	size_t l = strlen(s);
	if (l > 0 && s[l - 1] == '\n')
		s[l - 1] = '\0';
}

void moved_free(Moved *v, size_t n) {
	for (size_t k = 0; k < n; k++) {
		free(v[k].from);
		free(v[k].from_unit);
	}
	free(v);
}

static void saved_rule_clear(SavedRule *sr) {
	free(sr->target);
	free(sr->remote);
	moved_free(sr->moved, sr->n_moved);
	free(sr->cookies);
	*sr = (SavedRule){};
}

void saved_rules_free(SavedRule *v, size_t n) {
	for (size_t k = 0; k < n; k++)
		saved_rule_clear(&v[k]);
	free(v);
}

static int moved_append(SavedRule *sr, pid_t pid, const char *unit, const char *from) {
	Moved *nm = realloc(sr->moved, (sr->n_moved + 1) * sizeof(Moved));
	if (!nm)
		return -ENOMEM;
	sr->moved = nm;
	nm[sr->n_moved] = (Moved){ .pid = pid, .from = strdup(from), .from_unit = streq(unit, "-") ? NULL : strdup(unit) };
	sr->n_moved++;
	return 0;
}

/* Records in file order: a rule (its lines), or an unset (no target). */
typedef struct Records {
	SavedRule *v;
	size_t n, cap;
} Records;

static SavedRule *records_add(Records *rs) {
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		SavedRule *v = realloc(rs->v, cap * sizeof(SavedRule));
		if (!v)
			return NULL;
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n] = (SavedRule){};
	return &rs->v[rs->n++];
}

typedef struct RecordKey {
	uint64_t id;
	size_t seq; /* place in the file */
} RecordKey;

static int record_key_cmp(const void *a, const void *b) {
	const RecordKey *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Lines that do not parse are skipped: a state file from another version
 * must not stop the daemon from starting. Of each rule id the last record
 * before the last "commit" counts; a file with no "commit" at all (as
 * earlier versions wrote it, always whole) counts entirely. */
int manager_state_load_rules(Manager *m, SavedRule **ret, size_t *ret_n) {
	_cleanup_free_ char *path = state_path(m, ""), *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	Records rs = {};
	SavedRule origins = {}, committed_origins = {};
	size_t committed = 0, cap = 0, n = 0;
	bool any_commit = false;
	ssize_t l;

	if (!path)
		return -ENOMEM;
	*ret = NULL;
	*ret_n = 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno();
	while ((l = getline(&line, &cap, f)) > 0) {
		unsigned long long id, up, down, x;
		unsigned owner;
		int transient, pid, off = 0;
		char unit[256];
		SavedRule *sr = rs.n > 0 ? &rs.v[rs.n - 1] : NULL;

		if (line[l - 1] != '\n')
			break; /* cut short by a kill: never committed */
		chomp(line);
		if (streq(line, "commit")) {
			committed = rs.n;
			any_commit = true;
			saved_rule_clear(&committed_origins);
			committed_origins = origins;
			origins = (SavedRule){};
		} else if (sscanf(line, "origin %d %255s %n", &pid, unit, &off) == 2 && off > 0 && line[off] == '/') {
			if (moved_append(&origins, pid, unit, line + off) < 0)
				break;
		} else if (sscanf(line, "rule %llu %u %llu %llu %d %n", &id, &owner, &up, &down, &transient, &off) ==
				   5 &&
			   off > 0 && line[off]) {
			sr = records_add(&rs);
			if (!sr)
				break;
			*sr = (SavedRule){ .id = id, .owner = owner, .up = up, .down = down, .transient = transient,
					   .priority = PRIORITY_NORMAL, .target = strdup(line + off) };
			if (!sr->target)
				break;
		} else if (sscanf(line, "share %llu %llu %llu %d", &id, &up, &down, &pid) == 4 && sr && sr->target &&
			   sr->id == id && pid >= 0 && pid < _PRIORITY_MAX) {
			sr->min_up = up;
			sr->min_down = down;
			sr->priority = (Priority)pid;
		} else if (sscanf(line, "remote %llu %n", &id, &off) == 1 && off > 0 && line[off] && sr && sr->target &&
			   sr->id == id && !sr->remote) {
			sr->remote = strdup(line + off);
			if (!sr->remote)
				break;
		} else if (sscanf(line, "class %llu %u", &id, &owner) == 2 && sr && sr->target && sr->id == id) {
			sr->minor = owner;
		} else if (sscanf(line, "unset %llu", &id) == 1) {
			sr = records_add(&rs);
			if (!sr)
				break;
			sr->id = id;
		} else if (sscanf(line, "moved %llu %d %255s %n", &id, &pid, unit, &off) == 3 && off > 0 &&
			   line[off] == '/' && sr && sr->target && sr->id == id) {
			if (moved_append(sr, pid, unit, line + off) < 0)
				break;
		} else if (sscanf(line, "cookie %llu %llu", &id, &x) == 2 && sr && sr->target && sr->id == id) {
			uint64_t *nc = realloc(sr->cookies, (sr->n_cookies + 1) * sizeof(uint64_t));
			if (!nc)
				break;
			sr->cookies = nc;
			nc[sr->n_cookies++] = x;
		}
	}
	if (!any_commit) {
		committed = rs.n;
		committed_origins = origins;
		origins = (SavedRule){};
	}
	saved_rule_clear(&origins);
	for (size_t k = committed; k < rs.n; k++)
		saved_rule_clear(&rs.v[k]);

	/* Keep the last record of each id if it is a rule, in file order. */
	if (committed > 0) {
		_cleanup_free_ RecordKey *keys = calloc(committed, sizeof(RecordKey));
		_cleanup_free_ bool *keep = calloc(committed, sizeof(bool));

		if (!keys || !keep) {
			saved_rules_free(rs.v, committed);
			saved_rule_clear(&committed_origins);
			return -ENOMEM;
		}
		for (size_t k = 0; k < committed; k++)
			keys[k] = (RecordKey){ .id = rs.v[k].id, .seq = k };
		qsort(keys, committed, sizeof(RecordKey), record_key_cmp);
		for (size_t k = 0; k < committed; k++)
			if (k + 1 == committed || keys[k + 1].id != keys[k].id)
				keep[keys[k].seq] = rs.v[keys[k].seq].target != NULL;
		for (size_t k = 0; k < committed; k++) {
			if (keep[k])
				rs.v[n++] = rs.v[k];
			else
				saved_rule_clear(&rs.v[k]);
		}
	}
	/* The processes to put back: an entry of their own with no target. */
	rs.n = n;
	if (committed_origins.n_moved > 0) {
		SavedRule *sr = records_add(&rs);

		if (sr) {
			*sr = committed_origins;
			n++;
		} else
			saved_rule_clear(&committed_origins);
	}
	if (n == 0) {
		free(rs.v);
		rs.v = NULL;
	}
	*ret = rs.v;
	*ret_n = n;
	return 0;
}

int manager_state_load_clsact(Manager *m, uint32_t **ret, size_t *ret_n) {
	_cleanup_free_ char *path = state_path(m, ""), *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ uint32_t *v = NULL;
	size_t n = 0, cap = 0;

	if (!path)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		*ret = NULL;
		*ret_n = 0;
		return errno == ENOENT ? 0 : negative_errno();
	}
	while (getline(&line, &cap, f) > 0) {
		unsigned ifindex;
		if (sscanf(line, "clsact %u", &ifindex) != 1)
			continue;
		uint32_t *nv = realloc(v, (n + 1) * sizeof(uint32_t));
		if (!nv)
			return -ENOMEM;
		v = nv;
		v[n++] = ifindex;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}
