/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* container: names resolved from fixtures laid out as Docker and Podman
 * keep their state, and their cgroups found by the runtimes' naming. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "macro.h"
#include "tests.h"

#define WEB "3f2a9c0d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
#define DB "3f2b000000000000000000000000000000000000000000000000000000000001"
#define POD "9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877665544"
#define TWIN_D "aaaa000000000000000000000000000000000000000000000000000000000000"
#define TWIN_P "bbbb000000000000000000000000000000000000000000000000000000000000"

static char root[256];

static void mkdirs(const char *rel) {
	char path[1024], *p;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		(void)mkdir(path, 0755);
		*p = '/';
	}
	(void)mkdir(path, 0755);
}

static void write_file(const char *rel, const char *text) {
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "we");
	ASSERT_TRUE(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void docker(const char *id, const char *name) {
	char dir[256], json[512];

	snprintf(dir, sizeof(dir), "var/lib/docker/containers/%s", id);
	mkdirs(dir);
	strcat(dir, "/config.v2.json");
	snprintf(json, sizeof(json), "{\"ID\":\"%s\",\"Name\":\"/%s\",\"State\":{\"Running\":true}}", id, name);
	write_file(dir, json);
}

static int lookup(const char *spec, Container *c, char **why) {
	free(*why);
	*why = NULL;
	container_done(c);
	return container_lookup(root, spec, c, why);
}

int main(void) {
	Container c = {};
	char *why = NULL, *cg = NULL, top[300];

	snprintf(root, sizeof(root), "/tmp/test-container.XXXXXX");
	ASSERT_TRUE(mkdtemp(root) != NULL);

	/* Nothing of either runtime: says so. */
	ASSERT_EQ(lookup("web", &c, &why), -ENOMEDIUM);
	ASSERT_TRUE(why && strstr(why, "var/lib/docker/containers"));

	docker(WEB, "web");
	docker(DB, "db");
	docker(TWIN_D, "twin");
	mkdirs("var/lib/docker/containers/not-an-id");
	mkdirs("var/lib/containers/storage/overlay-containers");
	write_file("var/lib/containers/storage/overlay-containers/containers.json",
		   "[{\"id\":\"" POD "\",\"names\":[\"cache\",\"cache-alias\"],\"image\":\"x\"},"
		   "{\"id\":\"" TWIN_P "\",\"names\":[\"twin\"]},"
		   "{\"id\":\"not hex\",\"names\":[\"evil\"]}]");

	/* By name, each runtime. */
	ASSERT_OK(lookup("web", &c, &why));
	ASSERT_EQ(c.runtime, RUNTIME_DOCKER);
	ASSERT_STREQ(c.id, WEB);
	ASSERT_STREQ(c.name, "web");
	ASSERT_OK(lookup("cache", &c, &why));
	ASSERT_EQ(c.runtime, RUNTIME_PODMAN);
	ASSERT_STREQ(c.id, POD);
	ASSERT_OK(lookup("cache-alias", &c, &why));
	ASSERT_STREQ(c.id, POD);

	/* By full ID and by a unique prefix (Docker's short IDs). */
	ASSERT_OK(lookup(WEB, &c, &why));
	ASSERT_STREQ(c.name, "web");
	ASSERT_OK(lookup("3f2a9c0d5e6f", &c, &why));
	ASSERT_STREQ(c.id, WEB);
	ASSERT_OK(lookup("9d8c", &c, &why));
	ASSERT_EQ(c.runtime, RUNTIME_PODMAN);
	ASSERT_STREQ(c.name, "cache"); /* the first of its names */

	/* A prefix of two IDs, and a name in both runtimes: refused, with the
	 * way out. */
	ASSERT_EQ(lookup("3f2", &c, &why), -ENOTUNIQ);
	ASSERT_TRUE(why && strstr(why, "2 container IDs"));
	ASSERT_EQ(lookup("twin", &c, &why), -ENOTUNIQ);
	ASSERT_TRUE(why && strstr(why, "container:docker:twin"));
	ASSERT_OK(lookup("docker:twin", &c, &why));
	ASSERT_STREQ(c.id, TWIN_D);
	ASSERT_OK(lookup("podman:twin", &c, &why));
	ASSERT_STREQ(c.id, TWIN_P);
	ASSERT_EQ(lookup("podman:web", &c, &why), -ENOENT);
	ASSERT_TRUE(why && strstr(why, "Podman"));
	/* the runtime named has no state at all: said so */
	ASSERT_EQ(lookup("docker:web", &c, &why), 0);

	/* Unknown, and what no runtime writes. */
	ASSERT_EQ(lookup("nosuch", &c, &why), -ENOENT);
	ASSERT_TRUE(why && strstr(why, "nosuch"));
	ASSERT_EQ(lookup("evil", &c, &why), -ENOENT);
	ASSERT_EQ(lookup("not-an-id", &c, &why), -ENOENT);

	/* A name beats an ID prefix that happens to spell it. */
	docker("beef000000000000000000000000000000000000000000000000000000000000", "cafe");
	docker("cafe000000000000000000000000000000000000000000000000000000000000", "other");
	ASSERT_OK(lookup("cafe", &c, &why));
	ASSERT_STREQ(c.name, "cafe");

	/* Cgroups, by each naming, below a root. */
	snprintf(top, sizeof(top), "%s/cg", root);
	mkdirs("cg/system.slice/docker-" WEB ".scope");
	mkdirs("cg/docker/" DB);
	mkdirs("cg/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" POD ".scope/container");
	mkdirs("cg/system.slice/docker-" TWIN_D ".scope.bak");

	ASSERT_OK(lookup("web", &c, &why));
	ASSERT_OK(container_find_cgroup(top, &c, &cg));
	ASSERT_TRUE(strstr(cg, "/cg/system.slice/docker-" WEB ".scope") != NULL);
	free(cg);
	ASSERT_OK(lookup("db", &c, &why));
	ASSERT_OK(container_find_cgroup(top, &c, &cg));
	ASSERT_TRUE(strstr(cg, "/cg/docker/" DB) != NULL);
	free(cg);
	ASSERT_OK(lookup("cache", &c, &why));
	ASSERT_OK(container_find_cgroup(top, &c, &cg));
	ASSERT_TRUE(strstr(cg, "/libpod-" POD ".scope") != NULL && !strstr(cg, "/container"));
	free(cg);
	/* Not running: no cgroup (a look-alike name is not it). */
	ASSERT_OK(lookup("docker:twin", &c, &why));
	ASSERT_EQ(container_find_cgroup(top, &c, &cg), -ENOENT);

	container_done(&c);
	free(why);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		ASSERT_EQ(system(cmd), 0);
	}
	return 0;
}
