/*
 * coverage (SPEC §9): the pure decisions. Luhn and mod-97, the e-mail,
 * phone and IP matchers, what a value scan finds in text and json, the
 * share that makes a sample's verdict, the name dictionary with its
 * ambiguous words, ignore patterns, and the "coverage" config group with
 * its FILE:LINE errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "coverage.h"
#include "coverage_detect.h"
#include "report.h"
#include "strbuf.h"

#define DB "database: { conninfo = \"dbname=shop\"; };\n"
#define RULES "rules = ( { name = \"r\"; policy = \"p\"; table = \"t\"; " \
	      "age_column = \"c\"; retain = \"1d\"; } );\n"

static void
test_luhn(void **state)
{
	(void)state;
	assert_true(cov_luhn("4111111111111111"));	/* Visa test card */
	assert_true(cov_luhn("5555555555554444"));	/* Mastercard */
	assert_true(cov_luhn("378282246310005"));	/* Amex, 15 digits */
	assert_true(cov_luhn("79927398713"));		/* the textbook case */
	assert_false(cov_luhn("4111111111111112"));
	assert_false(cov_luhn("1234567812345678"));
	assert_false(cov_luhn("79927398710"));
	assert_false(cov_luhn(""));
	assert_false(cov_luhn("4111 1111"));		/* digits only */
}

