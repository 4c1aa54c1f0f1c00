/*
 * report_load: the database half of the report. Everything is read in one
 * read-only REPEATABLE READ transaction, so the numbers agree with each
 * other; per-rule numbers come from runs.summary (written by the engine
 * in the run's last transaction) through jsonb_array_elements, so C needs
 * no JSON parser. The audit chain is verified afterwards, in audit.c's
 * own snapshot.
 */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "db.h"
#include "explain.h"
#include "summary.h"

/* A JSON number in the summary as bigint; null or a string someone wrote
 * by hand as 0. A missing key is an error (MISSING_KEYS). */
#define NUM(key) \
	"CASE WHEN jsonb_typeof(x.v->'" key "') = 'number'" \
	" THEN (x.v->>'" key "')::numeric::bigint ELSE 0 END"
#define STR(key) "x.v->>'" key "'"

/* The keys of SUMMARY_RULE_KEYS a rule's summary lacks, or NULL: a key
 * renamed on one side must not read as 0. */
#define KEY_ITEM(k) "'" k "', "
#define MISSING_KEYS \
	"(SELECT string_agg(k, ', ') FROM unnest(ARRAY[" \
	SUMMARY_RULE_KEYS(KEY_ITEM) "NULL]::text[]) k" \
	" WHERE k IS NOT NULL AND NOT x.v ? k)"

#define RUN_COLS \
	"r.id, r.host, r.command, r.status," \
	" date_trunc('second', r.started_at)::text," \
	" date_trunc('second', r.finished_at)::text," \
	" r.config_sha256, r.error," \
	" CASE WHEN jsonb_typeof(r.summary->'changed') = 'number'" \
	" THEN (r.summary->>'changed')::numeric::bigint END"

/* A run that is a cycle: not a plan, not `access --now` (a run only for
 * its audit row). */
#define CYCLE "command NOT IN ('plan', 'access')"

/* Runs a range report covers: cycles, not plans, started in [$1, $2). */
#define RANGE_FILTER \
	"r." CYCLE " AND r.started_at >= $1::timestamptz" \
	" AND r.started_at < $2::timestamptz"

struct ctx {
	PGconn *conn;
	char *runs, *holds, *erasure, *access;	/* qualified table names */
	char **err;
};

static char *
dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
					  : xstrdup(PQgetvalue(res, row, col));
}

static long long
ll_or(const PGresult *res, int row, int col, long long dflt)
{
	return PQgetisnull(res, row, col) ? dflt
					  : atoll(PQgetvalue(res, row, col));
}

static PGresult *
query(struct ctx *c, const char *fmt_sql, int n, const char *const *p)
{
	return db_query(c->conn, fmt_sql, n, p, c->err);
}

static void
read_runs(const PGresult *res, struct report *out)
{
	int n = PQntuples(res);

	out->runs = xcalloc((size_t)n, sizeof(*out->runs));
	for (int i = 0; i < n; i++) {
		struct report_run *r = &out->runs[out->n_runs++];
		r->id = atoll(PQgetvalue(res, i, 0));
		r->host = xstrdup(PQgetvalue(res, i, 1));
		r->command = xstrdup(PQgetvalue(res, i, 2));
		r->status = xstrdup(PQgetvalue(res, i, 3));
		r->started_at = dup_or_null(res, i, 4);
		r->finished_at = dup_or_null(res, i, 5);
		r->config_sha256 = dup_or_null(res, i, 6);
		r->error = dup_or_null(res, i, 7);
		r->changed = ll_or(res, i, 8, -1);
	}
}

