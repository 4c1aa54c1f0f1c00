/*
 * retentiond: enforce data-retention rules on PostgreSQL.
 *
 * main.c parses the global options, picks the command, and calls it. Every
 * command returns an exit status (commands.h).
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

struct command {
	const char *name;
	int (*fn)(const struct cli *cli);
	const char *args;
	const char *help;
};

static int cmd_version(const struct cli *cli);

static const struct command commands[] = {
	{ "check", cmd_check, "", "validate the config and check rules against the database" },
	{ "plan", cmd_plan, "", "dry run: what a cycle would change now" },
	{ "run", cmd_run, "[--rule NAME]... [--force]", "one enforcement cycle, then exit" },
	{ "daemon", cmd_daemon, "[--allow-root]", "run cycles on the schedule, in the foreground" },
	{ "report", cmd_report, "[--run ID] [--since DATE] [--until DATE] [--format text|csv|json|html] [--output FILE]",
	  "render the audit trail" },
	{ "verify", cmd_verify, "", "verify the audit log's hash chain" },
	{ "hold", cmd_hold, "add SUBJECT:ID --reason TEXT [--until DATE] | release ID | list", "legal holds" },
	{ "erase", cmd_erase, "SUBJECT:ID [--reason TEXT]", "record a right-to-erasure request" },
	{ "erasure", cmd_erasure, "list", "list erasure requests" },
	{ "replay", cmd_replay, "[--dry-run]", "re-file the ledger's erasures that a restored database lacks" },
	{ "coverage", cmd_coverage, "[--format text|json] [--output FILE]",
	  "personal data that no rule covers" },
	{ "access", cmd_access, "SUBJECT:ID [--reason TEXT] [--now] | list", "record (or fulfil) a right-of-access request" },
	{ "init-db", cmd_init_db, "", "create or upgrade retentiond's own schema" },
	{ "grants", cmd_grants, "ROLE", "print the GRANT statements ROLE needs" },
	{ "version", cmd_version, "", "print the version" },
};

static void
usage(FILE *out)
{
	fprintf(out,
		"Usage: retentiond [-c FILE] [-v|-q] COMMAND [OPTIONS]\n"
		"\n"
		"Enforce data-retention rules on a PostgreSQL database.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE  config file (default: $RETENTIOND_CONFIG, then\n"
		"                     %s/retentiond/retentiond.conf)\n"
		"  -v, --verbose      more detail (debug messages)\n"
		"  -q, --quiet        errors only\n"
		"  -h, --help         show this help and exit\n"
		"      --version      print the version and exit\n"
		"\n"
		"Commands:\n", SYSCONFDIR);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];
		char head[128];
		snprintf(head, sizeof(head), "%s%s%s", c->name,
			 c->args[0] ? " " : "", c->args);
		if (strlen(head) > 22)
			fprintf(out, "  %s\n  %-22s %s\n", head, "", c->help);
		else
			fprintf(out, "  %-22s %s\n", head, c->help);
	}
	fprintf(out,
		"\n"
		"Exit status: 0 success, 1 failure at run time, 2 usage or config error,\n"
		"3 another instance holds the lock.\n"
		"\n"
		"See retentiond(8) and retentiond.conf(5).\n");
}

static int
cmd_version(const struct cli *cli)
{
	(void)cli;
	printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
	return EXIT_OK;
}

static const char *
default_config_path(void)
{
	const char *env = getenv("RETENTIOND_CONFIG");
	if (env && *env)
		return env;
	return SYSCONFDIR "/retentiond/retentiond.conf";
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .verbosity = 0 };
	int opt;

	/* "+": stop at the command, whose own options come after it */
	while ((opt = getopt_long(argc, argv, "+c:vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cli.config_path = optarg;
			break;
		case 'v':
			cli.verbosity = 1;
			break;
		case 'q':
			cli.verbosity = -1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			return cmd_version(&cli);
		default:
			fprintf(stderr, "Try \"retentiond --help\" for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "retentiond: no command given\n");
		fprintf(stderr, "Try \"retentiond --help\" for more information.\n");
		return EXIT_USAGE;
	}
	if (!cli.config_path)
		cli.config_path = default_config_path();
	cli.argc = argc - optind;
	cli.argv = argv + optind;

	const char *name = cli.argv[0];
	if (strcmp(name, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		log_init(cli.verbosity);
		int status = commands[i].fn(&cli);
		log_fini();
		return status;
	}
	fprintf(stderr, "retentiond: unknown command \"%s\"\n", name);
	fprintf(stderr, "Try \"retentiond --help\" for more information.\n");
	return EXIT_USAGE;
}
