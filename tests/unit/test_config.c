/*
 * config: every key of SPEC §3 loads into the structs, with its defaults;
 * real files are checked for permissions and inline passwords; @include
 * works from the config's directory. (Each mistake and its message is in
 * test_config_errors.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libconfig.h>

#include "config.h"
#include "sha256.h"

/* Line 1 of most test configs. */
#define DB "database: { conninfo = \"dbname=shop\"; };\n"
/* A valid rules list, for configs whose mistake is elsewhere. */
#define RULES "rules = ( { name = \"r\"; policy = \"p\"; table = \"t\"; " \
	      "age_column = \"c\"; retain = \"1d\"; } );\n"
/* A rule opened on line 2 with its required keys on lines 3-4: the key
 * under test goes on line 5, then RULE_CLOSE. */
#define RULE_OPEN DB "rules = ( {\n" \
	"name = \"r\"; policy = \"p\"; table = \"t\";\n" \
	"age_column = \"c\"; retain = \"1d\";\n"
#define RULE_CLOSE "} );\n"

static void
print_diag(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_error("    %s\n", d->entries[i].text);
}

/* The entry that starts with "test.conf:LINE: " (or "test.conf: " for
 * line 0) and contains phrase, or NULL. */
static const char *
find_entry(const struct diag *d, const char *file, int line,
	   const char *phrase)
{
	char prefix[512];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", file);
	for (size_t i = 0; i < d->n; i++)
		if (strncmp(d->entries[i].text, prefix, strlen(prefix)) == 0 &&
		    strstr(d->entries[i].text, phrase))
			return d->entries[i].text;
	return NULL;
}

static void
load_ok(const char *text, struct config *cfg)
{
	struct diag d;

	diag_init(&d);
	if (!config_load_string(text, "test.conf", cfg, &d)) {
		print_diag(&d);
		fail_msg("a valid config was refused");
	}
	assert_int_equal(d.n_errors, 0);
	diag_fini(&d);
}

/* ---- a complete, valid config --------------------------------------- */

static const char full_config[] =
	"database: {\n"
	"  conninfo = \"host=/run/postgresql dbname=shop user=retentiond\";\n"
	"  password_file = \"/etc/retentiond/db.password\";\n"
	"  schema = \"retention_x\";\n"
	"  statement_timeout = \"45s\";\n"
	"  lock_timeout = \"3s\";\n"
	"  connect_timeout = \"5s\";\n"
	"};\n"
	"schedule: { interval = \"30 min\"; window = \"22:30-05:00\"; };\n"
	"limits: {\n"
	"  batch_size = 5000; batch_target = \"250ms\"; pause = \"0ms\";\n"
	"  max_runtime = \"2h\"; max_fraction = 0.25; busy_batch_target = \"0ms\";"
	" max_replica_lag = \"30s\";\n"
	"};\n"
	"pseudonym_key_file = \"/etc/retentiond/pseudonym.key\";\n"
	"mail: {\n"
	"  url = \"smtp://mail.example.com:587\";\n"
	"  tls = \"starttls\";\n"
	"  username = \"retentiond\";\n"
	"  password_file = \"/etc/retentiond/smtp.password\";\n"
	"  ca_file = \"/etc/ssl/certs/ca.pem\";\n"
	"  from = \"Retention <retention@example.com>\";\n"
	"  to = [ \"dpo@example.com\", \"ops@example.com\" ];\n"
	"  send = \"always\";\n"
	"  timeout = \"20s\";\n"
	"};\n"
	"report: { directory = \"/var/lib/retentiond/reports\";\n"
	"          formats = [ \"json\", \"text\" ]; };\n"
	"metrics_file = \"/var/lib/node-exporter/retentiond.prom\";\n"
	"rules = (\n"
	"  {\n"						/* line 30 */
	"    name = \"api-request-logs\";\n"
	"    policy = \"API request data is kept no longer than 24 hours\";\n"
	"    table = \"public.api_requests\";\n"
	"    age_column = \"requested_at\";\n"
	"    retain = \"24 hours\";\n"
	"    action = \"delete\";\n"
	"    batch_size = 500; pause = \"1s\"; busy_batch_target = \"25ms\"; max_replica_lag = \"2s\";\n"
	"    partitions = \"detach\";\n"
	"  },\n"
	"  {\n"						/* line 40 */
	"    name = \"closed-accounts\";\n"
	"    policy = \"Account data is kept one year after closing\";\n"
	"    table = \"customers\";\n"
	"    age_column = \"closed_at\";\n"
	"    retain = \"1 year\";\n"
	"    action = \"deidentify\";\n"
	"    deidentify = { email = \"hash\"; full_name = \"redact\";\n"
	"                   phone = \"null\"; last_ip = \"truncate_ip\";\n"
	"                   contact = \"mask_email\"; born = \"year\"; };\n"
	"    marker_column = \"deidentified_at\";\n"
	"    subject = \"customer\";\n"
	"    subject_column = \"id\";\n"
	"  },\n"
	"  {\n"
	"    name = \"invoices\";\n"
	"    policy = \"Financial records are kept for 7 years\";\n"
	"    table = \"\\\"Billing Dept\\\".\\\"inv.2024\\\"\";\n"
	"    age_column = \"issued_at\";\n"
	"    retain = \"7 years\";\n"
	"    where = \"status <> 'disputed'\";\n"
	"    subject = \"customer\";\n"
	"    subject_column = \"customer_id\";\n"
	"    on_erasure = \"keep\";\n"
	"    enabled = false;\n"
	"    max_fraction = 1;\n"
	"  },\n"
	"  {\n"
	"    name = \"orders\";\n"
	"    policy = \"Orders are deleted after 10 years; erasure anonymises\";\n"
	"    table = \"shop.orders\";\n"
	"    age_column = \"placed_at\";\n"
	"    retain = \"10 y\";\n"
	"    subject = \"customer\";\n"
	"    subject_column = \"customer_id\";\n"
	"    on_erasure = \"deidentify\";\n"
	"    deidentify = { shipping_address = \"redact\"; };\n"
	"    partitions = \"rows\";\n"
	"  }\n"
	");\n";

