#include "plan_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hold.h"
#include "plan_citus.h"
#include "strbuf.h"

/* A statement's parameters start with the fragments' (FRAG) or not. */
static void
stmt_begin(const struct plan *p, struct plan_stmt *st, bool frag)
{
	memset(st, 0, sizeof(*st));
	if (!frag)
		return;
	st->nparams = p->nfrag;
	memcpy(st->types, p->frag_types, sizeof(Oid) * (size_t)p->nfrag);
	memcpy(st->args, p->frag_args, sizeof(st->args[0]) * (size_t)p->nfrag);
}

/* Add a parameter of the statement's own; its number. */
static int
stmt_param(struct plan_stmt *st, enum plan_arg arg, Oid type)
{
	int n = st->nparams++;
	st->args[n] = arg;
	st->types[n] = type;
	return n + 1;
}

static void
stmt_free(struct plan_stmt *st)
{
	free(st->sql);
	memset(st, 0, sizeof(*st));
}

static bool
load_targets(PGconn *conn, struct plan *rs, char **err)
{
	if (rs->relkind != 'p') {
		rs->targets = xcalloc(1, sizeof(*rs->targets));
		rs->n_targets = 1;
		rs->targets[0].name = xasprintf("%s.%s", rs->rule->schema,
						rs->rule->table);
		rs->targets[0].qname = xstrdup(rs->qtable);
		rs->targets[0].lower_epoch = NAN;
		return true;
	}
	/* ctid is only unique within one relation: batches work on each
	 * leaf partition, oldest bound first. The lower bound of a direct
	 * partition of a table partitioned by range on the age column
	 * (FROM ('...'), a date or timestamp) lets a cycle pass over the
	 * partitions where nothing is due yet. */
	char attnum[16];
	snprintf(attnum, sizeof(attnum), "%d", rs->age_attnum);
	const char *p[] = { rs->oid, attnum };
	PGresult *res = db_query(conn,
		"SELECT n.nspname, c.relname,"
		"  CASE WHEN pt.parentrelid = $1::oid AND k.by_age THEN"
		"   extract(epoch FROM (regexp_match(pg_get_expr(c.relpartbound,"
		"     c.oid), 'FROM \\(''([^'']*)''\\)'))[1]::timestamptz)::text"
		"  END"
		" FROM pg_partition_tree($1::oid::regclass) pt"
		" JOIN pg_class c ON c.oid = pt.relid"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" LEFT JOIN (SELECT partstrat = 'r' AND partnatts = 1"
		"   AND partattrs[0] = $2::int2 AS by_age"
		"   FROM pg_partitioned_table WHERE partrelid = $1::oid) k ON true"
		" WHERE pt.isleaf"
		" ORDER BY pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',"
		"   pg_get_expr(c.relpartbound, c.oid), c.relname", 2, p, err);
	if (!res)
		return false;
	int n = PQntuples(res);
	rs->targets = xcalloc((size_t)n, sizeof(*rs->targets));
	rs->n_targets = (size_t)n;
	for (int i = 0; i < n; i++) {
		rs->targets[i].name = xasprintf("%s.%s", PQgetvalue(res, i, 0),
						PQgetvalue(res, i, 1));
		rs->targets[i].qname = db_qualified(conn, PQgetvalue(res, i, 0),
						    PQgetvalue(res, i, 1));
		rs->targets[i].lower_epoch = PQgetisnull(res, i, 2)
			? NAN : strtod(PQgetvalue(res, i, 2), NULL);
		if (!rs->targets[i].qname) {
			*err = xasprintf("partition %s: its name is not valid "
					 "in the database encoding",
					 rs->targets[i].name);
			PQclear(res);
			return false;
		}
	}
	PQclear(res);
	return true;
}

/* The conditions every pick re-checks, joined: due, not held, not still
 * referenced. */
static char *
all_conditions(const struct plan *p)
{
	return xasprintf("%s AND %s AND %s", p->eligible, p->not_held,
			 p->unreferenced);
}

/* The row batch: picks rows with FOR UPDATE SKIP LOCKED and changes them
 * by ctid, with its audit row, in one statement. */
