/*
 * The "rules" list of the config file (SPEC §3): one struct rule per
 * element, every key checked, every problem reported with the rule named.
 */
#include "config_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const rule_keys[] = {
	"name", "policy", "table", "age_column", "retain", "action",
	"on_erasure", "deidentify", "marker_column", "subject",
	"subject_column", "enabled", "where", "partitions",
};

static const char *const action_names[] = {
	[ACTION_DELETE] = "delete",
	[ACTION_DEIDENTIFY] = "deidentify",
	[ACTION_KEEP] = "keep",
};
static const char *const method_names[] = {
	[METHOD_NULL] = "null",
	[METHOD_REDACT] = "redact",
	[METHOD_HASH] = "hash",
	[METHOD_MASK_EMAIL] = "mask_email",
	[METHOD_TRUNCATE_IP] = "truncate_ip",
	[METHOD_YEAR] = "year",
};
static const char *const partitions_names[] = {
	[PARTITIONS_DROP] = "drop",
	[PARTITIONS_DETACH] = "detach",
	[PARTITIONS_ROWS] = "rows",
};

const char *
rule_action_name(enum rule_action a)
{
	return (size_t)a < ARRAY_SIZE(action_names) ? action_names[a] : "?";
}

const char *
deid_method_name(enum deid_method m)
{
	return (size_t)m < ARRAY_SIZE(method_names) ? method_names[m] : "?";
}

const char *
partitions_mode_name(enum partitions_mode p)
{
	return (size_t)p < ARRAY_SIZE(partitions_names) ? partitions_names[p]
							: "?";
}

/* One part of a table name at *pp. Quotes are needed only for a '.', a
 * '"' (doubled inside quotes), spaces or control characters; otherwise the
 * name is taken as written, like every other name in the file. */
static char *
table_part(const char **pp)
{
	const char *p = *pp;
	char buf[CFG_NAME_MAX + 1];
	size_t n = 0;

	if (*p == '"') {
		for (p++;; p++) {
			if (*p == '\0')
				return NULL;
			if (*p == '"' && *++p != '"')
				break;
			if (n == CFG_NAME_MAX)
				return NULL;
			buf[n++] = *p;
		}
	} else {
		for (; *p && *p != '.'; p++) {
			if (*p == '"' || (unsigned char)*p <= ' ' || *p == 0x7f)
				return NULL;
			if (n == CFG_NAME_MAX)
				return NULL;
			buf[n++] = *p;
		}
	}
	if (n == 0)
		return NULL;
	buf[n] = '\0';
	*pp = p;
	return xstrdup(buf);
}

bool
config_split_table(const char *qualified, char **schema, char **table)
{
	const char *p = qualified;
	char *first, *second = NULL;

	*schema = *table = NULL;
	if (!(first = table_part(&p)))
		return false;
	if (*p == '.') {
		p++;
		if (!(second = table_part(&p))) {
			free(first);
			return false;
		}
	}
	if (*p != '\0') {
		free(first);
		free(second);
		return false;
	}
	if (second) {
		*schema = first;
		*table = second;
	} else {
		*schema = xstrdup("public");
		*table = first;
	}
	return true;
}

/* Rule names and subjects are typed on the command line (`run --rule
 * NAME`, `hold add SUBJECT:ID`) and appear in reports: keep them plain. */
static bool
plain_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

bool
cfg_plain_name(const char *s)
{
	return plain_name(s);
}

/* Settings of one rule that later checks refer to; NULL when absent. */
struct seen {
	const config_setting_t *name, *policy, *table, *age_column, *retain;
	const config_setting_t *action, *on_erasure, *deidentify;
	const config_setting_t *marker, *subject, *subject_column;
	const config_setting_t *first_hash;
	bool bad_action;	/* action or on_erasure unreadable */
};

