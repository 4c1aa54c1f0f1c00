/*
 * explain: counts why old rows remain (explain_load) and says it in words
 * (explain_lines). See explain.h.
 */
#include "explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "engine.h"
#include "plan.h"
#include "strbuf.h"

/* Whether the outcome the run recorded (as the engine names it) is O. */
static bool
is(const char *outcome, enum rule_outcome o)
{
	return strcmp(outcome, rule_outcome_name(o)) == 0;
}

void
explain_free(struct report_explain *e)
{
	free(e->error);
	free(e->where);
	free(e->hold_ids);
	for (size_t i = 0; i < e->n_refs; i++)
		free(e->refs[i].table);
	free(e->refs);
	memset(e, 0, sizeof(*e));
}

static void
add_ref(struct report_explain *e, const char *table, long long rows)
{
	for (size_t i = 0; i < e->n_refs; i++)
		if (strcmp(e->refs[i].table, table) == 0) {
			e->refs[i].rows += rows;
			return;
		}
	e->refs = xreallocarray(e->refs, e->n_refs + 1, sizeof(*e->refs));
	e->refs[e->n_refs].table = xstrdup(table);
	e->refs[e->n_refs++].rows = rows;
}

/*
 * Per table whose non-cascading foreign key points at the rule's table:
 * how many of the blocked rows (BLOCKED, a condition on alias t) it still
 * refers to. The foreign keys of plan_frag.c's unreferenced fragment,
 * counted one by one so the report can name them.
 */
static bool
count_refs(PGconn *conn, const struct plan *rs, const char *cutoff,
	   const char *blocked,
	   struct report_explain *e, char **err)
{
	PGresult *res = catalog_referencing_keys(conn, rs->oid, err);
	if (!res)
		return false;

	struct strbuf sql = STRBUF_INIT;
	char **names = NULL;
	size_t n = 0;
	const char *prev = "";
	bool ok = true;

