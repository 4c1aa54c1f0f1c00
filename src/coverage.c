/*
 * coverage: the database half of SPEC §9 — catalog, samples, references
 * and what covers each finding. The decisions are in coverage_detect.c.
 */
#include "coverage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* Bytes of each sampled value that are looked at: enough for any e-mail,
 * phone, card or IBAN, and for the keys of a modest json document. */
#define SAMPLE_BYTES 2000
/* Below this many estimated rows per sampled row a table is read with a
 * plain LIMIT; above, TABLESAMPLE SYSTEM spreads the sample over it. */
#define SAMPLE_SPREAD 4
#define SAMPLE_MIN_PAGES 16

struct col {
	char *name;
	char *base;		/* base type name */
	int attnum;
	bool readable;		/* the role may SELECT it */
	enum cov_confidence conf;
	struct strbuf reasons;	/* "\n"-separated */
};

struct fkey {
	size_t from, to;	/* indexes into tabs */
	char deltype;		/* 'c' cascade, ... */
	int attnums[8];
	int n_attnums;
};

struct tab {
	unsigned long oid;
	char *schema, *name;
	double reltuples;
	double relpages;
	struct col *cols;
	int n_cols;
	int pk_attnum;		/* single-column primary key; 0: none */
	const struct rule *delete_rule;	/* enabled delete rule on it */
	const struct rule *cascade_rule;	/* rows go by cascade from it */
	bool skipped;
	bool visited;
};

struct scan {
	PGconn *conn;
	const struct config *cfg;
	struct tab *tabs;
	size_t n_tabs;
	struct fkey *fks;
	size_t n_fks;
	size_t unreadable;	/* tables with text the role may not read */
};

static void
add_reason(struct col *c, enum cov_confidence conf, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
add_reason(struct col *c, enum cov_confidence conf, const char *fmt, ...)
{
	va_list ap;
	char buf[160];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->reasons.len)
		sb_add(&c->reasons, "\n");
	sb_add(&c->reasons, buf);
	if (conf > c->conf)
		c->conf = conf;
}

static int
by_oid(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = ((const struct tab *)b)->oid;
	return x < y ? -1 : x > y;
}

static struct tab *
find_oid(struct scan *s, unsigned long oid)
{
	return bsearch(&oid, s->tabs, s->n_tabs, sizeof(*s->tabs), by_oid);
}

static struct tab *
find_name(struct scan *s, const char *schema, const char *name)
{
	for (size_t i = 0; i < s->n_tabs; i++)
		if (strcmp(s->tabs[i].schema, schema) == 0 &&
		    strcmp(s->tabs[i].name, name) == 0)
			return &s->tabs[i];
	return NULL;
}

static struct col *
find_attnum(struct tab *t, int attnum)
{
	for (int i = 0; i < t->n_cols; i++)
		if (t->cols[i].attnum == attnum)
			return &t->cols[i];
	return NULL;
}

/* Tables (ordinary and partitioned, not partitions) and their columns,
 * ordered by oid. */
