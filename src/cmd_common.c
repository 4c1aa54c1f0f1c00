/*
 * The start and end every database command shares.
 */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "diag.h"
#include "hold.h"
#include "log.h"
#include "secret.h"

int
cmd_request_args(const char *command, const char *target, const char *reason,
		 char **subject, char **subject_id)
{
	const char *perr = NULL;

	if (!hold_parse_target(target, subject, subject_id, &perr)) {
		fprintf(stderr, "retentiond: %s: \"%s\": %s\n", command, target,
			perr);
		return EXIT_USAGE;
	}
	if (reason && str_has_ctl(reason)) {
		fprintf(stderr, "retentiond: %s: --reason must be one line "
			"without control characters\n", command);
		free(*subject);
		free(*subject_id);
		*subject = *subject_id = NULL;
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int
cmd_load_config(const struct cli *cli, struct config *cfg)
{
	struct diag diag;

	diag_init(&diag);
	if (!config_load(cli->config_path, cfg, &diag)) {
		diag_print(&diag);
		fprintf(stderr, "%s: %zu error%s; configuration not valid\n",
			cli->config_path, diag.n_errors,
			diag.n_errors == 1 ? "" : "s");
		diag_fini(&diag);
		return EXIT_USAGE;
	}
	if (!secret_load_all(cfg, &diag)) {
		diag_print(&diag);
		diag_fini(&diag);
		config_free(cfg);
		return EXIT_USAGE;
	}
	/* warnings from loading still deserve to be seen */
	diag_print(&diag);
	diag_fini(&diag);
	return EXIT_OK;
}

static int
setup(const struct cli *cli, struct config *cfg, PGconn **conn,
      enum db_role role)
{
	char *err = NULL;
	int status = cmd_load_config(cli, cfg);

	if (status != EXIT_OK)
		return status;
	*conn = db_connect_as(cfg, role, &err);
	if (!*conn) {
		log_error("could not connect to the database: %s", err);
		free(err);
		config_free(cfg);
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

int
cmd_setup(const struct cli *cli, struct config *cfg, PGconn **conn)
{
	return setup(cli, cfg, conn, DB_WRITES);
}

int
cmd_setup_read(const struct cli *cli, struct config *cfg, PGconn **conn)
{
	return setup(cli, cfg, conn, DB_READS);
}

void
cmd_teardown(struct config *cfg, PGconn *conn)
{
	db_close(conn);
	config_free(cfg);
}
