/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bpf/libbpf.h>
#include <errno.h>
#include <unistd.h>

#include "macro.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"
#include "proc-util.h"
#include "sock-fd.h"
#include "sock-find.h"

int sock_find_fd(Manager *m, pid_t pid, int fd, struct sock_info *ret) {
	_cleanup_close_ int sfd = -1;
	struct nb_sk_tag tag = {};
	struct sock_info si;
	int r;

	r = sock_fd_take(pid, fd, &sfd);
	if (r < 0)
		return r;
	r = sock_fd_info(sfd, &si);
	if (r < 0)
		return r;
	/* sk_storage maps take a socket descriptor as the key from user
	 * space (bpf_fd_sk_storage_lookup_elem()). */
	if (m->skel && bpf_map__lookup_elem(m->skel->maps.sk_tags, &sfd, sizeof(sfd), &tag, sizeof(tag), 0) >= 0 &&
	    (tag.level != 0 || tag.cgroup[0] != 0))
		si.cgroup_id = tag.cgroup[tag.level < NB_MAX_DEPTH ? tag.level : NB_MAX_DEPTH - 1];
	*ret = si;
	return 0;
}

int sock_find_inode(Manager *m, uint64_t inode, pid_t pid, int fd, struct sock_info *ret) {
	struct sock_info si;
	int r = -ENOENT;

	if (pid > 0 && fd >= 0) {
		r = sock_find_fd(m, pid, fd, &si);
		if (r >= 0 && si.inode != inode)
			r = -ENOENT; /* that fd holds another socket now */
	}
	if (r < 0) {
		r = proc_find_socket(inode, &pid, &fd);
		if (r < 0)
			return r;
		r = sock_find_fd(m, pid, fd, &si);
		if (r >= 0 && si.inode != inode)
			r = -ENOENT;
	}
	if (r < 0)
		return r;
	*ret = si;
	return 0;
}
