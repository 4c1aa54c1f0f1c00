/*
 * `retentiond init-db`: create or upgrade retentiond's own schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "schema.h"

/* "001_init.sql, 002_x.sql": the last N files up to VERSION, which is what
 * schema_init just applied (it applies them in order). */
static char *
applied_names(int version, int n)
{
	size_t last = 0;
	while (last < n_sql_files && sql_files[last].version != version)
		last++;
	if (last == n_sql_files || (size_t)n > last + 1)
		return xasprintf("%d file%s", n, n == 1 ? "" : "s");

	char *out = xstrdup("");
	for (size_t i = last + 1 - (size_t)n; i <= last; i++) {
		char *next = xasprintf("%s%s%s", out, *out ? ", " : "",
				       sql_files[i].name);
		free(out);
		out = next;
	}
	return out;
}

int
cmd_init_db(const struct cli *cli)
{
	struct config cfg;
	PGconn *conn;
	char *err = NULL;
	int status, version;

	if (cli->argc > 1) {
		fprintf(stderr, "retentiond: init-db takes no arguments\n");
		return EXIT_USAGE;
	}
	status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;

	const char *schema = cfg.database.schema;
	int applied = schema_init(conn, schema, &err);
	if (applied < 0) {
		log_error("init-db: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	if (schema_version(conn, schema, &version, &err) < 0) {
		log_error("init-db: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}

	if (applied == 0) {
		printf("schema \"%s\" is up to date (version %d)\n", schema,
		       version);
	} else {
		char *names = applied_names(version, applied);
		printf("schema \"%s\" is at version %d (applied: %s)\n",
		       schema, version, names);
		free(names);
	}
	cmd_teardown(&cfg, conn);
	return EXIT_OK;
}
