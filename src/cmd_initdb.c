/*
 * `retentiond init-db`: create or upgrade retentiond's own schema.
 */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "schema.h"

int
cmd_init_db(const struct cli *cli)
{
	struct config cfg;
	PGconn *conn;
	char *err = NULL, *applied = NULL;
	int status, version;

	if (cli->argc > 1) {
		fprintf(stderr, "retentiond: init-db takes no arguments\n");
		return EXIT_USAGE;
	}
	status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;

	const char *schema = cfg.database.schema;
	if (schema_init(conn, schema, &applied, &err) < 0) {
		log_error("init-db: %s", err);
		if (applied)
			log_error("init-db: applied before the error: %s",
				  applied);
		status = EXIT_RUNTIME;
	} else if (schema_version(conn, schema, &version, &err) < 0) {
		log_error("init-db: %s", err);
		status = EXIT_RUNTIME;
	} else if (applied) {
		printf("schema \"%s\" is at version %d (applied: %s)\n",
		       schema, version, applied);
	} else {
		printf("schema \"%s\" is up to date (version %d)\n", schema,
		       version);
	}
	free(err);
	free(applied);
	cmd_teardown(&cfg, conn);
	return status;
}