static bool
load_tables(struct scan *s, char **err)
{
	const char *params[1] = { s->cfg->database.schema };
	PGresult *res = db_query(s->conn,
		"SELECT c.oid::int8, n.nspname, c.relname, c.reltuples::float8,"
		" a.attnum, a.attname, bt.typname,"
		/* a partitioned table has no pages of its own: its sample
		 * is spread over its partitions' */
		" CASE WHEN c.relkind = 'p' THEN (SELECT"
		"  pg_catalog.sum(l.relpages)::float8"
		"  FROM pg_catalog.pg_partition_tree(c.oid) pt"
		"  JOIN pg_catalog.pg_class l ON l.oid = pt.relid"
		"  WHERE pt.isleaf) ELSE c.relpages::float8 END,"
		" pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')"
		" FROM pg_catalog.pg_class c"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
		"  AND a.attnum > 0 AND NOT a.attisdropped"
		" JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
		" JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd'"
		"  THEN t.typbasetype ELSE t.oid END"
		" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
		"  AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)"
		"  AND n.nspname !~ '^pg_(toast|temp_)'"
		" ORDER BY c.oid, a.attnum", 1, params, err);
	if (!res)
		return false;

	int n = PQntuples(res);
	s->tabs = xcalloc((size_t)n + 1, sizeof(*s->tabs));
	for (int i = 0; i < n; i++) {
		unsigned long oid = strtoul(PQgetvalue(res, i, 0), NULL, 10);
		struct tab *t = s->n_tabs ? &s->tabs[s->n_tabs - 1] : NULL;
		if (!t || t->oid != oid) {
			t = &s->tabs[s->n_tabs++];
			t->oid = oid;
			t->schema = xstrdup(PQgetvalue(res, i, 1));
			t->name = xstrdup(PQgetvalue(res, i, 2));
			t->reltuples = strtod(PQgetvalue(res, i, 3), NULL);
			t->relpages = strtod(PQgetvalue(res, i, 7), NULL);
		}
		t->cols = xreallocarray(t->cols, (size_t)t->n_cols + 1,
					sizeof(*t->cols));
		struct col *c = &t->cols[t->n_cols++];
		memset(c, 0, sizeof(*c));
		c->attnum = atoi(PQgetvalue(res, i, 4));
		c->name = xstrdup(PQgetvalue(res, i, 5));
		c->base = xstrdup(PQgetvalue(res, i, 6));
		c->readable = PQgetvalue(res, i, 8)[0] == 't';
	}
	PQclear(res);
	return true;
}

/* Primary keys and foreign keys (the top constraint of a partitioned
 * table only). */
static bool
load_keys(struct scan *s, char **err)
{
	PGresult *res = db_query(s->conn,
		"SELECT contype, conrelid::int8, confrelid::int8, confdeltype,"
		" array_to_string(conkey, ' ')"
		" FROM pg_catalog.pg_constraint"
		" WHERE contype IN ('p', 'f') AND conparentid = 0", 0, NULL, err);
	if (!res)
		return false;

	int n = PQntuples(res);
	s->fks = xcalloc((size_t)n + 1, sizeof(*s->fks));
	for (int i = 0; i < n; i++) {
		struct tab *from = find_oid(s, strtoul(PQgetvalue(res, i, 1), NULL, 10));
		const char *keys = PQgetvalue(res, i, 4);
		if (!from)
			continue;
		if (PQgetvalue(res, i, 0)[0] == 'p') {
			if (!strchr(keys, ' '))
				from->pk_attnum = atoi(keys);
			continue;
		}
		struct tab *to = find_oid(s, strtoul(PQgetvalue(res, i, 2), NULL, 10));
		if (!to)
			continue;
		struct fkey *f = &s->fks[s->n_fks++];
		f->from = (size_t)(from - s->tabs);
		f->to = (size_t)(to - s->tabs);
		f->deltype = PQgetvalue(res, i, 3)[0];
		for (const char *p = keys; *p && f->n_attnums < 8;) {
			char *end;
			long v = strtol(p, &end, 10);
			if (end == p)
				break;
			f->attnums[f->n_attnums++] = (int)v;
			p = end;
		}
	}
	PQclear(res);
	return true;
}

static void
name_and_type(struct tab *t)
{
	for (int i = 0; i < t->n_cols; i++) {
		struct col *c = &t->cols[i];
		enum cov_category cat;
		enum cov_confidence conf = cov_name_match(c->name, t->name, &cat);

		if (conf != COV_CONF_NONE)
			add_reason(c, conf, "name %s", cov_category_name(cat));
		if (cov_type_match(c->base))
			add_reason(c, COV_CONF_HIGH, "type %s", c->base);
	}
}

/*
 * Run SELECT in a short read-only transaction of its own, in one round
 * trip: its ACCESS SHARE lock goes at once, so a migration waiting for
 * the table (and everyone queued behind it) is not held up for the whole
 * scan, and a big database does not fill the lock table. Returns the
 * SELECT's rows, or NULL with *err.
 */
