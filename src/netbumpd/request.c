/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "nest.h"
#include "proc-util.h"
#include "request.h"
#include "scope.h"
#include "varlink.h"

#define E_BAD_PARAMETER "org.varlink.service.InvalidParameter"
#define E_INVALID "io.netbump.Manager.InvalidParameter"
#define E_NOTFOUND "io.netbump.Manager.TargetNotFound"
#define E_FAILED "io.netbump.Manager.Failed"
#define E_DENIED "io.netbump.Manager.PermissionDenied"

static const char *const method_names[_REQUEST_METHOD_MAX] = {
	[REQUEST_SET] = VARLINK_INTERFACE ".Set",
	[REQUEST_UNSET] = VARLINK_INTERFACE ".Unset",
	[REQUEST_LIST] = VARLINK_INTERFACE ".List",
	[REQUEST_STATUS] = VARLINK_INTERFACE ".Status",
	[REQUEST_TOP] = VARLINK_INTERFACE ".Top",
	[REQUEST_GET_INFO] = "org.varlink.service.GetInfo",
	[REQUEST_CONNECTIONS] = VARLINK_INTERFACE ".Connections",
};

/* The parameters each method takes; NULL: it reads them itself. */
static const char *const set_params[] = { "target", "up", "down", "min_up", "min_down", "priority", "transient", "remote", "access", NULL };
static const char *const target_params[] = { "target", NULL };
static const char *const unset_params[] = { "target", "remote", NULL };
static const char *const no_params[] = { NULL };
static const char *const *const method_params[_REQUEST_METHOD_MAX] = {
	[REQUEST_SET] = set_params,
	[REQUEST_UNSET] = unset_params,
	[REQUEST_LIST] = target_params,
	[REQUEST_STATUS] = no_params,
	[REQUEST_TOP] = no_params,
	[REQUEST_GET_INFO] = NULL,
	[REQUEST_CONNECTIONS] = no_params,
};

const char *request_method_name(RequestMethod m) {
	return m >= 0 && m < _REQUEST_METHOD_MAX ? method_names[m] : NULL;
}

void request_done(Request *r) {
	free(r->canonical);
	free(r->remote);
	*r = (Request){};
}

void request_error_done(RequestError *e) {
	free(e->value);
	free(e->reason);
	*e = (RequestError){ .method = _REQUEST_METHOD_MAX };
}

static int refuse(RequestError *e, const char *error, const char *key, const char *value, int r, const char *fmt, ...)
	_printf_(6, 7);
static int refuse(RequestError *e, const char *error, const char *key, const char *value, int r, const char *fmt, ...) {
	RequestMethod method = e->method;
	va_list ap;

	request_error_done(e);
	e->method = method;
	e->error = error;
	e->key = key;
	if (value) {
		e->value = strdup(value);
		if (!e->value)
			return -ENOMEM;
	}
	va_start(ap, fmt);
	if (vasprintf(&e->reason, fmt, ap) < 0)
		e->reason = NULL;
	va_end(ap);
	return e->reason ? r : -ENOMEM;
}

static int bad_parameter(RequestError *e, const char *name, const char *why) {
	return refuse(e, E_BAD_PARAMETER, "parameter", name, -EINVAL, "%s", why);
}

/* An optional rate: a non-negative integer in bit/s, 0 for "unlimited in
 * this direction". */
