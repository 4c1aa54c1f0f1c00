/*
 * `retentiond grants ROLE`: print what ROLE needs; changes nothing.
 *
 * The rules say most of it. Which tables reference a rule's table only the
 * database knows: it is asked when it can be reached, and the output says
 * so when it cannot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "diag.h"
#include "grants.h"
#include "log.h"
#include "secret.h"
#include "strbuf.h"
#include "subject_graph.h"

/* For each rule: the columns of foreign keys that block deleting rows of
 * its table (those batch.c's load_references turns into NOT EXISTS
 * conditions), and the leaf partitions of its table. */
static bool
load_refs(PGconn *conn, const struct config *cfg, struct grants_refs *refs,
	  char **err)
{
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];
		const char *p[] = { r->schema, r->table };
		PGresult *res = db_query(conn,
			"SELECT DISTINCT n.nspname, c.relname, a.attname"
			" FROM pg_catalog.pg_constraint f"
			" JOIN pg_catalog.pg_class c ON c.oid = f.conrelid"
			" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
			" CROSS JOIN LATERAL pg_catalog.unnest(f.conkey) AS k(attnum)"
			" JOIN pg_catalog.pg_attribute a ON a.attrelid = f.conrelid"
			"   AND a.attnum = k.attnum"
			" WHERE f.contype = 'f' AND f.conparentid = 0"
			"   AND f.conrelid <> f.confrelid"
			"   AND f.confdeltype NOT IN ('c', 'n', 'd')"
			"   AND f.confrelid = (SELECT t.oid FROM pg_catalog.pg_class t"
			"     JOIN pg_catalog.pg_namespace s ON s.oid = t.relnamespace"
			"     WHERE s.nspname = $1 AND t.relname = $2)"
			" ORDER BY 1, 2, 3", 2, p, err);
		if (!res)
			return false;
		int n = PQntuples(res);
		refs->v = xreallocarray(refs->v, refs->n + (size_t)n,
					sizeof(*refs->v));
		for (int k = 0; k < n; k++)
			refs->v[refs->n++] = (struct grants_ref){
				.rule = i,
				.schema = xstrdup(PQgetvalue(res, k, 0)),
				.table = xstrdup(PQgetvalue(res, k, 1)),
				.column = xstrdup(PQgetvalue(res, k, 2)),
			};
		PQclear(res);

		res = db_query(conn,
			"SELECT n.nspname, c.relname FROM pg_catalog.pg_partition_tree("
			"  (SELECT t.oid FROM pg_catalog.pg_class t"
			"   JOIN pg_catalog.pg_namespace s ON s.oid = t.relnamespace"
			"   WHERE s.nspname = $1 AND t.relname = $2)::pg_catalog.regclass) pt"
			" JOIN pg_catalog.pg_class c ON c.oid = pt.relid"
			" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
			" WHERE pt.isleaf AND pt.level > 0 ORDER BY 1, 2", 2, p, err);
		if (!res)
			return false;
		n = PQntuples(res);
		refs->parts = xreallocarray(refs->parts, refs->n_parts + (size_t)n,
					    sizeof(*refs->parts));
		for (int k = 0; k < n; k++)
			refs->parts[refs->n_parts++] = (struct grants_part){
				.rule = i,
				.schema = xstrdup(PQgetvalue(res, k, 0)),
				.table = xstrdup(PQgetvalue(res, k, 1)),
			};
		PQclear(res);
	}
	refs->known = true;
	return true;
}

static void
add_access_table(struct grants_refs *refs, const char *schema,
		 const char *table)
{
	for (size_t i = 0; i < refs->n_access; i++)
		if (strcmp(refs->access_schemas[i], schema) == 0 &&
		    strcmp(refs->access_tables[i], table) == 0)
			return;
	refs->access_schemas = xreallocarray(refs->access_schemas,
					     refs->n_access + 1, sizeof(char *));
	refs->access_tables = xreallocarray(refs->access_tables,
					    refs->n_access + 1, sizeof(char *));
	refs->access_schemas[refs->n_access] = xstrdup(schema);
	refs->access_tables[refs->n_access++] = xstrdup(table);
}

/* The tables access exports read (and erasures count, following the
 * same foreign keys), for every subject kind: the configured ones, or
 * (without "subjects") every rule's subject. */
static bool
load_access(PGconn *conn, const struct config *cfg, struct grants_refs *refs,
	    char **err)
{
	size_t n = cfg->has_subjects ? cfg->n_subjects : cfg->n_rules;

	for (size_t i = 0; i < n; i++) {
		const char *kind = cfg->has_subjects ? cfg->subjects[i].name
						     : cfg->rules[i].subject;
		struct subject_graph g;
		if (!kind)
			continue;
		if (!subject_graph_build(conn, cfg, kind, &g, err))
			return false;
		for (size_t t = 0; t < g.n; t++)
			add_access_table(refs, g.tables[t].schema,
					 g.tables[t].table);
		subject_graph_free(&g);
	}
	return true;
}

static void
ask_database(struct config *cfg, struct grants_refs *refs)
{
	struct diag diag;
	char *err = NULL;

	diag_init(&diag);
	if (!secret_load_all(cfg, &diag)) {
		refs->why = xstrdup("the secrets to connect could not be read");
		diag_fini(&diag);
		return;
	}
	diag_fini(&diag);
	PGconn *conn = db_connect_as(cfg, DB_READS, &err);
	if (!conn) {
		refs->why = xasprintf("could not connect to the database: %s", err);
		free(err);
		return;
	}
	if (!load_refs(conn, cfg, refs, &err) ||
	    !load_access(conn, cfg, refs, &err)) {
		grants_refs_free(refs);
		refs->why = xasprintf("could not read the foreign keys: %s", err);
		free(err);
	}
	db_close(conn);
}

int
cmd_grants(const struct cli *cli)
{
	struct config cfg;
	struct diag diag;

	if (cli->argc != 2 || cli->argv[1][0] == '\0') {
		fprintf(stderr, "Usage: retentiond grants ROLE\n");
		return EXIT_USAGE;
	}
	diag_init(&diag);
	if (!config_load(cli->config_path, &cfg, &diag)) {
		diag_print(&diag);
		diag_fini(&diag);
		return EXIT_USAGE;
	}
	diag_fini(&diag);

	struct grants_refs refs = { 0 };
	ask_database(&cfg, &refs);
	if (!refs.known)
		log_warning("%s; the GRANTs for partitions and for tables that "
			    "reference the rules' tables are left out", refs.why);

	struct strbuf out = STRBUF_INIT;
	grants_render(&cfg, cli->argv[1], &refs, &out);
	fputs(out.s, stdout);
	sb_free(&out);
	grants_refs_free(&refs);
	config_free(&cfg);
	return EXIT_OK;
}
