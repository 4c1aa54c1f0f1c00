/*
 * report: the structs, the text, CSV and JSON renderers, and the files.
 * HTML is in report_html.c, loading in report_load.c.
 */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "explain.h"
#include "file.h"
#include "log.h"
#include "report_int.h"

static void
run_free(struct report_run *r)
{
	free(r->host);
	free(r->command);
	free(r->status);
	free(r->started_at);
	free(r->finished_at);
	free(r->config_sha256);
	free(r->error);
}

static void
rule_free(struct report_rule *rr)
{
	free(rr->rule);
	free(rr->policy);
	free(rr->table);
	free(rr->action);
	free(rr->retain);
	free(rr->outcome);
	free(rr->cutoff);
	free(rr->oldest);
	free(rr->message);
	explain_free(&rr->why);
}

void
report_free(struct report *r)
{
	for (size_t i = 0; i < r->n_runs; i++)
		run_free(&r->runs[i]);
	for (size_t i = 0; i < r->n_rules; i++)
		rule_free(&r->rules[i]);
	for (size_t i = 0; i < r->n_alerts; i++)
		free(r->alerts[i]);
	free(r->runs);
	free(r->rules);
	free(r->alerts);
	free(r->since);
	free(r->until);
	free(r->period_start);
	free(r->period_end);
	free(r->generated_at);
	free(r->audit.head);
	free(r->audit.reason);
	memset(r, 0, sizeof(*r));
}

void
report_add_alert(struct report *r, const char *text)
{
	r->alerts = xreallocarray(r->alerts, r->n_alerts + 1, sizeof(*r->alerts));
	r->alerts[r->n_alerts++] = xstrdup(text);
}

bool
report_rule_failed(const struct report_rule *rr)
{
	return rr->outcome && (strcmp(rr->outcome, "failed") == 0 ||
			       strcmp(rr->outcome, "refused") == 0);
}

void
report_totals(const struct report *r, struct report_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct report_rule *rr = &r->rules[i];
		t->changed += rr->changed;
		t->held += rr->held;
		t->blocked += rr->blocked;
		if (rr->overdue > 0)
			t->overdue += rr->overdue;
		if (!rr->compliant)
			t->rules_overdue++;
		if (report_rule_failed(rr))
			t->rules_failed++;
	}
	t->rules = r->n_rules;
	/* no rule results (a run that stopped early) proves nothing */
	t->compliant = r->n_rules > 0 && t->rules_overdue == 0;
}

void
report_verdict(const struct report_rule *rr, char *out, size_t size)
{
	if (rr->compliant)
		snprintf(out, size, "compliant");
	else if (rr->overdue > 0)
		snprintf(out, size, "OVERDUE %lld", rr->overdue);
	else if (rr->outcome && strcmp(rr->outcome, "failed") == 0)
		snprintf(out, size, "NOT COMPLIANT (failed)");
	else if (rr->overdue < 0)
		snprintf(out, size, "unknown");
	else
		snprintf(out, size, "NOT COMPLIANT");
}

void
report_compliance(const struct report_totals *t, char *out, size_t size)
{
	const char *s = t->rules == 1 ? "" : "s";

	if (t->rules == 0) {
		snprintf(out, size, "no rule results");
	} else if (t->compliant) {
		snprintf(out, size, "compliant: all %zu rule%s", t->rules, s);
	} else {
		char why[96] = "";
		if (t->overdue > 0 && t->rules_failed > 0)
			snprintf(why, sizeof(why), " (%lld rows OVERDUE, %zu "
				 "failed)", t->overdue, t->rules_failed);
		else if (t->overdue > 0)
			snprintf(why, sizeof(why), " (%lld rows OVERDUE)",
				 t->overdue);
		else if (t->rules_failed > 0)
			snprintf(why, sizeof(why), " (%zu failed)",
				 t->rules_failed);
		snprintf(out, size, "NOT COMPLIANT: %zu of %zu rule%s%s",
			 t->rules_overdue, t->rules, s, why);
	}
}

const struct report_run *
report_main_run(const struct report *r)
{
	return r->n_runs ? &r->runs[r->n_runs - 1] : NULL;
}

const struct report_run *
report_find_run(const struct report *r, long long id)
{
	for (size_t i = 0; i < r->n_runs; i++)
		if (r->runs[i].id == id)
			return &r->runs[i];
	return NULL;
}

const char *
report_audit_name(enum report_audit a)
{
	switch (a) {
	case REPORT_AUDIT_INTACT:
		return "intact";
	case REPORT_AUDIT_BROKEN:
		return "broken";
	case REPORT_AUDIT_UNKNOWN:
		break;
	}
	return "unknown";
}

