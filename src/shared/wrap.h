/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * "Limit myself, then become the command": what netbump-wrap and
 * `netbumpctl run` share. The calling process asks netbumpd to limit it,
 * waits for the ack and then execs the command, so the command keeps the
 * PID and the cgroup the limit was made for, from its first packet on, and
 * no wrapper process is left between it and its parent.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct WrapRates {
	uint64_t up_bps;   /* bit/s, 0: unlimited in that direction */
	uint64_t down_bps;
	bool has_up;       /* send "up" at all (a direction not sent keeps what an existing rule has) */
	bool has_down;
} WrapRates;

typedef enum WrapFailure {
	WRAP_FAILURE_NONE,
	WRAP_FAILURE_LOCAL,       /* before anything was sent: our own cgroup, memory */
	WRAP_FAILURE_UNREACHABLE, /* no connection, or no reply */
	WRAP_FAILURE_REFUSED,     /* the daemon answered with an error */
} WrapFailure;

/* The target that limits the calling process:
 *  - "pid:<getpid()>": the daemon moves the process into a cgroup of its own
 *    (so the PID must be the one the daemon sees: same PID namespace);
 *  - inside a systemd unit's own cgroup ($INVOCATION_ID set and the cgroup
 *    path ending in ".service" or ".scope"): "cgroup:<that path>" with
 *    *ret_transient true, so that the process never leaves its unit and the
 *    rule ends when the unit's cgroup empties. */
int wrap_self_target(char **ret_target, bool *ret_transient);

/* Asks netbumpd on socket_path to limit the calling process (the target
 * above) and waits at most timeout_ms for its ack. 0 on success, with
 * *ret_target (may be NULL) the target that was set. On failure -errno,
 * *ret_failure saying where it failed and *ret_message a one-line reason
 * (malloc'd; NULL only when out of memory). */
int wrap_limit_self(const char *socket_path, const WrapRates *rates, int timeout_ms, char **ret_target,
		    WrapFailure *ret_failure, char **ret_message);

/* execvp(argv[0], argv). Returns only when that failed: the exit status a
 * shell gives (127 when the command was not found, 126 when it was found
 * but could not be executed) and *ret_message a one-line reason (malloc'd;
 * NULL only when out of memory). */
int wrap_exec(char *const argv[], char **ret_message);
