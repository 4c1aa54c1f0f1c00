#include "count.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_citus.h"

/* Tables below this many rows are counted exactly for the guard; above it
 * the planner's estimate is close enough and costs nothing. */
#define EXACT_COUNT_BELOW 100000

static char *
dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
					  : xstrdup(PQgetvalue(res, row, col));
}

bool
count_oldest(PGconn *conn, const struct plan *p, char **oldest, char **err)
{
	struct plan_args a = { 0 };
	PGresult *res = plan_exec(conn, p, &p->oldest, &a, NULL, err);
	if (!res)
		return false;
	*oldest = dup_or_null(res, 0, 0);
	PQclear(res);
	return true;
}

/* The three counts of STMT's first columns into OUT. */
static void
read_rows(const PGresult *res, struct count_rows *out)
{
	out->eligible = atoll(PQgetvalue(res, 0, 0));
	out->held = atoll(PQgetvalue(res, 0, 1));
	out->blocked = atoll(PQgetvalue(res, 0, 2));
}

bool
count_rule(PGconn *conn, const struct plan *p, const char *cutoff,
	   struct count_rows *out, char **err)
{
	struct plan_args a = { .cutoff = cutoff };

	memset(out, 0, sizeof(*out));
	PGresult *res = plan_exec(conn, p, &p->count, &a, NULL, err);
	if (!res)
		return false;
	read_rows(res, out);
	PQclear(res);
	return true;
}

bool
count_after_run(PGconn *conn, const struct plan *p, const char *cutoff,
		const char *late, struct count_after *out, char **err)
{
	struct plan_args a = { .cutoff = cutoff, .late = late };

	assert(p->after.sql);
	memset(out, 0, sizeof(*out));
	PGresult *res = plan_exec(conn, p, &p->after, &a, NULL, err);
	if (!res)
		return false;
	read_rows(res, &out->rows);
	out->overdue = atoll(PQgetvalue(res, 0, 3));
	out->oldest = dup_or_null(res, 0, 4);
	PQclear(res);
	return true;
}

static bool
count_exactly(PGconn *conn, const struct plan *p, long long *rows, char **err)
{
	char *sql = xasprintf("SELECT count(*) FROM %s", p->qtable);
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	free(sql);
	if (!res)
		return false;
	*rows = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool
count_table_rows(PGconn *conn, const struct plan *p, long long *rows,
		 char **err)
{
	bool known = false;
	if (p->citus) {
		plan_citus_table_rows(conn, p, rows, &known);
		if (known && *rows >= EXACT_COUNT_BELOW)
			return true;
		return count_exactly(conn, p, rows, err);
	}
	/* reltuples: -1 when never analysed; partitioned parents have none.
	 * pg_partition_tree() is empty for a table that is not partitioned,
	 * so the table itself is its one leaf then. */
	const char *par[] = { p->oid };
	PGresult *res = db_query(conn,
		"SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::bigint,"
		" coalesce(bool_or(c.reltuples < 0), true)"
		" FROM pg_class c WHERE c.oid IN ("
		"  SELECT pt.relid FROM pg_partition_tree($1::oid::regclass) pt"
		"  WHERE pt.isleaf"
		"  UNION ALL SELECT $1::oid WHERE NOT EXISTS ("
		"   SELECT 1 FROM pg_partition_tree($1::oid::regclass)))", 1, par,
		err);
	if (!res)
		return false;
	*rows = atoll(PQgetvalue(res, 0, 0));
	bool unknown = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (unknown || *rows < EXACT_COUNT_BELOW)
		return count_exactly(conn, p, rows, err);
	return true;
}

/* The one number STMT returns. */
static bool
count_one(PGconn *conn, const struct plan *p, const struct plan_stmt *st,
	  const struct plan_args *a, long long *n, char **err)
{
	PGresult *res = plan_exec(conn, p, st, a, NULL, err);
	if (!res)
		return false;
	*n = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool
count_due(PGconn *conn, const struct plan *p, const char *cutoff,
	  long long *due, char **err)
{
	struct plan_args a = { .cutoff = cutoff };
	return count_one(conn, p, &p->count_due, &a, due, err);
}

bool
count_upto(PGconn *conn, const struct plan *p, const char *cutoff,
	   long long at_most, long long *n, char **err)
{
	char lim[32];
	struct plan_args a = { .cutoff = cutoff, .limit = lim };

	snprintf(lim, sizeof(lim), "%lld", at_most > 0 ? at_most : 1);
	return count_one(conn, p, &p->count_upto, &a, n, err);
}