static bool
load_rules(struct ctx *c, const char *filter, int n, const char *const *p,
	   struct report *out)
{
	char *sql = xasprintf(
		"SELECT rule, policy, tbl, action, retain, outcome, cutoff,"
		" oldest, message, changed, held, blocked, eligible, overdue,"
		" table_rows, compliant, age_s, n_runs, run_id, missing, lag_wait_s FROM ("
		"SELECT DISTINCT ON (" STR(SUMMARY_RULE) ")"
		" " STR(SUMMARY_RULE) " AS rule, " STR(SUMMARY_POLICY) " AS policy,"
		" " STR(SUMMARY_TABLE) " AS tbl, " STR(SUMMARY_ACTION) " AS action,"
		" " STR(SUMMARY_RETAIN) " AS retain,"
		" " STR(SUMMARY_OUTCOME) " AS outcome,"
		" " STR(SUMMARY_CUTOFF) " AS cutoff, " STR(SUMMARY_OLDEST) " AS oldest,"
		" " STR(SUMMARY_MESSAGE) " AS message,"
		" sum(" NUM(SUMMARY_CHANGED) ") OVER w AS changed,"
		" " NUM(SUMMARY_HELD) " AS held, " NUM(SUMMARY_BLOCKED) " AS blocked,"
		" " NUM(SUMMARY_ELIGIBLE) " AS eligible,"
		" " NUM(SUMMARY_OVERDUE) " AS overdue,"
		" " NUM(SUMMARY_TABLE_ROWS) " AS table_rows,"
		" coalesce(" STR(SUMMARY_COMPLIANT) " = 'true', false) AS compliant,"
		/* ISO text of a date or timestamp, as the engine wrote it;
		 * anything else ('infinity', another DateStyle) has no age */
		" CASE WHEN " STR(SUMMARY_OLDEST) " ~ '^\\d{4,}-\\d\\d-\\d\\d'"
		" THEN extract(epoch FROM coalesce(r.finished_at, now())"
		" - (" STR(SUMMARY_OLDEST) ")::timestamptz)::float8 END AS age_s,"
		" count(*) OVER w AS n_runs, r.id AS run_id, x.ord,"
		" " MISSING_KEYS " AS missing,"
		" sum(CASE WHEN jsonb_typeof(x.v->'" SUMMARY_LAG_WAIT "') = 'number'"
		"  THEN (x.v->>'" SUMMARY_LAG_WAIT "')::float8 ELSE 0 END) OVER w"
		"  AS lag_wait_s"
		" FROM %s r CROSS JOIN LATERAL jsonb_array_elements("
		"  CASE WHEN jsonb_typeof(r.summary->'rules') = 'array'"
		"  THEN r.summary->'rules' ELSE '[]'::jsonb END)"
		"  WITH ORDINALITY AS x(v, ord)"
		" WHERE %s AND " STR(SUMMARY_RULE) " IS NOT NULL"
		" WINDOW w AS (PARTITION BY " STR(SUMMARY_RULE) ")"
		" ORDER BY " STR(SUMMARY_RULE) ", r.started_at DESC, r.id DESC"
		") s ORDER BY ord, rule", c->runs, filter);
	PGresult *res = query(c, sql, n, p);

	free(sql);
	if (!res)
		return false;
	int rows = PQntuples(res);
	for (int i = 0; i < rows; i++)
		if (!PQgetisnull(res, i, 19)) {
			*c->err = xasprintf("run %s: the summary of rule \"%s\" "
					    "has no %s", PQgetvalue(res, i, 18),
					    PQgetvalue(res, i, 0),
					    PQgetvalue(res, i, 19));
			PQclear(res);
			return false;
		}
	out->rules = xcalloc((size_t)rows, sizeof(*out->rules));
	for (int i = 0; i < rows; i++) {
		struct report_rule *rr = &out->rules[out->n_rules++];
		rr->rule = xstrdup(PQgetvalue(res, i, 0));
		rr->policy = dup_or_null(res, i, 1);
		rr->table = dup_or_null(res, i, 2);
		rr->action = dup_or_null(res, i, 3);
		rr->retain = dup_or_null(res, i, 4);
		rr->outcome = dup_or_null(res, i, 5);
		rr->cutoff = dup_or_null(res, i, 6);
		rr->oldest = dup_or_null(res, i, 7);
		rr->message = dup_or_null(res, i, 8);
		rr->changed = ll_or(res, i, 9, 0);
		rr->held = ll_or(res, i, 10, 0);
		rr->blocked = ll_or(res, i, 11, 0);
		rr->eligible = ll_or(res, i, 12, 0);
		rr->overdue = ll_or(res, i, 13, 0);
		rr->table_rows = ll_or(res, i, 14, 0);
		rr->compliant = strcmp(PQgetvalue(res, i, 15), "t") == 0;
		rr->oldest_age_s = PQgetisnull(res, i, 16)
			? -1 : atof(PQgetvalue(res, i, 16));
		rr->runs = ll_or(res, i, 17, 0);
		rr->last_run_id = ll_or(res, i, 18, 0);
		rr->lag_wait_s = atof(PQgetvalue(res, i, 20));
	}
	PQclear(res);
	return true;
}

/* Erasure requests in [period_start, period_end), and those open now.
 * "partial" is finished: what is left was kept under a policy. */
