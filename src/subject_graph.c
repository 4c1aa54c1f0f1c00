#include "subject_graph.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "strbuf.h"

/* One foreign key: CHILD (cols) REFERENCES PARENT (pcols). */
struct fk {
	char *name;
	char *child_schema, *child_table;
	char *parent_schema, *parent_table;
	char **cols, **pcols;
	size_t n_cols;
	char on_delete;		/* pg_constraint.confdeltype */
};

struct fks {
	struct fk *v;
	size_t n;
};

/* One row per column of every foreign key, in key order. Constraints that
 * partitions inherit from their parent (conparentid) would name the same
 * rows twice under another table; the parent's constraint covers them. */
static const char FK_SQL[] =
	"SELECT c.oid::text, c.conname, cn.nspname, cc.relname,"
	" pn.nspname, pc.relname, a.attname, pa.attname, c.confdeltype::text"
	" FROM pg_catalog.pg_constraint c"
	" JOIN pg_catalog.pg_class cc ON cc.oid = c.conrelid"
	" JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace"
	" JOIN pg_catalog.pg_class pc ON pc.oid = c.confrelid"
	" JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace"
	" CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(c.conkey),"
	"   pg_catalog.unnest(c.confkey)) WITH ORDINALITY AS k(ck, pk, i)"
	" JOIN pg_catalog.pg_attribute a"
	"   ON a.attrelid = c.conrelid AND a.attnum = k.ck"
	" JOIN pg_catalog.pg_attribute pa"
	"   ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
	" WHERE c.contype = 'f' AND c.conparentid = 0"
	"   AND NOT cc.relispartition AND cn.nspname <> $1"
	" ORDER BY c.oid, k.i";

static void
fks_free(struct fks *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct fk *k = &f->v[i];
		free(k->name);
		free(k->child_schema);
		free(k->child_table);
		free(k->parent_schema);
		free(k->parent_table);
		for (size_t j = 0; j < k->n_cols; j++) {
			free(k->cols[j]);
			free(k->pcols[j]);
		}
		free(k->cols);
		free(k->pcols);
	}
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static bool
fks_load(PGconn *conn, const char *own_schema, struct fks *f, char **err)
{
	const char *p[] = { own_schema };
	char *e = NULL;
	PGresult *res = db_query(conn, FK_SQL, 1, p, &e);
	if (!res) {
		*err = xasprintf("could not read the foreign keys: %s", e);
		free(e);
		return false;
	}
	int n = PQntuples(res);
	const char *prev = NULL;
	f->v = xcalloc(n ? (size_t)n : 1, sizeof(*f->v));
	for (int i = 0; i < n; i++) {
		struct fk *k;
		if (!prev || strcmp(prev, PQgetvalue(res, i, 0)) != 0) {
			k = &f->v[f->n++];
			k->name = xstrdup(PQgetvalue(res, i, 1));
			k->child_schema = xstrdup(PQgetvalue(res, i, 2));
			k->child_table = xstrdup(PQgetvalue(res, i, 3));
			k->parent_schema = xstrdup(PQgetvalue(res, i, 4));
			k->parent_table = xstrdup(PQgetvalue(res, i, 5));
			k->on_delete = PQgetvalue(res, i, 8)[0];
		}
		prev = PQgetvalue(res, i, 0);
		k = &f->v[f->n - 1];
		k->cols = xreallocarray(k->cols, k->n_cols + 1, sizeof(char *));
		k->pcols = xreallocarray(k->pcols, k->n_cols + 1, sizeof(char *));
		k->cols[k->n_cols] = xstrdup(PQgetvalue(res, i, 6));
		k->pcols[k->n_cols] = xstrdup(PQgetvalue(res, i, 7));
		k->n_cols++;
	}
	PQclear(res);
	return true;
}

static size_t
find_table(const struct subject_graph *g, const char *schema, const char *table)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->tables[i].schema, schema) == 0 &&
		    strcmp(g->tables[i].table, table) == 0)
			return i;
	return (size_t)-1;
}

static size_t
add_table(struct subject_graph *g, const struct config *cfg,
	  const char *schema, const char *table, int depth)
{
	/* every rule and subject has both: config validation requires them */
	assert(schema && table);
	size_t i = find_table(g, schema, table);
	if (i != (size_t)-1)
		return i;
	g->tables = xreallocarray(g->tables, g->n + 1, sizeof(*g->tables));
	struct sg_table *t = &g->tables[g->n];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup(schema);
	t->table = xstrdup(table);
	t->depth = depth;
	for (size_t r = 0; r < cfg->n_rules; r++) {
		const struct rule *rule = &cfg->rules[r];
		if (!rule->enabled || !rule->schema || !rule->table ||
		    strcmp(rule->schema, schema) != 0 ||
		    strcmp(rule->table, table) != 0)
			continue;
		t->rules = xreallocarray(t->rules, t->n_rules + 1,
					 sizeof(*t->rules));
		t->rules[t->n_rules++] = rule;
	}
	return g->n++;
}

