/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A minimal harness: each check prints where it failed and the test exits 1. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_TEST_SKIP 77

#define ASSERT_TRUE(expr)                                                                           \
	do {                                                                                        \
		if (!(expr)) {                                                                      \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr); \
			exit(EXIT_FAILURE);                                                         \
		}                                                                                   \
	} while (0)

#define ASSERT_EQ(a, b)                                                                             \
	do {                                                                                        \
		long long _a = (long long)(a), _b = (long long)(b);                                 \
		if (_a != _b) {                                                                     \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, \
				#b, _a, _b);                                                        \
			exit(EXIT_FAILURE);                                                         \
		}                                                                                   \
	} while (0)

#define ASSERT_STREQ(a, b)                                                                          \
	do {                                                                                        \
		const char *_a = (a), *_b = (b);                                                    \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                            \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
				#a, #b, _a ?: "(null)", _b ?: "(null)");                            \
			exit(EXIT_FAILURE);                                                         \
		}                                                                                   \
	} while (0)

#define ASSERT_OK(r) ASSERT_TRUE((r) >= 0)
