/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <systemd/sd-bus.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpf.h"
#include "cgroup-util.h"
#include "iface.h"
#include "log.h"
#include "manager.h"
#include "access.h"
#include "scope-map.h"
#include "netns.h"
#include "mountns.h"
#include "named.h"
#include "paths.h"
#include "proc-watch.h"
#include "netns-lock.h"
#include "netbump.skel.h"
#include "netbump/netbump.h"
#include "persist.h"
#include "process.h"
#include "rule.h"
#include "server.h"
#include "sock-diag.h"
#include "state.h"
#include "conns.h"
#include "top.h"
#include "tree.h"

uint64_t now_usec(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int manager_new(Manager **ret) {
	Manager *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->listen_fd = -1;
	m->netns_lock_fd = -1;
	m->ingress_prog_fd = -1;
	m->state.fd = -1;
	m->next_rule_id = 1;
	m->max_rules_per_user = 64;
	m->socket_path = strdup("/run/netbump/netbumpd.sock");
	m->state_dir = strdup("/run/netbump");
	m->config_dir = strdup("/etc/netbump");
	m->minor_used = calloc((NB_MINOR_MAX + 8) / 8, 1);
	m->by_minor = calloc(NB_MINOR_MAX + 1, sizeof(Rule *));
	if (!m->socket_path || !m->state_dir || !m->config_dir || !m->minor_used || !m->by_minor) {
		manager_free(m);
		return -ENOMEM;
	}
	*ret = m;
	return 0;
}

Manager *manager_free(Manager *m) {
	if (!m)
		return NULL;
	manager_stop(m);
	manager_state_close(m);
	free(m->socket_path);
	free(m->state_dir);
	free(m->config_dir);
	manager_persist_free(m);
	free(m->cgroup_root);
	free(m->container_root);
	free(m->cgroup_root_abs);
	free(m->ct_why);
	free(m->cgroup_mount);
	free(m->minor_used);
	free(m->by_minor);
	free(m->adopt_classes);
	for (char **s = m->only_ifaces; s && *s; s++)
		free(*s);
	free(m->only_ifaces);
	free(m);
	return NULL;
}

/* --cgroup-root may name the subtree relative to the cgroup2 mount ("/a",
 * as /proc/PID/cgroup shows it) or by its absolute path under the mount. */
static int resolve_cgroup_root(Manager *m) {
	_cleanup_free_ char *rel = NULL, *abs = NULL, *spec = NULL;
	const char *given = m->cgroup_root ?: "/", *reason = NULL;
	size_t ml;
	Target t;
	struct stat st;
	int r;

	r = cg_find_mount(&m->cgroup_mount);
	if (r == -ENOMEDIUM) {
		_cleanup_free_ char *host = NULL;

		/* PID 1 has cgroup2 where this namespace has none: /sys was
		 * remounted, as `ip netns exec` does (mountns.h). */
		r = mountns_mount_cgroup2(&host);
		if (r == -ENOMEDIUM)
			return log_error_errno(r, "cgroup v2 is not mounted (no cgroup2 in /proc/self/mountinfo, nor in "
						  "PID 1's): netbumpd needs the unified cgroup hierarchy.");
		if (r < 0)
			return log_error_errno(r, "cgroup v2 is not mounted here, though it is at %s for PID 1: /sys was "
						  "remounted, as 'ip netns exec' does, and mounting cgroup2 for netbumpd "
						  "alone failed (%m). Start it with 'nsenter --net=/run/netns/NAME netbumpd', "
						  "which keeps the host's /sys.",
					       host ?: "?");
		log_notice("/sys was remounted (as 'ip netns exec' does) and had no cgroup2: mounted it at %s for "
			   "netbumpd alone. /sys/fs/bpf is hidden too, so the BPF pins live in %s/bpf in this "
			   "namespace only and a netbumpd restarted after a crash rebuilds the shaping rather than "
			   "taking it over; 'nsenter --net=/run/netns/NAME netbumpd' keeps the host's /sys.",
			   host, m->state_dir);
		r = cg_find_mount(&m->cgroup_mount);
	}
	if (r < 0)
		return log_error_errno(r, "cgroup v2 is not mounted (no cgroup2 in /proc/self/mountinfo).");

	ml = strlen(m->cgroup_mount);
	if (strncmp(given, m->cgroup_mount, ml) == 0 && (given[ml] == '/' || given[ml] == '\0'))
		given += ml;
	if (asprintf(&spec, "cgroup:%s", *given ? given : "/") < 0)
		return log_oom();
	r = target_parse(spec, &t, &reason);
	if (r < 0)
		return log_error_errno(r, "Invalid --cgroup-root %s: %s", m->cgroup_root, reason);
	rel = TAKE_PTR(t.path);
	target_done(&t);

	if (asprintf(&abs, "%s%s", m->cgroup_mount, streq(rel, "/") ? "" : rel) < 0)
		return log_oom();
	if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
		return log_error_errno(errno ?: ENOTDIR, "cgroup root %s does not exist: %m", abs);

	free(m->cgroup_root);
	m->cgroup_root = TAKE_PTR(rel);
	m->cgroup_root_abs = TAKE_PTR(abs);
	return 0;
}

static int make_state_dir(Manager *m) {
	if (mkdir(m->state_dir, 0755) >= 0) {
		m->created_state_dir = true;
		return 0;
	}
	if (errno != EEXIST)
		return log_error_errno(errno, "Failed to create state directory %s: %m", m->state_dir);
	return 0;
}

/* Socket-release events from the BPF programs (cgroup/sock_release), so a
 * sock: rule ends when its socket closes, with no polling. */
static int ringbuf_event(void *ctx, void *data, size_t size) {
	Manager *m = ctx;
	struct nb_event ev;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	if (ev.type == NB_EVENT_SOCK_RELEASED)
		manager_socket_released(m, ev.cookie);
	return 0;
}

static int ringbuf_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	Manager *m = userdata;
	int r = ring_buffer__consume(m->events);

	if (r < 0)
		log_warning_errno(r, "Failed to read BPF events: %m");
	return 0;
}

