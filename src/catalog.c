#include "catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "plan_citus.h"

struct ctx {
	PGconn *conn;
	const struct config *cfg;
	const struct rule *rule;
	struct diag *diag;
	char *label;		/* rule "x" (schema.table) */
};

#define RULE_LINE(c, key) ((c)->rule->lines.key > 0 ? (c)->rule->lines.key : (c)->rule->line)

static void
say(struct ctx *c, enum diag_level level, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
say(struct ctx *c, enum diag_level level, int line, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_add(c->diag, level, c->rule->file ? c->rule->file : c->cfg->path,
		 line, "%s: %s", c->label, msg);
}

void
catalog_table_free(struct catalog_table *t)
{
	for (int i = 0; i < t->n_cols; i++) {
		free(t->cols[i].name);
		free(t->cols[i].type);
		free(t->cols[i].base);
	}
	free(t->cols);
	free(t->oid);
	memset(t, 0, sizeof(*t));
}

const struct catalog_column *
catalog_column(const struct catalog_table *t, const char *name)
{
	for (int i = 0; i < t->n_cols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return &t->cols[i];
	return NULL;
}

/* Savepoint around each probe so one failing statement does not abort the
 * read-only transaction the whole check runs in. */
static PGresult *
probe(struct ctx *c, const char *sql, int n, const char *const *params,
      char **err)
{
	char *e = NULL;
	if (!db_exec(c->conn, "SAVEPOINT probe", &e)) {
		*err = e;
		return NULL;
	}
	PGresult *res = db_query(c->conn, sql, n, params, err);
	if (!db_exec(c->conn, res ? "RELEASE SAVEPOINT probe"
				  : "ROLLBACK TO SAVEPOINT probe", &e)) {
		log_debug("savepoint: %s", e);
		free(e);
	}
	return res;
}

bool
catalog_table_load(PGconn *conn, const char *schema, const char *table,
		   struct catalog_table *t, char **err)
{
	memset(t, 0, sizeof(*t));
	const char *p1[] = { schema, table };
	PGresult *res = db_query(conn,
		"SELECT c.oid, c.relkind FROM pg_catalog.pg_class c"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = $1 AND c.relname = $2", 2, p1, err);
	if (!res)
		return false;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return true;	/* t->oid stays NULL: does not exist */
	}
	t->oid = xstrdup(PQgetvalue(res, 0, 0));
	t->relkind = PQgetvalue(res, 0, 1)[0];
	PQclear(res);

	const char *p2[] = { t->oid };
	res = db_query(conn,
		"SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
		"  b.typname, b.typcategory,"
		"  CASE WHEN b.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4"
		"       THEN a.atttypmod - 4 ELSE -1 END,"
		"  a.attnotnull, a.attnum"
		" FROM pg_catalog.pg_attribute a"
		" JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
		" JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd'"
		"       THEN t.typbasetype ELSE t.oid END"
		" WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
		" ORDER BY a.attnum", 1, p2, err);
	if (!res) {
		catalog_table_free(t);
		return false;
	}
	t->n_cols = PQntuples(res);
	t->cols = xcalloc((size_t)t->n_cols, sizeof(*t->cols));
	for (int i = 0; i < t->n_cols; i++) {
		struct catalog_column *col = &t->cols[i];
		col->name = xstrdup(PQgetvalue(res, i, 0));
		col->type = xstrdup(PQgetvalue(res, i, 1));
		col->base = xstrdup(PQgetvalue(res, i, 2));
		col->category = PQgetvalue(res, i, 3)[0];
		col->max_len = atoi(PQgetvalue(res, i, 4));
		col->not_null = PQgetvalue(res, i, 5)[0] == 't';
		col->attnum = atoi(PQgetvalue(res, i, 6));
	}
	PQclear(res);
	return true;
}

bool
catalog_has_index_on(PGconn *conn, const struct catalog_table *t,
		     const struct catalog_column *col, bool *has, char **err)
{
	char attnum[16];
	snprintf(attnum, sizeof(attnum), "%d", col->attnum);
	const char *p[] = { t->oid, attnum };
	PGresult *res = db_query(conn,
		"SELECT count(*) FROM pg_catalog.pg_index"
		" WHERE indrelid = $1 AND indkey[0] = $2::int2", 2, p, err);
	if (!res)
		return false;
	*has = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
	PQclear(res);
	return true;
}

bool
catalog_is_datetime(const struct catalog_column *col)
{
	return strcmp(col->base, "date") == 0 ||
	       strcmp(col->base, "timestamp") == 0 ||
	       strcmp(col->base, "timestamptz") == 0;
}

bool
catalog_is_text(const struct catalog_column *col)
{
	return col->category == 'S';	/* text, varchar, bpchar, name... */
}

/* Look up a column the rule names; an error when it is missing. */
static const struct catalog_column *
need_column(struct ctx *c, const struct catalog_table *t, const char *key,
	    const char *name, int line)
{
	const struct catalog_column *col = catalog_column(t, name);
	if (!col)
		say(c, DIAG_ERROR, line, "%s column \"%s\" does not exist", key,
		    name);
	return col;
}

/* The shortest value each text method writes, to catch varchar(n) that
 * cannot hold it. */
static int
method_min_len(enum deid_method m)
{
	switch (m) {
	case METHOD_HASH:
		return 64;	/* hex HMAC-SHA256 */
	case METHOD_REDACT:
		return 10;	/* "[redacted]" */
	default:
		return 0;
	}
}

static void
check_method(struct ctx *c, const struct catalog_table *t,
	     const struct column_method *cm)
{
	int line = cm->line > 0 ? cm->line : RULE_LINE(c, deidentify);
	const struct catalog_column *col = need_column(c, t, "deidentify", cm->column,
					       line);
	const char *m = deid_method_name(cm->method);
	if (!col)
		return;

	switch (cm->method) {
	case METHOD_NULL:
		if (col->not_null)
			say(c, DIAG_ERROR, line,
			    "column \"%s\" is NOT NULL and cannot be set to null; "
			    "use another method or drop the constraint",
			    col->name);
		return;
	case METHOD_TRUNCATE_IP:
		if (strcmp(col->base, "inet") != 0 &&
		    strcmp(col->base, "cidr") != 0 && !catalog_is_text(col))
			say(c, DIAG_ERROR, line,
			    "method \"%s\" needs an inet, cidr or text column; "
			    "\"%s\" is %s", m, col->name, col->type);
		return;
	case METHOD_YEAR:
		if (!catalog_is_datetime(col))
			say(c, DIAG_ERROR, line,
			    "method \"%s\" needs a date or timestamp column; "
			    "\"%s\" is %s", m, col->name, col->type);
		return;
	case METHOD_HASH:
	case METHOD_REDACT:
	case METHOD_MASK_EMAIL:
		if (!catalog_is_text(col)) {
			say(c, DIAG_ERROR, line,
			    "method \"%s\" needs a text column; \"%s\" is %s",
			    m, col->name, col->type);
			return;
		}
		if (col->max_len >= 0 && col->max_len < method_min_len(cm->method))
			say(c, DIAG_ERROR, line,
			    "method \"%s\" writes %d characters but column \"%s\" "
			    "is %s", m, method_min_len(cm->method), col->name,
			    col->type);
		return;
	}
}

static void
check_index(struct ctx *c, const struct catalog_table *t,
	    const struct catalog_column *age)
{
	char *err = NULL;
	bool has = false;
	if (!catalog_has_index_on(c->conn, t, age, &has, &err)) {
		say(c, DIAG_WARNING, RULE_LINE(c, age_column),
		    "could not look up indexes: %s", err);
		free(err);
		return;
	}
	if (!has)
		say(c, DIAG_WARNING, RULE_LINE(c, age_column),
		    "no index starts with age column \"%s\"; every batch will "
		    "scan the whole table (CREATE INDEX ON %s.%s (%s))",
		    age->name, c->rule->schema, c->rule->table, age->name);
}

/* On a Citus coordinator: what kind of table the rule's is, and how its
 * batches run (plan_citus.h). */
static void
check_citus(struct ctx *c, const struct catalog_table *t)
{
	const char *kind;
	char *err = NULL;
	if (!plan_citus_kind(c->conn, t->oid, &kind, &err)) {
		say(c, DIAG_WARNING, RULE_LINE(c, table),
		    "could not tell whether the table is a Citus table: %s", err);
		free(err);
		return;
	}
	if (!kind)
		return;
	if (strcmp(kind, "local") == 0) {
		say(c, DIAG_NOTE, RULE_LINE(c, table),
		    "a local table on the Citus coordinator: runs as on a "
		    "single server");
		return;
	}
	/* what plan_citus.c would refuse at run time, refused here */
	char *pk = NULL;
	if (!plan_citus_primary_key(c->conn, t->oid, &pk, &err)) {
		say(c, DIAG_WARNING, RULE_LINE(c, table),
		    "could not read the primary key: %s", err);
		free(err);
	} else if (!pk) {
		say(c, DIAG_ERROR, RULE_LINE(c, table),
		    "the Citus %s table has no primary key, which retentiond "
		    "needs to pick rows on Citus", kind);
	}
	free(pk);
	for (size_t i = 0; i < c->rule->n_deidentify; i++) {
		const struct column_method *cm = &c->rule->deidentify[i];
		const struct catalog_column *col = catalog_column(t, cm->column);
		if (cm->method == METHOD_TRUNCATE_IP && col &&
		    strcmp(col->base, "inet") != 0 && strcmp(col->base, "cidr") != 0)
			say(c, DIAG_ERROR,
			    cm->line > 0 ? cm->line : RULE_LINE(c, deidentify),
			    "column \"%s\": " PLAN_CITUS_NO_TEXT_IP, cm->column);
	}
	say(c, DIAG_NOTE, RULE_LINE(c, table),
	    "a Citus %s table: rows are picked by primary key, "
	    "expiry goes in time slices of the age, holds are passed to the "
	    "%s as a list of ids, each batch commits with its audit row%s",
	    kind, strcmp(kind, "distributed") == 0 ? "shards" : "nodes",
	    strcmp(kind, "distributed") == 0
		    ? "; a subject's erasure or access on the distribution "
		      "column reaches one shard" : "");
}

static void
check_partitioning(struct ctx *c, const struct catalog_table *t)
{
	char *err = NULL;
	const char *p[] = { t->oid };
	PGresult *res = probe(c,
		"SELECT pg_catalog.pg_get_partkeydef($1::oid),"
		" (SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = $1::oid)",
		1, p, &err);
	if (!res) {
		say(c, DIAG_WARNING, RULE_LINE(c, table),
		    "could not read the partition key: %s", err);
		free(err);
		return;
	}
	const char *key = PQgetvalue(res, 0, 0);
	const char *count = PQgetvalue(res, 0, 1);
	say(c, DIAG_NOTE, RULE_LINE(c, table),
	    "table is partitioned (%s, %s partitions); partitions = \"%s\"",
	    key, count, partitions_mode_name(c->rule->partitions));
	PQclear(res);
}

static void
check_where(struct ctx *c)
{
	char *err = NULL;
	char *qt = db_qualified(c->conn, c->rule->schema, c->rule->table);
	if (!qt)
		return;
	/* EXPLAIN parses and plans without running; the extended protocol
	 * refuses a second statement smuggled in after a semicolon. */
	char *sql = xasprintf("EXPLAIN SELECT 1 FROM %s WHERE (%s)", qt,
			      c->rule->where);
	PGresult *res = probe(c, sql, 0, NULL, &err);
	if (!res) {
		say(c, DIAG_ERROR, RULE_LINE(c, where),
		    "invalid \"where\" condition: %s", err);
		free(err);
	}
	PQclear(res);
	free(sql);
	free(qt);
}

/* Whether the session's role holds PRIV on table OID (called NAME in the
 * message) or, unless COLUMN is NULL, on that column of it; an error when
 * not. */
static void
need_privilege(struct ctx *c, const char *oid, const char *name,
	       const char *column, const char *priv)
{
	char *err = NULL;
	const char *p[] = { oid, priv, column };
	PGresult *res = column
		? probe(c, "SELECT pg_catalog.has_column_privilege($1::oid,"
			" $3::text, $2::text)", 3, p, &err)
		: probe(c, "SELECT pg_catalog.has_table_privilege($1::oid, $2)",
			2, p, &err);
	if (!res) {
		free(err);	/* a missing column is reported on its own */
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		char *what = column ? xasprintf("column \"%s\" of %s", column, name)
				    : xstrdup(name);
		say(c, DIAG_ERROR, RULE_LINE(c, table),
		    "role \"%s\" lacks %s privilege on %s (see `retentiond "
		    "grants`)", PQuser(c->conn), priv, what);
		free(what);
	}
	PQclear(res);
}

/* SELECT ... FOR UPDATE SKIP LOCKED, which skips rows others hold, needs
 * UPDATE on at least one column. */
static void
need_any_update(struct ctx *c, const char *oid, const char *name)
{
	char *err = NULL;
	const char *p[] = { oid };
	PGresult *res = probe(c, "SELECT pg_catalog.has_any_column_privilege("
			      "$1::oid, 'UPDATE')", 1, p, &err);
	if (!res) {
		free(err);
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't')
		say(c, DIAG_ERROR, RULE_LINE(c, table),
		    "role \"%s\" lacks UPDATE privilege on every column of %s; "
		    "skipping rows that others hold (FOR UPDATE SKIP LOCKED) "
		    "needs it on one (see `retentiond grants`)",
		    PQuser(c->conn), name);
	PQclear(res);
}

/* What the batches need on table OID: the rule's table, or one of its
 * leaf partitions, which they work on directly and PostgreSQL checks on
 * their own privileges, not the parent's. */
static void
check_table_privileges(struct ctx *c, const char *oid, const char *name)
{
	const struct rule *r = c->rule;

	need_privilege(c, oid, name, NULL, "SELECT");
	if (r->action == ACTION_DEIDENTIFY || r->on_erasure == ACTION_DEIDENTIFY) {
		for (size_t i = 0; i < r->n_deidentify; i++)
			need_privilege(c, oid, name, r->deidentify[i].column,
				       "UPDATE");
		if (r->marker_column)
			need_privilege(c, oid, name, r->marker_column, "UPDATE");
	}
	if (r->action == ACTION_DELETE || r->on_erasure == ACTION_DELETE) {
		need_privilege(c, oid, name, NULL, "DELETE");
		need_any_update(c, oid, name);
	}
}

/*
 * Each privilege on its own: has_table_privilege() with a list ("SELECT,
 * DELETE") is true when any one of them is held, so a role with SELECT
 * alone used to pass. UPDATE is asked per column, since `grants` gives it
 * per column; table-level UPDATE counts too.
 */
static void
check_privileges(struct ctx *c, const struct catalog_table *t)
{
	check_table_privileges(c, t->oid, "the table");
	if (t->relkind != 'p')
		return;
	char *err = NULL;
	const char *p[] = { t->oid };
	PGresult *res = probe(c,
		"SELECT c.oid, n.nspname || '.' || c.relname"
		" FROM pg_catalog.pg_partition_tree($1::oid::pg_catalog.regclass) pt"
		" JOIN pg_catalog.pg_class c ON c.oid = pt.relid"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" WHERE pt.isleaf AND pt.level > 0 ORDER BY 2", 1, p, &err);
	if (!res) {
		free(err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		char *name = xasprintf("partition %s", PQgetvalue(res, i, 1));
		check_table_privileges(c, PQgetvalue(res, i, 0), name);
		free(name);
	}
	PQclear(res);
}

/* A row still referenced is skipped: each batch looks for references, so
 * the role must read the referencing columns of every table that blocks. */
static void
check_reference_privileges(struct ctx *c, const struct catalog_table *t)
{
	char *err = NULL;
	const char *p[] = { t->oid };
	PGresult *res = probe(c,
		"SELECT DISTINCT n.nspname || '.' || r.relname, a.attname"
		" FROM pg_catalog.pg_constraint f"
		" JOIN pg_catalog.pg_class r ON r.oid = f.conrelid"
		" JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
		" CROSS JOIN LATERAL pg_catalog.unnest(f.conkey) AS k(attnum)"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = f.conrelid"
		"   AND a.attnum = k.attnum"
		" WHERE f.contype = 'f' AND f.confrelid = $1::oid"
		"   AND f.conrelid <> f.confrelid AND f.conparentid = 0"
		"   AND f.confdeltype NOT IN ('c', 'n', 'd')"
		"   AND NOT pg_catalog.has_column_privilege(f.conrelid, a.attnum,"
		"                                           'SELECT')"
		" ORDER BY 1, 2", 1, p, &err);
	if (!res) {
		free(err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		say(c, DIAG_ERROR, RULE_LINE(c, table),
		    "role \"%s\" lacks SELECT privilege on column \"%s\" of %s, "
		    "which references the table: the batches could not tell "
		    "which rows are still referenced (see `retentiond grants`)",
		    PQuser(c->conn), PQgetvalue(res, i, 1), PQgetvalue(res, i, 0));
	PQclear(res);
}

/* Foreign keys that point at this table: cascades remove rows elsewhere,
 * other references block rows until the referencing rows are gone. */
static void
check_references(struct ctx *c, const struct catalog_table *t)
{
	if (c->rule->action != ACTION_DELETE &&
	    c->rule->on_erasure != ACTION_DELETE)
		return;
	char *err = NULL;
	const char *p[] = { t->oid };
	PGresult *res = probe(c,
		"SELECT n.nspname || '.' || r.relname, f.confdeltype"
		" FROM pg_catalog.pg_constraint f"
		" JOIN pg_catalog.pg_class r ON r.oid = f.conrelid"
		" JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
		" WHERE f.contype = 'f' AND f.confrelid = $1::oid"
		"   AND f.conrelid <> f.confrelid AND f.conparentid = 0"
		" ORDER BY 1", 1, p, &err);
	if (!res) {
		free(err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *ref = PQgetvalue(res, i, 0);
		char type = PQgetvalue(res, i, 1)[0];
		if (type == 'c')
			say(c, DIAG_NOTE, RULE_LINE(c, table),
			    "deleting a row also deletes its rows in %s "
			    "(ON DELETE CASCADE)", ref);
		else if (type == 'n' || type == 'd')
			say(c, DIAG_NOTE, RULE_LINE(c, table),
			    "deleting a row changes its rows in %s "
			    "(ON DELETE SET %s)", ref, type == 'n' ? "NULL" : "DEFAULT");
		else
			say(c, DIAG_NOTE, RULE_LINE(c, table),
			    "rows still referenced from %s are skipped and "
			    "counted as blocked", ref);
	}
	PQclear(res);
}

static void
check_rule(struct ctx *c)
{
	const struct rule *r = c->rule;
	struct catalog_table t = { 0 };
	char *err = NULL;

	if (!catalog_table_load(c->conn, c->rule->schema, c->rule->table, &t,
				&err)) {
		say(c, DIAG_ERROR, RULE_LINE(c, table),
		    "could not read the catalog: %s", err);
		free(err);
		return;
	}
	if (!t.oid) {
		say(c, DIAG_ERROR, RULE_LINE(c, table), "table does not exist");
		return;
	}
	if (t.relkind != 'r' && t.relkind != 'p') {
		say(c, DIAG_ERROR, RULE_LINE(c, table),
		    "is not a table (relkind '%c'); retention applies to tables "
		    "and partitioned tables", t.relkind);
		catalog_table_free(&t);
		return;
	}

	const struct catalog_column *age = need_column(c, &t, "age_column",
					       r->age_column,
					       RULE_LINE(c, age_column));
	if (age && !catalog_is_datetime(age))
		say(c, DIAG_ERROR, RULE_LINE(c, age_column),
		    "age column \"%s\" must be a date or timestamp, not %s",
		    age->name, age->type);

	if (r->subject_column)
		(void)need_column(c, &t, "subject_column", r->subject_column,
				  RULE_LINE(c, subject_column));
	if (r->marker_column) {
		const struct catalog_column *m = need_column(c, &t, "marker_column",
			r->marker_column, RULE_LINE(c, marker_column));
		if (m && !catalog_is_datetime(m) && strcmp(m->base, "bool") != 0)
			say(c, DIAG_ERROR, RULE_LINE(c, marker_column),
			    "marker column \"%s\" must be a timestamp, date or "
			    "boolean, not %s", m->name, m->type);
		if (m && m->not_null)
			say(c, DIAG_ERROR, RULE_LINE(c, marker_column),
			    "marker column \"%s\" is NOT NULL; it must be NULL "
			    "until a row is de-identified", m->name);
	}
	for (size_t i = 0; i < r->n_deidentify; i++)
		check_method(c, &t, &r->deidentify[i]);
	if (r->where)
		check_where(c);
	if (age && catalog_is_datetime(age))
		check_index(c, &t, age);
	if (t.relkind == 'p')
		check_partitioning(c, &t);
	check_citus(c, &t);
	check_privileges(c, &t);
	check_references(c, &t);
	if (c->rule->action == ACTION_DELETE || c->rule->on_erasure == ACTION_DELETE)
		check_reference_privileges(c, &t);
	catalog_table_free(&t);
}

void
catalog_check_rules(PGconn *conn, const struct config *cfg, struct diag *diag)
{
	char *err = NULL;

	/* Nothing in `check` may change the database. */
	if (!db_exec(conn, "BEGIN TRANSACTION READ ONLY", &err)) {
		diag_error(diag, cfg->database.conninfo_file,
			   cfg->database.conninfo_line, "could not start a transaction: %s",
			   err);
		free(err);
		return;
	}
	const char *p[] = { cfg->database.schema };
	PGresult *res = db_query(conn,
		"SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, p,
		&err);
	if (res && PQntuples(res) == 0)
		diag_warning(diag, cfg->database.conninfo_file,
			     cfg->database.conninfo_line, "schema \"%s\" does not exist yet; run "
			     "`retentiond init-db` before the first cycle",
			     cfg->database.schema);
	if (!res)
		free(err);
	PQclear(res);

	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];
		struct ctx c = {
			.conn = conn, .cfg = cfg, .rule = r, .diag = diag,
			.label = xasprintf("rule \"%s\" (%s.%s)", r->name,
					   r->schema, r->table),
		};
		/* a failing probe must not abort the checks of later rules */
		if (db_exec(conn, "SAVEPOINT rule", &err)) {
			check_rule(&c);
			if (!db_exec(conn, "ROLLBACK TO SAVEPOINT rule", &err)) {
				log_debug("savepoint: %s", err);
				free(err);
			}
		} else {
			diag_error(diag, r->file, r->line, "%s: %s", c.label, err);
			free(err);
		}
		free(c.label);
	}
	if (!db_exec(conn, "ROLLBACK", &err)) {
		log_debug("rollback: %s", err);
		free(err);
	}
}

PGresult *
catalog_referencing_keys(PGconn *conn, const char *oid, char **err)
{
	const char *p[] = { oid };
	return db_query(conn,
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
}
