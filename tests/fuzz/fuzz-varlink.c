/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's request path on arbitrary bytes: a connection's input buffer
 * is fed in chunks, every complete message is taken, checked as a call and
 * answered, and every answer is serialized and read back the way netbumpctl
 * reads it. What the daemon sends must be exactly what the client reads.
 *
 * Input: one header byte, then the bytes the peer sends.
 *   bits 0-2  the buffer's max: 64 << n bytes (64 .. 8192), small so that
 *             "message too long" is reached as easily as a complete message
 *   bit 3     read the bytes through a pipe with vl_buffer_fill(), as the
 *             daemon does, instead of vl_buffer_feed()
 *   bits 4-7  seed for the chunk sizes (1 .. 160 bytes)
 * A violated invariant aborts: a finding.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "utf8.h"
#include "varlink.h"

#define CHUNK_MAX 160

static void fail(const char *what, int r) {
	fprintf(stderr, "fuzz-varlink: %s (%d)\n", what, r);
	abort();
}

static void check_buffer(const VarlinkBuffer *b) {
	if (b->size > b->max || b->size > b->allocated || (b->allocated > 0 && !b->data))
		fail("buffer bookkeeping broken", (int)b->size);
}

/* Serializes an answer and reads it back as netbumpctl does: one message, a
 * well-formed reply with the error we sent, the same bytes once re-serialized. */
static void send_answer(json_object *msg, const char *error) {
	_cleanup_json_ json_object *back = NULL;
	_cleanup_free_ char *s = NULL, *s2 = NULL;
	json_object *params = NULL, *extra = NULL;
	const char *e = NULL;
	VarlinkBuffer in;
	size_t len, len2;
	int r;

	if (!msg)
		return; /* out of memory */
	r = vl_serialize(msg, &s, &len);
	if (r < 0) {
		json_object_put(msg);
		return;
	}
	if (len == 0 || s[len - 1] != '\0' || memchr(s, '\0', len - 1))
		fail("serialized message is not one NUL-terminated message", (int)len);

	vl_buffer_init(&in, VARLINK_REPLY_MAX);
	r = vl_buffer_feed(&in, s, len);
	if (r < 0)
		fail("client cannot buffer the reply", r);
	r = vl_buffer_take(&in, &back, NULL);
	if (r != 1)
		fail("client cannot take the reply", r);
	if (vl_buffer_take(&in, &extra, NULL) != 0 || in.size != 0)
		fail("reply leaves bytes behind", (int)in.size);
	vl_buffer_done(&in);

	r = vl_reply_parse(back, &e, &params);
	if (r < 0)
		fail("client cannot parse the reply", r);
	if (!params || !!e != !!error || (e && strcmp(e, error) != 0))
		fail("reply changed on the way", 0);
	r = vl_serialize(back, &s2, &len2);
	if (r >= 0 && (len2 != len || memcmp(s, s2, len) != 0))
		fail("reply reads back differently", (int)len2);
	json_object_put(msg);
}

static json_object *error_params(const char *key, const char *value) {
	json_object *p = json_object_new_object();

	if (p && key && value)
		json_object_object_add(p, key, json_object_new_string(value));
	return p;
}