static void
add_method(struct cfg_ctx *c, struct rule *r, const config_setting_t *at,
	   const char *column, const char *method, struct seen *seen)
{
	char qc[48], qm[48];
	size_t m;

	if (strlen(column) > CFG_NAME_MAX) {
		cfg_error(c, at, "\"deidentify\": column \"%s\" is longer than "
			  "%d bytes", cfg_quote(column, qc, sizeof(qc)),
			  CFG_NAME_MAX);
		return;
	}
	for (m = 0; m < ARRAY_SIZE(method_names); m++)
		if (strcmp(method, method_names[m]) == 0)
			break;
	if (m == ARRAY_SIZE(method_names)) {
		cfg_error(c, at, "\"deidentify\": column \"%s\": unknown method "
			  "\"%s\" (valid: \"null\", \"redact\", \"hash\", "
			  "\"mask_email\", \"truncate_ip\", \"year\")",
			  cfg_quote(column, qc, sizeof(qc)),
			  cfg_quote(method, qm, sizeof(qm)));
		return;
	}
	for (size_t i = 0; i < r->n_deidentify; i++) {
		if (strcmp(r->deidentify[i].column, column) == 0) {
			cfg_error(c, at, "\"deidentify\": column \"%s\" is "
				  "listed twice", cfg_quote(column, qc,
							    sizeof(qc)));
			return;
		}
	}
	if (m == METHOD_HASH && !seen->first_hash)
		seen->first_hash = at;
	r->deidentify[r->n_deidentify++] = (struct column_method){
		.column = xstrdup(column),
		.method = (enum deid_method)m,
		.line = cfg_line(at),
	};
}

/*
 * Either a group, { email = "hash"; phone = "null"; }, or, for column names
 * libconfig cannot write as keys (spaces, dots, non-ASCII), a list of
 * groups: ( { column = "E-Mail Address"; method = "hash"; } ).
 */
static void
parse_deidentify(struct cfg_ctx *c, const config_setting_t *g, struct rule *r,
		 struct seen *seen)
{
	int n = config_setting_length(g);
	bool is_list = config_setting_is_list(g);

	if (!config_setting_is_group(g) && !is_list) {
		cfg_error(c, g, "\"deidentify\" must be a group such as "
			  "{ email = \"hash\"; }");
		return;
	}
	if (n == 0) {
		cfg_error(c, g, "\"deidentify\" lists no columns");
		return;
	}
	r->deidentify = xcalloc((size_t)n, sizeof(*r->deidentify));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(g, i);
		const char *column, *method;

		if (!is_list) {
			column = config_setting_name(e);
			method = config_setting_get_string(e);
			if (!method) {
				cfg_error(c, e, "\"deidentify\": column \"%s\" "
					  "needs a method as a string, as in "
					  "%s = \"redact\"", column, column);
				continue;
			}
		} else if (!config_setting_is_group(e) ||
			   config_setting_length(e) != 2 ||
			   config_setting_lookup_string(e, "column",
							&column) != CONFIG_TRUE ||
			   config_setting_lookup_string(e, "method",
							&method) != CONFIG_TRUE) {
			cfg_error(c, e, "\"deidentify\": each element of the "
				  "list must be { column = \"...\"; method = "
				  "\"...\"; }");
			continue;
		} else if (!*column) {
			cfg_error(c, e, "\"deidentify\": empty column name");
			continue;
		} else if (!str_is_utf8(column)) {
			cfg_error(c, e, "\"deidentify\": column name is not "
				  "valid UTF-8; save the file as UTF-8");
			continue;
		}
		add_method(c, r, e, column, method, seen);
	}
}

static void
rule_key(struct cfg_ctx *c, const config_setting_t *s, struct rule *r,
	 struct seen *seen)
{
	const char *k = config_setting_name(s);
	char quoted[48];
	const char *v;
	int e;