static void
batch_statement(const struct config *cfg, PGconn *conn, struct plan *p,
		const char *target_q, struct plan_stmt *st)
{
	struct strbuf b = STRBUF_INIT;
	char *actions = db_qualified(conn, cfg->database.schema, "actions");
	char *cond = all_conditions(p);
	/* expiry walks the age index from the oldest row, resuming where the
	 * last batch ended so dead index entries are not scanned again; an
	 * erasure has few rows, some without an age at all */
	bool walk = p->mode == PLAN_EXPIRY;

	stmt_begin(p, st, true);
	int lim = stmt_param(st, PA_LIMIT, OID_INT8);
	int from = walk ? stmt_param(st, PA_FROM, OID_TEXT) : 0;
	int run = stmt_param(st, PA_RUN, OID_INT8);
	int rule = stmt_param(st, PA_RULE, OID_TEXT);
	int target = stmt_param(st, PA_TARGET, OID_TEXT);
	int detail = stmt_param(st, PA_DETAIL, OID_JSONB);
	sb_printf(&b,
		"WITH picked AS MATERIALIZED ("
		"SELECT t.ctid AS tid, %s AS age FROM %s t WHERE %s",
		p->age_q, target_q, cond);
	if (walk)
		sb_printf(&b, " AND %s >= $%d::%s", p->age_q, from, p->age_type);
	if (walk && p->ordered)
		sb_printf(&b, " ORDER BY %s", p->age_q);
	sb_printf(&b, " LIMIT $%d FOR UPDATE OF t SKIP LOCKED), ", lim);
	if (p->action == ACTION_DELETE)
		sb_printf(&b, "changed AS (DELETE FROM %s t", target_q);
	else
		sb_printf(&b, "changed AS (UPDATE %s t SET %s", target_q, p->set);
	/* the same conditions again: a row changed since it was picked is
	 * left alone */
	sb_printf(&b,
		" WHERE t.ctid = ANY (ARRAY(SELECT tid FROM picked))"
		" AND %s RETURNING 1), "
		"audit AS (INSERT INTO %s (run_id, rule, target, action, cutoff,"
		" rows, started_at, finished_at, detail)"
		" SELECT $%d, $%d, $%d, '%s', $1, n, statement_timestamp(),"
		" clock_timestamp(), $%d FROM (SELECT count(*) AS n FROM changed) c"
		" WHERE n > 0) "
		"SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM changed),"
		" (SELECT max(age)::text FROM picked)",
		cond, actions, run, rule, target,
		p->mode == PLAN_ERASURE ? "erasure" : rule_action_name(p->action),
		detail);
	free(cond);
	free(actions);
	st->sql = sb_take(&b);
}

/*
 * The batch by age range, in three steps. First, a read: the age at which
 * the next LIMIT due rows end (only the age index is read when the
 * conditions allow). Then, in one transaction, delete or update the due
 * rows of that age range in one pass along the index, re-checking every
 * condition as batch_statement does, and write the audit row with the
 * number of rows the server reports changed.
 *
 * Against batch_statement this saves the lock step (a WAL record per row)
 * and RETURNING (a second visit to every row changed): a plain DELETE by
 * range costs about what one big DELETE costs per row. The price is that
 * a row someone else has locked makes it wait: the caller bounds that
 * with lock_timeout and falls back to batch_statement, which skips the
 * row. The range stops short of the last age picked, so rows sharing that
 * age wait for the next batch and no batch grows past LIMIT, however many
 * rows share one date; when all LIMIT rows have the same age the caller
 * takes them with batch_statement. The last batch (fewer than LIMIT due
 * rows left) takes its last age too.
 */
static void
bound_statement(struct plan *p, const char *target_q, struct plan_stmt *st)
{
	char *cond = all_conditions(p);
	const char *age = p->age_q;

	stmt_begin(p, st, true);
	int lim = stmt_param(st, PA_LIMIT, OID_INT8);
	int from = stmt_param(st, PA_FROM, OID_TEXT);
	int swept = stmt_param(st, PA_SWEPT, OID_TEXT);
	int swept_upto = stmt_param(st, PA_SWEPT_UPTO, OID_TEXT);
	/* the first due age and the LIMIT-th: OFFSET walks the index like the
	 * aggregate would, without computing anything per row */
	char *pick = xasprintf("SELECT %s FROM %s t WHERE %s AND %s >= $%d::%s"
			       " ORDER BY %s", age, target_q, cond, age, from,
			       p->age_type, age);
	/* The third column sweeps the ranges batches changed since the last
	 * sweep: their index entries now point at dead rows, and each scan
	 * that meets one visits the heap until a scan finds the row dead and
	 * marks the entry. Here, while those pages are still in memory, that
	 * costs a fraction of what it costs the count after the run, which
	 * would otherwise be the first to visit them all. */
	st->sql = xasprintf("SELECT (%s LIMIT 1)::text,"
			    " (%s OFFSET $%d - 1 LIMIT 1)::text,"
			    " (SELECT count(*) FROM %s t WHERE %s >= $%d::%s"
			    " AND %s < $%d::%s)", pick, pick, lim,
			    target_q, age, swept, p->age_type, age, swept_upto,
			    p->age_type);
	free(pick);
	free(cond);
}