	sb_add(&sql, "SELECT ");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *conoid = PQgetvalue(res, i, 0);
		/* CASCADE, SET NULL and SET DEFAULT never block a row */
		char deltype = PQgetvalue(res, i, 3)[0];
		if (deltype == 'c' || deltype == 'n' || deltype == 'd')
			continue;
		if (strcmp(conoid, prev) != 0) {
			char *child = db_qualified(conn, PQgetvalue(res, i, 1),
						   PQgetvalue(res, i, 2));
			if (!child) {
				*err = xstrdup("a table name is not valid in "
					       "the database encoding");
				ok = false;
				break;
			}
			sb_printf(&sql, "%scount(*) FILTER (WHERE EXISTS (SELECT 1"
				  " FROM %s c WHERE %s", n ? "), " : "", child,
				  PQgetvalue(res, i, 6)[0] == 't'
					  ? "c.ctid <> t.ctid" : "true");
			free(child);
			names = xreallocarray(names, n + 1, sizeof(*names));
			names[n++] = xasprintf("%s.%s", PQgetvalue(res, i, 1),
					       PQgetvalue(res, i, 2));
			prev = conoid;
		}
		char *cc = db_ident(conn, PQgetvalue(res, i, 4));
		char *pc = db_ident(conn, PQgetvalue(res, i, 5));
		if (!cc || !pc) {
			free(cc);
			free(pc);
			*err = xstrdup("a column name is not valid in the "
				       "database encoding");
			ok = false;
			break;
		}
		sb_printf(&sql, " AND c.%s = t.%s", cc, pc);
		free(cc);
		free(pc);
	}
	PQclear(res);
	if (ok && n > 0) {
		sb_printf(&sql, ")) FROM %s t WHERE %s", rs->qtable, blocked);
		res = plan_exec_sql(conn, rs, sql.s, cutoff, err);
		if (!res) {
			ok = false;
		} else {
			for (size_t i = 0; i < n; i++) {
				long long rows = atoll(PQgetvalue(res, 0, (int)i));
				if (rows > 0)
					add_ref(e, names[i], rows);
			}
			PQclear(res);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	sb_free(&sql);
	return ok;
}

/* The ids of the active holds that keep rows of the rule (HELD, a
 * condition on alias t), as "3, 7", at most EXPLAIN_MAX_IDS of them. */
static bool
hold_ids(PGconn *conn, const struct config *cfg, const struct plan *rs,
	 const char *cutoff, const char *held, struct report_explain *e,
	 char **err)
{
	const struct rule *rule = rs->rule;
	char *holds = db_qualified(conn, cfg->database.schema, "legal_holds");
	char *subj = db_ident(conn, rule->subject_column);
	int k = 0;

	/* the rule's subject is one of the fragments' parameters already */
	for (int i = 0; i < rs->nfrag; i++)
		if (rs->frag_args[i] == PA_SUBJECT)
			k = i + 1;
	if (!holds || !subj || k == 0) {
		free(holds);
		free(subj);
		*err = xstrdup("could not build the query for the hold ids");
		return false;
	}
	/* hold.c's active condition, as hold_sql_not_held has it */
	char *sql = xasprintf(
		"SELECT h.id, count(*) OVER () FROM %s h"
		" WHERE h.subject = $%d AND h.released_at IS NULL"
		" AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now())"
		" AND EXISTS (SELECT 1 FROM %s t WHERE %s"
		"  AND h.subject_id = (t.%s)::text)"
		" ORDER BY h.id LIMIT %d", holds, k, rs->qtable, held, subj,
		EXPLAIN_MAX_IDS);
	PGresult *res = plan_exec_sql(conn, rs, sql, cutoff, err);

	free(sql);
	free(holds);
	free(subj);
	if (!res)
		return false;
	struct strbuf b = STRBUF_INIT;
	int n = PQntuples(res);
	for (int i = 0; i < n; i++)
		sb_printf(&b, "%s%s", i ? ", " : "", PQgetvalue(res, i, 0));
	if (n > 0 && atoll(PQgetvalue(res, 0, 1)) > n)
		sb_printf(&b, " and %lld more", atoll(PQgetvalue(res, 0, 1)) - n);
	PQclear(res);
	e->hold_ids = b.len ? sb_take(&b) : NULL;
	sb_free(&b);
	return true;
}

/* Count one rule's old rows by reason; false with *err. */
static bool
explain_rule(PGconn *conn, const struct config *cfg, const struct rule *rule,
	     const char *cutoff, struct report_explain *e, char **err)
{
	struct plan rs;
	bool ok = false;

	memset(&rs, 0, sizeof(rs));
	if (!plan_compile(conn, cfg, rule, rule->action, PLAN_EXPIRY, NULL,
			  &rs, err))
		return false;

	/* "true" when the rule has no subject / nothing refers to it */
	const char *h = rs.not_held;
	const char *f = rs.unreferenced;
	char *kept = rule->where
		? xasprintf("NOT coalesce((%s), false)", rule->where)
		: xstrdup("false");
	char *done = rule->where
		? xasprintf("coalesce((%s), false) AND NOT (%s)", rule->where,
			    rs.eligible)
		: xasprintf("NOT (%s)", rs.eligible);
	char *held = xasprintf("%s AND NOT (%s)", rs.eligible, h);
	char *blocked = xasprintf("%s AND %s AND NOT (%s)", rs.eligible, h, f);
	char *sql = xasprintf(
		"SELECT count(*), count(*) FILTER (WHERE %s),"
		" count(*) FILTER (WHERE %s), count(*) FILTER (WHERE %s),"
		" count(*) FILTER (WHERE %s),"
		" count(*) FILTER (WHERE %s AND %s AND %s)"
		" FROM %s t WHERE %s", kept, done, held, blocked, rs.eligible,
		h, f, rs.qtable, rs.expired ? rs.expired : "false");
	PGresult *res = plan_exec_sql(conn, &rs, sql, cutoff, err);

	free(sql);
	if (!res)
		goto out;
	e->older = atoll(PQgetvalue(res, 0, 0));
	e->kept_where = atoll(PQgetvalue(res, 0, 1));
	e->deidentified = atoll(PQgetvalue(res, 0, 2));
	e->held = atoll(PQgetvalue(res, 0, 3));
	e->blocked = atoll(PQgetvalue(res, 0, 4));
	e->left = atoll(PQgetvalue(res, 0, 5));
	PQclear(res);
	e->where = rule->where ? xstrdup(rule->where) : NULL;
	if (e->held > 0 && rule->subject && rule->subject_column &&
	    !hold_ids(conn, cfg, &rs, cutoff, held, e, err))
		goto out;
	if (e->blocked > 0 && !count_refs(conn, &rs, cutoff, blocked, e, err))
		goto out;
	ok = true;
out:
	free(kept);
	free(done);
	free(held);
	free(blocked);
	plan_release(&rs);
	return ok;
}

static void
savepoint(PGconn *conn, const char *sql)
{
	char *e = NULL;
	if (!db_exec(conn, sql, &e))
		free(e);
}

void
explain_load(PGconn *conn, const struct config *cfg, struct report *r)
{
	for (size_t i = 0; i < r->n_rules; i++) {
		struct report_rule *rr = &r->rules[i];
		const struct rule *rule = config_find_rule(cfg, rr->rule);
		char *err = NULL;

		explain_free(&rr->why);
		if (!rr->cutoff || (rr->outcome &&
				    (is(rr->outcome, OUTCOME_SKIPPED) ||
				     is(rr->outcome, OUTCOME_PLANNED))))
			continue;	/* the run did not apply the rule */
		if (!rule) {
			rr->why.error = xstrdup("the rule is no longer in the "
						"config");
			continue;
		}
		/* a rule that cannot be counted must not abort the others'
		 * counts, nor the report's transaction */
		savepoint(conn, "SAVEPOINT explain");
		if (explain_rule(conn, cfg, rule, rr->cutoff, &rr->why, &err)) {
			rr->why.counted = true;
			savepoint(conn, "RELEASE SAVEPOINT explain");
		} else {
			explain_free(&rr->why);
			rr->why.error = err;
			savepoint(conn, "ROLLBACK TO SAVEPOINT explain");
			savepoint(conn, "RELEASE SAVEPOINT explain");
		}
	}
}

/* --- words --------------------------------------------------------------- */

static const char *
rows(long long n)
{
	return n == 1 ? "row" : "rows";
}

static const char *
are(long long n)
{
	return n == 1 ? "is" : "are";
}

static char *
blocked_line(const struct report_explain *e)
{
	struct strbuf b = STRBUF_INIT;

	sb_printf(&b, "%lld %s cannot be deleted yet because rows in ",
		  e->blocked, rows(e->blocked));
	if (e->n_refs == 0)
		sb_add(&b, "other tables");
	for (size_t i = 0; i < e->n_refs; i++)
		sb_printf(&b, "%s%s (%lld)",
			  i == 0 ? "" : i + 1 == e->n_refs ? " and " : ", ",
			  e->refs[i].table, e->refs[i].rows);
	sb_printf(&b, " still refer to %s", e->blocked == 1 ? "it" : "them");
	return sb_take(&b);
}

/* Rows due that the run left: why depends on how the rule ended. */
static char *
left_line(const struct report_rule *rr, long long n)
{
	const char *o = rr->outcome ? rr->outcome : "";
	const char *m = rr->message ? rr->message : "no message";

	if (is(o, OUTCOME_TIME))
		return xasprintf("%lld %s %s left for the next cycle: the run "
				 "reached its time limit (max_runtime)", n,
				 rows(n), are(n));
	if (is(o, OUTCOME_LOCKED))
		return xasprintf("%lld %s %s left for the next cycle: other "
				 "sessions held locks (lock timeout)", n,
				 rows(n), are(n));
	if (is(o, OUTCOME_STOPPED))
		return xasprintf("%lld %s %s left for the next cycle: the run "
				 "was stopped", n, rows(n), are(n));
	if (is(o, OUTCOME_FAILED))
		return xasprintf("%lld %s %s not changed because the rule "
				 "failed: %s", n, rows(n),
				 n == 1 ? "was" : "were", m);
	if (is(o, OUTCOME_REFUSED))
		return xasprintf("%lld %s %s not changed because a safety "
				 "guard refused the rule: %s", n, rows(n),
				 n == 1 ? "was" : "were", m);
	/* done: they expired after the rule ran, or were locked by others */
	return xasprintf("%lld %s %s due and will be changed by the next "
			 "cycle", n, rows(n), are(n));
}

char **
explain_lines(const struct report_rule *rr, size_t *n)
{
	const struct report_explain *e = &rr->why;
	const char *retain = rr->retain ? rr->retain : "the retention period";
	char verdict[64];
	char **reasons = xcalloc(6, sizeof(*reasons));
	size_t k = 0;

	report_verdict(rr, verdict, sizeof(verdict));
	if (!e->counted) {
		reasons[k++] = e->error
			? xasprintf("%s (why old rows remain could not be "
				    "counted: %s)", verdict, e->error)
			: xstrdup(verdict);
		*n = k;
		return reasons;
	}
	if (e->kept_where > 0)
		reasons[k++] = xasprintf(
			"%lld %s older than %s %s kept because the rule only "
			"applies where %s", e->kept_where, rows(e->kept_where),
			retain, are(e->kept_where),
			e->where ? e->where : "its condition holds");
	if (e->deidentified > 0)
		reasons[k++] = xasprintf(
			"%lld %s older than %s %s kept de-identified: the rule "
			"removes the personal data, not the row",
			e->deidentified, rows(e->deidentified), retain,
			are(e->deidentified));
	if (e->held > 0)
		reasons[k++] = xasprintf(
			"%lld %s %s kept by legal hold%s %s", e->held,
			rows(e->held), are(e->held),
			e->hold_ids && strchr(e->hold_ids, ',') ? "s" : "",
			e->hold_ids ? e->hold_ids : "(ids unknown)");
	if (e->blocked > 0)
		reasons[k++] = blocked_line(e);
	if (e->left > 0)
		reasons[k++] = left_line(rr, e->left);
	if (k == 0)
		reasons[k++] = xasprintf("no row is older than %s", retain);

	/* the verdict and the first reason make one sentence */
	char *first = xasprintf("%s: %s", verdict, reasons[0]);
	free(reasons[0]);
	reasons[0] = first;
	*n = k;
	return reasons;
}

void
explain_lines_free(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}
