/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netbumpctl: add, change, remove and list netbump's limits. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup-util.h"
#include "format.h"
#include "macro.h"
#include "netbumpctl.h"
#include "rate.h"
#include "set-args.h"
#include "table.h"
#include "unshaped.h"
#include "target.h"
#include "utf8.h"
#include "varlink.h"
#include "wrap.h"

#define DEFAULT_SOCKET "/run/netbump/netbumpd.sock"
#define CALL_TIMEOUT_MS 30000

const char *arg_socket;
bool arg_json;

/* Every verb: what `netbumpctl --help` lists and `netbumpctl help VERB` or
 * `netbumpctl VERB --help` explains. */
typedef struct Verb {
	const char *name;
	int (*fn)(int argc, char *argv[]);
	const char *usage;   /* after "netbumpctl NAME" */
	const char *summary; /* one line */
	const char *details; /* the rest of VERB --help, may be NULL */
} Verb;

static const char targets_help[] =
	"Targets:  cgroup:/PATH    as in /proc/PID/cgroup (or the path under the cgroup2\n"
	"                          mount, e.g. cgroup:/sys/fs/cgroup/PATH)\n"
	"          user@UID  user@NAME\n"
	"          pid:PID         a process and the children it starts\n"
	"          sock:INODE  sock:PID:FD   one socket\n"
	"          unit:NAME       a systemd unit, across restarts (NAME without a\n"
"                          suffix is NAME.service, as for systemctl)\n"
	"          machine:NAME    a machine systemd-machined knows (machinectl list)\n"
	"          container:NAME  a Docker or Podman container by name, ID or ID prefix\n"
	"                          (container:docker:NAME, container:podman:NAME)\n"
	"          exe:/PATH       every process running that program, now or later, and\n"
	"                          the children they start (a user's rule: the user's own)\n"
	"          all             everything netbumpd shapes, around every other rule\n";

static const char rates_help[] =
	"Rates:    tc(8) units: 500kbit 5mbit 1gbit 2mibit (bit/s), number and unit\n"
	"          in one word; kbps mbps gbps are BYTES per second (10mbps = 80mbit)\n";

static void help(void);
static const Verb *verb_find(const char *name);

static int verb_help(int argc, char *argv[]) {
	const Verb *v;

	if (argc > 2) {
		ctl_error("usage: help [VERB]");
		return EXIT_USAGE;
	}
	if (argc < 2) {
		help();
		return 0;
	}
	v = verb_find(argv[1]);
	if (!v) {
		ctl_error("no verb '%s' (see netbumpctl help)", argv[1]);
		return EXIT_USAGE;
	}
	printf("Usage: netbumpctl %s%s%s\n%s\n", v->name, v->usage[0] ? " " : "", v->usage, v->summary);
	if (v->details)
		printf("\n%s", v->details);
	return 0;
}

/* The first error this run reported, for --json's error object. */
static char *first_error;
static bool json_printed;

void ctl_error(const char *fmt, ...) {
	va_list ap;
	char *m = NULL;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	/* Reasons carry what the daemon or the user wrote (targets, names):
	 * nothing a terminal would act on goes out raw. */
	_cleanup_free_ char *safe = m ? utf8_escape(m, strlen(m)) : NULL;
	fprintf(stderr, "netbumpctl: %s\n", safe ?: m ?: fmt);
	if (!first_error)
		first_error = m;
	else
		free(m);
}

void ctl_print_json(json_object *o) {
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_printed = true;
}

static int print_json(json_object *p) {
	ctl_print_json(p);
	return 0;
}

/* With --json, a command that failed before or without a reply from the
 * daemon still prints one JSON object: the shape of a Varlink error, named
 * after the exit code, its reason the message that went to stderr. */
static void print_json_error(int code) {
	_cleanup_json_ json_object *o = json_object_new_object(), *p = json_object_new_object();
	const char *name = code == EXIT_USAGE	      ? "io.netbump.Client.InvalidArgument"
			   : code == EXIT_UNREACHABLE ? "io.netbump.Client.Unreachable"
						      : "io.netbump.Client.Failed";

	if (!o || !p)
		return;
	json_object_object_add(p, "reason", json_object_new_string(first_error ?: "failed"));
	json_object_object_add(p, "exit_code", json_object_new_int(code));
	json_object_object_add(o, "error", json_object_new_string(name));
	json_object_object_add(o, "parameters", json_object_get(p));
	ctl_print_json(o);
}

static int connect_daemon(void) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(arg_socket) >= sizeof(sa.sun_path)) {
		ctl_error("socket path too long: %s", arg_socket);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, arg_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = negative_errno();
		ctl_error("cannot reach netbumpd at %s: %s%s", arg_socket, strerror(-r),
			  r == -ENOENT || r == -ECONNREFUSED ? " (is netbumpd running? systemctl start netbumpd.socket)"
			  : r == -EACCES			? " (not allowed to open the socket)"
							: "");
		close(fd);
		return r;
	}
	return fd;
}

/* Calls a method; on success *ret holds the reply parameters (owned by the
 * returned message in *ret_msg). Prints the daemon's error and returns an
 * exit code otherwise. */
