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
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
	ASSERT_OK(vl_call_parse(m, &c, &reason, NULL));
	ASSERT_STREQ(c.method, "io.netbump.Manager.List");
	ASSERT_TRUE(json_object_is_type(c.parameters, json_type_object));
	ASSERT_EQ(json_object_object_length(c.parameters), 0);
	json_object_put(m);
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
	ASSERT_OK(vl_call_parse(m, &c, &reason, NULL));
	ASSERT_STREQ(c.method, "x.Y");
	json_object_put(m);
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 0);

	ASSERT_OK(vl_buffer_feed(&b, "{\"meth", 6));
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 0);
	ASSERT_OK(vl_buffer_feed(&b, "od\":\"a.B\"}", 11));
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
	json_object_put(m);

	/* Garbage, non-objects and trailing bytes are refused one message at a
	 * time; what follows is still read. */
	feed_str(&b, "garbage");
	feed_str(&b, "[1,2]");
	feed_str(&b, "{} x");
	feed_str(&b, "");
	feed_str(&b, "{\"method\":\"a.B\"}");
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
	ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
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
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
		reason = NULL;
		ASSERT_EQ(vl_call_parse(m, &c, &reason, NULL), -EBADMSG);
		ASSERT_TRUE(reason && *reason);
		json_object_put(m);
	}

	/* Strings: NUL (\u0000) or bytes that are not UTF-8 anywhere in the
	 * parameters are refused, naming the parameter; in a member name
	 * (which json-c would cut at the NUL) the message is refused whole. */
	{
		static const struct {
			const char *msg;
			const char *parameter;
		} bad[] = {
			{ "{\"method\":\"a.B\",\"parameters\":{\"target\":\"pid:1\\u0000x\"}}", "target" },
			{ "{\"method\":\"a.B\",\"parameters\":{\"target\":\"\\u0000\"}}", "target" },
			{ "{\"method\":\"a.B\",\"parameters\":{\"target\":\"cgroup:/\xff\"}}", "target" },
			{ "{\"method\":\"a.B\",\"parameters\":{\"target\":\"\xc0\xaf\"}}", "target" },        /* overlong '/' */
			{ "{\"method\":\"a.B\",\"parameters\":{\"target\":\"\xed\xa0\x80\"}}", "target" },    /* a surrogate */
			{ "{\"method\":\"a.B\",\"parameters\":{\"target\":\"\xe2\x82\"}}", "target" },        /* cut short */
			{ "{\"method\":\"a.B\",\"parameters\":{\"up\":1,\"x\":{\"y\":[\"ok\",\"\\u0000\"]}}}", "x.y[1]" },
			{ "{\"method\":\"a.B\",\"parameters\":{\"t\xfe\":1}}", "t\\xfe" },
		};
		for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
			char *parameter = NULL;

			feed_str(&b, bad[i].msg);
			ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
			reason = NULL;
			ASSERT_EQ(vl_call_parse(m, &c, &reason, &parameter), -EILSEQ);
			ASSERT_TRUE(reason && *reason);
			ASSERT_STREQ(parameter, bad[i].parameter);
			free(parameter);
			json_object_put(m);
		}

		/* What is UTF-8 passes: accents, emoji, an escaped surrogate
		 * pair, control characters escaped (the parsers judge those). */
		feed_str(&b, "{\"method\":\"a.B\",\"parameters\":{\"target\":\"cgroup:/\xc3\xa9\xf0\x9f\x98\x80"
			     "\\ud83d\\ude00\\n\"}}");
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
		ASSERT_OK(vl_call_parse(m, &c, &reason, NULL));
		json_object_put(m);

		/* NUL in the method: a bad request, not a bad parameter. */
		feed_str(&b, "{\"method\":\"io.netbump.Manager.List\\u0000x\"}");
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
		ASSERT_EQ(vl_call_parse(m, &c, &reason, NULL), -EBADMSG);
		json_object_put(m);

		/* NUL in a member name: "target\u0000x" must not arrive as
		 * "target". An escaped backslash before "u0000" is no NUL. */
		feed_str(&b, "{\"method\":\"a.B\",\"parameters\":{\"target\\u0000x\" : \"all\"}}");
		feed_str(&b, "{\"method\":\"a.B\",\"parameters\":{\"a\\\\u0000\":\"\\\\u0000\"}}");
		reason = NULL;
		ASSERT_EQ(vl_buffer_take(&b, &m, &reason), -EBADMSG);
		ASSERT_TRUE(reason && strstr(reason, "NUL"));
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
		ASSERT_OK(vl_call_parse(m, &c, &reason, NULL));
		json_object_put(m);

		/* Strict JSON: what json-c would otherwise take. */
		feed_str(&b, "{'method':'a.B'}");
		feed_str(&b, "{\"method\":\"a.B\",}");
		feed_str(&b, "{\"method\":\"a.B\"/* x */}");
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), -EBADMSG);
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
		ASSERT_EQ(vl_buffer_take(&b, &m, NULL), 1);
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
