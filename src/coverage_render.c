/*
 * coverage_render: `retentiond coverage` as text or JSON (SPEC §9). Only
 * names, reasons and counts reach here; never a sampled value.
 */
#include "coverage.h"

#include <stdio.h>
#include <stdlib.h>

static void
json_str_or_null(struct strbuf *b, const char *s)
{
	if (s)
		sb_json_str(b, s);
	else
		sb_add(b, "null");
}

void
coverage_clean(struct strbuf *b, const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			sb_printf(b, "\\x%02x", (unsigned char)*s);
		else
			sb_addn(b, s, 1);
	}
}

void
coverage_column_text(const struct coverage_column *c, struct strbuf *b)
{
	coverage_clean(b, c->name);
	sb_add(b, " (");
	for (size_t i = 0; i < c->n_reasons; i++)
		sb_printf(b, "%s%s", i ? ", " : "", c->reasons[i]);
	sb_printf(b, "; %s", cov_confidence_name(c->confidence));
	if (c->covered_by)
		sb_printf(b, "; %s", c->covered_by);
	sb_add(b, ")");
}

void
coverage_render_text(const struct coverage_result *r, struct strbuf *b)
{
	for (size_t i = 0; i < r->n_tables; i++) {
		const struct coverage_table *t = &r->tables[i];
		sb_printf(b, "%-9s ", t->covered ? "covered" : "UNCOVERED");
		coverage_clean(b, t->schema);
		sb_add(b, ".");
		coverage_clean(b, t->table);
		sb_add(b, ":");
		for (size_t k = 0; k < t->n_cols; k++) {
			sb_add(b, k ? ", " : " ");
			coverage_column_text(&t->cols[k], b);
		}
		if (t->skipped)
			sb_add(b, " [values not sampled: table skipped]");
		sb_add(b, "\n");
	}
	sb_printf(b, "%lld table%s scanned, %lld with personal data, %lld "
		  "uncovered (%lld column%s)", r->tables_scanned,
		  r->tables_scanned == 1 ? "" : "s", r->personal_tables,
		  r->uncovered_tables, r->uncovered_columns,
		  r->uncovered_columns == 1 ? "" : "s");
	if (r->tables_skipped)
		sb_printf(b, ", %lld skipped (see the warnings)",
			  r->tables_skipped);
	sb_add(b, "\n");
}

void
coverage_render_json(const struct coverage_result *r, struct strbuf *b)
{
	sb_printf(b, "{\"tables_scanned\": %lld, \"personal_tables\": %lld, "
		  "\"uncovered_tables\": %lld, \"uncovered_columns\": %lld, "
		  "\"tables\": [", r->tables_scanned, r->personal_tables,
		  r->uncovered_tables, r->uncovered_columns);
	for (size_t i = 0; i < r->n_tables; i++) {
		const struct coverage_table *t = &r->tables[i];
		char *name = xasprintf("%s.%s", t->schema, t->table);
		sb_add(b, i ? ",\n  {\"table\": " : "\n  {\"table\": ");
		sb_json_str(b, name);
		free(name);
		sb_printf(b, ", \"covered\": %s, \"columns\": [",
			  t->covered ? "true" : "false");
		for (size_t k = 0; k < t->n_cols; k++) {
			const struct coverage_column *c = &t->cols[k];
			sb_add(b, k ? ", {\"column\": " : "{\"column\": ");
			sb_json_str(b, c->name);
			sb_add(b, ", \"reasons\": [");
			for (size_t j = 0; j < c->n_reasons; j++) {
				if (j)
					sb_add(b, ", ");
				sb_json_str(b, c->reasons[j]);
			}
			sb_printf(b, "], \"confidence\": \"%s\", \"covered_by\": ",
				  cov_confidence_name(c->confidence));
			json_str_or_null(b, c->covered_by);
			sb_add(b, "}");
		}
		sb_add(b, "]}");
	}
	sb_add(b, r->n_tables ? "\n]}\n" : "]}\n");
}
