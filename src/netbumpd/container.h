/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * container.c: Docker and Podman containers by name, ID or unique ID
 * prefix, found the way the runtimes themselves keep them, without their
 * daemons (none need run: Podman has none):
 *
 *   name -> ID   Docker: ROOT/var/lib/docker/containers/<id>/config.v2.json,
 *                "ID" and "Name" ("/web").
 *                Podman (as root): ROOT/var/lib/containers/storage/
 *                overlay-containers/containers.json, containers/storage's
 *                list of {"id", "names": [...]} (podman's own bolt or
 *                sqlite database is not read: the storage list has the same
 *                names and IDs).
 *   ID -> cgroup the runtime's naming: docker-<id>.scope (systemd cgroup
 *                driver, system.slice), docker/<id> (cgroupfs driver),
 *                libpod-<id>.scope (machine.slice, or a user's slice when
 *                rootless), looked for below a cgroup root.
 *
 * ROOT is "/" but for tests (netbumpd --container-state-root). Rootless
 * Podman's name list (~/.local/share/containers) is not read: such a
 * container is named by its ID, whose cgroup is found all the same.
 */
#pragma once

#include <stddef.h>

typedef enum ContainerRuntime {
	RUNTIME_ANY, /* in a spec: whichever knows the name */
	RUNTIME_DOCKER,
	RUNTIME_PODMAN,
} ContainerRuntime;

#define CONTAINER_ID_MAX 64

typedef struct Container {
	ContainerRuntime runtime;
	char id[CONTAINER_ID_MAX + 1]; /* lower-case hex */
	char *name;                    /* without Docker's leading '/'; NULL: none known */
} Container;

const char *container_runtime_to_string(ContainerRuntime r);

/* Finds the container spec names ("web", "docker:web", "podman:3f2a",
 * a full ID or a unique prefix of one) under root. -ENOENT (no such
 * container), -ENOTUNIQ (a prefix or a name of two), -ENOMEDIUM (neither
 * runtime's state is there), with *ret_reason saying so in words. */
int container_lookup(const char *root, const char *spec, Container *ret, char **ret_reason);

/* The cgroup of the container below the directory top (absolute), at most
 * a few levels down: its absolute path, -ENOENT when there is none (not
 * running). */
int container_find_cgroup(const char *top, const Container *c, char **ret);

void container_done(Container *c);
