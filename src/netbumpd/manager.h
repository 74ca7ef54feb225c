/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's state. One Manager owns everything netbumpd created: the BPF
 * object and its links, the interfaces it shapes (with their IFBs, qdiscs
 * and filters), the rules, the listening socket and its clients. Every
 * change to the host is recorded here first so that stop can undo it.
 */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "nest.h"
#include "scope.h"
#include "scope-keys.h"
#include "rule-index.h"
#include "netlink.h"
#include "target.h"
#include "varlink.h"

struct netbump_bpf;
struct bpf_link;
struct ring_buffer;
struct TopState;
struct ConnsState;
struct ScopeState;
struct AccessRule;
struct AccessRuntime;
struct NetnsState;
struct PathsCache;
struct proc_watch_bpf;

/* Name prefix of the IFB netbump makes for each interface: "nbifb<ifindex>".
 * A prefix of our own (never ifb0) so we only ever delete what we made. */
#define NB_IFB_PREFIX "nbifb"
#define NB_IFB_ALIAS "netbump"
/* cls_bpf filter on clsact ingress: its prio and name mark it as ours. */
#define NB_FILTER_PRIO 0xbb01u
#define NB_FILTER_NAME "netbump"

#define RULE_NAME_BUCKETS 4096u

typedef struct Manager Manager;

typedef struct Iface {
	uint32_t ifindex;
	char name[IF_NAMESIZE];
	uint32_t mtu;
	uint32_t ifb_ifindex;
	char ifb_name[IF_NAMESIZE];
	bool htb;            /* our root HTB is on the interface */
	bool ifb_htb;        /* ... and on its IFB */
	bool created_clsact; /* we created the clsact qdisc (delete it on stop) */
	bool filter;         /* our ingress filter is attached */
	const char *skipped; /* why the interface is not shaped, or NULL */
	const char *degraded; /* someone else's change we do not undo, or NULL */
	bool foreign_root;    /* skipped for someone else's root qdisc: taken once it goes */
	char why[224];        /* skipped or degraded point here when the words name the qdisc */
	struct Iface *next;
} Iface;

typedef struct RuleStats {
	uint64_t bytes;
	uint64_t packets;
	uint64_t drops;
	uint64_t backlog;
	uint64_t rate_bps; /* over the last sampling period */
	uint64_t last_bytes;
	uint64_t last_usec;
} RuleStats;

/* A process a pid rule moved, and where it came from. */
typedef struct Moved {
	pid_t pid;
	char *from;      /* cgroup path relative to the mount */
	char *from_unit; /* where systemd owns the tree: the unit it was in */
} Moved;

typedef struct SavedRule {
	uint64_t id;
	uid_t owner;
	uint64_t up, down;
	uint64_t min_up, min_down;
	Priority priority;
	uint32_t minor; /* its class, 0: not known */
	bool transient;
	bool persistent; /* from the rules files (persist.h) */
	char *target; /* canonical */
	char *remote; /* canonical scope, NULL: unscoped */
	Moved *moved;
	size_t n_moved;
	uint64_t *cookies;
	size_t n_cookies;
} SavedRule;

/* Where a persistent rule comes from and what its line says (persist.h). */
typedef struct PersistSpec {
	char *file;    /* NULL: restored after a crash, its line not read yet */
	unsigned line;
	uint64_t up, down, min_up, min_down;
	Priority priority;
} PersistSpec;

/* A line of the rules files that is not in force, and why. */
typedef struct PersistMiss {
	char *file;
	unsigned line;
	char *target;
	char *reason;
} PersistMiss;

/* log_struct() fields of an event the daemon makes itself on a rule (ends,
 * restored): RULE= and TARGET= its canonical target, UID= its owner. */
#define RULE_FIELDS(r) LOG_FIELDS({ "RULE", (r)->name }, { "TARGET", (r)->name }, { "UID", LOG_UINT((r)->owner) })

