/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log_struct(): the fields reach the journal when stderr is the journal
 * stream, the text alone goes to stderr otherwise, and a journal that is not
 * there costs nothing but the fields.
 *
 * The journal here is our own: each case runs in a child process with a
 * private mount namespace and a tmpfs on /run, where a datagram socket at
 * /run/systemd/journal/socket stands in for journald (sd_journal_sendv()
 * writes there). Needs root for the namespace; exits 77 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

#define JOURNAL_DIR "/run/systemd/journal"
#define JOURNAL_SOCKET JOURNAL_DIR "/socket"

static unsigned n_passed, n_failed;

_printf_(2, 3) static bool check(bool ok, const char *fmt, ...) {
	va_list ap;

	printf("%s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (ok)
		n_passed++;
	else
		n_failed++;
	return ok;
}

/* What a child saw: its stderr and the journal datagram, if any. */
typedef struct Seen {
	char err[4096];
	char journal[4096];
	size_t journal_len;
} Seen;

/* The private /run with a fake journal socket (bound when with_journal). */
static int fake_journal(bool with_journal) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return -errno;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir(JOURNAL_DIR, 0755) < 0)
		return -errno;
	if (!with_journal)
		return -ENOENT;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, JOURNAL_SOCKET);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/*
 * Runs one log_struct() in a child: stderr into a pipe, $JOURNAL_STREAM
 * naming that pipe (the journal stream) when as_journal_stream, the fake
 * journal bound when with_journal. 0 on success, 77 when the namespace cannot
 * be made.
 */
static int run_case(bool as_journal_stream, bool with_journal, Seen *seen) {
	int errpipe[2], datapipe[2], status;
	pid_t pid;
	ssize_t l;

	memset(seen, 0, sizeof(*seen));
	if (pipe(errpipe) < 0 || pipe(datapipe) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char buf[4096];
		struct stat st;
		int jfd;

		close(errpipe[0]);
		close(datapipe[0]);
		jfd = fake_journal(with_journal);
		if (jfd < 0 && jfd != -ENOENT)
			_exit(77);
		if (dup2(errpipe[1], STDERR_FILENO) < 0 || fstat(STDERR_FILENO, &st) < 0)
			_exit(1);
		if (as_journal_stream) {
			snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
			setenv("JOURNAL_STREAM", buf, 1);
		} else
			unsetenv("JOURNAL_STREAM");
		log_set_prefix("netbumpd");
		log_struct(LOG_NOTICE,
			   LOG_FIELDS({ "RULE", "user@1000" }, { "TARGET", "user@alice" }, { "UID", LOG_UINT(1000) },
				      { "bad name", "x" }, { "_PID", "1" }, { "EMPTY", NULL }),
			   "Rule %s: up %s.", "user@1000", "8mbit");
		fflush(stderr);
		if (jfd >= 0) {
			struct timeval tv = { .tv_sec = 2 };
			setsockopt(jfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			l = recv(jfd, buf, sizeof(buf), MSG_DONTWAIT);
			if (l > 0 && write(datapipe[1], buf, (size_t)l) != l)
				_exit(1);
		}
		_exit(0);
	}
	close(errpipe[1]);
	close(datapipe[1]);
	waitpid(pid, &status, 0);
	l = read(errpipe[0], seen->err, sizeof(seen->err) - 1);
	seen->err[l > 0 ? l : 0] = '\0';
	l = read(datapipe[0], seen->journal, sizeof(seen->journal) - 1);
	seen->journal_len = l > 0 ? (size_t)l : 0;
	seen->journal[seen->journal_len] = '\0';
	close(errpipe[0]);
	close(datapipe[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return 77;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Does the datagram (native protocol: "NAME=value\n" per field) hold this
 * line? */
static bool has_field(const Seen *s, const char *line) {
	size_t l = strlen(line);

	for (const char *p = s->journal; p && p < s->journal + s->journal_len;) {
		const char *e = memchr(p, '\n', (size_t)(s->journal + s->journal_len - p));
		size_t n = e ? (size_t)(e - p) : (size_t)(s->journal + s->journal_len - p);

		if (n == l && memcmp(p, line, l) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

int main(void) {
	Seen s;
	int r;

	if (geteuid() != 0) {
		printf("SKIP: needs root (a private mount namespace for a fake journal)\n");
		return 77;
	}

	/* 1. Not run by systemd: the message on stderr, no fields. */
	r = run_case(false, true, &s);
	if (r == 77) {
		printf("SKIP: cannot make a private mount namespace with a tmpfs on /run\n");
		return 77;
	}
	check(r == 0, "child 1 ran (%d)", r);
	check(streq(s.err, "netbumpd: Rule user@1000: up 8mbit.\n"), "stderr without the journal: plain text (got '%s')",
	      s.err);
	check(s.journal_len == 0, "nothing sent to the journal socket (%zu bytes)", s.journal_len);

	/* 2. stderr is the journal stream: one entry with our fields. */
	r = run_case(true, true, &s);
	check(r == 0, "child 2 ran (%d)", r);
	check(s.err[0] == '\0', "stderr left alone when the journal took the entry (got '%s')", s.err);
	check(has_field(&s, "MESSAGE=Rule user@1000: up 8mbit."), "MESSAGE= is the text");
	check(has_field(&s, "PRIORITY=5"), "PRIORITY=5 (notice)");
	check(has_field(&s, "RULE=user@1000"), "RULE=user@1000");
	check(has_field(&s, "TARGET=user@alice"), "TARGET=user@alice");
	check(has_field(&s, "UID=1000"), "UID=1000");
	check(has_field(&s, "SYSLOG_IDENTIFIER=netbumpd"), "SYSLOG_IDENTIFIER=netbumpd");
	check(!strstr(s.journal, "bad name=") && !strstr(s.journal, "\n_PID=") && !strstr(s.journal, "EMPTY="),
	      "invalid names, trusted (_) names and NULL values are left out");

	/* 3. The journal stream, but no journal socket: the text with its
	 * priority prefix on the stream. */
	r = run_case(true, false, &s);
	check(r == 0, "child 3 ran (%d)", r);
	check(streq(s.err, "<5>Rule user@1000: up 8mbit.\n"), "no journal socket: '<5>' and the text on stderr (got '%s')",
	      s.err);

	printf("%u passed, %u failed\n", n_passed, n_failed);
	return n_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
