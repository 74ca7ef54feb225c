/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "netns-state.h"

void netns_state_done(NetnsState *s) {
	free(s->reason);
	free(s->via);
	*s = (NetnsState){};
}

/* Weak: the data path for other namespaces replaces it with its own. */
__attribute__((weak)) int netns_state_of(Manager *m, const Rule *r, uint64_t netns_ino, pid_t pid, NetnsState *ret) {
	char path[64];
	int fd, r_;

	*ret = (NetnsState){};
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r_ = errno;
		return asprintf(&ret->reason,
				"netbumpd cannot enter network namespace net:[%llu] of process %d (%s): its traffic is "
				"not shaped",
				(unsigned long long)netns_ino, (int)pid, strerror(r_)) < 0
			       ? -ENOMEM
			       : 0;
	}
	close(fd);
	return asprintf(&ret->reason,
			"its processes run in network namespace net:[%llu] (process %d): that traffic reaches this "
			"namespace forwarded, without a socket, and this netbumpd does not shape it; run netbumpd in "
			"that namespace, or limit the container's interface here",
			(unsigned long long)netns_ino, (int)pid) < 0
		       ? -ENOMEM
		       : 0;
}
