#include "batch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "hold.h"
#include "log.h"
#include "strbuf.h"

/* PostgreSQL type oids of the parameters (pg_type.h is server-side). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_TIMESTAMPTZ 1184
#define OID_JSONB 3802

/* Tables below this many rows are counted exactly for the guard; above it
 * the planner's estimate is close enough and costs nothing. */
#define EXACT_COUNT_BELOW 100000

static char *
column_ref(PGconn *conn, const char *name)
{
	char *q = db_ident(conn, name);
	if (!q)
		return NULL;
	char *r = xasprintf("t.%s", q);
	free(q);
	return r;
}

/* SET list and the "not yet done" condition of a de-identify rule. */
static bool
build_deidentify(PGconn *conn, const struct config *cfg, struct rule_sql *rs,
		 const struct catalog_table *t, struct strbuf *set,
		 struct strbuf *todo, char **err)
{
	const struct rule *r = rs->rule;
	char *schema_q = db_ident(conn, cfg->database.schema);
	bool uses_hash = false;
	int ipad = 0, opad = 0;
	bool ok = true;

	for (size_t i = 0; i < r->n_deidentify; i++)
		if (r->deidentify[i].method == METHOD_HASH)
			uses_hash = true;
	if (uses_hash) {
		if (!cfg->pseudonym_key.data) {
			*err = xstrdup("method \"hash\" needs the pseudonym key, "
				       "and none was loaded");
			free(schema_q);
			return false;
		}
		deid_hmac_pads(cfg->pseudonym_key.data, cfg->pseudonym_key.len,
			       rs->ipad, rs->opad);
		ipad = ++rs->nparams;
		rs->types[ipad - 1] = OID_BYTEA;
		rs->values[ipad - 1] = rs->ipad;
		opad = ++rs->nparams;
		rs->types[opad - 1] = OID_BYTEA;
		rs->values[opad - 1] = rs->opad;
	}

	/* Done: the marker is set, or (without "hash", whose result cannot
	 * be recognised) every column already equals its method's result. */
	struct strbuf same = STRBUF_INIT;
	for (size_t i = 0; i < r->n_deidentify && ok; i++) {
		const struct column_method *cm = &r->deidentify[i];
		const struct catalog_column *col = catalog_column(t, cm->column);
		if (!col) {
			*err = xasprintf("column \"%s\" does not exist", cm->column);
			ok = false;
			break;
		}
		char *ref = column_ref(conn, cm->column);
		char *lhs = db_ident(conn, cm->column);
		char *expr = ref && lhs && schema_q
			? deid_expr(cm->method, ref, col, schema_q, ipad, opad)
			: NULL;
		if (!expr) {
			/* fail closed: no half-built SET list */
			*err = xasprintf("could not build the de-identify "
					 "expression for column \"%s\"",
					 cm->column);
			free(ref);
			free(lhs);
			ok = false;
			break;
		}
		sb_printf(set, "%s%s = %s", set->len ? ", " : "", lhs, expr);
		sb_printf(&same, "%s%s IS NOT DISTINCT FROM %s",
			  same.len ? " AND " : "", ref, expr);
		free(ref);
		free(lhs);
		free(expr);
	}
	if (ok && r->marker_column) {
		const struct catalog_column *m = catalog_column(t, r->marker_column);
		if (!m) {
			*err = xasprintf("marker column \"%s\" does not exist",
					 r->marker_column);
			ok = false;
		} else {
			char *lhs = db_ident(conn, r->marker_column);
			char *ref = column_ref(conn, r->marker_column);
			bool is_bool = strcmp(m->base, "bool") == 0;
			if (!lhs || !ref) {
				*err = xasprintf("could not quote the marker "
						 "column \"%s\"", r->marker_column);
				free(lhs);
				free(ref);
				sb_free(&same);
				free(schema_q);
				return false;
			}
			sb_printf(set, ", %s = %s", lhs,
				  is_bool ? "true"
				  : strcmp(m->base, "date") == 0 ? "current_date"
								 : "now()");
			if (uses_hash)
				sb_printf(todo, "%s IS %s", ref,
					  is_bool ? "NOT TRUE" : "NULL");
			else
				sb_printf(todo, "%s IS %s AND NOT (%s)", ref,
					  is_bool ? "NOT TRUE" : "NULL", same.s);
			free(lhs);
			free(ref);
		}
	} else if (ok) {
		sb_printf(todo, "NOT (%s)", same.s);
	}
	sb_free(&same);
	free(schema_q);
	return ok;
}