/* The change of one range: up to PA_UPTO (not included), or when LAST to
 * the end of what is due. */
static void
range_statement(struct plan *p, const char *target_q, bool last,
		struct plan_stmt *st)
{
	struct strbuf b = STRBUF_INIT;
	char *cond = all_conditions(p);
	const char *age = p->age_q;

	stmt_begin(p, st, true);
	int from = stmt_param(st, PA_FROM, OID_TEXT);
	if (p->action == ACTION_DELETE)
		sb_printf(&b, "DELETE FROM %s t", target_q);
	else
		sb_printf(&b, "UPDATE %s t SET %s", target_q, p->set);
	sb_printf(&b, " WHERE %s >= $%d::%s", age, from, p->age_type);
	if (!last)
		sb_printf(&b, " AND %s < $%d::%s", age,
			  stmt_param(st, PA_UPTO, OID_TEXT), p->age_type);
	sb_printf(&b, " AND %s", cond);
	free(cond);
	st->sql = sb_take(&b);
}

static bool
build_targets(PGconn *conn, const struct config *cfg, struct plan *p,
	      char **err)
{
	if (!load_targets(conn, p, err))
		return false;
	for (size_t i = 0; i < p->n_targets; i++) {
		struct plan_target *t = &p->targets[i];
		if (p->citus) {
			/* Citus: by primary key, and expiry by time slices,
			 * with or without an age index */
			plan_citus_batch_statement(p, t->qname, &t->batch);
			if (p->mode == PLAN_EXPIRY) {
				range_statement(p, t->qname, false, &t->range);
				range_statement(p, t->qname, true,
						&t->range_last);
			}
			continue;
		}
		batch_statement(cfg, conn, p, t->qname, &t->batch);
		if (p->mode == PLAN_EXPIRY && p->ordered) {
			bound_statement(p, t->qname, &t->bound);
			range_statement(p, t->qname, false, &t->range);
			range_statement(p, t->qname, true, &t->range_last);
		}
	}
	return true;
}

/* The statements on the whole table: counts before and after, the oldest
 * row, a range batch's audit row. */
