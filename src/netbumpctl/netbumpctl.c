/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netbumpctl: add, change, remove and list netbump's limits. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "netbumpctl.h"
#include "rate.h"
#include "target.h"
#include "varlink.h"
#include "wrap.h"

#define DEFAULT_SOCKET "/run/netbump/netbumpd.sock"
#define CALL_TIMEOUT_MS 30000

const char *arg_socket;
bool arg_json;

static void help(void) {
	printf("Usage: netbumpctl [OPTIONS] VERB [ARGS]\n"
	       "Add, change, remove and list bandwidth limits, while traffic flows.\n\n"
	       "Verbs:\n"
	       "  set TARGET RATE                Limit upload and download to RATE\n"
	       "  set TARGET [--up R] [--down R] Limit one or both directions\n"
	       "                                 (R may be 'unlimited' to lift one side)\n"
	       "      [--min R] [--min-up R] [--min-down R]\n"
	       "                                 Guarantee R inside the enclosing rule ('none': no minimum)\n"
	       "      [--priority high|normal|low]\n"
	       "                                 Who gets spare capacity first and waits least\n"
	       "                                 (what is not given stays as it is on a rule)\n"
	       "  unset TARGET                   Remove the limit\n"
	       "  list [TARGET]                  Show rules, nested in the rules around them, with\n"
	       "                                 live rates and counters; with a target, the rule\n"
	       "                                 it falls under and the rules around that\n"
	       "  status                         Show the daemon's interfaces and state\n"
	       "  top [--once] [--group G]       Live view: processes by rate, limit them with keys;\n"
	       "                                 G: process, user, unit, rule\n"
	       "  run RATE -- CMD [ARGS...]      Run CMD limited from its first packet on\n"
	       "  run [--up R] [--down R] -- CMD [ARGS...]\n"
	       "                                 (the limit ends when CMD and its children end)\n\n"
	       "Targets:  cgroup:/PATH   (as in /proc/PID/cgroup)\n"
	       "          user@UID  user@NAME\n"
	       "          pid:PID        a process and the children it starts\n"
	       "          sock:INODE  sock:PID:FD   one socket\n"
	       "          unit:NAME      a systemd unit, across restarts\n"
	       "          all            everything netbumpd shapes, around every other rule\n"
	       "Precedence: socket > process > cgroup or unit (deepest) > user > all\n"
	       "Nesting:  a rule sits inside the rule its traffic fell under before it, and is\n"
	       "          bounded by that rule and every rule around it\n"
	       "Rates:    tc(8) units: 500kbit 5mbit 1gbit 2mibit (bit/s);\n"
	       "          kbps mbps gbps are BYTES per second (10mbps = 80mbit)\n\n"
	       "Options:\n"
	       "  -h --help          Show this help\n"
	       "     --version       Show the version\n"
	       "     --socket PATH   Daemon socket (default $NETBUMP_SOCKET or " DEFAULT_SOCKET ")\n"
	       "     --json          Print replies as JSON\n");
}

static int connect_daemon(void) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(arg_socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "netbumpctl: socket path too long: %s\n", arg_socket);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, arg_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = negative_errno();
		fprintf(stderr, "netbumpctl: cannot reach netbumpd at %s: %s\n", arg_socket, strerror(-r));
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
		fprintf(stderr, "netbumpctl: %s failed: %s\n", method, strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (vl_reply_parse(msg, &error, &p) < 0) {
		fprintf(stderr, "netbumpctl: malformed reply from netbumpd\n");
		json_object_put(msg);
		return EXIT_REFUSED;
	}
	if (error) {
		json_object *reason = NULL, *param = NULL;
		const char *short_error = strrchr(error, '.') ? strrchr(error, '.') + 1 : error;

		if (arg_json)
			printf("%s\n", json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PRETTY));
		if (p)
			json_object_object_get_ex(p, "reason", &reason);
		if (p)
			json_object_object_get_ex(p, "parameter", &param);
		fprintf(stderr, "netbumpctl: %s%s%s%s\n", reason ? json_object_get_string(reason) : short_error,
			param ? " (parameter '" : "", param ? json_object_get_string(param) : "", param ? "')" : "");
		json_object_put(msg);
		return EXIT_REFUSED;
	}
	*ret_msg = msg;
	*ret = p;
	return 0;
}

