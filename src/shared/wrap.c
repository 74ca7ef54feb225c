/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup-util.h"
#include "macro.h"
#include "varlink.h"
#include "wrap.h"

static bool endswith(const char *s, const char *suffix) {
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && streq(s + a - b, suffix);
}

/* Sets *ret to a new message (NULL when out of memory) and returns r. */
_printf_(3, 4) static int fail(char **ret, int r, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(ret, fmt, ap) < 0)
		*ret = NULL;
	va_end(ap);
	return r;
}

int wrap_self_target(char **ret_target, bool *ret_transient) {
	_cleanup_free_ char *cg = NULL;
	const char *id = getenv("INVOCATION_ID");
	char *t = NULL;
	int r;

	/* systemd sets $INVOCATION_ID for the processes of a unit it starts
	 * (systemd.exec(5)); a .service or .scope cgroup is then the unit's
	 * own, and moving out of it would take the command out of the unit's
	 * accounting, limits and stop logic. A process that merely inherited
	 * the variable sits in some other cgroup and takes the pid: path. */
	if (id && *id) {
		r = cg_pid_get_path(getpid(), &cg);
		if (r < 0 && r != -ENOMEDIUM)
			return r;
		if (r >= 0 && !streq(cg, "/") && (endswith(cg, ".service") || endswith(cg, ".scope"))) {
			if (asprintf(&t, "cgroup:%s", cg) < 0)
				return -ENOMEM;
			*ret_target = t;
			*ret_transient = true;
			return 0;
		}
	}
	if (asprintf(&t, "pid:%d", (int)getpid()) < 0)
		return -ENOMEM;
	*ret_target = t;
	*ret_transient = false;
	return 0;
}

int wrap_limit_self(const char *socket_path, const WrapRates *rates, int timeout_ms, char **ret_target,
		    WrapFailure *ret_failure, char **ret_message) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *target = NULL;
	_cleanup_close_ int fd = -1;
	_cleanup_json_ json_object *reply = NULL;
	json_object *params, *p = NULL, *reason = NULL, *param = NULL;
	const char *error = NULL;
	bool transient = false;
	int r;

	*ret_failure = WRAP_FAILURE_LOCAL;
	r = wrap_self_target(&target, &transient);
	if (r < 0)
		return fail(ret_message, r, "cannot find the cgroup of this process: %s", strerror(-r));
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return fail(ret_message, -ENAMETOOLONG, "socket path too long: %s", socket_path);
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);

	*ret_failure = WRAP_FAILURE_UNREACHABLE;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = negative_errno();
		return fail(ret_message, r, "cannot make a socket: %s", strerror(-r));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = negative_errno();
		return fail(ret_message, r, "cannot reach netbumpd at %s: %s", socket_path, strerror(-r));
	}

	params = json_object_new_object();
	if (!params)
		return fail(ret_message, -ENOMEM, "out of memory");
	json_object_object_add(params, "target", json_object_new_string(target));
	if (rates->has_up)
		json_object_object_add(params, "up", json_object_new_int64((int64_t)rates->up_bps));
	if (rates->has_down)
		json_object_object_add(params, "down", json_object_new_int64((int64_t)rates->down_bps));
	if (transient)
		json_object_object_add(params, "transient", json_object_new_boolean(true));

	/* vl_call_sync takes params over. */
	r = vl_call_sync(fd, VARLINK_INTERFACE ".Set", params, timeout_ms, &reply);
	if (r < 0)
		return fail(ret_message, r, "no answer from netbumpd at %s: %s", socket_path, strerror(-r));

	*ret_failure = WRAP_FAILURE_REFUSED;
	if (vl_reply_parse(reply, &error, &p) < 0)
		return fail(ret_message, -EBADMSG, "malformed reply from netbumpd");
	if (error) {
		const char *short_error = strrchr(error, '.') ? strrchr(error, '.') + 1 : error;

		if (p) {
			json_object_object_get_ex(p, "reason", &reason);
			json_object_object_get_ex(p, "parameter", &param);
		}
		return fail(ret_message, -EREMOTEIO, "netbumpd refused the limit: %s%s%s%s",
			    reason ? json_object_get_string(reason) : short_error, param ? " (parameter '" : "",
			    param ? json_object_get_string(param) : "", param ? "')" : "");
	}

	*ret_failure = WRAP_FAILURE_NONE;
	if (ret_target)
		*ret_target = TAKE_PTR(target);
	return 0;
}

int wrap_exec(char *const argv[], char **ret_message) {
	int r;

	execvp(argv[0], argv);
	r = errno;
	/* As sh(1) reports it: "not found" is 127, anything else that stops a
	 * found file from running (permissions, format) is 126. */
	if (r == ENOENT)
		return fail(ret_message, 127, "%s: command not found", argv[0]);
	return fail(ret_message, 126, "%s: cannot execute: %s", argv[0], strerror(r));
}
