#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* Transaction-scoped, so it goes with each file's COMMIT or ROLLBACK; keyed
 * on the schema and distinct from the instance lock (runlog.c). */
#define INIT_LOCK_SQL \
	"SELECT pg_catalog.pg_advisory_xact_lock(" \
	"pg_catalog.hashtextextended('retentiond-init-db/' || $1, 0))"

int
schema_latest_version(void)
{
	return n_sql_files > 0 ? sql_files[n_sql_files - 1].version : 0;
}

static bool
schema_exists(PGconn *conn, const char *schema, bool *exists, char **err)
{
	const char *p[] = { schema };
	PGresult *res = db_query(conn,
		"SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
		1, p, err);
	if (!res)
		return false;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return true;
}

int
schema_version(PGconn *conn, const char *schema, int *version, char **err)
{
	const char *p[] = { schema };
	char *e = NULL;
	PGresult *res = db_query(conn,
		"SELECT 1 FROM pg_catalog.pg_class c"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = $1 AND c.relname = 'schema_version'"
		" AND c.relkind = 'r'", 1, p, &e);
	if (!res) {
		*err = xasprintf("could not read the schema version: %s", e);
		free(e);
		return -1;
	}
	bool found = PQntuples(res) > 0;
	PQclear(res);
	if (!found) {
		*version = 0;
		return 0;
	}

	char *table = db_qualified(conn, schema, "schema_version");
	if (!table) {
		*err = db_error(conn, NULL);
		return -1;
	}
	char *sql = xasprintf("SELECT coalesce(max(version), 0) FROM %s", table);
	res = db_query(conn, sql, 0, NULL, &e);
	free(sql);
	free(table);
	if (!res) {
		*err = xasprintf("could not read the schema version: %s", e);
		free(e);
		return -1;
	}
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
schema_require(PGconn *conn, const char *schema, char **err)
{
	int version, latest = schema_latest_version();

	if (schema_version(conn, schema, &version, err) < 0)
		return -1;
	if (version == 0) {
		*err = xasprintf("schema \"%s\" is not initialised: run "
				 "\"retentiond init-db\" first", schema);
		return -1;
	}
	if (version < latest) {
		*err = xasprintf("schema \"%s\": schema version %d is older "
				 "than this retentiond's %d; run `retentiond "
				 "init-db`", schema, version, latest);
		return -1;
	}
	if (version > latest) {
		*err = xasprintf("schema \"%s\" is at version %d, newer than "
				 "this retentiond knows (%d): upgrade retentiond",
				 schema, version, latest);
		return -1;
	}
	return 0;
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE &&
	    !db_exec(conn, "ROLLBACK", &e)) {
		log_debug("rollback: %s", e);
		free(e);
	}
}

/* Line (1-based) of character POS (1-based, as PostgreSQL reports it) in
 * TEXT. The files are ASCII, so characters are bytes. */