static void
test_full_config_loads_every_key(void **state)
{
	struct config cfg;
	const struct rule *r;

	(void)state;
	load_ok(full_config, &cfg);

	assert_string_equal(cfg.path, "test.conf");
	assert_string_equal(cfg.database.conninfo,
			    "host=/run/postgresql dbname=shop user=retentiond");
	assert_string_equal(cfg.database.password_file,
			    "/etc/retentiond/db.password");
	assert_string_equal(cfg.database.schema, "retention_x");
	assert_int_equal(duration_ms(&cfg.database.statement_timeout), 45000);
	assert_int_equal(duration_ms(&cfg.database.lock_timeout), 3000);
	assert_int_equal(duration_ms(&cfg.database.connect_timeout), 5000);

	assert_int_equal(duration_ms(&cfg.schedule.interval), 30 * 60000);
	assert_true(cfg.schedule.has_window);
	assert_int_equal(cfg.schedule.window_start, 22 * 60 + 30);
	assert_int_equal(cfg.schedule.window_end, 5 * 60);

	assert_int_equal(cfg.limits.batch_size, 5000);
	assert_int_equal(duration_ms(&cfg.limits.batch_target), 250);
	assert_int_equal(duration_ms(&cfg.limits.pause), 0);
	assert_int_equal(duration_ms(&cfg.limits.busy_batch_target), 0);
	assert_int_equal(duration_ms(&cfg.limits.max_runtime), 7200000);
	assert_true(cfg.limits.max_fraction == 0.25);
	assert_int_equal(duration_ms(&cfg.limits.max_replica_lag), 30000);

	assert_string_equal(cfg.pseudonym_key_file,
			    "/etc/retentiond/pseudonym.key");
	assert_true(cfg.mail.configured);
	assert_string_equal(cfg.mail.url, "smtp://mail.example.com:587");
	assert_int_equal(cfg.mail.tls, MAIL_TLS_STARTTLS);
	assert_string_equal(cfg.mail.username, "retentiond");
	assert_string_equal(cfg.mail.password_file,
			    "/etc/retentiond/smtp.password");
	assert_string_equal(cfg.mail.ca_file, "/etc/ssl/certs/ca.pem");
	assert_string_equal(cfg.mail.from, "Retention <retention@example.com>");
	assert_int_equal(cfg.mail.n_to, 2);
	assert_string_equal(cfg.mail.to[0], "dpo@example.com");
	assert_string_equal(cfg.mail.to[1], "ops@example.com");
	assert_int_equal(cfg.mail.send, MAIL_SEND_ALWAYS);
	assert_int_equal(duration_ms(&cfg.mail.timeout), 20000);

	assert_string_equal(cfg.report.directory, "/var/lib/retentiond/reports");
	assert_int_equal(cfg.report.formats, REPORT_JSON | REPORT_TEXT);
	assert_string_equal(cfg.metrics_file,
			    "/var/lib/node-exporter/retentiond.prom");

	assert_int_equal(cfg.n_rules, 4);

	r = config_find_rule(&cfg, "api-request-logs");
	assert_ptr_equal(r, &cfg.rules[0]);
	assert_string_equal(r->schema, "public");
	assert_string_equal(r->table, "api_requests");
	assert_string_equal(r->age_column, "requested_at");
	assert_int_equal(r->retain.amount, 24);
	assert_int_equal(r->retain.unit, DUR_HOUR);
	assert_int_equal(r->action, ACTION_DELETE);
	assert_int_equal(r->on_erasure, ACTION_DELETE);
	assert_true(r->enabled);
	assert_int_equal(r->partitions, PARTITIONS_DETACH);
	/* overrides, and the rest copied from the global limits */
	assert_int_equal(r->limits.batch_size, 500);
	assert_int_equal(duration_ms(&r->limits.pause), 1000);
	assert_int_equal(duration_ms(&r->limits.busy_batch_target), 25);
	assert_int_equal(duration_ms(&r->limits.max_replica_lag), 2000);
	assert_int_equal(duration_ms(&r->limits.batch_target), 250);
	assert_int_equal(duration_ms(&r->limits.max_runtime), 7200000);
	assert_true(r->limits.max_fraction == 0.25);
	assert_string_equal(r->file, "test.conf");
	assert_int_equal(r->line, 30);
	assert_int_equal(r->lines.name, 31);
	assert_int_equal(r->lines.table, 33);
	assert_int_equal(r->lines.retain, 35);
	assert_int_equal(r->lines.partitions, 38);
	assert_null(r->where);
	assert_null(r->subject);
	assert_int_equal(r->n_deidentify, 0);

	r = &cfg.rules[1];
	assert_string_equal(r->name, "closed-accounts");
	assert_string_equal(r->schema, "public");
	assert_string_equal(r->table, "customers");
	assert_int_equal(r->retain.unit, DUR_YEAR);
	assert_int_equal(r->action, ACTION_DEIDENTIFY);
	assert_int_equal(r->on_erasure, ACTION_DEIDENTIFY);
	assert_string_equal(r->marker_column, "deidentified_at");
	assert_string_equal(r->subject, "customer");
	assert_string_equal(r->subject_column, "id");
	assert_int_equal(r->line, 40);
	assert_int_equal(r->lines.deidentify, 47);
	assert_int_equal(r->n_deidentify, 6);
	static const struct {
		const char *column;
		enum deid_method method;
		int line;
	} methods[] = {
		{"email", METHOD_HASH, 47},
		{"full_name", METHOD_REDACT, 47},
		{"phone", METHOD_NULL, 48},
		{"last_ip", METHOD_TRUNCATE_IP, 48},
		{"contact", METHOD_MASK_EMAIL, 49},
		{"born", METHOD_YEAR, 49},
	};
	for (size_t i = 0; i < 6; i++) {
		assert_string_equal(r->deidentify[i].column, methods[i].column);
		assert_int_equal(r->deidentify[i].method, methods[i].method);
		assert_int_equal(r->deidentify[i].line, methods[i].line);
	}

	r = config_find_rule(&cfg, "invoices");
	assert_non_null(r);
	assert_string_equal(r->schema, "Billing Dept");
	assert_string_equal(r->table, "inv.2024");
	assert_string_equal(r->where, "status <> 'disputed'");
	assert_int_equal(r->action, ACTION_DELETE);
	assert_int_equal(r->on_erasure, ACTION_KEEP);
	assert_false(r->enabled);
	assert_true(r->limits.max_fraction == 1.0);
	assert_int_equal(r->partitions, PARTITIONS_DROP);

	r = config_find_rule(&cfg, "orders");
	assert_non_null(r);
	assert_string_equal(r->schema, "shop");
	assert_int_equal(r->retain.amount, 10);
	assert_int_equal(r->action, ACTION_DELETE);
	assert_int_equal(r->on_erasure, ACTION_DEIDENTIFY);
	assert_int_equal(r->n_deidentify, 1);
	assert_int_equal(r->deidentify[0].method, METHOD_REDACT);
	assert_int_equal(r->partitions, PARTITIONS_ROWS);

	assert_null(config_find_rule(&cfg, "nope"));
	assert_int_equal(cfg.n_files, 1);
	assert_string_equal(cfg.files[0], "test.conf");

	/* the digest is of the text parsed */
	unsigned char digest[32];
	char hex[65];
	sha256(full_config, strlen(full_config), digest);
	sha256_hex(digest, hex);
	assert_string_equal(cfg.sha256, hex);

	config_free(&cfg);
	assert_null(cfg.rules);
	assert_int_equal(cfg.n_rules, 0);
}