void
report_human_age(double s, char *out, size_t size)
{
	if (s < 0 || !isfinite(s))
		snprintf(out, size, "-");
	else if (s < 120)
		snprintf(out, size, "%.0f s", s);
	else if (s < 7200)
		snprintf(out, size, "%.0f min", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, size, "%.1f h", s / 3600);
	else if (s < 2 * 365.25 * 86400)
		snprintf(out, size, "%.1f days", s / 86400);
	else
		snprintf(out, size, "%.1f years", s / (365.25 * 86400));
}

/* "2025-02-13 14:03:00.123456+01" -> "2025-02-13 14:03:00+01": the
 * microseconds help nobody reading a report. */
void
report_short_ts(struct strbuf *b, const char *ts)
{
	const char *dot = ts ? strchr(ts, '.') : NULL;

	if (!ts) {
		sb_add(b, "-");
		return;
	}
	if (!dot || dot - ts < 19) {
		sb_add(b, ts);
		return;
	}
	sb_addn(b, ts, (size_t)(dot - ts));
	const char *p = dot + 1;
	while (*p >= '0' && *p <= '9')
		p++;
	sb_add(b, p);
}

bool
report_parse_format(const char *name, enum report_format *f)
{
	static const struct {
		const char *name;
		enum report_format f;
	} names[] = {
		{ "text", REPORT_TEXT }, { "csv", REPORT_CSV },
		{ "json", REPORT_JSON }, { "html", REPORT_HTML },
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i].name) == 0) {
			*f = names[i].f;
			return true;
		}
	return false;
}

const char *
report_format_name(enum report_format f)
{
	switch (f) {
	case REPORT_TEXT:
		return "text";
	case REPORT_CSV:
		return "csv";
	case REPORT_JSON:
		return "json";
	case REPORT_HTML:
		return "html";
	}
	return "?";
}

const char *
report_format_ext(enum report_format f)
{
	return f == REPORT_TEXT ? "txt" : report_format_name(f);
}

void
report_render(const struct report *r, enum report_format f, struct strbuf *out)
{
	switch (f) {
	case REPORT_TEXT:
		report_render_text(r, out);
		break;
	case REPORT_CSV:
		report_render_csv(r, out);
		break;
	case REPORT_JSON:
		report_render_json(r, out);
		break;
	case REPORT_HTML:
		report_render_html(r, out);
		break;
	}
}

/* --- escaping ---------------------------------------------------------- */

void
report_html_escape(struct strbuf *b, const char *s)
{
	if (!s)
		return;
	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '&':
			sb_add(b, "&amp;");
			break;
		case '<':
			sb_add(b, "&lt;");
			break;
		case '>':
			sb_add(b, "&gt;");
			break;
		case '"':
			sb_add(b, "&quot;");
			break;
		case '\'':
			sb_add(b, "&#39;");
			break;
		default:
			/* controls other than TAB/LF/CR are not allowed in
			 * HTML text, and HTML's controls include DEL and the
			 * C1 range U+0080..U+009F (UTF-8 C2 80..C2 9F); show
			 * that something was there */
			if ((unsigned char)*p < 0x20 && *p != '\t' &&
			    *p != '\n' && *p != '\r')
				sb_add(b, "&#xFFFD;");
			else if (*p == 0x7f)
				sb_add(b, "&#xFFFD;");
			else if ((unsigned char)p[0] == 0xc2 &&
				 (unsigned char)p[1] >= 0x80 &&
				 (unsigned char)p[1] <= 0x9f) {
				sb_add(b, "&#xFFFD;");
				p++;
			} else
				sb_addn(b, p, 1);
		}
	}
}

void
report_csv_field(struct strbuf *b, const char *s)
{
	if (!s)
		return;
	/* A spreadsheet runs a cell that starts with = + - @ (or a tab or CR
	 * before one) as a formula: a policy text or subject id from the
	 * database must not become one on an auditor's machine. A leading
	 * quote keeps it text (the OWASP advice); numbers stay numbers. */
	char *end = NULL;
	bool formula = strchr("=+-@\t\r", s[0]) && s[0] &&
		       !(strtod(s, &end), end && end != s && *end == '\0');
	if (!formula && !strpbrk(s, ",\"\r\n")) {
		sb_add(b, s);
		return;
	}
	sb_add(b, "\"");
	if (formula)
		sb_add(b, "'");
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			sb_add(b, "\"\"");
		else
			sb_addn(b, p, 1);
	}
	sb_add(b, "\"");
}

