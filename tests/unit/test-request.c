/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request path before the rules (src/netbumpd/request.c), without
 * root: parameters typed, strings refused, targets resolved to their
 * canonical names, and sock:PID:FD authorised before the descriptor is
 * looked at. Our own process stands for "the caller's", its parent (run as
 * the same uid here) is compared with a caller of another uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "request.h"
#include "tests.h"
#include "varlink.h"

typedef struct Outcome {
	int r;
	Request req;
	RequestError e;
} Outcome;

static json_object *message(const char *text) {
	VarlinkBuffer b;
	json_object *m = NULL;

	vl_buffer_init(&b, VARLINK_REQUEST_MAX);
	ASSERT_OK(vl_buffer_feed(&b, text, strlen(text) + 1));
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
	vl_buffer_done(&b);
	return m;
}

/* request_parse() on text for caller; the message stays in *ret_msg. */
static Outcome parse(const char *text, uid_t caller, json_object **ret_msg) {
	Outcome o = {};

	*ret_msg = message(text);
	o.r = request_parse(*ret_msg, caller, &o.req, &o.e);
	return o;
}

static void done(Outcome *o, json_object *m) {
	request_done(&o->req);
	request_error_done(&o->e);
	json_object_put(m);
}

static void expect_error(const char *text, uid_t caller, const char *error, const char *key, const char *value,
			 const char *reason_part) {
	json_object *m;
	Outcome o = parse(text, caller, &m);

	if (o.r >= 0 || !o.e.error || strcmp(o.e.error, error) != 0 || (key && (!o.e.key || strcmp(o.e.key, key) != 0)) ||
	    (value && (!o.e.value || strcmp(o.e.value, value) != 0)) ||
	    (reason_part && (!o.e.reason || !strstr(o.e.reason, reason_part)))) {
		fprintf(stderr, "%s\n  as uid %u: r=%d error=%s key=%s value=%s reason=%s\n  expected %s %s=%s '%s'\n",
			text, (unsigned)caller, o.r, o.e.error ?: "-", o.e.key ?: "-", o.e.value ?: "-",
			o.e.reason ?: "-", error, key ?: "-", value ?: "-", reason_part ?: "-");
		exit(EXIT_FAILURE);
	}
	done(&o, m);
}

static void expect_canonical(const char *text, uid_t caller, RequestMethod method, const char *canonical) {
	json_object *m;
	Outcome o = parse(text, caller, &m);

	if (o.r < 0) {
		fprintf(stderr, "%s\n  as uid %u refused: %s %s\n", text, (unsigned)caller, o.e.error ?: "-", o.e.reason ?: "-");
		exit(EXIT_FAILURE);
	}
	ASSERT_EQ(o.req.method, method);
	if (canonical) {
		ASSERT_STREQ(o.req.canonical, canonical);
		ASSERT_TRUE(o.req.rule.target == o.req.canonical);
	} else
		ASSERT_TRUE(!o.req.canonical);
	ASSERT_EQ(o.req.rule.caller, caller);
	done(&o, m);
}