static void
test_iban_mod97(void **state)
{
	static const char *const good[] = {
		"DE89370400440532013000", "DE89 3704 0044 0532 0130 00",
		"GB82WEST12345698765432", "FR1420041010050500013M02606",
		"NL91ABNA0417164300", "ES9121000418450200051332",
		"be71096123456769",
	};
	static const char *const bad[] = {
		"DE89370400440532013001", "GB82WEST12345698765431",
		"DE8937040044", "1289370400440532013000", "DEXX370400440532013000",
		"DE89-3704-0044-0532-0130-00",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_true(cov_iban(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_false(cov_iban(bad[i], strlen(bad[i])));
}

static bool
email(const char *s)
{
	return cov_email(s, strlen(s));
}

static bool
phone(const char *s)
{
	return cov_phone(s, strlen(s));
}

static bool
ip(const char *s)
{
	return cov_ip(s, strlen(s));
}

static void
test_email_phone_ip(void **state)
{
	(void)state;
	assert_true(email("ann@example.com"));
	assert_true(email("first.last+tag@mail.example.co.uk"));
	assert_false(email("ann@localhost"));
	assert_false(email("@example.com"));
	assert_false(email("ann@@example.com"));
	assert_false(email("ann@example..com"));
	assert_false(email("ann@example.c0m"));
	assert_false(email("not an address"));

	assert_true(phone("+49 30 1234567"));
	assert_true(phone("+1 (555) 123-4567"));
	assert_true(phone("030 1234567"));
	assert_true(phone("0612345678"));
	assert_true(phone("555-123-4567"));
	assert_true(phone(" +33 1 23 45 67 89 "));
	assert_false(phone("1.2.3"));			/* a version */
	assert_false(phone("4111111111111111"));	/* too many digits */
	assert_false(phone("12345678"));		/* a code */
	assert_false(phone("2024-01-15"));		/* a date */
	assert_false(phone("+49 30 abc"));
	assert_false(phone("call 030 1234567"));	/* not the whole value */

	assert_true(ip("192.168.1.20"));
	assert_true(ip("2001:db8::1"));
	assert_true(ip("fe80::1ff:fe23:4567:890a"));
	assert_false(ip("256.1.1.1"));
	assert_false(ip("1.2.3"));
	assert_false(ip("12:30:45"));
	assert_false(ip("::1"));	/* too short to tell from text */
}

static unsigned
scan(const char *s, bool json)
{
	return cov_scan_value(s, strlen(s), json);
}

static void
test_scan_value(void **state)
{
	(void)state;
	assert_int_equal(scan("ann@example.com", false), COV_VAL_EMAIL);
	assert_int_equal(scan("write to ann@example.com.", false), COV_VAL_EMAIL);
	assert_int_equal(scan("+49 30 1234567", false), COV_VAL_PHONE);
	assert_int_equal(scan("login from 10.1.2.3 at noon", false), COV_VAL_IP);
	assert_int_equal(scan("seen 2001:db8::7 twice", false), COV_VAL_IP);
	assert_int_equal(scan("card 4111 1111 1111 1111 exp", false), COV_VAL_CARD);
	assert_int_equal(scan("4111-1111-1111-1111", false), COV_VAL_CARD);
	assert_int_equal(scan("pay to DE89 3704 0044 0532 0130 00 EUR", false),
			 COV_VAL_IBAN);
	/* decoys */
	assert_int_equal(scan("Germany", false), 0);
	assert_int_equal(scan("v2.14.3", false), 0);
	assert_int_equal(scan("release 1.2.3", false), 0);
	assert_int_equal(scan("db-01.internal.example.com", false), 0);
	assert_int_equal(scan("4111111111111112", false), 0);	/* fails Luhn */
	assert_int_equal(scan("9111111111111111", false), 0);	/* no card network */
	assert_int_equal(scan("SKU-4111111111111111X", false), 0);	/* inside a word */
	assert_int_equal(scan("Stainless steel water bottle, 750 ml", false), 0);
	assert_int_equal(scan("2024-01-15 10:30:00", false), 0);

	/* json: keys and values, nested, and numbers */
	assert_int_equal(scan("{\"a\": {\"b\": [\"x\", \"ann@example.com\"]}}", true),
			 COV_VAL_EMAIL);
	assert_int_equal(scan("{\"email\": null}", true), COV_VAL_KEY);
	assert_int_equal(scan("{\"firstName\": \"A\", \"n\": 1}", true), COV_VAL_KEY);
	assert_int_equal(scan("{\"pan\": 4111111111111111}", true), COV_VAL_CARD);
	assert_int_equal(scan("{\"ref\": \"+44 20 7946 0018\"}", true), COV_VAL_PHONE);
	assert_int_equal(scan("{\"name\": \"Widget\", \"price\": 3}", true), 0);
	assert_int_equal(scan("{\"theme\": \"dark\", \"ip\": \"1", true), COV_VAL_KEY);
	assert_int_equal(scan("{\"q\": \"say \\\"hi\\\" ann@example.com\"}", true),
			 COV_VAL_EMAIL);
}

static void
test_sample_verdict(void **state)
{
	struct cov_sample s = {0};
	int pct = -1;
	int email_k = 0, card_k = 3;

	(void)state;
	assert_int_equal(cov_sample_verdict(&s, email_k, &pct), COV_CONF_NONE);
	for (int i = 0; i < 93; i++)
		cov_sample_add(&s, COV_VAL_EMAIL);
	for (int i = 0; i < 7; i++)
		cov_sample_add(&s, 0);
	assert_int_equal(cov_sample_verdict(&s, email_k, &pct), COV_CONF_HIGH);
	assert_int_equal(pct, 93);
	assert_int_equal(cov_sample_verdict(&s, card_k, &pct), COV_CONF_NONE);

	struct cov_sample m = {0};
	for (int i = 0; i < 20; i++)
		cov_sample_add(&m, i < 3 ? COV_VAL_CARD : 0);
	assert_int_equal(cov_sample_verdict(&m, card_k, &pct), COV_CONF_MEDIUM);
	assert_int_equal(pct, 15);
	struct cov_sample few = {0};
	for (int i = 0; i < 20; i++)
		cov_sample_add(&few, i < 1 ? COV_VAL_CARD : 0);
	assert_int_equal(cov_sample_verdict(&few, card_k, &pct), COV_CONF_NONE);
}

static const struct name_case {
	const char *column, *table;
	enum cov_confidence conf;
	enum cov_category cat;
} name_cases[] = {
	/* snake_case, camelCase, abbreviations */
	{"email", "t", COV_CONF_HIGH, COV_EMAIL},
	{"customer_email", "t", COV_CONF_HIGH, COV_EMAIL},
	{"emailAddress", "t", COV_CONF_HIGH, COV_EMAIL},
	{"E_MAIL", "t", COV_CONF_HIGH, COV_EMAIL},
	{"e-mail", "t", COV_CONF_HIGH, COV_EMAIL},
	{"contactemail", "t", COV_CONF_HIGH, COV_EMAIL},
	{"phone_number", "t", COV_CONF_HIGH, COV_PHONE},
	{"tel", "t", COV_CONF_HIGH, COV_PHONE},
	{"msisdn", "t", COV_CONF_HIGH, COV_PHONE},
	{"mobilePhone", "t", COV_CONF_HIGH, COV_PHONE},
	{"first_name", "t", COV_CONF_HIGH, COV_PERSON_NAME},
	{"lastName", "t", COV_CONF_HIGH, COV_PERSON_NAME},
	{"dob", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"date_of_birth", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"birthDate", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"addr1", "t", COV_CONF_HIGH, COV_ADDRESS},
	{"address_line_2", "t", COV_CONF_HIGH, COV_ADDRESS},
	{"zip", "t", COV_CONF_HIGH, COV_ADDRESS},
	{"postal_code", "t", COV_CONF_HIGH, COV_ADDRESS},
	{"ssn", "t", COV_CONF_HIGH, COV_NATIONAL_ID},
	{"tax_id", "t", COV_CONF_HIGH, COV_NATIONAL_ID},
	{"passport_no", "t", COV_CONF_HIGH, COV_PASSPORT},
	{"card_number", "t", COV_CONF_HIGH, COV_CARD},
	{"iban", "t", COV_CONF_HIGH, COV_BANK},
	{"acct", "refunds", COV_CONF_HIGH, COV_BANK},
	{"ipaddr", "t", COV_CONF_HIGH, COV_IP},
	{"IPAddress", "t", COV_CONF_HIGH, COV_IP},
	{"signup_ip", "t", COV_CONF_HIGH, COV_IP},
	{"user_agent", "t", COV_CONF_HIGH, COV_USER_AGENT},
	{"device_id", "t", COV_CONF_HIGH, COV_DEVICE_ID},
	{"cookie_id", "t", COV_CONF_HIGH, COV_DEVICE_ID},
	{"lat", "t", COV_CONF_HIGH, COV_GEO},
	{"longitude", "t", COV_CONF_HIGH, COV_GEO},
	{"notes", "t", COV_CONF_MEDIUM, COV_FREE_TEXT},
	{"message_body", "t", COV_CONF_MEDIUM, COV_FREE_TEXT},
	{"error_message", "t", COV_CONF_NONE, COV_NONE},
	{"commit_message", "t", COV_CONF_NONE, COV_NONE},
	/* German, French, Spanish, Dutch */
	{"vorname", "t", COV_CONF_HIGH, COV_PERSON_NAME},
	{"geburtsdatum", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"telefonnummer", "t", COV_CONF_HIGH, COV_PHONE},
	{"strasse", "t", COV_CONF_HIGH, COV_ADDRESS},
	{"prenom", "t", COV_CONF_HIGH, COV_PERSON_NAME},
	{"date_naissance", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"courriel", "t", COV_CONF_HIGH, COV_EMAIL},
	{"telefono", "t", COV_CONF_HIGH, COV_PHONE},
	{"fecha_nacimiento", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"direccion", "clientes", COV_CONF_HIGH, COV_ADDRESS},
	{"achternaam", "t", COV_CONF_HIGH, COV_PERSON_NAME},
	{"geboortedatum", "t", COV_CONF_HIGH, COV_BIRTH_DATE},
	{"woonplaats", "t", COV_CONF_HIGH, COV_ADDRESS},
	/* ambiguous words: a second signal, or medium */
	{"name", "customers", COV_CONF_HIGH, COV_PERSON_NAME},
	{"name", "imports", COV_CONF_MEDIUM, COV_PERSON_NAME},
	{"name", "products", COV_CONF_NONE, COV_NONE},
	{"name", "countries", COV_CONF_NONE, COV_NONE},
	{"product_name", "t", COV_CONF_NONE, COV_NONE},
	{"address", "t", COV_CONF_MEDIUM, COV_ADDRESS},
	{"billing_address", "t", COV_CONF_HIGH, COV_ADDRESS},
	{"address", "users", COV_CONF_HIGH, COV_ADDRESS},
	{"web_address", "t", COV_CONF_NONE, COV_NONE},
	{"ip_address", "t", COV_CONF_HIGH, COV_IP},
	{"mac_address", "t", COV_CONF_HIGH, COV_DEVICE_ID},
	{"mobile_app_version", "t", COV_CONF_NONE, COV_NONE},
	/* not personal */
	{"id", "t", COV_CONF_NONE, COV_NONE},
	{"hostname", "t", COV_CONF_NONE, COV_NONE},
	{"title", "t", COV_CONF_NONE, COV_NONE},
	{"version", "t", COV_CONF_NONE, COV_NONE},
	{"created_at", "t", COV_CONF_NONE, COV_NONE},
	{"description", "t", COV_CONF_NONE, COV_NONE},
	{"zipper_color", "t", COV_CONF_NONE, COV_NONE},
	{"shipped", "t", COV_CONF_NONE, COV_NONE},
	{"hotel", "t", COV_CONF_NONE, COV_NONE},
	{"status", "t", COV_CONF_NONE, COV_NONE},
};

static void
test_name_dictionary(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(*name_cases); i++) {
		const struct name_case *nc = &name_cases[i];
		enum cov_category cat = COV_NONE;
		enum cov_confidence conf = cov_name_match(nc->column, nc->table,
							  &cat);
		if (conf != nc->conf || (conf && cat != nc->cat))
			fail_msg("%s in %s: got %s %s, expected %s %s",
				 nc->column, nc->table, cov_confidence_name(conf),
				 cov_category_name(cat),
				 cov_confidence_name(nc->conf),
				 cov_category_name(nc->cat));
	}
}

static void
test_types(void **state)
{
	(void)state;
	assert_true(cov_type_match("inet"));
	assert_true(cov_type_match("cidr"));
	assert_true(cov_type_match("macaddr"));
	assert_true(cov_type_match("macaddr8"));
	assert_false(cov_type_match("text"));
	assert_true(cov_type_sampled("varchar"));
	assert_true(cov_type_sampled("jsonb"));
	assert_false(cov_type_sampled("int4"));
}

static void
test_ignore_patterns(void **state)
{
	(void)state;
	assert_true(cov_ignore_match("public.countries", "public", "countries", NULL));
	assert_true(cov_ignore_match("public.countries", "public", "countries", "name"));
	assert_false(cov_ignore_match("public.countries", "public", "country", "name"));
	assert_true(cov_ignore_match("shop.customers.email", "shop", "customers", "email"));
	assert_false(cov_ignore_match("shop.customers.email", "shop", "customers", "phone"));
	assert_false(cov_ignore_match("shop.customers.email", "shop", "customers", NULL));
	assert_true(cov_ignore_match("*.countries", "ref", "countries", "x"));
	assert_true(cov_ignore_match("staging.*", "staging", "anything", "x"));
	assert_true(cov_ignore_match("shop.*_archive.*", "shop", "orders_archive", "x"));
	assert_false(cov_ignore_match("shop.*_archive.*", "shop", "orders", "x"));
	assert_true(cov_ignore_match("*.*.*_hash", "a", "b", "email_hash"));
	assert_true(cov_ignore_match("\"My Schema\".\"t.x\"", "My Schema", "t.x", NULL));
	assert_false(cov_ignore_match("public", "public", "t", NULL));
	assert_true(cov_pattern_valid("a.b"));
	assert_true(cov_pattern_valid("a.b.c"));
	assert_true(cov_pattern_valid("*.*"));
	assert_false(cov_pattern_valid("a"));
	assert_false(cov_pattern_valid("a.b.c.d"));
	assert_false(cov_pattern_valid("a..b"));
	assert_false(cov_pattern_valid(".b"));
	assert_false(cov_pattern_valid("\"a.b"));
}

static void
test_config_group(void **state)
{
	struct config cfg;
	struct diag d;

	(void)state;
	diag_init(&d);
	assert_true(config_load_string(DB RULES, "test.conf", &cfg, &d));
	assert_int_equal(cfg.coverage.sample_rows, 1000);
	assert_int_equal(cfg.coverage.n_ignore, 0);
	config_free(&cfg);
	diag_fini(&d);

	diag_init(&d);
	assert_true(config_load_string(DB RULES
		"coverage: {\n"
		"  sample_rows = 0;\n"
		"  ignore = (\n"
		"    { match = \"public.countries\"; reason = \"reference data\"; },\n"
		"    { match = \"shop.*.email\"; reason = \"kept\"; }\n"
		"  );\n"
		"};\n", "test.conf", &cfg, &d));
	assert_int_equal(cfg.coverage.sample_rows, 0);
	assert_int_equal(cfg.coverage.n_ignore, 2);
	assert_string_equal(cfg.coverage.ignore[0].match, "public.countries");
	assert_string_equal(cfg.coverage.ignore[0].reason, "reference data");
	assert_int_equal(cfg.coverage.ignore[1].line, 7);
	config_free(&cfg);
	diag_fini(&d);
}

static bool
has(const struct diag *d, const char *prefix, const char *phrase)
{
	for (size_t i = 0; i < d->n; i++)
		if (strncmp(d->entries[i].text, prefix, strlen(prefix)) == 0 &&
		    strstr(d->entries[i].text, phrase))
			return true;
	return false;
}

static void
test_config_errors(void **state)
{
	struct config cfg;
	struct diag d;

	(void)state;
	diag_init(&d);
	assert_false(config_load_string(DB RULES
		"coverage: {\n"						/* 3 */
		"  sample_rows = -1;\n"					/* 4 */
		"  ignore = (\n"					/* 5 */
		"    { match = \"public.countries\"; },\n"		/* 6 */
		"    { reason = \"r\"; },\n"				/* 7 */
		"    { match = \"countries\"; reason = \"r\"; },\n"	/* 8 */
		"    { match = \"a.b\"; reason = \"\"; },\n"		/* 9 */
		"    { match = \"a.b\"; reason = \"r\"; why = 1; }\n"	/* 10 */
		"  );\n"
		"  samples = 3;\n"					/* 12 */
		"};\n", "test.conf", &cfg, &d));
	for (size_t i = 0; i < d.n; i++)
		print_error("    %s\n", d.entries[i].text);
	assert_true(has(&d, "test.conf:4: ", "\"sample_rows\" must be between 0 and"));
	assert_true(has(&d, "test.conf:6: ", "has no \"reason\""));
	assert_true(has(&d, "test.conf:7: ", "has no \"match\""));
	assert_true(has(&d, "test.conf:8: ", "\"schema.table\" or \"schema.table.column\""));
	assert_true(has(&d, "test.conf:9: ", "\"reason\" must"));
	assert_true(has(&d, "test.conf:10: ", "unknown key \"why\""));
	assert_true(has(&d, "test.conf:12: ", "unknown key \"samples\" in \"coverage\""));
	assert_int_equal(d.n_errors, 7);
	diag_fini(&d);
}

/* A report with a coverage result: every format has the section, with the
 * uncovered table and its columns, and none of the covered one's. */
static void
test_report_section(void **state)
{
	/* the structs hold non-const strings: they are freed in real use */
	static char r1[] = "name e-mail", r2[] = "values 93% e-mail",
		    r3[] = "type inet", email[] = "email", ip[] = "ip",
		    phone[] = "phone", ignore[] = "ignore", keep[] = "rule keep-me",
		    shop[] = "shop", signups[] = "signups", fine_tbl[] = "fine_tbl",
		    generated[] = "2026-01-01 00:00:00+00";
	static char *reasons_a[] = {r1, r2};
	static char *reasons_b[] = {r3};
	struct coverage_column cols_u[] = {
		{ .name = email, .reasons = reasons_a, .n_reasons = 2,
		  .confidence = COV_CONF_HIGH },
		{ .name = ip, .reasons = reasons_b, .n_reasons = 1,
		  .confidence = COV_CONF_HIGH, .covered_by = ignore },
	};
	struct coverage_column cols_c[] = {
		{ .name = phone, .reasons = reasons_b, .n_reasons = 1,
		  .confidence = COV_CONF_MEDIUM, .covered_by = keep },
	};
	struct coverage_table tables[] = {
		{ .schema = shop, .table = signups, .covered = false,
		  .cols = cols_u, .n_cols = 2 },
		{ .schema = shop, .table = fine_tbl, .covered = true,
		  .cols = cols_c, .n_cols = 1 },
	};
	struct coverage_result cov = {
		.tables_scanned = 7, .personal_tables = 2, .uncovered_tables = 1,
		.uncovered_columns = 1, .tables = tables, .n_tables = 2,
	};
	static const enum report_format formats[] = {
		REPORT_TEXT, REPORT_CSV, REPORT_JSON, REPORT_HTML,
	};
	static const char *const section[] = {
		"\nCOVERAGE\n", "coverage_table,covered,", "\"coverage\": {",
		"<h2>Coverage</h2>",
	};
	struct report rep = { .generated_at = generated };

	(void)state;
	for (size_t i = 0; i < sizeof(formats) / sizeof(*formats); i++) {
		struct strbuf b = STRBUF_INIT;

		/* without coverage: no section */
		rep.coverage = NULL;
		rep.coverage_error = NULL;
		report_render(&rep, formats[i], &b);
		assert_null(strstr(b.s, section[i]));
		sb_free(&b);

		rep.coverage = &cov;
		report_render(&rep, formats[i], &b);
		const char *col = formats[i] == REPORT_JSON
			? "{\"column\": \"email\", \"reasons\": [\"name e-mail\", "
			  "\"values 93% e-mail\"], \"confidence\": \"high\", "
			  "\"covered_by\": null}"
			: "email (name e-mail, values 93% e-mail; high)";
		if (!strstr(b.s, section[i]) || !strstr(b.s, "shop.signups") ||
		    !strstr(b.s, col))
			fail_msg("format %zu:\n%s", i, b.s);
		/* only the JSON object lists covered tables and columns */
		if (formats[i] != REPORT_JSON) {
			assert_null(strstr(b.s, "fine_tbl"));
			assert_null(strstr(b.s, "ip (type inet"));
		}
		sb_free(&b);

		/* coverage failed: the section says so */
		rep.coverage = NULL;
		rep.coverage_error = "permission denied for schema x";
		report_render(&rep, formats[i], &b);
		if (!strstr(b.s, "permission denied for schema x"))
			fail_msg("format %zu without the error:\n%s", i, b.s);
		sb_free(&b);
	}
	struct strbuf b = STRBUF_INIT;
	rep.coverage = NULL;
	report_render(&rep, REPORT_JSON, &b);
	assert_non_null(strstr(b.s, "\"coverage\": null, \"coverage_error\": "
				    "\"permission denied for schema x\""));
	sb_free(&b);
	report_render(&rep, REPORT_TEXT, &b);
	assert_non_null(strstr(b.s, "coverage FAILED this cycle"));
	sb_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_luhn),
		cmocka_unit_test(test_iban_mod97),
		cmocka_unit_test(test_email_phone_ip),
		cmocka_unit_test(test_scan_value),
		cmocka_unit_test(test_sample_verdict),
		cmocka_unit_test(test_name_dictionary),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_ignore_patterns),
		cmocka_unit_test(test_config_group),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_report_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
