/*
 * report_coverage: the Coverage section of a cycle's report (SPEC §9) in
 * each format: the totals, then every table with personal data that no
 * rule covers. Only table and column names, reasons and counts: coverage
 * never hands a sampled value to a report.
 */
#include <stdio.h>
#include <stdlib.h>

#include "coverage.h"
#include "report_int.h"

static char *
uncovered_columns(const struct coverage_table *t)
{
	struct strbuf b = STRBUF_INIT;

	for (size_t k = 0; k < t->n_cols; k++) {
		if (t->cols[k].covered_by)
			continue;
		if (b.len)
			sb_add(&b, ", ");
		coverage_column_text(&t->cols[k], &b);
	}
	return b.s ? sb_take(&b) : xstrdup("");
}

static char *
totals(const struct coverage_result *c)
{
	return xasprintf("%lld tables scanned, %lld with personal data, %lld "
			 "uncovered (%lld columns)%s", c->tables_scanned,
			 c->personal_tables, c->uncovered_tables,
			 c->uncovered_columns,
			 c->tables_skipped ? ", some tables skipped" : "");
}

void
report_coverage_text(const struct report *r, struct strbuf *out)
{
	const struct coverage_result *c = r->coverage;

	if (!c && !r->coverage_error)
		return;
	sb_add(out, "\nCOVERAGE\n  ");
	if (!c) {
		sb_add(out, "coverage FAILED this cycle: ");
		coverage_clean(out, r->coverage_error);
		sb_add(out, "\n");
		return;
	}
	char *t = totals(c);
	sb_printf(out, "%s\n", t);
	free(t);
	for (size_t i = 0; i < c->n_tables; i++) {
		if (c->tables[i].covered)
			continue;
		char *cols = uncovered_columns(&c->tables[i]);
		sb_add(out, "  UNCOVERED ");
		coverage_clean(out, c->tables[i].schema);
		sb_add(out, ".");
		coverage_clean(out, c->tables[i].table);
		sb_add(out, ": ");
		coverage_clean(out, cols);
		sb_add(out, "\n");
		free(cols);
	}
}

/* A second block after the rules: its own header row, one row per
 * uncovered table; a blank line keeps it apart for readers that split. */
void
report_coverage_csv(const struct report *r, struct strbuf *out)
{
	const struct coverage_result *c = r->coverage;

	if (!c && !r->coverage_error)
		return;
	sb_add(out, "\r\ncoverage_table,covered,uncovered_columns,"
		    "tables_scanned,personal_tables,uncovered_tables,"
		    "uncovered_columns_total,error\r\n");
	if (!c) {
		sb_add(out, ",,,,,,,");
		report_csv_field(out, r->coverage_error);
		sb_add(out, "\r\n");
		return;
	}
	bool any = false;
	for (size_t i = 0; i < c->n_tables; i++) {
		const struct coverage_table *t = &c->tables[i];
		if (t->covered)
			continue;
		char *name = xasprintf("%s.%s", t->schema, t->table);
		char *cols = uncovered_columns(t);
		report_csv_field(out, name);
		sb_add(out, ",false,");
		report_csv_field(out, cols);
		sb_printf(out, ",%lld,%lld,%lld,%lld,\r\n", c->tables_scanned,
			  c->personal_tables, c->uncovered_tables,
			  c->uncovered_columns);
		free(name);
		free(cols);
		any = true;
	}
	if (!any)
		sb_printf(out, ",true,,%lld,%lld,%lld,%lld,\r\n",
			  c->tables_scanned, c->personal_tables,
			  c->uncovered_tables, c->uncovered_columns);
}

/* ,"coverage": the object of `coverage --format json`, or null with
 * "coverage_error" when it failed. */
void
report_coverage_json(const struct report *r, struct strbuf *out)
{
	if (!r->coverage && !r->coverage_error)
		return;
	sb_add(out, ",\n \"coverage\": ");
	if (r->coverage) {
		struct strbuf j = STRBUF_INIT;
		coverage_render_json(r->coverage, &j);
		/* without its final newline, inside the report's object */
		if (j.len && j.s[j.len - 1] == '\n')
			j.s[--j.len] = '\0';
		sb_add(out, j.s);
		sb_free(&j);
		return;
	}
	sb_add(out, "null, \"coverage_error\": ");
	sb_json_str(out, r->coverage_error);
}

void
report_coverage_html(const struct report *r, struct strbuf *out)
{
	const struct coverage_result *c = r->coverage;

	if (!c && !r->coverage_error)
		return;
	sb_add(out, "<h2>Coverage</h2>\n");
	if (!c) {
		sb_add(out, "<p class=\"verdict bad\">Coverage FAILED this "
			    "cycle: ");
		report_html_escape(out, r->coverage_error);
		sb_add(out, "</p>\n");
		return;
	}
	char *t = totals(c);
	sb_printf(out, "<p class=\"verdict%s\">", c->uncovered_columns ? " bad"
								       : " ok");
	report_html_escape(out, t);
	sb_add(out, "</p>\n");
	free(t);
	if (!c->uncovered_tables)
		return;
	sb_add(out, "<table>\n<thead><tr><th>Uncovered table</th>"
		    "<th>Columns</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < c->n_tables; i++) {
		const struct coverage_table *tb = &c->tables[i];
		if (tb->covered)
			continue;
		char *name = xasprintf("%s.%s", tb->schema, tb->table);
		char *cols = uncovered_columns(tb);
		sb_add(out, "<tr><td>");
		report_html_escape(out, name);
		sb_add(out, "</td><td>");
		report_html_escape(out, cols);
		sb_add(out, "</td></tr>\n");
		free(name);
		free(cols);
	}
	sb_add(out, "</tbody></table>\n");
}