static int
line_at(const char *text, long pos)
{
	int line = 1;
	for (long i = 0; i < pos - 1 && text[i]; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

/* Run one file's statements, then record its version; inside the caller's
 * transaction. */
static bool
apply_file(PGconn *conn, const char *qschema, const struct sql_file *f,
	   char **err)
{
	/* The simple query protocol: a file holds many statements. */
	PGresult *res = PQexec(conn, f->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = db_error(conn, res);
		const char *pos = res ? PQresultErrorField(res,
				PG_DIAG_STATEMENT_POSITION) : NULL;
		if (pos)
			*err = xasprintf("%s:%d: %s", f->name,
					 line_at(f->sql, atol(pos)), e);
		else
			*err = xasprintf("%s: %s", f->name, e);
		free(e);
		PQclear(res);
		return false;
	}
	PQclear(res);
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		*err = xasprintf("%s: the file ended the transaction it runs in",
				 f->name);
		return false;
	}

	char version[16];
	snprintf(version, sizeof(version), "%d", f->version);
	const char *p[] = { version, f->name };
	char *sql = xasprintf("INSERT INTO %s.schema_version (version, description)"
			      " VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
			      qschema);
	char *e = NULL;
	res = db_query(conn, sql, 2, p, &e);
	free(sql);
	if (!res) {
		*err = xasprintf("%s: could not record the version: %s",
				 f->name, e);
		free(e);
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * Wait for another init-db as long as statement_timeout allows, but keep
 * lock_timeout for the DDL, so a busy table makes us give up rather than
 * queue everyone else behind our lock request.
 */
static bool
take_init_lock(PGconn *conn, const char *schema, char **e)
{
	const char *p[] = { schema };
	PGresult *res = db_query(conn,
		"SELECT pg_catalog.current_setting('lock_timeout'),"
		" pg_catalog.set_config('lock_timeout', '0', true)", 0, NULL, e);
	if (!res)
		return false;
	char *lock_timeout = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	res = db_query(conn, INIT_LOCK_SQL, 1, p, e);
	if (res) {
		const char *lp[] = { lock_timeout };
		PQclear(res);
		res = db_query(conn, "SELECT pg_catalog.set_config("
			       "'lock_timeout', $1, true)", 1, lp, e);
	}
	free(lock_timeout);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

/* One step: lock, create the schema if needed, apply the next file if any.
 * Returns 1 when a file was applied (*done says which), 0 when up to date,
 * -1 on error (the transaction is rolled back). */
static int
init_step(PGconn *conn, const char *schema, const char *qschema,
	  const struct sql_file **done, char **err)
{
	const struct sql_file *next = NULL;
	char *e = NULL;
	bool exists;
	int version, latest = schema_latest_version();

	if (!db_exec(conn, "BEGIN", &e))
		goto fail;
	/* "already exists, skipping" and the like are noise here */
	if (!db_exec(conn, "SET LOCAL client_min_messages = warning", &e))
		goto fail;
	/* On a Citus coordinator retentiond's schema is the coordinator's
	 * own: none of it goes to the workers (Citus would warn about every
	 * function that uses one of its tables, which stay local). */
	if (!db_exec(conn, "SELECT pg_catalog.set_config("
		     "'citus.enable_ddl_propagation', 'off', true)"
		     " FROM pg_catalog.pg_extension WHERE extname = 'citus'", &e))
		goto fail;
	if (!take_init_lock(conn, schema, &e))
		goto fail;

	if (!schema_exists(conn, schema, &exists, &e))
		goto fail;
	if (!exists) {
		char *sql = xasprintf("CREATE SCHEMA %s", qschema);
		bool ok = db_exec(conn, sql, &e);
		free(sql);
		if (!ok) {
			*err = xasprintf("could not create schema \"%s\": %s",
					 schema, e);
			free(e);
			rollback(conn);
			return -1;
		}
	}

	if (schema_version(conn, schema, &version, err) < 0) {
		rollback(conn);
		return -1;
	}
	if (version > latest) {
		*err = xasprintf("schema \"%s\" is at version %d, newer than "
				 "this retentiond knows (%d): upgrade retentiond",
				 schema, version, latest);
		rollback(conn);
		return -1;
	}

	for (size_t i = 0; i < n_sql_files && !next; i++)
		if (sql_files[i].version > version)
			next = &sql_files[i];
	if (next) {
		char *sql = xasprintf("SET LOCAL search_path = %s, pg_catalog, pg_temp",
				      qschema);
		bool ok = db_exec(conn, sql, &e);
		free(sql);
		if (!ok)
			goto fail;
		if (!apply_file(conn, qschema, next, err)) {
			rollback(conn);
			return -1;
		}
	}
	if (!db_exec(conn, "COMMIT", &e))
		goto fail;
	if (!exists)
		log_info("created schema \"%s\"", schema);
	if (next)
		log_debug("schema \"%s\": applied %s (version %d)", schema,
			  next->name, next->version);
	*done = next;
	return next ? 1 : 0;

fail:
	*err = e;
	rollback(conn);
	return -1;
}

int
schema_init(PGconn *conn, const char *schema, char **applied, char **err)
{
	const struct sql_file *done;
	char *names = NULL;

	if (applied)
		*applied = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		*err = xstrdup("schema_init called inside a transaction");
		return -1;
	}
	char *qschema = db_ident(conn, schema);
	if (!qschema) {
		*err = db_error(conn, NULL);
		return -1;
	}
	int n = 0, r;
	while ((r = init_step(conn, schema, qschema, &done, err)) == 1) {
		char *more = xasprintf("%s%s%s", names ? names : "",
				       names ? ", " : "", done->name);
		free(names);
		names = more;
		n++;
	}
	free(qschema);
	if (applied)
		*applied = names;
	else
		free(names);
	return r < 0 ? -1 : n;
}
