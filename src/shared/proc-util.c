/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /proc readers (fds, children, stat, status) and pidfd helpers. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "proc-util.h"

/* "/proc/" or "task/" plus a pid plus "/children": 64 bytes hold any of
 * the paths we format, for every int. */
#define PROC_PATH_MAX 64

/* A socket link is "socket:[N]" with N < 2^64: 30 bytes. A longer link
 * text is a path, whatever it starts with. */
#define SOCKET_LINK_MAX 64

/* /proc/PID/stat is one line of ~52 numbers plus a comm of at most 64 bytes
 * (kernel worker names); 4 KiB leaves room for decades of new fields. */
#define STAT_MAX 4096

static void closedirp(DIR **d) {
	if (*d)
		closedir(*d);
}

/* ---- numbers ---- */

/* Decimal digits at s up to max: no sign, no blanks, no leading zero (the
 * kernel never prints one), no overflow. Stops at the first non-digit,
 * which the caller checks through ret_end. */
static int parse_decimal(const char *s, uint64_t max, const char **ret_end, uint64_t *ret) {
	const char *p = s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned) (*p - '0');

		if (v > (max - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	*ret_end = p;
	*ret = v;
	return 0;
}

/* A whole string that is a pid (1 ... INT_MAX). */
static int parse_pid(const char *s, pid_t *ret) {
	const char *end;
	uint64_t v;
	int r;

	r = parse_decimal(s, INT_MAX, &end, &v);
	if (r < 0)
		return r;
	if (*end != '\0' || v == 0)
		return -EINVAL;
	*ret = (pid_t) v;
	return 0;
}

/* ---- /proc/PID ---- */

/* The errno of a failed lookup below /proc/PID: the directory's entries
 * vanish (ENOENT) when the process dies, even through an fd opened before. */
static int proc_negative_errno(void) {
	return errno == ENOENT ? -ESRCH : negative_errno();
}

/* An O_PATH fd on /proc/PID. Lookups through it keep meaning this process:
 * once it is reaped they fail with ENOENT even if the pid is reused. */
static int proc_open_pid(pid_t pid) {
	char path[PROC_PATH_MAX];
	int fd;

	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d", (int) pid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return proc_negative_errno();
	return fd;
}

/* Opens dir_fd/path read-only as a stdio stream. */
static int fopen_at(int dir_fd, const char *path, FILE **ret) {
	int fd;
	FILE *f;

	fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	f = fdopen(fd, "re");
	if (!f) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	*ret = f;
	return 0;
}

/* Reads all of dir_fd/path (at most size - 1 bytes, -EFBIG beyond) into
 * buf and NUL-terminates it. */
static int read_small_file_at(int dir_fd, const char *path, char *buf, size_t size) {
	_cleanup_close_ int fd = -1;
	size_t n = 0;

	fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	for (;;) {
		ssize_t k;

		if (n == size - 1) {
			char extra;

			/* Full: fine only if that was the end. */
			k = read(fd, &extra, 1);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return negative_errno();
			if (k > 0)
				return -EFBIG;
			break;
		}
		k = read(fd, buf + n, size - 1 - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (k == 0)
			break;
		n += (size_t) k;
	}
	buf[n] = '\0';
	return 0;
}

/* /proc/PID/stat reads "pid (comm) S ppid ...". comm is whatever the process
 * put there with prctl(PR_SET_NAME), blanks and parentheses included, but
 * nothing after it can contain ')', so the fields start after the last one. */
static int parse_stat(const char *stat, char *ret_state, pid_t *ret_ppid) {
	const char *p, *end;
	uint64_t v;

	p = strrchr(stat, ')');
	if (!p)
		return -EBADMSG;
	/* ") S " with a one-letter state. */
	if (p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
		return -EBADMSG;
	if (parse_decimal(p + 4, INT_MAX, &end, &v) < 0 || *end != ' ')
		return -EBADMSG;
	*ret_state = p[2];
	*ret_ppid = (pid_t) v;
	return 0;
}

static int read_stat_at(int dir_fd, const char *path, char *ret_state, pid_t *ret_ppid) {
	char buf[STAT_MAX];
	int r;

	r = read_small_file_at(dir_fd, path, buf, sizeof(buf));
	if (r < 0)
		return r;
	return parse_stat(buf, ret_state, ret_ppid);
}

/* Whether the process behind /proc/PID has exited and waits to be reaped:
 * its /proc entries then belong to root (task_dump_owner() finds no mm), so
 * an unprivileged reader gets EACCES where it would find no fds. */
static bool proc_is_zombie(int pfd) {
	char state;
	pid_t ppid;

	return read_stat_at(pfd, "stat", &state, &ppid) >= 0 && (state == 'Z' || state == 'X');
}

/* ---- sockets ---- */

static int parse_socket_link(const char *link, uint64_t *ret) {
	static const char prefix[] = "socket:[";
	const char *end;
	uint64_t v;
	int r;

	/* Other fds read "pipe:[N]", "anon_inode:[eventfd]" or an absolute
	 * path; a file named "socket:[1]" still shows as "/dir/socket:[1]". */
	if (strncmp(link, prefix, sizeof(prefix) - 1) != 0)
		return -ENOTSOCK;
	r = parse_decimal(link + sizeof(prefix) - 1, UINT64_MAX, &end, &v);
	if (r < 0 || end[0] != ']' || end[1] != '\0' || v == 0)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int read_socket_link(int dir_fd, const char *path, uint64_t *ret) {
	char link[SOCKET_LINK_MAX];
	ssize_t n;

	n = readlinkat(dir_fd, path, link, sizeof(link));
	if (n < 0)
		return negative_errno();
	/* readlink() truncates silently: a full buffer is a long path. */
	if ((size_t) n >= sizeof(link))
		return -ENOTSOCK;
	link[n] = '\0';
	return parse_socket_link(link, ret);
}

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

int proc_socket_inodes(pid_t pid, uint64_t **ret, size_t *ret_n) {
	_cleanup_free_ ProcSocketFd *v = NULL;
	_cleanup_free_ uint64_t *inodes = NULL;
	size_t n = 0, k;
	int r;

	if (!ret || !ret_n)
		return -EINVAL;
	r = proc_socket_fds(pid, &v, &n);
	if (r < 0)
		return r;
	if (n > 0) {
		inodes = calloc(n, sizeof(*inodes));
		if (!inodes)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		inodes[i] = v[i].inode;

	/* One entry per socket, however many fds (dup(), SCM_RIGHTS) hold it. */
	if (n > 1) {
		qsort(inodes, n, sizeof(*inodes), cmp_u64);
		k = 1;
		for (size_t i = 1; i < n; i++)
			if (inodes[i] != inodes[k - 1])
				inodes[k++] = inodes[i];
		n = k;
	}

	*ret = n > 0 ? TAKE_PTR(inodes) : NULL;
	*ret_n = n;
	return 0;
}

int proc_fd_socket_inode(pid_t pid, int fd, uint64_t *ret) {
	_cleanup_close_ int pfd = -1;
	char path[PROC_PATH_MAX];
	uint64_t inode;
	int r;

	if (!ret)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;

	pfd = proc_open_pid(pid);
	if (pfd < 0)
		return pfd;
	snprintf(path, sizeof(path), "fd/%d", fd);
	r = read_socket_link(pfd, path, &inode);
	if (r == -EACCES && proc_is_zombie(pfd))
		return -EBADF;
	if (r == -ENOENT) {
		/* Either that fd is not open or the whole process is gone. */
		if (faccessat(pfd, "fd", F_OK, 0) < 0)
			return proc_negative_errno();
		return -EBADF;
	}
	if (r < 0)
		return r;
	*ret = inode;
	return 0;
}

int proc_socket_fds(pid_t pid, ProcSocketFd **ret, size_t *ret_n) {
	_cleanup_close_ int pfd = -1;
	_cleanup_(closedirp) DIR *dir = NULL;
	_cleanup_free_ ProcSocketFd *v = NULL;
	size_t n = 0, cap = 0;
	int fd, r;

	if (!ret || !ret_n)
		return -EINVAL;
	pfd = proc_open_pid(pid);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && proc_is_zombie(pfd)) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (fd < 0)
		return proc_negative_errno();
	dir = fdopendir(fd);
	if (!dir) {
		r = negative_errno();
		close(fd);
		return r;
	}
	for (;;) {
		struct dirent *de;
		uint64_t inode, num;
		const char *end;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno != 0)
				return proc_negative_errno();
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		if (parse_decimal(de->d_name, INT_MAX, &end, &num) < 0 || *end != '\0')
			continue;
		r = read_socket_link(dirfd(dir), de->d_name, &inode);
		if (r == -ENOTSOCK || r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			ProcSocketFd *p = reallocarray(v, c, sizeof(*v));

			if (!p)
				return -ENOMEM;
			v = p;
			cap = c;
		}
		v[n++] = (ProcSocketFd){ .fd = (int) num, .inode = inode };
	}
	*ret = n > 0 ? TAKE_PTR(v) : NULL;
	*ret_n = n;
	return 0;
}

int proc_fd_of_socket(pid_t pid, uint64_t inode, int *ret_fd) {
	_cleanup_free_ ProcSocketFd *v = NULL;
	size_t n = 0;
	int r;

	if (!ret_fd || inode == 0)
		return -EINVAL;
	r = proc_socket_fds(pid, &v, &n);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n; k++)
		if (v[k].inode == inode) {
			*ret_fd = v[k].fd;
			return 0;
		}
	return -ENOENT;
}

int proc_find_socket(uint64_t inode, pid_t *ret_pid, int *ret_fd) {
	_cleanup_(closedirp) DIR *dir = NULL;
	int denied = 0;

	if (!ret_pid || !ret_fd || inode == 0)
		return -EINVAL;
	dir = opendir("/proc");
	if (!dir)
		return negative_errno();
	for (;;) {
		struct dirent *de;
		const char *end;
		uint64_t pid;
		int fd, r;

		errno = 0;
		de = readdir(dir);
		if (!de)
			return errno != 0 ? negative_errno() : denied ? denied : -ENOENT;
		if (parse_decimal(de->d_name, INT_MAX, &end, &pid) < 0 || *end != '\0' || pid == 0)
			continue;
		r = proc_fd_of_socket((pid_t) pid, inode, &fd);
		if (r == -EACCES || r == -EPERM)
			denied = r;
		if (r < 0)
			continue;
		*ret_pid = (pid_t) pid;
		*ret_fd = fd;
		return 0;
	}
}

/* ---- stat and status ---- */

int proc_get_ppid(pid_t pid, pid_t *ret) {
	_cleanup_close_ int pfd = -1;
	char state;
	pid_t ppid;
	int r;

	if (!ret)
		return -EINVAL;
	pfd = proc_open_pid(pid);
	if (pfd < 0)
		return pfd;
	r = read_stat_at(pfd, "stat", &state, &ppid);
	if (r == -ENOENT || r == -ESRCH)
		return -ESRCH;
	if (r < 0)
		return r;
	*ret = ppid;
	return 0;
}

int proc_get_uid(pid_t pid, uid_t *ret) {
	_cleanup_close_ int pfd = -1;
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t size = 0;
	int r;

	if (!ret)
		return -EINVAL;
	pfd = proc_open_pid(pid);
	if (pfd < 0)
		return pfd;
	r = fopen_at(pfd, "status", &f);
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;

	errno = 0;
	while (getline(&line, &size, f) > 0) {
		const char *p, *end;
		uint64_t v;

		/* "Uid:\t<real>\t<effective>\t<saved>\t<fs>\n" */
		if (strncmp(line, "Uid:", 4) != 0)
			continue;
		p = line + 4;
		while (*p == '\t' || *p == ' ')
			p++;
		/* (uid_t) -1 means "no uid" to every syscall, and /proc shows
		 * unmapped ids as the overflow uid, never as -1. */
		r = parse_decimal(p, UINT32_MAX - 1, &end, &v);
		if (r < 0)
			return r == -ERANGE ? -ERANGE : -EBADMSG;
		if (*end != '\t' && *end != ' ' && *end != '\n')
			return -EBADMSG;
		*ret = (uid_t) v;
		return 0;
	}
	if (ferror(f))
		return errno == ESRCH || errno == ENOENT ? -ESRCH : (errno > 0 ? -errno : -EIO);
	return -EBADMSG;
}

/* ---- descendants ---- */

/* Pids already collected: an open-addressing hash set (0 marks a free slot;
 * pids are > 0), so that a pid cannot be added twice even if /proc, read
 * over time while pids are reused, shows a loop. */
struct pid_set {
	pid_t *slots;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

static size_t pid_hash(pid_t pid, size_t cap) {
	/* Knuth's multiplicative hash spreads consecutive pids. */
	return ((uint32_t) pid * UINT32_C(2654435761)) & (cap - 1);
}

static void pid_set_insert_new(pid_t *slots, size_t cap, pid_t pid) {
	size_t i = pid_hash(pid, cap);

	while (slots[i] != 0)
		i = (i + 1) & (cap - 1);
	slots[i] = pid;
}

/* 1 when added, 0 when already there, -ENOMEM. */
static int pid_set_put(struct pid_set *s, pid_t pid) {
	size_t i;

	/* Keep the load under one half so probes stay short. */
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		pid_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (size_t j = 0; j < s->cap; j++)
			if (s->slots[j] != 0)
				pid_set_insert_new(slots, cap, s->slots[j]);
		free(s->slots);
		s->slots = slots;
		s->cap = cap;
	}

	for (i = pid_hash(pid, s->cap); s->slots[i] != 0; i = (i + 1) & (s->cap - 1))
		if (s->slots[i] == pid)
			return 0;
	s->slots[i] = pid;
	s->n++;
	return 1;
}

struct pid_list {
	pid_t *pids;
	size_t n;
	size_t cap;
	struct pid_set seen;
};

static void pid_list_done(struct pid_list *l) {
	free(l->pids);
	free(l->seen.slots);
}

/* Appends pid unless it is there already; -E2BIG past the limit. */
static int pid_list_add(struct pid_list *l, pid_t pid) {
	int r;

	r = pid_set_put(&l->seen, pid);
	if (r <= 0)
		return r;
	if (l->n >= PROC_DESCENDANTS_MAX)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 16;
		pid_t *p = reallocarray(l->pids, c, sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->pids = p;
		l->cap = c;
	}
	l->pids[l->n++] = pid;
	return 1;
}

/* Adds the pids of one children file ("1 2 3 ": each followed by a blank). */
static int add_children_file(struct pid_list *l, int dir_fd, const char *path) {
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *tok = NULL;
	size_t size = 0;
	ssize_t k;
	int r;

	r = fopen_at(dir_fd, path, &f);
	/* That thread exited since we listed it. */
	if (r == -ENOENT || r == -ESRCH)
		return 0;
	if (r < 0)
		return r;

	errno = 0;
	while ((k = getdelim(&tok, &size, ' ', f)) > 0) {
		pid_t child;

		while (k > 0 && (tok[k - 1] == ' ' || tok[k - 1] == '\n'))
			tok[--k] = '\0';
		if (k == 0)
			continue;
		if (parse_pid(tok, &child) < 0)
			return -EBADMSG;
		r = pid_list_add(l, child);
		if (r < 0)
			return r;
	}
	if (ferror(f) && errno != ESRCH && errno != ENOENT)
		return errno > 0 ? -errno : -EIO;
	return 0;
}

/* Adds the children of every thread of pid: a child hangs off the thread
 * that forked it (its real_parent), not off the thread group leader. */
static int add_children_of(struct pid_list *l, pid_t pid) {
	_cleanup_close_ int pfd = -1;
	_cleanup_(closedirp) DIR *dir = NULL;
	int fd, r;

	pfd = proc_open_pid(pid);
	/* Gone: its children went to a subreaper or init, out of our tree. */
	if (pfd == -ESRCH)
		return 0;
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : negative_errno();
	dir = fdopendir(fd);
	if (!dir) {
		r = negative_errno();
		close(fd);
		return r;
	}

	for (;;) {
		char path[PROC_PATH_MAX];
		struct dirent *de;
		pid_t tid;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno != 0 && errno != ENOENT)
				return negative_errno();
			return 0;
		}
		if (parse_pid(de->d_name, &tid) < 0)
			continue;
		snprintf(path, sizeof(path), "%d/children", (int) tid);
		r = add_children_file(l, dirfd(dir), path);
		if (r < 0)
			return r;
	}
}

