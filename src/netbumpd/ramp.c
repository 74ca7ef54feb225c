/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Soft landing of download limits on flows that are already running.
 *
 * A remote TCP sender that ran unlimited has megabytes in flight (our
 * receive window grew with the fast path). Cutting its rate at once to a
 * few Mbit/s makes the leaf queue drop nearly all of that: thousands of
 * segments to resend at the new rate, retransmission timeouts, seconds at a
 * fraction of the limit (measured: 3-5 Mbit/s for 4-5 s under an 8mbit
 * limit). Instead the class rate halves every step (below) from the rate
 * the flows run at, so the sender sees a few losses per step and shrinks its
 * window as it goes; the limit holds within about a second. Uploads need
 * none of this: a local sender is held back by TCP small queues, not drops.
 *
 * A step must outlast the flows' round trip, queueing included, or the
 * sender has not yet answered one cut when the next comes. Flows that ran
 * unlimited (a new rule) get 100 ms: their windows and round trips are
 * those of a fast path with full queues somewhere. Flows already held to a
 * limit (a lowered one) queue at most ~50 ms in our leaf, and get 50 ms, so
 * that the new limit holds within about a second of the change.
 *
 * New rules ramp only when their target has established TCP sockets now,
 * so a command started under a limit is limited from its first packet. The
 * probe starts before the rule classifies anything (ramp_prepare()): a class
 * made at the limit and raised a few milliseconds later has by then dropped
 * hundreds of segments of a multi-gigabit flow, and the sender recovers from
 * that by retransmission timeouts, stalling for seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-util.h"
#include "iface.h"
#include "kind.h"
#include "log.h"
#include "manager.h"
#include "ramp.h"
#include "sock-diag.h"

#define RAMP_PROBE_USEC 100000u /* measure the flows' rate for this long */
/* then halve the class rate this often: */
#define RAMP_STEP_NEW_USEC 100000u   /* flows that ran unlimited */
#define RAMP_STEP_LOWER_USEC 50000u  /* flows held to a higher limit */
/* Above this many times the limit the flows are "fast" and ramp. */
#define RAMP_FACTOR 2u
/* "Unshaped" while probing: above any link this runs on. */
#define RATE_PROBE_BPS UINT64_C(100000000000)

static void ramp_set(Manager *m, Rule *rule, uint64_t rate) {
	for (Iface *i = m->ifaces; i; i = i->next)
		(void)iface_set_down_rate(m, i, rule, rate);
	rule->ramp_rate = rate;
}

void ramp_stop(Rule *rule) {
	rule->ramp_timer = sd_event_source_disable_unref(rule->ramp_timer);
	rule->ramp_rate = 0;
}

static int ramp_cb(sd_event_source *s, uint64_t usec, void *userdata) {
	Rule *rule = userdata;
	Manager *m = rule->manager;
	uint64_t target = rule->down_bps, next;

	if (rule->ramp_rate == 0) {
		/* End of the probe: how fast are the flows really? */
		uint64_t bytes = iface_down_bytes(m, rule), dt = usec - rule->ramp_usec;
		uint64_t rate = dt ? (bytes - rule->ramp_bytes) * 8 * 1000000 / dt : 0;

		log_debug("%s: flows run at %llu bit/s; landing at %llu.", rule->name, (unsigned long long)rate,
			  (unsigned long long)target);
		next = rate / 2;
	} else
		next = rule->ramp_rate / 2;

	if (next <= target || target == 0) {
		ramp_set(m, rule, target);
		ramp_stop(rule);
		return 0;
	}
	ramp_set(m, rule, next);
	(void)sd_event_source_set_time(s, usec + rule->ramp_step_usec);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static int ramp_arm(Manager *m, Rule *rule, uint64_t delay) {
	uint64_t now;
	int r;

	sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	if (rule->ramp_timer) {
		r = sd_event_source_set_time(rule->ramp_timer, now + delay);
		if (r >= 0)
			r = sd_event_source_set_enabled(rule->ramp_timer, SD_EVENT_ONESHOT);
		return r;
	}
	return sd_event_add_time(m->event, &rule->ramp_timer, CLOCK_MONOTONIC, now + delay, 10000, ramp_cb, rule);
}

int ramp_lower(Manager *m, Rule *rule, uint64_t old) {
	if (!rule->down_bps || !old || old / RAMP_FACTOR <= rule->down_bps)
		return 0;
	if (rule->ramp_rate && rule->ramp_rate < old)
		old = rule->ramp_rate; /* already on the way down (at its pace) */
	else
		rule->ramp_step_usec = RAMP_STEP_LOWER_USEC;
	ramp_set(m, rule, old / 2);
	return ramp_arm(m, rule, rule->ramp_step_usec);
}

/* ---- does the target have running TCP flows? ---- */

typedef struct FlowScan {
	FlowSet set;
	bool found;
} FlowScan;

static int flow_cb(const struct sock_info *s, void *userdata) {
	FlowScan *fs = userdata;

	if (s->protocol != IPPROTO_TCP || s->state != TCP_ESTABLISHED)
		return 0;
	for (size_t k = 0; k < fs->set.n_cgroups; k++)
		if (s->cgroup_id == fs->set.cgroups[k])
			goto hit;
	for (size_t k = 0; k < fs->set.n_cookies; k++)
		if (s->cookie == fs->set.cookies[k])
			goto hit;
	if (fs->set.uid >= 0 && s->uid == (uint32_t)fs->set.uid)
		goto hit;
	return 0;
hit:
	fs->found = true;
	return 1; /* stop the dump */
}

static bool target_has_flows(Manager *m, Rule *rule) {
	FlowScan fs = { .set.uid = -1 };

	if (!rule_kind(rule)->flows(m, rule, &fs.set)) {
		free(fs.set.cgroups);
		return false;
	}
	if (!m->diag && sock_diag_open(&m->diag) < 0) {
		free(fs.set.cgroups);
		return false;
	}
	(void)sock_diag_dump(m->diag, flow_cb, &fs);
	free(fs.set.cgroups);
	return fs.found;
}

int ramp_prepare(Manager *m, Rule *rule) {
	if (!rule->down_bps || rule->ramp_timer || !target_has_flows(m, rule))
		return 0;
	/* Let the flows through unshaped for a moment to see their rate. */
	for (Iface *i = m->ifaces; i; i = i->next)
		(void)iface_set_down_rate(m, i, rule, RATE_PROBE_BPS);
	rule->ramp_bytes = iface_down_bytes(m, rule);
	sd_event_now(m->event, CLOCK_MONOTONIC, &rule->ramp_usec);
	rule->ramp_rate = 0;
	rule->ramp_step_usec = RAMP_STEP_NEW_USEC;
	return ramp_arm(m, rule, RAMP_PROBE_USEC);
}
