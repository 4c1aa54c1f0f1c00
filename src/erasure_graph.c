#include "erasure_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "outbox.h"
#include "plan.h"
#include "report.h"
#include "strbuf.h"

/* PostgreSQL's oid of text (pg_type.h is server-side). */
#define TEXT_OID 25

/* A table of the graph that foreign keys reach and no rule covers. */
static bool
uncovered(const struct erasure_walk *w, size_t i)
{
	return w->g.tables[i].depth > 0 && w->g.tables[i].n_rules == 0;
}

/* Do all of table I's foreign keys to other tables of the graph cascade
 * (or set null or a default)? Then its rows go, or let go, when the rows
 * they refer to are deleted: they never block them (SPEC §9 counts such a
 * table covered by its parent's rule). */
static bool
cascades(const struct erasure_walk *w, size_t i)
{
	for (size_t k = 0; k < w->g.n_edges; k++) {
		const struct sg_edge *e = &w->g.edges[k];
		if (e->child == i && e->parent != i && e->on_delete != 'c' &&
		    e->on_delete != 'n' && e->on_delete != 'd')
			return false;
	}
	return true;
}

bool
erasure_walk_init(PGconn *conn, const struct config *cfg, const char *kind,
		  struct erasure_walk *w, char **err)
{
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	if (!subject_graph_build_param(conn, cfg, kind, PLAN_ERASURE_ID_PARAM,
				       &w->g, err))
		return false;
	w->holder = xcalloc(w->g.n ? w->g.n : 1, sizeof(*w->holder));
	w->blocker = xcalloc(w->g.n ? w->g.n : 1, sizeof(*w->blocker));
	for (size_t i = 0; i < w->g.n; i++)
		w->blocker[i] = uncovered(w, i) && !cascades(w, i);
	return true;
}

void
erasure_walk_fini(struct erasure_walk *w)
{
	subject_graph_free(&w->g);
	free(w->holder);
	free(w->blocker);
	memset(w, 0, sizeof(*w));
}

long
erasure_walk_table(const struct erasure_walk *w, const struct rule *r)
{
	for (size_t i = 0; i < w->g.n; i++)
		if (strcmp(w->g.tables[i].schema, r->schema) == 0 &&
		    strcmp(w->g.tables[i].table, r->table) == 0)
			return (long)i;
	return -1;
}

bool
erasure_walk_applies(const struct erasure_walk *w, const struct rule *r)
{
	long i = erasure_walk_table(w, r);

	if (!r->enabled || i < 0)
		return false;
	const struct sg_table *t = &w->g.tables[i];
	for (size_t k = 0; k < t->n_rules; k++)
		if (t->rules[k]->subject &&
		    strcmp(t->rules[k]->subject, w->kind) == 0)
			return false;
	return true;
}

/* count(*) of SQL's FROM and WHERE, the id as $2 ($1 is the erasure plans'
 * cutoff, unused here). */