static void
free_targets(struct rule_sql *rs)
{
	for (size_t i = 0; i < rs->n_targets; i++) {
		free(rs->targets[i].name);
		free(rs->targets[i].qname);
		free(rs->targets[i].stmt);
		free(rs->targets[i].bound);
		free(rs->targets[i].range);
		free(rs->targets[i].range_last);
		free(rs->targets[i].swept);
	}
	free(rs->targets);
	rs->targets = NULL;
	rs->n_targets = 0;
}

static bool
load_targets(PGconn *conn, struct rule_sql *rs, char **err)
{
	if (rs->relkind != 'p') {
		rs->targets = xcalloc(1, sizeof(*rs->targets));
		rs->n_targets = 1;
		rs->targets[0].name = xasprintf("%s.%s", rs->rule->schema,
						rs->rule->table);
		rs->targets[0].qname = xstrdup(rs->qtable);
		return true;
	}
	/* ctid is only unique within one relation: batches work on each
	 * leaf partition, oldest bound first. */
	const char *p[] = { rs->oid };
	PGresult *res = db_query(conn,
		"SELECT n.nspname, c.relname"
		" FROM pg_partition_tree($1::oid::regclass) pt"
		" JOIN pg_class c ON c.oid = pt.relid"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE pt.isleaf"
		" ORDER BY pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',"
		"   pg_get_expr(c.relpartbound, c.oid), c.relname", 1, p, err);
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
	}
	PQclear(res);
	return true;
}

/* The conditions every pick re-checks, joined: due, not held, not still
 * referenced. */
static char *
all_conditions(const struct rule_sql *rs)
{
	return xasprintf("%s AND %s AND %s", rs->eligible,
			 rs->not_held ? rs->not_held : "true",
			 rs->unreferenced ? rs->unreferenced : "true");
}

