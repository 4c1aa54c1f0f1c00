/*
 * `retentiond check`: the config on its own, then every rule against the
 * live catalog when the database can be reached.
 */
#include <stdio.h>
#include <stdlib.h>

#include "catalog.h"
#include "commands.h"
#include "config.h"
#include "db.h"
#include "diag.h"
#include "log.h"
#include "replica.h"
#include "secret.h"

int
cmd_check(const struct cli *cli)
{
	struct config cfg;
	struct diag diag;
	int status = EXIT_OK;

	if (cli->argc > 1) {
		fprintf(stderr, "retentiond: check takes no arguments\n");
		return EXIT_USAGE;
	}
	diag_init(&diag);
	if (!config_load(cli->config_path, &cfg, &diag)) {
		diag_print(&diag);
		fprintf(stderr, "%s: %zu error%s; configuration not valid\n",
			cli->config_path, diag.n_errors,
			diag.n_errors == 1 ? "" : "s");
		diag_fini(&diag);
		return EXIT_USAGE;
	}
	if (!secret_load_all(&cfg, &diag))
		status = EXIT_USAGE;

	if (status == EXIT_OK) {
		char *err = NULL;
		PGconn *conn = db_connect_as(&cfg, DB_READS, &err);
		if (conn) {
			catalog_check_rules(conn, &cfg, &diag);
			replica_check_role(conn, &cfg, &diag);
			db_close(conn);
		} else {
			diag_warning(&diag, cfg.database.conninfo_file,
				     cfg.database.conninfo_line,
				     "database not reachable, so the live "
				     "catalog was not checked: %s", err);
			free(err);
		}
	}

	diag_print(&diag);
	if (diag.n_errors > 0) {
		fprintf(stderr, "%s: %zu error%s; configuration not valid\n",
			cfg.path, diag.n_errors, diag.n_errors == 1 ? "" : "s");
		status = EXIT_USAGE;
	} else {
		printf("configuration OK\n");
	}
	diag_fini(&diag);
	config_free(&cfg);
	return status;
}
