/*
 * `retentiond report`: render the audit trail of one run or a date range
 * (SPEC §2). The exit status is 1 when the report was rendered but the
 * audit chain is broken, as for `verify`: a script that files reports
 * must notice.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "report.h"
#include "schema.h"

struct report_args {
	struct report_query q;
	enum report_format format;
	const char *output;	/* NULL or "-": stdout */
};

static int
usage(void)
{
	fprintf(stderr, "Usage: retentiond report [--run ID | [--since DATE] "
		"[--until DATE]] [--format text|csv|json|html] [--output FILE]\n");
	return EXIT_USAGE;
}

static int
parse_args(const struct cli *cli, struct report_args *a)
{
	static const struct option longopts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(a, 0, sizeof(*a));
	a->format = REPORT_TEXT;
	optind = 0;	/* glibc: start over on the command's own arguments */
	while ((opt = getopt_long(cli->argc, cli->argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r': {
			char *end;
			errno = 0;
			long long id = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || id <= 0) {
				fprintf(stderr, "retentiond: report: --run: \"%s\" "
					"is not a run id\n", optarg);
				return EXIT_USAGE;
			}
			a->q.run_id = id;
			break;
		}
		case 's':
			a->q.since = optarg;
			break;
		case 'u':
			a->q.until = optarg;
			break;
		case 'f':
			if (!report_parse_format(optarg, &a->format)) {
				fprintf(stderr, "retentiond: report: --format: "
					"\"%s\" is not one of text, csv, json, "
					"html\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			a->output = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind < cli->argc) {
		fprintf(stderr, "retentiond: report: unexpected argument \"%s\"\n",
			cli->argv[optind]);
		return usage();
	}
	if (a->q.run_id && (a->q.since || a->q.until)) {
		fprintf(stderr, "retentiond: report: --run and --since/--until "
			"cannot be combined\n");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int
emit(const struct report_args *a, const struct strbuf *b)
{
	char *err = NULL;

	if (a->output && strcmp(a->output, "-") != 0) {
		if (!report_write_file(a->output, b->s, b->len, &err)) {
			log_error("report: %s", err);
			free(err);
			return EXIT_RUNTIME;
		}
		return EXIT_OK;
	}
	if (fwrite(b->s, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
		log_error("report: could not write to standard output: %s",
			  strerror(errno));
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

int
cmd_report(const struct cli *cli)
{
	struct report_args a;
	struct config cfg;
	struct report rep;
	PGconn *conn;
	char *err = NULL;
	int status = parse_args(cli, &a);

	if (status != EXIT_OK)
		return status;
	status = cmd_setup_read(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;
	if (schema_require(conn, cfg.database.schema, &err) < 0) {
		log_error("report: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	switch (report_load(conn, &cfg, &a.q, &rep, &err)) {
	case REPORT_LOADED:
		break;
	case REPORT_BAD_DATE:
		fprintf(stderr, "retentiond: report: --since/--until: %s\n", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_USAGE;
	case REPORT_NOT_FOUND:
	case REPORT_DB_ERROR:
		log_error("report: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}

	struct strbuf b = STRBUF_INIT;
	report_render(&rep, a.format, &b);
	status = emit(&a, &b);
	sb_free(&b);
	if (status == EXIT_OK && rep.audit.status != REPORT_AUDIT_INTACT) {
		log_error("report: the audit trail of schema \"%s\" %s; run "
			  "`retentiond verify`", cfg.database.schema,
			  rep.audit.status == REPORT_AUDIT_BROKEN
				  ? "is broken" : "could not be verified");
		status = EXIT_RUNTIME;
	}
	report_free(&rep);
	cmd_teardown(&cfg, conn);
	return status;
}