static void
table_statements(PGconn *conn, const struct config *cfg, struct plan *p)
{
	const char *h = p->not_held, *f = p->unreferenced;
	char *cond = all_conditions(p);

	stmt_begin(p, &p->count, true);
	p->count.sql = xasprintf(
		"SELECT count(*) FILTER (WHERE %s AND %s),"
		" count(*) FILTER (WHERE NOT (%s)),"
		" count(*) FILTER (WHERE %s AND NOT (%s))"
		" FROM %s t WHERE %s", h, f, h, h, f, p->qtable, p->eligible);

	stmt_begin(p, &p->count_upto, true);
	int lim = stmt_param(&p->count_upto, PA_LIMIT, OID_INT8);
	/* along the age index: with statistics from before the last big
	 * delete, the planner would rather scan the table for so few rows */
	char *order = p->ordered ? xasprintf(" ORDER BY %s", p->age_q)
				 : xstrdup("");
	p->count_upto.sql = xasprintf(
		"SELECT count(*) FROM (SELECT 1 FROM %s t WHERE %s%s LIMIT $%d) s",
		p->qtable, cond, order, lim);
	free(order);

	stmt_begin(p, &p->count_due, true);
	p->count_due.sql = xasprintf("SELECT count(*) FROM %s t WHERE %s",
				     p->qtable, p->eligible);

	stmt_begin(p, &p->oldest, false);
	p->oldest.sql = xasprintf("SELECT min(%s)::text FROM %s t", p->age_q,
				  p->qtable);

	if (p->expired) {
		/* The batches left an index entry to a dead tuple for every
		 * row they changed, and the first scan over them visits each
		 * tuple once: one scan for all of it, not one per number. */
		bool date = strcmp(p->age_type, "date") == 0;
		stmt_begin(p, &p->after, true);
		int late = stmt_param(&p->after, PA_LATE, OID_TIMESTAMPTZ);
		p->after.sql = xasprintf(
			"SELECT count(*) FILTER (WHERE %s AND %s AND %s),"
			" count(*) FILTER (WHERE %s AND NOT (%s)),"
			" count(*) FILTER (WHERE %s AND %s AND NOT (%s)),"
			" count(*) FILTER (WHERE %s AND %s < ($%d::timestamptz)%s),"
			" least(min(%s), (SELECT min(%s) FROM %s t WHERE NOT (%s)))::text"
			" FROM %s t WHERE %s",
			p->eligible, h, f, p->eligible, h, p->eligible, h, f,
			p->eligible, p->age_q, late, date ? "::date" : "",
			p->age_q, p->age_q, p->qtable, p->expired,
			p->qtable, p->expired);
		if (p->citus)
			plan_citus_after_statement(p, &p->after);
	}

	char *actions = db_qualified(conn, cfg->database.schema, "actions");
	struct plan_stmt *a = &p->audit;
	stmt_begin(p, a, false);
	int run = stmt_param(a, PA_RUN, 0), rule = stmt_param(a, PA_RULE, 0),
	    target = stmt_param(a, PA_TARGET, 0),
	    action = stmt_param(a, PA_ACTION, 0),
	    cutoff = stmt_param(a, PA_CUTOFF, 0), rows = stmt_param(a, PA_ROWS, 0),
	    detail = stmt_param(a, PA_DETAIL, 0);
	a->sql = xasprintf(
		"INSERT INTO %s (run_id, rule, target, action, cutoff, rows,"
		" started_at, finished_at, detail)"
		" VALUES ($%d::bigint, $%d, $%d, $%d, $%d::timestamptz,"
		" $%d::bigint, now(), clock_timestamp(), $%d::jsonb)",
		actions, run, rule, target, action, cutoff, rows, detail);
	free(actions);
	free(cond);
}

/* The condition that selects the rows: the age (or an erasure's subject),
 * `where`, and for a de-identify rule "not yet done". */
static bool
build_eligible(PGconn *conn, const struct config *cfg, struct plan *p,
	       const struct catalog_table *t, struct strbuf *set, char **err)
{
	const struct rule *rule = p->rule;
	struct strbuf cond = STRBUF_INIT, todo = STRBUF_INIT;
	bool ok = false;

	if (p->mode == PLAN_ERASURE && p->rows) {
		/* fail closed: the predicate was written for this number */
		if (plan_frag_param(p, PA_SUBJECT_ID, OID_TEXT) !=
		    PLAN_ERASURE_ID_PARAM) {
			*err = xstrdup("could not build the subject condition: "
				       "the subject id is not parameter $2");
			return false;
		}
		sb_printf(&cond, "(%s)", p->rows);
	} else if (p->mode == PLAN_ERASURE) {
		char *subj = plan_column_ref(conn, rule->subject_column);
		if (subj && p->citus) {
			bool built = plan_citus_subject_cond(p, t, subj, &cond,
							     err);
			free(subj);
			if (!built)
				return false;
		} else if (!subj) {
			*err = xstrdup("could not build the subject condition: "
				       "the subject column is not valid in the "
				       "database encoding");
			return false;
		} else {
			sb_printf(&cond, "%s::text = $%d", subj,
				  plan_frag_param(p, PA_SUBJECT_ID, OID_TEXT));
			free(subj);
		}
	} else if (strcmp(p->age_type, "date") == 0) {
		/* A date holds a whole day: it is older than the cutoff only
		 * when the day before the cutoff's date has ended. */
		sb_printf(&cond, "%s < ($1)::date", p->age_q);
		p->expired = xstrdup(cond.s);
	} else {
		sb_printf(&cond, "%s < $1", p->age_q);
		p->expired = xstrdup(cond.s);
	}
	if (rule->where)
		sb_printf(&cond, " AND (%s)", rule->where);
	if (p->action == ACTION_DEIDENTIFY) {
		if (!plan_frag_deidentify(conn, cfg, p, t, set, &todo, err))
			goto out;
		sb_printf(&cond, " AND %s", todo.s);
	}
	p->eligible = sb_take(&cond);
	ok = true;
out:
	sb_free(&cond);
	sb_free(&todo);
	return ok;
}