static bool
count_requests(struct ctx *c, struct report *out, const char *table,
	       const char *done, const char *open, struct report_erasure *e)
{
	char *sql = xasprintf(
		"SELECT count(*) FILTER (WHERE requested_at >= $1::timestamptz"
		"   AND requested_at < $2::timestamptz),"
		" count(*) FILTER (WHERE %s"
		"   AND completed_at >= $1::timestamptz"
		"   AND completed_at < $2::timestamptz),"
		" count(*) FILTER (WHERE %s AND due_at >= now()"
		"   AND due_at < now() + interval '%d days'),"
		" count(*) FILTER (WHERE %s AND due_at < now()),"
		" count(*) FILTER (WHERE %s)"
		" FROM %s", done, open, REPORT_DUE_SOON_DAYS, open, open, table);
	const char *p[] = { out->period_start, out->period_end };
	PGresult *res = query(c, sql, 2, p);

	free(sql);
	if (!res)
		return false;
	e->received = ll_or(res, 0, 0, 0);
	e->done = ll_or(res, 0, 1, 0);
	e->due_soon = ll_or(res, 0, 2, 0);
	e->overdue = ll_or(res, 0, 3, 0);
	e->open = ll_or(res, 0, 4, 0);
	PQclear(res);
	return true;
}

static bool
load_erasure(struct ctx *c, struct report *out)
{
	PGresult *res;
	char *sql;

	if (!count_requests(c, out, c->erasure, "status IN ('done', 'partial')",
			    REPORT_ERASURE_OPEN, &out->erasure) ||
	    !count_requests(c, out, c->access, "status = 'done'",
			    REPORT_ACCESS_OPEN, &out->access))
		return false;

	/* the same condition as hold.c's active holds */
	sql = xasprintf("SELECT count(*), date_trunc('second', now())::text"
			" FROM %s WHERE released_at IS NULL"
			" AND (expires_at IS NULL OR expires_at > now())",
			c->holds);
	res = query(c, sql, 0, NULL);
	free(sql);
	if (!res)
		return false;
	out->holds_active = ll_or(res, 0, 0, 0);
	out->generated_at = xstrdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	return true;
}

/* Bounds of a range: since as given (or -infinity), until as given, or
 * the end of that day when it is a bare date (or infinity). */
static enum report_load_status
range_bounds(struct ctx *c, const struct report_query *q, struct report *out)
{
	const char *p[] = { q->since, q->until };
	PGresult *res = PQexecParams(c->conn,
		"SELECT coalesce($1::timestamptz, '-infinity')::text,"
		" (CASE WHEN $2 ~ '^\\s*\\d{4}-\\d{1,2}-\\d{1,2}\\s*$'"
		" THEN ($2::date + 1)::timestamptz"
		" ELSE coalesce($2::timestamptz, 'infinity') END)::text",
		2, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char *e = db_error(c->conn, res);
		bool bad = db_errclass_of(state) == DBERR_DATA_EXCEPTION;
		PQclear(res);
		if (bad) {
			*c->err = xasprintf("not a date: %s", e);
			free(e);
			return REPORT_BAD_DATE;
		}
		*c->err = e;
		return REPORT_DB_ERROR;
	}
	out->period_start = xstrdup(PQgetvalue(res, 0, 0));
	out->period_end = xstrdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	return REPORT_LOADED;
}

