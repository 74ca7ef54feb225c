/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bpf/libbpf.h>
#include <errno.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "proc-watch.skel.h"
#include "proc-watch.h"

void proc_watch_start(Manager *m) {
	struct proc_watch_bpf *skel;
	int r;

	if (m->proc_watch)
		return;
	skel = proc_watch_bpf__open();
	if (skel) {
		struct stat st;

		/* A cgroup's id is its directory's inode (kernfs). */
		if (m->cgroup_root_abs && stat(m->cgroup_root_abs, &st) >= 0)
			skel->rodata->nb_root_id = (uint64_t)st.st_ino;
		if (proc_watch_bpf__load(skel) < 0) {
			r = negative_errno();
			proc_watch_bpf__destroy(skel);
			skel = NULL;
			errno = -r;
		}
	}
	if (!skel) {
		r = negative_errno();
		log_info_errno(r, "Cannot load the process watcher (%m): a rule's network namespaces are looked up "
				  "anew on every List.");
		return;
	}
	r = proc_watch_bpf__attach(skel);
	if (r < 0 || !skel->bss) {
		log_info_errno(r < 0 ? r : -ENOTSUP,
			       "Cannot attach the process watcher (%m): a rule's network namespaces are looked up "
			       "anew on every List.");
		proc_watch_bpf__destroy(skel);
		return;
	}
	m->proc_watch = skel;
}

void proc_watch_stop(Manager *m) {
	if (!m->proc_watch)
		return;
	proc_watch_bpf__destroy(m->proc_watch);
	m->proc_watch = NULL;
}

bool proc_watch_gen(Manager *m, uint64_t *ret) {
	if (!m->proc_watch)
		return false;
	*ret = __atomic_load_n(&m->proc_watch->bss->nb_proc_gen, __ATOMIC_ACQUIRE);
	return true;
}
