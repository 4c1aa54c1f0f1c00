#include "grants.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

char *
sql_quote_ident(const char *name)
{
	struct strbuf b = STRBUF_INIT;
	sb_add(&b, "\"");
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			sb_add(&b, "\"");
		sb_addn(&b, p, 1);
	}
	sb_add(&b, "\"");
	return sb_take(&b);
}

static bool
rule_does(const struct rule *r, enum rule_action a)
{
	return r->action == a || (r->subject && r->on_erasure == a);
}

/* Columns a de-identifying rule writes: its methods' columns and marker. */
static void
update_columns(const struct rule *r, struct strbuf *b)
{
	for (size_t i = 0; i < r->n_deidentify; i++) {
		char *q = sql_quote_ident(r->deidentify[i].column);
		sb_printf(b, "%s%s", i ? ", " : "", q);
		free(q);
	}
	if (r->marker_column) {
		char *q = sql_quote_ident(r->marker_column);
		sb_printf(b, "%s%s", r->n_deidentify ? ", " : "", q);
		free(q);
	}
}

/* The schemas USAGE was granted on so far. */
struct schemas {
	char **v;
	size_t n;
};

/* USAGE on each schema once. */
static void
grant_usage(struct strbuf *out, struct schemas *seen, const char *schema,
	    const char *role_q)
{
	for (size_t i = 0; i < seen->n; i++)
		if (strcmp(seen->v[i], schema) == 0)
			return;
	seen->v = xreallocarray(seen->v, seen->n + 1, sizeof(*seen->v));
	seen->v[seen->n++] = xstrdup(schema);
	char *q = sql_quote_ident(schema);
	sb_printf(out, "GRANT USAGE ON SCHEMA %s TO %s;\n", q, role_q);
	free(q);
}

static bool
rule_table(const struct config *cfg, const char *schema, const char *table)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (strcmp(cfg->rules[i].schema, schema) == 0 &&
		    strcmp(cfg->rules[i].table, table) == 0)
			return true;
	return false;
}

/* SELECT on the referencing columns of tables without a rule that point
 * at rule I's table, one GRANT per table. */
static void
grant_refs(const struct config *cfg, size_t i, const struct grants_refs *refs,
	   const char *role_q, struct schemas *seen, struct strbuf *out)
{
	if (!refs || !refs->known)
		return;		/* said once, at the top */
	bool said = false;
	for (size_t k = 0; k < refs->n; k++) {
		const struct grants_ref *g = &refs->v[k];
		if (g->rule != i || rule_table(cfg, g->schema, g->table))
			continue;
		/* the first column of this table: start its GRANT */
		if (k == 0 || refs->v[k - 1].rule != i ||
		    strcmp(refs->v[k - 1].schema, g->schema) != 0 ||
		    strcmp(refs->v[k - 1].table, g->table) != 0) {
			if (!said)
				sb_printf(out, "-- rows still referenced are skipped, "
					  "so the references are read:\n");
			said = true;
			grant_usage(out, seen, g->schema, role_q);
			sb_add(out, "GRANT SELECT (");
		} else {
			sb_add(out, ", ");
		}
		char *col = sql_quote_ident(g->column);
		sb_add(out, col);
		free(col);
		/* the last column of this table: end it */
		if (k + 1 == refs->n || refs->v[k + 1].rule != i ||
		    strcmp(refs->v[k + 1].schema, g->schema) != 0 ||
		    strcmp(refs->v[k + 1].table, g->table) != 0) {
			char *rs = sql_quote_ident(g->schema);
			char *rt = sql_quote_ident(g->table);
			sb_printf(out, ") ON %s.%s TO %s;\n", rs, rt, role_q);
			free(rs);
			free(rt);
		}
	}
}