static bool
count_sql(PGconn *conn, const char *sql, const char *subject_id,
	  long long *n, char **err)
{
	const Oid types[] = { TEXT_OID, TEXT_OID };
	const char *values[] = { NULL, subject_id };
	PGresult *res = db_exec_params(conn, sql, 2, types, values, NULL, err);
	if (!res)
		return false;
	*n = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool
erasure_walk_count(PGconn *conn, const struct erasure_walk *w, size_t i,
		   const char *extra, const char *subject_id, long long *n,
		   char **err)
{
	const struct sg_table *t = &w->g.tables[i];
	char *q = db_qualified(conn, t->schema, t->table);
	if (!q) {
		*err = db_error(conn, NULL);
		return false;
	}
	char *sql = xasprintf("SELECT count(*) FROM %s t WHERE (%s)%s%s%s", q,
			      t->predicate, extra ? " AND (" : "",
			      extra ? extra : "", extra ? ")" : "");
	bool ok = count_sql(conn, sql, subject_id, n, err);
	free(sql);
	free(q);
	return ok;
}

void
erasure_walk_hold(struct erasure_walk *w, size_t i, const struct rule *r)
{
	if (!w->holder[i])
		w->holder[i] = r;
}

/* Do rows staying in E's child keep the rows of its parent they refer to?
 * Kept rows always do (a kept invoice keeps its order, even where its key
 * would cascade). De-identified rows only where the key would stop the
 * delete: where it cascades or sets null, the parent goes, and they with it
 * or let go of it. */
static bool
holds(const struct erasure_walk *w, const struct sg_edge *e)
{
	const struct rule *h = w->holder[e->child];

	if (!h || e->child == e->parent)
		return false;
	return h->on_erasure == ACTION_KEEP ||
	       (e->on_delete != 'c' && e->on_delete != 'n' &&
		e->on_delete != 'd');
}

/* Table I's rows (and WHERE's, and not EXCLUDE's) that rows staying in a
 * child table refer to: held ones (*under: the rule of the first such
 * child), or with BLOCKERS those of tables that block. */
static bool
referenced(PGconn *conn, const struct erasure_walk *w, size_t i,
	   const char *where, const char *exclude, const char *subject_id,
	   bool blockers, long long *n, const struct rule **under, char **err)
{
	struct strbuf any = STRBUF_INIT;
	bool ok = true;
	int terms = 0;
	char *base = where && exclude ? xasprintf("(%s) AND NOT (%s)", where,
						  exclude)
		     : where	      ? xasprintf("(%s)", where)
		     : exclude	      ? xasprintf("NOT (%s)", exclude)
				      : NULL;

	*n = 0;
	*under = NULL;
	for (size_t k = 0; k < w->g.n_edges && ok; k++) {
		const struct sg_edge *e = &w->g.edges[k];
		if (e->parent != i || e->child == i ||
		    !(blockers ? w->blocker[e->child] : holds(w, e)))
			continue;
		char *term = subject_graph_referenced(conn, &w->g, e,
				w->g.tables[e->child].predicate);
		if (!term) {
			*err = db_error(conn, NULL);
			ok = false;
			break;
		}
		long long c = 0;
		if (!blockers && !*under) {
			char *x = base ? xasprintf("%s AND %s", base, term)
				       : xstrdup(term);
			ok = erasure_walk_count(conn, w, i, x, subject_id, &c,
						err);
			free(x);
			if (ok && c > 0) {
				*under = w->holder[e->child];
				*n = c;
			}
		}
		sb_printf(&any, "%s%s", terms++ ? " OR " : "", term);
		free(term);
	}
	/* rows that several tables keep are counted once */
	if (ok && terms > 0 && (terms > 1 || !*under)) {
		char *x = base ? xasprintf("%s AND (%s)", base, any.s)
			       : xstrdup(any.s);
		ok = erasure_walk_count(conn, w, i, x, subject_id, n, err);
		free(x);
	}
	free(base);
	sb_free(&any);
	return ok;
}

bool
erasure_walk_held(PGconn *conn, const struct erasure_walk *w, size_t i,
		  char **cond, char **err)
{
	struct strbuf any = STRBUF_INIT;

	*cond = NULL;
	for (size_t k = 0; k < w->g.n_edges; k++) {
		const struct sg_edge *e = &w->g.edges[k];
		if (e->parent != i || !holds(w, e))
			continue;
		char *term = subject_graph_referenced(conn, &w->g, e,
				w->g.tables[e->child].predicate);
		if (!term) {
			*err = db_error(conn, NULL);
			sb_free(&any);
			return false;
		}
		sb_printf(&any, "%s%s", any.len ? " OR " : "", term);
		free(term);
	}
	if (any.len)
		*cond = sb_take(&any);
	sb_free(&any);
	return true;
}

bool
erasure_walk_kept(PGconn *conn, const struct erasure_walk *w, size_t i,
		  const char *where, const char *subject_id, long long *n,
		  const struct rule **under, char **err)
{
	return referenced(conn, w, i, where, NULL, subject_id, false, n, under,
			  err);
}

bool
erasure_walk_staying(PGconn *conn, const struct erasure_walk *w, size_t i,
		     const char *where, const char *held,
		     const char *subject_id, long long *n, char **err)
{
	const struct rule *under;
	return referenced(conn, w, i, where, held, subject_id, true, n, &under,
			  err);
}

static void
add_part(struct erasure_block **v, size_t *n, const struct sg_table *t,
	 long long rows, const struct rule *under)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n].table = xasprintf("%s.%s", t->schema, t->table);
	(*v)[*n].rows = rows;
	(*v)[*n].kept_under = under;
	(*n)++;
}