typedef struct Rule {
	Manager *manager;
	uint64_t id;
	uid_t owner;       /* who made it (SO_PEERCRED of the client) */
	Target target;
	char *name;        /* canonical target string */
	uint64_t key;      /* cgroup id (cgroup, pid), uid (user), socket cookie (sock) */
	uint32_t minor;    /* HTB class minor, same on every interface and IFB */
	uint32_t minor_wish; /* the one it had before a restart: taken if free */
	uint64_t up_bps;   /* 0 = unlimited */
	uint64_t down_bps; /* 0 = unlimited */
	RuleStats up, down;
	bool small_first;    /* its classes get the small-packet leaf (iface.c) */
	bool leaves;         /* its rule classes have leaf classes (the bulk one, and the small one once
			      * made): rules with small_first or nested rules; else the rule class is
			      * the leaf (tree.c) */
	bool small_made;     /* ... and the small-packet one is made (made lazily) */
	bool small_failed;   /* making it failed: not tried again */
	bool down_segmented; /* its download classes have the segmenting TBF leaf */
	uint64_t state_sig;  /* of its lines in the state file; 0: not written */
	uint64_t state_new_sig; /* state_append(): this pass's signature, kept once written */
	struct Rule *id_next;  /* Manager.by_id (rule-index.c) */
	struct Rule *key_next; /* Manager.by_key: cgroup: and unit: rules by Rule.key */
	bool indexed;          /* in both */
	size_t state_slot;   /* its entry in Manager.state.rules, + 1 */

	/* A transient rule ends when its cgroup empties (pid rules, and
	 * cgroup rules made for a wrapped command). */
	bool transient;
	sd_event_source *events_watch; /* inotify on cgroup.events */
	char *cgroup_abs;              /* the cgroup watched / made for a pid rule */

	/* pid rules */
	int pidfd;
	sd_event_source *pidfd_watch;
	bool exited; /* the process is gone, children it left keep the rule;
		      * "pid:PID" now names whoever gets that PID next */
	bool made_cgroup; /* cgroup_abs is ours: remove it when the rule goes */
	Moved *moved;
	size_t n_moved;
	uint64_t *cookies; /* sockets the process had when the rule was made */
	size_t n_cookies;

	char *scope; /* pid rules where systemd owns the tree: our transient scope */

	/* Scoped rules (--remote, scope.h, scope-map.c): the canonical scope,
	 * NULL for an unscoped rule; parsed; its scope id in the BPF maps and
	 * the key it is written under there (0: not written). */
	char *remote;
	Scope remote_scope;
	uint32_t sid;
	/* The keys its entries are written under (scope-keys.h): those of its
	 * target now, of the rule that holds it where it leans */
	ScopeKey *scope_keys;
	size_t n_scope_keys;
	/* pid: and exe: (grip.h): another rule on the same target holds its
	 * processes (their cgroups, sockets, watches); this one has none */
	bool leans;
	/* Not a rule of its own: the target of that deny or allow, resolved
	 * and followed (grip.h); in no list of rules, no class */
	struct AccessRule *access;

	/* Soft landing of a download limit on flows already running (ramp.c):
	 * the class rate steps down to down_bps instead of dropping there. */
	sd_event_source *ramp_timer;
	uint64_t ramp_rate;  /* the download classes' rate now; 0 = probing */
	uint64_t ramp_bytes; /* class bytes when probing started */
	uint64_t ramp_usec;
	uint32_t ramp_step_usec; /* time between two halvings */

	/* sock rules: the socket's owner (sk_uid, fixed for its life), to whom
	 * the rule is shown */
	uid_t sock_uid;
	uint64_t sock_cgroup_id; /* ... and the cgroup it was made in, 0 = unknown */

	/* exe rules (kind-exe.c): the file's identity and the cgroups made for
	 * its processes */
	struct ExeRule *exe;

	/* unit rules: key is the unit's current cgroup id, 0 when it has none */
	char *unit_path; /* D-Bus object path */
	struct sd_bus_slot *unit_watch;
	/* machine: and container: rules (named.h); machine: rules use the unit
	 * fields too, for the unit machined says the machine runs in */
	struct NamedTarget *named;
	/* The other network namespaces its processes were found in (paths.c) */
	struct PathsCache *paths;

	/* Nesting (nest.c). Where its traffic comes from, set once the
	 * target is resolved: the cgroup (relative to the mount: a cgroup or
	 * unit rule's own, where a pid rule's process came from, where a
	 * socket was made), NULL if none; and whose it is (a user rule's uid,
	 * a process's or socket's owner, the user a cgroup is delegated to),
	 * (uid_t)-1 if not one user's. */
	char *nest_path;
	uid_t nest_uid;
	struct Rule *parent;   /* the innermost rule that contains it; NULL: top level */
	struct Rule *children; /* the rules it contains, through sibling */
	struct Rule *sibling;
	uint64_t min_up, min_down; /* guaranteed while the parent has it; 0: none */
	Priority priority;
	ClassSpec cls_up, cls_down; /* its classes as they are on the interfaces */

	PersistSpec *persist; /* from a rules file; NULL: made at run time */

	struct Rule *next;
} Rule;