/* Fail closed: a rule with a subject never runs without its hold
 * condition; "true" only when it has no subject. */
static bool
build_not_held(PGconn *conn, const struct config *cfg, struct plan *p,
	       char **err)
{
	const struct rule *rule = p->rule;
	char *e = NULL;

	if (!rule->subject || !rule->subject_column) {
		p->not_held = xstrdup("true");
		return true;
	}
	char *ref = plan_column_ref(conn, rule->subject_column);
	if (ref && p->citus) {
		bool built = plan_citus_not_held(conn, cfg, p, ref, &e);
		free(ref);
		if (built)
			return true;
		*err = xasprintf("could not build the legal-hold condition: %s", e);
		free(e);
		return false;
	}
	char num[16];
	snprintf(num, sizeof(num), "$%d",
		 plan_frag_param(p, PA_SUBJECT, OID_TEXT));
	p->not_held = ref ? hold_sql_not_held(conn, cfg->database.schema, num,
					      ref, &e)
			  : NULL;
	free(ref);
	if (p->not_held)
		return true;
	*err = xasprintf("could not build the legal-hold condition: %s",
			 e ? e : "the subject column is not valid in the "
				 "database encoding");
	free(e);
	return false;
}

static bool
compile(PGconn *conn, const struct config *cfg, const struct rule *rule,
	enum rule_action action, enum plan_mode mode, const char *subject_id,
	const char *rows, struct plan *p, char **err)
{
	struct catalog_table t;
	struct strbuf set = STRBUF_INIT;
	bool ok = false;

	memset(p, 0, sizeof(*p));
	p->rows = rows;
	p->rule = rule;
	p->action = action;
	p->mode = mode;
	p->subject_id = subject_id;
	(void)plan_frag_param(p, PA_CUTOFF, OID_TIMESTAMPTZ);	/* $1 */

	if (!catalog_table_load(conn, rule->schema, rule->table, &t, err))
		return false;
	if (!t.oid) {
		*err = xstrdup("table does not exist");
		return false;
	}
	p->oid = xstrdup(t.oid);
	p->relkind = t.relkind;
	const struct catalog_column *age = catalog_column(&t, rule->age_column);
	if (!age || !catalog_is_datetime(age)) {
		*err = xasprintf("age column \"%s\" %s", rule->age_column,
				 age ? "is not a date or timestamp"
				     : "does not exist");
		goto out;
	}
	p->age_attnum = age->attnum;
	p->qtable = db_qualified(conn, rule->schema, rule->table);
	p->age_q = plan_column_ref(conn, rule->age_column);
	p->age_type = xstrdup(age->base);
	if (!p->qtable || !p->age_q) {
		*err = xstrdup("an identifier is not valid in the database encoding");
		goto out;
	}
	if (!catalog_has_index_on(conn, &t, age, &p->ordered, err) ||
	    !plan_citus_detect(conn, p, err))
		goto out;
	if (!build_eligible(conn, cfg, p, &t, &set, err) ||
	    !build_not_held(conn, cfg, p, err))
		goto out;
	if (action == ACTION_DELETE) {
		if (!plan_frag_references(conn, p, err))
			goto out;
	} else {
		p->unreferenced = xstrdup("true");
	}
	p->set = sb_take(&set);
	if (!build_targets(conn, cfg, p, err))
		goto out;
	table_statements(conn, cfg, p);
	ok = true;
out:
	sb_free(&set);
	catalog_table_free(&t);
	if (!ok)
		plan_release(p);
	return ok;
}

bool
plan_compile(PGconn *conn, const struct config *cfg, const struct rule *rule,
	     enum rule_action action, enum plan_mode mode,
	     const char *subject_id, struct plan *p, char **err)
{
	return compile(conn, cfg, rule, action, mode, subject_id, NULL, p, err);
}

bool
plan_compile_rows(PGconn *conn, const struct config *cfg,
		  const struct rule *rule, enum rule_action action,
		  const char *subject_id, const char *rows, struct plan *p,
		  char **err)
{
	return compile(conn, cfg, rule, action, PLAN_ERASURE, subject_id, rows,
		       p, err);
}

