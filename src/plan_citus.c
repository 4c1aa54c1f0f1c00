/* plan_citus: statement forms for Citus tables (plan_citus.h). */
#include "plan_citus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hold.h"
#include "log.h"
#include "strbuf.h"

#define OID_TEXT_ARRAY 1009

bool
plan_citus_kind(PGconn *conn, const char *oid, const char **kind, char **err)
{
	*kind = NULL;
	PGresult *res = db_query(conn,
		"SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus'",
		0, NULL, err);
	if (!res)
		return false;
	bool citus = PQntuples(res) > 0;
	PQclear(res);
	if (!citus)
		return true;
	/* partmethod 'h': hash-distributed; 'n' with replication model 't'
	 * (two-phase): a reference table; other 'n': a citus-local table */
	const char *params[] = { oid };
	res = db_query(conn,
		"SELECT CASE WHEN p.partmethod = 'h' THEN 'distributed'"
		" WHEN p.repmodel = 't' THEN 'reference' ELSE 'citus-local' END"
		" FROM pg_catalog.pg_dist_partition p"
		" WHERE p.logicalrelid = $1::oid::regclass", 1, params, err);
	if (!res)
		return false;
	if (PQntuples(res) == 0)
		*kind = "local";
	else if (strcmp(PQgetvalue(res, 0, 0), "distributed") == 0)
		*kind = "distributed";
	else if (strcmp(PQgetvalue(res, 0, 0), "reference") == 0)
		*kind = "reference";
	else
		*kind = "citus-local";
	PQclear(res);
	return true;
}

bool
plan_citus_primary_key(PGconn *conn, const char *oid, char **out, char **err)
{
	const char *params[] = { oid };
	PGresult *res = db_query(conn,
		"SELECT a.attname FROM pg_catalog.pg_index i"
		" CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid"
		"  AND a.attnum = k.attnum"
		" WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.n",
		1, params, err);
	if (!res)
		return false;
	struct strbuf b = STRBUF_INIT;
	bool ok = true;
	for (int i = 0; i < PQntuples(res) && ok; i++) {
		char *ref = plan_column_ref(conn, PQgetvalue(res, i, 0));
		if (ref)
			sb_printf(&b, "%s%s", b.len ? ", " : "", ref);
		else
			ok = false;
		free(ref);
	}
	PQclear(res);
	if (!ok) {
		*err = xstrdup("a primary key column's name is not valid in the "
			       "database encoding");
		sb_free(&b);
		return false;
	}
	*out = b.len ? sb_take(&b) : NULL;
	sb_free(&b);
	return true;
}

bool
plan_citus_detect(PGconn *conn, struct plan *p, char **err)
{
	const char *kind;

	if (!plan_citus_kind(conn, p->oid, &kind, err))
		return false;
	if (!kind || strcmp(kind, "local") == 0)
		return true;	/* a single server's SQL works */
	p->citus = xcalloc(1, sizeof(*p->citus));
	p->citus->kind = kind;
	if (!plan_citus_primary_key(conn, p->oid, &p->citus->pk, err))
		return false;
	if (!p->citus->pk) {
		/* fail closed: without a key there is no way to pick rows
		 * one batch at a time (ctid is not unique across shards) */
		*err = xasprintf("the %s table has no primary key, which "
				 "retentiond needs to pick rows on Citus", kind);
		return false;
	}
	return true;
}

bool
plan_citus_not_held(PGconn *conn, const struct config *cfg, struct plan *p,
		    const char *ref, char **err)
{
	/* the held-ids query has one parameter: the subject, as $1 */
	p->citus->held_sql = hold_sql_held_ids(conn, cfg->database.schema,
					       "$1", err);
	if (!p->citus->held_sql)
		return false;
	/* <> ALL: a NULL array would select nothing, never everything */
	p->not_held = xasprintf("(%s IS NULL OR (%s)::text <> ALL ($%d::text[]))",
				ref, ref,
				plan_frag_param(p, PA_HELD, OID_TEXT_ARRAY));
	return true;
}

