#include "batch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahead.h"
#include "plan_citus.h"

static char *
dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
					  : xstrdup(PQgetvalue(res, row, col));
}

bool
batch_run(PGconn *conn, struct plan *p, size_t target, const char *cutoff,
	  long long limit, const char *from, long long run_id,
	  const char *detail_json, struct batch_outcome *out, char **err)
{
	char lim[32], run[32];
	struct plan_args a = { .cutoff = cutoff, .limit = lim, .from = from,
			       .run = run, .target = p->targets[target].name,
			       .detail = detail_json };

	if (p->citus)
		return citus_batch_run(conn, p, target, cutoff, limit, from,
				       run_id, detail_json, out, err);
	memset(out, 0, sizeof(*out));
	snprintf(lim, sizeof(lim), "%lld", limit);
	snprintf(run, sizeof(run), "%lld", run_id);
	PGresult *res = plan_exec(conn, p, &p->targets[target].batch, &a,
				  &out->errclass, err);
	if (!res)
		return false;
	out->picked = atoll(PQgetvalue(res, 0, 0));
	out->changed = atoll(PQgetvalue(res, 0, 1));
	out->last_age = dup_or_null(res, 0, 2);
	out->last = out->picked < limit;
	PQclear(res);
	return true;
}

/* BEGIN, COMMIT, ROLLBACK, noting the class of a failure in OUT. */
static bool
batch_cmd(PGconn *conn, const char *sql, struct batch_outcome *out, char **err)
{
	PGresult *res = db_exec_params(conn, sql, 0, NULL, NULL, &out->errclass,
				       err);
	PQclear(res);
	return res != NULL;
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e))
		free(e);
}

/* Read where a batch of LIMIT rows from FROM ends, sweeping the ranges
 * changed since the last sweep (plan.c, bound_statement). */
static bool
read_bound(PGconn *conn, struct plan *p, struct plan_target *bt,
	   const char *cutoff, long long limit, const char *from,
	   struct ahead_bound *b, struct batch_outcome *out, char **err)
{
	char lim[32];
	snprintf(lim, sizeof(lim), "%lld", limit);
	struct plan_args a = { .cutoff = cutoff, .limit = lim, .from = from,
			       .swept = bt->swept, .swept_upto = from };
	PGresult *res = plan_exec(conn, p, &bt->bound, &a, &out->errclass, err);
	if (!res)
		return false;
	b->first = dup_or_null(res, 0, 0);
	b->limit_age = dup_or_null(res, 0, 1);
	PQclear(res);
	return true;
}

bool
batch_run_range(PGconn *conn, struct plan *p, size_t target,
		const char *cutoff, long long limit, const char *from,
		long long run_id, const char *detail_json, struct ahead *ah,
		struct batch_outcome *out, char **err)
{
	struct plan_target *bt = &p->targets[target];
	char run[32], rows[32];
	struct ahead_bound b = { 0 };
	char *swept_upto = NULL;

	if (p->citus)
		return citus_batch_run_slice(conn, p, target, cutoff, limit,
					     from, run_id, detail_json, out, err);
	assert(bt->bound.sql);
	memset(out, 0, sizeof(*out));
	/* the driver's size, for the read ahead; this batch's may be smaller */
	long long want = limit;
	out->ahead = ah && ahead_take(ah, bt, from, want, &b, &limit,
				      &swept_upto);
	if (!out->ahead) {
		if (!read_bound(conn, p, bt, cutoff, limit, from, &b, out, err))
			return false;
		swept_upto = xstrdup(from);
	}
	/* what was changed before SWEPT_UPTO has been swept now */
	free(bt->swept);
	bt->swept = swept_upto;
	bool none = b.first == NULL;
	out->last = b.limit_age == NULL;
	out->last_age = b.limit_age;
	out->tied = !none && !out->last && strcmp(b.first, b.limit_age) == 0;
	free(b.first);
	if (none || out->tied) {
		out->picked = none ? 0 : limit;
		return true;
	}
	/* The next batch's bound, on the second connection while this one
	 * changes its rows: from where this range ends, sweeping what the
	 * batches before this one changed. The first batch of a backlog only
	 * starts opening that connection, so that it is ready for the next. */
	if (ah && !out->last) {
		if (!ah->second.conn)
			ahead_prepare(ah);
		else
			(void)ahead_send(ah, p, bt, cutoff, out->last_age, want,
					 bt->swept, from);
	}

	struct plan_args a;
	PGresult *res;
	if (!batch_cmd(conn, "BEGIN", out, err))
		goto fail;
	a = (struct plan_args){ .cutoff = cutoff, .from = from,
				.upto = out->last_age };
	res = plan_exec(conn, p, out->last ? &bt->range_last : &bt->range, &a,
			&out->errclass, err);
	if (!res) {
		rollback(conn);
		goto fail;
	}
	out->changed = atoll(PQcmdTuples(res));
	PQclear(res);
	out->picked = out->last ? out->changed : limit;
	if (out->changed > 0) {
		snprintf(run, sizeof(run), "%lld", run_id);
		snprintf(rows, sizeof(rows), "%lld", out->changed);
		a = (struct plan_args){ .run = run, .target = bt->name,
					.cutoff = cutoff, .rows = rows,
					.detail = detail_json };
		res = plan_exec(conn, p, &p->audit, &a, &out->errclass, err);
		if (!res) {
			rollback(conn);
			goto fail;
		}
		PQclear(res);
	}
	/* a failed COMMIT has rolled back already */
	if (batch_cmd(conn, "COMMIT", out, err)) {
		if (ah)
			ahead_wait(ah);
		return true;
	}
fail:
	out->changed = 0;
	free(out->last_age);
	out->last_age = NULL;
	return false;
}
