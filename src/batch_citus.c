/* batch_citus: one batch on a Citus table (plan_citus.h). Each batch is
 * one transaction: the change, then its audit row on the coordinator;
 * Citus commits the shards and the coordinator with two-phase commit, so
 * the audit row exists if and only if the change does. */
#include "plan_citus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OID_FLOAT8 701

/* BEGIN, COMMIT, ROLLBACK, noting the class of a failure in OUT. */
static bool
command(PGconn *conn, const char *sql, struct batch_outcome *out, char **err)
{
	PGresult *res = db_exec_params(conn, sql, 0, NULL, NULL, &out->errclass,
				       err);
	PQclear(res);
	return res != NULL;
}

/*
 * BEGIN, with the session's lock_timeout (which the driver sets per batch
 * kind) in force on the workers too: Citus does not pass a session's SET
 * on, and a row lock is waited for on the worker holding the shard, where
 * the coordinator's lock_timeout never fires. SET LOCAL in a transaction
 * is propagated when citus.propagate_set_commands is 'local'.
 */
static bool
begin(PGconn *conn, struct batch_outcome *out, char **err)
{
	if (!command(conn, "BEGIN", out, err))
		return false;
	PGresult *res = db_exec_params(conn, "SHOW lock_timeout", 0, NULL,
				       NULL, &out->errclass, err);
	if (!res)
		return false;
	char *lit = PQescapeLiteral(conn, PQgetvalue(res, 0, 0),
				    strlen(PQgetvalue(res, 0, 0)));
	PQclear(res);
	if (!lit) {
		*err = db_error(conn, NULL);
		return false;
	}
	char *sql = xasprintf("SET LOCAL lock_timeout = %s", lit);
	PQfreemem(lit);
	bool ok = command(conn, "SET LOCAL citus.propagate_set_commands = "
			  "'local'", out, err) &&
		  command(conn, sql, out, err);
	free(sql);
	return ok;
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e))
		free(e);
}

/* The audit row of CHANGED rows, inside the open transaction. */
static bool
audit(PGconn *conn, struct plan *p, size_t target, const char *cutoff,
      long long run_id, const char *detail_json, long long changed,
      struct batch_outcome *out, char **err)
{
	char run[32], rows[32];
	snprintf(run, sizeof(run), "%lld", run_id);
	snprintf(rows, sizeof(rows), "%lld", changed);
	struct plan_args a = { .run = run, .target = p->targets[target].name,
			       .cutoff = cutoff, .rows = rows,
			       .detail = detail_json };
	PGresult *res = plan_exec(conn, p, &p->audit, &a, &out->errclass, err);
	PQclear(res);
	return res != NULL;
}

bool
citus_batch_run(PGconn *conn, struct plan *p, size_t target,
		const char *cutoff, long long limit, const char *from,
		long long run_id, const char *detail_json,
		struct batch_outcome *out, char **err)
{
	char lim[32];
	snprintf(lim, sizeof(lim), "%lld", limit);
	struct plan_args a = { .cutoff = cutoff, .limit = lim, .from = from };

	memset(out, 0, sizeof(*out));
	if (!begin(conn, out, err))
		goto fail;
	PGresult *res = plan_exec(conn, p, &p->targets[target].batch, &a,
				  &out->errclass, err);
	if (!res)
		goto fail;
	out->changed = atoll(PQgetvalue(res, 0, 1));
	out->picked = out->changed;
	/* no last_age: without ORDER BY (which would pull every shard's
	 * LIMIT rows to the coordinator) the rows changed are not the
	 * oldest, and the next time slice must start where the last one did,
	 * or older due rows would be passed over */
	out->last = out->picked < limit;
	PQclear(res);
	if (out->changed > 0 && !audit(conn, p, target, cutoff, run_id,
				       detail_json, out->changed, out, err))
		goto fail;
	if (command(conn, "COMMIT", out, err))
		return true;
	goto failed;	/* a failed COMMIT has rolled back already */
fail:
	rollback(conn);
failed:
	out->changed = 0;
	free(out->last_age);
	out->last_age = NULL;
	return false;
}

/* Run SELECT LIST FROM the target WHERE (all conditions, from FROM on),
 * with SAMPLE after the table name; the result or NULL (*err). */
