/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <linux/capability.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager.h"
#include "target.h"

static void help(void) {
	printf("Usage: netbumpd [OPTIONS]\n"
	       "Shape the upload and download of cgroups and users, changeable at any moment.\n\n"
	       "  -h --help              Show this help\n"
	       "     --version           Show the version\n"
	       "     --foreground        Stay in the foreground (the default; kept for scripts)\n"
	       "     --socket PATH       Varlink socket (default /run/netbump/netbumpd.sock)\n"
	       "     --state-dir DIR     State directory (default /run/netbump)\n"
	       "     --config-dir DIR    Persistent rules in DIR/rules.d/*.rules (default\n"
	       "                         /etc/netbump); SIGHUP reads them again\n"
	       "     --cgroup-root PATH  cgroup v2 subtree to classify, relative to the cgroup2\n"
	       "                         mount (default /, the whole tree)\n"
	       "     --interface IF      Shape only this interface (repeatable; default: all\n"
	       "                         non-loopback interfaces, following hotplug)\n"
	       "     --container-state-root DIR  Read Docker's and Podman's state below DIR\n"
	       "                         instead of / (container: targets; for tests)\n"
	       "     --max-rules-per-user N  Rules each non-root user may have (default 64,\n"
	       "                         0 = no limit)\n"
	       "     --log-level LEVEL   debug, info, notice, warning, err (default info)\n"
	       "     --no-accounting     Do not count traffic per process (netbumpctl top then\n"
	       "                         shows the rules only)\n"
	       "     --no-small-first    No leaf class that serves a rule's small packets first\n"
	       "                         (which only the first 1000 rules get anyway)\n");
}

/* Before anything is touched (state directory, BPF, netlink): without these
 * netbumpd could only fail half-way, after libbpf's complaints. Which ones
 * and why: units/netbumpd.service.in. CAP_SYS_ADMIN stands for CAP_BPF and
 * CAP_PERFMON. */
static int check_capabilities(void) {
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
		{ CAP_NET_ADMIN, "CAP_NET_ADMIN" },
		{ CAP_BPF, "CAP_BPF" },
		{ CAP_PERFMON, "CAP_PERFMON" },
	};
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
	char missing[128] = "";
	bool sys_admin;

	if (syscall(SYS_capget, &h, d) < 0)
		return 0; /* cannot tell: the operations themselves will say */
#define HAS(c) ((d[(c) / 32].effective & (1u << ((c) % 32))) != 0)
	sys_admin = HAS(CAP_SYS_ADMIN);
	for (size_t k = 0; k < sizeof(needed) / sizeof(needed[0]); k++)
		if (!HAS(needed[k].cap) && !(sys_admin && needed[k].cap != CAP_NET_ADMIN)) {
			if (missing[0])
				strncat(missing, ", ", sizeof(missing) - strlen(missing) - 1);
			strncat(missing, needed[k].name, sizeof(missing) - strlen(missing) - 1);
		}
#undef HAS
	if (!missing[0])
		return 0;
	log_error("Must run as root: it needs CAP_NET_ADMIN, CAP_BPF and CAP_PERFMON, and %s lacks %s; "
		  "nothing was changed.",
		  geteuid() == 0 ? "this root process" : "this user", missing);
	return -EPERM;
}

static int strv_push(char ***v, const char *s) {
	size_t n = 0;
	char **nv;

	while (*v && (*v)[n])
		n++;
	nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv)
		return -ENOMEM;
	nv[n] = strdup(s);
	if (!nv[n])
		return -ENOMEM;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