static char *
batch_statement(const struct config *cfg, PGconn *conn, struct rule_sql *rs,
		const char *target_q, const char *set)
{
	struct strbuf b = STRBUF_INIT;
	char *actions = db_qualified(conn, cfg->database.schema, "actions");
	char *cond = all_conditions(rs);
	/* expiry walks the age index from the oldest row, resuming where the
	 * last batch ended so dead index entries are not scanned again; an
	 * erasure has few rows, some without an age at all */
	bool walk = rs->mode == BATCH_EXPIRY;

	sb_printf(&b,
		"WITH picked AS MATERIALIZED ("
		"SELECT t.ctid AS tid, %s AS age FROM %s t WHERE %s",
		rs->age_q, target_q, cond);
	if (walk)
		sb_printf(&b, " AND %s >= $%d::%s", rs->age_q, P_FROM,
			  rs->age_type);
	if (walk && rs->ordered)
		sb_printf(&b, " ORDER BY %s", rs->age_q);
	sb_printf(&b, " LIMIT $%d FOR UPDATE OF t SKIP LOCKED), ", P_LIMIT);
	if (rs->action == ACTION_DELETE)
		sb_printf(&b, "changed AS (DELETE FROM %s t", target_q);
	else
		sb_printf(&b, "changed AS (UPDATE %s t SET %s", target_q, set);
	/* the same conditions again: a row changed since it was picked is
	 * left alone */
	sb_printf(&b,
		" WHERE t.ctid = ANY (ARRAY(SELECT tid FROM picked))"
		" AND %s RETURNING 1), "
		"audit AS (INSERT INTO %s (run_id, rule, target, action, cutoff,"
		" rows, started_at, finished_at, detail)"
		" SELECT $%d, $%d, $%d, '%s', $%d, n, statement_timestamp(),"
		" clock_timestamp(), $%d FROM (SELECT count(*) AS n FROM changed) c"
		" WHERE n > 0) "
		"SELECT (SELECT count(*) FROM picked), (SELECT count(*) FROM changed),"
		" (SELECT max(age)::text FROM picked)",
		cond, actions, P_RUN, P_RULE, P_TARGET,
		rs->mode == BATCH_ERASURE ? "erasure" : rule_action_name(rs->action),
		P_CUTOFF, P_DETAIL);
	free(cond);
	free(actions);
	return sb_take(&b);
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
static char *
bound_statement(struct rule_sql *rs, const char *target_q)
{
	char *cond = all_conditions(rs);
	const char *age = rs->age_q;
	/* the first due age and the LIMIT-th: OFFSET walks the index like the
	 * aggregate would, without computing anything per row */
	char *pick = xasprintf("SELECT %s FROM %s t WHERE %s AND %s >= $%d::%s"
			       " ORDER BY %s", age, target_q, cond, age, P_FROM,
			       rs->age_type, age);
	/* The third column sweeps the range the last batch changed: its
	 * index entries now point at dead rows, and each scan that meets one
	 * visits the heap until a scan finds the row dead and marks the entry.
	 * Here, while those pages are still in memory, that costs a fraction
	 * of what it costs the count after the run, which would otherwise be
	 * the first to visit them all. P_UPTO is free in this statement. */
	char *sql = xasprintf("SELECT (%s LIMIT 1)::text,"
			      " (%s OFFSET $%d - 1 LIMIT 1)::text,"
			      " (SELECT count(*) FROM %s t WHERE %s >= $%d::%s"
			      " AND %s < $%d::%s)", pick, pick, P_LIMIT,
			      target_q, age, P_UPTO, rs->age_type, age, P_FROM,
			      rs->age_type);
	free(pick);
	free(cond);
	return sql;
}

/* The change of one range: up to $P_UPTO (not included), or when LAST to
 * the end of what is due. */
static char *
range_statement(struct rule_sql *rs, const char *target_q, const char *set,
		bool last)
{
	struct strbuf b = STRBUF_INIT;
	char *cond = all_conditions(rs);
	const char *age = rs->age_q;

	if (rs->action == ACTION_DELETE)
		sb_printf(&b, "DELETE FROM %s t", target_q);
	else
		sb_printf(&b, "UPDATE %s t SET %s", target_q, set);
	sb_printf(&b, " WHERE %s >= $%d::%s", age, P_FROM, rs->age_type);
	if (!last)
		sb_printf(&b, " AND %s < $%d::%s", age, P_UPTO, rs->age_type);
	sb_printf(&b, " AND %s", cond);
	free(cond);
	return sb_take(&b);
}

/*
 * Foreign keys that point at the rule's table. A non-cascading one keeps a
 * referenced row until the rows pointing at it are gone (child rules run
 * first), so the batch skips such rows instead of failing on them; cascades
 * are recorded so the audit trail names the tables they reach.
 */
static bool
load_references(PGconn *conn, struct rule_sql *rs, char **err)
{
	const char *p[] = { rs->oid };
	PGresult *res = db_query(conn,
		"SELECT c.oid, n.nspname, r.relname, c.confdeltype,"
		"  ca.attname, pa.attname, c.conrelid = c.confrelid"
		" FROM pg_constraint c"
		" JOIN pg_class r ON r.oid = c.conrelid"
		" JOIN pg_namespace n ON n.oid = r.relnamespace"
		" CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(ck, pk)"
		" JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck"
		" JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
		" WHERE c.contype = 'f' AND c.confrelid = $1::oid AND c.conparentid = 0"
		" ORDER BY c.oid", 1, p, err);
	if (!res)
		return false;

	struct strbuf cond = STRBUF_INIT, casc = STRBUF_INIT;
	const char *prev = "";
	bool open = false;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *conoid = PQgetvalue(res, i, 0);
		char type = PQgetvalue(res, i, 3)[0];
		bool first = strcmp(conoid, prev) != 0;
		prev = conoid;
		if (type == 'c') {
			if (first) {
				sb_add(&casc, casc.len ? ", " : "[");
				char *name = xasprintf("%s.%s", PQgetvalue(res, i, 1),
						       PQgetvalue(res, i, 2));
				sb_json_str(&casc, name);
				free(name);
			}
			continue;
		}
		if (type == 'n' || type == 'd')
			continue;	/* SET NULL / DEFAULT: never blocks */
		if (first) {
			if (open)
				sb_add(&cond, ")");
			char *child = db_qualified(conn, PQgetvalue(res, i, 1),
						   PQgetvalue(res, i, 2));
			sb_printf(&cond, "%sNOT EXISTS (SELECT 1 FROM %s c WHERE %s",
				  cond.len ? " AND " : "", child,
				  PQgetvalue(res, i, 6)[0] == 't'
					  ? "c.ctid <> t.ctid" : "true");
			free(child);
			open = true;
		}
		char *cc = db_ident(conn, PQgetvalue(res, i, 4));
		char *pc = db_ident(conn, PQgetvalue(res, i, 5));
		sb_printf(&cond, " AND c.%s = t.%s", cc, pc);
		free(cc);
		free(pc);
	}
	if (open)
		sb_add(&cond, ")");
	if (casc.len)
		sb_add(&casc, "]");
	PQclear(res);
	rs->unreferenced = cond.len ? sb_take(&cond) : NULL;
	rs->cascades = casc.len ? sb_take(&casc) : NULL;
	sb_free(&cond);
	sb_free(&casc);
	return true;
}

