/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state file holds what a killed run must hand to the next one: the
 * acknowledged rules (with their owners, and for pid rules the processes
 * moved and where from, and the sockets mirrored), and what the next run
 * could not recognize by its marks alone (the clsact qdiscs we added: a
 * clsact looks the same whoever made it). It is written before a request is
 * acknowledged and replaced atomically (write a temporary file, fsync,
 * rename it over), so a SIGKILL at any instant leaves either the old or the
 * new version, never a torn one. A clean stop removes it with everything
 * else.
 *
 *   clsact IFINDEX NAME
 *   rule ID OWNER UP DOWN TRANSIENT TARGET
 *   moved ID PID FROM_UNIT|- FROM_PATH
 *   cookie ID COOKIE
 *   origin PID FROM_UNIT|- FROM_PATH
 *
 * "origin" lines are the processes of a pid rule being removed: the rule is
 * no longer acknowledged, but until its processes are back where they came
 * from, a start after a crash must still know where that is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "manager.h"

#define STATE_FILE "netbumpd.state"

static char *state_path(Manager *m, const char *suffix) {
	char *p = NULL;
	if (asprintf(&p, "%s/" STATE_FILE "%s", m->state_dir, suffix) < 0)
		return NULL;
	return p;
}

static void write_moved(FILE *f, const char *prefix, const Moved *v, size_t n) {
	for (size_t k = 0; k < n; k++)
		fprintf(f, "%s %d %s %s\n", prefix, (int)v[k].pid, v[k].from_unit ?: "-", v[k].from);
}

int manager_state_save_without(Manager *m, const Rule *without) {
	if (m->restoring)
		return 0;
	_cleanup_free_ char *path = state_path(m, ""), *tmp = state_path(m, ".tmp");
	_cleanup_fclose_ FILE *f = NULL;
	int fd;

	if (!path || !tmp)
		return -ENOMEM;
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
	for (Rule *r = m->rules; r; r = r->next) {
		char prefix[32];

		if (r == without) {
			write_moved(f, "origin", r->moved, r->n_moved);
			continue;
		}
		snprintf(prefix, sizeof(prefix), "moved %llu", (unsigned long long)r->id);
		fprintf(f, "rule %llu %u %llu %llu %d %s\n", (unsigned long long)r->id, (unsigned)r->owner,
			(unsigned long long)r->up_bps, (unsigned long long)r->down_bps, r->transient ? 1 : 0, r->name);
		write_moved(f, prefix, r->moved, r->n_moved);
		for (size_t k = 0; k < r->n_cookies; k++)
			fprintf(f, "cookie %llu %llu\n", (unsigned long long)r->id, (unsigned long long)r->cookies[k]);
	}
	/* Rules of the killed run that this start has not put back yet (the
	 * file was read, and the leftovers cleared, before they are applied):
	 * a start killed before then must not lose them. One being restored
	 * has no target here any more. */
	for (size_t k = 0; k < m->n_saved; k++) {
		const SavedRule *sr = &m->saved[k];
		char prefix[32];

		if (!sr->target)
			continue;
		snprintf(prefix, sizeof(prefix), "moved %llu", (unsigned long long)sr->id);
		fprintf(f, "rule %llu %u %llu %llu %d %s\n", (unsigned long long)sr->id, (unsigned)sr->owner,
			(unsigned long long)sr->up, (unsigned long long)sr->down, sr->transient ? 1 : 0, sr->target);
		write_moved(f, prefix, sr->moved, sr->n_moved);
		for (size_t j = 0; j < sr->n_cookies; j++)
			fprintf(f, "cookie %llu %llu\n", (unsigned long long)sr->id, (unsigned long long)sr->cookies[j]);
	}
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
		int r = negative_errno();
		(void)unlink(tmp);
		return log_warning_errno(r, "Failed to write %s: %m", tmp);
	}
	if (rename(tmp, path) < 0) {
		int r = negative_errno();
		(void)unlink(tmp);
		return log_warning_errno(r, "Failed to replace %s: %m", path);
	}
	return 0;
}

int manager_state_save(Manager *m) {
	return manager_state_save_without(m, NULL);
}

void manager_state_remove(Manager *m) {
	_cleanup_free_ char *path = state_path(m, ""), *tmp = state_path(m, ".tmp");

	if (path)
		(void)unlink(path);
	if (tmp)
		(void)unlink(tmp);
}

static SavedRule *saved_find(SavedRule *v, size_t n, uint64_t id) {
	for (size_t k = 0; k < n; k++)
		if (v[k].id == id)
			return &v[k];
	return NULL;
}

static void chomp(char *s) {
	size_t l = strlen(s);
	if (l > 0 && s[l - 1] == '\n')
		s[l - 1] = '\0';
}

void saved_rules_free(SavedRule *v, size_t n) {
	for (size_t k = 0; k < n; k++) {
		free(v[k].target);
		for (size_t j = 0; j < v[k].n_moved; j++) {
			free(v[k].moved[j].from);
			free(v[k].moved[j].from_unit);
		}
		free(v[k].moved);
		free(v[k].cookies);
	}
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

/* Lines that do not parse are skipped: a state file from another version
 * must not stop the daemon from starting. The "origin" lines go to an entry
 * of their own with no target (nothing to restore, only processes to put
 * back). */
int manager_state_load_rules(Manager *m, SavedRule **ret, size_t *ret_n) {
	_cleanup_free_ char *path = state_path(m, ""), *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	SavedRule *v = NULL;
	size_t n = 0, cap = 0, origins = SIZE_MAX; /* index: v moves as it grows */

	if (!path)
		return -ENOMEM;
	*ret = NULL;
	*ret_n = 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno();
	while (getline(&line, &cap, f) > 0) {
		unsigned long long id, up, down, x;
		unsigned owner;
		int transient, pid, off = 0;
		char unit[256];
		SavedRule *sr;

		chomp(line);
		if (sscanf(line, "rule %llu %u %llu %llu %d %n", &id, &owner, &up, &down, &transient, &off) == 5 &&
		    off > 0 && line[off]) {
			SavedRule *nv = realloc(v, (n + 1) * sizeof(SavedRule));
			if (!nv)
				break;
			v = nv;
			v[n] = (SavedRule){ .id = id, .owner = owner, .up = up, .down = down, .transient = transient };
			v[n].target = strdup(line + off);
			if (!v[n].target)
				break;
			n++;
		} else if (sscanf(line, "moved %llu %d %255s %n", &id, &pid, unit, &off) == 3 && off > 0 &&
			   line[off] == '/' && (sr = saved_find(v, n, id)) && sr->target) {
			if (moved_append(sr, pid, unit, line + off) < 0)
				break;
		} else if (sscanf(line, "origin %d %255s %n", &pid, unit, &off) == 2 && off > 0 && line[off] == '/') {
			if (origins == SIZE_MAX) {
				SavedRule *nv = realloc(v, (n + 1) * sizeof(SavedRule));
				if (!nv)
					break;
				v = nv;
				v[n] = (SavedRule){};
				origins = n++;
			}
			if (moved_append(&v[origins], pid, unit, line + off) < 0)
				break;
		} else if (sscanf(line, "cookie %llu %llu", &id, &x) == 2 && (sr = saved_find(v, n, id)) && sr->target) {
			uint64_t *nc = realloc(sr->cookies, (sr->n_cookies + 1) * sizeof(uint64_t));
			if (!nc)
				break;
			sr->cookies = nc;
			nc[sr->n_cookies++] = x;
		}
	}
	*ret = v;
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