bool
plan_citus_refresh_held(PGconn *conn, const struct plan *p,
			enum db_errclass *class, char **err)
{
	if (!p->citus || !p->citus->held_sql)
		return true;
	const char *params[] = { p->rule->subject };
	Oid types[] = { OID_TEXT };
	PGresult *res = db_exec_params(conn, p->citus->held_sql, 1, types,
				       params, class, err);
	if (!res)
		return false;
	free(p->citus->held);
	p->citus->held = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool
plan_citus_subject_cond(struct plan *p, const struct catalog_table *t,
			const char *ref, struct strbuf *cond, char **err)
{
	const struct catalog_column *c = catalog_column(t, p->rule->subject_column);
	if (!c) {
		*err = xasprintf("subject column \"%s\" does not exist",
				 p->rule->subject_column);
		return false;
	}
	/* the column's own type: Citus routes an equality on the
	 * distribution column with a constant to the one shard holding it */
	sb_printf(cond, "%s = $%d::text::%s", ref,
		  plan_frag_param(p, PA_SUBJECT_ID, OID_TEXT),
		  c->type);
	return true;
}

char *
plan_citus_deid_expr(PGconn *conn, enum deid_method method, const char *c,
		     const struct catalog_column *col, int ipad, int opad,
		     char **err)
{
	switch (method) {
	case METHOD_HASH: {
		/* convert_to() is STABLE; in a UTF8 database decode(...,
		 * 'escape') of the text with its backslashes doubled gives
		 * the same bytes, and is IMMUTABLE */
		const char *enc = PQparameterStatus(conn, "server_encoding");
		if (!enc || strcmp(enc, "UTF8") != 0) {
			*err = xstrdup("method \"hash\" on a Citus table needs a "
				       "UTF8 database");
			return NULL;
		}
		return xasprintf("encode(sha256($%d::bytea || sha256($%d::bytea"
				 " || decode(replace(%s::text, '\\', '\\\\'),"
				 " 'escape'))), 'hex')", opad, ipad, c);
	}
	case METHOD_TRUNCATE_IP:
		if (strcmp(col->base, "inet") == 0 || strcmp(col->base, "cidr") == 0)
			/* CASE x WHEN: Citus rewrites the family test wrongly */
			return xasprintf(
				"CASE WHEN family(%s) = 4"
				" THEN network(set_masklen(%s, least(masklen(%s), 24)))"
				" ELSE network(set_masklen(%s, least(masklen(%s), 48)))"
				" END", c, c, c, c, c);
		*err = xstrdup(PLAN_CITUS_NO_TEXT_IP);
		return NULL;
	case METHOD_YEAR:
		if (strcmp(col->base, "date") == 0)
			return xasprintf("date_trunc('year', %s::timestamp)::date", c);
		if (strcmp(col->base, "timestamptz") == 0)
			/* the three-argument date_trunc is STABLE */
			return xasprintf("(date_trunc('year', %s AT TIME ZONE 'UTC')"
					 " AT TIME ZONE 'UTC')", c);
		return xasprintf("date_trunc('year', %s)", c);
	case METHOD_NULL:
	case METHOD_REDACT:
	case METHOD_MASK_EMAIL:
		break;
	}
	return deid_expr(method, c, col, "", ipad, opad);
}

/*
 * Pick up to LIMIT rows by primary key, change them with every condition
 * re-checked, and return how many (twice: picked and changed, as the
 * single-server batch returns them; no age). No FOR UPDATE: a multi-shard
 * query cannot lock; a row someone else holds is
 * waited for, up to lock_timeout, and the driver retries or stops.
 */
void
plan_citus_batch_statement(struct plan *p, const char *target_q,
			   struct plan_stmt *st)
{
	struct strbuf b = STRBUF_INIT;
	char *cond = xasprintf("%s AND %s AND %s", p->eligible, p->not_held,
			       p->unreferenced);
	bool walk = p->mode == PLAN_EXPIRY;