static PGresult *
due_query(PGconn *conn, struct plan *p, size_t target, const char *cutoff,
	  const char *from, const char *upto, const char *list,
	  const char *sample, struct batch_outcome *out, char **err)
{
	struct plan_stmt st = { 0 };
	st.nparams = p->nfrag;
	memcpy(st.types, p->frag_types, sizeof(Oid) * (size_t)p->nfrag);
	memcpy(st.args, p->frag_args, sizeof(st.args[0]) * (size_t)p->nfrag);
	int f = ++st.nparams;
	st.args[f - 1] = PA_FROM;
	st.types[f - 1] = OID_TEXT;
	char *below = NULL;
	if (upto) {
		int u = ++st.nparams;
		st.args[u - 1] = PA_UPTO;
		st.types[u - 1] = OID_TEXT;
		below = xasprintf(" AND %s < $%d::%s", p->age_q, u, p->age_type);
	}
	st.sql = xasprintf("SELECT %s FROM %s t%s WHERE %s AND %s AND %s"
			   " AND %s >= $%d::%s%s", list, p->targets[target].qname,
			   sample, p->eligible, p->not_held, p->unreferenced,
			   p->age_q, f, p->age_type, below ? below : "");
	free(below);
	struct plan_args a = { .cutoff = cutoff, .from = from, .upto = upto };
	PGresult *res = plan_exec(conn, p, &st, &a, &out->errclass, err);
	free(st.sql);
	return res;
}

/* Below this many sampled rows the sample says too little: count them. */
#define SAMPLED_ENOUGH 100

/*
 * Where the due rows from FROM on begin, and how many seconds of age hold
 * one row on average: the first slice's width. *START NULL: none is due.
 * Each query is one aggregate per shard, summed on the coordinator: no
 * ORDER BY, no OFFSET, no rows pulled to the coordinator. The number of
 * rows comes from a 1% sample of the pages when that finds enough of
 * them (a full count of a big table would cost a fifth of deleting it);
 * the slices after the first are sized from what they really changed.
 */
static bool
estimate(PGconn *conn, struct plan *p, size_t target, const char *cutoff,
	 const char *from, char **start, double *per_row,
	 struct batch_outcome *out, char **err)
{
	const char *age = p->age_q;
	*start = NULL;
	*per_row = 0;
	char *list = xasprintf("min(%s)::text, extract(epoch FROM max(%s)::"
			       "timestamptz - min(%s)::timestamptz)::float8",
			       age, age, age);
	PGresult *res = due_query(conn, p, target, cutoff, from, NULL, list, "",
				  out, err);
	free(list);
	if (!res)
		return false;
	if (PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return true;	/* nothing due */
	}
	char *first = xstrdup(PQgetvalue(res, 0, 0));
	double span = fmax(atof(PQgetvalue(res, 0, 1)), 1);
	PQclear(res);

	double n = 0;
	res = due_query(conn, p, target, cutoff, from, NULL, "count(*)",
			" TABLESAMPLE SYSTEM (1)", out, err);
	if (res) {
		n = atof(PQgetvalue(res, 0, 0));
		PQclear(res);
		/* half: a sample's error must not make the first slice
		 * twice as long as the batch it stands for */
		n = n >= SAMPLED_ENOUGH ? n * 100 * 2 : 0;
	}
	if (res && n == 0) {
		res = due_query(conn, p, target, cutoff, from, NULL, "count(*)",
				"", out, err);
		if (res) {
			n = fmax(atof(PQgetvalue(res, 0, 0)), 1);
			PQclear(res);
		}
	}
	if (!res) {
		free(first);
		return false;
	}
	*start = first;
	*per_row = span / n;
	return true;
}

/* The end of the slice of WIDTH seconds from START, and whether it
 * reaches the cutoff (then the slice takes all that is due). */
static bool
slice_end(PGconn *conn, const struct plan *p, const char *start,
	  double width, const char *cutoff, char **upto, bool *last,
	  struct batch_outcome *out, char **err)
{
	bool date = strcmp(p->age_type, "date") == 0;
	char w[64];
	snprintf(w, sizeof(w), "%.6f", width);
	char *sql = xasprintf(
		"SELECT x::text, %s FROM (SELECT ($1::%s + $2::float8"
		" * interval '1 second')::%s AS x) s",
		date ? "x >= $3::timestamptz::date" : "x::timestamptz >= $3::timestamptz",
		p->age_type, p->age_type);
	const char *values[] = { start, w, cutoff };
	Oid types[] = { OID_TEXT, OID_FLOAT8, OID_TIMESTAMPTZ };
	PGresult *res = db_exec_params(conn, sql, 3, types, values,
				       &out->errclass, err);
	free(sql);
	if (!res)
		return false;
	*upto = xstrdup(PQgetvalue(res, 0, 0));
	*last = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return true;
}

/*
 * Up to LIMIT due rows of the slice [START, UPTO), by primary key, with
 * their audit row, in one transaction: for a slice that holds many more
 * rows than LIMIT however narrow it is (rows sharing one age).
 */