/* --- CSV ----------------------------------------------------------------- */

static const char *const csv_columns[] = {
	"report_version", "scope", "run_id", "runs", "host", "run_status",
	"started_at", "finished_at", "config_sha256", "run_error",
	"rule", "policy", "table", "action", "retain", "cutoff", "outcome",
	"changed", "held", "blocked", "eligible", "overdue", "table_rows",
	"compliant", "verdict", "oldest", "oldest_age_seconds", "message",
	"audit_status", "audit_actions", "audit_head",
	"erasure_received", "erasure_done", "erasure_due_soon",
	"erasure_overdue", "erasure_open", "legal_holds_active",
	"period_start", "period_end", "generated_at",
	"access_received", "access_done", "access_due_soon", "access_overdue",
	"access_open", "explanation",
};

static void
csv_num(struct strbuf *b, long long v)
{
	sb_printf(b, ",%lld", v);
}

static void
csv_str(struct strbuf *b, const char *s)
{
	sb_add(b, ",");
	report_csv_field(b, s);
}

/* The verdict in words and every further reason, one field. */
static void
csv_why(struct strbuf *b, const struct report_rule *rr)
{
	struct strbuf s = STRBUF_INIT;
	size_t n;
	char **lines = explain_lines(rr, &n);

	for (size_t i = 0; i < n; i++)
		sb_printf(&s, "%s%s", i ? "; " : "", lines[i]);
	explain_lines_free(lines, n);
	csv_str(b, s.s ? s.s : "");
	sb_free(&s);
}

void
report_render_csv(const struct report *r, struct strbuf *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(csv_columns); i++) {
		if (i)
			sb_add(out, ",");
		sb_add(out, csv_columns[i]);
	}
	sb_add(out, "\r\n");
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct report_rule *rr = &r->rules[i];
		const struct report_run *run = report_find_run(r, rr->last_run_id);
		char verdict[64];

		report_verdict(rr, verdict, sizeof(verdict));
		sb_printf(out, "%d,%s,%lld,%lld", REPORT_VERSION,
			  r->range ? "range" : "run", rr->last_run_id, rr->runs);
		csv_str(out, run ? run->host : NULL);
		csv_str(out, run ? run->status : NULL);
		csv_str(out, run ? run->started_at : NULL);
		csv_str(out, run ? run->finished_at : NULL);
		csv_str(out, run ? run->config_sha256 : NULL);
		csv_str(out, run ? run->error : NULL);
		csv_str(out, rr->rule);
		csv_str(out, rr->policy);
		csv_str(out, rr->table);
		csv_str(out, rr->action);
		csv_str(out, rr->retain);
		csv_str(out, rr->cutoff);
		csv_str(out, rr->outcome);
		csv_num(out, rr->changed);
		csv_num(out, rr->held);
		csv_num(out, rr->blocked);
		csv_num(out, rr->eligible);
		csv_num(out, rr->overdue);
		csv_num(out, rr->table_rows);
		csv_str(out, rr->compliant ? "true" : "false");
		csv_str(out, verdict);
		csv_str(out, rr->oldest);
		if (rr->oldest_age_s >= 0 && isfinite(rr->oldest_age_s))
			sb_printf(out, ",%.0f", rr->oldest_age_s);
		else
			sb_add(out, ",");
		csv_str(out, rr->message);
		csv_str(out, report_audit_name(r->audit.status));
		csv_num(out, r->audit.actions);
		csv_str(out, r->audit.head);
		csv_num(out, r->erasure.received);
		csv_num(out, r->erasure.done);
		csv_num(out, r->erasure.due_soon);
		csv_num(out, r->erasure.overdue);
		csv_num(out, r->erasure.open);
		csv_num(out, r->holds_active);
		csv_str(out, r->period_start);
		csv_str(out, r->period_end);
		csv_str(out, r->generated_at);
		csv_num(out, r->access.received);
		csv_num(out, r->access.done);
		csv_num(out, r->access.due_soon);
		csv_num(out, r->access.overdue);
		csv_num(out, r->access.open);
		csv_why(out, rr);
		sb_add(out, "\r\n");
	}
	report_coverage_csv(r, out);
}

/* --- JSON ---------------------------------------------------------------- */

static void
json_key(struct strbuf *b, const char *key, bool first)
{
	if (!first)
		sb_add(b, ", ");
	sb_json_str(b, key);
	sb_add(b, ": ");
}

static void
json_kv(struct strbuf *b, const char *key, const char *v, bool first)
{
	json_key(b, key, first);
	sb_json_str(b, v);
}

