/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The process watcher (bpf/proc-watch.bpf.c): its count moves when a process
 * under the root moves in, is forked into another network namespace or
 * runs a program in another network namespace than its parent's, and not
 * for the same outside the root. Root needed (77 otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "proc-watch.skel.h"

#define CHECK(expr)                                                                                 \
	do {                                                                                        \
		if (!(expr)) {                                                                      \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr); \
			ret = 1;                                                                    \
			goto out;                                                                   \
		}                                                                                   \
	} while (0)

static char mnt[1024], in[1200], out_cg[1200];
static struct proc_watch_bpf *skel;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int cgroup2_mount(void) {
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char root[1024], m[1024], fstype[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, m) == 2 && strcmp(root, "/") == 0) {
			snprintf(mnt, sizeof(mnt), "%s", m);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

static void enter(const char *cg) {
	char fn[1300], pid[32];
	int fd;

	snprintf(fn, sizeof(fn), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	fd = open(fn, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
		_exit(3);
	close(fd);
}

static unsigned long long gen(void) {
	return __atomic_load_n(&skel->bss->nb_proc_gen, __ATOMIC_ACQUIRE);
}

/* A child that enters cg, waits for a byte on fd, then does what how says:
 * 'x' runs `unshare -n true` (a program in a new network namespace), 'c'
 * forks a child into a new network namespace with clone(2). */
static pid_t child(const char *cg, int fd, char how) {
	pid_t pid = fork();
	char c;

	if (pid != 0)
		return pid;
	enter(cg);
	if (read(fd, &c, 1) != 1)
		_exit(4);
	if (how == 'x') {
		execl("/usr/bin/unshare", "unshare", "-n", "true", (char *)NULL);
		_exit(5);
	}
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0)
		_exit(0);
	_exit(pid > 0 && waitpid(pid, NULL, 0) == pid ? 0 : 6);
}

static int wait_exit(pid_t pid) {
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits a moment for the child to be where it should, by the count or a
 * look at its cgroup. */
static void settle(void) {
	usleep(200 * 1000);
}

int main(void) {
	unsigned long long g;
	struct stat st;
	int ret = 0, p[2] = { -1, -1 };
	pid_t pid;

	if (geteuid() != 0) {
		fprintf(stderr, "needs root\n");
		return 77;
	}
	libbpf_set_print(quiet);
	if (cgroup2_mount() < 0) {
		fprintf(stderr, "no cgroup2\n");
		return 77;
	}
	snprintf(in, sizeof(in), "%s/nb-proc-watch-in.%d", mnt, getpid());
	snprintf(out_cg, sizeof(out_cg), "%s/nb-proc-watch-out.%d", mnt, getpid());
	if (mkdir(in, 0755) < 0 || mkdir(out_cg, 0755) < 0 || stat(in, &st) < 0) {
		perror("mkdir");
		ret = 1;
		goto out;
	}
	skel = proc_watch_bpf__open();
	if (!skel) {
		ret = 77;
		goto out;
	}
	skel->rodata->nb_root_id = st.st_ino;
	if (proc_watch_bpf__load(skel) < 0 || proc_watch_bpf__attach(skel) < 0) {
		fprintf(stderr, "cannot load or attach the watcher: %s\n", strerror(errno));
		ret = 77;
		goto out;
	}

	/* Outside the root: a move, a program in a new namespace, a fork
	 * into one: none counts. */
	for (const char *how = "xc"; *how; how++) {
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		g = gen();
		pid = child(out_cg, p[0], *how);
		settle();
		CHECK(write(p[1], "", 1) == 1);
		CHECK(wait_exit(pid) == 0);
		CHECK(gen() == g);
		close(p[0]);
		close(p[1]);
	}
	/* Inside: the move counts, and then each of them. */
	for (const char *how = "xc"; *how; how++) {
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		g = gen();
		pid = child(in, p[0], *how);
		settle();
		CHECK(gen() >= g + 1);
		g = gen();
		CHECK(write(p[1], "", 1) == 1);
		CHECK(wait_exit(pid) == 0);
		CHECK(gen() >= g + 1);
		close(p[0]);
		close(p[1]);
	}
	printf("ok: count %llu\n", gen());
out:
	proc_watch_bpf__destroy(skel);
	if (in[0])
		rmdir(in);
	if (out_cg[0])
		rmdir(out_cg);
	return ret;
}
