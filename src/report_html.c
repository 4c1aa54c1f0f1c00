/*
 * report_html: the report as one self-contained HTML file: inline CSS, no
 * scripts (a Content-Security-Policy forbids them and every other fetch),
 * an inline SVG bar chart of rows changed per rule, and a print style, so
 * the same file is read in a browser, printed for an auditor's binder and
 * used as the HTML part of the mail.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "report.h"
#include "report_int.h"

/* Chart geometry, in SVG user units. */
#define CHART_W 640
#define CHART_LABEL_W 200
#define CHART_VALUE_W 90
#define CHART_BAR_H 18
#define CHART_GAP 6
/* Longer rule names are cut in the chart (the table has them whole). */
#define CHART_LABEL_CHARS 28

static const char css[] =
	"body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,"
	"Helvetica,Arial,sans-serif;color:#1b1b1b;background:#fff;"
	"margin:2em auto;max-width:78em;padding:0 1em;line-height:1.4}\n"
	"h1{font-size:1.5em;margin-bottom:.2em}\n"
	"h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #bbb}\n"
	"table{border-collapse:collapse;margin:.5em 0;font-size:.92em}\n"
	"th,td{border:1px solid #c8c8c8;padding:.3em .55em;text-align:left;"
	"vertical-align:top}\n"
	"thead th,tfoot th,tfoot td{background:#f0f0f0}\n"
	"table.kv th{background:#f6f6f6;font-weight:600;white-space:nowrap}\n"
	".n{text-align:right;font-variant-numeric:tabular-nums;"
	"white-space:nowrap}\n"
	".ok{color:#17612c;font-weight:600}\n"
	".bad{color:#a30d0d;font-weight:700}\n"
	".policy{white-space:pre-wrap;max-width:28em}\n"
	".msg{white-space:pre-wrap;color:#555;font-size:.9em}\n"
	"code{font-family:ui-monospace,Menlo,Consolas,monospace;"
	"font-size:.9em;word-break:break-all}\n"
	".verdict{font-size:1.1em;padding:.4em .7em;border:2px solid;"
	"display:inline-block}\n"
	".alerts{border:2px solid #a30d0d;padding:.2em 1em;margin:1em 0}\n"
	"svg{max-width:100%;height:auto}\n"
	"footer{margin-top:2em;color:#666;font-size:.85em}\n"
	"section.rule{margin:1em 0;padding:.2em 1em;border-left:4px solid "
	"#c8c8c8}\n"
	"section.rule h3{font-size:1em;margin:.5em 0}\n"
	"p.why{font-size:1.05em}\n"
	/* printed for a binder: A4, each rule's explanation on a page of
	 * its own, never split where it fits on one */
	"@page{size:A4;margin:15mm 12mm}\n"
	"@media print{body{margin:0;max-width:none;font-size:10pt}"
	"h2{break-after:avoid}tr,svg{break-inside:avoid}"
	"section.rule{break-before:page;page-break-before:always;"
	"break-inside:avoid;page-break-inside:avoid;border:none;padding:0}"
	"thead{display:table-header-group}"
	"*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n";

static void
esc(struct strbuf *b, const char *s)
{
	if (s)
		report_html_escape(b, s);
	else
		sb_add(b, "&#8211;");
}

static void
ts(struct strbuf *b, const char *t)
{
	struct strbuf s = STRBUF_INIT;
	report_short_ts(&s, t);
	report_html_escape(b, s.s);
	sb_free(&s);
}

static void
kv_open(struct strbuf *b, const char *label)
{
	sb_printf(b, "<tr><th>%s</th><td>", label);
}

static void
kv_text(struct strbuf *b, const char *label, const char *value)
{
	kv_open(b, label);
	esc(b, value);
	sb_add(b, "</td></tr>\n");
}

