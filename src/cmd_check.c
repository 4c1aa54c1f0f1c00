/*
 * `retentiond check`: the config on its own, then every rule against the
 * live catalog when the database can be reached.
 */
#include <stdio.h>
#include <stdlib.h>

#include "catalog.h"
#include "commands.h"
#include "config.h"
#include "coverage.h"
#include "db.h"
#include "diag.h"
#include "log.h"
#include "replica.h"
#include "secret.h"
#include "strbuf.h"

/* One warning per table with personal data no rule covers (SPEC §9). */
static void
coverage_warnings(PGconn *conn, const struct config *cfg, struct diag *diag)
{
	struct coverage_result r;
	char *err = NULL;

	if (!coverage_run(conn, cfg, NULL, 0, &r, &err)) {
		diag_warning(diag, cfg->path, 0, "coverage could not be "
			     "checked: %s", err);
		free(err);
		return;
	}
	for (size_t i = 0; i < r.n_tables; i++) {
		const struct coverage_table *t = &r.tables[i];
		struct strbuf b = STRBUF_INIT;
		if (t->covered)
			continue;
		for (size_t k = 0; k < t->n_cols; k++) {
			if (t->cols[k].covered_by)
				continue;
			if (b.len)
				sb_add(&b, ", ");
			coverage_column_text(&t->cols[k], &b);
		}
		struct strbuf name = STRBUF_INIT;
		coverage_clean(&name, t->schema);
		sb_add(&name, ".");
		coverage_clean(&name, t->table);
		diag_warning(diag, cfg->path, 0, "table %s holds personal "
			     "data that no rule covers: %s; add a rule or a "
			     "\"coverage.ignore\" entry", name.s, b.s);
		sb_free(&name);
		sb_free(&b);
	}
	coverage_free(&r);
}
#include "subject_graph.h"

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
			coverage_warnings(conn, &cfg, &diag);
			subject_graph_check(conn, &cfg, &diag);
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