	memset(st, 0, sizeof(*st));
	st->nparams = p->nfrag;
	memcpy(st->types, p->frag_types, sizeof(Oid) * (size_t)p->nfrag);
	memcpy(st->args, p->frag_args, sizeof(st->args[0]) * (size_t)p->nfrag);
	int lim = ++st->nparams;
	st->args[lim - 1] = PA_LIMIT;
	st->types[lim - 1] = OID_INT8;
	int from = 0;
	if (walk) {
		from = ++st->nparams;
		st->args[from - 1] = PA_FROM;
		st->types[from - 1] = OID_TEXT;
	}
	sb_printf(&b, "WITH changed AS (");
	if (p->action == ACTION_DELETE)
		sb_printf(&b, "DELETE FROM %s t", target_q);
	else
		sb_printf(&b, "UPDATE %s t SET %s", target_q, p->set);
	sb_printf(&b, " WHERE (%s) IN (SELECT %s FROM %s t WHERE %s",
		  p->citus->pk, p->citus->pk, target_q, cond);
	if (walk)
		sb_printf(&b, " AND %s >= $%d::%s", p->age_q, from, p->age_type);
	sb_printf(&b, " LIMIT $%d) AND %s RETURNING 1)"
		  " SELECT count(*), count(*), NULL::text FROM changed",
		  lim, cond);
	free(cond);
	st->sql = sb_take(&b);
}

/* The count after the run (table_statements' "after"), without the
 * subquery in the target list that Citus cannot push down. */
void
plan_citus_after_statement(struct plan *p, struct plan_stmt *st)
{
	const char *h = p->not_held, *f = p->unreferenced, *e = p->eligible;
	bool date = strcmp(p->age_type, "date") == 0;
	int late = 0;

	/* its parameters: the fragments', then the compliance cutoff */
	for (int i = 0; i < st->nparams; i++)
		if (st->args[i] == PA_LATE)
			late = i + 1;
	free(st->sql);
	st->sql = xasprintf(
		"WITH due AS (SELECT count(*) FILTER (WHERE %s AND %s AND %s) a,"
		" count(*) FILTER (WHERE %s AND NOT (%s)) b,"
		" count(*) FILTER (WHERE %s AND %s AND NOT (%s)) c,"
		" count(*) FILTER (WHERE %s AND %s < ($%d::timestamptz)%s) d,"
		" min(%s) m FROM %s t WHERE %s),"
		" kept AS (SELECT min(%s) m FROM %s t WHERE NOT (%s))"
		" SELECT due.a, due.b, due.c, due.d, least(due.m, kept.m)::text"
		" FROM due, kept",
		e, h, f, e, h, e, h, f, e, p->age_q, late, date ? "::date" : "",
		p->age_q, p->qtable, p->expired, p->age_q, p->qtable, p->expired);
}

/*
 * The shards' own statistics, summed: the coordinator's pg_class knows
 * nothing of a distributed table's rows (its shell is empty), and a
 * count(*) reads every shard. One query to each worker reads the
 * reltuples of the table's shards (of every partition's shards, on a
 * partitioned table); a shard placed on two workers counts once.
 */
static const char table_rows_sql[] =
	"WITH leaves AS ("
	" SELECT pt.relid FROM pg_catalog.pg_partition_tree($1::oid::regclass) pt"
	"  WHERE pt.isleaf"
	" UNION ALL SELECT $1::oid::regclass WHERE NOT EXISTS ("
	"  SELECT 1 FROM pg_catalog.pg_partition_tree($1::oid::regclass))),"
	" shards AS (SELECT pg_catalog.shard_name(s.logicalrelid, s.shardid) n"
	"  FROM pg_catalog.pg_dist_shard s"
	"  WHERE s.logicalrelid IN (SELECT relid FROM leaves)),"
	" w AS (SELECT w.success, w.result"
	"  FROM pg_catalog.run_command_on_workers(pg_catalog.format("
	"   'SELECT coalesce(json_object_agg(c.oid::regclass::text,"
	"    c.reltuples), ''{}'') FROM pg_catalog.pg_class c"
	"    WHERE c.oid = ANY (SELECT pg_catalog.to_regclass(n)"
	"    FROM unnest(%L::text[]) n)',"
	"   (SELECT array_agg(n) FROM shards))) w),"
	" per_shard AS (SELECT j.key, max(j.value::float8) t"
	"  FROM w, json_each_text(CASE WHEN w.success THEN w.result::json"
	"   ELSE '{}' END) j GROUP BY j.key)"
	" SELECT coalesce(sum(t) FILTER (WHERE t > 0), 0)::bigint,"
	"  count(*) = (SELECT count(*) FROM shards)"
	"  AND (SELECT count(*) FROM shards) > 0"
	"  AND coalesce((SELECT bool_and(success) FROM w), false)"
	"  AND NOT coalesce(bool_or(t < 0), false)"
	" FROM per_shard";

void
plan_citus_table_rows(PGconn *conn, const struct plan *p, long long *rows,
		      bool *known)
{
	*rows = 0;
	*known = false;
	if (!p->citus || strcmp(p->citus->kind, "distributed") != 0)
		return;
	char *err = NULL;
	const char *params[] = { p->oid };
	PGresult *res = db_query(conn, table_rows_sql, 1, params, &err);
	if (!res) {
		log_debug("rule \"%s\": the shards' statistics could not be "
			  "read, so the table is counted: %s", p->rule->name,
			  err);
		free(err);
		return;
	}
	*rows = atoll(PQgetvalue(res, 0, 0));
	*known = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
}

/*
 * Citus's executor opens up to citus.max_adaptive_executor_pool_size
 * (16) connections to each worker for a multi-shard statement, and keeps
 * citus.max_cached_conns_per_worker (1) of them when the transaction
 * ends: each batch, a transaction of its own, would open and close the
 * others again, which cost more than the batch's rows (bench/README.md,
 * "Citus"). So, for its batches, unless an admin chose the pool size
 * (for the server, database or role), the session uses a pool of
 * PLAN_CITUS_POOL per worker, as befits a background job beside the
 * application, and keeps every connection of it from one batch to the
 * next, and for the count after them. Not for a partition's DROP: there
 * more connections only cost more to open, each one a new backend on a
 * worker; those, and the check whether any row is due, use one per
 * worker (PLAN_CITUS_POOL_ONE, measured 10-40 % quicker than Citus's 16).
 */
static bool
set_pool(PGconn *conn, int size, char **err)
{
	if (size == 0)
		return db_exec(conn, "RESET citus.max_adaptive_executor_pool_size",
			       err) &&
		       db_exec(conn, "RESET citus.max_cached_conns_per_worker",
			       err);
	char *sql = xasprintf(
		"SELECT pg_catalog.set_config("
		"'citus.max_adaptive_executor_pool_size', n::text, false),"
		" pg_catalog.set_config('citus.max_cached_conns_per_worker',"
		" greatest(n, pg_catalog.current_setting("
		"'citus.max_cached_conns_per_worker')::int)::text, false)"
		" FROM (SELECT CASE WHEN source = 'default'"
		" THEN least(setting::int, %d) ELSE setting::int END AS n"
		" FROM pg_catalog.pg_settings"
		" WHERE name = 'citus.max_adaptive_executor_pool_size') s",
		size);
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	free(sql);
	PQclear(res);
	return res != NULL;
}

void
plan_citus_pool(PGconn *conn, struct plan *p, int size)
{
	char *err = NULL;

	if (!p->citus || p->citus->pool == size)
		return;
	/* a failure costs only speed; either way a reset is tried after */
	p->citus->pool = size;
	if (!set_pool(conn, size, &err)) {
		log_debug("rule \"%s\": could not %s the connection pool to "
			  "the workers: %s", p->rule->name, size ? "set" : "reset",
			  err);
		free(err);
	}
}

void
plan_citus_free(struct plan_citus *c)
{
	if (!c)
		return;
	free(c->pk);
	free(c->held_sql);
	free(c->held);
	free(c);
}
