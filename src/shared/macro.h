/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers used everywhere: scope-based cleanup and ownership transfer. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void freep(void *p) {
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hands a pointer over: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                 \
	({                                                                                          \
		__typeof__(p) _p = (p);                                                             \
		(p) = NULL;                                                                         \
		_p;                                                                                 \
	})
#define TAKE_FD(fd)                                                                                 \
	({                                                                                          \
		int _fd = (fd);                                                                     \
		(fd) = -1;                                                                          \
		_fd;                                                                                \
	})

/* -errno of the last failed libc call, never 0. */
static inline int negative_errno(void) {
	return errno > 0 ? -errno : -EIO;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
