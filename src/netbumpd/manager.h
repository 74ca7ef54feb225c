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

#include "netlink.h"
#include "target.h"
#include "varlink.h"

struct netbump_bpf;
struct bpf_link;
struct ring_buffer;
struct TopState;

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
	bool transient;
	char *target; /* canonical */
	Moved *moved;
	size_t n_moved;
	uint64_t *cookies;
	size_t n_cookies;
} SavedRule;

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
	uint64_t up_bps;   /* 0 = unlimited */
	uint64_t down_bps; /* 0 = unlimited */
	RuleStats up, down;
	bool small_first;    /* its classes have leaf classes under the rule class (iface.c) */
	bool small_made;     /* ... and the small-packet one is made (made lazily) */
	bool small_failed;   /* making it failed: not tried again */
	bool down_segmented; /* its download classes have the segmenting TBF leaf */
	uint64_t state_sig;  /* of its lines in the state file; 0: not written */
	uint64_t state_new_sig; /* state_append(): this pass's signature, kept once written */
	struct Rule *name_next; /* Manager.by_name */
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

	/* unit rules: key is the unit's current cgroup id, 0 when it has none */
	char *unit_path; /* D-Bus object path */
	struct sd_bus_slot *unit_watch;

	struct Rule *next;
} Rule;

