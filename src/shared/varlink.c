/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "utf8.h"
#include "varlink.h"

void vl_buffer_init(VarlinkBuffer *b, size_t max) {
	*b = (VarlinkBuffer){ .max = max };
}

void vl_buffer_done(VarlinkBuffer *b) {
	free(b->data);
	*b = (VarlinkBuffer){ .max = b->max };
}

static int buffer_reserve(VarlinkBuffer *b, size_t extra) {
	size_t want;
	char *p;

	if (b->size + extra <= b->allocated)
		return 0;
	want = b->allocated ? b->allocated * 2 : 4096;
	while (want < b->size + extra)
		want *= 2;
	if (want > b->max)
		want = b->max;
	if (want < b->size + extra)
		return -EMSGSIZE;
	p = realloc(b->data, want);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->allocated = want;
	return 0;
}

/* A message may be split over reads, but no single message may be longer
 * than max: if the buffer is full and holds no NUL, the peer is sending
 * something we will never accept. */
static bool buffer_has_nul(const VarlinkBuffer *b) {
	return b->size > 0 && memchr(b->data, 0, b->size);
}

int vl_buffer_feed(VarlinkBuffer *b, const void *p, size_t n) {
	int r;

	if (n == 0)
		return 0;
	r = buffer_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->data + b->size, p, n);
	b->size += n;
	return 0;
}

int vl_buffer_fill(VarlinkBuffer *b, int fd) {
	ssize_t n;
	size_t room;
	int r;

	if (b->size >= b->max)
		return buffer_has_nul(b) ? -ENOBUFS : -EMSGSIZE;
	room = b->max - b->size;
	if (room > 65536)
		room = 65536;
	r = buffer_reserve(b, room);
	if (r < 0)
		return r;
	n = read(fd, b->data + b->size, room);
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	b->size += n;
	if (b->size >= b->max && !buffer_has_nul(b))
		return -EMSGSIZE;
	return (int)n;
}

/* json-c keeps a member name as a C string: "target\u0000x" would arrive as
 * "target". A NUL in a value stays visible (json_object_get_string_len());
 * one in a name must be caught in the text. The text has parsed as strict
 * JSON already: every string is in double quotes, and one followed by ':'
 * is a member name. */
static bool member_name_has_nul(const char *s, size_t len) {
	size_t i = 0;

	while (i < len) {
		bool nul = false;

		if (s[i++] != '"')
			continue;
		while (i < len && s[i] != '"') {
			if (s[i] == '\\') {
				if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
					nul = true;
				i++; /* the escaped character; \uXXXX's digits are plain */
			}
			i++;
		}
		i++; /* the closing quote */
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
			i++;
		if (nul && i < len && s[i] == ':')
			return true;
	}
	return false;
}

int vl_buffer_take(VarlinkBuffer *b, json_object **ret, const char **ret_reason) {
	json_object *j = NULL;
	const char *reason = "message is not a JSON object", *dummy;
	char *nul;
	size_t len;

	if (!ret_reason)
		ret_reason = &dummy;
	if (b->size == 0)
		return 0;
	nul = memchr(b->data, 0, b->size);
	if (!nul)
		return 0;
	len = nul - b->data;

	if (len > 0) {
		json_tokener *tok = json_tokener_new_ex(32);
		if (!tok)
			return -ENOMEM;
		/* RFC 8259 JSON only: no single quotes, comments or trailing
		 * commas, which would each be a second grammar to check. */
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		j = json_tokener_parse_ex(tok, b->data, (int)len);
		/* Refuse trailing bytes after the object as well as a parse error. */
		if (j && (json_tokener_get_error(tok) != json_tokener_success ||
			  json_tokener_get_parse_end(tok) != len)) {
			json_object_put(j);
			j = NULL;
		}
		json_tokener_free(tok);
		if (j && member_name_has_nul(b->data, len)) {
			json_object_put(j);
			j = NULL;
			reason = "a member name contains NUL (\\u0000)";
		}
	}

	memmove(b->data, nul + 1, b->size - len - 1);
	b->size -= len + 1;

	if (!j || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		*ret_reason = reason;
		return -EBADMSG;
	}
	*ret = j;
	return 1;
}

/* Appends a member name or index to a path ("target", "a.b", "a[2]"), the
 * name escaped: it goes into a reply and a log line. */
