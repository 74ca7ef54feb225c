/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's whole request path up to the rules: one message taken from a
 * connection's buffer, checked as a call, its parameters typed, its target
 * parsed, authorised and resolved (request_parse(), src/netbumpd/request.c),
 * and the answer serialized and read back as netbumpctl reads it. No stub:
 * request_parse() needs no netlink, BPF or event loop; it reads /proc (our
 * own process and its parent are the ones the input can name) and the user
 * database.
 *
 * Input: one header byte, then the bytes of the message (to the first NUL).
 *   bits 0-1  the caller: root, our own uid, uid 1000, uid 65534
 * In the message, "$PID" and "$PPID" stand for our PID and our parent's,
 * so that sock:PID:FD reaches real descriptors (a socket is kept open on
 * one of ours).
 * Checked: an accepted request names one method and, when it has a target,
 * a canonical one that parses back to itself and carries no control
 * character; sock:PID:FD from anyone but root resolves only for the
 * process's owner, and is refused alike whatever the descriptor is for any
 * other caller; every refusal has an error name and a UTF-8 reason, and
 * serializes to a reply the client reads back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "proc-util.h"
#include "request.h"
#include "target.h"
#include "utf8.h"
#include "varlink.h"

#define MESSAGE_MAX 4096

static void fail(const char *what, const char *detail) {
	fprintf(stderr, "fuzz-request: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
	abort();
}

static int sock_fd = -1;

/* The message with $PID and $PPID replaced: a new buffer of *len bytes. */
static char *substitute(const uint8_t *data, size_t size, size_t *len) {
	char pid[16], ppid[16];
	char *out = malloc(size * 4 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(ppid, sizeof(ppid), "%d", (int)getppid());
	for (size_t i = 0; i < size;) {
		const char *rep = NULL;
		size_t skip = 0;

		if (size - i >= 5 && memcmp(data + i, "$PPID", 5) == 0)
			rep = ppid, skip = 5;
		else if (size - i >= 4 && memcmp(data + i, "$PID", 4) == 0)
			rep = pid, skip = 4;
		if (rep) {
			memcpy(out + o, rep, strlen(rep));
			o += strlen(rep);
			i += skip;
		} else
			out[o++] = (char)data[i++];
	}
	*len = o;
	return out;
}

static bool is_clean(const char *s) {
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* The answer goes out and is read back whole, as netbumpctl reads it. */
static void round_trip(json_object *msg, const char *error) {
	_cleanup_json_ json_object *back = NULL;
	_cleanup_free_ char *s = NULL;
	json_object *params = NULL;
	const char *e = NULL;
	VarlinkBuffer in;
	size_t len;

	if (!msg)
		return;
	if (vl_serialize(msg, &s, &len) < 0) {
		json_object_put(msg);
		return;
	}
	json_object_put(msg);
	vl_buffer_init(&in, VARLINK_REPLY_MAX);
	if (vl_buffer_feed(&in, s, len) < 0 || vl_buffer_take(&in, &back, NULL) != 1)
		fail("the client cannot read the answer", s);
	vl_buffer_done(&in);
	if (vl_reply_parse(back, &e, &params) < 0 || !e || strcmp(e, error) != 0)
		fail("the answer changed on the way", s);
}

/* What sock:PID:FD in a request asked for, when it did: the owner of PID. */
static bool sock_fd_owner(const char *target, uid_t *ret) {
	_cleanup_(target_done) Target t = {};

	if (!target || target_parse(target, &t, NULL) < 0 || t.kind != TARGET_SOCK || t.resolved)
		return false;
	return proc_get_uid(t.pid, ret) >= 0;
}

static void check(json_object *msg, uid_t caller) {
	_cleanup_(request_done) Request req = {};
	_cleanup_(request_error_done) RequestError e = {};
	json_object *params = NULL, *t = NULL;
	const char *given = NULL;
	uid_t owner;
	int r;

	if (json_object_object_get_ex(msg, "parameters", &params) && json_object_is_type(params, json_type_object) &&
	    json_object_object_get_ex(params, "target", &t) && json_object_is_type(t, json_type_string))
		given = json_object_get_string(t);

	r = request_parse(msg, caller, &req, &e);
	if (r == -ENOMEM)
		return;
	if (r >= 0) {
		_cleanup_(target_done) Target back = {};
		_cleanup_free_ char *again = NULL;

		if (!request_method_name(req.method))
			fail("accepted without a method", NULL);
		if (!!req.target != !!req.canonical || (req.canonical && req.rule.target != req.canonical))
			fail("target and canonical target disagree", req.target);
		if (req.rule.caller != caller)
			fail("the caller changed", NULL);
		if (!req.canonical)
			return;
		/* The canonical name is what rules are keyed by: it must be
		 * one, clean, and resolved. */
		if (!is_clean(req.canonical) || !utf8_is_valid(req.canonical, strlen(req.canonical)))
			fail("canonical target with a control character or bad UTF-8", req.canonical);
		if (target_parse(req.canonical, &back, NULL) < 0)
			fail("canonical target does not parse", req.canonical);
		if ((back.kind == TARGET_SOCK || back.kind == TARGET_USER) && !back.resolved)
			fail("canonical target not resolved", req.canonical);
		again = target_to_string(&back);
		if (again && strcmp(again, req.canonical) != 0)
			fail("canonical target is not canonical", req.canonical);
		/* Resolved a descriptor: only root or the process's owner. */
		if (caller != 0 && sock_fd_owner(given, &owner) && owner != caller)
			fail("resolved another user's descriptor", given);
		return;
	}

	if (!e.error || !e.reason)
		fail("refused without an error name or a reason", e.error);
	if (!utf8_is_valid(e.reason, strlen(e.reason)) || (e.value && !utf8_is_valid(e.value, strlen(e.value))))
		fail("refusal with bad UTF-8", e.reason);
	if (!!e.key != !!e.value)
		fail("refusal names a key without a value or the other way", e.reason);
	/* Another user's descriptor: refused, saying nothing of the fd. */
	if (caller != 0 && e.key && strcmp(e.key, "target") == 0 && sock_fd_owner(given, &owner) && owner != caller &&
	    strcmp(e.error, "io.netbump.Manager.PermissionDenied") != 0 && strncmp(e.reason, "no such process:", 16) != 0)
		fail("another user's descriptor got an answer about it", e.reason);

	json_object *p = json_object_new_object();
	if (p && e.key)
		json_object_object_add(p, e.key, json_object_new_string(e.value));
	if (p)
		json_object_object_add(p, "reason", json_object_new_string(e.reason));
	round_trip(vl_error_new(e.error, p), e.error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static const uid_t callers[] = { 0, (uid_t)-1, 1000, 65534 };
	_cleanup_free_ char *text = NULL;
	json_object *msg = NULL;
	VarlinkBuffer b;
	size_t len;
	uid_t caller;

	if (size < 1 || size > MESSAGE_MAX)
		return 0;
	if (sock_fd < 0) {
		sock_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (sock_fd < 0)
			fail("socket", NULL);
	}
	caller = callers[data[0] & 3];
	if (caller == (uid_t)-1)
		caller = getuid();
	text = substitute(data + 1, size - 1, &len);
	if (!text)
		return 0;

	vl_buffer_init(&b, VARLINK_REQUEST_MAX);
	if (vl_buffer_feed(&b, text, len) < 0 || vl_buffer_feed(&b, "", 1) < 0) {
		vl_buffer_done(&b);
		return 0;
	}
	/* The first message, as the daemon takes it; what it cannot take
	 * is refused before the request path. */
	if (vl_buffer_take(&b, &msg, NULL) == 1) {
		check(msg, caller);
		json_object_put(msg);
	}
	vl_buffer_done(&b);
	return 0;
}