static void
add_param(struct rule_sql *rs, Oid type, const char *value, char num[16])
{
	int p = ++rs->nparams;
	rs->types[p - 1] = type;
	rs->values[p - 1] = value;
	snprintf(num, 16, "$%d", p);
}

static bool
build_statements(PGconn *conn, const struct config *cfg, struct rule_sql *rs,
		 const char *set, char **err)
{
	if (!load_targets(conn, rs, err))
		return false;
	for (size_t i = 0; i < rs->n_targets; i++) {
		rs->targets[i].stmt = batch_statement(cfg, conn, rs,
						      rs->targets[i].qname, set);
		if (rs->mode == BATCH_EXPIRY && rs->ordered) {
			const char *q = rs->targets[i].qname;
			rs->targets[i].bound = bound_statement(rs, q);
			rs->targets[i].range = range_statement(rs, q, set, false);
			rs->targets[i].range_last = range_statement(rs, q, set,
								    true);
		}
	}
	return true;
}

bool
batch_prepare(PGconn *conn, const struct config *cfg, const struct rule *rule,
	      enum rule_action action, enum batch_mode mode,
	      const char *subject_id, struct rule_sql *rs, char **err)
{
	struct catalog_table t;
	struct strbuf set = STRBUF_INIT, todo = STRBUF_INIT, cond = STRBUF_INIT;
	char num[16];
	bool ok = false;

	memset(rs, 0, sizeof(*rs));
	rs->rule = rule;
	rs->action = action;
	rs->mode = mode;
	rs->nparams = P_FIXED;
	rs->types[P_CUTOFF - 1] = OID_TIMESTAMPTZ;
	rs->types[P_LIMIT - 1] = OID_INT8;
	rs->types[P_FROM - 1] = OID_TEXT;
	rs->types[P_RUN - 1] = OID_INT8;
	rs->types[P_RULE - 1] = OID_TEXT;
	rs->types[P_TARGET - 1] = OID_TEXT;
	rs->types[P_DETAIL - 1] = OID_JSONB;
	rs->types[P_UPTO - 1] = OID_TEXT;

	if (!catalog_table_load(conn, rule->schema, rule->table, &t, err))
		return false;
	if (!t.oid) {
		*err = xstrdup("table does not exist");
		return false;
	}
	rs->oid = xstrdup(t.oid);
	rs->relkind = t.relkind;
	const struct catalog_column *age = catalog_column(&t, rule->age_column);
	if (!age || !catalog_is_datetime(age)) {
		*err = xasprintf("age column \"%s\" %s", rule->age_column,
				 age ? "is not a date or timestamp"
				     : "does not exist");
		goto out;
	}
	rs->age_attnum = age->attnum;
	rs->qtable = db_qualified(conn, rule->schema, rule->table);
	rs->age_q = column_ref(conn, rule->age_column);
	rs->age_type = xstrdup(age->base);
	if (!rs->qtable || !rs->age_q) {
		*err = xstrdup("an identifier is not valid in the database encoding");
		goto out;
	}
	if (!catalog_has_index_on(conn, &t, age, &rs->ordered, err))
		goto out;

	if (mode == BATCH_ERASURE) {
		char *subj = column_ref(conn, rule->subject_column);
		if (!subj) {
			*err = xstrdup("could not build the subject condition: "
				       "the subject column is not valid in the "
				       "database encoding");
			goto out;
		}
		add_param(rs, OID_TEXT, subject_id, num);
		sb_printf(&cond, "%s::text = %s", subj, num);
		free(subj);
	} else if (strcmp(rs->age_type, "date") == 0) {
		/* A date holds a whole day: it is older than the cutoff only
		 * when the day before the cutoff's date has ended. */
		sb_printf(&cond, "%s < ($%d)::date", rs->age_q, P_CUTOFF);
		rs->expired = xstrdup(cond.s);
	} else {
		sb_printf(&cond, "%s < $%d", rs->age_q, P_CUTOFF);
		rs->expired = xstrdup(cond.s);
	}
	if (rule->where)
		sb_printf(&cond, " AND (%s)", rule->where);
	if (action == ACTION_DEIDENTIFY) {
		if (!build_deidentify(conn, cfg, rs, &t, &set, &todo, err))
			goto out;
		sb_printf(&cond, " AND %s", todo.s);
	}
	rs->eligible = sb_take(&cond);

	/* Fail closed: a rule with a subject never runs without its hold
	 * condition (all_conditions reads a NULL as "no subject"). */
	if (rule->subject && rule->subject_column) {
		char *ref = column_ref(conn, rule->subject_column);
		char *e = NULL;
		add_param(rs, OID_TEXT, rule->subject, num);
		rs->not_held = ref ? hold_sql_not_held(conn, cfg->database.schema,
						       num, ref, &e)
				   : NULL;
		if (!rs->not_held) {
			if (!e)
				e = db_error(conn, NULL);
			*err = xasprintf("could not build the legal-hold "
					 "condition: %s", e);
			free(e);
			free(ref);
			goto out;
		}
		free(ref);
	}
	if (action == ACTION_DELETE && !load_references(conn, rs, err))
		goto out;
	if (!build_statements(conn, cfg, rs, set.s, err))
		goto out;
	rs->set = sb_take(&set);
	char *actions = db_qualified(conn, cfg->database.schema, "actions");
	rs->audit = xasprintf(
		"INSERT INTO %s (run_id, rule, target, action, cutoff, rows,"
		" started_at, finished_at, detail)"
		" VALUES ($1::bigint, $2, $3, $4, $5::timestamptz, $6::bigint,"
		" now(), clock_timestamp(), $7::jsonb)", actions);
	free(actions);
	ok = true;
out:
	sb_free(&set);
	sb_free(&todo);
	sb_free(&cond);
	catalog_table_free(&t);
	if (!ok)
		batch_release(rs);
	return ok;
}