static int path_push(char **path, const char *key, size_t index) {
	_cleanup_free_ char *k = key ? utf8_escape(key, strlen(key)) : NULL;
	char *n = NULL;
	int r;

	if (key && !k)
		return -ENOMEM;
	if (key)
		r = *path ? asprintf(&n, "%s.%s", *path, k) : asprintf(&n, "%s", k);
	else
		r = asprintf(&n, "%s[%zu]", *path ?: "", index);
	if (r < 0)
		return -ENOMEM;
	free(*path);
	*path = n;
	return 0;
}

/* Every string in o, names and values, at any depth: well-formed UTF-8 and
 * no NUL. -EILSEQ with the path of the first that is not (NULL for o
 * itself) and why. */
static int check_strings(json_object *o, char **path, const char **ret_reason) {
	switch (json_object_get_type(o)) {
	case json_type_string: {
		const char *s = json_object_get_string(o);
		size_t n = (size_t)json_object_get_string_len(o);

		if (memchr(s, '\0', n))
			return *ret_reason = "contains NUL (\\u0000)", -EILSEQ;
		if (!utf8_is_valid(s, n))
			return *ret_reason = "is not valid UTF-8", -EILSEQ;
		return 0;
	}
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			_cleanup_free_ char *saved = *path ? strdup(*path) : NULL;
			int r;

			if (*path && !saved)
				return -ENOMEM;
			r = path_push(path, key, 0);
			if (r < 0)
				return r;
			if (!utf8_is_valid(key, strlen(key)))
				return *ret_reason = "(its name) is not valid UTF-8", -EILSEQ;
			r = check_strings(val, path, ret_reason);
			if (r < 0)
				return r;
			free(*path);
			*path = TAKE_PTR(saved);
		}
		return 0;
	}
	case json_type_array: {
		size_t n = json_object_array_length(o);

		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *saved = *path ? strdup(*path) : NULL;
			int r;

			if (*path && !saved)
				return -ENOMEM;
			r = path_push(path, NULL, i);
			if (r < 0)
				return r;
			r = check_strings(json_object_array_get_idx(o, i), path, ret_reason);
			if (r < 0)
				return r;
			free(*path);
			*path = TAKE_PTR(saved);
		}
		return 0;
	}
	default:
		return 0;
	}
}

int vl_strings_check(json_object *o, char **ret_path, const char **ret_reason) {
	_cleanup_free_ char *path = NULL;
	const char *reason = NULL;
	int r;

	r = check_strings(o, &path, &reason);
	if (r == -EILSEQ) {
		*ret_reason = reason;
		*ret_path = TAKE_PTR(path);
	}
	return r;
}

int vl_call_parse(json_object *msg, VarlinkCall *ret, const char **ret_reason, char **ret_parameter) {
	VarlinkCall c = {};
	const char *dummy;
	int r;

	if (!ret_reason)
		ret_reason = &dummy;
	if (!json_object_is_type(msg, json_type_object))
		return *ret_reason = "message is not an object", -EBADMSG;

	json_object_object_foreach(msg, key, val) {
		if (streq(key, "method")) {
			if (!json_object_is_type(val, json_type_string))
				return *ret_reason = "'method' is not a string", -EBADMSG;
			c.method = json_object_get_string(val);
		} else if (streq(key, "parameters")) {
			if (!json_object_is_type(val, json_type_object))
				return *ret_reason = "'parameters' is not an object", -EBADMSG;
			c.parameters = val;
		} else if (streq(key, "oneway") || streq(key, "more")) {
			if (!json_object_is_type(val, json_type_boolean))
				return *ret_reason = "'oneway'/'more' is not a boolean", -EBADMSG;
			if (streq(key, "oneway"))
				c.oneway = json_object_get_boolean(val);
		} else if (streq(key, "upgrade")) {
			return *ret_reason = "'upgrade' is not supported", -EBADMSG;
		} else
			return *ret_reason = "unknown field in call", -EBADMSG;
	}
	if (!c.method)
		return *ret_reason = "missing 'method'", -EBADMSG;
	{
		json_object *mo = json_object_object_get(msg, "method");
		size_t n = (size_t)json_object_get_string_len(mo);

		if (memchr(c.method, '\0', n) || !utf8_is_valid(c.method, n))
			return *ret_reason = "'method' is not valid UTF-8 or contains NUL", -EBADMSG;
	}
	if (c.parameters) {
		_cleanup_free_ char *path = NULL;
		const char *why = NULL;

		/* A string a method reads as a C string would end at a NUL
		 * (the rest unseen); one that is not UTF-8 would be logged
		 * and echoed as it came. Refused here, for every method. */
		r = vl_strings_check(c.parameters, &path, &why);
		if (r == -EILSEQ) {
			*ret_reason = why;
			if (ret_parameter)
				*ret_parameter = TAKE_PTR(path);
			return -EILSEQ;
		}
		if (r < 0)
			return r;
	}
	if (!c.parameters) {
		/* Hand out an empty object kept alive by the message itself. */
		json_object *p = json_object_new_object();
		if (!p || json_object_object_add(msg, "parameters", p) < 0) {
			json_object_put(p);
			return -ENOMEM;
		}
		c.parameters = p;
	}
	*ret = c;
	return 0;
}