/* Read through config_load_string: a checkout's file modes (0664 under
 * umask 002) are not what this test is about. */
static void
test_spec_example_loads_as_written(void **state)
{
	const char *dir = getenv("UNIT_CONFIGS");
	char path[1024], text[16384];
	struct config cfg;
	size_t n;
	FILE *f;

	(void)state;
	if (!dir)
		fail_msg("UNIT_CONFIGS is not set (make check sets it)");
	snprintf(path, sizeof(path), "%s/spec-example.conf", dir);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';

	load_ok(text, &cfg);
	assert_int_equal(cfg.n_rules, 3);
	const struct rule *r = config_find_rule(&cfg, "closed-accounts");
	assert_non_null(r);
	assert_int_equal(r->action, ACTION_DEIDENTIFY);
	assert_int_equal(r->n_deidentify, 4);
	r = config_find_rule(&cfg, "invoices");
	assert_non_null(r);
	assert_string_equal(r->schema, "billing");
	assert_int_equal(r->on_erasure, ACTION_KEEP);
	assert_int_equal(cfg.mail.tls, MAIL_TLS_STARTTLS);
	assert_int_equal(cfg.report.formats, REPORT_HTML | REPORT_CSV);
	config_free(&cfg);
}

static void
test_omitted_keys_take_the_documented_defaults(void **state)
{
	struct config cfg;
	const struct rule *r;

	(void)state;
	load_ok(DB RULES, &cfg);
	assert_string_equal(cfg.database.schema, "retention");
	assert_null(cfg.database.password_file);
	assert_int_equal(duration_ms(&cfg.database.statement_timeout), 30000);
	assert_int_equal(duration_ms(&cfg.database.lock_timeout), 2000);
	assert_int_equal(duration_ms(&cfg.database.connect_timeout), 10000);
	assert_int_equal(duration_ms(&cfg.schedule.interval), 3600000);
	assert_false(cfg.schedule.has_window);
	assert_int_equal(cfg.limits.batch_size, 10000);
	assert_int_equal(duration_ms(&cfg.limits.batch_target), 200);
	assert_int_equal(duration_ms(&cfg.limits.pause), 10);
	assert_int_equal(duration_ms(&cfg.limits.busy_batch_target), 3);
	assert_int_equal(duration_ms(&cfg.limits.max_runtime), 3600000);
	assert_true(cfg.limits.max_fraction == 0.5);
	/* unset: off */
	assert_int_equal(duration_ms(&cfg.limits.max_replica_lag), 0);
	assert_false(cfg.mail.configured);
	assert_null(cfg.pseudonym_key_file);
	assert_null(cfg.metrics_file);
	assert_null(cfg.report.directory);
	assert_int_equal(cfg.report.formats, 0);

	r = &cfg.rules[0];
	assert_int_equal(r->action, ACTION_DELETE);
	assert_int_equal(r->on_erasure, ACTION_DELETE);
	assert_true(r->enabled);
	assert_int_equal(r->partitions, PARTITIONS_DROP);
	assert_int_equal(r->limits.batch_size, 10000);
	assert_true(r->limits.max_fraction == 0.5);
	assert_null(r->where);
	assert_null(r->marker_column);
	assert_int_equal(r->lines.where, 0);
	config_free(&cfg);
}