static void
add_reached(struct sg_table *t, const char *how)
{
	char *s = t->reached_by ? xasprintf("%s; %s", t->reached_by, how)
				: xstrdup(how);
	free(t->reached_by);
	t->reached_by = s;
}

/* "t.col = $1::type", with the column's type without its modifier: a cast
 * to varchar(20) would cut a longer ID and match the wrong subject. */
static char *
key_filter(PGconn *conn, const char *schema, const char *table,
	   const char *column, const char *what, int param, char **err)
{
	char *qt = db_qualified(conn, schema, table);
	char *qc = db_ident(conn, column);
	char *out = NULL;
	char *e = NULL;

	if (!qt || !qc) {
		*err = db_error(conn, NULL);
		goto done;
	}
	const char *p[] = { qt, column };
	PGresult *res = db_query(conn,
		"SELECT pg_catalog.format_type(a.atttypid, NULL)"
		" FROM pg_catalog.pg_attribute a"
		" WHERE a.attrelid = pg_catalog.to_regclass($1)"
		" AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
		2, p, &e);
	if (!res) {
		*err = xasprintf("%s (%s.%s): %s", what, schema, table, e);
		free(e);
		goto done;
	}
	if (PQntuples(res) == 0)
		*err = xasprintf("%s: table %s.%s has no column \"%s\" (or "
				 "does not exist)", what, schema, table, column);
	else
		out = xasprintf("t.%s = $%d::%s", qc, param,
				PQgetvalue(res, 0, 0));
	PQclear(res);
done:
	free(qt);
	free(qc);
	return out;
}

/* "(t.c1, t.c2) IN (SELECT t.p1, t.p2 FROM parent t WHERE PRED)": the
 * inner alias hides the outer one, so PRED, written for the parent on
 * "t", nests unchanged. */
static char *
fk_filter(PGconn *conn, const struct fk *k, const char *parent_pred)
{
	struct strbuf b = STRBUF_INIT;
	char *qp = db_qualified(conn, k->parent_schema, k->parent_table);

	if (!qp)
		return NULL;
	sb_add(&b, k->n_cols > 1 ? "(" : "");
	for (size_t i = 0; i < k->n_cols; i++) {
		char *c = db_ident(conn, k->cols[i]);
		if (!c) {
			free(qp);
			sb_free(&b);
			return NULL;
		}
		sb_printf(&b, "%st.%s", i ? ", " : "", c);
		free(c);
	}
	sb_add(&b, k->n_cols > 1 ? ") IN (SELECT " : " IN (SELECT ");
	for (size_t i = 0; i < k->n_cols; i++) {
		char *c = db_ident(conn, k->pcols[i]);
		if (!c) {
			free(qp);
			sb_free(&b);
			return NULL;
		}
		sb_printf(&b, "%st.%s", i ? ", " : "", c);
		free(c);
	}
	sb_printf(&b, " FROM %s t WHERE %s)", qp, parent_pred);
	free(qp);
	return sb_take(&b);
}

static void
or_into(char **pred, const char *term)
{
	char *s = *pred ? xasprintf("%s OR %s", *pred, term) : xstrdup(term);
	free(*pred);
	*pred = s;
}

static char *
describe_fk(const struct fk *k)
{
	struct strbuf b = STRBUF_INIT;
	sb_printf(&b, "foreign key %s (", k->name);
	for (size_t i = 0; i < k->n_cols; i++)
		sb_printf(&b, "%s%s", i ? ", " : "", k->cols[i]);
	sb_printf(&b, ") to %s.%s", k->parent_schema, k->parent_table);
	return sb_take(&b);
}

