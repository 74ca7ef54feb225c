/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "scope.h"
#include "tests.h"

/* Parses s and checks its canonical form. */
static void good(const char *s, const char *canon) {
	const char *why, *bad;
	Scope sc;
	char *out;

	ASSERT_EQ(scope_parse(s, &sc, &why, &bad), 0);
	out = scope_to_string(&sc);
	ASSERT_STREQ(out, canon);
	free(out);
	scope_done(&sc);
}

static void bad(const char *s, int err, const char *why_want, const char *bad_want) {
	const char *why = NULL, *b = NULL;
	Scope sc;

	ASSERT_EQ(scope_parse(s, &sc, &why, &b), err);
	ASSERT_TRUE(why != NULL);
	ASSERT_STREQ(why, why_want);
	if (bad_want)
		ASSERT_STREQ(b, bad_want);
}

static void addr(const char *text, uint8_t ret[16]) {
	uint8_t v4[4];

	if (inet_pton(AF_INET, text, v4) == 1)
		scope_addr_from_v4(v4, ret);
	else
		ASSERT_EQ(inet_pton(AF_INET6, text, ret), 1);
}

static bool has(const char *scope, const char *a) {
	const char *why, *b;
	uint8_t x[16];
	Scope sc;
	bool r;

	ASSERT_EQ(scope_parse(scope, &sc, &why, &b), 0);
	addr(a, x);
	r = scope_contains(&sc, x, NULL, 0);
	scope_done(&sc);
	return r;
}

static bool covers(const char *a, const char *b) {
	const char *why, *bw;
	Scope x, y;
	bool r;

	ASSERT_EQ(scope_parse(a, &x, &why, &bw), 0);
	ASSERT_EQ(scope_parse(b, &y, &why, &bw), 0);
	r = scope_covers(&x, &y);
	scope_done(&x);
	scope_done(&y);
	return r;
}

static bool loopback(const char *a) {
	const char *why, *bw;
	Scope x;
	bool r;

	ASSERT_EQ(scope_parse(a, &x, &why, &bw), 0);
	r = scope_has_loopback(&x);
	scope_done(&x);
	return r;
}