static void
test_report_and_mail_defaults_when_their_groups_exist(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(DB "report: { directory = \"/r\"; };\n"
		"mail: { url = \"smtps://mail.example.com\"; from = \"a@b\";"
		" to = [\"c@d\"]; };\n" RULES, &cfg);
	assert_int_equal(cfg.report.formats, REPORT_HTML | REPORT_CSV);
	/* smtps:// means implicit TLS; nobody should have to say it twice */
	assert_int_equal(cfg.mail.tls, MAIL_TLS_IMPLICIT);
	assert_int_equal(cfg.mail.send, MAIL_SEND_CHANGES);
	assert_int_equal(duration_ms(&cfg.mail.timeout), 30000);
	assert_null(cfg.mail.ca_file);
	config_free(&cfg);

	load_ok(DB "mail: { url = \"smtp://mail.example.com\"; from = \"a@b\";"
		" to = (\"c@d\"); };\n" RULES, &cfg);
	assert_int_equal(cfg.mail.tls, MAIL_TLS_STARTTLS);
	config_free(&cfg);
}

static void
test_tls_none_is_allowed_to_loopback_hosts(void **state)
{
	static const char *const urls[] = {
		"smtp://localhost", "smtp://LOCALHOST:25", "smtp://127.0.0.1:2525",
		"smtp://127.10.0.5", "smtp://[::1]:25", "smtp://user@localhost/",
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct config cfg;

		snprintf(text, sizeof(text), DB "mail: { url = \"%s\"; "
			 "tls = \"none\"; from = \"a@b\"; to = [\"c@d\"]; };\n"
			 RULES, urls[i]);
		load_ok(text, &cfg);
		assert_int_equal(cfg.mail.tls, MAIL_TLS_NONE);
		config_free(&cfg);
	}
}

