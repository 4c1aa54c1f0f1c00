/*
 * report_text: the report as an aligned table for a terminal (and the
 * text part of the mail). Control characters in values are shown as
 * escapes, so a value from the database can neither break the layout nor
 * send escape sequences to the terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "explain.h"
#include "report_int.h"

enum { NCOLS = 8 };

static const char *const heads[NCOLS] = {
	"RULE", "TABLE", "ACTION", "CHANGED", "HELD", "BLOCKED", "OLDEST AGE",
	"VERDICT"
};
static const bool right[NCOLS] = {
	false, false, false, true, true, true, true, false
};

static void
clean(struct strbuf *b, const char *s)
{
	if (!s) {
		sb_add(b, "-");
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n')
			sb_add(b, "\\n");
		else if (*p == '\r')
			sb_add(b, "\\r");
		else if (*p == '\t')
			sb_add(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			sb_printf(b, "\\x%02x", *p);
		else
			sb_addn(b, (const char *)p, 1);
	}
}

static char *
cleaned(const char *s)
{
	struct strbuf b = STRBUF_INIT;
	clean(&b, s);
	return sb_take(&b);
}

/* Terminal columns: one per UTF-8 character (wide CJK is rare in policy
 * names; being off by a column there is harmless). */
static size_t
width(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

static void
pad(struct strbuf *b, const char *s, size_t w, bool align_right)
{
	size_t n = width(s);
	if (align_right)
		for (; n < w; n++)
			sb_add(b, " ");
	sb_add(b, s);
	if (!align_right)
		for (; n < w; n++)
			sb_add(b, " ");
}

static void
row_cells(const struct report_rule *rr, char *cells[NCOLS])
{
	char age[32], verdict[64];

	report_human_age(rr->oldest_age_s, age, sizeof(age));
	report_verdict(rr, verdict, sizeof(verdict));
	cells[0] = cleaned(rr->rule);
	cells[1] = cleaned(rr->table);
	cells[2] = cleaned(rr->action);
	cells[3] = xasprintf("%lld", rr->changed);
	cells[4] = xasprintf("%lld", rr->held);
	cells[5] = xasprintf("%lld", rr->blocked);
	cells[6] = xstrdup(rr->oldest ? age : "(empty)");
	cells[7] = xstrdup(verdict);
}

static void
put_row(struct strbuf *out, const char *const cells[NCOLS], const size_t w[NCOLS])
{
	struct strbuf line = STRBUF_INIT;

	for (int c = 0; c < NCOLS; c++) {
		if (c)
			sb_add(&line, "  ");
		pad(&line, cells[c], c == NCOLS - 1 ? 0 : w[c], right[c]);
	}
	sb_add(out, line.s);
	sb_add(out, "\n");
	sb_free(&line);
}

/* The verdict in words, then one line per further reason. */
static void
why_lines(const struct report_rule *rr, struct strbuf *out)
{
	size_t n;
	char **lines = explain_lines(rr, &n);

	for (size_t i = 0; i < n; i++) {
		sb_add(out, i ? "         " : "    why: ");
		clean(out, lines[i]);
		sb_add(out, "\n");
	}
	explain_lines_free(lines, n);
}

static void
rules_table(const struct report *r, struct strbuf *out)
{
	struct report_totals t;
	size_t w[NCOLS];
	char *(*cells)[NCOLS] = xcalloc(r->n_rules + 1, sizeof(*cells));

	report_totals(r, &t);
	for (int c = 0; c < NCOLS; c++)
		w[c] = width(heads[c]);
	for (size_t i = 0; i < r->n_rules; i++)
		row_cells(&r->rules[i], cells[i]);
	char **tot = cells[r->n_rules];
	tot[0] = xstrdup("TOTAL");
	tot[1] = xstrdup("");
	tot[2] = xstrdup("");
	tot[3] = xasprintf("%lld", t.changed);
	tot[4] = xasprintf("%lld", t.held);
	tot[5] = xasprintf("%lld", t.blocked);
	tot[6] = xstrdup("");
	tot[7] = t.rules_overdue
		? xasprintf("%zu of %zu rules not compliant", t.rules_overdue,
			    t.rules)
		: xstrdup(t.rules ? "compliant" : "-");
	for (size_t i = 0; i <= r->n_rules; i++)
		for (int c = 0; c < NCOLS; c++)
			if (width(cells[i][c]) > w[c])
				w[c] = width(cells[i][c]);

	put_row(out, heads, w);
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct report_rule *rr = &r->rules[i];
		put_row(out, (const char *const *)cells[i], w);
		sb_add(out, "    policy: ");
		clean(out, rr->policy);
		sb_add(out, "\n    cutoff: ");
		report_short_ts(out, rr->cutoff);
		sb_add(out, " (retain ");
		clean(out, rr->retain);
		/* de-identified rows stay: the oldest is often old and fine */
		sb_add(out, rr->action && strcmp(rr->action, "deidentify") == 0
				    ? "), oldest row (de-identified rows stay): "
				    : "), oldest remaining: ");
		if (rr->oldest) {
			struct strbuf ts = STRBUF_INIT;
			report_short_ts(&ts, rr->oldest);
			clean(out, ts.s);
			sb_free(&ts);
		} else {
			sb_add(out, "none");
		}
		sb_printf(out, ", due %lld of %lld rows", rr->eligible,
			  rr->table_rows);
		if (r->range)
			sb_printf(out, ", %lld run%s", rr->runs,
				  rr->runs == 1 ? "" : "s");
		sb_add(out, "\n    outcome: ");
		clean(out, rr->outcome);
		if (rr->message) {
			sb_add(out, ": ");
			clean(out, rr->message);
		}
		if (rr->lag_wait_s >= 0.05)
			sb_printf(out, "; waited %.1f s for standbys "
				  "(max_replica_lag)", rr->lag_wait_s);
		sb_add(out, "\n");
		why_lines(rr, out);
	}
	put_row(out, (const char *const *)cells[r->n_rules], w);
	for (size_t i = 0; i <= r->n_rules; i++)
		for (int c = 0; c < NCOLS; c++)
			free(cells[i][c]);
	free(cells);
}