typedef struct Client {
	Manager *manager;
	int fd;
	uid_t uid;              /* SO_PEERCRED, taken at accept */
	uint64_t last_activity; /* CLOCK_MONOTONIC usec */
	uint64_t partial_since; /* when an incomplete message started, 0 = none */
	uint64_t out_waiting_since; /* output unsent and none of it taken since, 0 = none */
	sd_event_source *io;
	VarlinkBuffer in;
	char *out;
	size_t out_size, out_done, out_cap;
	bool eof;     /* the peer shut its side: answer what it sent, then close */
	bool closing; /* close once the output is flushed */
	bool queued;  /* in the manager's run queue */
	struct Client *run_next;
	struct Client *next;
} Client;

typedef enum LeafKind {
	LEAF_UNKNOWN,
	LEAF_FQ_CODEL,
	LEAF_BFIFO,
} LeafKind;

struct Manager {
	/* options */
	char *socket_path;
	char *state_dir;
	char *config_dir;     /* --config-dir: its rules.d holds the persistent rules */
	char *cgroup_root;    /* relative to the mount ("/" or "/a/b") */
	char **only_ifaces;   /* --interface, NULL-terminated, NULL = all */
	char *container_root; /* --container-state-root: where container.h reads the runtimes' state */
	bool foreground;
	bool started; /* manager_start() succeeded: a stop removes the state */
	unsigned max_rules_per_user; /* quota for non-root uids, 0 = none */
	bool no_accounting;   /* --no-accounting: load the BPF programs without it */
	bool no_small_first;  /* --no-small-first: one HTB class per rule and direction */

	/* discovered */
	char *cgroup_mount;   /* where cgroup2 is mounted */
	char *cgroup_root_abs;
	bool created_state_dir;
	uint64_t start_usec;

	sd_event *event;
	sd_event_source *sigterm, *sigint, *sighup, *listen_io, *monitor_io, *stats_timer;
	uint64_t stats_next_usec; /* CLOCK_MONOTONIC: next periodic statistics refresh */
	uint64_t stats_read_usec; /* CLOCK_MONOTONIC: the class statistics were last read, 0 = never */
	uint64_t stats_fresh_usec; /* ... and are as good as new that long after (rule.c) */
	sd_event_source *small_timer; /* manager_small_schedule() */
	uint64_t small_since;          /* CLOCK_MONOTONIC: the oldest rule waiting for it */
	int listen_fd;
	bool listen_fd_passed; /* socket activation: systemd owns the file */
	int netns_lock_fd;     /* one netbumpd per network namespace (netns-lock.h) */
	sd_event_source *netns_lock_io;

	struct nl *nl;
	struct nl *monitor;

	struct netbump_bpf *skel;
	struct bpf_link *egress_link, *sock_link, *release_link, *ingress_acct_link;
	int ingress_prog_fd;
	char *pin_dir;            /* where maps and links are pinned (bpf.c), NULL: nowhere */
	bool pin_mounted;         /* pin_dir is a bpffs of ours (unmounted on stop) */
	bool adopted;             /* the maps and links of a killed run were taken over */
	uint32_t *adopt_clsact;   /* ... and the interfaces where it had made the clsact qdisc */
	size_t n_adopt_clsact;
	bool accounting;          /* the programs count traffic per process (acct map) */
	bool ct_lookup;           /* the programs look masqueraded traffic up in conntrack (conntrack.h) */
	char *ct_why;             /* ... and when not, why */
	struct TopState *top;     /* samples of the acct map (top.c) */
	struct ConnsState *conns; /* the last Connections call's byte counters (conns.c) */
	struct ScopeState *scopes; /* scope ids and "lan" entries in the BPF maps (scope-map.c) */
	struct AccessRule *access_rules;   /* deny and allow (access.c) */
	struct AccessRuntime *access_rt;   /* their programs and events */
	struct NetnsState *netns; /* other network namespaces' links (netns.c) */
	uint64_t netns_gen;       /* ... bumped whenever they or the shaped interfaces may have changed */
	struct proc_watch_bpf *proc_watch; /* proc-watch.h: processes changing cgroup or namespace */

