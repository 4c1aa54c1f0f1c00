/* report: escaping for each format and the renderers on a report built in
 * memory (no database): hostile values stay data, the verdicts and totals
 * are right, CSV rows and JSON structure hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"
#include "strbuf.h"
#include "util.h"

#define NASTY_POLICY \
	"Kept \xe2\x89\xa4 30 days, \"then\" deleted <script>alert('x')" \
	"</script>\r\nBcc: a@b, c & d"

static void
test_csv_field_quoting(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "a,b", "\"a,b\"" },
		{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "two\nlines", "\"two\nlines\"" },
		{ "cr\r", "\"cr\r\"" },
		{ "L\xc3\xb6schung", "L\xc3\xb6schung" },
		{ "<script>", "<script>" },
		/* formula injection: kept as text, numbers left alone */
		{ "=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\"" },
		{ "+1+cmd|' /C calc'!A0", "\"'+1+cmd|' /C calc'!A0\"" },
		{ "@SUM(A1)", "\"'@SUM(A1)\"" },
		{ "-2+3", "\"'-2+3\"" },
		{ "\t=1", "\"'\t=1\"" },
		{ "-1", "-1" },
		{ "-0.5", "-0.5" },
		{ "a=b", "a=b" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf b = STRBUF_INIT;
		report_csv_field(&b, cases[i].in);
		assert_string_equal(b.s ? b.s : "", cases[i].want);
		sb_free(&b);
	}
	struct strbuf b = STRBUF_INIT;
	report_csv_field(&b, NULL);
	assert_null(b.s);
}

static void
test_html_escaping(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "<script>alert('x')</script>",
		  "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" },
		{ "a & \"b\"", "a &amp; &quot;b&quot;" },
		{ "&amp;", "&amp;amp;" },
		{ "esc\x1b[31m", "esc&#xFFFD;[31m" },
		{ "L\xc3\xb6schung", "L\xc3\xb6schung" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf b = STRBUF_INIT;
		report_html_escape(&b, cases[i].in);
		assert_string_equal(b.s, cases[i].want);
		sb_free(&b);
	}
}

static void
test_format_names(void **state)
{
	enum report_format f;

	(void)state;
	assert_true(report_parse_format("html", &f));
	assert_int_equal(f, REPORT_HTML);
	assert_true(report_parse_format("text", &f));
	assert_string_equal(report_format_ext(f), "txt");
	assert_false(report_parse_format("pdf", &f));
	assert_false(report_parse_format("HTML", &f));
}

/* ---- a report in memory --------------------------------------------------- */

static struct report_rule
rule(const char *name, const char *policy, long long changed, long long held,
     long long overdue, bool compliant, const char *outcome)
{
	struct report_rule rr = {
		.rule = xstrdup(name),
		.policy = xstrdup(policy),
		.table = xstrdup("public.events"),
		.action = xstrdup("delete"),
		.retain = xstrdup("2 days"),
		.outcome = xstrdup(outcome),
		.cutoff = xstrdup("2025-02-11 14:03:00.123456+00"),
		.oldest = xstrdup("2025-02-01 10:00:00+00"),
		.message = NULL,
		.changed = changed,
		.held = held,
		.blocked = 2,
		.eligible = changed + held,
		.overdue = overdue,
		.table_rows = 1000,
		.compliant = compliant,
		.oldest_age_s = 12.5 * 86400,
		.runs = 1,
		.last_run_id = 12,
	};
	return rr;
}