int main(void) {
	/* Canonical: sorted, IPv4 first, duplicates gone, words last. */
	good("198.18.0.1", "198.18.0.1/32");
	good("internet,198.18.0.0/15,lan,fd18::/64", "198.18.0.0/15,fd18::/64,lan,internet");
	good("fd18::1/128,198.18.0.2/32,198.18.0.2", "198.18.0.2/32,fd18::1/128");
	good("0.0.0.0/0,::/0", "0.0.0.0/0,::/0");
	good("169.254.169.254/32,fd00:ec2::254/128", "169.254.169.254/32,fd00:ec2::254/128");
	good("::ffff:198.18.0.0/112", "198.18.0.0/16");
	good("lan", "lan");

	/* Refused, naming the word. */
	bad("", -EINVAL, "empty scope", NULL);
	bad("lan,,internet", -EINVAL, "empty word in the list", ",internet");
	bad("lan,", -EINVAL, "empty word in the list", "");
	bad("198.18.0.1/15", -EINVAL, "host bits set (name the network address)", "198.18.0.1/15");
	bad("fd18::1/64", -EINVAL, "host bits set (name the network address)", "fd18::1/64");
	bad("198.18.0.0/33", -EINVAL, "prefix length must be 0 to 32", NULL);
	bad("fd18::/129", -EINVAL, "prefix length must be 0 to 128", NULL);
	bad("198.18.0.0/", -EINVAL, "bad prefix length", NULL);
	bad("198.18.0.0/08", -EINVAL, "bad prefix length", NULL);
	bad("198.18.0.0/-1", -EINVAL, "bad prefix length", NULL);
	bad("198.18.0.0/1x", -EINVAL, "prefix length must be 0 to 32", NULL);
	bad("198.18.0", -EINVAL, "not an IPv4 address or CIDR, nor 'lan' or 'internet'", NULL);
	bad("LAN", -EINVAL, "not an IPv4 address or CIDR, nor 'lan' or 'internet'", "LAN");
	bad("lan,fd18:::1", -EINVAL, "not an IPv6 address", "fd18:::1");
	bad("198.18.0.0/15 ", -EINVAL, "prefix length must be 0 to 32", NULL);

	/* Membership, edges of a prefix included. */
	ASSERT_TRUE(has("198.18.0.0/31", "198.18.0.1"));
	ASSERT_TRUE(!has("198.18.0.0/31", "198.18.0.2"));
	ASSERT_TRUE(!has("198.18.0.0/31", "198.17.255.255"));
	ASSERT_TRUE(has("fd18::/64", "fd18::ffff:ffff:ffff:ffff"));
	ASSERT_TRUE(!has("fd18::/64", "fd18:0:0:1::"));
	ASSERT_TRUE(has("0.0.0.0/0", "1.2.3.4"));
	ASSERT_TRUE(!has("0.0.0.0/0", "2001:db8::1"));
	ASSERT_TRUE(has("::/0", "2001:db8::1"));
	ASSERT_TRUE(has("lan", "192.168.1.1"));
	ASSERT_TRUE(has("lan", "fe80::1"));
	ASSERT_TRUE(has("lan", "fd00::1"));
	ASSERT_TRUE(!has("lan", "127.0.0.1"));
	ASSERT_TRUE(!has("internet", "127.0.0.1"));
	ASSERT_TRUE(!has("lan,internet", "::1"));
	ASSERT_TRUE(has("127.0.0.0/8", "127.0.0.1"));
	ASSERT_TRUE(has("lan", "169.254.169.254"));
	ASSERT_TRUE(!has("lan", "8.8.8.8"));
	ASSERT_TRUE(!has("lan", "172.32.0.1"));
	ASSERT_TRUE(has("internet", "8.8.8.8"));
	ASSERT_TRUE(has("internet", "2001:db8::1"));
	ASSERT_TRUE(!has("internet", "10.1.2.3"));
	ASSERT_TRUE(has("internet,10.1.0.0/16", "10.1.2.3"));

	/* Ranking, as the BPF walk does. */
	{
		const char *why, *bw;
		uint8_t x[16];
		Scope sc;

		ASSERT_EQ(scope_parse("198.18.0.0/15,198.18.0.1/32,lan,internet", &sc, &why, &bw), 0);
		addr("198.18.0.1", x);
		ASSERT_EQ(scope_match_len(&sc, x, NULL, 0), 128);
		addr("198.18.0.2", x);
		ASSERT_EQ(scope_match_len(&sc, x, NULL, 0), 96 + 15);
		addr("10.0.0.1", x);
		ASSERT_EQ(scope_match_len(&sc, x, NULL, 0), 96 + 8);
		addr("8.8.8.8", x);
		ASSERT_EQ(scope_match_len(&sc, x, NULL, 0), 0);
		addr("127.0.0.1", x);
		ASSERT_EQ(scope_match_len(&sc, x, NULL, 0), -1);
		scope_done(&sc);
	}

	/* Containment, for nesting. */
	ASSERT_TRUE(covers("198.18.0.0/15", "198.18.0.1/32"));
	ASSERT_TRUE(!covers("198.18.0.1/32", "198.18.0.0/15"));
	ASSERT_TRUE(covers("lan", "192.168.7.0/24"));
	ASSERT_TRUE(!covers("lan", "internet"));
	ASSERT_TRUE(covers("lan,internet", "fd18::/64"));
	ASSERT_TRUE(!covers("internet", "198.18.0.0/15")); /* not sure: no */

	/* What would cut local tooling off. */
	ASSERT_TRUE(!loopback("lan"));
	ASSERT_TRUE(!loopback("lan,internet"));
	ASSERT_TRUE(loopback("0.0.0.0/0"));
	ASSERT_TRUE(loopback("127.0.0.0/8"));
	ASSERT_TRUE(loopback("127.0.0.1/32"));
	ASSERT_TRUE(loopback("::1/128"));
	ASSERT_TRUE(loopback("::/0"));
	ASSERT_TRUE(!loopback("::2/128"));
	ASSERT_TRUE(!loopback("128.0.0.0/8"));
	ASSERT_TRUE(!loopback("198.18.0.0/15,fd18::/64,internet"));
	return 0;
}
