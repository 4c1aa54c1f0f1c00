/*
 * Pure SQL-building logic: HMAC pads, de-identification expressions,
 * identifier quoting, JSON escaping, the GRANT list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "deid.h"
#include "grants.h"
#include "sha256.h"
#include "strbuf.h"

static int
hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void
unhex(const char *lit, unsigned char out[64])
{
	assert_int_equal(lit[0], '\\');
	assert_int_equal(lit[1], 'x');
	assert_int_equal(strlen(lit), 130);
	for (int i = 0; i < 64; i++)
		out[i] = (unsigned char)(hexval(lit[2 + 2 * i]) << 4 |
					 hexval(lit[3 + 2 * i]));
}

/* What PostgreSQL computes from the pads: sha256(opad || sha256(ipad || m)). */
static void
hmac_from_pads(const char *ipad_hex, const char *opad_hex, const char *msg,
	       unsigned char out[32])
{
	unsigned char ipad[64], opad[64], inner[32];
	struct sha256_ctx c;

	unhex(ipad_hex, ipad);
	unhex(opad_hex, opad);
	sha256_init(&c);
	sha256_update(&c, ipad, 64);
	sha256_update(&c, msg, strlen(msg));
	sha256_final(&c, inner);
	sha256_init(&c);
	sha256_update(&c, opad, 64);
	sha256_update(&c, inner, 32);
	sha256_final(&c, out);
}

static void
test_hmac_pads_give_the_reference_hmac(void **state)
{
	(void)state;
	static const char *keys[] = {
		"short key",
		"exactly-64-bytes-exactly-64-bytes-exactly-64-bytes-exactly-64-by",
		"a key longer than the 64-byte block is hashed first, as RFC 2104 says it must be",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char ipad[DEID_PAD_HEX_LEN], opad[DEID_PAD_HEX_LEN];
		unsigned char want[32], got[32];
		const char *msg = "alice@example.com";

		deid_hmac_pads((const unsigned char *)keys[i], strlen(keys[i]),
			       ipad, opad);
		hmac_sha256(keys[i], strlen(keys[i]), msg, strlen(msg), want);
		hmac_from_pads(ipad, opad, msg, got);
		assert_memory_equal(want, got, 32);
	}
}

static void
test_deid_expressions_fit_the_column_type(void **state)
{
	(void)state;
	char b_text[] = "text", b_inet[] = "inet", b_date[] = "date";
	char b_tstz[] = "timestamptz";
	struct catalog_column text = { .base = b_text, .category = 'S' };
	struct catalog_column inet = { .base = b_inet, .category = 'I' };
	struct catalog_column date = { .base = b_date, .category = 'D' };
	struct catalog_column tstz = { .base = b_tstz, .category = 'D' };
	char *e;

	e = deid_expr(METHOD_NULL, "t.\"c\"", &text, "\"r\"", 0, 0);
	assert_string_equal(e, "NULL");
	free(e);
	e = deid_expr(METHOD_REDACT, "t.\"c\"", &text, "\"r\"", 0, 0);
	assert_non_null(strstr(e, "'[redacted]'"));
	free(e);
	e = deid_expr(METHOD_HASH, "t.\"c\"", &text, "\"r\"", 7, 8);
	assert_non_null(strstr(e, "sha256($8::bytea || sha256($7::bytea"));
	free(e);
	e = deid_expr(METHOD_TRUNCATE_IP, "t.\"c\"", &inet, "\"r\"", 0, 0);
	assert_non_null(strstr(e, "masklen(t.\"c\"), 24)"));
	assert_non_null(strstr(e, "masklen(t.\"c\"), 48)"));
	free(e);
	e = deid_expr(METHOD_TRUNCATE_IP, "t.\"c\"", &text, "\"r\"", 0, 0);
	assert_string_equal(e, "\"r\".truncate_ip_text(t.\"c\")");
	free(e);
	e = deid_expr(METHOD_YEAR, "t.\"c\"", &date, "\"r\"", 0, 0);
	assert_string_equal(e, "date_trunc('year', t.\"c\")::date");
	free(e);
	e = deid_expr(METHOD_YEAR, "t.\"c\"", &tstz, "\"r\"", 0, 0);
	assert_string_equal(e, "date_trunc('year', t.\"c\", 'UTC')");
	free(e);
}