static int call(const char *method, json_object *params, json_object **ret_msg, json_object **ret) {
	_cleanup_close_ int fd = -1;
	json_object *msg = NULL, *p = NULL;
	const char *error = NULL;
	char full[128];
	int r;

	fd = connect_daemon();
	if (fd < 0) {
		json_object_put(params);
		return EXIT_UNREACHABLE;
	}
	snprintf(full, sizeof(full), VARLINK_INTERFACE ".%s", method);
	r = vl_call_sync(fd, full, params, CALL_TIMEOUT_MS, &msg);
	if (r < 0) {
		ctl_error("%s failed: %s", method, strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (vl_reply_parse(msg, &error, &p) < 0) {
		ctl_error("malformed reply from netbumpd");
		json_object_put(msg);
		return EXIT_REFUSED;
	}
	if (error) {
		json_object *reason = NULL, *param = NULL;
		const char *short_error = strrchr(error, '.') ? strrchr(error, '.') + 1 : error;

		if (arg_json)
			ctl_print_json(msg);
		if (p)
			json_object_object_get_ex(p, "reason", &reason);
		if (p)
			json_object_object_get_ex(p, "parameter", &param);
		ctl_error("%s%s%s%s", reason ? json_object_get_string(reason) : short_error,
			  param ? " (parameter '" : "", param ? json_object_get_string(param) : "", param ? "')" : "");
		json_object_put(msg);
		return EXIT_REFUSED;
	}
	*ret_msg = msg;
	*ret = p;
	return 0;
}

static void warn_stderr(void *userdata, const char *message) {
	_cleanup_free_ char *safe = utf8_escape(message, strlen(message));
	fprintf(stderr, "netbumpctl: warning: %s\n", safe ?: message);
}

/* what: "upload ", "download " or ""; next: the word after it on the
 * command line (NULL if none), to catch "5 mbit". */
static int parse_rate_arg(const char *what, const char *s, const char *next, uint64_t *ret) {
	_cleanup_free_ char *error = NULL;
	int r = set_args_rate(what, s, next, ret, &error, warn_stderr, NULL);

	if (r < 0)
		ctl_error("%s", error ?: strerror(-r));
	return r;
}

/* Checks a target before anything is sent, and returns the form to send,
 * its canonical one: an absolute path under the cgroup2 mount
 * ("cgroup:/sys/fs/cgroup/a") becomes the path relative to it
 * ("cgroup:/a"), as /proc/PID/cgroup and the rules name it. */
static int check_target(const char *s, char **ret) {
	_cleanup_free_ char *mount = NULL, *error = NULL;
	int r;

	(void)cg_find_mount(&mount);
	r = set_args_target(s, mount, ret, &error);
	if (r < 0)
		ctl_error("%s", error ?: strerror(-r));
	return r;
}

static uint64_t get_u64(json_object *o, const char *key) {
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return 0;
	int64_t x = json_object_get_int64(v);
	return x < 0 ? 0 : (uint64_t)x;
}

static const char *get_str(json_object *o, const char *key) {
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Does the rule have a guaranteed minimum or a priority other than the
 * default? Only then does the table show those columns. */
static bool rule_has_shares(json_object *rule) {
	const char *prio = get_str(rule, "priority");
	return get_u64(rule, "min_up") || get_u64(rule, "min_down") || (prio && !streq(prio, "normal"));
}

/* A user's name, or the number when it has none. */
static void user_name(uid_t uid, char *buf, size_t n) {
	struct passwd pw, *res = NULL;
	char pwbuf[4096];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
		snprintf(buf, n, "%s", res->pw_name);
	else
		snprintf(buf, n, "%lu", (unsigned long)uid);
}

#define INDENT 2

/* One line per direction: limit, rate over the last second and the HTB
 * class counters (bytes, packets, drops, bytes queued now); on the first
 * the target, indented by its depth in the tree, its priority, its HTB
 * class (as `tc -s class show` names it: on the interface for uploads, on
 * its IFB for downloads) and who made it. */
/* Where a persistent rule comes from: "50-netbumpctl.rules:3" (the files
 * are all in one directory; --json has the path), "(changed)" when a set
 * changed it since. */
static void source_word(json_object *rule, char *buf, size_t n) {
	const char *src = get_str(rule, "source"), *base;
	json_object *o;
	bool changed = json_object_object_get_ex(rule, "overridden", &o) && json_object_get_boolean(o);

	if (!src) {
		snprintf(buf, n, "%s", "");
		return;
	}
	base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	snprintf(buf, n, "%s%s", base, changed ? " (changed)" : "");
}

static int add_rule_rows(Table *t, json_object *rule, size_t depth, bool shares, bool sources) {
	static const char *const dirs[2] = { "up", "down" };
	const char *target = get_str(rule, "target") ?: "?", *prio = get_str(rule, "priority") ?: "normal";
	_cleanup_free_ char *first = NULL;
	char owner[64] = "", name[64];
	json_object *o;
	int r = 0;

	/* user@UID: the name too, as the table shows it for owners. */
	if (strncmp(target, "user@", 5) == 0 && target[5] >= '0' && target[5] <= '9') {
		user_name((uid_t)strtoul(target + 5, NULL, 10), name, sizeof(name));
		if (!streq(name, target + 5) && asprintf(&first, "%*s%s (%s)", (int)(depth * INDENT), "", target, name) < 0)
			return -ENOMEM;
	}
	if (!first && asprintf(&first, "%*s%s", (int)(depth * INDENT), "", target) < 0)
		return -ENOMEM;
	/* A scoped rule: its scope right after the target, as set takes it. */
	if (get_str(rule, "remote")) {
		char *x = NULL;
		size_t lead = strlen(first) - strlen(strchr(first + depth * INDENT, ' ') ?: "");

		if (asprintf(&x, "%.*s --remote %s%s", (int)lead, first, get_str(rule, "remote"), first + lead) < 0)
			return -ENOMEM;
		free(first);
		first = x;
	}
	if (json_object_object_get_ex(rule, "owner", &o) && json_object_is_type(o, json_type_int))
		user_name((uid_t)json_object_get_int64(o), owner, sizeof(owner));

	for (int k = 0; k < 2 && r >= 0; k++) {
		char key[16], lim[FORMAT_MAX], min[FORMAT_MAX], rate[FORMAT_MAX], bytes[FORMAT_MAX], backlog[FORMAT_MAX],
			packets[32], drops[32];
		json_object *st = NULL;

		snprintf(key, sizeof(key), "%s_stats", dirs[k]);
		json_object_object_get_ex(rule, key, &st);
		snprintf(packets, sizeof(packets), "%llu", (unsigned long long)get_u64(st, "packets"));
		snprintf(drops, sizeof(drops), "%llu", (unsigned long long)get_u64(st, "drops"));
		snprintf(key, sizeof(key), "min_%s", dirs[k]);
		if (get_u64(rule, key))
			format_limit(get_u64(rule, key), min);
		else
			strcpy(min, "none");

		r = table_add(t, k == 0 ? first : NULL);
		if (r >= 0)
			r = table_add(t, dirs[k]);
		if (r >= 0)
			r = table_add(t, format_limit(get_u64(rule, dirs[k]), lim));
		if (r >= 0 && shares)
			r = table_add(t, min);
		if (r >= 0 && shares)
			r = table_add(t, k == 0 ? prio : NULL);
		if (r >= 0)
			r = table_add(t, format_rate(get_u64(st, "rate"), FORMAT_BITS, rate));
		if (r >= 0)
			r = table_add(t, format_bytes(get_u64(st, "bytes"), bytes));
		if (r >= 0)
			r = table_add(t, packets);
		if (r >= 0)
			r = table_add(t, drops);
		if (r >= 0)
			r = table_add(t, format_bytes(get_u64(st, "backlog"), backlog));
		if (r >= 0)
			r = table_add(t, k == 0 ? get_str(rule, "class") : NULL);
		if (r >= 0)
			r = table_add(t, k == 0 ? owner : NULL);
		if (r >= 0 && sources) {
			char src[PATH_MAX + 32];
			source_word(rule, src, sizeof(src));
			r = table_add(t, k == 0 ? src : NULL);
		}
	}
	return r;
}

static Table *rules_table_new(bool shares, bool sources) {
	static const char *const cols[] = { "TARGET", "DIR",	 ">LIMIT", ">MIN", "PRIO",  ">RATE", ">BYTES",
					    ">PACKETS", ">DROPS", ">BACKLOG", "CLASS", "OWNER", "SOURCE" };
	const char *pick[ELEMENTSOF(cols)];
	size_t n = 0;

	for (size_t k = 0; k < ELEMENTSOF(cols); k++)
		if ((shares || (k != 3 && k != 4)) && (sources || k != 12))
			pick[n++] = cols[k];
	return table_new(pick, n);
}

/* A rule in the tree of rules: under the rule its "parent" names. */
typedef struct RuleNode {
	json_object *rule;
	const char *target;
	const char *remote; /* a scoped rule's scope, NULL: unscoped (never a parent) */
	size_t parent, first_child, next_sibling; /* NONE: there is none */
	bool selected, printed;
} RuleNode;

#define NONE SIZE_MAX

static int node_compare(const void *a, const void *b) {
	const RuleNode *x = a, *y = b;
	/* "pid:9" before "pid:10" */
	int c = strverscmp(x->target, y->target);

	/* A target's unscoped rule before its scoped ones. */
	if (c != 0 || x->remote == y->remote)
		return c;
	if (!x->remote || !y->remote)
		return x->remote ? 1 : -1;
	return strcmp(x->remote, y->remote);
}

static size_t node_find(const RuleNode *nodes, size_t n, const char *target) {
	RuleNode key = { .target = target };
	const RuleNode *f;

	if (!target)
		return NONE;
	f = bsearch(&key, nodes, n, sizeof(RuleNode), node_compare);
	return f ? (size_t)(f - nodes) : NONE;
}

static int add_subtree(Table *t, RuleNode *nodes, size_t i, size_t depth, bool shares, bool sources) {
	int r;

	if (nodes[i].printed)
		return 0;
	nodes[i].printed = true;
	if (!nodes[i].selected)
		return 0;
	r = add_rule_rows(t, nodes[i].rule, depth, shares, sources);
	for (size_t c = nodes[i].first_child; r >= 0 && c != NONE; c = nodes[c].next_sibling)
		r = add_subtree(t, nodes, c, depth + 1, shares, sources);
	return r;
}

/* The rules as a tree: each below the rule its "parent" names, siblings
 * by target. A rule whose parent is not in the list (one the caller may
 * not see) is at the top. Returns the nodes, sorted by target, or NULL on
 * OOM. */
static RuleNode *rule_tree_new(json_object *rules, size_t *ret_n) {
	size_t n = rules && json_object_is_type(rules, json_type_array) ? json_object_array_length(rules) : 0;
	RuleNode *nodes;

	nodes = calloc(n ?: 1, sizeof(RuleNode));
	if (!nodes) {
		ctl_error("out of memory");
		return NULL;
	}
	for (size_t k = 0; k < n; k++) {
		json_object *rule = json_object_array_get_idx(rules, k);
		nodes[k] = (RuleNode){ .rule = rule, .target = get_str(rule, "target") ?: "", .remote = get_str(rule, "remote"),
				       .selected = true };
	}
	qsort(nodes, n, sizeof(RuleNode), node_compare);

	for (size_t k = 0; k < n; k++) {
		nodes[k].parent = node_find(nodes, n, get_str(nodes[k].rule, "parent"));
		if (nodes[k].parent == k)
			nodes[k].parent = NONE;
		nodes[k].first_child = nodes[k].next_sibling = NONE;
	}
	/* Backwards, so that each list of children ends up in target order. */
	for (size_t k = n; k-- > 0;)
		if (nodes[k].parent != NONE) {
			nodes[k].next_sibling = nodes[nodes[k].parent].first_child;
			nodes[nodes[k].parent].first_child = k;
		}
	*ret_n = n;
	return nodes;
}

/* The selected rules, the MIN and PRIO columns only if one of them has a
 * minimum or a priority. */
static int rule_tree_print(RuleNode *nodes, size_t n) {
	_cleanup_table_ Table *t = NULL;
	bool shares = false, sources = false;
	int r = 0;

	for (size_t k = 0; k < n; k++)
		shares = shares || (nodes[k].selected && rule_has_shares(nodes[k].rule));
	for (size_t k = 0; k < n; k++)
		sources = sources || (nodes[k].selected && get_str(nodes[k].rule, "source"));
	t = rules_table_new(shares, sources);
	if (!t)
		r = -ENOMEM;
	for (size_t k = 0; r >= 0 && k < n; k++)
		if (nodes[k].parent == NONE)
			r = add_subtree(t, nodes, k, 0, shares, sources);
	/* Rules whose parents go round in a circle: no top to hang them from. */
	for (size_t k = 0; r >= 0 && k < n; k++)
		r = add_subtree(t, nodes, k, 0, shares, sources);
	if (r < 0) {
		ctl_error("out of memory");
		return EXIT_REFUSED;
	}
	table_print(t, stdout);
	return 0;
}

static int print_rules(json_object *rules) {
	_cleanup_free_ RuleNode *nodes = NULL;
	size_t n = 0;

	nodes = rule_tree_new(rules, &n);
	if (!nodes)
		return EXIT_REFUSED;
	return rule_tree_print(nodes, n);
}

static int parse_set_args(int argc, char *argv[], const char **ret_target, SetArgs *ret) {
	_cleanup_free_ char *error = NULL;
	int r = set_args_parse(argc, argv, ret, &error, warn_stderr, NULL);

	if (r < 0) {
		ctl_error("%s", error ?: strerror(-r));
		return r;
	}
	*ret_target = ret->target;
	return 0;
}

/* "5mbit", "unlimited"; with a minimum "5mbit (min 1mbit)": the words of
 * list's LIMIT and MIN columns. */
static void print_direction(const char *name, uint64_t limit, uint64_t min) {
	char a[FORMAT_MAX], b[FORMAT_MAX];

	printf("%s %s", name, format_limit(limit, a));
	if (min)
		printf(" (min %s)", format_limit(min, b));
}

static int verb_set(int argc, char *argv[]) {
	static const char *const keys[2] = { "up", "down" }, *const min_keys[2] = { "min_up", "min_down" };
	_cleanup_json_ json_object *msg = NULL;
	_cleanup_free_ char *target = NULL;
	json_object *params, *reply, *rule;
	const char *given = NULL;
	SetArgs a;
	int r;

	if (parse_set_args(argc, argv, &given, &a) < 0)
		return EXIT_USAGE;
	if (check_target(given, &target) < 0)
		return EXIT_USAGE;

	/* Only what was given: the daemon keeps the rest of an existing rule. */
	params = json_object_new_object();
	json_object_object_add(params, "target", json_object_new_string(target));
	for (int d = 0; d < 2; d++) {
		if (a.has_limit[d])
			json_object_object_add(params, keys[d], json_object_new_int64((int64_t)a.limit[d]));
		if (a.has_min[d])
			json_object_object_add(params, min_keys[d], json_object_new_int64((int64_t)a.min[d]));
	}
	if (a.priority)
		json_object_object_add(params, "priority", json_object_new_string(a.priority));
	if (a.remote)
		json_object_object_add(params, "remote", json_object_new_string(a.remote));
	if (a.persistent)
		json_object_object_add(params, "persistent", json_object_new_boolean(true));
	r = call("Set", params, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	if (json_object_object_get_ex(reply, "rule", &rule)) {
		json_object *t = NULL, *prio = NULL, *parent = NULL;

		json_object_object_get_ex(rule, "target", &t);
		json_object_object_get_ex(rule, "priority", &prio);
		json_object_object_get_ex(rule, "parent", &parent);
		printf("%s", json_object_get_string(t));
		if (get_str(rule, "remote"))
			printf(" --remote %s", get_str(rule, "remote"));
		printf(": ");
		print_direction("up", get_u64(rule, "up"), get_u64(rule, "min_up"));
		print_direction(", down", get_u64(rule, "down"), get_u64(rule, "min_down"));
		if (prio && !streq(json_object_get_string(prio), "normal"))
			printf(", priority %s", json_object_get_string(prio));
		if (parent && json_object_is_type(parent, json_type_string))
			printf(", inside %s", json_object_get_string(parent));
		if (get_str(rule, "source"))
			printf(", persistent (%s)", get_str(rule, "source"));
		printf("\n");
		(void)print_rule_unshaped(stderr, "warning: ", rule);
	}
	return 0;
}

static int verb_unset(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	_cleanup_free_ char *target = NULL;
	json_object *params, *reply;
	const char *given = NULL, *remote = NULL;
	bool persistent = false;
	int r;

	/* unset [--persistent] TARGET [--remote SCOPE | --remote=SCOPE] */
	for (int k = 1; k < argc; k++) {
		const char *v = NULL;

		if (streq(argv[k], "--persistent") && !persistent)
			persistent = true;
		else if (!remote && set_args_option(argv[k], "--remote", argc, argv, &k, &v) && v)
			remote = v;
		else if (!given && (argv[k][0] != '-' || argv[k][1] != '-'))
			given = argv[k];
		else {
			given = NULL;
			break;
		}
	}
	if (!given) {
		ctl_error("usage: unset [--persistent] TARGET [--remote SCOPE] (netbumpctl unset --help explains)");
		return EXIT_USAGE;
	}
	if (check_target(given, &target) < 0)
		return EXIT_USAGE;
	params = json_object_new_object();
	json_object_object_add(params, "target", json_object_new_string(target));
	if (remote)
		json_object_object_add(params, "remote", json_object_new_string(remote));
	if (persistent)
		json_object_object_add(params, "persistent", json_object_new_boolean(true));
	r = call("Unset", params, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	/* As set says what the rule is now. */
	printf("%s%s%s: rule removed%s, no limit of its own.\n", target, remote ? " --remote " : "", remote ?: "",
	       persistent ? " for good" : "");
	return 0;
}

/* The lines of the rules files that are not in force, after what the
 * daemon said: on stderr, each with where and why. */
static void print_not_in_force(json_object *reply, const char *key) {
	json_object *a = NULL;

	if (!json_object_object_get_ex(reply, key, &a) || !json_object_is_type(a, json_type_array))
		return;
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		json_object *o = json_object_array_get_idx(a, k);
		_cleanup_free_ char *m = NULL;

		if (asprintf(&m, "%s: the persistent rule on %s is not in force: %s", get_str(o, "source") ?: "?",
			     get_str(o, "target") ?: "?", get_str(o, "reason") ?: "?") >= 0) {
			_cleanup_free_ char *safe = utf8_escape(m, strlen(m));
			fprintf(stderr, "netbumpctl: warning: %s\n", safe ?: m);
		}
	}
}

static int verb_reload(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	json_object *reply;
	int r;

	if (argc != 1) {
		ctl_error("reload takes no arguments");
		return EXIT_USAGE;
	}
	r = call("Reload", NULL, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	printf("Reloaded %s/rules.d: %llu added, %llu changed, %llu removed, %llu unchanged.\n",
	       get_str(reply, "config_dir") ?: "?", (unsigned long long)get_u64(reply, "added"),
	       (unsigned long long)get_u64(reply, "changed"), (unsigned long long)get_u64(reply, "removed"),
	       (unsigned long long)get_u64(reply, "unchanged"));
	print_not_in_force(reply, "not_in_force");
	return 0;
}

/* list TARGET: the rule TARGET falls under and the rules around it, up to
 * the top (or round once, should the parents go in a circle), in text and
 * in JSON alike. */
static int list_for_target(const char *target, json_object *reply) {
	_cleanup_free_ RuleNode *nodes = NULL;
	json_object *rules = NULL, *applies = NULL;
	size_t n = 0, k;

	json_object_object_get_ex(reply, "rules", &rules);
	json_object_object_get_ex(reply, "applies", &applies);
	nodes = rule_tree_new(rules, &n);
	if (!nodes)
		return EXIT_REFUSED;
	for (k = 0; k < n; k++)
		nodes[k].selected = false;
	for (k = applies ? node_find(nodes, n, json_object_get_string(applies)) : NONE; k != NONE && !nodes[k].selected;
	     k = nodes[k].parent)
		nodes[k].selected = true;

	if (arg_json) {
		_cleanup_json_ json_object *o = json_object_new_object();
		json_object *a = json_object_new_array();

		/* Outermost first, as the text reads from the top. */
		for (k = 0; k < n; k++)
			if (nodes[k].selected)
				json_object_array_add(a, json_object_get(nodes[k].rule));
		json_object_object_add(o, "target", json_object_new_string(target));
		json_object_object_add(o, "applies", applies ? json_object_get(applies) : NULL);
		json_object_object_add(o, "rules", a);
		return print_json(o);
	}
	if (!applies) {
		printf("%s falls under no rule: unlimited.\n", target);
		return 0;
	}
	printf("%s falls under %s", target, json_object_get_string(applies));
	/* Each selected rule once: as many steps up as there are above it. */
	size_t above = 0;
	for (k = 0; k < n; k++)
		above += nodes[k].selected;
	k = node_find(nodes, n, json_object_get_string(applies));
	for (; k != NONE && nodes[k].parent != NONE && above > 1; k = nodes[k].parent, above--)
		printf(", inside %s", nodes[nodes[k].parent].target);
	printf("\n");
	return rule_tree_print(nodes, n);
}

/* Deny and allow rules: one line each, with what they dropped. */
static int print_access(json_object *access) {
	size_t n = access && json_object_is_type(access, json_type_array) ? json_object_array_length(access) : 0;

	if (n == 0)
		return 0;
	printf("\n%-6s %-32s %-40s %10s %12s\n", "ACCESS", "TARGET", "REMOTE", "DENIED", "DENIED-BYTES");
	for (size_t k = 0; k < n; k++) {
		json_object *a = json_object_array_get_idx(access, k);
		char bytes[FORMAT_MAX];

		printf("%-6s %-32s %-40s %10llu %12s\n", get_str(a, "action") ?: "?", get_str(a, "target") ?: "?",
		       get_str(a, "remote") ?: "?", (unsigned long long)get_u64(a, "denied_packets"),
		       format_bytes(get_u64(a, "denied_bytes"), bytes));
	}
	return 0;
}

/* deny|allow [--persistent] TARGET --remote SCOPE [--persistent] */
static int verb_access(int argc, char *argv[], const char *action) {
	_cleanup_json_ json_object *msg = NULL;
	_cleanup_free_ char *target = NULL;
	json_object *params, *reply, *a = NULL;
	const char *remote = NULL, *given = NULL;
	bool persistent = false, bad = false;
	int r;

	for (int k = 1; k < argc && !bad; k++) {
		const char *v = NULL;

		if (streq(argv[k], "--persistent") && !persistent)
			persistent = true;
		else if (!remote && set_args_option(argv[k], "--remote", argc, argv, &k, &v))
			bad = !(remote = v);
		else if (!given && argv[k][0] != '-')
			given = argv[k];
		else
			bad = true;
	}
	if (bad || !given || !remote) {
		ctl_error("usage: %s [--persistent] TARGET --remote SCOPE (netbumpctl %s --help explains)", action, action);
		return EXIT_USAGE;
	}
	if (check_target(given, &target) < 0)
		return EXIT_USAGE;
	params = json_object_new_object();
	json_object_object_add(params, "target", json_object_new_string(target));
	json_object_object_add(params, "remote", json_object_new_string(remote));
	json_object_object_add(params, "access", json_object_new_string(action));
	if (persistent)
		json_object_object_add(params, "persistent", json_object_new_boolean(true));
	r = call("Set", params, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	json_object_object_get_ex(reply, "access", &a);
	printf("%s --remote %s: %s%s\n", get_str(a, "target") ?: target, get_str(a, "remote") ?: remote,
	       streq(action, "deny") ? "denied" : "allowed", persistent ? " (persistent)" : "");
	return 0;
}

static int verb_deny(int argc, char *argv[]) {
	return verb_access(argc, argv, "deny");
}

static int verb_allow(int argc, char *argv[]) {
	return verb_access(argc, argv, "allow");
}

static int verb_list(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	_cleanup_free_ char *target = NULL;
	json_object *reply, *rules, *access = NULL, *params = NULL;
	int r;

	if (argc > 2) {
		ctl_error("usage: list [TARGET] (netbumpctl list --help explains)");
		return EXIT_USAGE;
	}
	if (argc == 2) {
		if (check_target(argv[1], &target) < 0)
			return EXIT_USAGE;
		params = json_object_new_object();
		json_object_object_add(params, "target", json_object_new_string(target));
	}
	r = call("List", params, &msg, &reply);
	if (r != 0)
		return r;
	if (target)
		return list_for_target(target, reply);
	if (arg_json)
		return print_json(reply);
	json_object_object_get_ex(reply, "rules", &rules);
	json_object_object_get_ex(reply, "access", &access);
	print_not_in_force(reply, "persistent_not_in_force");
	if ((!rules || json_object_array_length(rules) == 0) && (!access || json_object_array_length(access) == 0)) {
		printf("No rules.\n");
		return 0;
	}
	if (rules && json_object_array_length(rules) > 0) {
		r = print_rules(rules);
		if (r != 0)
			return r;
		(void)print_rules_named(stdout, rules);
		(void)print_rules_unshaped(stdout, "! ", rules);
	}
	return print_access(access);
}

/* run RATE -- CMD [ARGS...], run [--up R] [--down R] -- CMD [ARGS...]: this
 * process has itself limited (wrap.h), then becomes CMD, so CMD keeps the
 * PID and cgroup the limit was made for and its exit status is ours. */
static int verb_run(int argc, char *argv[]) {
	_cleanup_free_ char *message = NULL;
	WrapRates rates = {};
	WrapFailure failure;
	int k, r;

	for (k = 1; k < argc && !streq(argv[k], "--"); k++) {
		const char *a = argv[k], *v;
		bool is_up = strncmp(a, "--up", 4) == 0 && (a[4] == '\0' || a[4] == '=');
		bool is_down = strncmp(a, "--down", 6) == 0 && (a[6] == '\0' || a[6] == '=');

		if (is_up || is_down) {
			v = strchr(a, '=') ? strchr(a, '=') + 1 : (k + 1 < argc ? argv[++k] : NULL);
			if (!v) {
				ctl_error("%s needs a rate", a);
				return EXIT_USAGE;
			}
			if (parse_rate_arg(is_up ? "upload " : "download ", v, k + 1 < argc ? argv[k + 1] : NULL,
					   is_up ? &rates.up_bps : &rates.down_bps) < 0)
				return EXIT_USAGE;
			if (is_up)
				rates.has_up = true;
			else
				rates.has_down = true;
		} else if (a[0] == '-' && a[1] == '-' && a[2]) {
			ctl_error("unknown option '%s' for run", a);
			return EXIT_USAGE;
		} else if (!rates.has_up && !rates.has_down) {
			if (parse_rate_arg("", a, k + 1 < argc ? argv[k + 1] : NULL, &rates.up_bps) < 0)
				return EXIT_USAGE;
			rates.down_bps = rates.up_bps;
			rates.has_up = rates.has_down = true;
		} else {
			ctl_error("unexpected argument '%s' (the command goes after '--')", a);
			return EXIT_USAGE;
		}
	}
	if ((!rates.has_up && !rates.has_down) || k + 1 >= argc) {
		ctl_error("usage: run RATE -- CMD [ARGS...] | run [--up RATE] [--down RATE] -- CMD [ARGS...]");
		return EXIT_USAGE;
	}
	if (rates.up_bps == 0 && rates.down_bps == 0) {
		ctl_error("both directions unlimited: nothing to limit");
		return EXIT_USAGE;
	}

	/* No ack, no command: running it unlimited would hide the failure. */
	r = wrap_limit_self(arg_socket, &rates, CALL_TIMEOUT_MS, NULL, &failure, &message);
	if (r < 0) {
		ctl_error("%s", message ?: strerror(-r));
		return failure == WRAP_FAILURE_UNREACHABLE ? EXIT_UNREACHABLE : EXIT_REFUSED;
	}
	r = wrap_exec(argv + k + 1, &message);
	ctl_error("%s", message ?: "cannot execute the command");
	return r;
}

static int verb_status(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	json_object *reply, *v, *ifs, *rules = NULL;
	int r;

	if (argc != 1) {
		ctl_error("status takes no arguments");
		return EXIT_USAGE;
	}
	r = call("Status", NULL, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	printf("netbumpd %s, up %llus\n",
	       json_object_object_get_ex(reply, "version", &v) ? json_object_get_string(v) : "?",
	       (unsigned long long)(get_u64(reply, "uptime_usec") / 1000000));
	printf("cgroup root: %s (cgroup2 at %s)\n",
	       json_object_object_get_ex(reply, "cgroup_root", &v) ? json_object_get_string(v) : "?",
	       json_object_object_get_ex(reply, "cgroup_mount", &v) ? json_object_get_string(v) : "?");
	printf("leaf qdisc: %s\n", json_object_object_get_ex(reply, "leaf_qdisc", &v) ? json_object_get_string(v) : "?");
	if (json_object_object_get_ex(reply, "accounting", &v))
		printf("accounting: %s\n", json_object_get_boolean(v) ? "per process, in the BPF data path (netbumpctl top)"
								       : "off (netbumpd --no-accounting, or refused by the kernel)");
	if (json_object_object_get_ex(reply, "interfaces", &ifs))
		for (size_t k = 0; k < json_object_array_length(ifs); k++) {
			json_object *i = json_object_array_get_idx(ifs, k), *n = NULL, *x, *d = NULL;
			json_object_object_get_ex(i, "name", &n);
			json_object_object_get_ex(i, "degraded", &d);
			if (json_object_object_get_ex(i, "ifb", &x))
				printf("interface %s: shaped, downloads via %s%s%s%s\n", json_object_get_string(n),
				       json_object_get_string(x), d ? "; DEGRADED: " : "", d ? json_object_get_string(d) : "",
				       d ? " (its uploads are not shaped)" : "");
			else if (json_object_object_get_ex(i, "reason", &x))
				printf("interface %s: not shaped (%s)\n", json_object_get_string(n),
				       json_object_get_string(x));
		}
	print_not_in_force(reply, "persistent_not_in_force");
	json_object_object_get_ex(reply, "rules", &rules);
	if (!rules || !json_object_is_type(rules, json_type_array)) {
		printf("rules: %llu\n", (unsigned long long)get_u64(reply, "rule_count"));
		return 0;
	}
	if (json_object_array_length(rules) == get_u64(reply, "rule_count"))
		printf("rules: %zu\n", json_object_array_length(rules));
	else
		printf("rules: %llu (%zu of them yours or applying to you)\n",
		       (unsigned long long)get_u64(reply, "rule_count"), json_object_array_length(rules));
	if (json_object_array_length(rules) > 0) {
		r = print_rules(rules);
		(void)print_rules_unshaped(stdout, "! ", rules);
		return r;
	}
	return 0;
}

static const Verb verbs[] = {
	{ "set", verb_set, "TARGET RATE | TARGET [--up R] [--down R] [--min R] [--min-up R] [--min-down R] [--priority P] [--remote SCOPE] [--persistent]",
	  "Add a limit, or change what is given of an existing one, while traffic flows.",
	  "  RATE            upload and download limit\n"
	  "  --up R --down R one direction ('unlimited' lifts that side)\n"
	  "  --min R         guarantee R up and down inside the enclosing rule ('none': no minimum)\n"
	  "  --min-up R --min-down R   one direction of it\n"
	  "  --priority high|normal|low  who gets spare capacity first and waits least\n"
	  "  --remote SCOPE  only traffic with remote addresses in SCOPE: comma list of CIDRs,\n"
	  "                  lan, internet; a target may have one rule per scope and one without\n"
	  "  --persistent    also from boot on: written to /etc/netbump/rules.d/50-netbumpctl.rules\n"
	  "                  (root only; netbump.rules(5))\n"
	  "What is not given stays as it is on an existing rule. Prints the rule as it is now:\n"
	  "  user@1000: up 5mbit, down 5mbit, inside all\n"
	  "Examples:\n"
	  "  netbumpctl set user@alice 5mbit\n"
	  "  netbumpctl set unit:backup --down 20mbit --priority low\n"
	  "  netbumpctl set cgroup:/system.slice/backup.service --up 2mbit --min 500kbit\n\n" },
	{ "unset", verb_unset, "[--persistent] TARGET [--remote SCOPE]", "Remove TARGET's rule: its traffic falls under the rules around it again.",
	  "With --remote: the limit, deny or allow on TARGET for that scope.\n"
	  "  --persistent    also its line in /etc/netbump/rules.d/50-netbumpctl.rules (root only);\n"
	  "                  a persistent rule goes only so\n"
	  "Prints 'TARGET: rule removed, no limit of its own.'\n\n" },
	{ "deny", verb_deny, "[--persistent] TARGET --remote SCOPE",
	  "Drop TARGET's traffic to and from SCOPE: new connections fail with EPERM, open ones end.",
	  "  SCOPE   comma list of IPv4/IPv6 CIDRs and the words lan and internet\n"
	  "Example: only uid 1000 may reach 198.18.0.1:\n"
	  "  netbumpctl deny all --remote 198.18.0.1/32\n"
	  "  netbumpctl allow user@1000 --remote 198.18.0.1/32\n"
	  "Loopback (127.0.0.0/8, ::1) is never denied. Targets: user@, cgroup:, all.\n"
	  "  --persistent  also in " "/etc/netbump/rules.d/50-netbumpctl.rules (root only); unset --persistent\n"
	  "                TARGET --remote SCOPE removes it\n\n" },
	{ "allow", verb_allow, "[--persistent] TARGET --remote SCOPE",
	  "Exempt TARGET from a deny on an enclosing target (only root allows what another user denied).", NULL },
	{ "reload", verb_reload, "", "Read the rules files again and apply what changed (root only).",
	  "Reads every /etc/netbump/rules.d/*.rules (netbump.rules(5)) first: a line that does\n"
	  "not read refuses the whole reload, naming FILE:LINE and why, and nothing changes.\n"
	  "Then adds the new lines' rules, changes the changed ones live, removes those whose\n"
	  "line is gone; a rule whose line did not change is not touched, and rules made\n"
	  "without --persistent are left alone. Lines whose rule cannot be in force now (no\n"
	  "such cgroup, unknown user) are named on stderr; the rest is applied.\n\n" },
	{ "list", verb_list, "[TARGET]",
	  "Show the rules, nested in the rules around them, with live rates and counters.",
	  "With TARGET: the rule it falls under and the rules around that (also with --json:\n"
	  "{\"target\", \"applies\", \"rules\"}, \"applies\" null and no rules when none applies).\n"
	  "Columns: LIMIT as set takes it ('unlimited' for none), MIN ('none'), PRIO, RATE over\n"
	  "the last second, BYTES PACKETS DROPS BACKLOG of the rule's HTB class, CLASS its id\n"
	  "(tc -s class show dev IFACE for uploads, dev nbifbN for downloads:\n"
	  "netbumpctl status names it), OWNER who made it, SOURCE the rules file and line of a\n"
	  "persistent rule ('(changed)': by a set since; --json: \"source\", \"overridden\").\n\n" },
	{ "status", verb_status, "", "Show the daemon's interfaces, cgroup root and rules.", NULL },
	{ "top", verb_top, "[--once] [--group process|user|unit|rule|connection] [--sort rate|total|name] [--bytes] [--filter TEXT]",
	  "Live view: processes by rate; limit them with keys.",
	  "  --once       one snapshot as text (COLUMNS wide, else 132) or with --json, for scripts\n"
	  "  --group G    one row per process, user, unit, rule or connection\n"
	  "  --sort S     by rate (default), total bytes or name\n"
	  "  --bytes      rates in bytes per second (B/s kB/s MB/s) rather than bit/s\n"
	  "  --filter T   only rows whose name, user, target or rule contains T\n"
	  "Keys: l limit, u upload, d download, r remove, g group, s sort, b bits/bytes,\n"
	  "      / filter, arrows or j/k select, q quit.\n\n" },
	{ "run", verb_run, "RATE -- CMD [ARGS...] | [--up R] [--down R] -- CMD [ARGS...]",
	  "Run CMD limited from its first packet on; the limit ends when CMD and its children end.",
	  "Like trickle(1), but for every socket CMD and its children open, by the kernel.\n"
	  "Example: netbumpctl run 2mbit -- curl -O https://example.org/big.iso\n\n" },
	{ "help", verb_help, "[VERB]", "Show the help, or a verb's.", NULL },
};

static const Verb *verb_find(const char *name) {
	for (size_t k = 0; k < ELEMENTSOF(verbs); k++)
		if (streq(name, verbs[k].name))
			return &verbs[k];
	return NULL;
}

static void help(void) {
	printf("Usage: netbumpctl [OPTIONS] VERB [ARGS]\n"
	       "Add, change, remove and list bandwidth limits, while traffic flows.\n\n"
	       "Verbs (netbumpctl help VERB, or VERB --help, for more):\n");
	for (size_t k = 0; k < ELEMENTSOF(verbs); k++)
		printf("  %-7s %s\n", verbs[k].name, verbs[k].summary);
	printf("\n%s"
	       "Precedence: socket > process > cgroup or unit (deepest) > user > all\n"
	       "Nesting:  a rule sits inside the rule its traffic fell under before it, and is\n"
	       "          bounded by that rule and every rule around it\n"
	       "%s\n"
	       "Options:\n"
	       "  -h --help          Show this help\n"
	       "     --version       Show the version\n"
	       "     --socket PATH   Daemon socket (default $NETBUMP_SOCKET or " DEFAULT_SOCKET ")\n"
	       "     --json          Print replies as JSON (errors too, as {\"error\", \"parameters\"})\n",
	       targets_help, rates_help);
}

static int run_main(int argc, char *argv[]) {
	enum { ARG_VERSION = 0x100, ARG_SOCKET, ARG_JSON };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "json", no_argument, NULL, ARG_JSON },
		{}
	};
	const Verb *v;
	int c;

	arg_socket = getenv("NETBUMP_SOCKET");
	if (!arg_socket || !*arg_socket)
		arg_socket = DEFAULT_SOCKET;
	/* --json anywhere (but in run's command) asks for JSON errors too,
	 * even those found before the verb is. */
	for (int k = 1; k < argc && !streq(argv[k], "--"); k++)
		if (streq(argv[k], "--json"))
			arg_json = true;

	/* '+': stop at the verb, so that "set X --up 1mbit" reaches the verb. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("netbumpctl %s\n", NETBUMP_VERSION);
			return 0;
		case ARG_SOCKET:
			arg_socket = optarg;
			break;
		case ARG_JSON:
			arg_json = true;
			break;
		default:
			ctl_error("unknown option '%s' (see netbumpctl --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_error("missing verb (set, unset, list, status, top, run, reload, help); see netbumpctl --help");
		return EXIT_USAGE;
	}
	/* Global options may also follow the verb's arguments. */
	int n = 0;
	char **args = argv + optind;
	int nargs = argc - optind;
	bool verb_help_asked = false;
	for (int k = 0; k < nargs; k++) {
		/* run: everything after "--" is the command's own. */
		if (streq(args[0], "run") && streq(args[k], "--")) {
			while (k < nargs)
				args[n++] = args[k++];
			break;
		}
		if (streq(args[k], "--json"))
			arg_json = true;
		else if (streq(args[k], "--socket") && k + 1 < nargs)
			arg_socket = args[++k];
		else if (strncmp(args[k], "--socket=", 9) == 0)
			arg_socket = args[k] + 9;
		else if (k > 0 && (streq(args[k], "--help") || streq(args[k], "-h")))
			verb_help_asked = true;
		else
			args[n++] = args[k];
	}
	v = verb_find(args[0]);
	if (!v) {
		ctl_error("unknown verb '%s' (expected set, unset, list, status, top, run, reload or help)", args[0]);
		return EXIT_USAGE;
	}
	if (verb_help_asked)
		return verb_help(2, (char *[]){ (char *)"help", args[0], NULL });
	return v->fn(n, args);
}

int main(int argc, char *argv[]) {
	int r;

	setlocale(LC_CTYPE, "");
	r = run_main(argc, argv);
	fflush(stdout);
	if (r != 0 && arg_json && !json_printed)
		print_json_error(r);
	free(first_error);
	return r;
}