typedef struct Client {
	Manager *manager;
	int fd;
	uid_t uid;              /* SO_PEERCRED, taken at accept */
	uint64_t last_activity; /* CLOCK_MONOTONIC usec */
	uint64_t partial_since; /* when an incomplete message started, 0 = none */
	sd_event_source *io;
	VarlinkBuffer in;
	char *out;
	size_t out_size, out_done, out_cap;
	bool closing; /* close once the output is flushed */
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
	char *cgroup_root;    /* relative to the mount ("/" or "/a/b") */
	char **only_ifaces;   /* --interface, NULL-terminated, NULL = all */
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
	sd_event_source *sigterm, *sigint, *listen_io, *monitor_io, *stats_timer;
	uint64_t stats_next_usec; /* CLOCK_MONOTONIC: next periodic statistics refresh */
	sd_event_source *small_timer; /* manager_small_schedule() */
	uint64_t small_since;          /* CLOCK_MONOTONIC: the oldest rule waiting for it */
	int listen_fd;
	bool listen_fd_passed; /* socket activation: systemd owns the file */

	struct nl *nl;
	struct nl *monitor;

	struct netbump_bpf *skel;
	struct bpf_link *egress_link, *sock_link, *release_link;
	int ingress_prog_fd;
	bool accounting;          /* the programs count traffic per process (acct map) */
	struct TopState *top;     /* samples of the acct map (top.c) */

	Iface *ifaces;
	Rule *rules;
	Rule **rules_tail; /* the last rule's next (or &rules): rules are appended */
	Rule *by_name[RULE_NAME_BUCKETS]; /* chained through Rule.name_next */
	unsigned n_rules;
	uint64_t next_rule_id;
	uint8_t *minor_used; /* bitmap over NB_MINOR_MIN..NB_MINOR_MAX */
	Rule **by_minor;     /* rule of each class minor, NB_MINOR_MAX + 1 entries */
	bool restoring;      /* putting back a killed run's rules: save once at the end */

	LeafKind leaf;

	Client *clients;
	unsigned n_clients;

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

/* bpf.c */
int manager_bpf_load(Manager *m);
void manager_bpf_unload(Manager *m);
int manager_bpf_set_rule(Manager *m, const Rule *r);
int manager_bpf_del_rule(Manager *m, const Rule *r);
int manager_bpf_set_iface(Manager *m, const Iface *i);
int manager_bpf_del_iface(Manager *m, uint32_t ifindex);
void manager_bpf_bump_gen(Manager *m);
/* sock_rules; the caller bumps the generation */
int manager_bpf_set_sock(Manager *m, uint64_t cookie, uint32_t minor, uint32_t flags);
int manager_bpf_del_sock(Manager *m, uint64_t cookie);

/* iface.c */
int manager_recover_leftovers(Manager *m);
void manager_kept_clsact_free(Manager *m);
int manager_ifaces_enumerate(Manager *m);
int manager_link_monitor_start(Manager *m);
void manager_ifaces_free(Manager *m);
/* Finds changes made by others to our qdiscs, filters and IFBs: what was
 * removed is put back; a root qdisc someone replaced is reported (the
 * interface and its rules show as degraded), not fought over. */
void manager_ifaces_check(Manager *m);
bool manager_degraded(Manager *m);
Iface *manager_find_iface(Manager *m, uint32_t ifindex);
/* Creates, changes or deletes the rule's classes on one interface. */
bool rule_small_first(Manager *m);
/* Makes the small-packet leaves of new rules a moment later, when no
 * request is waiting (iface.c): called for each rule made with them. */
void manager_small_schedule(Manager *m);
void manager_small_stop(Manager *m);
/* Whether every class and leaf of the rule the daemon will make is made
 * (false while its small-packet leaves wait for manager_small_schedule()). */
bool rule_complete(const Rule *r);
int iface_apply_rule(Manager *m, Iface *i, const Rule *r, uint64_t old_up, uint64_t old_down);
int iface_remove_rule(Manager *m, Iface *i, const Rule *r);
/* Whether a download class made at this rate gets the segmenting leaf. */
bool leaf_segments(uint64_t bps);
/* Sets the download class of a rule to rate without touching the rule. */
/* The small-packet leaves of a rule made without them (both directions on
 * one interface); iface_del_small() takes them out again (the caller undoes
 * a failure on every interface). */
int iface_add_small(Manager *m, Iface *i, const Rule *r);
void iface_del_small(Manager *m, Iface *i, const Rule *r);
int iface_set_down_rate(Manager *m, Iface *i, const Rule *r, uint64_t rate);
/* Bytes through the rule's download classes so far. */
uint64_t iface_down_bytes(Manager *m, const Rule *r);

/* rule.c */
typedef struct RuleRequest {
	const char *target;
	bool has_up, has_down;
	uint64_t up_bps, down_bps; /* 0 = unlimited */
	bool transient;            /* end the rule when its cgroup empties */
	uid_t caller;              /* SO_PEERCRED uid of the client */
	/* Putting back a rule acknowledged before a crash: who may, quota and
	 * would-raise were checked then; only the target is resolved again. */
	bool acknowledged;
} RuleRequest;
int manager_set_rule(Manager *m, const RuleRequest *req, Rule **ret, const char **ret_error, char **ret_reason);
int manager_unset_rule(Manager *m, const char *target, uid_t caller, const char **ret_error, char **ret_reason);
/* Whether uid may see a rule in List: its own, and those that apply to it. */
bool rule_visible_to(Manager *m, const Rule *r, uid_t uid);
void manager_rules_free(Manager *m);
int manager_refresh_stats(Manager *m);
/* A socket went away (BPF release event): ends its sock rule, forgets it
 * in pid rules. */
void manager_socket_released(Manager *m, uint64_t cookie);
/* Stops every rule; pid rules move their processes back. */
void manager_rules_stop(Manager *m);
/* The rule a target falls under (NULL: none) by the precedence the BPF
 * programs apply: socket > process > cgroup (deepest) > user. */
int manager_rule_for(Manager *m, const char *target, Rule **ret, const char **ret_error, char **ret_reason);
/* The same, ignoring the rules of one uid (what applies underneath them). */
int manager_rule_for_excluding(Manager *m, const char *target, uid_t excluded, Rule **ret, const char **ret_error,
			       char **ret_reason);
/* A transient rule's cgroup emptied: remove the rule. */
void manager_rule_expired(Manager *m, Rule *rule);

/* process.c */
int manager_own_cgroup(Manager *m);
/* Moves the processes a killed run left in its cgroups back and removes
 * those cgroups, except the ones saved pid rules will adopt. */
int manager_recover_cgroups(Manager *m);
/* Takes over a saved pid rule's cgroup and processes (no move). */
int pid_rule_adopt(Manager *m, Rule *rule, const SavedRule *sr);
void manager_own_cgroup_remove(Manager *m);
int pid_rule_prepare(Manager *m, Rule *rule, const char **ret_reason);
/* Lists the process and its children with the cgroups they are in (the
 * rule's moved[]), to be recorded before pid_rule_attach() moves them into
 * the rule's cgroup and mirrors their open sockets. */
int pid_rule_collect(Manager *m, Rule *rule, const char **ret_reason);
int pid_rule_attach(Manager *m, Rule *rule, const char **ret_reason);
void pid_rule_detach(Manager *m, Rule *rule, bool move_back);
void pid_rule_sync_cookies(Manager *m, Rule *rule);
int rule_watch_cgroup(Manager *m, Rule *rule);
int rule_watch_pid(Manager *m, Rule *rule);
uint32_t rule_flags(const Rule *r);

/* ramp.c */
/* A new download limit on a target whose TCP flows already run: measure
 * their rate for a moment, then step down to the limit. Called after the
 * rule's classes exist and before any of those flows is classified to them. */
int ramp_prepare(Manager *m, Rule *rule);
/* An existing download limit lowered from old: step down from there. */
int ramp_lower(Manager *m, Rule *rule, uint64_t old);
void ramp_stop(Rule *rule);

/* unit.c */
int unit_rule_prepare(Manager *m, Rule *rule, const char **ret_reason);
int unit_rule_sync(Manager *m, Rule *rule);
void unit_rule_done(Rule *rule);
int manager_bus_open(Manager *m);
bool manager_use_scopes(Manager *m);
int scope_start(Manager *m, Rule *rule, const pid_t *pids, size_t n, const char **ret_reason);
char *unit_of_pid(Manager *m, pid_t pid);
int scope_give_back(Manager *m, const char *unit, pid_t pid);
void scope_stop(Manager *m, Rule *rule);
int manager_stats_timer_start(Manager *m);

/* server.c */
int manager_listen(Manager *m);
/* Whether a netbumpd answers on our socket path already. */
bool manager_socket_in_use(Manager *m);
int client_queue(Client *c, json_object *msg);
int reply_error(Client *c, const char *error, const char *key, const char *value, const char *reason);
json_object *rule_json(const Rule *r);
void manager_clients_free(Manager *m);
/* Disconnects clients past the read or idle timeout (called every second). */
void manager_clients_expire(Manager *m);

/* state.c: what we created, so that a SIGKILLed run can be cleaned up */
/* After a change of this rule alone (the hot path of Set): appends its lines. */
int manager_state_save_rule(Manager *m, Rule *rule);
int manager_state_save(Manager *m);
/* The same without one rule (about to be removed): its processes are kept
 * as origins only, so a crash before they are back still finds their way. */
int manager_state_save_without(Manager *m, const Rule *without);
void manager_state_remove(Manager *m);
/* Reads the ifindexes on which a previous run created the clsact qdisc. */
int manager_state_load_clsact(Manager *m, uint32_t **ret, size_t *ret_n);
int manager_state_load_rules(Manager *m, SavedRule **ret, size_t *ret_n);
void manager_state_close(Manager *m);
void saved_rules_free(SavedRule *v, size_t n);
/* Frees an array of Moved and the strings in it. */
void moved_free(Moved *v, size_t n);
/* Puts back the rules a killed run had acknowledged (rule.c). */
int manager_restore_rules(Manager *m);

/* top.c: per-process traffic for io.netbump.Manager.Top */
/* Reads the acct map (every second, from the statistics timer). */
int manager_top_sample(Manager *m);
void manager_top_free(Manager *m);
int method_top(Client *c, json_object *params);

uint64_t now_usec(void);

static inline void manager_freep(Manager **m) {
	manager_free(*m);
}
