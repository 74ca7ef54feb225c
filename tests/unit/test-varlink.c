/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sys/socket.h>

#include "macro.h"
#include "tests.h"
#include "varlink.h"

static void feed_str(VarlinkBuffer *b, const char *s) {
	ASSERT_OK(vl_buffer_feed(b, s, strlen(s) + 1));
}

int main(void) {
	VarlinkBuffer b;
	json_object *m = NULL;
	VarlinkCall c;
	const char *reason;

	/* Two messages in one feed, then one split across feeds. */
	vl_buffer_init(&b, 1024);
	const char two[] = "{\"method\":\"io.netbump.Manager.List\"}\0{\"method\":\"x.Y\",\"parameters\":{\"a\":1}}";
	ASSERT_OK(vl_buffer_feed(&b, two, sizeof(two)));
	ASSERT_EQ(vl_buffer_take(&b, &m), 1);
	ASSERT_OK(vl_call_parse(m, &c, &reason));
	ASSERT_STREQ(c.method, "io.netbump.Manager.List");
	ASSERT_TRUE(json_object_is_type(c.parameters, json_type_object));
	ASSERT_EQ(json_object_object_length(c.parameters), 0);
	json_object_put(m);
	ASSERT_EQ(vl_buffer_take(&b, &m), 1);
	ASSERT_OK(vl_call_parse(m, &c, &reason));
	ASSERT_STREQ(c.method, "x.Y");
	json_object_put(m);
	ASSERT_EQ(vl_buffer_take(&b, &m), 0);

	ASSERT_OK(vl_buffer_feed(&b, "{\"meth", 6));
	ASSERT_EQ(vl_buffer_take(&b, &m), 0);
	ASSERT_OK(vl_buffer_feed(&b, "od\":\"a.B\"}", 11));
	ASSERT_EQ(vl_buffer_take(&b, &m), 1);
	json_object_put(m);

	/* Garbage, non-objects and trailing bytes are refused one message at a
	 * time; what follows is still read. */
	feed_str(&b, "garbage");
	feed_str(&b, "[1,2]");
	feed_str(&b, "{} x");
	feed_str(&b, "");
	feed_str(&b, "{\"method\":\"a.B\"}");
	ASSERT_EQ(vl_buffer_take(&b, &m), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m), 1);
	json_object_put(m);

	/* Call shape checks. */
	static const char *const badcalls[] = {
		"{}",
		"{\"method\":1}",
		"{\"method\":\"a.B\",\"parameters\":[]}",
		"{\"method\":\"a.B\",\"oneway\":\"yes\"}",
		"{\"method\":\"a.B\",\"extra\":1}",
		"{\"method\":\"a.B\",\"upgrade\":true}",
	};
	for (size_t i = 0; i < ELEMENTSOF(badcalls); i++) {
		feed_str(&b, badcalls[i]);
		ASSERT_EQ(vl_buffer_take(&b, &m), 1);
		reason = NULL;
		ASSERT_EQ(vl_call_parse(m, &c, &reason), -EBADMSG);
		ASSERT_TRUE(reason && *reason);
		json_object_put(m);
	}

	/* Size bound: a message longer than max without NUL is refused. */
	{
		char big[2048];
		memset(big, 'x', sizeof(big));
		ASSERT_EQ(vl_buffer_feed(&b, big, sizeof(big)), -EMSGSIZE);
	}
	vl_buffer_done(&b);

	/* Round trip through a socket pair: serialize, fill, take, parse. */
	{
		int sv[2];
		char *out;
		size_t len;
		const char *err;
		json_object *p;

		ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		json_object *params = json_object_new_object();
		json_object_object_add(params, "reason", json_object_new_string("not \"here\"\n"));
		json_object *e = vl_error_new("io.netbump.Manager.NoSuchRule", params);
		ASSERT_OK(vl_serialize(e, &out, &len));
		ASSERT_EQ(out[len - 1], '\0');
		ASSERT_EQ(write(sv[0], out, len), (ssize_t)len);
		free(out);
		json_object_put(e);

		vl_buffer_init(&b, VARLINK_REPLY_MAX);
		ASSERT_TRUE(vl_buffer_fill(&b, sv[1]) > 0);
		ASSERT_EQ(vl_buffer_take(&b, &m), 1);
		ASSERT_OK(vl_reply_parse(m, &err, &p));
		ASSERT_STREQ(err, "io.netbump.Manager.NoSuchRule");
		ASSERT_STREQ(json_object_get_string(json_object_object_get(p, "reason")), "not \"here\"\n");
		json_object_put(m);

		/* The peer's close reads as EOF. */
		close(sv[0]);
		ASSERT_EQ(vl_buffer_fill(&b, sv[1]), 0);
		vl_buffer_done(&b);
		close(sv[1]);
	}
	return 0;
}
