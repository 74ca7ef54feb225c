/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * A count of the events after which the network namespaces a cgroup's
 * processes run in may differ (src/netbumpd/proc-watch.h): a process moved
 * between cgroups, one forked into another cgroup (clone3
 * CLONE_INTO_CGROUP) or another network namespace (CLONE_NEWNET), a program
 * started in another network namespace than its parent's. Each bumps
 * nb_proc_gen after the change is made, so that user space, reading the
 * count before it looks at a cgroup, sees any change it may have missed.
 * Neither cgroup.events (only "populated" changes) nor inotify
 * (cgroup.procs is not notified) says when a second process comes in or
 * one changes namespace. Exits are not counted: they only take namespaces
 * away, which user space checks by the process it remembered for each.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

volatile __u64 nb_proc_gen;

/* The id of the daemon's cgroup root, 0: none given. Only events of
 * processes there count, so that a busy host's other processes do not keep
 * emptying the cache. Ids are the same in every cgroup namespace. */
const volatile __u64 nb_root_id;

extern struct cgroup *bpf_cgroup_from_id(__u64 cgid) __ksym;
extern void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
extern long bpf_task_under_cgroup(struct task_struct *task, struct cgroup *ancestor) __ksym;

/* Whether task is in the root or below it; when in doubt, yes. */
static __always_inline int under_root(struct task_struct *task)
{
	struct cgroup *root;
	long r;

	if (!nb_root_id)
		return 1;
	root = bpf_cgroup_from_id(nb_root_id);
	if (!root)
		return 1;
	r = bpf_task_under_cgroup(task, root);
	bpf_cgroup_release(root);
	return r != 0;
}

static __always_inline void bump(void)
{
	__sync_fetch_and_add(&nb_proc_gen, 1);
}

/* After cgroup_migrate() moved the task (kernel/cgroup/cgroup.c,
 * cgroup_attach_task()): every write to cgroup.procs or cgroup.threads. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(nb_watch_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	if (under_root(task))
		bump();
	return 0;
}

/* Once copy_process() has put the child in its cgroup and namespaces. A
 * child shares its parent's css_set unless it was forked into another
 * cgroup; a thread or a plain fork costs two compares. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(nb_watch_fork, struct task_struct *parent, struct task_struct *child)
{
	if ((child->cgroups != parent->cgroups || child->nsproxy->net_ns != parent->nsproxy->net_ns) &&
	    under_root(child))
		bump();
	return 0;
}

/* A program run in another network namespace than its parent's: how
 * `ip netns exec`, nsenter(1) and unshare(1) start a command after setns(2)
 * or unshare(2). Those two calls have no tracepoint of their own, fentry
 * and kprobes are not on every kernel, and syscall tracing would tax every
 * system call: a process that changes namespace without exec or fork is
 * seen only by the age limit of paths-cache.h. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(nb_watch_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (p->nsproxy->net_ns != p->real_parent->nsproxy->net_ns && under_root(p))
		bump();
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