static enum report_load_status
load_in_tx(struct ctx *c, const struct report_query *q, struct report *out)
{
	char id[32];
	char *sql;
	PGresult *res;

	if (q->since || q->until) {
		out->range = true;
		out->since = q->since ? xstrdup(q->since) : NULL;
		out->until = q->until ? xstrdup(q->until) : NULL;
		enum report_load_status st = range_bounds(c, q, out);
		if (st != REPORT_LOADED)
			return st;
		const char *p[] = { out->period_start, out->period_end };
		sql = xasprintf("SELECT " RUN_COLS " FROM %s r WHERE "
				RANGE_FILTER " ORDER BY r.id", c->runs);
		res = query(c, sql, 2, p);
		free(sql);
		if (!res)
			return REPORT_DB_ERROR;
		read_runs(res, out);
		PQclear(res);
		return load_rules(c, RANGE_FILTER, 2, p, out) &&
		       load_erasure(c, out) ? REPORT_LOADED : REPORT_DB_ERROR;
	}

	snprintf(id, sizeof(id), "%lld", q->run_id);
	const char *p[] = { id };
	/* the period of one run: from the end of the cycle before it to its
	 * own end, so consecutive run reports neither miss nor repeat an
	 * erasure request */
	sql = q->run_id > 0
		? xasprintf("SELECT " RUN_COLS ", coalesce((SELECT max(p.finished_at)"
			    " FROM %s p WHERE p.id < r.id AND p." CYCLE "),"
			    " '-infinity')::text, coalesce(r.finished_at, now())::text"
			    " FROM %s r WHERE r.id = $1", c->runs, c->runs)
		: xasprintf("SELECT " RUN_COLS ", coalesce((SELECT max(p.finished_at)"
			    " FROM %s p WHERE p.id < r.id AND p." CYCLE "),"
			    " '-infinity')::text, coalesce(r.finished_at, now())::text"
			    " FROM %s r WHERE r.finished_at IS NOT NULL"
			    " AND r." CYCLE " ORDER BY r.id DESC LIMIT 1",
			    c->runs, c->runs);
	res = query(c, sql, q->run_id > 0 ? 1 : 0, q->run_id > 0 ? p : NULL);
	free(sql);
	if (!res)
		return REPORT_DB_ERROR;
	if (PQntuples(res) == 0) {
		*c->err = q->run_id > 0
			? xasprintf("there is no run %lld", q->run_id)
			: xstrdup("no cycle has finished yet: there is "
				  "nothing to report");
		PQclear(res);
		return REPORT_NOT_FOUND;
	}
	read_runs(res, out);
	out->period_start = xstrdup(PQgetvalue(res, 0, 9));
	out->period_end = xstrdup(PQgetvalue(res, 0, 10));
	PQclear(res);
	snprintf(id, sizeof(id), "%lld", out->runs[0].id);
	return load_rules(c, "r.id = $1::bigint", 1, p, out) &&
	       load_erasure(c, out) ? REPORT_LOADED : REPORT_DB_ERROR;
}

static void
load_audit(PGconn *conn, const char *schema, const struct report_query *q,
	   struct report *out)
{
	struct audit_verify_result v;
	char *e = NULL;
	int st;

	if (q->audit) {
		v = *q->audit;
		st = q->audit_status;
	} else {
		st = audit_verify(conn, schema, &v, &e);
	}
	switch (st) {
	case 0:
		out->audit.status = REPORT_AUDIT_INTACT;
		break;
	case 1:
		out->audit.status = REPORT_AUDIT_BROKEN;
		out->audit.first_bad_id = v.first_bad_id;
		out->audit.reason = xstrdup(v.reason);
		break;
	default:
		out->audit.status = REPORT_AUDIT_UNKNOWN;
		out->audit.reason = e ? e : xstrdup("the audit trail could "
						    "not be checked");
		return;
	}
	out->audit.actions = v.n_rows;
	out->audit.head = xstrdup(v.last_hash);
}

enum report_load_status
report_load(PGconn *conn, const struct config *cfg,
	    const struct report_query *q, struct report *out, char **err)
{
	const char *schema = cfg->database.schema;
	struct ctx c = {
		.conn = conn,
		.runs = db_qualified(conn, schema, "runs"),
		.holds = db_qualified(conn, schema, "legal_holds"),
		.erasure = db_qualified(conn, schema, "erasure_requests"),
		.access = db_qualified(conn, schema, "access_requests"),
		.err = err,
	};
	enum report_load_status st = REPORT_DB_ERROR;

	memset(out, 0, sizeof(*out));
	/* ISO dates whatever the server's DateStyle, for the age of the
	 * oldest row and for readers of the report */
	if (db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err)) {
		PGresult *res = query(&c,
			"SELECT set_config('DateStyle', 'ISO, YMD', true),"
			" set_config('IntervalStyle', 'postgres', true)", 0, NULL);
		if (res) {
			PQclear(res);
			st = load_in_tx(&c, q, out);
			/* in the same snapshot as the numbers it explains */
			if (st == REPORT_LOADED)
				explain_load(conn, cfg, out);
		}
		char *e = NULL;
		if (!db_exec(conn, st == REPORT_LOADED ? "COMMIT" : "ROLLBACK",
			     &e)) {
			if (st == REPORT_LOADED) {
				*err = e;
				st = REPORT_DB_ERROR;
			} else {
				free(e);
			}
		}
	}
	if (st == REPORT_LOADED)
		load_audit(conn, schema, q, out);
	else
		report_free(out);
	free(c.runs);
	free(c.holds);
	free(c.erasure);
	free(c.access);
	return st;
}
