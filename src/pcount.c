#include "pcount.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

void
pcount_init(struct pcount *pc, const struct config *cfg)
{
	second_init(&pc->second, cfg,
		    "to count big partitions in two halves");
}

void
pcount_close(struct pcount *pc)
{
	second_close(&pc->second);
}

/* One statement returning one bigint. */
static bool
query_count(PGconn *conn, const char *sql, int nparams,
	    const char *const *params, long long *n, char **err)
{
	PGresult *res = db_query(conn, sql, nparams, params, err);
	if (!res)
		return false;
	*n = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/*
 * The column to split on and the value to split at: the first column of
 * the partition's smallest plain btree index whose statistics have a
 * histogram, and the histogram's middle bound. A built-in type only, so
 * that "<" resolves (search_path is pg_catalog) to the operator that
 * index orders by and an index-only scan serves each half. False with
 * *err on a database error; true with *column NULL when there is none.
 */
static bool
split_point(PGconn *conn, const struct pcount_target *t, char **column,
	    char **value, char **err)
{
	/* pg_stats by name, the way its indexes serve */
	const char *p[] = { t->oid, t->schema, t->table };
	PGresult *res = db_query(conn,
		"SELECT a.attname, s.b[array_length(s.b, 1) / 2 + 1]"
		" FROM pg_catalog.pg_index i"
		" JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
		" JOIN pg_catalog.pg_am am ON am.oid = ic.relam"
		" JOIN pg_catalog.pg_attribute a"
		"   ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
		" JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
		" JOIN (SELECT attname, histogram_bounds::text::text[] AS b"
		"   FROM pg_catalog.pg_stats WHERE schemaname = $2"
		"   AND tablename = $3 AND NOT inherited) s ON s.attname = a.attname"
		" WHERE i.indrelid = $1::oid AND am.amname = 'btree'"
		"   AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL"
		"   AND t.typnamespace = 'pg_catalog'::regnamespace"
		"   AND array_length(s.b, 1) > 0"
		" ORDER BY ic.relpages, ic.oid LIMIT 1", 3, p, err);
	if (!res)
		return false;
	*column = *value = NULL;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
		*column = xstrdup(PQgetvalue(res, 0, 0));
		*value = xstrdup(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return true;
}

void
pcount_prepare(struct pcount *pc)
{
	second_prepare(&pc->second);
}

/* Wait for the helper's result; false (with *err) when its count failed.
 * Leaves the connection idle either way. */
static bool
helper_result(PGconn *h, long long *n, char **err)
{
	PGresult *res;
	bool ok = false;

	while ((res = PQgetResult(h)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
			*n = atoll(PQgetvalue(res, 0, 0));
			ok = true;
		} else if (!*err) {
			*err = db_error(h, res);
		}
		PQclear(res);
	}
	if (!ok && !*err)
		*err = db_error(h, NULL);
	return ok;
}

static bool
count_split(struct pcount *pc, PGconn *conn, const char *qpart,
	    const char *column, const char *value, long long *rows, char **err)
{
	char *qcol = db_ident(conn, column);
	const char *p[] = { value };
	char *below = xasprintf("SELECT count(*) FROM %s WHERE %s < $1",
				qpart, qcol);
	char *rest = xasprintf("SELECT (SELECT count(*) FROM %s WHERE %s >= $1)"
			       " + (SELECT count(*) FROM %s WHERE %s IS NULL)",
			       qpart, qcol, qpart, qcol);
	PGconn *h = second_get(&pc->second);
	bool sent = h && PQsendQueryParams(h, below, 1, NULL, p, NULL, NULL, 0);
	long long n_below = 0, n_rest = 0;
	bool ok = query_count(conn, rest, 1, p, &n_rest, err);

	if (!ok) {
		if (sent)
			second_cancel(h);
	} else {
		char *herr = NULL;
		if (sent && helper_result(h, &n_below, &herr)) {
			log_debug("partition %s: %lld rows below the median of "
				  "%s counted over a second connection, %lld on "
				  "the first", qpart, n_below, column, n_rest);
		} else {
			if (h) {
				if (!herr)
					herr = db_error(h, NULL);
				second_give_up(&pc->second, herr);
				herr = NULL;
			}
			ok = query_count(conn, below, 1, p, &n_below, err);
		}
		free(herr);
	}
	free(below);
	free(rest);
	free(qcol);
	if (ok)
		*rows = n_below + n_rest;
	return ok;
}

bool
pcount_rows(struct pcount *pc, PGconn *conn, const struct pcount_target *t,
	    long long *rows, char **err)
{
	const char *qpart = t->qpart;
	char *column = NULL, *value = NULL;

	if (t->reltuples >= PCOUNT_SPLIT_ROWS && !pc->second.failed &&
	    !split_point(conn, t, &column, &value, err))
		return false;
	bool ok;
	if (column) {
		ok = count_split(pc, conn, qpart, column, value, rows, err);
	} else {
		char *sql = xasprintf("SELECT count(*) FROM %s", qpart);
		ok = query_count(conn, sql, 0, NULL, rows, err);
		free(sql);
	}
	free(column);
	free(value);
	return ok;
}
