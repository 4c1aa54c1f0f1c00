/*
 * config: the "subjects" and "requests" groups (SPEC §8). A valid group is
 * loaded into cfg->subjects and cfg->requests; every mistake is reported as
 * "FILE:LINE: message"; without "subjects" any rule subject is accepted.
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

#define DB "database: { conninfo = \"dbname=shop\"; };\n"
/* A rule whose subject is "customer", on line 2 (subject on line 4). */
#define RULE_CUSTOMER "rules = ( { name = \"orders\"; policy = \"p\";\n" \
	"table = \"shop.orders\"; age_column = \"c\"; retain = \"1d\";\n" \
	"subject = \"customer\"; subject_column = \"customer_id\"; } );\n"

static void
print_diag(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_error("    %s\n", d->entries[i].text);
}

static void
test_subjects_and_requests_are_loaded(void **state)
{
	(void)state;
	const char *text = DB RULE_CUSTOMER
		"subjects = {\n"
		"  customer = { table = \"shop.customers\"; key = \"id\"; };\n"
		"  employee = { table = \"staff\"; key = \"Emp No\"; };\n"
		"};\n"
		"requests: { directory = \"/srv/requests\"; };\n";
	struct config cfg;
	struct diag d;

	diag_init(&d);
	bool ok = config_load_string(text, "test.conf", &cfg, &d);
	if (!ok)
		print_diag(&d);
	assert_true(ok);
	assert_true(cfg.has_subjects);
	assert_int_equal(cfg.n_subjects, 2);
	const struct subject *c = config_find_subject(&cfg, "customer");
	assert_non_null(c);
	assert_string_equal(c->schema, "shop");
	assert_string_equal(c->table, "customers");
	assert_string_equal(c->key, "id");
	assert_int_equal(c->line, 6);
	const struct subject *e = config_find_subject(&cfg, "employee");
	assert_non_null(e);
	assert_string_equal(e->schema, "public");
	assert_string_equal(e->key, "Emp No");
	assert_null(config_find_subject(&cfg, "supplier"));
	assert_true(config_subject_allowed(&cfg, "customer"));
	assert_false(config_subject_allowed(&cfg, "supplier"));
	assert_string_equal(cfg.requests.directory, "/srv/requests");
	config_free(&cfg);
	diag_fini(&d);
}

static void
test_without_subjects_v1_behaviour_stands(void **state)
{
	(void)state;
	struct config cfg;
	struct diag d;

	diag_init(&d);
	assert_true(config_load_string(DB RULE_CUSTOMER, "test.conf", &cfg, &d));
	assert_false(cfg.has_subjects);
	assert_int_equal(cfg.n_subjects, 0);
	/* any kind is accepted, as hold and erase accepted it in v1 */
	assert_true(config_subject_allowed(&cfg, "customer"));
	assert_true(config_subject_allowed(&cfg, "anything"));
	assert_string_equal(cfg.requests.directory,
			    "/var/lib/retentiond/requests");
	config_free(&cfg);
	diag_fini(&d);
}

static const struct error_case {
	const char *promise;
	const char *text;
	int line;
	const char *phrase;
} error_cases[] = {
	{"a rule's subject must be named by subjects",
	 DB RULE_CUSTOMER "subjects = { employee = { table = \"staff\"; "
	 "key = \"id\"; }; };\n", 4,
	 "rule \"orders\": \"subject\" is \"customer\", which the \"subjects\" "
	 "group does not name (it names: employee)"},
	{"a subject needs a table",
	 DB RULE_CUSTOMER "subjects = {\n customer = { key = \"id\"; };\n};\n",
	 6, "subject \"customer\": missing required key \"table\""},
	{"a subject needs a key",
	 DB RULE_CUSTOMER "subjects = {\n customer = { table = \"c\"; };\n};\n",
	 6, "subject \"customer\": missing required key \"key\""},
	{"a subject's table must parse",
	 DB RULE_CUSTOMER "subjects = {\n customer = { table = \"a.b.c\";\n"
	 " key = \"id\"; };\n};\n", 6,
	 "subject \"customer\": \"table\": \"a.b.c\" is not"},
	{"an unknown key in a subject",
	 DB RULE_CUSTOMER "subjects = { customer = { table = \"c\"; key = \"id\";\n"
	 " keys = \"x\"; }; };\n", 6, "unknown key \"keys\" in "
	 "\"subjects.customer\""},
	{"a subject must be a group",
	 DB RULE_CUSTOMER "subjects = {\n customer = \"shop.customers\";\n};\n",
	 6, "subject \"customer\" must be a group"},
	{"an empty subjects group",
	 DB RULE_CUSTOMER "subjects = {\n};\n", 5, "\"subjects\" is empty"},
	{"a key longer than PostgreSQL keeps",
	 DB RULE_CUSTOMER "subjects = { customer = { table = \"c\";\n key = "
	 "\"a234567890123456789012345678901234567890123456789012345678901234\";"
	 " }; };\n", 6, "longer than 63 bytes"},
	{"requests.directory must be absolute",
	 DB RULE_CUSTOMER "requests: {\n directory = \"requests\"; };\n", 6,
	 "\"directory\" must be an absolute path"},
	{"an unknown key in requests",
	 DB RULE_CUSTOMER "requests: {\n dir = \"/x\"; };\n", 6,
	 "unknown key \"dir\" in \"requests\""},
	{"requests.directory must be a string",
	 DB RULE_CUSTOMER "requests: {\n directory = 5; };\n", 6,
	 "\"directory\" must be a string"},
};

static void
test_each_mistake_is_reported_at_its_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]);
	     i++) {
		const struct error_case *ec = &error_cases[i];
		struct config cfg;
		struct diag d;
		char prefix[64];
		const char *hit = NULL;

		diag_init(&d);
		bool ok = config_load_string(ec->text, "test.conf", &cfg, &d);
		snprintf(prefix, sizeof(prefix), "test.conf:%d: ", ec->line);
		for (size_t j = 0; j < d.n; j++)
			if (strncmp(d.entries[j].text, prefix,
				    strlen(prefix)) == 0 &&
			    strstr(d.entries[j].text, ec->phrase))
				hit = d.entries[j].text;
		if (ok || d.n_errors != 1 || !hit) {
			print_error("case \"%s\": loaded=%d, %zu error(s):\n",
				    ec->promise, ok, d.n_errors);
			print_diag(&d);
			fail_msg("expected exactly one error, at test.conf:%d, "
				 "with \"%s\"", ec->line, ec->phrase);
		}
		diag_fini(&d);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subjects_and_requests_are_loaded),
		cmocka_unit_test(test_without_subjects_v1_behaviour_stands),
		cmocka_unit_test(test_each_mistake_is_reported_at_its_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