/* what: "upload ", "download " or "" */
static int parse_rate_arg(const char *what, const char *s, uint64_t *ret) {
	bool bytes = false;
	char buf[RATE_STRING_MAX];
	int r;

	if (streq(s, "unlimited") || streq(s, "none")) {
		*ret = 0;
		return 0;
	}
	r = rate_parse(s, ret, &bytes);
	if (r == -ERANGE) {
		fprintf(stderr, "netbumpctl: %srate '%s' out of range (8bit to 10tbit)\n", what, s);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "netbumpctl: invalid %srate '%s' (expected e.g. 500kbit, 5mbit, 1gbit)\n", what, s);
		return r;
	}
	if (bytes)
		fprintf(stderr, "netbumpctl: warning: '%s' counts BYTES per second, i.e. %s; use 'bit' units for bits\n",
			s, rate_format(*ret, buf));
	return 0;
}

static int check_target(const char *s) {
	const char *reason = NULL;
	Target t;

	if (target_parse(s, &t, &reason) < 0) {
		fprintf(stderr, "netbumpctl: invalid target '%s': %s\n", s, reason ?: "out of memory");
		return -EINVAL;
	}
	target_done(&t);
	return 0;
}

static void human_bytes(uint64_t b, char *buf, size_t n) {
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	size_t k = 0;

	while (v >= 1024. && k + 1 < ELEMENTSOF(u)) {
		v /= 1024.;
		k++;
	}
	if (k == 0)
		snprintf(buf, n, "%lluB", (unsigned long long)b);
	else
		snprintf(buf, n, "%.1f%s", v, u[k]);
}

static uint64_t get_u64(json_object *o, const char *key) {
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return 0;
	int64_t x = json_object_get_int64(v);
	return x < 0 ? 0 : (uint64_t)x;
}