static PGresult *
sample_query(PGconn *conn, const char *select, char **err)
{
	char *sql = xasprintf("BEGIN READ ONLY; %s; COMMIT", select);
	PGresult *rows = NULL, *r;

	*err = NULL;
	if (!PQsendQuery(conn, sql))
		*err = db_error(conn, NULL);
	free(sql);
	while (!*err && (r = PQgetResult(conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK && !rows) {
			rows = r;
			continue;
		}
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !*err)
			*err = db_error(conn, r);
		PQclear(r);
	}
	/* drain what is left after an error, then end the failed transaction */
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		char *e2 = NULL;
		if (!db_exec(conn, "ROLLBACK", &e2))
			free(e2);
	}
	if (*err) {
		PQclear(rows);
		return NULL;
	}
	return rows;
}

/* Sample T's text and json columns: at most sample_rows rows. */
static void
sample_table(struct scan *s, struct tab *t)
{
	int64_t rows = s->cfg->coverage.sample_rows;
	struct strbuf sql = STRBUF_INIT;
	int idx[256], n = 0;
	char *err = NULL;

	bool hidden = false;

	for (int i = 0; i < t->n_cols && n < (int)ARRAY_SIZE(idx); i++) {
		if (!cov_type_sampled(t->cols[i].base))
			continue;
		if (t->cols[i].readable)
			idx[n++] = i;
		else
			hidden = true;
	}
	/* a least-privilege role reads only its rules' tables: counted once,
	 * not a warning per table and cycle */
	if (hidden && rows > 0)
		s->unreadable++;
	if (n == 0 || rows <= 0)
		return;

	sb_add(&sql, "SELECT ");
	for (int i = 0; i < n; i++) {
		char *q = db_ident(s->conn, t->cols[idx[i]].name);
		/* left() counts characters, which costs: only for values
		 * whose stored size says they may be long */
		sb_printf(&sql, "%sCASE WHEN pg_catalog.pg_column_size(%s) > %d "
			  "THEN pg_catalog.left(%s::text, %d) ELSE %s::text END",
			  i ? ", " : "", q, SAMPLE_BYTES / 2, q, SAMPLE_BYTES, q);
		free(q);
	}
	char *qt = db_qualified(s->conn, t->schema, t->name);
	sb_printf(&sql, " FROM %s", qt);
	free(qt);
	if (t->reltuples > (double)rows * SAMPLE_SPREAD) {
		/* SYSTEM picks whole pages: ask for enough of them that the
		 * sample is not empty by chance */
		double pct = 100.0 * (double)rows * SAMPLE_SPREAD / t->reltuples;
		if (t->relpages > 0 && pct < 100.0 * SAMPLE_MIN_PAGES / t->relpages)
			pct = 100.0 * SAMPLE_MIN_PAGES / t->relpages;
		if (pct < 100.0)
			sb_printf(&sql, " TABLESAMPLE SYSTEM (%.10g)", pct);
	}
	sb_printf(&sql, " LIMIT %lld", (long long)rows);

	PGresult *res = sample_query(s->conn, sql.s, &err);
	sb_free(&sql);
	if (!res) {
		log_warning("coverage: table %s.%s skipped: %s", t->schema,
			    t->name, err);
		free(err);
		t->skipped = true;
		return;
	}
	struct cov_sample *smp = xcalloc((size_t)n, sizeof(*smp));
	int nrows = PQntuples(res);
	for (int r = 0; r < nrows; r++)
		for (int i = 0; i < n; i++) {
			if (PQgetisnull(res, r, i))
				continue;
			bool json = cov_type_json(t->cols[idx[i]].base);
			size_t len = (size_t)PQgetlength(res, r, i);
			cov_sample_add(&smp[i], cov_scan_value(
				PQgetvalue(res, r, i),
				len < SAMPLE_BYTES ? len : SAMPLE_BYTES, json));
		}
	PQclear(res);
	log_debug("coverage: %s.%s: %d row%s sampled", t->schema, t->name,
		  nrows, nrows == 1 ? "" : "s");
	for (int i = 0; i < n; i++)
		for (int k = 0; k < COV_N_VALUE_KINDS; k++) {
			int pct;
			enum cov_confidence conf = cov_sample_verdict(&smp[i], k, &pct);
			if (conf != COV_CONF_NONE)
				add_reason(&t->cols[idx[i]], conf, "values %d%% %s",
					   pct, cov_value_kind_name(1u << k));
		}
	free(smp);
}

