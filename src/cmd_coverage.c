/*
 * `retentiond coverage [--format text|json] [--output FILE]`: the
 * personal data in the database and what covers it (SPEC §9). Exit 0
 * when every personal-data column is covered, 1 when any is not (or the
 * database fails), 2 on a usage or config error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "coverage.h"
#include "db.h"
#include "log.h"
#include "report.h"
#include "strbuf.h"

static void
usage_hint(void)
{
	fprintf(stderr, "Usage: retentiond coverage [--format text|json] "
		"[--output FILE]\n");
}

static int
parse_args(const struct cli *cli, bool *json, const char **output)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*json = false;
	*output = NULL;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(cli->argc, cli->argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (strcmp(optarg, "json") == 0)
				*json = true;
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "retentiond: coverage: --format: "
					"\"%s\" is not text or json\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			*output = optarg;
			break;
		default:
			fprintf(stderr, "retentiond: coverage: unknown or "
				"incomplete option \"%s\"\n",
				cli->argv[optind - 1]);
			usage_hint();
			return EXIT_USAGE;
		}
	}
	if (optind < cli->argc) {
		fprintf(stderr, "retentiond: coverage: unexpected argument "
			"\"%s\"\n", cli->argv[optind]);
		usage_hint();
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int
emit(const char *output, const struct strbuf *b)
{
	char *err = NULL;

	if (output && strcmp(output, "-") != 0) {
		if (!report_write_file(output, b->s, b->len, &err)) {
			log_error("coverage: %s", err);
			free(err);
			return EXIT_RUNTIME;
		}
		return EXIT_OK;
	}
	if (fwrite(b->s, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
		log_error("coverage: could not write to standard output: %s",
			  strerror(errno));
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

int
cmd_coverage(const struct cli *cli)
{
	struct config cfg;
	struct coverage_result r;
	struct strbuf b = STRBUF_INIT;
	const char *output;
	PGconn *conn;
	char *err = NULL;
	bool json;
	int status = parse_args(cli, &json, &output);

	if (status != EXIT_OK)
		return status;
	status = cmd_setup_read(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;
	if (!coverage_run(conn, &cfg, NULL, 0, &r, &err)) {
		log_error("coverage: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	if (json)
		coverage_render_json(&r, &b);
	else
		coverage_render_text(&r, &b);
	status = emit(output, &b);
	if (status == EXIT_OK && r.uncovered_columns > 0)
		status = EXIT_RUNTIME;
	sb_free(&b);
	coverage_free(&r);
	cmd_teardown(&cfg, conn);
	return status;
}
