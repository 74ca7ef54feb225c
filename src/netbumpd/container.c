/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"
#include "macro.h"

#define DOCKER_DIR "var/lib/docker/containers"
#define PODMAN_LIST "var/lib/containers/storage/overlay-containers/containers.json"
/* The depth below the cgroup root where a container's cgroup may be:
 * /system.slice/docker-ID.scope is 2, a rootless Podman's
 * /user.slice/user-1000.slice/user@1000.service/user.slice/libpod-ID.scope 5. */
#define CGROUP_DEPTH_MAX 6
/* Containers read at most: a bound on the work of one lookup. */
#define CONTAINERS_MAX 65536

const char *container_runtime_to_string(ContainerRuntime r) {
	return r == RUNTIME_DOCKER ? "docker" : r == RUNTIME_PODMAN ? "podman" : "any";
}

void container_done(Container *c) {
	if (!c)
		return;
	free(c->name);
	*c = (Container){};
}

static bool is_hex_id(const char *s, size_t max) {
	size_t n = 0;

	for (; *s; s++, n++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return n > 0 && n <= max;
}

/* What the search found so far. */
typedef struct Found {
	const char *want;  /* the name or ID prefix */
	bool by_name_only; /* want is not hex: names only */
	Container hit;     /* by name: exact; wins over ID prefixes */
	bool have_name_hit;
	Container prefix;  /* by ID prefix */
	unsigned n_prefix;
	unsigned n_name;
	bool any_state;    /* some runtime's state was there */
} Found;

static int consider(Found *f, ContainerRuntime rt, const char *id, const char *name) {
	if (!is_hex_id(id, CONTAINER_ID_MAX))
		return 0; /* not what a runtime writes: skipped */
	if (name && name[0] == '/')
		name++;
	if (name && streq(name, f->want)) {
		f->n_name++;
		if (!f->have_name_hit) {
			f->hit.runtime = rt;
			snprintf(f->hit.id, sizeof(f->hit.id), "%s", id);
			f->hit.name = strdup(name);
			if (!f->hit.name)
				return -ENOMEM;
			f->have_name_hit = true;
		}
		return 0;
	}
	if (!f->by_name_only && strncmp(id, f->want, strlen(f->want)) == 0) {
		f->n_prefix++;
		if (f->n_prefix == 1) {
			f->prefix.runtime = rt;
			snprintf(f->prefix.id, sizeof(f->prefix.id), "%s", id);
			f->prefix.name = name ? strdup(name) : NULL;
			if (name && !f->prefix.name)
				return -ENOMEM;
		}
	}
	return 0;
}

static int docker_scan(const char *root, Found *f) {
	_cleanup_free_ char *dir = NULL;
	struct dirent *de;
	unsigned n = 0;
	DIR *d;
	int r = 0;

	if (asprintf(&dir, "%s/" DOCKER_DIR, streq(root, "/") ? "" : root) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return 0;
	f->any_state = true;
	while (r >= 0 && (de = readdir(d)) && n++ < CONTAINERS_MAX) {
		_cleanup_free_ char *cfg = NULL;
		json_object *o, *name = NULL, *id = NULL;

		if (de->d_name[0] == '.' || !is_hex_id(de->d_name, CONTAINER_ID_MAX))
			continue;
		if (asprintf(&cfg, "%s/%s/config.v2.json", dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		o = json_object_from_file(cfg);
		if (!o) {
			/* A container being created has its directory first:
			 * known by its ID all the same. */
			r = consider(f, RUNTIME_DOCKER, de->d_name, NULL);
			continue;
		}
		json_object_object_get_ex(o, "Name", &name);
		json_object_object_get_ex(o, "ID", &id);
		/* The directory is named by the ID; a config that says
		 * otherwise is not believed. */
		if (!id || streq(json_object_get_string(id), de->d_name))
			r = consider(f, RUNTIME_DOCKER, de->d_name,
				     name && json_object_is_type(name, json_type_string) ? json_object_get_string(name)
											  : NULL);
		json_object_put(o);
	}
	closedir(d);
	return r;
}

static int podman_scan(const char *root, Found *f) {
	_cleanup_free_ char *path = NULL;
	json_object *list;
	size_t n;
	int r = 0;

	if (asprintf(&path, "%s/" PODMAN_LIST, streq(root, "/") ? "" : root) < 0)
		return -ENOMEM;
	list = json_object_from_file(path);
	if (!list)
		return 0;
	f->any_state = true;
	n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
	for (size_t k = 0; r >= 0 && k < n && k < CONTAINERS_MAX; k++) {
		json_object *c = json_object_array_get_idx(list, k), *id = NULL, *names = NULL;
		size_t nn;

		if (!json_object_object_get_ex(c, "id", &id) || !json_object_is_type(id, json_type_string))
			continue;
		json_object_object_get_ex(c, "names", &names);
		nn = names && json_object_is_type(names, json_type_array) ? json_object_array_length(names) : 0;
		if (nn == 0)
			r = consider(f, RUNTIME_PODMAN, json_object_get_string(id), NULL);
		/* One entry per name: a name matches, and the ID prefix is
		 * counted once. */
		for (size_t j = 0; r >= 0 && j < nn; j++) {
			json_object *nm = json_object_array_get_idx(names, j);
			unsigned before = f->n_prefix;

			if (!json_object_is_type(nm, json_type_string))
				continue;
			r = consider(f, RUNTIME_PODMAN, json_object_get_string(id), json_object_get_string(nm));
			if (j > 0 && f->n_prefix > before)
				f->n_prefix = before;
		}
	}
	json_object_put(list);
	return r;
}

int container_lookup(const char *root, const char *spec, Container *ret, char **ret_reason) {
	ContainerRuntime want_rt = RUNTIME_ANY;
	Found f = {};
	int r = 0;

	if (strncmp(spec, "docker:", 7) == 0) {
		want_rt = RUNTIME_DOCKER;
		spec += 7;
	} else if (strncmp(spec, "podman:", 7) == 0) {
		want_rt = RUNTIME_PODMAN;
		spec += 7;
	}
	f.want = spec;
	f.by_name_only = !is_hex_id(spec, CONTAINER_ID_MAX);

	if (want_rt != RUNTIME_PODMAN)
		r = docker_scan(root, &f);
	if (r >= 0 && want_rt != RUNTIME_DOCKER)
		r = podman_scan(root, &f);
	if (r < 0)
		goto done;

	if (!f.any_state) {
		const char *r0 = streq(root, "/") ? "" : root;

		r = -ENOMEDIUM;
		if (want_rt == RUNTIME_DOCKER)
			(void)asprintf(ret_reason, "Docker's state is not here (no %s/%s)", r0, DOCKER_DIR);
		else if (want_rt == RUNTIME_PODMAN)
			(void)asprintf(ret_reason,
				       "Podman's state is not here (no %s/%s; rootless Podman containers are named by "
				       "their ID)",
				       r0, PODMAN_LIST);
		else
			(void)asprintf(ret_reason,
				       "no container runtime's state here: neither %s/%s (Docker) nor %s/%s (Podman as "
				       "root) exists; rootless Podman containers are named by their ID",
				       r0, DOCKER_DIR, r0, PODMAN_LIST);
	} else if (f.n_name > 1) {
		r = -ENOTUNIQ;
		(void)asprintf(ret_reason, "%s names a Docker and a Podman container: say container:docker:%s or "
					   "container:podman:%s", spec, spec, spec);
	} else if (f.have_name_hit) {
		*ret = f.hit;
		f.hit = (Container){};
		r = 0;
	} else if (f.n_prefix > 1) {
		r = -ENOTUNIQ;
		(void)asprintf(ret_reason, "%s is the beginning of %u container IDs: give more of it", spec, f.n_prefix);
	} else if (f.n_prefix == 1) {
		*ret = f.prefix;
		f.prefix = (Container){};
		r = 0;
	} else {
		r = -ENOENT;
		(void)asprintf(ret_reason, "no %s container is named %s or has an ID starting with it",
			       want_rt == RUNTIME_ANY ? "Docker or Podman" : want_rt == RUNTIME_DOCKER ? "Docker" : "Podman",
			       spec);
	}
done:
	container_done(&f.hit);
	container_done(&f.prefix);
	return r;
}

/* Whether a directory called name in a directory called parent is the
 * container's cgroup. */
static bool cgroup_name_matches(const Container *c, const char *parent, const char *name) {
	char want[CONTAINER_ID_MAX + 32];

	if (c->runtime == RUNTIME_DOCKER) {
		snprintf(want, sizeof(want), "docker-%s.scope", c->id);
		if (streq(name, want))
			return true;
		return streq(parent, "docker") && streq(name, c->id);
	}
	snprintf(want, sizeof(want), "libpod-%s.scope", c->id);
	return streq(name, want);
}

static int walk(const char *dir, const char *base, const Container *c, unsigned depth, char **ret) {
	struct dirent *de;
	DIR *d;
	int r = -ENOENT;

	if (depth > CGROUP_DEPTH_MAX)
		return -ENOENT;
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (r == -ENOENT && (de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		if (cgroup_name_matches(c, base, de->d_name)) {
			*ret = TAKE_PTR(sub);
			r = 0;
		} else
			r = walk(sub, de->d_name, c, depth + 1, ret);
	}
	closedir(d);
	return r;
}

int container_find_cgroup(const char *top, const Container *c, char **ret) {
	const char *base = strrchr(top, '/');

	return walk(top, base ? base + 1 : top, c, 1, ret);
}