static void
summary(const struct report *r, const struct report_totals *t, struct strbuf *b)
{
	const struct report_run *run = report_main_run(r);

	sb_add(b, "<h2>Summary</h2>\n<table class=\"kv\">\n");
	if (!r->range && run) {
		kv_open(b, "Run");
		sb_printf(b, "%lld (", run->id);
		esc(b, run->command);
		sb_add(b, "), <span class=\"");
		sb_add(b, strcmp(run->status, "ok") == 0 ? "ok" : "bad");
		sb_add(b, "\">");
		esc(b, run->status);
		sb_add(b, "</span></td></tr>\n");
		kv_text(b, "Host", run->host);
		kv_open(b, "Started");
		ts(b, run->started_at);
		sb_add(b, "</td></tr>\n");
		kv_open(b, "Finished");
		ts(b, run->finished_at);
		sb_add(b, "</td></tr>\n");
		if (run->error) {
			kv_open(b, "Error");
			sb_add(b, "<span class=\"bad\">");
			esc(b, run->error);
			sb_add(b, "</span></td></tr>\n");
		}
	} else {
		kv_open(b, "Period");
		ts(b, r->period_start);
		sb_add(b, " until ");
		ts(b, r->period_end);
		sb_printf(b, "</td></tr>\n<tr><th>Runs</th><td>%zu</td></tr>\n",
			  r->n_runs);
	}
	kv_open(b, "Configuration");
	sb_add(b, "sha256 <code>");
	esc(b, run ? run->config_sha256 : NULL);
	sb_add(b, "</code></td></tr>\n");
	sb_printf(b, "<tr><th>Rows changed</th><td class=\"n\">%lld</td></tr>\n",
		  t->changed);
	sb_printf(b, "<tr><th>Rows kept by legal holds</th><td class=\"n\">%lld"
		  "</td></tr>\n", t->held);
	sb_printf(b, "<tr><th>Rows blocked by references</th><td class=\"n\">"
		  "%lld</td></tr>\n", t->blocked);
	kv_open(b, "Generated");
	ts(b, r->generated_at);
	sb_add(b, "</td></tr>\n</table>\n");
}

static void
rule_row(const struct report *r, const struct report_rule *rr, struct strbuf *b)
{
	char age[32], verdict[64];

	report_human_age(rr->oldest_age_s, age, sizeof(age));
	report_verdict(rr, verdict, sizeof(verdict));
	sb_add(b, "<tr><td><code>");
	esc(b, rr->rule);
	sb_add(b, "</code></td><td class=\"policy\">");
	esc(b, rr->policy);
	sb_add(b, "</td><td><code>");
	esc(b, rr->table);
	sb_add(b, "</code></td><td>");
	esc(b, rr->action);
	sb_add(b, "<br>retain ");
	esc(b, rr->retain);
	sb_add(b, "</td><td>");
	ts(b, rr->cutoff);
	sb_printf(b, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
		  "<td class=\"n\">%lld</td><td>", rr->changed, rr->held,
		  rr->blocked);
	if (rr->oldest) {
		ts(b, rr->oldest);
		if (rr->action && strcmp(rr->action, "deidentify") == 0)
			sb_add(b, "<br><span class=\"msg\">de-identified rows "
				  "stay</span>");
		sb_printf(b, "</td><td class=\"n\">%s</td>", age);
	} else {
		sb_add(b, "none</td><td class=\"n\">&#8211;</td>");
	}
	sb_printf(b, "<td class=\"%s\">%s", rr->compliant ? "ok" : "bad",
		  verdict);
	if (r->range)
		sb_printf(b, "<br><span class=\"msg\">%lld run%s</span>",
			  rr->runs, rr->runs == 1 ? "" : "s");
	sb_add(b, "<br><span class=\"msg\">");
	esc(b, rr->outcome);
	if (rr->message) {
		sb_add(b, ": ");
		esc(b, rr->message);
	}
	sb_add(b, "</span></td></tr>\n");
}

static void
rules_table(const struct report *r, const struct report_totals *t,
	    struct strbuf *b)
{
	sb_add(b, "<h2>Rules</h2>\n");
	if (r->n_rules == 0) {
		sb_add(b, "<p>No rule results were recorded.</p>\n");
		return;
	}
	sb_add(b, "<table class=\"rules\">\n<thead><tr><th>Rule</th>"
		  "<th>Policy</th><th>Table</th><th>Action</th><th>Cutoff</th>"
		  "<th class=\"n\">Changed</th><th class=\"n\">Held</th>"
		  "<th class=\"n\">Blocked</th><th>Oldest remaining</th>"
		  "<th class=\"n\">Age</th><th>Verdict</th></tr></thead>\n"
		  "<tbody>\n");
	for (size_t i = 0; i < r->n_rules; i++)
		rule_row(r, &r->rules[i], b);
	sb_printf(b, "</tbody>\n<tfoot><tr><th colspan=\"5\">Total</th>"
		  "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
		  "<td class=\"n\">%lld</td><td colspan=\"2\"></td>"
		  "<td class=\"%s\">", t->changed, t->held, t->blocked,
		  t->compliant ? "ok" : "bad");
	if (t->compliant)
		sb_add(b, "compliant");
	else
		sb_printf(b, "%zu of %zu not compliant", t->rules_overdue,
			  t->rules);
	sb_add(b, "</td></tr></tfoot>\n</table>\n");
}

/* The first N characters of S (UTF-8), with an ellipsis when cut. */
static char *
truncate_chars(const char *s, size_t n)
{
	const char *p = s;
	size_t chars = 0;

	while (*p) {
		if (((unsigned char)*p & 0xc0) != 0x80 && chars++ == n)
			break;
		p++;
	}
	if (!*p)
		return xstrdup(s);
	return xasprintf("%.*s\xe2\x80\xa6", (int)(p - s), s);
}