/* Every table whose foreign keys lead, through any number of tables, to
 * a subject table: breadth first from the subjects along the keys
 * backwards, so each table is visited once and cycles end. */
static void
references(struct scan *s, const struct coverage_subject *subjects,
	   size_t n_subjects)
{
	size_t *queue = xcalloc(s->n_tabs + 1, sizeof(*queue));
	const char **subject_of = xcalloc(s->n_tabs + 1, sizeof(*subject_of));
	size_t head = 0, tail = 0;

	for (size_t i = 0; i < s->n_tabs; i++)
		s->tabs[i].visited = false;
	if (subjects) {
		for (size_t i = 0; i < n_subjects; i++) {
			struct tab *t = find_name(s, subjects[i].schema,
						  subjects[i].table);
			if (t && !t->visited) {
				t->visited = true;
				subject_of[t - s->tabs] = subjects[i].subject;
				queue[tail++] = (size_t)(t - s->tabs);
			}
		}
	} else {
		/* without §8's subjects: a rule's table keyed by its
		 * subject_column */
		for (size_t i = 0; i < s->cfg->n_rules; i++) {
			const struct rule *r = &s->cfg->rules[i];
			struct tab *t;
			struct col *pk;
			if (!r->subject || !r->subject_column ||
			    !(t = find_name(s, r->schema, r->table)) || t->visited ||
			    !(pk = find_attnum(t, t->pk_attnum)) ||
			    strcmp(pk->name, r->subject_column) != 0)
				continue;
			t->visited = true;
			subject_of[t - s->tabs] = r->subject;
			queue[tail++] = (size_t)(t - s->tabs);
		}
	}
	/* A rule table with a subject holds the subject's rows by its
	 * subject_column: what refers to them is the subject's data too, and
	 * blocks an erasure when no rule covers it (SPEC §11). Its key is
	 * not the subject's, so it gets no "subject" reason itself. */
	size_t keyed = tail;
	for (size_t i = 0; i < s->cfg->n_rules; i++) {
		const struct rule *r = &s->cfg->rules[i];
		struct tab *t;
		if (!r->enabled || !r->subject ||
		    !(t = find_name(s, r->schema, r->table)) || t->visited)
			continue;
		t->visited = true;
		subject_of[t - s->tabs] = r->subject;
		queue[tail++] = (size_t)(t - s->tabs);
	}
	for (size_t i = 0; i < keyed; i++) {
		struct tab *t = &s->tabs[queue[i]];
		struct col *pk = find_attnum(t, t->pk_attnum);
		if (pk)
			add_reason(pk, COV_CONF_HIGH, "subject %s",
				   subject_of[queue[i]]);
	}
	while (head < tail) {
		size_t to = queue[head++];
		for (size_t i = 0; i < s->n_fks; i++) {
			struct fkey *f = &s->fks[i];
			if (f->to != to || f->from == to)
				continue;
			struct tab *from = &s->tabs[f->from];
			for (int k = 0; k < f->n_attnums; k++) {
				struct col *c = find_attnum(from, f->attnums[k]);
				if (c && !strstr(c->reasons.s ? c->reasons.s : "",
						 "refers to "))
					add_reason(c, COV_CONF_HIGH, "refers to %s",
						   subject_of[to]);
			}
			if (!from->visited) {
				from->visited = true;
				subject_of[f->from] = subject_of[to];
				queue[tail++] = f->from;
			}
		}
	}
	free(queue);
	free(subject_of);
}

/* Delete rules, then ON DELETE CASCADE from the tables they cover (any
 * depth; a table reached twice keeps the first rule). */