static const char *limit_str(uint64_t bps, char *buf) {
	return bps ? rate_format(bps, buf) : "-";
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

#define TARGET_COLUMN 32
#define INDENT 2

/* One line per direction: limit, rate over the last second and the HTB
 * class counters (bytes, packets, drops, bytes queued now); the target,
 * indented by its depth in the tree, and its priority on the first. */
static void print_rule_line(json_object *rule, size_t depth, bool shares) {
	static const char *const dirs[2] = { "up", "down" };
	const char *target = get_str(rule, "target") ?: "?", *prio = get_str(rule, "priority") ?: "normal";
	int indent = depth * INDENT < TARGET_COLUMN ? (int)(depth * INDENT) : TARGET_COLUMN;

	for (int k = 0; k < 2; k++) {
		char key[16], lim[RATE_STRING_MAX], min[RATE_STRING_MAX], rate[RATE_STRING_MAX], bytes[32],
			backlog[32];
		json_object *st = NULL;

		snprintf(key, sizeof(key), "%s_stats", dirs[k]);
		json_object_object_get_ex(rule, key, &st);
		human_bytes(get_u64(st, "bytes"), bytes, sizeof(bytes));
		human_bytes(get_u64(st, "backlog"), backlog, sizeof(backlog));
		printf("%*s%-*s %-4s %10s", indent, "", TARGET_COLUMN - indent, k == 0 ? target : "", dirs[k],
		       limit_str(get_u64(rule, dirs[k]), lim));
		if (shares) {
			snprintf(key, sizeof(key), "min_%s", dirs[k]);
			printf(" %10s %-6s", limit_str(get_u64(rule, key), min), k == 0 ? prio : "");
		}
		printf(" %12s %10s %10llu %8llu %8s\n", get_u64(st, "rate") ? rate_format(get_u64(st, "rate"), rate) : "0",
		       bytes, (unsigned long long)get_u64(st, "packets"), (unsigned long long)get_u64(st, "drops"),
		       backlog);
	}
}

static void print_header(bool shares) {
	printf("%-*s %-4s %10s", TARGET_COLUMN, "TARGET", "DIR", "LIMIT");
	if (shares)
		printf(" %10s %-6s", "MIN", "PRIO");
	printf(" %12s %10s %10s %8s %8s\n", "RATE", "BYTES", "PACKETS", "DROPS", "BACKLOG");
}

/* A rule in the tree of rules: under the rule its "parent" names. */
typedef struct RuleNode {
	json_object *rule;
	const char *target;
	size_t parent, first_child, next_sibling; /* NONE: there is none */
	bool selected, printed;
} RuleNode;

#define NONE SIZE_MAX

static int node_compare(const void *a, const void *b) {
	/* "pid:9" before "pid:10" */
	return strverscmp(((const RuleNode *)a)->target, ((const RuleNode *)b)->target);
}

static size_t node_find(const RuleNode *nodes, size_t n, const char *target) {
	RuleNode key = { .target = target };
	const RuleNode *f;

	if (!target)
		return NONE;
	f = bsearch(&key, nodes, n, sizeof(RuleNode), node_compare);
	return f ? (size_t)(f - nodes) : NONE;
}

static void print_subtree(RuleNode *nodes, size_t i, size_t depth, bool shares) {
	if (nodes[i].printed)
		return;
	nodes[i].printed = true;
	if (!nodes[i].selected)
		return;
	print_rule_line(nodes[i].rule, depth, shares);
	for (size_t c = nodes[i].first_child; c != NONE; c = nodes[c].next_sibling)
		print_subtree(nodes, c, depth + 1, shares);
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
		fprintf(stderr, "netbumpctl: out of memory\n");
		return NULL;
	}
	for (size_t k = 0; k < n; k++) {
		json_object *rule = json_object_array_get_idx(rules, k);
		nodes[k] = (RuleNode){ .rule = rule, .target = get_str(rule, "target") ?: "", .selected = true };
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
static void rule_tree_print(RuleNode *nodes, size_t n) {
	bool shares = false;

	for (size_t k = 0; k < n; k++)
		shares = shares || (nodes[k].selected && rule_has_shares(nodes[k].rule));
	print_header(shares);
	for (size_t k = 0; k < n; k++)
		if (nodes[k].parent == NONE)
			print_subtree(nodes, k, 0, shares);
	/* Rules whose parents go round in a circle: no top to hang them from. */
	for (size_t k = 0; k < n; k++)
		print_subtree(nodes, k, 0, shares);
}

static int print_rules(json_object *rules) {
	_cleanup_free_ RuleNode *nodes = NULL;
	size_t n = 0;

	nodes = rule_tree_new(rules, &n);
	if (!nodes)
		return EXIT_REFUSED;
	rule_tree_print(nodes, n);
	return 0;
}

static int print_json(json_object *p) {
	printf("%s\n", json_object_to_json_string_ext(p, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	return 0;
}

/* A minimum in bit/s: a rate, or "none" / "0" for no guaranteed minimum.
 * "unlimited" would read as "guarantee everything": refused. */
static int parse_min_arg(const char *option, const char *s, uint64_t *ret) {
	if (streq(s, "none") || streq(s, "0")) {
		*ret = 0;
		return 0;
	}
	if (streq(s, "unlimited")) {
		fprintf(stderr, "netbumpctl: %s takes a rate or 'none' (no guaranteed minimum), not '%s'\n", option, s);
		return -EINVAL;
	}
	return parse_rate_arg("minimum ", s, ret);
}

static const char *const priorities[] = { "high", "normal", "low" };

/* What set was asked for, one direction at a time: 0 up, 1 down. The words
 * are the user's own, for messages that name them. */
typedef struct SetArgs {
	bool has_limit[2], has_min[2];
	uint64_t limit[2], min[2];
	const char *limit_word[2], *min_word[2];
	const char *min_option[2];   /* "--min", "--min-up" or "--min-down" */
	bool limit_both;             /* the limit came as the one RATE */
	const char *priority;
} SetArgs;

/* "--name VALUE" or "--name=VALUE": whether a is that option; its value, or
 * NULL when none follows. */
static bool option_value(const char *a, const char *name, int argc, char *argv[], int *k, const char **ret_value) {
	size_t l = strlen(name);

	if (strncmp(a, name, l) != 0 || (a[l] != '\0' && a[l] != '='))
		return false;
	if (a[l] == '=')
		*ret_value = a + l + 1;
	else
		*ret_value = *k + 1 < argc ? argv[++*k] : NULL;
	return true;
}

static int parse_set_args(int argc, char *argv[], const char **ret_target, SetArgs *ret) {
	enum { LIMIT, MIN, PRIORITY };
	static const struct {
		const char *name;
		int what;
		int dir; /* 0 up, 1 down, 2 both */
	} options[] = {
		{ "--up", LIMIT, 0 },
		{ "--down", LIMIT, 1 },
		{ "--min", MIN, 2 },
		{ "--min-up", MIN, 0 },
		{ "--min-down", MIN, 1 },
		{ "--priority", PRIORITY, 2 },
	};
	static const char *const dir_word[2] = { "upload ", "download " };
	const char *target = NULL;
	bool options_done = false;
	SetArgs a = {};

	for (int k = 1; k < argc; k++) {
		const char *w = argv[k], *v = NULL;
		size_t o;

		if (!options_done && streq(w, "--")) {
			options_done = true;
			continue;
		}
		if (options_done || w[0] != '-' || w[1] != '-' || !w[2]) {
			if (!target)
				target = w;
			else if (!a.has_limit[0] && !a.has_limit[1]) {
				if (parse_rate_arg("", w, &a.limit[0]) < 0)
					return -EINVAL;
				a.limit[1] = a.limit[0];
				a.has_limit[0] = a.has_limit[1] = a.limit_both = true;
				a.limit_word[0] = a.limit_word[1] = w;
			} else {
				fprintf(stderr, "netbumpctl: unexpected argument '%s'\n", w);
				return -EINVAL;
			}
			continue;
		}

		for (o = 0; o < ELEMENTSOF(options); o++)
			if (option_value(w, options[o].name, argc, argv, &k, &v))
				break;
		if (o == ELEMENTSOF(options)) {
			fprintf(stderr, "netbumpctl: unknown option '%s' for set\n", w);
			return -EINVAL;
		}
		if (!v) {
			fprintf(stderr, "netbumpctl: %s needs %s\n", options[o].name,
				options[o].what == PRIORITY ? "high, normal or low" : "a rate");
			return -EINVAL;
		}

		switch (options[o].what) {
		case LIMIT: {
			int d = options[o].dir;

			if (parse_rate_arg(dir_word[d], v, &a.limit[d]) < 0)
				return -EINVAL;
			a.has_limit[d] = true;
			a.limit_word[d] = v;
			a.limit_both = false;
			break;
		}
		case MIN: {
			uint64_t m;

			if (parse_min_arg(options[o].name, v, &m) < 0)
				return -EINVAL;
			for (int d = 0; d < 2; d++)
				if (options[o].dir == d || options[o].dir == 2) {
					a.has_min[d] = true;
					a.min[d] = m;
					a.min_word[d] = v;
					a.min_option[d] = options[o].name;
				}
			break;
		}
		case PRIORITY:
			a.priority = NULL;
			for (size_t i = 0; i < ELEMENTSOF(priorities); i++)
				if (streq(v, priorities[i]))
					a.priority = priorities[i];
			if (!a.priority) {
				fprintf(stderr, "netbumpctl: invalid priority '%s' (expected high, normal or low)\n", v);
				return -EINVAL;
			}
			break;
		}
	}

	if (!target || (!a.has_limit[0] && !a.has_limit[1] && !a.has_min[0] && !a.has_min[1] && !a.priority)) {
		fprintf(stderr, "netbumpctl: usage: set TARGET RATE | set TARGET [--up RATE] [--down RATE] [--min RATE]\n"
				"                  [--min-up RATE] [--min-down RATE] [--priority high|normal|low]\n");
		return -EINVAL;
	}
	if (a.limit_both && a.limit[0] == 0 && !a.has_min[0] && !a.has_min[1] && !a.priority) {
		fprintf(stderr, "netbumpctl: '%s' as the only rate would limit nothing: use unset\n", a.limit_word[0]);
		return -EINVAL;
	}

	/* A minimum above the rule's own limit could never be given. Only what
	 * this command line says is known here; the daemon checks a minimum
	 * against a limit the rule already has. */
	for (int d = 0; d < 2; d++)
		if (a.has_min[d] && a.has_limit[d] && a.limit[d] > 0 && a.min[d] > a.limit[d]) {
			bool both = streq(a.min_option[d], "--min") && a.limit_both;
			fprintf(stderr, "netbumpctl: %s %s is above the %slimit %s\n", a.min_option[d], a.min_word[d],
				both ? "" : dir_word[d], a.limit_word[d]);
			return -EINVAL;
		}

	*ret_target = target;
	*ret = a;
	return 0;
}

/* "5mbit", "unlimited"; with a minimum "5mbit (min 1mbit)". */
static void print_direction(const char *name, uint64_t limit, uint64_t min) {
	char a[RATE_STRING_MAX], b[RATE_STRING_MAX];

	printf("%s %s", name, limit ? rate_format(limit, a) : "unlimited");
	if (min)
		printf(" (min %s)", rate_format(min, b));
}

static int verb_set(int argc, char *argv[]) {
	static const char *const keys[2] = { "up", "down" }, *const min_keys[2] = { "min_up", "min_down" };
	_cleanup_json_ json_object *msg = NULL;
	json_object *params, *reply, *rule;
	const char *target = NULL;
	SetArgs a;
	int r;

	if (parse_set_args(argc, argv, &target, &a) < 0)
		return EXIT_USAGE;
	if (check_target(target) < 0)
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
		printf("%s: ", json_object_get_string(t));
		print_direction("up", get_u64(rule, "up"), get_u64(rule, "min_up"));
		print_direction(", down", get_u64(rule, "down"), get_u64(rule, "min_down"));
		if (prio && !streq(json_object_get_string(prio), "normal"))
			printf(", priority %s", json_object_get_string(prio));
		if (parent && json_object_is_type(parent, json_type_string))
			printf(", inside %s", json_object_get_string(parent));
		printf("\n");
	}
	return 0;
}

static int verb_unset(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	json_object *params, *reply;
	int r;

	if (argc != 2) {
		fprintf(stderr, "netbumpctl: usage: unset TARGET\n");
		return EXIT_USAGE;
	}
	if (check_target(argv[1]) < 0)
		return EXIT_USAGE;
	params = json_object_new_object();
	json_object_object_add(params, "target", json_object_new_string(argv[1]));
	r = call("Unset", params, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	return 0;
}

static int verb_list(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	json_object *reply, *rules, *params = NULL, *applies = NULL;
	const char *target = argc == 2 ? argv[1] : NULL;
	int r;

	if (argc > 2) {
		fprintf(stderr, "netbumpctl: usage: list [TARGET]\n");
		return EXIT_USAGE;
	}
	if (target) {
		if (check_target(target) < 0)
			return EXIT_USAGE;
		params = json_object_new_object();
		json_object_object_add(params, "target", json_object_new_string(target));
	}
	r = call("List", params, &msg, &reply);
	if (r != 0)
		return r;
	if (arg_json)
		return print_json(reply);
	json_object_object_get_ex(reply, "rules", &rules);
	if (target) {
		_cleanup_free_ RuleNode *nodes = NULL;
		size_t n = 0, k;

		json_object_object_get_ex(reply, "applies", &applies);
		if (!applies) {
			printf("%s falls under no rule: unlimited.\n", target);
			return 0;
		}
		nodes = rule_tree_new(rules, &n);
		if (!nodes)
			return EXIT_REFUSED;
		/* The rule the target falls under and the rules around it, up
		 * to the top (or round once, should the parents go in a circle). */
		printf("%s falls under %s", target, json_object_get_string(applies));
		for (k = 0; k < n; k++)
			nodes[k].selected = false;
		for (k = node_find(nodes, n, json_object_get_string(applies)); k != NONE && !nodes[k].selected;
		     k = nodes[k].parent) {
			nodes[k].selected = true;
			if (nodes[k].parent != NONE && !nodes[nodes[k].parent].selected)
				printf(", inside %s", nodes[nodes[k].parent].target);
		}
		printf("\n");
		rule_tree_print(nodes, n);
		return 0;
	}
	if (!rules || json_object_array_length(rules) == 0) {
		printf("No rules.\n");
		return 0;
	}
	return print_rules(rules);
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
				fprintf(stderr, "netbumpctl: %s needs a rate\n", a);
				return EXIT_USAGE;
			}
			if (parse_rate_arg(is_up ? "upload " : "download ", v, is_up ? &rates.up_bps : &rates.down_bps) < 0)
				return EXIT_USAGE;
			if (is_up)
				rates.has_up = true;
			else
				rates.has_down = true;
		} else if (a[0] == '-' && a[1] == '-' && a[2]) {
			fprintf(stderr, "netbumpctl: unknown option '%s' for run\n", a);
			return EXIT_USAGE;
		} else if (!rates.has_up && !rates.has_down) {
			if (parse_rate_arg("", a, &rates.up_bps) < 0)
				return EXIT_USAGE;
			rates.down_bps = rates.up_bps;
			rates.has_up = rates.has_down = true;
		} else {
			fprintf(stderr, "netbumpctl: unexpected argument '%s' (the command goes after '--')\n", a);
			return EXIT_USAGE;
		}
	}
	if ((!rates.has_up && !rates.has_down) || k + 1 >= argc) {
		fprintf(stderr, "netbumpctl: usage: run RATE -- CMD [ARGS...] | run [--up RATE] [--down RATE] -- CMD [ARGS...]\n");
		return EXIT_USAGE;
	}
	if (rates.up_bps == 0 && rates.down_bps == 0) {
		fprintf(stderr, "netbumpctl: both directions unlimited: nothing to limit\n");
		return EXIT_USAGE;
	}

	/* No ack, no command: running it unlimited would hide the failure. */
	r = wrap_limit_self(arg_socket, &rates, CALL_TIMEOUT_MS, NULL, &failure, &message);
	if (r < 0) {
		fprintf(stderr, "netbumpctl: %s\n", message ?: strerror(-r));
		return failure == WRAP_FAILURE_UNREACHABLE ? EXIT_UNREACHABLE : EXIT_REFUSED;
	}
	r = wrap_exec(argv + k + 1, &message);
	fprintf(stderr, "netbumpctl: %s\n", message ?: "cannot execute the command");
	return r;
}

static int verb_status(int argc, char *argv[]) {
	_cleanup_json_ json_object *msg = NULL;
	json_object *reply, *v, *ifs, *rules = NULL;
	int r;

	if (argc != 1) {
		fprintf(stderr, "netbumpctl: status takes no arguments\n");
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
	if (json_object_array_length(rules) > 0)
		return print_rules(rules);
	return 0;
}

int main(int argc, char *argv[]) {
	static const struct {
		const char *name;
		int (*fn)(int argc, char *argv[]);
	} verbs[] = {
		{ "set", verb_set },
		{ "unset", verb_unset },
		{ "list", verb_list },
		{ "status", verb_status },
		{ "run", verb_run },
		{ "top", verb_top },
	};
	enum { ARG_VERSION = 0x100, ARG_SOCKET, ARG_JSON };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "json", no_argument, NULL, ARG_JSON },
		{}
	};
	int c;

	arg_socket = getenv("NETBUMP_SOCKET");
	if (!arg_socket || !*arg_socket)
		arg_socket = DEFAULT_SOCKET;

	/* '+': stop at the verb, so that "set X --up 1mbit" reaches the verb. */
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
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "netbumpctl: missing verb (set, unset, list, status, run, top); see --help\n");
		return EXIT_USAGE;
	}
	/* Global options may also follow the verb's arguments. */
	int n = 0;
	char **args = argv + optind;
	int nargs = argc - optind;
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
		else
			args[n++] = args[k];
	}
	for (size_t k = 0; k < ELEMENTSOF(verbs); k++)
		if (streq(args[0], verbs[k].name))
			return verbs[k].fn(n, args);
	fprintf(stderr, "netbumpctl: unknown verb '%s' (expected set, unset, list, status, run, top)\n", args[0]);
	return EXIT_USAGE;
}