/* Names are quoted with PQescapeIdentifier later, so any name PostgreSQL
 * can hold must get through unchanged. */
static void
test_hostile_identifiers_are_kept_verbatim(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(DB "rules = ( { name = \"r\"; policy = \"p\";\n"
		"table = \"\\\"we\\\"\\\"ird\\\".\\\"t; DROP TABLE x\\\"\";\n"
		"age_column = \"a\\\"; DROP TABLE x; --\"; retain = \"1d\";\n"
		"action = \"deidentify\"; marker_column = \"Done At\";\n"
		"deidentify = ( { column = \"E-Mail Address\"; method = \"hash\"; },\n"
		"               { column = \"x.y\"; method = \"null\"; } ); } );\n",
		&cfg);
	const struct rule *r = &cfg.rules[0];
	assert_string_equal(r->schema, "we\"ird");
	assert_string_equal(r->table, "t; DROP TABLE x");
	assert_string_equal(r->age_column, "a\"; DROP TABLE x; --");
	assert_string_equal(r->marker_column, "Done At");
	assert_int_equal(r->n_deidentify, 2);
	assert_string_equal(r->deidentify[0].column, "E-Mail Address");
	assert_int_equal(r->deidentify[0].method, METHOD_HASH);
	assert_int_equal(r->deidentify[0].line, 6);
	assert_string_equal(r->deidentify[1].column, "x.y");
	config_free(&cfg);
}

static void
test_warnings_do_not_fail_the_load(void **state)
{
	struct config cfg;
	struct diag d;

	(void)state;
	diag_init(&d);
	assert_true(config_load_string(RULE_OPEN "marker_column = \"m\";\n"
				       RULE_CLOSE, "test.conf", &cfg, &d));
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.entries[0].level, DIAG_WARNING);
	assert_non_null(find_entry(&d, "test.conf", 5, "has no effect"));
	config_free(&cfg);
	diag_fini(&d);
}

/* ---- table names -------------------------------------------------------- */