/* Seeds: the subject's own row and every rule table of this kind. */
static bool
add_seeds(PGconn *conn, const struct config *cfg, const char *kind,
	  int param, struct subject_graph *g, char ***seed, char **err)
{
	const struct subject *sj = config_find_subject(cfg, kind);

	if (sj) {
		char *what = xasprintf("subject \"%s\" key \"%s\"", kind, sj->key);
		char *f = key_filter(conn, sj->schema, sj->table, sj->key, what,
				     param, err);
		free(what);
		if (!f)
			return false;
		size_t i = add_table(g, cfg, sj->schema, sj->table, 0);
		*seed = xreallocarray(*seed, g->n, sizeof(char *));
		(*seed)[i] = NULL;	/* the first table */
		or_into(&(*seed)[i], f);
		free(f);
		char *how = xasprintf("subject key %s", sj->key);
		add_reached(&g->tables[i], how);
		free(how);
	}
	for (size_t r = 0; r < cfg->n_rules; r++) {
		const struct rule *rule = &cfg->rules[r];
		if (!rule->enabled || !rule->subject ||
		    strcmp(rule->subject, kind) != 0)
			continue;
		char *what = xasprintf("rule \"%s\" subject_column", rule->name);
		char *f = key_filter(conn, rule->schema, rule->table,
				     rule->subject_column, what, param, err);
		free(what);
		if (!f)
			return false;
		size_t before = g->n;
		size_t i = add_table(g, cfg, rule->schema, rule->table, 0);
		*seed = xreallocarray(*seed, g->n, sizeof(char *));
		if (g->n > before)
			(*seed)[i] = NULL;
		or_into(&(*seed)[i], f);
		free(f);
		char *how = xasprintf("rule %s (%s)", rule->name,
				      rule->subject_column);
		add_reached(&g->tables[i], how);
		free(how);
	}
	return true;
}

static void
free_preds(char **p, size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		free(p[i]);
	free(p);
}

/*
 * A foreign key into the subject table itself (customers.referred_by ->
 * customers.id) leads to other people's own rows, and from them to
 * everything of theirs: the subject's own row is the key's row alone. SPEC
 * §8 read literally would follow it; an export of someone else's data is
 * the breach the right of access must not cause.
 */
static bool
other_subjects(const struct subject *sj, const struct fk *f)
{
	return sj && strcmp(f->child_schema, sj->schema) == 0 &&
	       strcmp(f->child_table, sj->table) == 0;
}

static void
add_edge(struct subject_graph *g, const struct fk *f, size_t child,
	 size_t parent)
{
	for (size_t i = 0; i < g->n_edges; i++) {
		const struct sg_edge *e = &g->edges[i];
		if (e->child != child || e->parent != parent ||
		    e->n_cols != f->n_cols)
			continue;
		bool same = true;
		for (size_t k = 0; same && k < e->n_cols; k++)
			same = strcmp(e->cols[k], f->cols[k]) == 0 &&
			       strcmp(e->pcols[k], f->pcols[k]) == 0;
		if (same)
			return;
	}
	g->edges = xreallocarray(g->edges, g->n_edges + 1, sizeof(*g->edges));
	struct sg_edge *e = &g->edges[g->n_edges++];
	e->child = child;
	e->parent = parent;
	e->on_delete = f->on_delete;
	e->n_cols = f->n_cols;
	e->cols = xcalloc(f->n_cols, sizeof(char *));
	e->pcols = xcalloc(f->n_cols, sizeof(char *));
	for (size_t k = 0; k < f->n_cols; k++) {
		e->cols[k] = xstrdup(f->cols[k]);
		e->pcols[k] = xstrdup(f->pcols[k]);
	}
}

bool
subject_graph_build(PGconn *conn, const struct config *cfg, const char *kind,
		    struct subject_graph *g, char **err)
{
	return subject_graph_build_param(conn, cfg, kind, 1, g, err);
}