static void
json_kn(struct strbuf *b, const char *key, long long v, bool first)
{
	json_key(b, key, first);
	sb_printf(b, "%lld", v);
}

static void
json_runs(const struct report *r, struct strbuf *out)
{
	sb_add(out, ",\n \"runs\": [");
	for (size_t i = 0; i < r->n_runs; i++) {
		const struct report_run *run = &r->runs[i];
		sb_add(out, i ? ",\n  {" : "\n  {");
		json_kn(out, "id", run->id, true);
		json_kv(out, "host", run->host, false);
		json_kv(out, "command", run->command, false);
		json_kv(out, "status", run->status, false);
		json_kv(out, "started_at", run->started_at, false);
		json_kv(out, "finished_at", run->finished_at, false);
		json_kv(out, "config_sha256", run->config_sha256, false);
		json_kv(out, "error", run->error, false);
		json_key(out, "changed", false);
		if (run->changed >= 0)
			sb_printf(out, "%lld", run->changed);
		else
			sb_add(out, "null");
		sb_add(out, "}");
	}
	sb_add(out, r->n_runs ? "\n ]" : "]");
}

/* "explanation": the counts behind the verdict and the words for it. */
static void
json_why(struct strbuf *out, const struct report_rule *rr)
{
	const struct report_explain *e = &rr->why;
	size_t n;
	char **lines = explain_lines(rr, &n);

	json_key(out, "explanation", false);
	sb_add(out, "{");
	json_key(out, "counted", true);
	sb_add(out, e->counted ? "true" : "false");
	json_kv(out, "error", e->error, false);
	json_kv(out, "where", e->where, false);
	json_kn(out, "older_than_cutoff", e->older, false);
	json_kn(out, "kept_by_where", e->kept_where, false);
	json_kn(out, "deidentified", e->deidentified, false);
	json_kn(out, "held", e->held, false);
	json_kv(out, "hold_ids", e->hold_ids, false);
	json_kn(out, "blocked", e->blocked, false);
	json_key(out, "blocked_by", false);
	sb_add(out, "[");
	for (size_t i = 0; i < e->n_refs; i++) {
		sb_add(out, i ? ", {" : "{");
		json_kv(out, "table", e->refs[i].table, true);
		json_kn(out, "rows", e->refs[i].rows, false);
		sb_add(out, "}");
	}
	sb_add(out, "]");
	json_kn(out, "left", e->left, false);
	json_key(out, "lines", false);
	sb_add(out, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_add(out, ", ");
		sb_json_str(out, lines[i]);
	}
	sb_add(out, "]}");
	explain_lines_free(lines, n);
}

static void
json_rules(const struct report *r, struct strbuf *out)
{
	sb_add(out, ",\n \"rules\": [");
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct report_rule *rr = &r->rules[i];
		char verdict[64];

		report_verdict(rr, verdict, sizeof(verdict));
		sb_add(out, i ? ",\n  {" : "\n  {");
		json_kv(out, "rule", rr->rule, true);
		json_kv(out, "policy", rr->policy, false);
		json_kv(out, "table", rr->table, false);
		json_kv(out, "action", rr->action, false);
		json_kv(out, "retain", rr->retain, false);
		json_kv(out, "cutoff", rr->cutoff, false);
		json_kv(out, "outcome", rr->outcome, false);
		json_kn(out, "changed", rr->changed, false);
		json_kn(out, "held", rr->held, false);
		json_kn(out, "blocked", rr->blocked, false);
		json_kn(out, "eligible", rr->eligible, false);
		json_kn(out, "overdue", rr->overdue, false);
		json_kn(out, "table_rows", rr->table_rows, false);
		json_key(out, "compliant", false);
		sb_add(out, rr->compliant ? "true" : "false");
		json_kv(out, "verdict", verdict, false);
		json_kv(out, "oldest", rr->oldest, false);
		json_key(out, "oldest_age_seconds", false);
		if (rr->oldest_age_s >= 0 && isfinite(rr->oldest_age_s))
			sb_printf(out, "%.0f", rr->oldest_age_s);
		else
			sb_add(out, "null");
		json_kv(out, "message", rr->message, false);
		json_key(out, "lag_wait_seconds", false);
		sb_printf(out, "%.1f", isfinite(rr->lag_wait_s) ? rr->lag_wait_s : 0);
		json_kn(out, "runs", rr->runs, false);
		json_kn(out, "last_run_id", rr->last_run_id, false);
		json_why(out, rr);
		sb_add(out, "}");
	}
	sb_add(out, r->n_rules ? "\n ]" : "]");
}

