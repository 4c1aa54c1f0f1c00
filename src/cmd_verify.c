/*
 * `retentiond verify`: recompute the audit trail's hash chain.
 */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "commands.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "schema.h"

int
cmd_verify(const struct cli *cli)
{
	struct config cfg;
	struct audit_verify_result r;
	PGconn *conn;
	char *err = NULL;
	int status;

	if (cli->argc > 1) {
		fprintf(stderr, "retentiond: verify takes no arguments\n");
		return EXIT_USAGE;
	}
	status = cmd_setup_read(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;

	if (schema_require(conn, cfg.database.schema, &err) < 0) {
		log_error("verify: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	switch (audit_verify(conn, cfg.database.schema, &r, &err)) {
	case 0:
		printf("audit chain intact: %lld action%s, head %s\n", r.n_rows,
		       r.n_rows == 1 ? "" : "s", r.last_hash);
		status = EXIT_OK;
		break;
	case 1:
		if (r.first_bad_id != 0)
			printf("audit chain broken at action %lld: %s\n",
			       r.first_bad_id, r.reason);
		else
			printf("audit chain broken: %s\n", r.reason);
		log_error("the audit trail of schema \"%s\" has been tampered "
			  "with; %lld action%s before the break are intact",
			  cfg.database.schema, r.n_rows,
			  r.n_rows == 1 ? "" : "s");
		status = EXIT_RUNTIME;
		break;
	default:
		log_error("verify: %s", err);
		free(err);
		status = EXIT_RUNTIME;
		break;
	}
	cmd_teardown(&cfg, conn);
	return status;
}