bool
erasure_walk_blocks(PGconn *conn, const struct erasure_walk *w,
		    struct erasure_outcome *eo, char **err)
{
	for (size_t i = 0; i < w->g.n; i++) {
		const struct sg_table *t = &w->g.tables[i];
		long long n = 0;
		/* depth 0 without a rule is the subject's own table: its row
		 * refers to nothing of the subject's */
		if (!uncovered(w, i))
			continue;
		if (!erasure_walk_count(conn, w, i, NULL, eo->subject_id, &n,
					err)) {
			char *e = xasprintf("table %s.%s: %s", t->schema,
					    t->table, *err);
			free(*err);
			*err = e;
			return false;
		}
		if (n == 0)
			continue;
		if (w->blocker[i]) {
			add_part(&eo->blocks, &eo->n_blocks, t, n, NULL);
			continue;
		}
		/* rows that go with their parents by cascade are still here
		 * because a parent is: kept with it, under its rule; a parent
		 * that is not kept keeps the request pending itself */
		for (size_t k = 0; k < w->g.n_edges; k++) {
			const struct sg_edge *e = &w->g.edges[k];
			if (e->child == i && e->parent != i &&
			    w->holder[e->parent]) {
				add_part(&eo->cascaded, &eo->n_cascaded, t, n,
					 w->holder[e->parent]);
				break;
			}
		}
	}
	return true;
}

/* A JSON array of the blocking tables' names. */
static char *
block_names(const struct erasure_outcome *eo)
{
	struct strbuf b = STRBUF_INIT;
	sb_add(&b, "[");
	for (size_t i = 0; i < eo->n_blocks; i++) {
		sb_add(&b, i ? ", " : "");
		sb_json_str(&b, eo->blocks[i].table);
	}
	sb_add(&b, "]");
	return sb_take(&b);
}

/* Were all of EO's blocking tables mailed about in an earlier cycle (the
 * request's detail "mailed")? 1 yes, 0 no, -1 error. */
static int
mailed_before(PGconn *conn, const char *schema,
	      const struct erasure_outcome *eo, char **err)
{
	char id[32];
	snprintf(id, sizeof(id), "%lld", eo->id);
	char *names = block_names(eo);
	char *t = db_qualified(conn, schema, "erasure_requests");
	char *sql = xasprintf("SELECT coalesce(detail->'mailed', '[]'::jsonb)"
			      " @> $2::jsonb FROM %s WHERE id = $1", t);
	const char *p[] = { id, names };
	PGresult *res = db_query(conn, sql, 2, p, err);
	free(sql);
	free(t);
	free(names);
	if (!res)
		return -1;
	int yes = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return yes;
}

bool
erasure_blocks_mail(PGconn *conn, const struct config *cfg,
		    struct erasure_outcome *eo, char **err)
{
	if (eo->n_blocks == 0)
		return true;
	int before = mailed_before(conn, cfg->database.schema, eo, err);
	if (before < 0)
		return false;
	if (before) {
		eo->blocks_mailed = true;
		return true;
	}
	if (!cfg->mail.configured || cfg->mail.send == MAIL_SEND_NEVER) {
		log_warning("erasure request %lld is blocked by tables no rule "
			    "covers, and mail is off: nobody is told but this "
			    "log", eo->id);
		return true;
	}

	/* names and counts only: never a value of the subject's rows */
	struct strbuf text = STRBUF_INIT, html = STRBUF_INIT;
	char *subject = xasprintf("retentiond: erasure request %lld is blocked "
				  "by %s%s", eo->id, eo->blocks[0].table,
				  eo->n_blocks > 1 ? " and other tables" : "");
	sb_printf(&text, "Erasure request %lld (%s:%s, due %s) cannot finish: "
		  "rows in tables that no rule covers refer to the subject's "
		  "rows, and nothing erases them.\n\n", eo->id, eo->subject,
		  eo->subject_id, eo->due_at);
	for (size_t i = 0; i < eo->n_blocks; i++)
		sb_printf(&text, "  %s: %lld rows\n", eo->blocks[i].table,
			  eo->blocks[i].rows);
	sb_add(&text, "\nAdd a rule for each of these tables (its on_erasure "
		      "says what happens to such rows), or make its foreign key "
		      "cascade; the next cycle then finishes the request. This "
		      "mail is sent once for this request.\n");
	sb_add(&html, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
		      "charset=\"utf-8\"><title>");
	report_html_escape(&html, subject);
	sb_add(&html, "</title></head><body><pre>");
	report_html_escape(&html, text.s);
	sb_add(&html, "</pre></body></html>\n");
	bool ok = outbox_add(conn, cfg->database.schema, subject, text.s, html.s,
			     NULL, err);
	if (ok) {
		eo->blocks_mailed = true;
		log_notice("erasure request %lld: staff mailed about the tables "
			   "that block it", eo->id);
	}
	free(subject);
	sb_free(&text);
	sb_free(&html);
	return ok;
}