	if (strcmp(k, "name") == 0)
		;	/* read first, by parse_rule, to label the messages */
	else if (strcmp(k, "policy") == 0) {
		seen->policy = s;
		(void)cfg_dup_string(c, s, &r->policy);
	} else if (strcmp(k, "table") == 0) {
		seen->table = s;
		r->lines.table = cfg_line(s);
		if (cfg_string(c, s, &v) &&
		    !config_split_table(v, &r->schema, &r->table))
			cfg_error(c, s, "\"table\": \"%s\" is not \"schema.table\" "
				  "or \"table\" (names of at most %d bytes; one "
				  "holding a dot, quote or space goes in double "
				  "quotes, written \\\" in the file)",
				  cfg_quote(v, quoted, sizeof(quoted)),
				  CFG_NAME_MAX);
	} else if (strcmp(k, "age_column") == 0) {
		seen->age_column = s;
		r->lines.age_column = cfg_line(s);
		(void)cfg_ident(c, s, &r->age_column);
	} else if (strcmp(k, "retain") == 0) {
		seen->retain = s;
		r->lines.retain = cfg_line(s);
		(void)cfg_duration(c, s, CFG_DUR_POSITIVE | CFG_DUR_RETENTION,
				   &r->retain);
	} else if (strcmp(k, "action") == 0) {
		seen->action = s;
		r->lines.action = cfg_line(s);
		/* "keep" is for erasure only: a rule that keeps is no rule */
		if (cfg_enum(c, s, action_names, 2, &e))
			r->action = (enum rule_action)e;
		else
			seen->bad_action = true;
	} else if (strcmp(k, "on_erasure") == 0) {
		seen->on_erasure = s;
		if (cfg_enum(c, s, action_names, ARRAY_SIZE(action_names), &e))
			r->on_erasure = (enum rule_action)e;
		else
			seen->bad_action = true;
	} else if (strcmp(k, "deidentify") == 0) {
		seen->deidentify = s;
		r->lines.deidentify = cfg_line(s);
	} else if (strcmp(k, "marker_column") == 0) {
		seen->marker = s;
		r->lines.marker_column = cfg_line(s);
		(void)cfg_ident(c, s, &r->marker_column);
	} else if (strcmp(k, "subject") == 0) {
		seen->subject = s;
		r->lines.subject = cfg_line(s);
		if (!cfg_string(c, s, &v))
			return;
		if (plain_name(v))
			r->subject = xstrdup(v);
		else
			cfg_error(c, s, "\"subject\" must start with a letter "
				  "or digit and hold only letters, digits, "
				  "\"_\", \".\" and \"-\" (it is typed as "
				  "SUBJECT:ID)");
	} else if (strcmp(k, "subject_column") == 0) {
		seen->subject_column = s;
		r->lines.subject_column = cfg_line(s);
		(void)cfg_ident(c, s, &r->subject_column);
	} else if (strcmp(k, "enabled") == 0)
		(void)cfg_bool(c, s, &r->enabled);
	else if (strcmp(k, "where") == 0) {
		r->lines.where = cfg_line(s);
		(void)cfg_dup_string(c, s, &r->where);
	} else if (strcmp(k, "partitions") == 0) {
		r->lines.partitions = cfg_line(s);
		if (cfg_enum(c, s, partitions_names,
			     ARRAY_SIZE(partitions_names), &e))
			r->partitions = (enum partitions_mode)e;
	} else if (!cfg_limit_key(c, s, &r->limits))
		cfg_unknown_key(c, s, NULL, rule_keys, ARRAY_SIZE(rule_keys),
				cfg_limit_keys, CFG_N_LIMIT_KEYS);
}

/* Checks between keys, once all of them are read. */
static void
check_rule(struct cfg_ctx *c, const config_setting_t *g, struct rule *r,
	   struct seen *seen)
{
	static const char *const required[] = {
		"name", "policy", "table", "age_column", "retain",
	};
	const config_setting_t *have[] = {
		seen->name, seen->policy, seen->table, seen->age_column,
		seen->retain,
	};

	for (size_t i = 0; i < ARRAY_SIZE(required); i++)
		if (!have[i])
			cfg_error(c, g, "missing required key \"%s\"",
				  required[i]);

	if (!seen->on_erasure)
		r->on_erasure = r->action;
	if (seen->subject && !seen->subject_column)
		cfg_error(c, seen->subject, "\"subject\" needs "
			  "\"subject_column\", the column that holds the "
			  "subject's id");
	if (seen->subject_column && !seen->subject)
		cfg_error(c, seen->subject_column, "\"subject_column\" needs "
			  "\"subject\", the kind of subject it identifies");
	/* on_erasure without a subject is meaningful: an erasure reaches
	 * this table's rows through foreign keys (SPEC §11) */