/* What the daemon does with one message. */
static void dispatch(json_object *msg) {
	static const char *const methods[] = {
		VARLINK_INTERFACE ".Set",
		VARLINK_INTERFACE ".Unset",
		VARLINK_INTERFACE ".List",
		VARLINK_INTERFACE ".Status",
		"org.varlink.service.GetInfo",
	};
	const char *reason = NULL;
	VarlinkCall call = {};
	int r;

	_cleanup_free_ char *parameter = NULL;

	r = vl_call_parse(msg, &call, &reason, &parameter);
	if (r == -EILSEQ) {
		/* A bad string in the parameters, named by a path that is
		 * itself clean text. */
		if (!reason || !parameter || !utf8_is_valid(parameter, strlen(parameter)))
			fail("bad string refused without a reason or a clean path", r);
		for (const char *p = parameter; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				fail("parameter path has a control character", r);
		send_answer(vl_error_new("org.varlink.service.InvalidParameter", error_params("parameter", parameter)),
			    "org.varlink.service.InvalidParameter");
		return;
	}
	if (r < 0) {
		if (r == -EBADMSG && !reason)
			fail("call refused without a reason", r);
		if (r != -EBADMSG && r != -ENOMEM)
			fail("unexpected error from vl_call_parse", r);
		send_answer(vl_error_new(VARLINK_INTERFACE ".InvalidRequest", error_params("reason", reason)),
			    VARLINK_INTERFACE ".InvalidRequest");
		return;
	}
	if (!call.method || !json_object_is_type(call.parameters, json_type_object))
		fail("accepted call without method or parameters", 0);
	{
		_cleanup_free_ char *path = NULL;
		const char *why = NULL;

		/* What is accepted has no NUL and no byte that is not UTF-8
		 * in any string, method included. */
		if (vl_strings_check(call.parameters, &path, &why) == -EILSEQ)
			fail("accepted parameters with a bad string", 0);
		if (strlen(call.method) != (size_t)json_object_get_string_len(json_object_object_get(msg, "method")) ||
		    !utf8_is_valid(call.method, strlen(call.method)))
			fail("accepted a bad method name", 0);
	}

	for (size_t i = 0; i < ELEMENTSOF(methods); i++)
		if (streq(call.method, methods[i])) {
			/* Echo the parameters: the reply path then serializes
			 * whatever nesting, numbers and strings came in. */
			send_answer(vl_reply_new(json_object_get(call.parameters)), NULL);
			return;
		}
	send_answer(vl_error_new("org.varlink.service.MethodNotFound", error_params("method", call.method)),
		    "org.varlink.service.MethodNotFound");
}

static void drain(VarlinkBuffer *b) {
	for (;;) {
		json_object *msg = NULL, *params = NULL;
		const char *error = NULL;
		int k = vl_buffer_take(b, &msg, NULL);

		check_buffer(b);
		if (k == 0)
			return;
		if (k == -EBADMSG) {
			send_answer(vl_error_new(VARLINK_INTERFACE ".InvalidRequest",
						 error_params("reason", "message is not a JSON object")),
				    VARLINK_INTERFACE ".InvalidRequest");
			continue;
		}
		if (k != 1)
			fail("unexpected result from vl_buffer_take", k);
		if (!json_object_is_type(msg, json_type_object))
			fail("took a message that is not an object", 0);
		/* netbumpctl reads the daemon's messages with vl_reply_parse(). */
		if (vl_reply_parse(msg, &error, &params) >= 0 &&
		    ((error && !json_object_is_type(json_object_object_get(msg, "error"), json_type_string)) ||
		     (params && !json_object_is_type(params, json_type_object))))
			fail("vl_reply_parse accepted a malformed reply", 0);
		dispatch(msg);
		json_object_put(msg);
	}
}

/* The daemon answers "message too long" and hangs up; the next connection
 * starts with an empty buffer. */
static void too_long(VarlinkBuffer *b) {
	send_answer(vl_error_new(VARLINK_INTERFACE ".InvalidRequest", error_params("reason", "message too long")),
		    VARLINK_INTERFACE ".InvalidRequest");
	vl_buffer_done(b);
	vl_buffer_init(b, b->max);
}

static void feed_direct(VarlinkBuffer *b, const uint8_t *p, size_t n) {
	while (n > 0) {
		/* At most what fits, as one read(2) into the buffer would. */
		size_t room = b->max - b->size, k = n < room ? n : room;
		int r;

		if (k == 0) {
			too_long(b);
			continue;
		}
		if (k < n) {
			/* More than fits is refused whole, and changes nothing. */
			size_t before = b->size;
			r = vl_buffer_feed(b, p, n);
			if (r != -EMSGSIZE || b->size != before)
				fail("vl_buffer_feed took more than max", r);
		}
		r = vl_buffer_feed(b, p, k);
		if (r < 0)
			fail("vl_buffer_feed refused bytes that fit", r);
		check_buffer(b);
		p += k;
		n -= k;
		drain(b);
	}
}

static int pipe_fds[2] = { -1, -1 };

static void feed_pipe(VarlinkBuffer *b, const uint8_t *p, size_t n) {
	size_t pending = n;

	if (write(pipe_fds[1], p, n) != (ssize_t)n)
		fail("short write to the pipe", (int)n);
	while (pending > 0) {
		size_t before = b->size;
		int r = vl_buffer_fill(b, pipe_fds[0]);

		check_buffer(b);
		if (r > 0) {
			if ((size_t)r > pending)
				fail("read more than was written", r);
			pending -= r;
			drain(b);
		} else if (r == -ENOBUFS) {
			/* Full, but holding a complete message: take it. */
			drain(b);
			if (b->size >= before)
				fail("-ENOBUFS with nothing to take", r);
		} else if (r == -EMSGSIZE) {
			char junk[CHUNK_MAX];

			/* Full of one unfinished message (what this read added
			 * counts). The connection is gone: drop what it still
			 * had to say. */
			if (b->size < b->max || b->size - before > pending)
				fail("-EMSGSIZE with room left", r);
			pending -= b->size - before;
			drain(b);
			too_long(b);
			if (read(pipe_fds[0], junk, pending) != (ssize_t)pending)
				fail("short read from the pipe", (int)pending);
			pending = 0;
		} else
			fail("unexpected result from vl_buffer_fill", r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	VarlinkBuffer b;
	uint32_t rng;
	uint8_t h;
	bool use_pipe;

	if (size < 1)
		return 0;
	h = data[0];
	data++;
	size--;
	use_pipe = h & 8;
	rng = 0x9e3779b9u * ((h >> 4) + 1u);

	if (use_pipe && pipe_fds[0] < 0 && pipe2(pipe_fds, O_CLOEXEC) < 0)
		fail("pipe2", -errno);

	vl_buffer_init(&b, (size_t)64 << (h & 7));
	if (vl_buffer_feed(&b, data, 0) != 0 || b.size != 0)
		fail("an empty feed changed the buffer", 0);
	while (size > 0) {
		size_t n;

		rng ^= rng << 13;
		rng ^= rng >> 17;
		rng ^= rng << 5;
		n = 1 + rng % CHUNK_MAX;
		if (n > size)
			n = size;
		if (use_pipe)
			feed_pipe(&b, data, n);
		else
			feed_direct(&b, data, n);
		data += n;
		size -= n;
	}
	drain(&b);
	vl_buffer_done(&b);
	return 0;
}
