/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "scope.h"

void scope_addr_from_v4(const uint8_t v4[4], uint8_t ret[16]) {
	memset(ret, 0, 10);
	ret[10] = ret[11] = 0xff;
	memcpy(ret + 12, v4, 4);
}

bool scope_addr_is_v4(const uint8_t addr[16]) {
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	return memcmp(addr, mapped, sizeof(mapped)) == 0;
}

bool scope_cidr_contains(const ScopeCidr *c, const uint8_t a[16]) {
	unsigned full = c->len / 8, rest = c->len % 8;

	if (memcmp(c->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (a[full] & mask);
}

/* Whether the host bits of (addr, len) are all zero. */
static bool host_bits_zero(const uint8_t addr[16], unsigned len) {
	for (unsigned bit = len; bit < 128; bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

#define V4(a, b, c, d, l) { .addr = { [10] = 0xff, [11] = 0xff, [12] = a, [13] = b, [14] = c, [15] = d }, .len = 96 + (l) }
static const ScopeCidr lan_fixed[] = {
	V4(10, 0, 0, 0, 8),
	V4(169, 254, 0, 0, 16),
	V4(172, 16, 0, 0, 12),
	V4(192, 168, 0, 0, 16),
	{ .addr = { 0xfc }, .len = 7 },             /* ULA */
	{ .addr = { 0xfe, 0x80 }, .len = 10 },      /* link-local */
};
static const ScopeCidr loopback[] = {
	V4(127, 0, 0, 0, 8),
	{ .addr = { [15] = 1 }, .len = 128 },       /* ::1 */
};
#undef V4

const ScopeCidr *scope_loopback_prefixes(size_t *ret_n) {
	*ret_n = ELEMENTSOF(loopback);
	return loopback;
}

const ScopeCidr *scope_lan_prefixes(size_t *ret_n) {
	*ret_n = ELEMENTSOF(lan_fixed);
	return lan_fixed;
}

static int cidr_cmp(const void *a, const void *b) {
	const ScopeCidr *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);

	/* IPv4 (mapped, ::ffff:0:0/96) sorts after ::/8 by bytes: put it first. */
	bool vx = scope_addr_is_v4(x->addr) && x->len >= 96, vy = scope_addr_is_v4(y->addr) && y->len >= 96;
	if (vx != vy)
		return vx ? -1 : 1;
	if (c != 0)
		return c;
	return (int)x->len - (int)y->len;
}

/* One CIDR word: "a.b.c.d[/p]" or "x::y[/p]"; without a length, a host. */
static int parse_cidr(const char *w, size_t n, ScopeCidr *ret, const char **ret_why) {
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	unsigned long len;
	bool v6;
	uint8_t raw[16];

	if (n >= sizeof(buf)) {
		*ret_why = "too long for an address";
		return -EINVAL;
	}
	memcpy(buf, w, n);
	buf[n] = '\0';
	v6 = strchr(buf, ':') != NULL;
	slash = strchr(buf, '/');
	if (slash) {
		char *end;
		const char *d = slash + 1;

		if (*d < '0' || *d > '9' || (d[0] == '0' && d[1] != '\0')) {
			*ret_why = "bad prefix length";
			return -EINVAL;
		}
		errno = 0;
		len = strtoul(d, &end, 10);
		if (errno || *end != '\0' || len > (v6 ? 128u : 32u)) {
			*ret_why = v6 ? "prefix length must be 0 to 128" : "prefix length must be 0 to 32";
			return -EINVAL;
		}
		buf[slash - buf] = '\0';
	} else
		len = v6 ? 128 : 32;

	if (v6) {
		if (inet_pton(AF_INET6, buf, raw) != 1) {
			*ret_why = "not an IPv6 address";
			return -EINVAL;
		}
		memcpy(ret->addr, raw, 16);
		ret->len = (uint8_t)len;
	} else {
		if (inet_pton(AF_INET, buf, raw) != 1) {
			*ret_why = "not an IPv4 address or CIDR, nor 'lan' or 'internet'";
			return -EINVAL;
		}
		scope_addr_from_v4(raw, ret->addr);
		ret->len = (uint8_t)(96 + len);
	}
	if (!host_bits_zero(ret->addr, ret->len)) {
		*ret_why = "host bits set (name the network address)";
		return -EINVAL;
	}
	return 0;
}

int scope_parse(const char *s, Scope *ret, const char **ret_why, const char **ret_bad) {
	Scope sc = {};
	size_t cap = 0;
	const char *p = s;

	*ret_why = NULL;
	*ret_bad = NULL;
	if (!s || !*s) {
		*ret_why = "empty scope";
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		int r;

		*ret_bad = p;
		if (n == 0) {
			*ret_why = "empty word in the list";
			goto fail;
		}
		if (n == 3 && strncmp(p, "lan", 3) == 0)
			sc.lan = true;
		else if (n == 8 && strncmp(p, "internet", 8) == 0)
			sc.internet = true;
		else {
			ScopeCidr c = {};

			r = parse_cidr(p, n, &c, ret_why);
			if (r < 0)
				goto fail;
			if (sc.n_cidrs >= SCOPE_CIDRS_MAX) {
				*ret_why = "too many CIDRs in one scope";
				scope_done(&sc);
				return -E2BIG;
			}
			if (sc.n_cidrs == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				ScopeCidr *a = realloc(sc.cidrs, ncap * sizeof(*a));
				if (!a) {
					scope_done(&sc);
					return -ENOMEM;
				}
				sc.cidrs = a;
				cap = ncap;
			}
			sc.cidrs[sc.n_cidrs++] = c;
		}
		if (!end)
			break;
		p = end + 1;
	}
	*ret_bad = NULL;
	if (sc.n_cidrs > 1) {
		size_t k = 0;

		qsort(sc.cidrs, sc.n_cidrs, sizeof(*sc.cidrs), cidr_cmp);
		for (size_t i = 0; i < sc.n_cidrs; i++)
			if (k == 0 || cidr_cmp(&sc.cidrs[k - 1], &sc.cidrs[i]) != 0)
				sc.cidrs[k++] = sc.cidrs[i];
		sc.n_cidrs = k;
	}
	*ret = sc;
	return 0;
fail:
	scope_done(&sc);
	return -EINVAL;
}

void scope_done(Scope *s) {
	free(s->cidrs);
	*s = (Scope){};
}

char *scope_to_string(const Scope *s) {
	size_t cap = 64 + s->n_cidrs * (INET6_ADDRSTRLEN + 5), n = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < s->n_cidrs; i++) {
		char a[INET6_ADDRSTRLEN];
		const ScopeCidr *c = &s->cidrs[i];
		bool v4 = scope_addr_is_v4(c->addr) && c->len >= 96;

		if (v4)
			inet_ntop(AF_INET, c->addr + 12, a, sizeof(a));
		else
			inet_ntop(AF_INET6, c->addr, a, sizeof(a));
		n += (size_t)snprintf(out + n, cap - n, "%s%s/%u", n ? "," : "", a, v4 ? c->len - 96u : c->len);
	}
	if (s->lan)
		n += (size_t)snprintf(out + n, cap - n, "%slan", n ? "," : "");
	if (s->internet)
		n += (size_t)snprintf(out + n, cap - n, "%sinternet", n ? "," : "");
	return out;
}

static bool in_list(const ScopeCidr *l, size_t n, const uint8_t a[16]) {
	for (size_t i = 0; i < n; i++)
		if (scope_cidr_contains(&l[i], a))
			return true;
	return false;
}

static bool is_lan(const uint8_t a[16], const ScopeCidr *extra, size_t n_extra) {
	return in_list(lan_fixed, ELEMENTSOF(lan_fixed), a) || in_list(extra, n_extra, a);
}

bool scope_addr_is_loopback(const uint8_t a[16]) {
	return in_list(loopback, ELEMENTSOF(loopback), a);
}

bool scope_contains(const Scope *s, const uint8_t a[16], const ScopeCidr *lan_extra, size_t n_lan_extra) {
	if (in_list(s->cidrs, s->n_cidrs, a))
		return true;
	if (scope_addr_is_loopback(a))
		return false;
	if (s->lan || s->internet) {
		bool lan = is_lan(a, lan_extra, n_lan_extra);
		return lan ? s->lan : s->internet;
	}
	return false;
}

static int best_len(const ScopeCidr *l, size_t n, const uint8_t a[16]) {
	int best = -1;

	for (size_t i = 0; i < n; i++)
		if ((int)l[i].len > best && scope_cidr_contains(&l[i], a))
			best = l[i].len;
	return best;
}

int scope_match_len(const Scope *s, const uint8_t a[16], const ScopeCidr *lan_extra, size_t n_lan_extra) {
	int len = best_len(s->cidrs, s->n_cidrs, a), lan;

	if (scope_addr_is_loopback(a) || (!s->lan && !s->internet))
		return len;
	lan = best_len(lan_fixed, ELEMENTSOF(lan_fixed), a);
	if (best_len(lan_extra, n_lan_extra, a) > lan)
		lan = best_len(lan_extra, n_lan_extra, a);
	if (s->lan && lan > len)
		len = lan;
	if (s->internet && lan < 0 && len < 0)
		len = 0;
	return len;
}

bool scope_covers(const Scope *a, const Scope *b) {
	if (a->lan && a->internet && !scope_has_loopback(b))
		return true;
	if ((b->lan && !a->lan) || (b->internet && !a->internet))
		return false;
	for (size_t i = 0; i < b->n_cidrs; i++) {
		const ScopeCidr *c = &b->cidrs[i];
		bool in = false;

		for (size_t j = 0; j < a->n_cidrs && !in; j++)
			in = a->cidrs[j].len <= c->len && scope_cidr_contains(&a->cidrs[j], c->addr);
		if (!in && a->lan)
			for (size_t j = 0; j < ELEMENTSOF(lan_fixed) && !in; j++)
				in = lan_fixed[j].len <= c->len && scope_cidr_contains(&lan_fixed[j], c->addr);
		if (!in)
			return false;
	}
	return true;
}

bool scope_has_loopback(const Scope *s) {
	for (size_t i = 0; i < s->n_cidrs; i++) {
		const ScopeCidr *c = &s->cidrs[i];

		/* Either contains the other: they overlap. */
		for (size_t j = 0; j < ELEMENTSOF(loopback); j++)
			if (scope_cidr_contains(c, loopback[j].addr) ||
			    (c->len >= loopback[j].len && scope_cidr_contains(&loopback[j], c->addr)))
				return true;
	}
	return false;
}

int scope_lan_host_prefixes(ScopeCidr **ret, size_t *ret_n) {
	struct ifaddrs *ifa = NULL;
	ScopeCidr *l = NULL;
	size_t n = 0, cap = 0;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		ScopeCidr c = {};
		unsigned bits = 0;

		if (!i->ifa_addr || !i->ifa_netmask)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)i->ifa_addr, *mk = (const void *)i->ifa_netmask;
			uint32_t m = ntohl(mk->sin_addr.s_addr);

			while (bits < 32 && (m & (UINT32_C(0x80000000) >> bits)))
				bits++;
			scope_addr_from_v4((const uint8_t *)&a->sin_addr, c.addr);
			c.len = (uint8_t)(96 + bits);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)i->ifa_addr, *mk = (const void *)i->ifa_netmask;

			while (bits < 128 && (mk->sin6_addr.s6_addr[bits / 8] & (0x80 >> (bits % 8))))
				bits++;
			memcpy(c.addr, &a->sin6_addr, 16);
			c.len = (uint8_t)bits;
		} else
			continue;
		for (unsigned b = c.len; b < 128; b++)
			c.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
		if (scope_addr_is_loopback(c.addr))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			ScopeCidr *a = realloc(l, ncap * sizeof(*a));
			if (!a) {
				free(l);
				freeifaddrs(ifa);
				return -ENOMEM;
			}
			l = a;
			cap = ncap;
		}
		l[n++] = c;
	}
	freeifaddrs(ifa);
	*ret = l;
	*ret_n = n;
	return 0;
}