struct proc_entry {
	pid_t pid;
	pid_t ppid;
};

static int cmp_entry_ppid(const void *a, const void *b) {
	const struct proc_entry *x = a, *y = b;

	return x->ppid < y->ppid ? -1 : x->ppid > y->ppid;
}

/* Every process's (pid, ppid), sorted by ppid. */
static int scan_ppids(struct proc_entry **ret, size_t *ret_n) {
	_cleanup_(closedirp) DIR *dir = NULL;
	_cleanup_free_ struct proc_entry *entries = NULL;
	size_t n = 0, cap = 0;

	dir = opendir("/proc");
	if (!dir)
		return negative_errno();

	for (;;) {
		char path[PROC_PATH_MAX];
		struct dirent *de;
		pid_t pid, ppid;
		char state;
		int r;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno != 0)
				return negative_errno();
			break;
		}
		/* Only processes are listed; threads hide below task/. */
		if (parse_pid(de->d_name, &pid) < 0)
			continue;
		snprintf(path, sizeof(path), "%d/stat", (int) pid);
		r = read_stat_at(dirfd(dir), path, &state, &ppid);
		/* Exited since readdir(). */
		if (r == -ENOENT || r == -ESRCH)
			continue;
		if (r < 0)
			return r;

		if (n == cap) {
			size_t c = cap ? cap * 2 : 256;
			struct proc_entry *p = reallocarray(entries, c, sizeof(*p));

			if (!p)
				return -ENOMEM;
			entries = p;
			cap = c;
		}
		entries[n++] = (struct proc_entry) { .pid = pid, .ppid = ppid };
	}

	qsort(entries, n, sizeof(*entries), cmp_entry_ppid);
	*ret = TAKE_PTR(entries);
	*ret_n = n;
	return 0;
}