bool
subject_graph_build_param(PGconn *conn, const struct config *cfg,
			  const char *kind, int param, struct subject_graph *g,
			  char **err)
{
	const struct subject *sj = config_find_subject(cfg, kind);
	struct fks fks = {0};
	char **seed = NULL, **prev = NULL;
	size_t n_prev = 0;
	bool ok = false;

	memset(g, 0, sizeof(*g));
	if (!add_seeds(conn, cfg, kind, param, g, &seed, err))
		goto out;
	if (!fks_load(conn, cfg->database.schema, &fks, err))
		goto out;

	/*
	 * Level d holds, per table, the rows reachable from the seeds through
	 * at most d foreign keys: the seeds, or a child of a row at level d-1.
	 * Without cycles this stops changing at the longest path; with them it
	 * stops at the depth limit.
	 */
	n_prev = g->n;
	prev = xcalloc(n_prev ? n_prev : 1, sizeof(char *));
	for (size_t i = 0; i < g->n; i++)
		prev[i] = seed[i] ? xstrdup(seed[i]) : NULL;
	for (int d = 1; d <= SUBJECT_GRAPH_MAX_DEPTH; d++) {
		for (size_t k = 0; k < fks.n; k++) {
			const struct fk *f = &fks.v[k];
			size_t pi = find_table(g, f->parent_schema, f->parent_table);
			if (pi == (size_t)-1 || pi >= n_prev || !prev[pi] ||
			    other_subjects(sj, f))
				continue;
			size_t before = g->n;
			size_t ci = add_table(g, cfg, f->child_schema,
					      f->child_table, d);
			if (g->n > before) {
				seed = xreallocarray(seed, g->n, sizeof(char *));
				seed[ci] = NULL;
			}
		}
		char **cur = xcalloc(g->n, sizeof(char *));
		for (size_t i = 0; i < g->n; i++)
			cur[i] = seed[i] ? xstrdup(seed[i]) : NULL;
		for (size_t k = 0; k < fks.n; k++) {
			const struct fk *f = &fks.v[k];
			size_t pi = find_table(g, f->parent_schema, f->parent_table);
			if (pi == (size_t)-1 || pi >= n_prev || !prev[pi])
				continue;
			if (other_subjects(sj, f))
				continue;
			size_t ci = find_table(g, f->child_schema, f->child_table);
			add_edge(g, f, ci, pi);
			char *term = fk_filter(conn, f, prev[pi]);
			if (!term) {
				*err = db_error(conn, NULL);
				free_preds(cur, g->n);
				goto out;
			}
			or_into(&cur[ci], term);
			free(term);
			if (strlen(cur[ci]) > SUBJECT_GRAPH_MAX_SQL) {
				*err = xasprintf("table %s.%s is reached through "
						 "too many foreign key paths to "
						 "select its rows in one query",
						 f->child_schema, f->child_table);
				free_preds(cur, g->n);
				goto out;
			}
			char *how = describe_fk(f);
			if (!g->tables[ci].reached_by ||
			    !strstr(g->tables[ci].reached_by, how))
				add_reached(&g->tables[ci], how);
			free(how);
		}
		bool same = g->n == n_prev;
		for (size_t i = 0; same && i < g->n; i++)
			same = (!cur[i] && !prev[i]) ||
			       (cur[i] && prev[i] && strcmp(cur[i], prev[i]) == 0);
		free_preds(prev, n_prev);
		prev = cur;
		n_prev = g->n;
		if (same)
			break;
	}
	for (size_t i = 0; i < g->n; i++) {
		g->tables[i].predicate = prev[i];
		prev[i] = NULL;
	}
	ok = true;
out:
	free_preds(prev, n_prev);
	free_preds(seed, g->n);
	fks_free(&fks);
	if (!ok)
		subject_graph_free(g);
	return ok;
}

void
subject_graph_free(struct subject_graph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->tables[i].schema);
		free(g->tables[i].table);
		free(g->tables[i].reached_by);
		free(g->tables[i].predicate);
		free(g->tables[i].rules);
	}
	for (size_t i = 0; i < g->n_edges; i++) {
		for (size_t k = 0; k < g->edges[i].n_cols; k++) {
			free(g->edges[i].cols[k]);
			free(g->edges[i].pcols[k]);
		}
		free(g->edges[i].cols);
		free(g->edges[i].pcols);
	}
	free(g->edges);
	free(g->tables);
	memset(g, 0, sizeof(*g));
}

/* fk_filter the other way round: the parent's rows the child's refer to. */
char *
subject_graph_referenced(PGconn *conn, const struct subject_graph *g,
			 const struct sg_edge *e, const char *child_pred)
{
	const struct sg_table *c = &g->tables[e->child];
	struct strbuf b = STRBUF_INIT;
	char *qc = db_qualified(conn, c->schema, c->table);
	bool ok = qc != NULL;

	sb_add(&b, e->n_cols > 1 ? "(" : "");
	for (size_t i = 0; ok && i < e->n_cols; i++) {
		char *p = db_ident(conn, e->pcols[i]);
		ok = p != NULL;
		if (ok)
			sb_printf(&b, "%st.%s", i ? ", " : "", p);
		free(p);
	}
	sb_add(&b, e->n_cols > 1 ? ") IN (SELECT " : " IN (SELECT ");
	for (size_t i = 0; ok && i < e->n_cols; i++) {
		char *k = db_ident(conn, e->cols[i]);
		ok = k != NULL;
		if (ok)
			sb_printf(&b, "%st.%s", i ? ", " : "", k);
		free(k);
	}
	if (ok)
		sb_printf(&b, " FROM %s t WHERE %s)", qc, child_pred);
	free(qc);
	if (!ok) {
		sb_free(&b);
		return NULL;
	}
	return sb_take(&b);
}

void
subject_graph_check(PGconn *conn, const struct config *cfg, struct diag *diag)
{
	for (size_t i = 0; i < cfg->n_subjects; i++) {
		const struct subject *sj = &cfg->subjects[i];
		struct subject_graph g;
		char *err = NULL;

		if (!sj->table || !sj->key)
			continue;
		if (!subject_graph_build(conn, cfg, sj->name, &g, &err)) {
			diag_error(diag, sj->file, sj->line, "subject \"%s\": %s",
				   sj->name, err);
			free(err);
			continue;
		}
		subject_graph_free(&g);
	}
}
