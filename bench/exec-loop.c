/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tight fork+exec loop: forks, the child execs this program again (which
 * exits at once), the parent waits; as many times as fit in SECONDS.
 * Prints "EXECS SECONDS CPU_SECONDS" on stdout: the CPU time is the loop's
 * and its children's (user and system), which other load on the machine
 * disturbs less than the wall clock. bench/exec.sh runs it.
 *
 *   exec-loop SECONDS
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	char self[4096];
	double secs, t0, t;
	unsigned long n = 0;
	ssize_t l;

	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return 0;
	secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;
	if (!(secs > 0 && secs < 3600)) {
		fprintf(stderr, "usage: exec-loop SECONDS\n");
		return 2;
	}
	l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (l < 0) {
		perror("readlink /proc/self/exe");
		return 1;
	}
	self[l] = '\0';
	t0 = now();
	do {
		int status;
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			execl(self, self, "--child", (char *)NULL);
			_exit(127);
		}
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "child failed\n");
			return 1;
		}
		n++;
		t = now();
	} while (t - t0 < secs);
	struct rusage own, kids;
	getrusage(RUSAGE_SELF, &own);
	getrusage(RUSAGE_CHILDREN, &kids);
	double cpu = (double)(own.ru_utime.tv_sec + own.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
		     (double)(own.ru_utime.tv_usec + own.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
	printf("%lu %.6f %.6f\n", n, t - t0, cpu);
	return 0;
}
