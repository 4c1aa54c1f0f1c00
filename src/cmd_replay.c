/*
 * `retentiond replay [--dry-run]`: by hand, what a cycle does when it
 * finds that the database was restored from a backup (SPEC §11): file
 * again every erasure request of the ledger that the database lacks, for
 * the next cycle to carry out.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "restore.h"
#include "runlog.h"
#include "schema.h"

#define USAGE "Usage: retentiond replay [--dry-run]\n"

int
cmd_replay(const struct cli *cli)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	bool dry_run = false;
	int opt;

	optind = 0;
	while ((opt = getopt_long(cli->argc, cli->argv, "+", longopts, NULL)) != -1) {
		if (opt != 'n') {
			fputs(USAGE, stderr);
			return EXIT_USAGE;
		}
		dry_run = true;
	}
	if (optind < cli->argc) {
		fputs(USAGE, stderr);
		return EXIT_USAGE;
	}

	struct config cfg;
	PGconn *conn = NULL;
	char *err = NULL;
	long long run_id = 0;
	bool locked = false;
	int status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;

	if (schema_require(conn, cfg.database.schema, &err) < 0) {
		log_error("replay: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	if (!dry_run) {
		/* a cycle working meanwhile could complete a request twice */
		int holder = 0;
		switch (runlog_lock(conn, cfg.database.schema, &holder, &err)) {
		case LOCK_TAKEN:
			locked = true;
			break;
		case LOCK_BUSY:
			log_error("another retentiond instance is working on "
				  "this database; try again when it is done");
			cmd_teardown(&cfg, conn);
			return EXIT_LOCKED;
		case LOCK_ERROR:
			log_error("replay: %s", err);
			free(err);
			cmd_teardown(&cfg, conn);
			return EXIT_RUNTIME;
		}
		/* the restore_detected action belongs to a run */
		if (!runlog_begin(conn, cfg.database.schema, "replay", cfg.sha256,
				  &run_id, &err)) {
			log_error("replay: could not record the run: %s", err);
			free(err);
			runlog_unlock(conn, cfg.database.schema);
			cmd_teardown(&cfg, conn);
			return EXIT_RUNTIME;
		}
	}

	long long n = restore_replay(conn, &cfg, run_id, dry_run, stdout, &err);
	if (n < 0) {
		log_error("replay: %s", err);
		status = EXIT_RUNTIME;
	} else {
		printf("%s %lld erasure request%s of the ledger that the "
		       "database lacks\n", dry_run ? "would re-file" : "re-filed",
		       n, n == 1 ? "" : "s");
		status = EXIT_OK;
	}
	if (run_id) {
		char *e2 = NULL;
		if (!runlog_finish(conn, cfg.database.schema, run_id,
				   n < 0 ? RUN_FAILED : RUN_OK,
				   n < 0 ? err : NULL, NULL, &e2)) {
			log_warning("replay: could not finish run %lld: %s",
				    run_id, e2);
			free(e2);
		}
	}
	free(err);
	if (locked)
		runlog_unlock(conn, cfg.database.schema);
	cmd_teardown(&cfg, conn);
	return status;
}