bool
batch_reload_targets(PGconn *conn, const struct config *cfg,
		     struct rule_sql *rs, char **err)
{
	free_targets(rs);
	return build_statements(conn, cfg, rs, rs->set, err);
}

void
batch_release(struct rule_sql *rs)
{
	free_targets(rs);
	free(rs->oid);
	free(rs->qtable);
	free(rs->age_q);
	free(rs->age_type);
	free(rs->eligible);
	free(rs->expired);
	free(rs->not_held);
	free(rs->unreferenced);
	free(rs->cascades);
	free(rs->set);
	free(rs->audit);
	explicit_bzero(rs->ipad, sizeof(rs->ipad));
	explicit_bzero(rs->opad, sizeof(rs->opad));
	memset(rs, 0, sizeof(*rs));
}

PGresult *
batch_exec(PGconn *conn, struct rule_sql *rs, const char *sql, char **err)
{
	return db_exec_params(conn, sql, rs->nparams, rs->types, rs->values,
			      NULL, err);
}

static char *
dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
					  : xstrdup(PQgetvalue(res, row, col));
}

void
batch_set_fixed(struct rule_sql *rs, const char *cutoff)
{
	rs->values[P_CUTOFF - 1] = cutoff;
	for (int i = P_LIMIT; i <= P_FIXED; i++)
		rs->values[i - 1] = NULL;
}