static void
test_split_table_names(void **state)
{
	static const struct {
		const char *in, *schema, *table;
	} good[] = {
		{"public.api_requests", "public", "api_requests"},
		{"api_requests", "public", "api_requests"},
		{"Billing.Invoices", "Billing", "Invoices"},
		{"\"My Schema\".\"odd.name\"", "My Schema", "odd.name"},
		{"\"a\"\"b\".t", "a\"b", "t"},
		{"s.\"x\"", "s", "x"},
		{"\"only.table\"", "public", "only.table"},
		{"s\xc3\xa9.t", "s\xc3\xa9", "t"},
	};
	static const char *const bad[] = {
		"", ".", "a.", ".b", "a.b.c", "\"\".t", "\"unterminated",
		"a b.c", "s.\"t\"x", "a\"b.c", "s.t\n",
		"s.t234567890123456789012345678901234567890123456789012345678901234",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *schema = NULL, *table = NULL;

		if (!config_split_table(good[i].in, &schema, &table))
			fail_msg("\"%s\" refused", good[i].in);
		assert_string_equal(schema, good[i].schema);
		assert_string_equal(table, good[i].table);
		free(schema);
		free(table);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *schema = (char *)1, *table = (char *)1;

		if (config_split_table(bad[i], &schema, &table))
			fail_msg("\"%s\" accepted", bad[i]);
		assert_null(schema);
		assert_null(table);
	}
}

static void
test_names_of_enum_values(void **state)
{
	(void)state;
	assert_string_equal(rule_action_name(ACTION_DELETE), "delete");
	assert_string_equal(rule_action_name(ACTION_DEIDENTIFY), "deidentify");
	assert_string_equal(rule_action_name(ACTION_KEEP), "keep");
	assert_string_equal(deid_method_name(METHOD_NULL), "null");
	assert_string_equal(deid_method_name(METHOD_REDACT), "redact");
	assert_string_equal(deid_method_name(METHOD_HASH), "hash");
	assert_string_equal(deid_method_name(METHOD_MASK_EMAIL), "mask_email");
	assert_string_equal(deid_method_name(METHOD_TRUNCATE_IP), "truncate_ip");
	assert_string_equal(deid_method_name(METHOD_YEAR), "year");
	assert_string_equal(partitions_mode_name(PARTITIONS_DROP), "drop");
	assert_string_equal(partitions_mode_name(PARTITIONS_DETACH), "detach");
	assert_string_equal(partitions_mode_name(PARTITIONS_ROWS), "rows");
}

/* ---- real files --------------------------------------------------------- */

struct tmp {
	char dir[64];
	char path[128];
};

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int
tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	strcpy(t->dir, "/tmp/retentiond-test-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/retentiond.conf", t->dir);
	*state = t;
	return 0;
}

static int
tmp_teardown(void **state)
{
	struct tmp *t = *state;
	static const char *const names[] = {
		"retentiond.conf", "rules.conf", "db.conf",
	};
	char path[160];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", t->dir, names[i]);
		unlink(path);
	}
	rmdir(t->dir);
	free(t);
	return 0;
}

static void
expect_file_error(const char *path, int line, const char *phrase)
{
	struct config cfg;
	struct diag d;

	diag_init(&d);
	if (config_load(path, &cfg, &d) || !find_entry(&d, path, line, phrase)) {
		print_diag(&d);
		fail_msg("expected an error at %s:%d with \"%s\"", path, line,
			 phrase);
	}
	diag_fini(&d);
}

static void
test_group_writable_file_is_refused(void **state)
{
	struct tmp *t = *state;
	char phrase[256];

	write_file(t->path, DB RULES, 0620);
	snprintf(phrase, sizeof(phrase), "is writable by group or others; "
		 "refusing to trust it (chmod go-w %s)", t->path);
	expect_file_error(t->path, 0, phrase);

	write_file(t->path, DB RULES, 0602);
	expect_file_error(t->path, 0, "is writable by group or others");
}