/* Adds every entry whose ppid is pid; entries are sorted by ppid. */
static int add_entries_of(struct pid_list *l, const struct proc_entry *entries, size_t n, pid_t pid) {
	size_t lo = 0, hi = n;

	/* The first entry with ppid >= pid. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (entries[mid].ppid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < n && entries[i].ppid == pid; i++) {
		int r = pid_list_add(l, entries[i].pid);

		if (r < 0)
			return r;
	}
	return 0;
}

static int descendants(pid_t pid, bool use_children_files, pid_t **ret, size_t *ret_n) {
	_cleanup_(pid_list_done) struct pid_list l = {};
	_cleanup_free_ struct proc_entry *entries = NULL;
	_cleanup_close_ int pfd = -1;
	size_t n_entries = 0;
	int r;

	if (!ret || !ret_n)
		return -EINVAL;

	/* The root must exist; what vanishes below it later is just gone. */
	pfd = proc_open_pid(pid);
	if (pfd < 0)
		return pfd;

	if (!use_children_files) {
		r = scan_ppids(&entries, &n_entries);
		if (r < 0)
			return r;
	}

	r = pid_list_add(&l, pid);
	if (r < 0)
		return r;
	/* Breadth first: l.n grows while we walk it. */
	for (size_t i = 0; i < l.n; i++) {
		if (use_children_files)
			r = add_children_of(&l, l.pids[i]);
		else
			r = add_entries_of(&l, entries, n_entries, l.pids[i]);
		if (r < 0)
			return r;
	}

	*ret = TAKE_PTR(l.pids);
	*ret_n = l.n;
	return 0;
}