bool
batch_oldest(PGconn *conn, struct rule_sql *rs, char **oldest, char **err)
{
	char *sql = xasprintf("SELECT min(%s)::text FROM %s t", rs->age_q,
			      rs->qtable);
	batch_set_fixed(rs, NULL);
	PGresult *res = batch_exec(conn, rs, sql, err);
	free(sql);
	if (!res)
		return false;
	*oldest = dup_or_null(res, 0, 0);
	PQclear(res);
	return true;
}

bool
batch_count(PGconn *conn, struct rule_sql *rs, const char *cutoff,
	    struct batch_counts *out, char **err)
{
	const char *h = rs->not_held ? rs->not_held : "true";
	const char *f = rs->unreferenced ? rs->unreferenced : "true";

	memset(out, 0, sizeof(*out));
	batch_set_fixed(rs, cutoff);
	char *sql = xasprintf(
		"SELECT count(*) FILTER (WHERE %s AND %s),"
		" count(*) FILTER (WHERE NOT (%s)),"
		" count(*) FILTER (WHERE %s AND NOT (%s))"
		" FROM %s t WHERE %s", h, f, h, h, f, rs->qtable, rs->eligible);
	PGresult *res = batch_exec(conn, rs, sql, err);
	free(sql);
	if (!res)
		return false;
	out->eligible = atoll(PQgetvalue(res, 0, 0));
	out->held = atoll(PQgetvalue(res, 0, 1));
	out->blocked = atoll(PQgetvalue(res, 0, 2));
	PQclear(res);
	return true;
}

bool
batch_after(PGconn *conn, struct rule_sql *rs, const char *cutoff,
	    const char *late, struct batch_after *out, char **err)
{
	const char *h = rs->not_held ? rs->not_held : "true";
	const char *f = rs->unreferenced ? rs->unreferenced : "true";
	bool date = strcmp(rs->age_type, "date") == 0;

	assert(rs->expired);
	memset(out, 0, sizeof(*out));
	/* The batches left an index entry to a dead tuple for every row they
	 * changed, and the first scan over them visits each tuple once: one
	 * scan for all of it, not one per number. The late cutoff travels in
	 * the keyset parameter, which no other part of this statement uses. */
	char *sql = xasprintf(
		"SELECT count(*) FILTER (WHERE %s AND %s AND %s),"
		" count(*) FILTER (WHERE %s AND NOT (%s)),"
		" count(*) FILTER (WHERE %s AND %s AND NOT (%s)),"
		" count(*) FILTER (WHERE %s AND %s < ($%d::timestamptz)%s),"
		" least(min(%s), (SELECT min(%s) FROM %s t WHERE NOT (%s)))::text"
		" FROM %s t WHERE %s",
		rs->eligible, h, f, rs->eligible, h, rs->eligible, h, f,
		rs->eligible, rs->age_q, P_FROM, date ? "::date" : "",
		rs->age_q, rs->age_q, rs->qtable, rs->expired,
		rs->qtable, rs->expired);
	batch_set_fixed(rs, cutoff);
	rs->values[P_FROM - 1] = late;
	PGresult *res = batch_exec(conn, rs, sql, err);
	rs->values[P_FROM - 1] = NULL;
	free(sql);
	if (!res)
		return false;
	out->counts.eligible = atoll(PQgetvalue(res, 0, 0));
	out->counts.held = atoll(PQgetvalue(res, 0, 1));
	out->counts.blocked = atoll(PQgetvalue(res, 0, 2));
	out->overdue = atoll(PQgetvalue(res, 0, 3));
	out->oldest = dup_or_null(res, 0, 4);
	PQclear(res);
	return true;
}