static json_object *message_new(const char *key, const char *value, json_object *params) {
	json_object *m = json_object_new_object();

	if (!m) {
		json_object_put(params);
		return NULL;
	}
	if (key && json_object_object_add(m, key, json_object_new_string(value)) < 0)
		goto fail;
	if (!params)
		params = json_object_new_object();
	if (!params || json_object_object_add(m, "parameters", params) < 0)
		goto fail;
	return m;
fail:
	json_object_put(params);
	json_object_put(m);
	return NULL;
}

json_object *vl_call_new(const char *method, json_object *params) {
	return message_new("method", method, params);
}

json_object *vl_reply_new(json_object *params) {
	return message_new(NULL, NULL, params);
}

json_object *vl_error_new(const char *error, json_object *params) {
	return message_new("error", error, params);
}

int vl_reply_parse(json_object *msg, const char **ret_error, json_object **ret_params) {
	json_object *e = NULL, *p = NULL;

	if (!json_object_is_type(msg, json_type_object))
		return -EBADMSG;
	if (json_object_object_get_ex(msg, "error", &e) && !json_object_is_type(e, json_type_string))
		return -EBADMSG;
	if (json_object_object_get_ex(msg, "parameters", &p) && !json_object_is_type(p, json_type_object))
		return -EBADMSG;
	*ret_error = e ? json_object_get_string(e) : NULL;
	*ret_params = p;
	return 0;
}

int vl_serialize(json_object *msg, char **ret, size_t *ret_len) {
	size_t len;
	const char *s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
	char *buf;

	if (!s)
		return -ENOMEM;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len + 1;
	return 0;
}

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vl_call_sync(int fd, const char *method, json_object *params, int timeout_ms, json_object **ret) {
	_cleanup_json_ json_object *call = vl_call_new(method, params);
	_cleanup_free_ char *out = NULL;
	VarlinkBuffer in;
	int64_t deadline = now_ms() + timeout_ms;
	size_t len, done = 0;
	int r, send_error = 0;

	if (!call)
		return -ENOMEM;
	r = vl_serialize(call, &out, &len);
	if (r < 0)
		return r;
	while (done < len) {
		ssize_t n = send(fd, out + done, len - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EPIPE && errno != ECONNRESET)
				return -errno;
			/* A server that turns a client away (too many
			 * connections) says why before it closes: read that. */
			send_error = -errno;
			break;
		}
		done += n;
	}

	vl_buffer_init(&in, VARLINK_REPLY_MAX);
	for (;;) {
		json_object *m = NULL;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left;

		r = vl_buffer_take(&in, &m, NULL);
		if (r != 0) {
			vl_buffer_done(&in);
			if (r > 0)
				*ret = m;
			return r < 0 ? r : 0;
		}
		left = deadline - now_ms();
		if (left <= 0) {
			vl_buffer_done(&in);
			return -ETIMEDOUT;
		}
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR) {
			vl_buffer_done(&in);
			return -errno;
		}
		if (r <= 0)
			continue;
		r = vl_buffer_fill(&in, fd);
		if (r == 0)
			r = -ECONNRESET;
		if (r < 0 && r != -EAGAIN) {
			vl_buffer_done(&in);
			return send_error ?: r;
		}
	}
}