static void
field(struct strbuf *out, const char *label, const char *value)
{
	sb_printf(out, "%-18s", label);
	clean(out, value);
	sb_add(out, "\n");
}

static void
ts_field(struct strbuf *out, const char *label, const char *ts)
{
	sb_printf(out, "%-18s", label);
	report_short_ts(out, ts);
	sb_add(out, "\n");
}

static void
runs_table(const struct report *r, struct strbuf *out)
{
	sb_printf(out, "\nRUNS (%zu)\n", r->n_runs);
	for (size_t i = 0; i < r->n_runs; i++) {
		const struct report_run *run = &r->runs[i];
		sb_printf(out, "  %-6lld ", run->id);
		report_short_ts(out, run->started_at);
		sb_add(out, "  ");
		clean(out, run->command);
		sb_add(out, " on ");
		clean(out, run->host);
		sb_add(out, ": ");
		clean(out, run->status);
		if (run->changed >= 0)
			sb_printf(out, ", %lld rows changed", run->changed);
		sb_add(out, "\n");
		if (run->error) {
			sb_add(out, "         error: ");
			clean(out, run->error);
			sb_add(out, "\n");
		}
	}
}

static void
header(const struct report *r, struct strbuf *out)
{
	const struct report_run *run = report_main_run(r);

	if (!r->range) {
		sb_printf(out, "retentiond report: run %lld on ", run ? run->id : 0);
		clean(out, run ? run->host : NULL);
		sb_add(out, "\n\n");
		if (run) {
			struct strbuf v = STRBUF_INIT;
			sb_printf(&v, "%lld (%s), %s", run->id, run->command,
				  run->status);
			field(out, "Run:", v.s);
			sb_free(&v);
			ts_field(out, "Started:", run->started_at);
			ts_field(out, "Finished:", run->finished_at);
			field(out, "Config sha256:", run->config_sha256);
			if (run->error)
				field(out, "Error:", run->error);
		}
	} else {
		sb_printf(out, "retentiond report: %zu run%s from ", r->n_runs,
			  r->n_runs == 1 ? "" : "s");
		clean(out, r->since ? r->since : "the beginning");
		sb_add(out, " until ");
		clean(out, r->until ? r->until : "now");
		sb_add(out, "\n\n");
		ts_field(out, "Period:", r->period_start);
		ts_field(out, "  until:", r->period_end);
		if (run && run->config_sha256)
			field(out, "Config sha256:", run->config_sha256);
	}
	ts_field(out, "Generated:", r->generated_at);
}

void
report_render_text(const struct report *r, struct strbuf *out)
{
	struct report_totals t;
	struct strbuf v = STRBUF_INIT;

	report_totals(r, &t);
	header(r, out);

	if (r->audit.status == REPORT_AUDIT_INTACT)
		sb_printf(&v, "intact: %lld action%s, head %s", r->audit.actions,
			  r->audit.actions == 1 ? "" : "s",
			  r->audit.head ? r->audit.head : "-");
	else if (r->audit.status == REPORT_AUDIT_BROKEN)
		sb_printf(&v, "BROKEN at action %lld: %s (%lld actions before "
			  "it are intact)", r->audit.first_bad_id,
			  r->audit.reason ? r->audit.reason : "",
			  r->audit.actions);
	else
		sb_printf(&v, "not checked: %s",
			  r->audit.reason ? r->audit.reason : "unknown error");
	field(out, "Audit chain:", v.s);
	sb_free(&v);

	sb_printf(&v, "%lld received, %lld done in this period; now %lld due "
		  "within %d days, %lld %s, %lld open", r->erasure.received,
		  r->erasure.done, r->erasure.due_soon, REPORT_DUE_SOON_DAYS,
		  r->erasure.overdue, r->erasure.overdue ? "OVERDUE" : "overdue",
		  r->erasure.open);
	field(out, "Erasure requests:", v.s);
	sb_free(&v);
	sb_printf(&v, "%lld received, %lld done in this period; now %lld due "
		  "within %d days, %lld %s, %lld open", r->access.received,
		  r->access.done, r->access.due_soon, REPORT_DUE_SOON_DAYS,
		  r->access.overdue, r->access.overdue ? "OVERDUE" : "overdue",
		  r->access.open);
	field(out, "Access requests:", v.s);
	sb_free(&v);
	sb_printf(&v, "%lld active", r->holds_active);
	field(out, "Legal holds:", v.s);
	sb_free(&v);
	char compliance[160];
	report_compliance(&t, compliance, sizeof(compliance));
	field(out, "Compliance:", compliance);

	if (r->n_alerts) {
		sb_add(out, "\nALERTS\n");
		for (size_t i = 0; i < r->n_alerts; i++) {
			sb_add(out, "  * ");
			clean(out, r->alerts[i]);
			sb_add(out, "\n");
		}
	}
	sb_add(out, "\n");
	rules_table(r, out);
	if (r->range)
		runs_table(r, out);
	report_coverage_text(r, out);
}