static void
test_world_readable_password_in_conninfo_is_refused(void **state)
{
	struct tmp *t = *state;
	static const char *const texts[] = {
		"database: { conninfo = \"dbname=x password=hunter2\"; };\n" RULES,
		"database: { conninfo = \"postgresql://u:hunter2@db/x\"; };\n" RULES,
	};

	for (size_t i = 0; i < 2; i++) {
		struct config cfg;
		struct diag d;

		write_file(t->path, texts[i], 0644);
		diag_init(&d);
		assert_false(config_load(t->path, &cfg, &d));
		const char *hit = find_entry(&d, t->path, 1, "holds a password");
		if (!hit)
			print_diag(&d);
		assert_non_null(hit);
		assert_non_null(strstr(hit, "password_file"));
		assert_non_null(strstr(hit, "chmod o-r"));
		assert_null(strstr(hit, "hunter2"));
		diag_fini(&d);
	}
}

static void
test_private_file_with_password_loads_and_hashes_its_bytes(void **state)
{
	struct tmp *t = *state;
	static const char text[] =
		"database: { conninfo = \"dbname=x password=hunter2\"; };\n" RULES;
	unsigned char digest[32];
	char hex[65];
	struct config cfg;
	struct diag d;

	write_file(t->path, text, 0600);
	diag_init(&d);
	if (!config_load(t->path, &cfg, &d))
		print_diag(&d);
	assert_int_equal(d.n_errors, 0);
	sha256(text, strlen(text), digest);
	sha256_hex(digest, hex);
	assert_string_equal(cfg.sha256, hex);
	assert_string_equal(cfg.path, t->path);
	assert_int_equal(cfg.n_files, 1);
	assert_string_equal(cfg.files[0], t->path);
	assert_string_equal(cfg.rules[0].file, t->path);
	config_free(&cfg);

	/* readable by the group is how a service account reads it */
	write_file(t->path, text, 0640);
	assert_true(config_load(t->path, &cfg, &d));
	config_free(&cfg);
	/* readable by all is fine when it holds no secret */
	write_file(t->path, DB RULES, 0644);
	assert_true(config_load(t->path, &cfg, &d));
	config_free(&cfg);
	diag_fini(&d);
}

static void
test_missing_file_is_named(void **state)
{
	(void)state;
	expect_file_error("/nonexistent/retentiond.conf", 0,
			  "cannot open: No such file or directory");
}

static void
test_include_is_relative_to_the_config_directory(void **state)
{
	struct tmp *t = *state;
	char rules_path[160], db_path[160];
	struct config cfg;
	struct diag d;

	snprintf(rules_path, sizeof(rules_path), "%s/rules.conf", t->dir);
	snprintf(db_path, sizeof(db_path), "%s/db.conf", t->dir);
	write_file(db_path, DB, 0600);
	write_file(rules_path, "\n" RULES, 0600);
	write_file(t->path, "@include \"db.conf\"\nschedule: { interval = "
		   "\"2h\"; };\n@include \"rules.conf\"\n", 0600);

	/* the working directory is not the config's: paths must not
	 * depend on it */
	diag_init(&d);
	if (!config_load(t->path, &cfg, &d))
		print_diag(&d);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(cfg.n_files, 3);
	assert_string_equal(cfg.files[0], t->path);
	assert_string_equal(cfg.files[1], db_path);
	assert_string_equal(cfg.files[2], rules_path);
	assert_string_equal(cfg.database.conninfo, "dbname=shop");
	assert_int_equal(cfg.n_rules, 1);
	assert_string_equal(cfg.rules[0].file, rules_path);
	assert_int_equal(cfg.rules[0].line, 2);
	config_free(&cfg);
	diag_fini(&d);

	/* a mistake in an included file is located in that file */
	write_file(rules_path, "\nrules = ( { name = \"r\"; policy = \"p\";\n"
		   " table = \"t\"; age_column = \"c\";\n retain = \"1 eon\"; } );\n",
		   0600);
	expect_file_error(rules_path, 4, "rule \"r\": \"retain\": unknown unit "
			  "\"eon\"");

	/* and so is a syntax error */
	write_file(rules_path, "\n\nrules = ( { name = ; } );\n", 0600);
	expect_file_error(rules_path, 3, "syntax error");

	/* an included file others can write is as bad as the main one */
	write_file(rules_path, RULES, 0666);
	expect_file_error(rules_path, 0, "is writable by group or others");

	/* a password in an included, world-readable file is found */
	write_file(rules_path, RULES, 0600);
	write_file(db_path, "database: { conninfo = \"password=x\"; };\n", 0644);
	expect_file_error(db_path, 1, "holds a password");
}