static int manager_events_start(Manager *m) {
	int r;

	m->events = ring_buffer__new(bpf_map__fd(m->skel->maps.events), ringbuf_event, m, NULL);
	if (!m->events)
		return log_error_errno(negative_errno(), "Failed to open the BPF event ring buffer: %m");
	r = sd_event_add_io(m->event, &m->events_io, ring_buffer__epoll_fd(m->events), EPOLLIN, ringbuf_io_cb, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the BPF event ring buffer: %m");
	return 0;
}

/* Longest pause between two periodic statistics refreshes. */
#define STATS_MAX_USEC (10u * 1000000u)

static int stats_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
	Manager *m = userdata;

	manager_ifaces_check(m);
	manager_containers_tick(m);
	/* The class statistics cost a dump of every class: 80 ms with 10,000
	 * rules. Taken at most every 100 times what the last one took, so the
	 * daemon stays near 1% of a CPU; List, Status and Top read them anew
	 * anyway, and their rates then span a few seconds instead of one. */
	if (m->rules && usec >= m->stats_next_usec) {
		uint64_t t0 = now_usec(), took;
		(void)manager_refresh_stats(m);
		took = now_usec() - t0;
		m->stats_next_usec = usec + (took * 100 > STATS_MAX_USEC ? STATS_MAX_USEC : took * 100);
	}
	(void)manager_top_sample(m);
	manager_clients_expire(m);
	(void)sd_event_source_set_time(s, usec + 1000000);
	return 0;
}

/* SIGHUP: the rules files again, as netbumpctl reload does. */
static int sighup_cb(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
	_cleanup_free_ char *reason = NULL;
	PersistReport rep;

	if (manager_persist_reload(userdata, &rep, &reason) == -ENOMEM)
		log_oom();
	return 0;
}