int proc_descendants(pid_t pid, pid_t **ret, size_t *ret_n) {
	/* The children files need CONFIG_PROC_CHILDREN (Linux 3.5; proc(5)). */
	bool have_children = access("/proc/thread-self/children", F_OK) >= 0;

	return descendants(pid, have_children, ret, ret_n);
}

int proc_descendants_by_stat(pid_t pid, pid_t **ret, size_t *ret_n) {
	return descendants(pid, false, ret, ret_n);
}

/* ---- pidfd ---- */

int pidfd_open_pid(pid_t pid, int *ret_fd) {
	int fd;

	if (pid <= 0 || !ret_fd)
		return -EINVAL;
#ifdef SYS_pidfd_open
	fd = (int) syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return negative_errno();
	*ret_fd = fd;
	return 0;
#else
	(void) fd;
	return -ENOSYS;
#endif
}

int pidfd_is_alive(int pidfd) {
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	if (pidfd < 0)
		return -EBADF;

#ifdef SYS_pidfd_send_signal
	/* Signal 0 checks that the fd is a pidfd (-EBADF otherwise: any other
	 * fd would poll readable and pass for an exited process) and whether
	 * the process is still there. EPERM: it is, but not ours to signal. */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
		if (errno == ESRCH)
			return 0;
		if (errno != EPERM)
			return negative_errno();
	}
#endif

	/* A zombie still takes signals; the pidfd polls readable once the
	 * process has exited, before it is reaped (pidfd_poll()). */
	for (;;) {
		if (poll(&p, 1, 0) >= 0)
			break;
		if (errno != EINTR)
			return negative_errno();
	}
	if (p.revents & POLLNVAL)
		return -EBADF;
	if (p.revents & (POLLIN | POLLHUP))
		return 0;
	return 1;
}