void
report_render_json(const struct report *r, struct strbuf *out)
{
	struct report_totals t;

	report_totals(r, &t);
	sb_printf(out, "{\"report_version\": %d", REPORT_VERSION);
	json_kv(out, "generated_at", r->generated_at, false);
	json_kv(out, "scope", r->range ? "range" : "run", false);
	json_kv(out, "since", r->since, false);
	json_kv(out, "until", r->until, false);
	sb_add(out, ",\n \"period\": {");
	json_kv(out, "start", r->period_start, true);
	json_kv(out, "end", r->period_end, false);
	sb_add(out, "}");
	json_runs(r, out);
	json_rules(r, out);
	sb_add(out, ",\n \"totals\": {");
	json_kn(out, "changed", t.changed, true);
	json_kn(out, "held", t.held, false);
	json_kn(out, "blocked", t.blocked, false);
	json_kn(out, "overdue", t.overdue, false);
	json_kn(out, "rules", (long long)t.rules, false);
	json_kn(out, "rules_overdue", (long long)t.rules_overdue, false);
	json_kn(out, "rules_failed", (long long)t.rules_failed, false);
	sb_printf(out, "},\n \"compliant\": %s", t.compliant ? "true" : "false");
	sb_add(out, ",\n \"erasure_requests\": {");
	json_kn(out, "received", r->erasure.received, true);
	json_kn(out, "done", r->erasure.done, false);
	json_kn(out, "due_soon", r->erasure.due_soon, false);
	json_kn(out, "overdue", r->erasure.overdue, false);
	json_kn(out, "open", r->erasure.open, false);
	sb_add(out, "}");
	sb_add(out, ",\n \"access_requests\": {");
	json_kn(out, "received", r->access.received, true);
	json_kn(out, "done", r->access.done, false);
	json_kn(out, "due_soon", r->access.due_soon, false);
	json_kn(out, "overdue", r->access.overdue, false);
	json_kn(out, "open", r->access.open, false);
	sb_add(out, "}");
	sb_add(out, ",\n ");
	json_kn(out, "legal_holds_active", r->holds_active, true);
	sb_add(out, ",\n \"audit\": {");
	json_kv(out, "status", report_audit_name(r->audit.status), true);
	json_kn(out, "actions", r->audit.actions, false);
	json_kv(out, "head", r->audit.head, false);
	json_key(out, "first_bad_id", false);
	if (r->audit.first_bad_id)
		sb_printf(out, "%lld", r->audit.first_bad_id);
	else
		sb_add(out, "null");
	json_kv(out, "reason", r->audit.reason, false);
	sb_add(out, "},\n \"alerts\": [");
	for (size_t i = 0; i < r->n_alerts; i++) {
		if (i)
			sb_add(out, ", ");
		sb_json_str(out, r->alerts[i]);
	}
	sb_add(out, "]");
	report_coverage_json(r, out);
	sb_add(out, "}\n");
}

/* --- files --------------------------------------------------------------- */

bool
report_write_file(const char *path, const char *data, size_t len, char **err)
{
	/* reports are for auditors (the group), not for everyone */
	return file_replace(path, data, len, 0640, err);
}

/* mkdir -p with mode 0750 for what is created. */
static bool
make_dirs(const char *path, char **err)
{
	char *p = xstrdup(path);

	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST) {
			*err = xasprintf("could not create directory \"%s\": %s",
					 p, strerror(errno));
			free(p);
			return false;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*err = xasprintf("\"%s\" is not a directory", path);
		return false;
	}
	return true;
}

int
report_write_dir(const struct report *r, const char *directory,
		 unsigned formats, long long run_id)
{
	static const enum report_format all[] = {
		REPORT_HTML, REPORT_CSV, REPORT_JSON, REPORT_TEXT
	};
	char *err = NULL;
	int written = 0;

	if (!make_dirs(directory, &err)) {
		log_error("report of run %lld not written: %s", run_id, err);
		free(err);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if (!(formats & all[i]))
			continue;
		struct strbuf b = STRBUF_INIT;
		char *path = xasprintf("%s/run-%lld.%s", directory, run_id,
				       report_format_ext(all[i]));
		report_render(r, all[i], &b);
		if (report_write_file(path, b.s ? b.s : "", b.len, &err)) {
			log_info("report of run %lld written to %s", run_id, path);
			written++;
		} else {
			log_error("report of run %lld: %s", run_id, err);
			free(err);
			err = NULL;
		}
		sb_free(&b);
		free(path);
	}
	return written;
}