	Iface *ifaces;
	Rule *rules;
	Rule **rules_tail; /* the last rule's next (or &rules): rules are appended */
	Rule *by_id[RULE_NAME_BUCKETS];  /* by identity (rule-index.h), through Rule.id_next */
	Rule *by_key[RULE_NAME_BUCKETS]; /* cgroup: and unit: rules by cgroup id, through Rule.key_next */
	Rule *top_rules;     /* the rules no rule contains, through Rule.sibling */
	unsigned n_units;    /* unit: rules (found by cgroup path by a walk) */
	unsigned n_rules;
	uint64_t next_rule_id;
	uint8_t *minor_used; /* bitmap over NB_MINOR_MIN..NB_MINOR_MAX */
	Rule **by_minor;     /* rule of each class minor, NB_MINOR_MAX + 1 entries */
	bool restoring;      /* putting back a killed run's rules: save once at the end */
	bool stopping;       /* removing every rule, innermost first: nothing moves */

	LeafKind leaf;
	/* tc changes sent (iface_plan_run()): plans, sendmsg()s, requests */
	uint64_t tc_batches, tc_round_trips, tc_ops;
	/* Taking over a killed run's classes: per rule minor, ADOPT_* bits of
	 * what the kernel has (tree.c), until tree_adopt_finish() */
	uint8_t *adopt_classes;

	Client *clients;
	unsigned n_clients;
	/* Clients with complete messages still to handle, served a few
	 * messages each in turn (server.c) */
	Client *run_head, *run_tail;
	sd_event_source *run_worker;
	/* accept(2) ran out of descriptors: the listening socket rests until
	 * this timer or a client's close (server.c) */
	sd_event_source *listen_retry;
	bool listen_starved; /* ... and it was said once in the log */

	/* the cgroup netbump makes its own cgroups in: <cgroup root>/netbump */
	char *own_cgroup_abs;
	bool made_own_cgroup;
	struct sock_diag *diag;
	struct ring_buffer *events; /* BPF events (socket released) */
	struct sd_bus *bus;         /* system bus, opened for the first unit: rule */
	SavedRule *saved;           /* rules of a killed run, until restored */
	size_t n_saved;
	/* clsact qdiscs a killed run made that were kept because someone
	 * else's filter is in them: ours still, until an Iface takes one over
	 * (or its link goes); recorded in the state file meanwhile */
	uint32_t *kept_clsact;
	size_t n_kept_clsact;
	sd_event_source *events_io;
	/* The exec hook of exe: rules (kind-exe.c), attached while one exists. */
	struct bpf_link *exec_link;
	unsigned exe_hooked; /* exe: rules that hold it */
	bool exe_ring;       /* exe_events is read with events */

	/* The rules files (persist.c): read before anything is touched at
	 * start, applied once the killed run's rules are back */
	struct RuleSet *persist_boot;
	PersistMiss *persist_missed; /* lines not in force */
	size_t n_persist_missed;

	/* The state file as written so far (state.c): appended to while only
	 * rules change, rewritten whole when it has grown to twice its last
	 * full size or anything else changed. */
	struct StateFile {
		int fd;             /* open for appending, -1: rewrite next time */
		uint64_t size;      /* bytes in the file */
		uint64_t full_size; /* bytes of the last whole rewrite */
		uint64_t head_sig;  /* of what a rewrite writes before the rules */
		struct StateEntry {
			uint64_t id;
			struct Rule *rule; /* valid while its pass is the current one */
			unsigned pass;
		} *rules; /* the rules the file holds */
		size_t n_rules, cap_rules;
		unsigned pass;
	} state;
};

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);
int manager_start(Manager *m);
void manager_stop(Manager *m);

uint64_t now_usec(void);

static inline void manager_freep(Manager **m) {
	manager_free(*m);
}
