/*
 * The "subjects" and "requests" groups of the config file (SPEC §8): which
 * table holds one row per subject of each kind, and where access exports
 * are written.
 */
#include "config_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const subject_keys[] = {"table", "key"};
static const char *const requests_keys[] = {"directory"};

static void
parse_subject(struct cfg_ctx *c, const config_setting_t *g, struct subject *sj)
{
	const config_setting_t *table = NULL, *key = NULL;
	char quoted[48];
	const char *v;

	sj->file = cfg_file(c, g);
	sj->line = cfg_line(g);
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "table") == 0) {
			table = s;
			if (cfg_string(c, s, &v) &&
			    !config_split_table(v, &sj->schema, &sj->table))
				cfg_error(c, s, "subject \"%s\": \"table\": \"%s\" "
					  "is not \"schema.table\" or \"table\"",
					  sj->name, cfg_quote(v, quoted,
							      sizeof(quoted)));
		} else if (strcmp(k, "key") == 0) {
			key = s;
			(void)cfg_ident(c, s, &sj->key);
		} else {
			char group[96];
			snprintf(group, sizeof(group), "subjects.%s", sj->name);
			cfg_unknown_key(c, s, group, subject_keys,
					ARRAY_SIZE(subject_keys), NULL, 0);
		}
	}
	if (!table)
		cfg_error(c, g, "subject \"%s\": missing required key \"table\", "
			  "the table in which one row is one subject", sj->name);
	if (!key)
		cfg_error(c, g, "subject \"%s\": missing required key \"key\", "
			  "the column whose value is the ID in SUBJECT:ID",
			  sj->name);
}

void
cfg_parse_subjects(struct cfg_ctx *c, const config_setting_t *g)
{
	struct config *cfg = c->cfg;
	int n = config_setting_length(g);

	cfg->has_subjects = true;
	if (n == 0) {
		cfg_error(c, g, "\"subjects\" is empty: name at least one kind "
			  "of subject, or leave the group out");
		return;
	}
	cfg->subjects = xcalloc((size_t)n, sizeof(*cfg->subjects));
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		struct subject *sj = &cfg->subjects[cfg->n_subjects];

		if (!config_setting_is_group(s)) {
			cfg_error(c, s, "subject \"%s\" must be a group "
				  "{ table = ...; key = ...; }", name);
			/* named all the same: rules naming it are not wrong */
			sj->name = xstrdup(name);
			cfg->n_subjects++;
			continue;
		}
		if (!cfg_plain_name(name)) {
			cfg_error(c, s, "subject \"%s\": a subject kind must "
				  "start with a letter or digit and hold only "
				  "letters, digits, \"_\", \".\" and \"-\" (it "
				  "is typed as SUBJECT:ID)", name);
			continue;
		}
		sj->name = xstrdup(name);
		parse_subject(c, s, sj);
		cfg->n_subjects++;
	}
}

void
cfg_parse_requests(struct cfg_ctx *c, const config_setting_t *g)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "directory") == 0) {
			const char *v;
			if (!cfg_string(c, s, &v))
				continue;
			if (v[0] != '/') {
				cfg_error(c, s, "\"directory\" must be an "
					  "absolute path: the daemon's working "
					  "directory is not the admin's");
				continue;
			}
			free(c->cfg->requests.directory);
			c->cfg->requests.directory = xstrdup(v);
		} else {
			cfg_unknown_key(c, s, "requests", requests_keys,
					ARRAY_SIZE(requests_keys), NULL, 0);
		}
	}
}

void
cfg_check_rule_subjects(struct cfg_ctx *c)
{
	const struct config *cfg = c->cfg;

	/* an empty group is reported by itself */
	if (!cfg->has_subjects || cfg->n_subjects == 0)
		return;
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct rule *r = &cfg->rules[i];
		if (!r->subject || config_find_subject(cfg, r->subject))
			continue;
		char names[256] = "";
		size_t len = 0;
		for (size_t j = 0; j < cfg->n_subjects; j++) {
			int w = snprintf(names + len, sizeof(names) - len,
					 "%s%s", j ? ", " : "",
					 cfg->subjects[j].name);
			if (w < 0 || (size_t)w >= sizeof(names) - len)
				break;
			len += (size_t)w;
		}
		cfg_report(c, DIAG_ERROR, r->file,
			   r->lines.subject ? r->lines.subject : r->line,
			   "rule \"%s\": \"subject\" is \"%s\", which the "
			   "\"subjects\" group does not name (it names: %s)",
			   r->name ? r->name : "?", r->subject,
			   len ? names : "none");
	}
}
