/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTB parameters of a rule's classes and the sizes of its leaf queues,
 * from what nest.c wants (ClassSpec): pure arithmetic, tested without root
 * (tests/unit/test-htb-params.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nest.h"
#include "netlink.h"

/* rate, ceil (= rate), burst and quantum for a class at bps. */
void htb_params(uint64_t bps, uint32_t mtu, struct nl_htb_class *c);
/* The rule class of a spec. */
void rule_class_params(const ClassSpec *spec, uint32_t mtu, struct nl_htb_class *c);
/* One of its two leaf classes: the small-packet one or the bulk one. */
void leaf_class_params(const ClassSpec *spec, uint32_t mtu, bool small, struct nl_htb_class *c);
/* What a leaf queue is sized for. */
uint64_t leaf_bps(const ClassSpec *spec);
/* The byte limit of a leaf FIFO for bps; whole: it must take whole GSO
 * aggregates (uploads). */
uint32_t fifo_limit(uint64_t bps, uint32_t mtu, bool whole);
