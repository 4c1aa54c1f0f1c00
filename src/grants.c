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

static bool
seen_schema(const struct config *cfg, size_t upto, const char *schema)
{
	for (size_t i = 0; i < upto; i++)
		if (strcmp(cfg->rules[i].schema, schema) == 0)
			return true;
	return false;
}

void
grants_render(const struct config *cfg, const char *role, struct strbuf *out)
{
	char *r = sql_quote_ident(role);
	char *s = sql_quote_ident(cfg->database.schema);

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

	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *rule = &cfg->rules[i];
		char *sch = sql_quote_ident(rule->schema);
		char *tab = sql_quote_ident(rule->table);

		sb_printf(out, "\n-- rule \"%s\"%s\n", rule->name,
			  rule->enabled ? "" : " (disabled)");
		if (!seen_schema(cfg, i, rule->schema))
			sb_printf(out, "GRANT USAGE ON SCHEMA %s TO %s;\n", sch, r);
		/* SELECT on the whole table: `where` may name any column */
		sb_printf(out, "GRANT SELECT%s ON %s.%s TO %s;\n",
			  rule_does(rule, ACTION_DELETE) ? ", DELETE" : "",
			  sch, tab, r);
		if (rule_does(rule, ACTION_DEIDENTIFY)) {
			struct strbuf cols = STRBUF_INIT;
			update_columns(rule, &cols);
			sb_printf(out, "GRANT UPDATE (%s) ON %s.%s TO %s;\n",
				  cols.s ? cols.s : "", sch, tab, r);
			sb_free(&cols);
		}
		if (rule->partitions != PARTITIONS_ROWS && rule_does(rule, ACTION_DELETE))
			sb_printf(out,
				"-- If %s.%s is partitioned, detaching and dropping "
				"partitions needs its owner:\n"
				"-- ALTER TABLE %s.%s OWNER TO %s; or set partitions = \"rows\".\n",
				sch, tab, sch, tab, r);
		free(sch);
		free(tab);
	}
	free(r);
	free(s);
}