/* The privileges on a rule's table (or one of its partitions). */
static void
grant_table(struct strbuf *out, const struct rule *rule, const char *sch,
	    const char *tab, const char *r, bool explain)
{
	/* SELECT on the whole table: `where` may name any column */
	sb_printf(out, "GRANT SELECT%s ON %s.%s TO %s;\n",
		  rule_does(rule, ACTION_DELETE) ? ", DELETE" : "", sch, tab, r);
	if (rule_does(rule, ACTION_DEIDENTIFY)) {
		struct strbuf cols = STRBUF_INIT;
		update_columns(rule, &cols);
		sb_printf(out, "GRANT UPDATE (%s) ON %s.%s TO %s;\n",
			  cols.s ? cols.s : "", sch, tab, r);
		sb_free(&cols);
	} else if (rule_does(rule, ACTION_DELETE)) {
		/* Batches pick rows with SELECT ... FOR UPDATE SKIP LOCKED, so
		 * that rows others hold are skipped, and PostgreSQL allows FOR
		 * UPDATE only with UPDATE on some column. The age column gives
		 * least away: the role may delete any row of the table already,
		 * and decides by that column anyway; the batches never write
		 * it. */
		char *age = sql_quote_ident(rule->age_column);
		if (explain)
			sb_add(out, "-- FOR UPDATE SKIP LOCKED (rows others hold "
			       "are skipped) needs UPDATE on a column;\n"
			       "-- the age column, which retentiond never writes:\n");
		sb_printf(out, "GRANT UPDATE (%s) ON %s.%s TO %s;\n", age, sch,
			  tab, r);
		free(age);
	}
}

/* The same privileges on each leaf partition of rule I's table. */
static void
grant_parts(const struct config *cfg, size_t i, const struct grants_refs *refs,
	    const char *role_q, struct schemas *seen, struct strbuf *out)
{
	const struct rule *rule = &cfg->rules[i];

	if (!refs || !refs->known)
		return;		/* said once, at the top */
	bool said = false;
	for (size_t k = 0; k < refs->n_parts; k++) {
		const struct grants_part *p = &refs->parts[k];
		if (p->rule != i)
			continue;
		if (!said)
			sb_add(out, "-- its partitions: the batches work on each "
			       "one directly (a partition added later\n"
			       "-- needs these too; run `retentiond grants` "
			       "again):\n");
		said = true;
		grant_usage(out, seen, p->schema, role_q);
		char *ps = sql_quote_ident(p->schema);
		char *pt = sql_quote_ident(p->table);
		grant_table(out, rule, ps, pt, role_q, false);
		free(ps);
		free(pt);
	}
}

static bool
uses_hash(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		for (size_t j = 0; j < cfg->rules[i].n_deidentify; j++)
			if (cfg->rules[i].deidentify[j].method == METHOD_HASH)
				return true;
	return false;
}

/* max_replica_lag set globally or on any rule */
static bool
watches_replicas(const struct config *cfg)
{
	if (duration_ms(&cfg->limits.max_replica_lag) > 0)
		return true;
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (duration_ms(&cfg->rules[i].limits.max_replica_lag) > 0)
			return true;
	return false;
}

static bool
maybe_partitioned(const struct grants_refs *refs, size_t i)
{
	if (!refs || !refs->known)
		return true;
	for (size_t k = 0; k < refs->n_parts; k++)
		if (refs->parts[k].rule == i)
			return true;
	return false;
}

void
grants_refs_free(struct grants_refs *refs)
{
	for (size_t i = 0; i < refs->n; i++) {
		free(refs->v[i].schema);
		free(refs->v[i].table);
		free(refs->v[i].column);
	}
	free(refs->v);
	for (size_t i = 0; i < refs->n_parts; i++) {
		free(refs->parts[i].schema);
		free(refs->parts[i].table);
	}
	free(refs->parts);
	for (size_t i = 0; i < refs->n_access; i++) {
		free(refs->access_schemas[i]);
		free(refs->access_tables[i]);
	}
	free(refs->access_schemas);
	free(refs->access_tables);
	free(refs->why);
	memset(refs, 0, sizeof(*refs));
}