static void
chart(const struct report *r, struct strbuf *b)
{
	long long max = 0;
	int height = (int)r->n_rules * (CHART_BAR_H + CHART_GAP) + CHART_GAP;
	int span = CHART_W - CHART_LABEL_W - CHART_VALUE_W;

	if (r->n_rules == 0)
		return;
	for (size_t i = 0; i < r->n_rules; i++)
		if (r->rules[i].changed > max)
			max = r->rules[i].changed;
	sb_add(b, "<h2>Rows changed per rule</h2>\n");
	sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		  "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
		  "aria-label=\"Rows changed per rule\" "
		  "font-family=\"sans-serif\" font-size=\"12\">\n",
		  CHART_W, height, CHART_W, height);
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct report_rule *rr = &r->rules[i];
		int y = CHART_GAP + (int)i * (CHART_BAR_H + CHART_GAP);
		int w = max > 0 ? (int)llround((double)span *
					       (double)rr->changed / (double)max)
				: 0;
		if (rr->changed > 0 && w < 1)
			w = 1;
		char *label = truncate_chars(rr->rule, CHART_LABEL_CHARS);

		sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
			  CHART_LABEL_W - 6, y + CHART_BAR_H - 5);
		report_html_escape(b, label);
		sb_printf(b, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" "
			  "height=\"%d\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">"
			  "%lld</text>\n", CHART_LABEL_W, y, w, CHART_BAR_H,
			  rr->compliant ? "#3b6ea8" : "#b83a3a",
			  CHART_LABEL_W + w + 6, y + CHART_BAR_H - 5,
			  rr->changed);
		free(label);
	}
	sb_add(b, "</svg>\n");
}

static void
request_counts(struct strbuf *b, const char *title,
	       const struct report_erasure *e)
{
	sb_printf(b, "<h2>%s</h2>\n<table class=\"kv\">\n", title);
	sb_printf(b, "<tr><th>Received in this period</th><td class=\"n\">%lld"
		  "</td></tr>\n<tr><th>Done in this period</th>"
		  "<td class=\"n\">%lld</td></tr>\n"
		  "<tr><th>Due within %d days (now)</th><td class=\"n%s\">%lld"
		  "</td></tr>\n<tr><th>Overdue (now)</th><td class=\"n%s\">"
		  "%lld</td></tr>\n<tr><th>Open (now)</th><td class=\"n\">"
		  "%lld</td></tr>\n</table>\n", e->received, e->done,
		  REPORT_DUE_SOON_DAYS, e->due_soon ? " bad" : "", e->due_soon,
		  e->overdue ? " bad" : "", e->overdue, e->open);
}

static void
erasure_holds_audit(const struct report *r, struct strbuf *b)
{
	request_counts(b, "Erasure requests", &r->erasure);
	request_counts(b, "Access requests", &r->access);
	sb_printf(b, "<h2>Legal holds</h2>\n<p>%lld active legal hold%s: no "
		  "rule and no erasure touches the held subjects' rows.</p>\n",
		  r->holds_active, r->holds_active == 1 ? "" : "s");

	sb_add(b, "<h2>Audit trail</h2>\n<table class=\"kv\">\n");
	kv_open(b, "Hash chain");
	switch (r->audit.status) {
	case REPORT_AUDIT_INTACT:
		sb_printf(b, "<span class=\"ok\">intact</span> (%lld action%s "
			  "verified)", r->audit.actions,
			  r->audit.actions == 1 ? "" : "s");
		break;
	case REPORT_AUDIT_BROKEN:
		sb_printf(b, "<span class=\"bad\">BROKEN at action %lld</span>: ",
			  r->audit.first_bad_id);
		esc(b, r->audit.reason);
		break;
	case REPORT_AUDIT_UNKNOWN:
		sb_add(b, "<span class=\"bad\">not checked</span>: ");
		esc(b, r->audit.reason);
		break;
	}
	sb_add(b, "</td></tr>\n");
	kv_open(b, "Head hash");
	sb_add(b, "<code>");
	esc(b, r->audit.head);
	sb_add(b, "</code></td></tr>\n</table>\n<p class=\"msg\">Compare the "
		  "head hash with the one in an earlier report: a rewritten "
		  "trail has a different head.</p>\n");
}

