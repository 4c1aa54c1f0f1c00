/*
 * The "coverage" group of the config file (SPEC §9): how many rows a
 * sample reads, and what coverage may ignore, each with its reason.
 */
#include "config_parse.h"

#include <stdlib.h>
#include <string.h>

#include "coverage_detect.h"
#include "util.h"

static const char *const coverage_keys[] = {"sample_rows", "ignore"};
static const char *const ignore_keys[] = {"match", "reason"};

/* Large enough for any real sample; small enough that a typo (an extra
 * zero or three) cannot turn coverage into a full scan of every table. */
#define SAMPLE_ROWS_MAX 1000000

static void
parse_ignore_entry(struct cfg_ctx *c, const config_setting_t *e)
{
	struct config *cfg = c->cfg;
	const config_setting_t *match_s = NULL, *reason_s = NULL;
	const char *match = NULL, *reason = NULL;
	char quoted[48];

	if (!config_setting_is_group(e)) {
		cfg_error(c, e, "\"ignore\" entries must be groups such as "
			  "{ match = \"public.countries\"; reason = \"...\" }");
		return;
	}
	for (int i = 0; i < config_setting_length(e); i++) {
		const config_setting_t *s = config_setting_get_elem(e, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "match") == 0) {
			match_s = s;
			if (!cfg_string(c, s, &match))
				match_s = NULL;
		} else if (strcmp(k, "reason") == 0) {
			reason_s = s;
			if (!cfg_string(c, s, &reason))
				reason_s = NULL;
		} else {
			cfg_unknown_key(c, s, "ignore", ignore_keys,
					ARRAY_SIZE(ignore_keys), NULL, 0);
		}
	}
	if (!config_setting_get_member(e, "match"))
		cfg_error(c, e, "\"ignore\" entry has no \"match\"; it is "
			  "required (\"schema.table\" or "
			  "\"schema.table.column\")");
	if (!config_setting_get_member(e, "reason"))
		cfg_error(c, e, "\"ignore\" entry has no \"reason\"; say why "
			  "this data needs no rule");
	if (match_s && !cov_pattern_valid(match)) {
		cfg_error(c, match_s, "\"match\": \"%s\" must be "
			  "\"schema.table\" or \"schema.table.column\" (\"*\" "
			  "matches any text in a part)",
			  cfg_quote(match, quoted, sizeof(quoted)));
		match_s = NULL;
	}
	if (reason_s && (!*reason || str_has_ctl(reason) ||
			 strspn(reason, " \t") == strlen(reason))) {
		cfg_error(c, reason_s, "\"reason\" must be a one-line "
			  "explanation, not empty");
		reason_s = NULL;
	}
	if (!match_s || !reason_s)
		return;
	struct coverage_ignore *ig = xreallocarray(cfg->coverage.ignore,
						   cfg->coverage.n_ignore + 1,
						   sizeof(*ig));
	cfg->coverage.ignore = ig;
	ig += cfg->coverage.n_ignore++;
	ig->match = xstrdup(match);
	ig->reason = xstrdup(reason);
	ig->line = cfg_line(e);
}

static void
parse_ignore(struct cfg_ctx *c, const config_setting_t *s)
{
	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		cfg_error(c, s, "\"ignore\" must be a list such as ( { match = "
			  "\"public.countries\"; reason = \"reference data\" } )");
		return;
	}
	for (int i = 0; i < config_setting_length(s); i++)
		parse_ignore_entry(c, config_setting_get_elem(s, i));
}

void
cfg_parse_coverage(struct cfg_ctx *c, const config_setting_t *g)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "sample_rows") == 0)
			(void)cfg_int(c, s, 0, SAMPLE_ROWS_MAX,
				      &c->cfg->coverage.sample_rows);
		else if (strcmp(k, "ignore") == 0)
			parse_ignore(c, s);
		else
			cfg_unknown_key(c, s, "coverage", coverage_keys,
					ARRAY_SIZE(coverage_keys), NULL, 0);
	}
}