int manager_start(Manager *m) {
	sigset_t ss;
	uint64_t now;
	int r;

	m->start_usec = now_usec();

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_default(&m->event);
	if (r < 0)
		return log_error_errno(r, "Failed to allocate event loop: %m");
	r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(m->event, &m->sigint, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, sighup_cb, m);
	if (r < 0)
		return log_error_errno(r, "Failed to watch signals: %m");

	/* Nothing is touched before these two. */
	r = manager_check_interfaces(m);
	if (r < 0)
		return r;
	/* The interfaces of this namespace may be another
	 * netbumpd's, whose HTB and IFBs would look like leftovers below. */
	{
		_cleanup_free_ char *holder = NULL;

		r = netns_lock_take(m, &holder);
		if (r == -EADDRINUSE)
			return log_error_errno(r, "Another netbumpd runs in this network namespace: %s. One netbumpd "
						  "shapes a namespace's interfaces; this one changed nothing and exits.",
					       holder ?: "its process could not be asked");
		if (r < 0)
			return log_error_errno(r, "Failed to bind the abstract socket @%s that keeps one netbumpd per "
						  "network namespace: %m",
					       NETNS_LOCK_NAME);
		r = netns_lock_serve(m);
		if (r < 0)
			return log_error_errno(r, "Failed to watch the abstract socket @%s: %m", NETNS_LOCK_NAME);
	}

	r = resolve_cgroup_root(m);
	if (r < 0)
		return r;
	/* The rules files, before anything is touched: one that does not
	 * read stops the start with nothing changed. */
	r = manager_persist_read(m);
	if (r < 0)
		return r;
	/* Before touching anything: a running netbumpd's qdiscs and state
	 * would otherwise look like leftovers of a dead one. */
	if (manager_socket_in_use(m))
		return log_error_errno(-EADDRINUSE, "Another netbumpd is listening on %s; leaving it alone.",
				       m->socket_path);
	r = make_state_dir(m);
	if (r < 0)
		return r;

	r = nl_open(&m->nl);
	if (r < 0)
		return log_error_errno(r, "Failed to open rtnetlink socket: %m");

	/* A killed run's acknowledged rules come back (below); read them
	 * before the network leftovers are cleared, which drops the file. */
	(void)manager_state_load_rules(m, &m->saved, &m->n_saved);
	(void)manager_recover_cgroups(m);

	/* The programs of a killed run still classify (bpf.c pins them):
	 * taken over, its qdiscs, classes and filters are kept and matched
	 * to the rules restored below. Otherwise they are leftovers. */
	r = manager_bpf_load(m);
	if (r < 0)
		return r;
	if (m->adopted)
		(void)manager_state_load_clsact(m, &m->adopt_clsact, &m->n_adopt_clsact);
	else {
		r = manager_recover_leftovers(m);
		if (r < 0)
			return r;
	}

	/* Before the rules: paths.c keeps what it finds only while it runs. */
	proc_watch_start(m);

	r = manager_events_start(m);
	if (r < 0)
		return r;

	r = manager_listen(m);
	if (r < 0)
		return r;

	r = manager_link_monitor_start(m);
	if (r < 0)
		return r;
	r = manager_ifaces_enumerate(m);
	if (r < 0)
		return r;
	(void)manager_restore_rules(m);
	/* After the killed run's rules: a persistent one among them stays as
	 * it is when its line says the same, and is not made twice. */
	manager_persist_apply_boot(m);
	if (m->adopted) {
		/* The maps first: no entry left pointing at a class about to go. */
		manager_bpf_prune(m);
		tree_adopt_finish(m);
		/* What the killed run had on interfaces not shaped now. */
		(void)manager_recover_leftovers(m);
		free(m->adopt_clsact);
		m->adopt_clsact = NULL;
		m->n_adopt_clsact = 0;
	}

	sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	r = sd_event_add_time(m->event, &m->stats_timer, CLOCK_MONOTONIC, now + 1000000, 100000, stats_timer_cb, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->stats_timer, SD_EVENT_ON);
	if (r < 0)
		return log_error_errno(r, "Failed to start the statistics timer: %m");
	return 0;
}

/* Undoes everything, in the reverse order of start; safe to call twice and
 * on a half-started manager. */
void manager_stop(Manager *m) {
	manager_clients_free(m);
	m->listen_io = sd_event_source_disable_unref(m->listen_io);
	if (m->listen_fd >= 0) {
		close(m->listen_fd);
		m->listen_fd = -1;
		if (!m->listen_fd_passed && m->socket_path)
			(void)unlink(m->socket_path);
	}
	m->stats_timer = sd_event_source_disable_unref(m->stats_timer);
	manager_small_stop(m);
	m->monitor_io = sd_event_source_disable_unref(m->monitor_io);
	m->monitor = nl_free(m->monitor);
	m->events_io = sd_event_source_disable_unref(m->events_io);
	if (m->events) {
		ring_buffer__free(m->events);
		m->events = NULL;
	}

	/* Classes go with the qdiscs; first stop classifying, then remove
	 * the qdiscs, filters and IFBs. */
	/* The targets of deny/allow first: their processes go back, or to a
	 * rule on the same target, which then moves them back itself. */
	access_release_targets(m);
	manager_rules_stop(m);
	saved_rules_free(m->saved, m->n_saved);
	m->saved = NULL;
	m->n_saved = 0;
	m->bus = sd_bus_flush_close_unref(m->bus);
	manager_own_cgroup_remove(m);
	m->diag = sock_diag_free(m->diag);
	netns_stop(m);
	proc_watch_stop(m);
	manager_ifaces_free(m);
	manager_kept_clsact_free(m);
	manager_top_free(m);
	manager_conns_free(m);
	access_stop(m);
	scope_state_free(m);
	manager_bpf_unload(m);
	m->nl = nl_free(m->nl);

	/* Only a run that came up hands over nothing: one that failed to
	 * start keeps the rules it read for the next attempt. */
	if (m->started)
		manager_state_remove(m);
	if (m->created_state_dir && m->state_dir) {
		(void)rmdir(m->state_dir);
		m->created_state_dir = false;
	}

	/* Last: a next netbumpd may start once everything is undone. */
	netns_lock_release(m);
	m->sigterm = sd_event_source_disable_unref(m->sigterm);
	m->sigint = sd_event_source_disable_unref(m->sigint);
	m->sighup = sd_event_source_disable_unref(m->sighup);
	m->event = sd_event_unref(m->event);
}