static void
delete_coverage(struct scan *s)
{
	size_t *queue = xcalloc(s->n_tabs + 1, sizeof(*queue));
	size_t head = 0, tail = 0;

	for (size_t i = 0; i < s->cfg->n_rules; i++) {
		const struct rule *r = &s->cfg->rules[i];
		struct tab *t;
		if (!r->enabled || r->action != ACTION_DELETE ||
		    !(t = find_name(s, r->schema, r->table)) || t->delete_rule)
			continue;
		t->delete_rule = r;
		t->cascade_rule = r;
		queue[tail++] = (size_t)(t - s->tabs);
	}
	while (head < tail) {
		size_t to = queue[head++];
		for (size_t i = 0; i < s->n_fks; i++) {
			struct fkey *f = &s->fks[i];
			struct tab *from = &s->tabs[f->from];
			if (f->to != to || f->deltype != 'c' || from->cascade_rule)
				continue;
			from->cascade_rule = s->tabs[to].cascade_rule;
			queue[tail++] = f->from;
		}
	}
	free(queue);
}

static const struct rule *
deidentify_rule(const struct config *cfg, const struct tab *t,
		const char *column)
{
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];
		if (!r->enabled || r->action != ACTION_DEIDENTIFY ||
		    strcmp(r->schema, t->schema) != 0 ||
		    strcmp(r->table, t->name) != 0)
			continue;
		for (size_t k = 0; k < r->n_deidentify; k++)
			if (strcmp(r->deidentify[k].column, column) == 0)
				return r;
	}
	return NULL;
}

static char *
covered_by(const struct config *cfg, const struct tab *t, const char *column)
{
	const struct rule *r;

	if (t->delete_rule)
		return xasprintf("rule %s", t->delete_rule->name);
	if ((r = deidentify_rule(cfg, t, column)))
		return xasprintf("rule %s", r->name);
	if (t->cascade_rule)
		return xasprintf("cascade from rule %s", t->cascade_rule->name);
	for (size_t i = 0; i < cfg->coverage.n_ignore; i++)
		if (cov_ignore_match(cfg->coverage.ignore[i].match, t->schema,
				     t->name, column))
			return xstrdup("ignore");
	return NULL;
}

static void
collect(struct scan *s, struct coverage_result *out)
{
	out->tables = xcalloc(s->n_tabs + 1, sizeof(*out->tables));
	out->tables_scanned = (long long)s->n_tabs;
	for (size_t i = 0; i < s->n_tabs; i++) {
		struct tab *t = &s->tabs[i];
		struct coverage_table *ct = &out->tables[out->n_tables];
		if (t->skipped)
			out->tables_skipped++;
		for (int k = 0; k < t->n_cols; k++) {
			struct col *c = &t->cols[k];
			if (c->conf == COV_CONF_NONE)
				continue;
			if (!ct->cols)
				ct->cols = xcalloc((size_t)t->n_cols,
						   sizeof(*ct->cols));
			struct coverage_column *cc = &ct->cols[ct->n_cols++];
			cc->name = xstrdup(c->name);
			cc->confidence = c->conf;
			for (char *p = c->reasons.s; p;) {
				char *nl = strchr(p, '\n');
				cc->reasons = xreallocarray(cc->reasons,
							    cc->n_reasons + 1,
							    sizeof(char *));
				cc->reasons[cc->n_reasons++] =
					nl ? xstrndup(p, (size_t)(nl - p)) : xstrdup(p);
				p = nl ? nl + 1 : NULL;
			}
			cc->covered_by = covered_by(s->cfg, t, c->name);
			if (!cc->covered_by)
				out->uncovered_columns++;
		}
		if (!ct->n_cols)
			continue;
		ct->schema = xstrdup(t->schema);
		ct->table = xstrdup(t->name);
		ct->skipped = t->skipped;
		ct->covered = true;
		for (size_t k = 0; k < ct->n_cols; k++)
			if (!ct->cols[k].covered_by)
				ct->covered = false;
		out->personal_tables++;
		if (!ct->covered)
			out->uncovered_tables++;
		out->n_tables++;
	}
}