	if (seen->bad_action) {
		/* which columns matter is unknown; still check the list */
		if (seen->deidentify)
			parse_deidentify(c, seen->deidentify, r, seen);
		return;
	}
	bool needed = r->action == ACTION_DEIDENTIFY ||
		      r->on_erasure == ACTION_DEIDENTIFY;
	if (needed && !seen->deidentify) {
		bool by_action = r->action == ACTION_DEIDENTIFY;
		cfg_error(c, by_action ? seen->action : seen->on_erasure,
			  "\"%s\" is \"deidentify\" but there is no "
			  "\"deidentify\" group naming the columns and their "
			  "methods", by_action ? "action" : "on_erasure");
		return;
	}
	if (!needed && seen->deidentify) {
		cfg_error(c, seen->deidentify, "\"deidentify\" has no effect: "
			  "neither \"action\" nor \"on_erasure\" is "
			  "\"deidentify\"");
		return;
	}
	if (!needed) {
		if (seen->marker)
			cfg_warning(c, seen->marker, "\"marker_column\" has no "
				    "effect on a rule that only deletes");
		return;
	}

	parse_deidentify(c, seen->deidentify, r, seen);
	if (seen->first_hash && !r->marker_column && !seen->marker)
		cfg_error(c, seen->first_hash, "\"marker_column\" is required "
			  "when a column uses \"hash\": a hashed value cannot "
			  "be told apart from a raw one, so without a marker "
			  "rows would be hashed again every cycle");
	for (size_t i = 0; r->marker_column && i < r->n_deidentify; i++)
		if (strcmp(r->deidentify[i].column, r->marker_column) == 0)
			cfg_error(c, seen->marker, "\"marker_column\" is also "
				  "listed in \"deidentify\"; it must be a "
				  "column of its own");
}

static void
parse_rule(struct cfg_ctx *c, const config_setting_t *g, struct rule *r,
	   size_t index)
{
	struct config *cfg = c->cfg;
	struct seen seen = {0};
	const char *v;

	r->limits = cfg->limits;
	r->enabled = true;
	r->action = ACTION_DELETE;
	r->partitions = PARTITIONS_DROP;
	r->file = cfg_file(c, g);
	r->line = cfg_line(g);
	snprintf(c->label, sizeof(c->label), "rule #%zu", index + 1);

	seen.name = config_setting_get_member(g, "name");
	r->lines.name = cfg_line(seen.name);
	if (seen.name && cfg_string(c, seen.name, &v)) {
		if (!plain_name(v)) {
			cfg_error(c, seen.name, "\"name\" must start with a "
				  "letter or digit and hold only letters, "
				  "digits, \"_\", \".\" and \"-\", at most %d "
				  "bytes", CFG_NAME_MAX);
		} else {
			snprintf(c->label, sizeof(c->label), "rule \"%s\"", v);
			const struct rule *first = config_find_rule(cfg, v);
			if (first)
				cfg_error(c, seen.name, "duplicate rule name; "
					  "the first rule \"%s\" is at %s:%d",
					  v, first->file, first->line);
			r->name = xstrdup(v);
		}
	}

	for (int i = 0; i < config_setting_length(g); i++)
		rule_key(c, config_setting_get_elem(g, i), r, &seen);
	check_rule(c, g, r, &seen);
	c->label[0] = '\0';
}

void
cfg_parse_rules(struct cfg_ctx *c, const config_setting_t *rules)
{
	struct config *cfg = c->cfg;
	int n = config_setting_length(rules);

	if (!config_setting_is_list(rules)) {
		cfg_error(c, rules, "\"rules\" must be a list of groups: "
			  "( { name = ...; }, { ... } )");
		return;
	}
	if (n == 0) {
		cfg_error(c, rules, "\"rules\" is empty: a configuration "
			  "without rules does nothing");
		return;
	}
	cfg->rules = xcalloc((size_t)n, sizeof(*cfg->rules));
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(rules, i);

		if (!config_setting_is_group(g)) {
			cfg_error(c, g, "rule #%d must be a group { ... }",
				  i + 1);
			continue;
		}
		/* counted after, so config_find_rule sees earlier rules only */
		parse_rule(c, g, &cfg->rules[cfg->n_rules], (size_t)i);
		cfg->n_rules++;
	}
}
