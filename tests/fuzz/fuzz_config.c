/*
 * Fuzz config_load_string (src/config*.c) with arbitrary libconfig text,
 * and config_split_table with the same bytes.
 *
 * The file is named in a directory that does not exist, so a relative
 * @include in the input reads nothing from the machine; an absolute one
 * (refused by libconfig < 1.7 builds, read by later ones: "/dev/zero"
 * would never end) is skipped. Include loops and missing files are tested
 * in tests/unit/test_hostile.c.
 *
 * Invariants: a config that loads has every required field set and in
 * range; one that does not has at least one error, each message a single
 * line that names the file. A table name that splits re-quotes to itself.
 */
#include "fuzz.h"

#include "config.h"
#include "diag.h"

#define FUZZ_NAME "/nonexistent-retentiond-fuzz/fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
short_name(const char *s)
{
	return s && *s && strlen(s) <= 63;
}

static void
check_limits(const struct limits *l)
{
	FUZZ_CHECK(l->batch_size >= 1 && l->batch_size <= 10000000, "%lld",
		   (long long)l->batch_size);
	FUZZ_CHECK(!duration_is_calendar(&l->batch_target) &&
		   l->batch_target.amount > 0, "batch_target");
	FUZZ_CHECK(!duration_is_calendar(&l->pause), "pause");
	FUZZ_CHECK(!duration_is_calendar(&l->max_runtime) &&
		   l->max_runtime.amount > 0, "max_runtime");
	FUZZ_CHECK(l->max_fraction > 0.0 && l->max_fraction <= 1.0, "%g",
		   l->max_fraction);
}

static void
check_config(const struct config *cfg)
{
	FUZZ_CHECK(cfg->database.conninfo && *cfg->database.conninfo,
		   "no conninfo");
	FUZZ_CHECK(short_name(cfg->database.schema), "schema");
	FUZZ_CHECK(cfg->n_rules > 0 && cfg->rules, "no rules");
	FUZZ_CHECK(cfg->n_files >= 1 && strcmp(cfg->files[0], FUZZ_NAME) == 0,
		   "files[0]");
	FUZZ_CHECK(!cfg->schedule.has_window ||
		   (cfg->schedule.window_start >= 0 &&
		    cfg->schedule.window_start < 24 * 60 &&
		    cfg->schedule.window_end >= 0 &&
		    cfg->schedule.window_end < 24 * 60), "window");
	FUZZ_CHECK(!cfg->mail.configured || (cfg->mail.url && cfg->mail.from &&
					     cfg->mail.n_to > 0), "mail");
	check_limits(&cfg->limits);
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];

		FUZZ_CHECK(short_name(r->name) && r->policy && *r->policy &&
			   short_name(r->schema) && short_name(r->table) &&
			   short_name(r->age_column), "rule %zu", i);
		FUZZ_CHECK(r->retain.amount > 0, "rule %s: retain", r->name);
		FUZZ_CHECK(r->action == ACTION_DELETE ||
			   r->action == ACTION_DEIDENTIFY, "rule %s: action",
			   r->name);
		FUZZ_CHECK((r->subject == NULL) == (r->subject_column == NULL),
			   "rule %s: subject without its column", r->name);
		FUZZ_CHECK((r->action != ACTION_DEIDENTIFY &&
			    r->on_erasure != ACTION_DEIDENTIFY) ||
			   r->n_deidentify > 0, "rule %s: deidentify nothing",
			   r->name);
		for (size_t j = 0; j < r->n_deidentify; j++) {
			FUZZ_CHECK(short_name(r->deidentify[j].column),
				   "rule %s: column", r->name);
			if (r->deidentify[j].method == METHOD_HASH)
				FUZZ_CHECK(r->marker_column, "rule %s: hash "
					   "without a marker", r->name);
		}
		FUZZ_CHECK(config_find_rule(cfg, r->name) == r,
			   "rule name %s twice", r->name);
		check_limits(&r->limits);
	}
}

/* "schema"."table" with quotes doubled, as a user would write it. */
static char *
requote(const char *schema, const char *table)
{
	size_t n = 2 * (strlen(schema) + strlen(table)) + 6;
	char *out = malloc(n), *o = out;
	const char *parts[2] = {schema, table};

	if (!out)
		abort();
	for (int i = 0; i < 2; i++) {
		if (i)
			*o++ = '.';
		*o++ = '"';
		for (const char *p = parts[i]; *p; p++) {
			if (*p == '"')
				*o++ = '"';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o = '\0';
	return out;
}

static void
fuzz_split_table(const char *text)
{
	char *schema, *table, *s2, *t2;

	if (!config_split_table(text, &schema, &table)) {
		FUZZ_CHECK(!schema && !table, "failed split left a part");
		return;
	}
	FUZZ_CHECK(short_name(schema) && short_name(table), "part length");
	char *q = requote(schema, table);
	FUZZ_CHECK(config_split_table(q, &s2, &t2), "%s does not split", q);
	FUZZ_CHECK(strcmp(schema, s2) == 0 && strcmp(table, t2) == 0,
		   "%s splits differently", q);
	free(q);
	free(s2);
	free(t2);
	free(schema);
	free(table);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct config cfg;
	struct diag diag;

	for (const char *p = text; (p = strstr(p, "@include")) != NULL; p++) {
		const char *q = p + 8 + strspn(p + 8, " \t");
		if (q[0] == '"' && q[1] == '/') {
			free(text);
			return 0;
		}
	}
	diag_init(&diag);
	if (config_load_string(text, FUZZ_NAME, &cfg, &diag)) {
		check_config(&cfg);
		config_free(&cfg);
	} else {
		FUZZ_CHECK(diag.n_errors > 0, "refused without an error");
		/* config_load_string zeroes a config it refuses */
		FUZZ_CHECK(cfg.n_rules == 0 && !cfg.rules && !cfg.files,
			   "refused config not freed");
	}
	for (size_t i = 0; i < diag.n; i++) {
		const char *t = diag.entries[i].text;

		FUZZ_CHECK(strncmp(t, FUZZ_NAME, strlen(FUZZ_NAME)) == 0,
			   "message without the file: %s", t);
		FUZZ_CHECK(!strpbrk(t, "\r\n"), "multi-line message: %s", t);
	}
	diag_fini(&diag);
	if (size <= 300)
		fuzz_split_table(text);
	free(text);
	return 0;
}
