/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Varlink's wire format (https://varlink.org): each message is one JSON
 * object followed by a NUL byte on a UNIX stream socket.
 *   call:  {"method":"io.netbump.Manager.Set","parameters":{...}}
 *   reply: {"parameters":{...}}
 *   error: {"error":"io.netbump.Manager.NoSuchRule","parameters":{...}}
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define VARLINK_INTERFACE "io.netbump.Manager"
/* A request is small (a target and two rates); anything larger is hostile. */
#define VARLINK_REQUEST_MAX (64u * 1024u)
/* A reply lists every rule; 64 MiB holds far more than 65534 of them. */
#define VARLINK_REPLY_MAX (64u * 1024u * 1024u)

typedef struct VarlinkBuffer {
	char *data;
	size_t size;      /* bytes held */
	size_t allocated; /* bytes allocated */
	size_t max;       /* most bytes one message may take, NUL included */
} VarlinkBuffer;

void vl_buffer_init(VarlinkBuffer *b, size_t max);
void vl_buffer_done(VarlinkBuffer *b);
/* Appends bytes (tests and fuzzers feed this directly). -EMSGSIZE when the
 * buffer would exceed max without holding a complete message. */
int vl_buffer_feed(VarlinkBuffer *b, const void *p, size_t n);
/* One read(2) from fd into the buffer: >0 bytes read, 0 on EOF, -EAGAIN,
 * -EMSGSIZE as above, or -errno. */
int vl_buffer_fill(VarlinkBuffer *b, int fd);
/* Takes the next complete message: 1 and *ret set, 0 when none is complete,
 * -EBADMSG when the message is not a JSON object (strict RFC 8259 JSON), or
 * one with NUL in a member name: it is consumed, so the caller can answer
 * and go on; *ret_reason (when not NULL) says which. */
int vl_buffer_take(VarlinkBuffer *b, json_object **ret, const char **ret_reason);

typedef struct VarlinkCall {
	const char *method;     /* borrowed from the message */
	json_object *parameters; /* borrowed; an empty object when absent */
	bool oneway;
} VarlinkCall;

/* Checks a call's shape: an object with a string "method", an optional object
 * "parameters", optional booleans "oneway"/"more" and nothing else.
 * -EBADMSG with a reason otherwise. -EILSEQ when a string in the parameters
 * (a name or a value, at any depth) is not UTF-8 or contains NUL: the reason
 * and, in *ret_parameter (when not NULL; the caller frees it), the
 * parameter's path, e.g. "target" or "a.b[2]", escaped. */
int vl_call_parse(json_object *msg, VarlinkCall *ret, const char **ret_reason, char **ret_parameter);

/* The check vl_call_parse() makes on the parameters, for any JSON value:
 * 0, or -EILSEQ with the path of the first bad string (NULL for o itself,
 * caller frees) and why; -ENOMEM. */
int vl_strings_check(json_object *o, char **ret_path, const char **ret_reason);

/* Build messages; each takes ownership of params (which may be NULL). */
json_object *vl_call_new(const char *method, json_object *params);
json_object *vl_reply_new(json_object *params);
json_object *vl_error_new(const char *error, json_object *params);

/* Splits a reply: *ret_error is the error name or NULL; *ret_params is the
 * parameters object (borrowed) or NULL. -EBADMSG when malformed. */
int vl_reply_parse(json_object *msg, const char **ret_error, json_object **ret_params);

/* Serializes msg with its trailing NUL: a new buffer in *ret, its length
 * (NUL included) in *ret_len. */
int vl_serialize(json_object *msg, char **ret, size_t *ret_len);

/* Client side: sends a call on a connected blocking socket and waits at
 * most timeout_ms for the reply. The reply message is returned in *ret
 * (caller puts it). */
int vl_call_sync(int fd, const char *method, json_object *params, int timeout_ms, json_object **ret);

static inline void json_object_putp(json_object **j) {
	if (*j)
		json_object_put(*j);
}
#define _cleanup_json_ __attribute__((cleanup(json_object_putp)))
