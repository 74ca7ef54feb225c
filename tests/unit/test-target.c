/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "macro.h"
#include "target.h"
#include "tests.h"

static void ok(const char *s, const char *canonical) {
	Target t;
	const char *reason = NULL;
	char *c;

	if (target_parse(s, &t, &reason) < 0) {
		fprintf(stderr, "target_parse(\"%s\") failed: %s\n", s, reason);
		exit(EXIT_FAILURE);
	}
	c = target_to_string(&t);
	ASSERT_STREQ(c, canonical);
	free(c);
	target_done(&t);
}

static void bad(const char *s) {
	Target t = { .kind = TARGET_USER, .uid = 4242 };
	const char *reason = NULL;

	if (target_parse(s, &t, &reason) != -EINVAL || !reason || !*reason || t.uid != 4242) {
		fprintf(stderr, "target_parse(\"%s\") accepted or gave no reason\n", s);
		exit(EXIT_FAILURE);
	}
}

/* A valid unit name that has no cgroup: refused as not limitable. */
static void not_limitable(const char *s) {
	Target t = { .kind = TARGET_USER, .uid = 4242 };
	const char *reason = NULL;

	if (target_parse(s, &t, &reason) != -EOPNOTSUPP || !reason || !*reason || t.uid != 4242) {
		fprintf(stderr, "target_parse(\"%s\") did not say it cannot be limited\n", s);
		exit(EXIT_FAILURE);
	}
}