void
grants_render(const struct config *cfg, const char *role,
	      const struct grants_refs *refs, struct strbuf *out)
{
	char *r = sql_quote_ident(role);
	char *s = sql_quote_ident(cfg->database.schema);
	struct schemas seen = { NULL, 0 };

	sb_printf(out,
		"-- Least privilege for role %s to run the %zu rule%s of %s.\n"
		"-- Run as the owner of the tables, after `retentiond init-db`.\n"
		"\n"
		"-- retentiond's own schema: the audit trail is append-only for it.\n"
		"GRANT USAGE ON SCHEMA %s TO %s;\n"
		"GRANT SELECT ON %s.schema_version TO %s;\n"
		"GRANT SELECT, INSERT, UPDATE ON %s.runs TO %s;\n"
		"GRANT SELECT, INSERT ON %s.actions TO %s;\n"
		"GRANT SELECT, UPDATE ON %s.audit_head TO %s;\n"
		"GRANT SELECT, INSERT, UPDATE ON %s.legal_holds TO %s;\n"
		"GRANT SELECT, INSERT, UPDATE ON %s.erasure_requests TO %s;\n"
		"GRANT SELECT, INSERT, UPDATE ON %s.outbox TO %s;\n"
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA %s TO %s;\n"
		"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %s TO %s;\n",
		r, cfg->n_rules, cfg->n_rules == 1 ? "" : "s", cfg->path,
		s, r, s, r, s, r, s, r, s, r, s, r, s, r, s, r, s, r, s, r);
	sb_printf(out, "GRANT SELECT, INSERT, UPDATE ON %s.access_requests TO %s;\n",
		  s, r);
	seen.v = xcalloc(1, sizeof(*seen.v));
	seen.v[seen.n++] = xstrdup(cfg->database.schema);
	if (uses_hash(cfg))
		sb_printf(out,
			"\n-- \"hash\" sends the pseudonym key's HMAC pads as bind "
			"parameters. So that a\n"
			"-- server that logs statements never logs them, retentiond "
			"turns parameter\n"
			"-- logging off for its sessions; that takes, from a "
			"superuser (PostgreSQL 15+):\n"
			"-- GRANT SET ON PARAMETER log_parameter_max_length TO %s;\n",
			r);
	if (watches_replicas(cfg))
		sb_printf(out,
			"\n-- max_replica_lag: pg_stat_replication shows how far "
			"each standby replays\n"
			"-- only to members of pg_monitor (or pg_read_all_stats).\n"
			"GRANT pg_monitor TO %s;\n", r);
	if (!refs || !refs->known)
		sb_printf(out,
			"\n-- The database could not be asked%s%s.\n"
			"-- Missing below, so: the same GRANTs on each partition "
			"of a partitioned\n"
			"-- table, and GRANT SELECT (its referencing columns) on "
			"each table without\n"
			"-- a rule whose foreign key references a delete rule's "
			"table. Run\n"
			"-- `retentiond grants` where it can connect to have them "
			"listed.\n",
			refs && refs->why ? ": " : "",
			refs && refs->why ? refs->why : "");

	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *rule = &cfg->rules[i];
		char *sch = sql_quote_ident(rule->schema);
		char *tab = sql_quote_ident(rule->table);

		sb_printf(out, "\n-- rule \"%s\"%s\n", rule->name,
			  rule->enabled ? "" : " (disabled)");
		grant_usage(out, &seen, rule->schema, r);
		grant_table(out, rule, sch, tab, r, true);
		grant_parts(cfg, i, refs, r, &seen, out);
		if (rule_does(rule, ACTION_DELETE))
			grant_refs(cfg, i, refs, r, &seen, out);
		if (rule->partitions != PARTITIONS_ROWS &&
		    rule_does(rule, ACTION_DELETE) && maybe_partitioned(refs, i))
			sb_printf(out,
				"-- If %s.%s is partitioned, detaching and dropping "
				"partitions needs the owner\n"
				"-- of it and of each partition: ALTER TABLE ... OWNER "
				"TO %s; or set partitions = \"rows\".\n",
				sch, tab, r);
		free(sch);
		free(tab);
	}
	if (refs && refs->n_access) {
		sb_add(out, "\n-- access exports: every row of a subject, in each "
		       "table it reaches\n");
		for (size_t i = 0; i < refs->n_access; i++) {
			char *sch = sql_quote_ident(refs->access_schemas[i]);
			char *tab = sql_quote_ident(refs->access_tables[i]);
			grant_usage(out, &seen, refs->access_schemas[i], r);
			sb_printf(out, "GRANT SELECT ON %s.%s TO %s;\n", sch, tab,
				  r);
			free(sch);
			free(tab);
		}
	}
	for (size_t i = 0; i < seen.n; i++)
		free(seen.v[i]);
	free(seen.v);
	free(r);
	free(s);
}