static void
runs_table(const struct report *r, struct strbuf *b)
{
	sb_add(b, "<h2>Runs</h2>\n<table>\n<thead><tr><th class=\"n\">Run</th>"
		  "<th>Started</th><th>Finished</th><th>Host</th>"
		  "<th>Command</th><th>Status</th><th class=\"n\">Changed</th>"
		  "<th>Error</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < r->n_runs; i++) {
		const struct report_run *run = &r->runs[i];
		sb_printf(b, "<tr><td class=\"n\">%lld</td><td>", run->id);
		ts(b, run->started_at);
		sb_add(b, "</td><td>");
		ts(b, run->finished_at);
		sb_add(b, "</td><td>");
		esc(b, run->host);
		sb_add(b, "</td><td>");
		esc(b, run->command);
		sb_printf(b, "</td><td class=\"%s\">",
			  strcmp(run->status, "ok") == 0 ? "ok" : "bad");
		esc(b, run->status);
		sb_add(b, "</td><td class=\"n\">");
		if (run->changed >= 0)
			sb_printf(b, "%lld", run->changed);
		sb_add(b, "</td><td class=\"msg\">");
		if (run->error)
			esc(b, run->error);
		sb_add(b, "</td></tr>\n");
	}
	sb_add(b, "</tbody>\n</table>\n");
}

/* Per rule, the verdict in words and why old rows remain: one section
 * each, a page each when printed. */
static void
why_sections(const struct report *r, struct strbuf *b)
{
	if (r->n_rules == 0)
		return;
	sb_add(b, "<h2>Why each verdict</h2>\n");
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct report_rule *rr = &r->rules[i];
		size_t n;
		char **lines = explain_lines(rr, &n);

		sb_add(b, "<section class=\"rule\"><h3>Rule <code>");
		esc(b, rr->rule);
		sb_add(b, "</code> on <code>");
		esc(b, rr->table);
		sb_add(b, "</code></h3>\n<p class=\"policy\">");
		esc(b, rr->policy);
		sb_printf(b, "</p>\n<p class=\"why %s\">",
			  rr->compliant ? "ok" : "bad");
		esc(b, lines[0]);
		sb_add(b, "</p>\n");
		if (n > 1) {
			sb_add(b, "<ul class=\"why\">\n");
			for (size_t k = 1; k < n; k++) {
				sb_add(b, "<li>");
				esc(b, lines[k]);
				sb_add(b, "</li>\n");
			}
			sb_add(b, "</ul>\n");
		}
		sb_add(b, "<p class=\"msg\">cutoff ");
		ts(b, rr->cutoff);
		sb_add(b, " (retain ");
		esc(b, rr->retain);
		sb_add(b, "), oldest row ");
		ts(b, rr->oldest);
		sb_add(b, ", outcome ");
		esc(b, rr->outcome);
		sb_add(b, "</p>\n</section>\n");
		explain_lines_free(lines, n);
	}
}

static void
title(const struct report *r, struct strbuf *b)
{
	const struct report_run *run = report_main_run(r);

	if (!r->range) {
		sb_printf(b, "retentiond report: run %lld on ", run ? run->id : 0);
		esc(b, run ? run->host : NULL);
		return;
	}
	sb_printf(b, "retentiond report: %zu run%s from ", r->n_runs,
		  r->n_runs == 1 ? "" : "s");
	esc(b, r->since ? r->since : "the beginning");
	sb_add(b, " until ");
	esc(b, r->until ? r->until : "now");
}

void
report_render_html(const struct report *r, struct strbuf *b)
{
	struct report_totals t;

	report_totals(r, &t);
	sb_add(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		  "<meta charset=\"utf-8\">\n"
		  "<meta http-equiv=\"Content-Security-Policy\" content=\""
		  "default-src 'none'; style-src 'unsafe-inline'\">\n"
		  "<meta name=\"viewport\" content=\"width=device-width, "
		  "initial-scale=1\">\n<title>");
	title(r, b);
	sb_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", css);
	title(r, b);
	sb_add(b, "</h1>\n");
	char compliance[160];
	report_compliance(&t, compliance, sizeof(compliance));
	sb_printf(b, "<p class=\"verdict%s\">%s</p>\n",
		  t.rules == 0 ? "" : t.compliant ? " ok" : " bad", compliance);
	if (r->n_alerts) {
		sb_add(b, "<div class=\"alerts\"><h2>Alerts</h2>\n<ul>\n");
		for (size_t i = 0; i < r->n_alerts; i++) {
			sb_add(b, "<li class=\"msg\">");
			report_html_escape(b, r->alerts[i]);
			sb_add(b, "</li>\n");
		}
		sb_add(b, "</ul></div>\n");
	}
	summary(r, &t, b);
	rules_table(r, &t, b);
	chart(r, b);
	why_sections(r, b);
	erasure_holds_audit(r, b);
	if (r->range)
		runs_table(r, b);
	report_coverage_html(r, b);
	sb_add(b, "<footer>retentiond report ");
	sb_printf(b, "(format %d), generated ", REPORT_VERSION);
	ts(b, r->generated_at);
	sb_add(b, "</footer>\n</body>\n</html>\n");
}
