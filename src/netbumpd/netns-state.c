/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "netlink.h"
#include "netns-state.h"
#include "netns.h"

void netns_state_done(NetnsShaped *s) {
	free(s->reason);
	free(s->via);
	*s = (NetnsShaped){};
}

typedef struct Find {
	int32_t nsid;
	NetnsShaped *ret;
	int r;
} Find;

static void find_cb(const NetnsPath *p, void *userdata) {
	Find *f = userdata;

	if (p->nsid != f->nsid || f->ret->via || f->r < 0)
		return;
	f->ret->shaped = p->up && p->down;
	f->ret->via = strdup(p->name);
	if (!f->ret->via)
		f->r = -ENOMEM;
	else if (!f->ret->shaped &&
		 asprintf(&f->ret->reason, "traffic of network namespace %d via %s is not shaped: %s", (int)p->nsid,
			  p->name, p->why ?: "?") < 0)
		f->r = -ENOMEM;
}

int netns_state_of(Manager *m, const Rule *r, uint64_t netns_ino, pid_t pid, NetnsShaped *ret) {
	_cleanup_close_ int fd = -1;
	char path[64];
	Find f = { .nsid = -1, .ret = ret };
	int e;

	(void)r;
	*ret = (NetnsShaped){};
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return asprintf(&ret->reason,
				"netbumpd cannot enter network namespace net:[%llu] of process %d (%s): its traffic is "
				"not shaped",
				(unsigned long long)netns_ino, (int)pid, strerror(e)) < 0
			       ? -ENOMEM
			       : 0;
	}
	/* Its id here, as the links into it name it (netns.c follows those). */
	if (nl_netns_id(m->nl, fd, &f.nsid) >= 0 && f.nsid >= 0)
		(void)netns_paths(m, find_cb, &f);
	if (f.r < 0)
		return f.r;
	if (ret->via)
		return 0;
	return asprintf(&ret->reason,
			"its processes run in network namespace net:[%llu] (process %d), which has no link into "
			"netbumpd's namespace: its traffic leaves elsewhere and is not shaped; run netbumpd in that "
			"namespace",
			(unsigned long long)netns_ino, (int)pid) < 0
		       ? -ENOMEM
		       : 0;
}