static int parse_argv(Manager *m, int argc, char *argv[]) {
	enum { ARG_VERSION = 0x100, ARG_FOREGROUND, ARG_SOCKET, ARG_STATE_DIR, ARG_CONFIG_DIR, ARG_CGROUP_ROOT, ARG_INTERFACE,
	       ARG_LOG_LEVEL, ARG_MAX_RULES, ARG_NO_ACCOUNTING, ARG_NO_SMALL_FIRST, ARG_CONTAINER_ROOT };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "foreground", no_argument, NULL, ARG_FOREGROUND },
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "state-dir", required_argument, NULL, ARG_STATE_DIR },
		{ "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
		{ "cgroup-root", required_argument, NULL, ARG_CGROUP_ROOT },
		{ "interface", required_argument, NULL, ARG_INTERFACE },
		{ "log-level", required_argument, NULL, ARG_LOG_LEVEL },
		{ "max-rules-per-user", required_argument, NULL, ARG_MAX_RULES },
		{ "no-accounting", no_argument, NULL, ARG_NO_ACCOUNTING },
		{ "no-small-first", no_argument, NULL, ARG_NO_SMALL_FIRST },
		{ "container-state-root", required_argument, NULL, ARG_CONTAINER_ROOT },
		{}
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("netbumpd %s\n", NETBUMP_VERSION);
			return 0;
		case ARG_FOREGROUND:
			m->foreground = true;
			break;
		case ARG_SOCKET:
			if (optarg[0] != '/')
				return log_error_errno(-EINVAL, "--socket needs an absolute path: %s", optarg);
			free(m->socket_path);
			m->socket_path = strdup(optarg);
			break;
		case ARG_STATE_DIR:
			if (optarg[0] != '/')
				return log_error_errno(-EINVAL, "--state-dir needs an absolute path: %s", optarg);
			free(m->state_dir);
			m->state_dir = strdup(optarg);
			break;
		case ARG_CONFIG_DIR: {
			struct stat st;

			if (optarg[0] != '/')
				return log_error_errno(-EINVAL, "--config-dir needs an absolute path: %s", optarg);
			/* Given, it is meant: a typo must not start netbumpd without
			 * its rules. (The default may be missing: no rules then.) */
			if (stat(optarg, &st) < 0)
				return log_error_errno(errno, "--config-dir %s: %m", optarg);
			if (!S_ISDIR(st.st_mode))
				return log_error_errno(-ENOTDIR, "--config-dir %s: not a directory", optarg);
			free(m->config_dir);
			m->config_dir = strdup(optarg);
			break;
		}
		case ARG_CGROUP_ROOT: {
			/* Accept both forms: relative to the mount ("/a") or an
			 * absolute path under the mount (resolved at start). */
			free(m->cgroup_root);
			m->cgroup_root = strdup(optarg);
			break;
		}
		case ARG_INTERFACE:
			if (strlen(optarg) >= IF_NAMESIZE || !*optarg)
				return log_error_errno(-EINVAL, "Invalid interface name: %s", optarg);
			r = strv_push(&m->only_ifaces, optarg);
			if (r < 0)
				return log_oom();
			break;
		case ARG_MAX_RULES: {
			char *e = NULL;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &e, 10);
			if (errno != 0 || !e || *e || optarg[0] < '0' || optarg[0] > '9' || v > 65534)
				return log_error_errno(-EINVAL, "Invalid --max-rules-per-user (0 to 65534): %s", optarg);
			m->max_rules_per_user = (unsigned)v;
			break;
		}
		case ARG_NO_ACCOUNTING:
			m->no_accounting = true;
			break;
		case ARG_CONTAINER_ROOT:
			if (optarg[0] != '/')
				return log_error_errno(-EINVAL, "--container-state-root needs an absolute path: %s", optarg);
			free(m->container_root);
			m->container_root = strdup(optarg);
			if (!m->container_root)
				return log_oom();
			break;
		case ARG_NO_SMALL_FIRST:
			m->no_small_first = true;
			break;
		case ARG_LOG_LEVEL:
			r = log_level_from_string(optarg);
			if (r < 0)
				return log_error_errno(r, "Invalid log level: %s", optarg);
			log_set_max_level(r);
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc)
		return log_error_errno(-EINVAL, "Unexpected argument: %s", argv[optind]);
	if (!m->socket_path || !m->state_dir || !m->config_dir)
		return log_oom();
	return 1;
}

/* Each client takes a descriptor, and so do every interface's netlink
 * work, BPF maps and links and each rule's watches: the soft limit (1024 by
 * default) is raised to the hard one, as systemd recommends for daemons
 * (the soft limit exists for programs that still use select(2); we don't).
 * Running out anyway is handled where it happens (accept(2) rests). */
static void raise_nofile(void) {
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug_errno(errno, "Cannot raise RLIMIT_NOFILE to its hard limit: %m");
}

int main(int argc, char *argv[]) {
	_cleanup_(manager_freep) Manager *m = NULL;
	int r;

	log_set_prefix("netbumpd");
	/* Large buffers (a List of thousands of rules, the state file) in
	 * their own mappings, given back when freed. glibc would otherwise
	 * raise this threshold to the largest buffer freed so far and serve
	 * the next one from the heap, which keeps the pages. */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	r = manager_new(&m);
	if (r < 0)
		return log_error_errno(r, "Failed to allocate manager: %m"), EXIT_FAILURE;

	r = parse_argv(m, argc, argv);
	if (r <= 0)
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

	r = check_capabilities();
	if (r < 0)
		return EXIT_FAILURE;

	raise_nofile();
	r = manager_start(m);
	if (r < 0) {
		manager_stop(m);
		return EXIT_FAILURE;
	}
	m->started = true;

	sd_notify(0, "READY=1\nSTATUS=Shaping.");
	log_info("Ready: socket %s, cgroup root %s.", m->socket_path, m->cgroup_root);

	r = sd_event_loop(m->event);
	sd_notify(0, "STOPPING=1\nSTATUS=Removing shaping.");
	manager_stop(m);
	if (r < 0)
		return log_error_errno(r, "Event loop failed: %m"), EXIT_FAILURE;
	log_info("Stopped; every change made to the host has been removed.");
	return EXIT_SUCCESS;
}