bool
batch_table_rows(PGconn *conn, struct rule_sql *rs, long long *rows, char **err)
{
	/* reltuples: -1 when never analysed; partitioned parents have none.
	 * pg_partition_tree() is empty for a table that is not partitioned,
	 * so the table itself is its one leaf then. */
	const char *p[] = { rs->oid };
	PGresult *res = db_query(conn,
		"SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::bigint,"
		" coalesce(bool_or(c.reltuples < 0), true)"
		" FROM pg_class c WHERE c.oid IN ("
		"  SELECT pt.relid FROM pg_partition_tree($1::oid::regclass) pt"
		"  WHERE pt.isleaf"
		"  UNION ALL SELECT $1::oid WHERE NOT EXISTS ("
		"   SELECT 1 FROM pg_partition_tree($1::oid::regclass)))", 1, p, err);
	if (!res)
		return false;
	*rows = atoll(PQgetvalue(res, 0, 0));
	bool unknown = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (unknown || *rows < EXACT_COUNT_BELOW) {
		char *sql = xasprintf("SELECT count(*) FROM %s", rs->qtable);
		res = db_query(conn, sql, 0, NULL, err);
		free(sql);
		if (!res)
			return false;
		*rows = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return true;
}

bool
batch_count_due(PGconn *conn, struct rule_sql *rs, const char *cutoff,
		long long *due, char **err)
{
	batch_set_fixed(rs, cutoff);
	char *sql = xasprintf("SELECT count(*) FROM %s t WHERE %s", rs->qtable,
			      rs->eligible);
	PGresult *res = batch_exec(conn, rs, sql, err);
	free(sql);
	if (!res)
		return false;
	*due = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

static bool
run_batch(PGconn *conn, struct rule_sql *rs, size_t target, const char *sql,
	  const char *cutoff, long long limit, const char *from,
	  long long run_id, const char *detail_json,
	  struct batch_outcome *out, char **err)
{
	char lim[32], run[32];

	memset(out, 0, sizeof(*out));
	snprintf(lim, sizeof(lim), "%lld", limit);
	snprintf(run, sizeof(run), "%lld", run_id);
	batch_set_fixed(rs, cutoff);
	rs->values[P_LIMIT - 1] = lim;
	rs->values[P_FROM - 1] = from;
	rs->values[P_RUN - 1] = run;
	rs->values[P_RULE - 1] = rs->rule->name;
	rs->values[P_TARGET - 1] = rs->targets[target].name;
	rs->values[P_DETAIL - 1] = detail_json;

	PGresult *res = db_exec_params(conn, sql, rs->nparams, rs->types,
				       rs->values, &out->errclass, err);
	if (!res)
		return false;
	out->picked = atoll(PQgetvalue(res, 0, 0));
	out->changed = atoll(PQgetvalue(res, 0, 1));
	out->last_age = dup_or_null(res, 0, 2);
	out->last = out->picked < limit;
	PQclear(res);
	return true;
}

bool
batch_run(PGconn *conn, struct rule_sql *rs, size_t target, const char *cutoff,
	  long long limit, const char *from, long long run_id,
	  const char *detail_json, struct batch_outcome *out, char **err)
{
	return run_batch(conn, rs, target, rs->targets[target].stmt, cutoff,
			 limit, from, run_id, detail_json, out, err);
}

/* Run SQL with the rule's parameters, as batch_exec, and note the
 * class of a failure in OUT. */
static PGresult *
batch_step(PGconn *conn, struct rule_sql *rs, const char *sql, int nparams,
	   const char *const *values, struct batch_outcome *out, char **err)
{
	return nparams < 0
		? db_exec_params(conn, sql, rs->nparams, rs->types, rs->values,
				 &out->errclass, err)
		: db_exec_params(conn, sql, nparams, NULL, values,
				 &out->errclass, err);
}

static bool
batch_cmd(PGconn *conn, struct rule_sql *rs, const char *sql,
	  struct batch_outcome *out, char **err)
{
	PGresult *res = batch_step(conn, rs, sql, 0, NULL, out, err);
	PQclear(res);
	return res != NULL;
}

bool
batch_run_range(PGconn *conn, struct rule_sql *rs, size_t target,
		const char *cutoff, long long limit, const char *from,
		long long run_id, const char *detail_json,
		struct batch_outcome *out, char **err)
{
	struct batch_target *bt = &rs->targets[target];
	char lim[32], run[32], rows[32];

	assert(bt->bound);
	memset(out, 0, sizeof(*out));
	snprintf(lim, sizeof(lim), "%lld", limit);
	batch_set_fixed(rs, cutoff);
	rs->values[P_LIMIT - 1] = lim;
	rs->values[P_FROM - 1] = from;
	rs->values[P_UPTO - 1] = bt->swept;
	PGresult *res = batch_step(conn, rs, bt->bound, -1, NULL, out, err);
	rs->values[P_UPTO - 1] = NULL;
	if (!res)
		return false;
	free(bt->swept);
	bt->swept = xstrdup(from);
	bool none = PQgetisnull(res, 0, 0);
	out->last = PQgetisnull(res, 0, 1);
	out->last_age = dup_or_null(res, 0, 1);
	out->tied = !out->last && strcmp(PQgetvalue(res, 0, 0),
					 PQgetvalue(res, 0, 1)) == 0;
	PQclear(res);
	if (none || out->tied) {
		out->picked = none ? 0 : limit;
		return true;
	}

	rs->values[P_UPTO - 1] = out->last_age;
	if (!batch_cmd(conn, rs, "BEGIN", out, err))
		goto fail;
	res = batch_step(conn, rs, out->last ? bt->range_last : bt->range, -1,
			 NULL, out, err);
	if (!res) {
		char *e = NULL;
		if (!db_exec(conn, "ROLLBACK", &e))
			free(e);
		goto fail;
	}
	out->changed = atoll(PQcmdTuples(res));
	PQclear(res);
	out->picked = out->last ? out->changed : limit;
	if (out->changed > 0) {
		snprintf(run, sizeof(run), "%lld", run_id);
		snprintf(rows, sizeof(rows), "%lld", out->changed);
		const char *p[] = { run, rs->rule->name, bt->name,
				    rule_action_name(rs->action), cutoff, rows,
				    detail_json };
		res = batch_step(conn, rs, rs->audit, 7, p, out, err);
		if (!res) {
			char *e = NULL;
			if (!db_exec(conn, "ROLLBACK", &e))
				free(e);
			goto fail;
		}
		PQclear(res);
	}
	/* a failed COMMIT has rolled back already */
	if (batch_cmd(conn, rs, "COMMIT", out, err)) {
		rs->values[P_UPTO - 1] = NULL;
		return true;
	}
fail:
	rs->values[P_UPTO - 1] = NULL;
	out->changed = 0;
	free(out->last_age);
	out->last_age = NULL;
	return false;
}

bool
batch_count_upto(PGconn *conn, struct rule_sql *rs, const char *cutoff,
		 long long at_most, long long *n, char **err)
{
	char lim[32];
	char *cond = all_conditions(rs);
	/* the LIMIT goes in as text: the rule's own parameters are all set */
	snprintf(lim, sizeof(lim), "%lld", at_most > 0 ? at_most : 1);
	/* along the age index: with statistics from before the last big
	 * delete, the planner would rather scan the table for so few rows */
	char *order = rs->ordered ? xasprintf(" ORDER BY %s", rs->age_q)
				  : xstrdup("");
	char *sql = xasprintf("SELECT count(*) FROM (SELECT 1 FROM %s t WHERE %s"
			      "%s LIMIT %s) s", rs->qtable, cond, order, lim);
	free(order);
	free(cond);
	batch_set_fixed(rs, cutoff);
	PGresult *res = batch_exec(conn, rs, sql, err);
	free(sql);
	if (!res)
		return false;
	*n = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}