static void
scan_free(struct scan *s)
{
	for (size_t i = 0; i < s->n_tabs; i++) {
		struct tab *t = &s->tabs[i];
		for (int k = 0; k < t->n_cols; k++) {
			free(t->cols[k].name);
			free(t->cols[k].base);
			sb_free(&t->cols[k].reasons);
		}
		free(t->cols);
		free(t->schema);
		free(t->name);
	}
	free(s->tabs);
	free(s->fks);
}

bool
coverage_run(PGconn *conn, const struct config *cfg,
	     const struct coverage_subject *subjects, size_t n_subjects,
	     struct coverage_result *out, char **err)
{
	struct scan s = { .conn = conn, .cfg = cfg };
	bool ok;

	memset(out, 0, sizeof(*out));
	/* read only: whatever goes wrong, coverage changes nothing. The
	 * catalog in one snapshot; the samples each in their own. */
	if (!db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
		return false;
	ok = load_tables(&s, err) && load_keys(&s, err);
	char *e2 = NULL;
	if (!db_exec(conn, ok ? "COMMIT" : "ROLLBACK", &e2)) {
		if (ok) {
			*err = e2;
			ok = false;
		} else {
			free(e2);
		}
	}
	if (ok) {
		for (size_t i = 0; i < s.n_tabs && ok; i++) {
			name_and_type(&s.tabs[i]);
			sample_table(&s, &s.tabs[i]);
			/* a lost connection is not one table's problem */
			if (PQstatus(conn) != CONNECTION_OK) {
				*err = xstrdup("the database connection was lost");
				ok = false;
			}
		}
	}
	if (ok && s.unreadable)
		log_info("coverage: %zu table%s not fully sampled: no SELECT "
			 "privilege on some text or json columns (their names, "
			 "types and references were still looked at)",
			 s.unreadable, s.unreadable == 1 ? "" : "s");
	if (ok) {
		references(&s, subjects, n_subjects);
		delete_coverage(&s);
		collect(&s, out);
	}
	scan_free(&s);
	if (!ok)
		coverage_free(out);
	return ok;
}

void
coverage_free(struct coverage_result *r)
{
	for (size_t i = 0; i < r->n_tables; i++) {
		struct coverage_table *t = &r->tables[i];
		for (size_t k = 0; k < t->n_cols; k++) {
			struct coverage_column *c = &t->cols[k];
			free(c->name);
			for (size_t j = 0; j < c->n_reasons; j++)
				free(c->reasons[j]);
			free(c->reasons);
			free(c->covered_by);
		}
		free(t->cols);
		free(t->schema);
		free(t->table);
	}
	free(r->tables);
	memset(r, 0, sizeof(*r));
}

bool
coverage_wanted(const struct config *cfg)
{
	return cfg->report.directory || cfg->metrics_file ||
	       (cfg->mail.configured && cfg->mail.send != MAIL_SEND_NEVER);
}

void
coverage_cycle_run(PGconn *conn, const struct config *cfg,
		   struct coverage_cycle *out)
{
	memset(out, 0, sizeof(*out));
	if (!coverage_wanted(cfg) || !conn || PQstatus(conn) != CONNECTION_OK)
		return;
	if (coverage_run(conn, cfg, NULL, 0, &out->result, &out->error)) {
		out->ran = true;
		if (out->result.uncovered_columns)
			log_info("coverage: %lld personal-data column%s in %lld "
				   "table%s no rule covers; see `retentiond "
				   "coverage`", out->result.uncovered_columns,
				   out->result.uncovered_columns == 1 ? "" : "s",
				   out->result.uncovered_tables,
				   out->result.uncovered_tables == 1 ? "" : "s");
		return;
	}
	log_error("coverage failed this cycle (the rules are not affected): %s",
		  out->error);
	/* the transaction was rolled back; the connection stays usable */
}

void
coverage_cycle_free(struct coverage_cycle *c)
{
	if (c->ran)
		coverage_free(&c->result);
	free(c->error);
	memset(c, 0, sizeof(*c));
}
