/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bpf.c: the BPF object: loading, pinning, and the rule maps. */
#pragma once

#include "manager.h"

struct bpf_program;
struct bpf_link;

int manager_bpf_load(Manager *m);
/* The cgroup link of prog at cgfd, pinned under name ("link_connect4"):
 * the killed run's pinned link taken over (now running prog), else a new
 * one, pinned. A clean stop removes the pin (manager_bpf_unload()). NULL
 * with errno when it cannot be attached. */
struct bpf_link *manager_bpf_link_attach(Manager *m, struct bpf_program *prog, int cgfd, const char *name);
void manager_bpf_unload(Manager *m);
int manager_bpf_set_rule(Manager *m, const Rule *r);
int manager_bpf_del_rule(Manager *m, const Rule *r);
int manager_bpf_set_iface(Manager *m, const Iface *i);
int manager_bpf_del_iface(Manager *m, uint32_t ifindex);
void manager_bpf_bump_gen(Manager *m);
/* sock_rules; the caller bumps the generation */
int manager_bpf_set_sock(Manager *m, uint64_t cookie, uint32_t minor, uint32_t flags);
int manager_bpf_del_sock(Manager *m, uint64_t cookie);
/* Deletes the map entries no rule has (a killed run's, taken over). */
void manager_bpf_prune(Manager *m);