static void
test_absolute_include_gets_a_clear_message(void **state)
{
	struct tmp *t = *state;
	char text[256];

	snprintf(text, sizeof(text), DB "@include \"%s/rules.conf\"\n", t->dir);
	write_file(t->path, text, 0600);
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
	expect_file_error(t->path, 2, "write the path relative to it");
#else
	char rules_path[160];
	struct config cfg;
	struct diag d;

	snprintf(rules_path, sizeof(rules_path), "%s/rules.conf", t->dir);
	write_file(rules_path, RULES, 0600);
	diag_init(&d);
	assert_true(config_load(t->path, &cfg, &d));
	config_free(&cfg);
	diag_fini(&d);
#endif
}

/* state_directory: systemd's $STATE_DIRECTORY, else /var/lib/retentiond,
 * unless the file says; a relative path or control characters are refused
 * at their line. */
static void
test_state_directory_default_environment_and_errors(void **state)
{
	static const struct {
		const char *env;	/* NULL: unset */
		const char *key;	/* NULL: not in the file */
		const char *want;	/* NULL: error at line 2 with WHY */
		const char *why;
	} cases[] = {
		{ NULL, NULL, "/var/lib/retentiond", NULL },
		{ "/var/lib/retentiond/shop", NULL, "/var/lib/retentiond/shop", NULL },
		/* several StateDirectory= entries, or not a path: not ours */
		{ "/var/lib/a:/var/lib/b", NULL, "/var/lib/retentiond", NULL },
		{ "relative", NULL, "/var/lib/retentiond", NULL },
		{ "/var/lib/retentiond/shop", "\"/srv/state\"", "/srv/state", NULL },
		{ NULL, "\"state\"", NULL, "must be an absolute path" },
		{ NULL, "\"\"", NULL, "must not be empty" },
		{ NULL, "\"/srv/a\\nb\"", NULL, "control characters" },
		{ NULL, "42", NULL, "state_directory" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct diag d;
		char text[512];

		if (cases[i].env)
			setenv("STATE_DIRECTORY", cases[i].env, 1);
		else
			unsetenv("STATE_DIRECTORY");
		snprintf(text, sizeof(text), DB "%s%s%s\n" RULES,
			 cases[i].key ? "state_directory = " : "",
			 cases[i].key ? cases[i].key : "",
			 cases[i].key ? ";" : "");
		diag_init(&d);
		bool ok = config_load_string(text, "test.conf", &cfg, &d);
		if (cases[i].want) {
			if (!ok)
				print_diag(&d);
			assert_true(ok);
			assert_string_equal(cfg.state_directory, cases[i].want);
			config_free(&cfg);
		} else {
			assert_false(ok);
			if (!find_entry(&d, "test.conf", 2, cases[i].why)) {
				print_error("case %zu\n", i);
				print_diag(&d);
				fail();
			}
		}
		diag_fini(&d);
	}
	unsetenv("STATE_DIRECTORY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_directory_default_environment_and_errors),
		cmocka_unit_test(test_full_config_loads_every_key),
		cmocka_unit_test(test_spec_example_loads_as_written),
		cmocka_unit_test(test_omitted_keys_take_the_documented_defaults),
		cmocka_unit_test(test_report_and_mail_defaults_when_their_groups_exist),
		cmocka_unit_test(test_tls_none_is_allowed_to_loopback_hosts),
		cmocka_unit_test(test_hostile_identifiers_are_kept_verbatim),
		cmocka_unit_test(test_warnings_do_not_fail_the_load),
		cmocka_unit_test(test_split_table_names),
		cmocka_unit_test(test_names_of_enum_values),
		cmocka_unit_test_setup_teardown(test_group_writable_file_is_refused,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_world_readable_password_in_conninfo_is_refused,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_private_file_with_password_loads_and_hashes_its_bytes,
						tmp_setup, tmp_teardown),
		cmocka_unit_test(test_missing_file_is_named),
		cmocka_unit_test_setup_teardown(test_include_is_relative_to_the_config_directory,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_absolute_include_gets_a_clear_message,
						tmp_setup, tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
