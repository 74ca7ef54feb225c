/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The front half of every request, before anything changes: a Varlink
 * message checked as a call of one of our methods, its parameters read and
 * typed, its target parsed, authorised and resolved to the canonical name a
 * rule has ("sock:PID:FD" to "sock:INODE", "user@NAME" to "user@UID").
 *
 * Authorisation comes before any lookup a caller could learn from: a user
 * who names a descriptor of a process (sock:PID:FD) must own that process
 * before its descriptors are looked at, so that the answer says nothing
 * about another user's files. What needs the rules or the kernel's state
 * (ownership of a cgroup, a socket's owner, would-raise) is decided later,
 * by rule.c.
 *
 * Reads /proc and the user database, nothing else: no netlink, no BPF, no
 * event loop. tests/fuzz/fuzz-request.c runs it on arbitrary messages.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "rule.h"
#include "target.h"

typedef enum RequestMethod {
	REQUEST_SET,
	REQUEST_UNSET,
	REQUEST_LIST,
	REQUEST_STATUS,
	REQUEST_TOP,
	REQUEST_GET_INFO,
	REQUEST_CONNECTIONS,
	_REQUEST_METHOD_MAX,
} RequestMethod;

enum { REQUEST_DENY = 1, REQUEST_ALLOW = 2 };

typedef struct Request {
	RequestMethod method;
	bool oneway;
	json_object *parameters; /* borrowed from the message */
	const char *target;      /* as given, borrowed; NULL: none */
	char *canonical;         /* the target resolved: what rules are named by */
	char *remote;            /* Set, Unset: the scope (--remote) in its canonical
				  * form (scope.h), NULL: none */
	int access;              /* Set: 0 a limit, REQUEST_DENY or REQUEST_ALLOW (access.h) */
	RuleRequest rule;        /* Set: what it asks for (rule.target = canonical) */
} Request;

/* Why a request is refused: a Varlink error name, what it is about
 * ("parameter", "target", "method" and its value) and a reason. */
typedef struct RequestError {
	RequestMethod method; /* the method asked for, _REQUEST_METHOD_MAX: none */
	const char *error;
	const char *key;
	char *value;
	char *reason;
} RequestError;

/* 0 and *ret filled (request_done() it), or < 0 with *ret_error filled
 * (request_error_done() it); -ENOMEM alone leaves *ret_error empty. The
 * message must outlive the request. */
int request_parse(json_object *msg, uid_t caller, Request *ret, RequestError *ret_error);
void request_done(Request *r);
void request_error_done(RequestError *e);

const char *request_method_name(RequestMethod m);
