/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One netbumpd per network namespace: a second taker is refused and told
 * who holds the namespace; the name is free again once the holder is gone
 * (SIGKILL included). In a network namespace of the test's own (root), so
 * that nothing else's abstract names are in the way. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns-lock.h"
#include "tests.h"

static Manager *manager(void) {
	Manager *m = calloc(1, sizeof(Manager));

	ASSERT_TRUE(m != NULL);
	m->netns_lock_fd = -1;
	m->socket_path = (char *)"/run/test/netbumpd.sock";
	m->state_dir = (char *)"/run/test";
	return m;
}

int main(void) {
	int ready[2];
	pid_t holder;
	char c, *who = NULL;
	Manager *m;

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "no network namespace of its own (%s): skipped\n", strerror(errno));
		return EXIT_TEST_SKIP;
	}
	ASSERT_EQ(pipe(ready), 0);
	holder = fork();
	ASSERT_TRUE(holder >= 0);
	if (holder == 0) {
		m = manager();
		ASSERT_EQ(sd_event_new(&m->event), 0);
		ASSERT_EQ(netns_lock_take(m, NULL), 0);
		ASSERT_EQ(netns_lock_serve(m), 0);
		ASSERT_EQ(write(ready[1], "x", 1), 1);
		for (;;)
			(void)sd_event_run(m->event, (uint64_t)-1);
	}
	ASSERT_EQ(read(ready[0], &c, 1), 1);

	m = manager();
	ASSERT_EQ(netns_lock_take(m, &who), -EADDRINUSE);
	ASSERT_TRUE(who != NULL);
	fprintf(stderr, "holder: %s\n", who);
	{
		char pid[32];
		snprintf(pid, sizeof(pid), "pid %d,", (int)holder);
		ASSERT_TRUE(strstr(who, pid) != NULL);
	}
	ASSERT_TRUE(strstr(who, "socket /run/test/netbumpd.sock, state directory /run/test") != NULL);
	ASSERT_EQ(m->netns_lock_fd, -1);
	free(who);

	/* Killed: the name goes with it. */
	ASSERT_EQ(kill(holder, SIGKILL), 0);
	ASSERT_EQ(waitpid(holder, NULL, 0), holder);
	ASSERT_EQ(netns_lock_take(m, NULL), 0);
	ASSERT_TRUE(m->netns_lock_fd >= 0);
	netns_lock_release(m);
	ASSERT_EQ(m->netns_lock_fd, -1);
	free(m);
	return 0;
}