int main(void) {
	ok("cgroup:/", "cgroup:/");
	ok("cgroup:/a", "cgroup:/a");
	ok("cgroup:/a/b/", "cgroup:/a/b");
	ok("cgroup://a//b", "cgroup:/a/b");
	ok("cgroup:/system.slice/backup.service", "cgroup:/system.slice/backup.service");
	ok("cgroup:/a b/..c", "cgroup:/a b/..c");
	ok("user@0", "user@0");
	ok("user@1000", "user@1000");
	ok("user@4294967294", "user@4294967294");
	ok("user@alice", "user@alice"); /* unresolved keeps the name */
	ok("pid:1", "pid:1");
	ok("pid:2147483647", "pid:2147483647");
	ok("sock:12345", "sock:12345");
	ok("sock:18446744073709551615", "sock:18446744073709551615");
	ok("sock:42:0", "sock:42:0");
	ok("sock:42:7", "sock:42:7");
	ok("unit:backup.service", "unit:backup.service");
	ok("unit:getty@tty1.service", "unit:getty@tty1.service");
	ok("unit:user-1000.slice", "unit:user-1000.slice");
	ok("unit:run-u12.scope", "unit:run-u12.scope");
	ok("unit:dev-disk-by\\x2duuid.swap", "unit:dev-disk-by\\x2duuid.swap");
	ok("all", "all");

	bad("");
	bad("cgroup");
	bad("cgroup:");
	bad("cgroup:a/b");
	bad("cgroup:/a/../b");
	bad("cgroup:/a/./b");
	bad("cgroup:/a\nb");
	bad("cgroup:/a\x1b[31mb");
	bad("cgroup:/a\xc2\x9b" "31mb"); /* C1: CSI */
	bad("cgroup:/a\xff" "b");   /* not UTF-8 */
	bad("user@");
	bad("user@-1");
	bad("user@4294967295");
	bad("user@99999999999999999999");
	bad("user@12ab");
	bad("user@007");
	bad("user@a/b");
	bad("user@al ice");
	bad("pig:1");
	bad("Cgroup:/a");
	bad("/a/b");
	bad("pid:");
	bad("pid:0");
	bad("pid:-1");
	bad("pid:012");
	bad("pid:2147483648");
	bad("pid:12x");
	bad("pid:1 ");
	bad("sock:");
	bad("sock:0");
	bad("sock:18446744073709551616");
	bad("sock:1:");
	bad("sock:1:x");
	bad("sock:1:00");
	bad("sock:1:-1");
	bad("sock:2147483648:1");
	bad("sock:1:2:3");
	bad("socket:[123]");
	bad("unit:");
	ok("machine:web-1", "machine:web-1");
	ok("container:web", "container:web");
	ok("container:3f2a9c", "container:3f2a9c");
	ok("container:docker:web", "container:docker:web");
	ok("container:podman:web.v2", "container:podman:web.v2");
	bad("machine:");
	bad("machine:-x");
	bad("machine:a/b");
	bad("machine:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	bad("container:");
	bad("container:lxc:web");
	bad("container:docker:");
	bad("container:we b");
	bad("container:'x'");
	/* as systemctl: a name without a unit suffix is a service */
	ok("unit:backup", "unit:backup.service");
	ok("unit:getty@tty1", "unit:getty@tty1.service");
	ok("unit:my.app", "unit:my.app.service");
	not_limitable("unit:backup.timer");
	not_limitable("unit:multi-user.target");
	not_limitable("unit:backup.path");
	not_limitable("unit:dev-sda.device");
	not_limitable("unit:getty@.service");
	not_limitable("unit:getty@");
	bad("unit:a b.service");
	bad("unit:a/b.service");
	bad("unit:.service");
	/* "all" is one word, not a kind with something after it */
	bad("all:");
	bad("all:/");
	bad("ALL");
	bad("All");
	bad("all ");
	bad(" all");
	bad("alll");
	bad("al");
	bad("all@0");

	/* exe: an absolute path, "//" and a trailing '/' tidied; "." and
	 * ".." are left to realpath(3) in target_resolve() */
	ok("exe:/usr/bin/rsync", "exe:/usr/bin/rsync");
	ok("exe://usr//bin/rsync/", "exe:/usr/bin/rsync");
	ok("exe:/opt/a b/run", "exe:/opt/a b/run");
	ok("exe:/usr/bin/../bin/rsync", "exe:/usr/bin/../bin/rsync");
	bad("exe:");
	bad("exe:rsync");
	bad("exe:./rsync");
	bad("exe:~/bin/rsync");
	bad("exe:/");
	bad("exe://");
	bad("exe:/usr/bin/a\nb");
	bad("exe:/usr/bin/a\x1b[31mb");
	bad("exe:/usr/bin/a\xc2\x9b" "31mb");
	bad("exe:/usr/bin/a\xff" "b");
	bad("Exe:/usr/bin/rsync");
	{
		Target t;
		const char *why = NULL;
		ASSERT_OK(target_parse("exe:/usr/bin/../bin//sh", &t, &why));
		ASSERT_OK(target_resolve(&t));
		char *real = realpath("/usr/bin/sh", NULL);
		ASSERT_STREQ(t.exe, real);
		free(real);
		target_done(&t);
		/* a path that does not resolve (a file gone) stays as given */
		ASSERT_OK(target_parse("exe:/nonexistent/dir/prog", &t, &why));
		ASSERT_OK(target_resolve(&t));
		ASSERT_STREQ(t.exe, "/nonexistent/dir/prog");
		target_done(&t);
	}

	/* Kinds by name, as List's "kind" has them. */
	{
		static const struct {
			const char *target, *kind;
		} kinds[] = {
			{ "cgroup:/a", "cgroup" },
			{ "user@0", "user" },
			{ "pid:1", "pid" },
			{ "sock:1", "sock" },
			{ "unit:a.service", "unit" },
			{ "machine:a", "machine" },
			{ "container:a", "container" },
			{ "exe:/bin/true", "exe" },
			{ "all", "all" },
		};
		Target t;

		ASSERT_EQ(ELEMENTSOF(kinds), (size_t)_TARGET_KIND_MAX);
		for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
			ASSERT_OK(target_parse(kinds[k].target, &t, NULL));
			ASSERT_STREQ(target_kind_to_string(t.kind), kinds[k].kind);
			target_done(&t);
		}
		ASSERT_EQ(TARGET_ALL, _TARGET_KIND_MAX - 1);
		ASSERT_TRUE(target_kind_to_string(_TARGET_KIND_MAX) == NULL);
	}

	/* Resolution: root exists everywhere, a random name does not. */
	{
		Target t;
		ASSERT_OK(target_parse("user@root", &t, NULL));
		ASSERT_OK(target_resolve(&t));
		ASSERT_EQ(t.uid, 0);
		char *c = target_to_string(&t);
		ASSERT_STREQ(c, "user@0");
		free(c);
		target_done(&t);

		ASSERT_OK(target_parse("user@no-such-user-netbump", &t, NULL));
		ASSERT_EQ(target_resolve(&t), -ENOENT);
		target_done(&t);
	}

	{
		char big[TARGET_PATH_MAX + 16] = "cgroup:/";
		memset(big + 8, 'a', TARGET_PATH_MAX);
		big[TARGET_PATH_MAX + 8] = '\0';
		bad(big);
	}
	return 0;
}