static int get_rate(json_object *params, const char *key, bool *ret_has, uint64_t *ret) {
	json_object *v;
	int64_t x;

	*ret_has = false;
	if (!json_object_object_get_ex(params, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno != 0 || x < 0)
		return -ERANGE;
	*ret_has = true;
	*ret = (uint64_t)x;
	return 0;
}

static int parse_set(Request *req, RequestError *e) {
	json_object *v;
	const struct {
		const char *name;
		bool *has;
		uint64_t *bps;
	} rates[] = {
		{ "up", &req->rule.has_up, &req->rule.up_bps },
		{ "down", &req->rule.has_down, &req->rule.down_bps },
		{ "min_up", &req->rule.has_min_up, &req->rule.min_up },
		{ "min_down", &req->rule.has_min_down, &req->rule.min_down },
	};

	if (json_object_object_get_ex(req->parameters, "transient", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return bad_parameter(e, "transient", "not a boolean");
		req->rule.transient = json_object_get_boolean(v);
	}
	for (size_t k = 0; k < ELEMENTSOF(rates); k++)
		if (get_rate(req->parameters, rates[k].name, rates[k].has, rates[k].bps) < 0)
			return bad_parameter(e, rates[k].name, "not a non-negative integer (bit/s)");
	if (json_object_object_get_ex(req->parameters, "priority", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    priority_from_string(json_object_get_string(v), &req->rule.priority) < 0)
			return bad_parameter(e, "priority", "not one of \"high\", \"normal\", \"low\"");
		req->rule.has_priority = true;
	}
	return 0;
}

/* sock:PID:FD names a descriptor by its place in a process. Whether that
 * descriptor is open, and is a socket, is for its owner (and root) to
 * know: /proc/PID/fd is not readable by other users, and our answer must
 * not read it for them. The owner is checked through a pidfd, so that the
 * process read is the one named (a PID is reused only after its process is
 * gone). */
static int authorize_sock_fd(const Target *t, uid_t caller, int *pidfd, RequestError *e) {
	uid_t owner;
	int r;

	if (caller == 0)
		return 0;
	r = pidfd_open_pid(t->pid, pidfd);
	if (r >= 0)
		r = proc_get_uid(t->pid, &owner);
	if (r >= 0 && pidfd_is_alive(*pidfd) <= 0)
		r = -ESRCH;
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return refuse(e, E_NOTFOUND, NULL, NULL, -ESRCH, "no such process: %d", (int)t->pid);
	if (owner != caller)
		return refuse(e, E_DENIED, NULL, NULL, -EPERM,
			      "not-owner: process %d is not yours (uid %u): only your own processes' descriptors can "
			      "be named, other sockets by inode (sock:INODE)",
			      (int)t->pid, (unsigned)caller);
	return 0;
}

static int resolve_sock_fd(Target *t, RequestError *e) {
	int r = proc_fd_socket_inode(t->pid, t->fd, &t->inode);

	if (r == -ENOMEM)
		return r;
	if (r == -ENOTSOCK)
		return refuse(e, E_NOTFOUND, NULL, NULL, r, "fd %d of process %d is not a socket", t->fd, (int)t->pid);
	if (r == -EACCES || r == -EPERM)
		return refuse(e, E_FAILED, NULL, NULL, r, "cannot read fd %d of process %d: %s", t->fd, (int)t->pid,
			      strerror(-r));
	if (r < 0)
		return refuse(e, E_NOTFOUND, NULL, NULL, r, "no fd %d in process %d", t->fd, (int)t->pid);
	t->resolved = 1;
	return 0;
}

/* The "remote" parameter: a scope (scope.h), kept in its canonical form. */
static int parse_remote(Request *req, RequestError *e) {
	const char *why = NULL, *bad = NULL;
	json_object *v;
	Scope sc;
	int r;

	if (!json_object_object_get_ex(req->parameters, "remote", &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return bad_parameter(e, "remote", "not a string");
	r = scope_parse(json_object_get_string(v), &sc, &why, &bad);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return refuse(e, E_INVALID, "remote", json_object_get_string(v), r, "invalid scope%s%s%s: %s",
			      bad ? " at '" : "", bad ?: "", bad ? "'" : "", why);
	req->remote = scope_to_string(&sc);
	scope_done(&sc);
	return req->remote ? 0 : -ENOMEM;
}

/* The "access" parameter of Set: "deny" or "allow" a scope instead of
 * limiting it; it takes no rate. */
static int parse_access(Request *req, RequestError *e) {
	static const char *const rate_params[] = { "up", "down", "min_up", "min_down", "priority", "transient" };
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(req->parameters, "access", &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return bad_parameter(e, "access", "not a string");
	s = json_object_get_string(v);
	if (streq(s, "deny"))
		req->access = REQUEST_DENY;
	else if (streq(s, "allow"))
		req->access = REQUEST_ALLOW;
	else
		return bad_parameter(e, "access", "not one of \"deny\", \"allow\"");
	if (!req->remote)
		return bad_parameter(e, "access", "deny and allow need a scope (\"remote\")");
	for (size_t k = 0; k < ELEMENTSOF(rate_params); k++)
		if (json_object_object_get_ex(req->parameters, rate_params[k], NULL))
			return bad_parameter(e, rate_params[k], "deny and allow take no rate, minimum or priority");
	return 0;
}

/* Parses, authorises and resolves the target into req->canonical. */
static int resolve_target(Request *req, uid_t caller, RequestError *e) {
	_cleanup_(target_done) Target t = {};
	const char *why = NULL;
	int r;

	r = target_parse(req->target, &t, &why);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return refuse(e, E_INVALID, NULL, NULL, r, "invalid target '%s': %s", req->target, why);
	if (t.kind == TARGET_SOCK && !t.resolved) {
		_cleanup_close_ int pidfd = -1;

		r = authorize_sock_fd(&t, caller, &pidfd, e);
		if (r >= 0)
			r = resolve_sock_fd(&t, e);
		/* The descriptor read is the authorised process's only if it
		 * still runs: its PID may have gone to someone else's. */
		if (r >= 0 && pidfd >= 0 && pidfd_is_alive(pidfd) <= 0)
			r = refuse(e, E_NOTFOUND, NULL, NULL, -ESRCH, "no such process: %d", (int)t.pid);
	} else if (t.kind == TARGET_USER) {
		r = target_resolve(&t);
		if (r == -ENOENT)
			r = refuse(e, E_NOTFOUND, NULL, NULL, r, "unknown user: %s", t.user_name);
		else if (r < 0 && r != -ENOMEM)
			r = refuse(e, E_FAILED, NULL, NULL, r, "cannot look up user %s: %s", t.user_name, strerror(-r));
	}
	if (r < 0)
		return r;
	req->canonical = target_to_string(&t);
	return req->canonical ? 0 : -ENOMEM;
}

int request_parse(json_object *msg, uid_t caller, Request *ret, RequestError *ret_error) {
	_cleanup_free_ char *parameter = NULL;
	Request req = { .method = _REQUEST_METHOD_MAX };
	const char *reason = NULL;
	VarlinkCall call;
	json_object *t;
	int r;

	*ret_error = (RequestError){ .method = _REQUEST_METHOD_MAX };
	r = vl_call_parse(msg, &call, &reason, &parameter);
	if (r == -EILSEQ)
		return refuse(ret_error, E_BAD_PARAMETER, "parameter", parameter ?: "", r, "parameter '%s' %s",
			      parameter ?: "", reason);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return refuse(ret_error, VARLINK_INTERFACE ".InvalidRequest", NULL, NULL, r, "%s", reason);

	for (RequestMethod k = 0; k < _REQUEST_METHOD_MAX; k++)
		if (streq(call.method, method_names[k]))
			req.method = k;
	if (req.method == _REQUEST_METHOD_MAX)
		return refuse(ret_error, "org.varlink.service.MethodNotFound", "method", call.method, -EOPNOTSUPP,
			      "no method %s", call.method);
	ret_error->method = req.method;
	req.oneway = call.oneway;
	req.parameters = call.parameters;

	if (method_params[req.method]) {
		json_object_object_foreach(call.parameters, key, val) {
			bool ok = false;

			(void)val;
			for (const char *const *a = method_params[req.method]; *a; a++)
				ok = ok || streq(*a, key);
			if (!ok)
				return bad_parameter(ret_error, key, "unknown parameter");
		}
	}

	switch (req.method) {
	case REQUEST_SET:
	case REQUEST_UNSET:
		if (!json_object_object_get_ex(call.parameters, "target", &t) || !json_object_is_type(t, json_type_string))
			return bad_parameter(ret_error, "target", "missing or not a string");
		break;
	case REQUEST_LIST:
		if (json_object_object_get_ex(call.parameters, "target", &t) && !json_object_is_type(t, json_type_string))
			return bad_parameter(ret_error, "target", "not a string");
		break;
	default:
		t = NULL;
		break;
	}
	if (req.method == REQUEST_SET) {
		r = parse_set(&req, ret_error);
		if (r < 0)
			return r;
	}
	if (req.method == REQUEST_SET || req.method == REQUEST_UNSET) {
		r = parse_remote(&req, ret_error);
		if (r < 0)
			return r;
	}
	if (req.method == REQUEST_SET) {
		r = parse_access(&req, ret_error);
		if (r < 0) {
			request_done(&req);
			return r;
		}
	}
	if (t) {
		req.target = json_object_get_string(t);
		r = resolve_target(&req, caller, ret_error);
		if (r < 0) {
			request_done(&req);
			if (r != -ENOMEM && ret_error->error && !ret_error->key) {
				/* errors about the target name it, as given */
				ret_error->key = "target";
				ret_error->value = strdup(json_object_get_string(t));
				if (!ret_error->value)
					return -ENOMEM;
			}
			return r;
		}
		req.rule.target = req.canonical;
	}
	req.rule.caller = caller;
	req.rule.remote = req.remote;
	*ret = req;
	return 0;
}
