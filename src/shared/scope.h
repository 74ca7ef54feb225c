/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Remote scopes: the set of remote addresses a rule covers ("--remote
 * SCOPE"). A scope is a comma list of IPv4/IPv6 CIDRs and the words "lan"
 * and "internet". Parsed once at the edge into a Scope; its canonical
 * string (scope_to_string) is part of the rule's identity.
 *
 * Addresses are kept as 16 bytes: IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2), so one trie holds both
 * families; an IPv4 prefix length p is stored as 96 + p.
 *
 * Pure: no system call except scope_lan_host_prefixes() (getifaddrs()).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More CIDRs than this in one scope is refused (bench/ loads 10,000). */
#define SCOPE_CIDRS_MAX 16384u

typedef struct ScopeCidr {
	uint8_t addr[16]; /* network address, host bits zero; IPv4 mapped */
	uint8_t len;      /* prefix length over the 128 bits (IPv4: 96 + p) */
} ScopeCidr;

typedef struct Scope {
	ScopeCidr *cidrs; /* sorted, without duplicates */
	size_t n_cidrs;
	bool lan;         /* private, ULA, link-local and the host's subnets */
	bool internet;    /* every address that is neither "lan" nor loopback */
} Scope;

/* Parses s into *ret (zeroed first). Refuses, with a static reason in
 * *ret_why naming the bad word: an empty scope or word, a malformed
 * address or prefix length, host bits set (198.18.0.1/15: say
 * 198.18.0.0/15), more than SCOPE_CIDRS_MAX CIDRs. -EINVAL / -E2BIG;
 * *ret_bad points at the bad word's start in s (or NULL). */
int scope_parse(const char *s, Scope *ret, const char **ret_why, const char **ret_bad);
void scope_done(Scope *s);

/* Canonical text: CIDRs sorted (IPv4 first, in address order), then
 * "lan", then "internet"; IPv4 in dotted form. NULL on ENOMEM. */
char *scope_to_string(const Scope *s);

/* The 128-bit form of an IPv4 (4 bytes) or IPv6 (16 bytes) address. */
void scope_addr_from_v4(const uint8_t v4[4], uint8_t ret[16]);
bool scope_addr_is_v4(const uint8_t addr[16]);

/* Whether the prefix (addr, len) contains the address a. */
bool scope_cidr_contains(const ScopeCidr *c, const uint8_t a[16]);

/* Whether the address is in the scope; lan_extra: the host's subnets (see
 * scope_lan_host_prefixes), n_lan_extra entries. */
bool scope_contains(const Scope *s, const uint8_t a[16], const ScopeCidr *lan_extra, size_t n_lan_extra);

/* The prefix length by which the scope holds a, as the BPF walk ranks
 * scopes (the longest wins): a CIDR's length, "lan" the length of the lan
 * prefix that holds a, "internet" 0; -1 when it does not hold a. */
int scope_match_len(const Scope *s, const uint8_t a[16], const ScopeCidr *lan_extra, size_t n_lan_extra);

/* Whether a contains all of b (every CIDR of b inside a CIDR of a, "lan"
 * only in "lan", "internet" only in "internet"; conservative: false when
 * not sure). */
bool scope_covers(const Scope *a, const Scope *b);

/* Loopback (127.0.0.0/8, ::1) is the host talking to itself: neither
 * "lan" nor "internet". Whether a CIDR of the scope reaches into it. */
bool scope_has_loopback(const Scope *s);
bool scope_addr_is_loopback(const uint8_t a[16]);
const ScopeCidr *scope_loopback_prefixes(size_t *ret_n);

/* The fixed prefixes "lan" stands for (RFC 1918 private, RFC 4193 ULA,
 * link-local), *ret_n of them. */
const ScopeCidr *scope_lan_prefixes(size_t *ret_n);

/* The subnets of the host's interfaces (in the caller's network
 * namespace) but loopback's, also "lan": a new array in *ret, its length
 * in *ret_n. */
int scope_lan_host_prefixes(ScopeCidr **ret, size_t *ret_n);