int main(void) {
	char text[512], want[64];
	uid_t me = getuid(), other = me == 1000 ? 1001 : 1000;
	struct stat st;
	json_object *m;
	Outcome o;
	int sv[2], devnull;

	/* methods, parameters and their types */
	expect_canonical("{\"method\":\"io.netbump.Manager.Status\"}", me, REQUEST_STATUS, NULL);
	expect_canonical("{\"method\":\"io.netbump.Manager.List\"}", me, REQUEST_LIST, NULL);
	expect_canonical("{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":\"cgroup:/a//b/\"}}", me,
			 REQUEST_LIST, "cgroup:/a/b");
	expect_canonical("{\"method\":\"io.netbump.Manager.Unset\",\"parameters\":{\"target\":\"user@root\"}}", me,
			 REQUEST_UNSET, "user@0");
	expect_error("{\"method\":\"io.netbump.Manager.Nope\"}", me, "org.varlink.service.MethodNotFound", "method",
		     "io.netbump.Manager.Nope", NULL);
	expect_error("{\"method\":\"io.netbump.Manager.Status\",\"parameters\":{\"x\":1}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "x", "unknown parameter");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"up\":1}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "target", "missing");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"up\":-1}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "up", "non-negative");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"priority\":\"top\"}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "priority", NULL);
	expect_error("{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":7}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "target", "not a string");
	expect_error("{\"method\":\"io.netbump.Manager.Unset\",\"parameters\":{\"target\":\"cgroup:/x\\n<0>y\"}}", me,
		     "io.netbump.Manager.InvalidParameter", "target", "cgroup:/x\n<0>y", "control character");

	/* a Set, typed */
	o = parse("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"user@0\",\"up\":8000000,"
		  "\"min_down\":0,\"priority\":\"low\",\"transient\":true}}",
		  me, &m);
	ASSERT_OK(o.r);
	ASSERT_TRUE(o.req.rule.has_up && o.req.rule.up_bps == 8000000 && !o.req.rule.has_down);
	ASSERT_TRUE(o.req.rule.has_min_down && o.req.rule.min_down == 0);
	ASSERT_TRUE(o.req.rule.has_priority && o.req.rule.priority == PRIORITY_LOW && o.req.rule.transient);
	ASSERT_STREQ(o.req.rule.target, "user@0");
	done(&o, m);

	/* --remote: canonical, refused naming the word; deny/allow need one and take no rate */
	o = parse("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"up\":8000000,"
		  "\"remote\":\"internet,fd18::/64,198.18.0.0/15,198.18.0.0/15\"}}",
		  me, &m);
	ASSERT_OK(o.r);
	ASSERT_STREQ(o.req.rule.remote, "198.18.0.0/15,fd18::/64,internet");
	ASSERT_EQ(o.req.access, 0);
	done(&o, m);
	o = parse("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"access\":\"deny\","
		  "\"remote\":\"198.18.0.1\"}}",
		  me, &m);
	ASSERT_OK(o.r);
	ASSERT_EQ(o.req.access, REQUEST_DENY);
	ASSERT_STREQ(o.req.remote, "198.18.0.1/32");
	done(&o, m);
	expect_canonical("{\"method\":\"io.netbump.Manager.Unset\",\"parameters\":{\"target\":\"all\",\"remote\":\"lan\"}}", me,
			 REQUEST_UNSET, "all");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"up\":1,\"remote\":\"198.18.0.1/15\"}}",
		     me, "io.netbump.Manager.InvalidParameter", "remote", "198.18.0.1/15", "host bits set");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"up\":1,\"remote\":\"\"}}",
		     me, "io.netbump.Manager.InvalidParameter", "remote", "", "empty scope");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"up\":1,\"remote\":5}}",
		     me, "org.varlink.service.InvalidParameter", "parameter", "remote", "not a string");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"access\":\"deny\"}}",
		     me, "org.varlink.service.InvalidParameter", "parameter", "access", "need a scope");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"access\":\"deny\","
		     "\"remote\":\"lan\",\"up\":1}}",
		     me, "org.varlink.service.InvalidParameter", "parameter", "up", "no rate");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"all\",\"access\":\"block\","
		     "\"remote\":\"lan\"}}",
		     me, "org.varlink.service.InvalidParameter", "parameter", "access", NULL);

	/* strings that are not UTF-8 or hold NUL, in any method, named */
	expect_error("{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":\"all\\u0000\"}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "target", "NUL");
	expect_error("{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"cgroup:/\xff\"}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "target", "UTF-8");
	expect_error("{\"method\":\"io.netbump.Manager.Status\",\"parameters\":{\"a\":[\"\\u0000\"]}}", me,
		     "org.varlink.service.InvalidParameter", "parameter", "a[0]", "NUL");

	/* sock:PID:FD: our own socket resolves to its inode for us (and for
	 * root) */
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_OK(fstat(sv[0], &st));
	snprintf(want, sizeof(want), "sock:%llu", (unsigned long long)st.st_ino);
	snprintf(text, sizeof(text), "{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":\"sock:%d:%d\"}}",
		 (int)getpid(), sv[0]);
	expect_canonical(text, me, REQUEST_LIST, want);
	expect_canonical(text, 0, REQUEST_LIST, want);

	/* ... another uid gets not-owner, the same for a socket, another
	 * file and a descriptor not open: nothing is read */
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_OK(devnull);
	{
		const int fds[] = { sv[0], devnull, 4000 };
		char *first = NULL;

		for (size_t k = 0; k < ELEMENTSOF(fds); k++) {
			snprintf(text, sizeof(text),
				 "{\"method\":\"io.netbump.Manager.Set\",\"parameters\":{\"target\":\"sock:%d:%d\",\"up\":8000}}",
				 (int)getpid(), fds[k]);
			o = parse(text, other, &m);
			ASSERT_EQ(o.r, -EPERM);
			ASSERT_STREQ(o.e.error, "io.netbump.Manager.PermissionDenied");
			ASSERT_TRUE(strstr(o.e.reason, "not-owner") != NULL);
			ASSERT_STREQ(o.e.key, "target");
			if (!first)
				first = strdup(o.e.reason);
			else
				ASSERT_STREQ(o.e.reason, first);
			done(&o, m);
		}
		free(first);
	}
	/* ... for us: a file that is no socket, a descriptor not open */
	snprintf(text, sizeof(text), "{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":\"sock:%d:%d\"}}",
		 (int)getpid(), devnull);
	expect_error(text, me, "io.netbump.Manager.TargetNotFound", "target", NULL, "not a socket");
	snprintf(text, sizeof(text), "{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":\"sock:%d:4000\"}}",
		 (int)getpid());
	expect_error(text, me, "io.netbump.Manager.TargetNotFound", "target", NULL, "no fd 4000");
	/* ... a process that does not exist: not found, for anyone */
	expect_error("{\"method\":\"io.netbump.Manager.List\",\"parameters\":{\"target\":\"sock:2147483646:3\"}}", other,
		     "io.netbump.Manager.TargetNotFound", "target", NULL, "no such process");
	close(devnull);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