static void
free_targets(struct plan *p)
{
	for (size_t i = 0; i < p->n_targets; i++) {
		struct plan_target *t = &p->targets[i];
		free(t->name);
		free(t->qname);
		stmt_free(&t->batch);
		stmt_free(&t->bound);
		stmt_free(&t->range);
		stmt_free(&t->range_last);
		free(t->swept);
	}
	free(p->targets);
	p->targets = NULL;
	p->n_targets = 0;
}

bool
plan_reload_targets(PGconn *conn, const struct config *cfg, struct plan *p,
		    char **err)
{
	free_targets(p);
	return build_targets(conn, cfg, p, err);
}

void
plan_release(struct plan *p)
{
	free_targets(p);
	free(p->oid);
	free(p->qtable);
	free(p->age_q);
	free(p->age_type);
	free(p->eligible);
	free(p->expired);
	free(p->not_held);
	free(p->unreferenced);
	free(p->cascades);
	free(p->set);
	plan_citus_free(p->citus);
	stmt_free(&p->count);
	stmt_free(&p->count_upto);
	stmt_free(&p->count_due);
	stmt_free(&p->after);
	stmt_free(&p->oldest);
	stmt_free(&p->audit);
	explicit_bzero(p->ipad, sizeof(p->ipad));
	explicit_bzero(p->opad, sizeof(p->opad));
	memset(p, 0, sizeof(*p));
}

static const char *
arg_value(const struct plan *p, const struct plan_args *a, enum plan_arg arg)
{
	switch (arg) {
	case PA_CUTOFF:
		return a->cutoff;
	case PA_SUBJECT:
		return p->rule->subject;
	case PA_SUBJECT_ID:
		return p->subject_id;
	case PA_IPAD:
		return p->ipad;
	case PA_OPAD:
		return p->opad;
	case PA_HELD:
		return p->citus ? p->citus->held : NULL;
	case PA_LIMIT:
		return a->limit;
	case PA_FROM:
		return a->from;
	case PA_UPTO:
		return a->upto;
	case PA_SWEPT:
		return a->swept;
	case PA_SWEPT_UPTO:
		return a->swept_upto;
	case PA_LATE:
		return a->late;
	case PA_RUN:
		return a->run;
	case PA_RULE:
		return p->rule->name;
	case PA_TARGET:
		return a->target;
	case PA_ACTION:
		/* a range batch is an expiry's; on Citus an erasure's batch
		 * writes its audit row with this statement too */
		return p->mode == PLAN_ERASURE ? "erasure"
					       : rule_action_name(p->action);
	case PA_ROWS:
		return a->rows;
	case PA_DETAIL:
		return a->detail;
	}
	return NULL;
}

static PGresult *
exec_args(PGconn *conn, const struct plan *p, const char *sql, int n,
	  const Oid *types, const enum plan_arg *args,
	  const struct plan_args *a, enum db_errclass *class, char **err)
{
	const char *values[PLAN_MAX_PARAMS];

	for (int i = 0; i < n; i++)
		if (args[i] == PA_HELD &&
		    !plan_citus_refresh_held(conn, p, class, err))
			return NULL;	/* holds unknown: nothing runs */
	for (int i = 0; i < n; i++)
		values[i] = arg_value(p, a, args[i]);
	return db_exec_params(conn, sql, n, types, values, class, err);
}

PGresult *
plan_exec(PGconn *conn, const struct plan *p, const struct plan_stmt *st,
	  const struct plan_args *a, enum db_errclass *class, char **err)
{
	return exec_args(conn, p, st->sql, st->nparams, st->types, st->args, a,
			 class, err);
}

bool
plan_send(PGconn *conn, const struct plan *p, const struct plan_stmt *st,
	  const struct plan_args *a)
{
	const char *values[PLAN_MAX_PARAMS];

	for (int i = 0; i < st->nparams; i++) {
		if (st->args[i] == PA_HELD)
			return false;
		values[i] = arg_value(p, a, st->args[i]);
	}
	return PQsendQueryParams(conn, st->sql, st->nparams, st->types, values,
				 NULL, NULL, 0) == 1;
}

PGresult *
plan_exec_sql(PGconn *conn, const struct plan *p, const char *sql,
	      const char *cutoff, char **err)
{
	struct plan_args a = { .cutoff = cutoff };
	return exec_args(conn, p, sql, p->nfrag, p->frag_types, p->frag_args,
			 &a, NULL, err);
}