static void
test_identifiers_are_always_quoted_and_quotes_doubled(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "\"plain\"" },
		{ "x\"; DROP TABLE y; --", "\"x\"\"; DROP TABLE y; --\"" },
		{ "", "\"\"" },
		{ "Ünïcode", "\"Ünïcode\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *q = sql_quote_ident(cases[i].in);
		assert_string_equal(q, cases[i].out);
		free(q);
	}
}

static void
test_json_strings_are_escaped(void **state)
{
	(void)state;
	struct strbuf b = STRBUF_INIT;
	sb_json_str(&b, "a\"b\\c\nd\x01</script>\xe2\x80\xa8");
	assert_string_equal(b.s, "\"a\\\"b\\\\c\\nd\\u0001</script>\\u2028\"");
	sb_free(&b);
	sb_json_str(&b, NULL);
	assert_string_equal(b.s, "null");
	sb_free(&b);
}

static const char grants_conf[] =
	"database: { conninfo = \"dbname=shop\"; };\n"
	"pseudonym_key_file = \"/nonexistent/key\";\n"
	"rules = (\n"
	"  { name = \"logs\"; policy = \"p\"; table = \"api.logs\";\n"
	"    age_column = \"at\"; retain = \"1 day\"; },\n"
	"  { name = \"people\"; policy = \"p\"; table = \"people\";\n"
	"    age_column = \"closed_at\"; retain = \"1 year\"; action = \"deidentify\";\n"
	"    deidentify = { email = \"hash\"; name = \"redact\"; };\n"
	"    marker_column = \"done_at\"; }\n"
	");\n";

static void
test_grants_are_least_privilege(void **state)
{
	(void)state;
	struct config cfg;
	struct diag d;
	struct strbuf out = STRBUF_INIT;

	diag_init(&d);
	assert_true(config_load_string(grants_conf, "g.conf", &cfg, &d));
	grants_render(&cfg, "ret\"entiond", NULL, &out);

	assert_non_null(strstr(out.s, "GRANT SELECT, DELETE ON \"api\".\"logs\" TO \"ret\"\"entiond\";"));
	assert_non_null(strstr(out.s,
		"GRANT UPDATE (\"email\", \"name\", \"done_at\") ON \"public\".\"people\" TO \"ret\"\"entiond\";"));
	/* FOR UPDATE SKIP LOCKED needs UPDATE on one column: a delete rule
	 * gets it on its age column only, a de-identifying one has its own */
	assert_non_null(strstr(out.s, "GRANT UPDATE (\"at\") ON \"api\".\"logs\" TO"));
	assert_null(strstr(out.s, "\"closed_at\") ON"));
	/* a de-identifying rule never gets DELETE */
	assert_null(strstr(out.s, "DELETE ON \"public\".\"people\""));
	/* the audit trail: insert, never update or delete */
	assert_non_null(strstr(out.s, "GRANT SELECT, INSERT ON \"retention\".actions"));
	assert_null(strstr(out.s, "UPDATE ON \"retention\".actions"));
	assert_null(strstr(out.s, "DELETE ON \"retention\""));
	/* "hash": how to keep the key's HMAC pads out of the server's log */
	assert_non_null(strstr(out.s, "-- GRANT SET ON PARAMETER "
				      "log_parameter_max_length TO \"ret\"\"entiond\";\n"));
	/* without the database, references and partitions are not known:
	 * it says so */
	assert_non_null(strstr(out.s, "-- The database could not be asked.\n"));
	/* no max_replica_lag: no pg_monitor */
	assert_null(strstr(out.s, "pg_monitor"));
	sb_free(&out);
	config_free(&cfg);
	diag_fini(&d);
}

/* max_replica_lag reads pg_stat_replication's positions, which only
 * pg_monitor (pg_read_all_stats) may see: set on one rule is enough. */
