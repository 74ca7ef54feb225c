/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * netbump-wrap: run a command under a bandwidth limit from its first packet.
 * The wrapper asks netbumpd to limit itself, waits for the ack and execs the
 * command: same PID, same cgroup, no process left in between, so the exit
 * status and signals pass through as if the command ran unwrapped.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "rate.h"
#include "wrap.h"

#define DEFAULT_SOCKET "/run/netbump/netbumpd.sock"
#define CALL_TIMEOUT_MS 30000

/* Our own failures; anything else is the command's status. 126 and 127 are
 * the shell's "cannot execute" and "not found". */
enum { EXIT_LIMIT_FAILED = 1, EXIT_USAGE = 2 };

static void help(void) {
	printf("Usage: netbump-wrap [OPTIONS] [--] COMMAND [ARGS...]\n"
	       "Run COMMAND limited by netbumpd from its first packet on.\n\n"
	       "Options:\n"
	       "  -h --help          Show this help\n"
	       "     --version       Show the version\n"
	       "     --socket PATH   Daemon socket (default $NETBUMP_SOCKET or " DEFAULT_SOCKET ")\n"
	       "     --rate R        Limit upload and download to R\n"
	       "     --up R          Limit upload to R\n"
	       "     --down R        Limit download to R ('unlimited' lifts one side)\n\n"
	       "Without a rate option the rates come from $NETBUMP_RATE (both directions),\n"
	       "$NETBUMP_UP_RATE and $NETBUMP_DOWN_RATE.\n"
	       "Rates: tc(8) units: 500kbit 5mbit 1gbit (bit/s); kbps mbps gbps are BYTES/s.\n");
}

/* what: "--up", "$NETBUMP_RATE", ... (for messages) */
static int parse_rate(const char *what, const char *s, uint64_t *ret) {
	char buf[RATE_STRING_MAX];
	bool bytes = false;
	int r;

	if (streq(s, "unlimited") || streq(s, "none")) {
		*ret = 0;
		return 0;
	}
	r = rate_parse(s, ret, &bytes);
	if (r == -ERANGE) {
		fprintf(stderr, "netbump-wrap: %s: rate '%s' out of range (8bit to 10tbit)\n", what, s);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "netbump-wrap: %s: invalid rate '%s' (expected e.g. 500kbit, 5mbit, 1gbit)\n", what, s);
		return r;
	}
	if (bytes)
		fprintf(stderr, "netbump-wrap: warning: '%s' counts BYTES per second, i.e. %s; use 'bit' units for bits\n",
			s, rate_format(*ret, buf));
	return 0;
}

/* --rate / $NETBUMP_RATE sets both directions; --up, --down and their
 * variables then override one direction each. */
static int apply_rate(const char *what, const char *s, bool up, bool down, WrapRates *rates) {
	uint64_t v;

	if (parse_rate(what, s, &v) < 0)
		return -EINVAL;
	if (up) {
		rates->up_bps = v;
		rates->has_up = true;
	}
	if (down) {
		rates->down_bps = v;
		rates->has_down = true;
	}
	return 0;
}

static int rates_from_env(WrapRates *rates) {
	static const struct {
		const char *name;
		bool up, down;
	} vars[] = {
		{ "NETBUMP_RATE", true, true },
		{ "NETBUMP_UP_RATE", true, false },
		{ "NETBUMP_DOWN_RATE", false, true },
	};

	for (size_t k = 0; k < ELEMENTSOF(vars); k++) {
		const char *v = getenv(vars[k].name);
		char what[32];

		if (!v || !*v)
			continue;
		snprintf(what, sizeof(what), "$%s", vars[k].name);
		if (apply_rate(what, v, vars[k].up, vars[k].down, rates) < 0)
			return -EINVAL;
	}
	return 0;
}

int main(int argc, char *argv[]) {
	enum { ARG_VERSION = 0x100, ARG_SOCKET, ARG_RATE, ARG_UP, ARG_DOWN };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "rate", required_argument, NULL, ARG_RATE },
		{ "up", required_argument, NULL, ARG_UP },
		{ "down", required_argument, NULL, ARG_DOWN },
		{}
	};
	/* --rate first, then --up/--down, whatever their order on the line. */
	const char *opt_rate = NULL, *opt_up = NULL, *opt_down = NULL;
	const char *socket_path = getenv("NETBUMP_SOCKET");
	_cleanup_free_ char *message = NULL;
	WrapFailure failure;
	WrapRates rates = {};
	int c, r;

	if (!socket_path || !*socket_path)
		socket_path = DEFAULT_SOCKET;

	/* '+': the first non-option is the command; its options are its own. */
	while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("netbump-wrap %s\n", NETBUMP_VERSION);
			return 0;
		case ARG_SOCKET:
			socket_path = optarg;
			break;
		case ARG_RATE:
			opt_rate = optarg;
			break;
		case ARG_UP:
			opt_up = optarg;
			break;
		case ARG_DOWN:
			opt_down = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "netbump-wrap: missing command; usage: netbump-wrap [--rate R | --up R --down R] [--] COMMAND [ARGS...]\n");
		return EXIT_USAGE;
	}

	if (opt_rate || opt_up || opt_down) {
		if ((opt_rate && apply_rate("--rate", opt_rate, true, true, &rates) < 0) ||
		    (opt_up && apply_rate("--up", opt_up, true, false, &rates) < 0) ||
		    (opt_down && apply_rate("--down", opt_down, false, true, &rates) < 0))
			return EXIT_USAGE;
	} else if (rates_from_env(&rates) < 0)
		return EXIT_USAGE;
	if (!rates.has_up && !rates.has_down) {
		fprintf(stderr, "netbump-wrap: no rate given: use --rate, --up/--down or set $NETBUMP_RATE\n");
		return EXIT_USAGE;
	}
	if (rates.up_bps == 0 && rates.down_bps == 0) {
		fprintf(stderr, "netbump-wrap: both directions unlimited: nothing to limit\n");
		return EXIT_USAGE;
	}

	/* A limiter that silently let the command run unlimited would be
	 * worse than none: no ack, no command. */
	r = wrap_limit_self(socket_path, &rates, CALL_TIMEOUT_MS, NULL, &failure, &message);
	if (r < 0) {
		fprintf(stderr, "netbump-wrap: %s\n", message ?: strerror(-r));
		return EXIT_LIMIT_FAILED;
	}

	r = wrap_exec(argv + optind, &message);
	fprintf(stderr, "netbump-wrap: %s\n", message ?: "cannot execute the command");
	return r;
}
