/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state file records what a run created that the next run could not
 * recognize by its marks alone: the clsact qdiscs we added (a clsact looks
 * the same whoever made it). It is replaced atomically (write a temporary
 * file, rename it over), so a SIGKILL at any instant leaves either the old or
 * the new version, never a torn one.
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

int manager_state_save(Manager *m) {
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
	/* Processes we moved, and where from: after a crash they go back. */
	for (Rule *r = m->rules; r; r = r->next)
		for (size_t k = 0; k < r->n_moved; k++)
			fprintf(f, "moved %d %s\n", (int)r->moved[k].pid, r->moved[k].from);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
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

void manager_state_remove(Manager *m) {
	_cleanup_free_ char *path = state_path(m, ""), *tmp = state_path(m, ".tmp");

	if (path)
		(void)unlink(path);
	if (tmp)
		(void)unlink(tmp);
}

int manager_state_load_moved(Manager *m, Moved **ret, size_t *ret_n) {
	_cleanup_free_ char *path = state_path(m, ""), *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	Moved *v = NULL;
	size_t n = 0, cap = 0;

	if (!path)
		return -ENOMEM;
	*ret = NULL;
	*ret_n = 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : negative_errno();
	while (getline(&line, &cap, f) > 0) {
		int pid, off = 0;
		size_t l;

		if (sscanf(line, "moved %d %n", &pid, &off) != 1 || off == 0 || pid <= 0 || line[off] != '/')
			continue;
		l = strlen(line + off);
		if (l > 0 && line[off + l - 1] == '\n')
			line[off + l - 1] = '\0';
		Moved *nv = realloc(v, (n + 1) * sizeof(Moved));
		if (!nv)
			break;
		v = nv;
		v[n].pid = pid;
		v[n].from = strdup(line + off);
		if (!v[n].from)
			break;
		n++;
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