static void
test_grants_pg_monitor_for_max_replica_lag(void **state)
{
	(void)state;
	static const char *const confs[] = {
		"database: { conninfo = \"dbname=x\"; };\n"
		"limits: { max_replica_lag = \"10s\"; };\n"
		"rules = ( { name = \"a\"; policy = \"p\"; table = \"t\";\n"
		"  age_column = \"at\"; retain = \"1 day\"; } );\n",
		"database: { conninfo = \"dbname=x\"; };\n"
		"rules = ( { name = \"a\"; policy = \"p\"; table = \"t\";\n"
		"  age_column = \"at\"; retain = \"1 day\";\n"
		"  max_replica_lag = \"1 min\"; } );\n",
	};
	for (size_t i = 0; i < 2; i++) {
		struct config cfg;
		struct diag d;
		struct strbuf out = STRBUF_INIT;
		diag_init(&d);
		assert_true(config_load_string(confs[i], "g.conf", &cfg, &d));
		grants_render(&cfg, "ret", NULL, &out);
		assert_non_null(strstr(out.s, "\nGRANT pg_monitor TO \"ret\";\n"));
		sb_free(&out);
		config_free(&cfg);
		diag_fini(&d);
	}
}

/* A table without a rule that references a delete rule's table gets
 * SELECT on its referencing columns, and nothing more; a table that has
 * a rule already reads the whole table. */
static void
test_grants_read_the_references_that_block(void **state)
{
	(void)state;
	struct config cfg;
	struct diag d;
	struct strbuf out = STRBUF_INIT;
	char audit[] = "audit", flags[] = "log_flags", id[] = "log_id",
	     part[] = "log_part", public[] = "public", people[] = "people",
	     last[] = "last_log", xy[] = "x\"y", z[] = "z", w[] = "w";
	struct grants_ref v[] = {
		{ 0, audit, flags, id },
		{ 0, audit, flags, part },
		{ 0, public, people, last },
		{ 0, xy, z, w },
	};
	char logs1[] = "logs_2024", people1[] = "people_old", api[] = "api";
	struct grants_part parts[] = {
		{ 0, api, logs1 },
		{ 1, public, people1 },
	};
	struct grants_refs refs = { .known = true, .v = v, .n = 4,
				    .parts = parts, .n_parts = 2 };

	diag_init(&d);
	assert_true(config_load_string(grants_conf, "g.conf", &cfg, &d));
	grants_render(&cfg, "r", &refs, &out);

	assert_non_null(strstr(out.s,
		"GRANT USAGE ON SCHEMA \"audit\" TO \"r\";\n"
		"GRANT SELECT (\"log_id\", \"log_part\") ON \"audit\".\"log_flags\" TO \"r\";\n"));
	assert_non_null(strstr(out.s,
		"GRANT USAGE ON SCHEMA \"x\"\"y\" TO \"r\";\n"
		"GRANT SELECT (\"w\") ON \"x\"\"y\".\"z\" TO \"r\";\n"));
	/* people has a rule of its own */
	assert_null(strstr(out.s, "(\"last_log\")"));
	/* USAGE on public once, for the rule's table */
	char *first = strstr(out.s, "GRANT USAGE ON SCHEMA \"public\"");
	assert_non_null(first);
	assert_null(strstr(first + 1, "GRANT USAGE ON SCHEMA \"public\""));
	assert_null(strstr(out.s, "could not be asked"));
	/* partitions get what their table gets: the batches name them */
	assert_non_null(strstr(out.s,
		"GRANT SELECT, DELETE ON \"api\".\"logs_2024\" TO \"r\";\n"
		"GRANT UPDATE (\"at\") ON \"api\".\"logs_2024\" TO \"r\";\n"));
	assert_non_null(strstr(out.s,
		"GRANT SELECT ON \"public\".\"people_old\" TO \"r\";\n"
		"GRANT UPDATE (\"email\", \"name\", \"done_at\") ON "
		"\"public\".\"people_old\" TO \"r\";\n"));
	sb_free(&out);
	config_free(&cfg);
	diag_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_pads_give_the_reference_hmac),
		cmocka_unit_test(test_deid_expressions_fit_the_column_type),
		cmocka_unit_test(test_identifiers_are_always_quoted_and_quotes_doubled),
		cmocka_unit_test(test_json_strings_are_escaped),
		cmocka_unit_test(test_grants_are_least_privilege),
		cmocka_unit_test(test_grants_pg_monitor_for_max_replica_lag),
		cmocka_unit_test(test_grants_read_the_references_that_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