static bool
tied_batch(PGconn *conn, struct plan *p, size_t target, const char *cutoff,
	   long long limit, const char *start, const char *upto,
	   long long run_id, const char *detail_json,
	   struct batch_outcome *out, char **err)
{
	const char *q = p->targets[target].qname;
	char *cond = xasprintf("%s AND %s AND %s", p->eligible, p->not_held,
			       p->unreferenced);
	struct plan_stmt st = { 0 };
	st.nparams = p->nfrag;
	memcpy(st.types, p->frag_types, sizeof(Oid) * (size_t)p->nfrag);
	memcpy(st.args, p->frag_args, sizeof(st.args[0]) * (size_t)p->nfrag);
	int f = ++st.nparams, u = ++st.nparams, l = ++st.nparams;
	st.args[f - 1] = PA_FROM;
	st.args[u - 1] = PA_UPTO;
	st.args[l - 1] = PA_LIMIT;
	st.types[f - 1] = st.types[u - 1] = OID_TEXT;
	st.types[l - 1] = OID_INT8;
	char *change = p->action == ACTION_DELETE
		? xasprintf("DELETE FROM %s t", q)
		: xasprintf("UPDATE %s t SET %s", q, p->set);
	st.sql = xasprintf(
		"WITH changed AS (%s WHERE (%s) IN (SELECT %s FROM %s t"
		" WHERE %s AND %s >= $%d::%s AND %s < $%d::%s LIMIT $%d)"
		" AND %s RETURNING 1) SELECT count(*) FROM changed",
		change, p->citus->pk, p->citus->pk, q, cond, p->age_q, f,
		p->age_type, p->age_q, u, p->age_type, l, cond);
	free(change);
	free(cond);
	char lim[32];
	snprintf(lim, sizeof(lim), "%lld", limit);
	struct plan_args a = { .cutoff = cutoff, .from = start, .upto = upto,
			       .limit = lim };
	bool ok = false;
	if (!begin(conn, out, err))
		goto fail;
	PGresult *res = plan_exec(conn, p, &st, &a, &out->errclass, err);
	if (!res)
		goto fail;
	out->changed = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (out->changed > 0 && !audit(conn, p, target, cutoff, run_id,
				       detail_json, out->changed, out, err))
		goto fail;
	ok = command(conn, "COMMIT", out, err);
	if (!ok)
		out->changed = 0;
	free(st.sql);
	return ok;
fail:
	rollback(conn);
	out->changed = 0;
	free(st.sql);
	return false;
}

bool
citus_batch_run_slice(PGconn *conn, struct plan *p, size_t target,
		      const char *cutoff, long long limit, const char *from,
		      long long run_id, const char *detail_json,
		      struct batch_outcome *out, char **err)
{
	struct plan_target *bt = &p->targets[target];
	char *start = NULL, *upto = NULL;
	bool last = false;
	/* a date holds whole days: a slice never narrower than one */
	double min_width = strcmp(p->age_type, "date") == 0 ? 86400 : 1;

	memset(out, 0, sizeof(*out));
	if (bt->slice_per_row <= 0 || strcmp(from, "-infinity") == 0) {
		if (!estimate(conn, p, target, cutoff, from, &start,
			      &bt->slice_per_row, out, err))
			return false;
		if (!start) {
			out->last = true;	/* nothing due */
			return true;
		}
	} else {
		start = xstrdup(from);
	}
	double width = fmax(bt->slice_per_row * (double)limit, min_width);
	if (min_width > 1)
		width = ceil(width / min_width) * min_width;
	if (!slice_end(conn, p, start, width, cutoff, &upto, &last, out, err))
		goto fail_free;

	/* A slice is never narrower than min_width: when that width holds
	 * LIMIT rows or more on average (many rows of one age), count the
	 * slice, and take one of more than twice LIMIT rows LIMIT rows at a
	 * time; it stays where it is until fewer are left. */
	if (bt->slice_per_row * (double)limit <= min_width) {
		PGresult *res = due_query(conn, p, target, cutoff, start, upto,
					  "count(*)", "", out, err);
		if (!res)
			goto fail_free;
		long long n = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (n > 2 * limit) {
			if (!tied_batch(conn, p, target, cutoff, limit, start,
					upto, run_id, detail_json, out, err))
				goto fail_free;
			if (out->changed > 0) {
				out->picked = limit;
				out->last_age = start;
				free(upto);
				return true;
			}
			/* none changed after all (a race): the whole slice */
		}
	}

	if (!begin(conn, out, err))
		goto fail;
	struct plan_args a = { .cutoff = cutoff, .from = start, .upto = upto };
	PGresult *res = plan_exec(conn, p, last ? &bt->range_last : &bt->range,
				  &a, &out->errclass, err);
	if (!res)
		goto fail;
	out->changed = atoll(PQcmdTuples(res));
	PQclear(res);
	if (out->changed > 0 && !audit(conn, p, target, cutoff, run_id,
				       detail_json, out->changed, out, err))
		goto fail;
	if (!command(conn, "COMMIT", out, err))
		goto fail_free;	/* rolled back already */

	/* the next slice: as wide as LIMIT rows were in this one; an empty
	 * slice (a gap in the ages) measures again from where it ended */
	bt->slice_per_row = out->changed > 0 ? width / (double)out->changed : 0;
	out->last = last;
	out->picked = last ? out->changed : limit;
	out->last_age = upto;
	free(start);
	return true;
fail:
	rollback(conn);
fail_free:
	out->changed = 0;
	free(start);
	free(upto);
	return false;
}
