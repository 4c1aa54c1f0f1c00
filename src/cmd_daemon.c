/*
 * `retentiond daemon`: load the config once, refuse root, then hand over
 * to the daemon loop (daemon.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

int
cmd_daemon(const struct cli *cli)
{
	static const struct option longopts[] = {
		{ "allow-root", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	bool allow_root = false;
	int opt;

	optind = 0;	/* glibc: start over on the command's own arguments */
	while ((opt = getopt_long(cli->argc, cli->argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'R':
			allow_root = true;
			break;
		default:
			fprintf(stderr, "Usage: retentiond daemon [--allow-root]\n");
			return EXIT_USAGE;
		}
	}
	if (optind < cli->argc) {
		fprintf(stderr, "retentiond: daemon: unexpected argument \"%s\"\n",
			cli->argv[optind]);
		return EXIT_USAGE;
	}
	/* A long-running process that holds secrets and talks to the network
	 * has no business with root's powers; the systemd unit runs it as
	 * its own user. */
	if (geteuid() == 0 && !allow_root) {
		fprintf(stderr, "retentiond: daemon: refusing to run as root; "
			"run it as a dedicated user (the systemd unit uses "
			"User=retentiond), or pass --allow-root if you must\n");
		return EXIT_USAGE;
	}

	struct config *cfg = xcalloc(1, sizeof(*cfg));
	int status = cmd_load_config(cli, cfg);
	if (status != EXIT_OK) {
		free(cfg);
		return status;
	}
	return daemon_run(cli->config_path, cfg);
}