static void
make_report(struct report *r)
{
	memset(r, 0, sizeof(*r));
	r->runs = xcalloc(1, sizeof(*r->runs));
	r->n_runs = 1;
	r->runs[0] = (struct report_run){
		.id = 12,
		.host = xstrdup("db1"),
		.command = xstrdup("run"),
		.status = xstrdup("partial"),
		.started_at = xstrdup("2025-02-13 14:03:00+00"),
		.finished_at = xstrdup("2025-02-13 14:03:09+00"),
		.config_sha256 = xstrdup("ab12"),
		.error = xstrdup("rule \"b\": failed: <boom>"),
		.changed = 1234,
	};
	r->rules = xcalloc(3, sizeof(*r->rules));
	r->rules[r->n_rules++] = rule("events", NASTY_POLICY, 1200, 4, 4, false,
				      "done");
	r->rules[r->n_rules++] = rule("b", "plain", 34, 0, 0, false, "failed");
	r->rules[r->n_rules++] = rule("c", "quiet", 0, 0, 0, true, "nothing due");
	r->rules[1].message = xstrdup("relation \"x\" does not exist");
	r->period_start = xstrdup("-infinity");
	r->period_end = xstrdup("2025-02-13 14:03:09+00");
	r->generated_at = xstrdup("2025-02-13 14:03:10+00");
	r->erasure = (struct report_erasure){ 2, 1, 1, 1, 3 };
	r->holds_active = 1;
	r->audit.status = REPORT_AUDIT_INTACT;
	r->audit.actions = 45;
	r->audit.head = xstrdup("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	report_add_alert(r, "erasure request 5 (customer:<42>, pending) is OVERDUE");
}

static void
test_totals_and_verdicts(void **state)
{
	struct report r;
	struct report_totals t;
	char v[64];

	(void)state;
	make_report(&r);
	report_totals(&r, &t);
	assert_int_equal(t.changed, 1234);
	assert_int_equal(t.held, 4);
	assert_int_equal(t.blocked, 6);
	assert_int_equal(t.overdue, 4);
	assert_int_equal(t.rules, 3);
	assert_int_equal(t.rules_overdue, 2);
	assert_int_equal(t.rules_failed, 1);
	assert_false(t.compliant);

	report_verdict(&r.rules[0], v, sizeof(v));
	assert_string_equal(v, "OVERDUE 4");
	report_verdict(&r.rules[1], v, sizeof(v));
	assert_string_equal(v, "NOT COMPLIANT (failed)");
	report_verdict(&r.rules[2], v, sizeof(v));
	assert_string_equal(v, "compliant");
	r.rules[2].compliant = false;
	r.rules[2].overdue = -1;
	report_verdict(&r.rules[2], v, sizeof(v));
	assert_string_equal(v, "unknown");
	report_free(&r);

	/* no rule results prove nothing */
	memset(&r, 0, sizeof(r));
	report_totals(&r, &t);
	assert_false(t.compliant);
}

static void
test_html_has_no_live_markup_from_values(void **state)
{
	struct report r;
	struct strbuf b = STRBUF_INIT;

	(void)state;
	make_report(&r);
	report_render_html(&r, &b);
	assert_null(strstr(b.s, "<script"));
	assert_null(strstr(b.s, "<boom>"));
	assert_null(strstr(b.s, "<42>"));
	assert_non_null(strstr(b.s, "&lt;script&gt;alert(&#39;x&#39;)"));
	assert_non_null(strstr(b.s, "&quot;then&quot;"));
	assert_non_null(strstr(b.s, "<svg"));
	assert_non_null(strstr(b.s, "@media print"));
	assert_non_null(strstr(b.s, "OVERDUE 4"));
	assert_non_null(strstr(b.s, "<table class=\"rules\">"));
	/* microseconds are dropped for readers */
	assert_non_null(strstr(b.s, "2025-02-11 14:03:00+00"));
	assert_true(strncmp(b.s, "<!DOCTYPE html>", 15) == 0);
	sb_free(&b);
	report_free(&r);
}

/* Split an RFC 4180 document into records of fields. */
static size_t
csv_parse(const char *s, char ***fields, size_t *nfields, size_t max)
{
	size_t nrec = 0;
	struct strbuf f = STRBUF_INIT;

	while (*s && nrec < max) {
		fields[nrec] = xcalloc(64, sizeof(char *));
		nfields[nrec] = 0;
		for (;;) {
			bool quoted = *s == '"';
			if (quoted) {
				s++;
				for (;;) {
					assert_true(*s != '\0');
					if (s[0] == '"' && s[1] == '"') {
						sb_addn(&f, "\"", 1);
						s += 2;
					} else if (s[0] == '"') {
						s++;
						break;
					} else {
						sb_addn(&f, s++, 1);
					}
				}
			} else {
				while (*s && *s != ',' && *s != '\r') {
					assert_true(*s != '\n' && *s != '"');
					sb_addn(&f, s++, 1);
				}
			}
			fields[nrec][nfields[nrec]++] = sb_take(&f);
			if (*s == ',') {
				s++;
				continue;
			}
			assert_true(s[0] == '\r' && s[1] == '\n');
			s += 2;
			break;
		}
		nrec++;
	}
	return nrec;
}

static void
test_csv_rows_keep_hostile_values_in_their_field(void **state)
{
	struct report r;
	struct strbuf b = STRBUF_INIT;
	char **fields[8] = { 0 };
	size_t nfields[8] = { 0 };

	(void)state;
	make_report(&r);
	report_render_csv(&r, &b);
	size_t nrec = csv_parse(b.s, fields, nfields, 8);
	assert_int_equal(nrec, 4);	/* header + 3 rules */
	size_t policy = 0, verdict = 0, error = 0;
	for (size_t i = 0; i < nfields[0]; i++) {
		if (strcmp(fields[0][i], "policy") == 0)
			policy = i;
		if (strcmp(fields[0][i], "verdict") == 0)
			verdict = i;
		if (strcmp(fields[0][i], "run_error") == 0)
			error = i;
	}
	assert_true(policy && verdict && error);
	for (size_t i = 1; i < nrec; i++)
		assert_int_equal(nfields[i], nfields[0]);
	assert_string_equal(fields[1][policy], NASTY_POLICY);
	assert_string_equal(fields[1][verdict], "OVERDUE 4");
	assert_string_equal(fields[2][error], "rule \"b\": failed: <boom>");
	for (size_t i = 0; i < nrec; i++) {
		for (size_t j = 0; j < nfields[i]; j++)
			free(fields[i][j]);
		free(fields[i]);
	}
	sb_free(&b);
	report_free(&r);
}

static void
test_json_escapes_values(void **state)
{
	struct report r;
	struct strbuf b = STRBUF_INIT;

	(void)state;
	make_report(&r);
	report_render_json(&r, &b);
	assert_non_null(strstr(b.s, "\"policy\": \"Kept \xe2\x89\xa4 30 days, "
				    "\\\"then\\\" deleted <script>alert('x')"
				    "</script>\\r\\nBcc: a@b, c & d\""));
	assert_non_null(strstr(b.s, "\"compliant\": false"));
	assert_non_null(strstr(b.s, "\"report_version\": 1"));
	assert_non_null(strstr(b.s, "\"oldest_age_seconds\": 1080000"));
	/* no raw control characters inside the document's strings */
	for (const char *p = b.s; *p; p++)
		assert_true((unsigned char)*p >= 0x20 || *p == '\n');
	sb_free(&b);
	report_free(&r);
}

static void
test_text_shows_controls_as_escapes(void **state)
{
	struct report r;
	struct strbuf b = STRBUF_INIT;

	(void)state;
	make_report(&r);
	report_render_text(&r, &b);
	assert_non_null(strstr(b.s, "deleted <script>alert('x')</script>\\r\\nBcc: a@b"));
	assert_null(strstr(b.s, "\r"));
	assert_null(strstr(b.s, "\x1b"));
	assert_non_null(strstr(b.s, "OVERDUE 4"));
	assert_non_null(strstr(b.s, "12.5 days"));
	assert_non_null(strstr(b.s, "TOTAL"));
	assert_non_null(strstr(b.s, "ALERTS"));
	sb_free(&b);
	report_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_field_quoting),
		cmocka_unit_test(test_html_escaping),
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_totals_and_verdicts),
		cmocka_unit_test(test_html_has_no_live_markup_from_values),
		cmocka_unit_test(test_csv_rows_keep_hostile_values_in_their_field),
		cmocka_unit_test(test_json_escapes_values),
		cmocka_unit_test(test_text_shows_controls_as_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
