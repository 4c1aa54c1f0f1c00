/*
 * config_parse: the inside of the config module, shared by its parts:
 * config.c (files, includes, permissions, the public entry points),
 * config_groups.c (database, schedule, limits, mail, report),
 * config_rules.c (the rules list), config_subjects.c (subjects and
 * requests, SPEC §8) and config_value.c (typed getters and
 * messages). Not for use outside the config module.
 */
#ifndef RETENTIOND_CONFIG_PARSE_H
#define RETENTIOND_CONFIG_PARSE_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"

/* A message held back until the whole file is read, so that they can be
 * given in file and line order. */
struct cfg_message {
	const char *file;	/* one of cfg->files */
	size_t file_index;	/* its index there: the main file sorts first */
	int line;
	enum diag_level level;
	size_t seq;		/* keeps the order of messages on one line */
	char *text;
};

struct cfg_ctx {
	struct config *cfg;
	struct diag *diag;
	const config_t *lc;
	char *include_dir;	/* where @include paths are resolved */
	/* Prefix for messages while one rule is checked: `rule "name"`, or
	 * `rule #N` until its name is known; empty outside rules. */
	char label[96];
	/* Where database.conninfo was set, for the readable-secret check. */
	const char *conninfo_file;
	int conninfo_line;
	struct cfg_message *msgs;
	size_t n_msgs;
	size_t cap_msgs;
	size_t n_errors;
};

/* Flags for cfg_duration. */
#define CFG_DUR_FIXED 1		/* months and years are refused */
#define CFG_DUR_POSITIVE 2	/* zero is refused */
#define CFG_DUR_PG_TIMEOUT 4	/* at most INT_MAX ms, PostgreSQL's limit */
#define CFG_DUR_RETENTION 8	/* at most 1000 years */

/* Longest identifier PostgreSQL keeps (NAMEDATALEN - 1). */
#define CFG_NAME_MAX 63

/* The file a setting came from, as stored in cfg->files. */
const char *cfg_file(const struct cfg_ctx *c, const config_setting_t *s);
int cfg_line(const config_setting_t *s);

/* Queue a message about FILE (one of cfg->files) at LINE (0: the file). */
void cfg_report(struct cfg_ctx *c, enum diag_level level, const char *file,
		int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Hand the queued messages to c->diag, sorted by file and line. */
void cfg_flush(struct cfg_ctx *c);

void cfg_error(struct cfg_ctx *c, const config_setting_t *s,
	       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cfg_warning(struct cfg_ctx *c, const config_setting_t *s,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Report S as unknown, with a "did you mean" from keys (and more_keys, may
 * be NULL); group names the enclosing group, NULL at the top or in a rule. */
void cfg_unknown_key(struct cfg_ctx *c, const config_setting_t *s,
		     const char *group, const char *const *keys, size_t n,
		     const char *const *more_keys, size_t n_more);

/* A short printable copy of user text for messages (control characters
 * replaced, long text cut). */
const char *cfg_quote(const char *s, char *buf, size_t len);

/* Typed getters: on a wrong type or value they report and return false,
 * leaving *out untouched. */
bool cfg_string(struct cfg_ctx *c, const config_setting_t *s,
		const char **out);
bool cfg_dup_string(struct cfg_ctx *c, const config_setting_t *s, char **out);
bool cfg_ident(struct cfg_ctx *c, const config_setting_t *s, char **out);
bool cfg_bool(struct cfg_ctx *c, const config_setting_t *s, bool *out);
bool cfg_int(struct cfg_ctx *c, const config_setting_t *s, int64_t min,
	     int64_t max, int64_t *out);
bool cfg_duration(struct cfg_ctx *c, const config_setting_t *s, int flags,
		  struct duration *out);
bool cfg_enum(struct cfg_ctx *c, const config_setting_t *s,
	      const char *const *names, size_t n, int *out);
bool cfg_group(struct cfg_ctx *c, const config_setting_t *s);

#define CFG_N_LIMIT_KEYS 7
extern const char *const cfg_limit_keys[CFG_N_LIMIT_KEYS];

/* Apply S to L if it is a key of "limits"; false if it is not one. */
bool cfg_limit_key(struct cfg_ctx *c, const config_setting_t *s,
		   struct limits *l);

/* Subject kinds and rule subjects follow the rules' naming (SUBJECT:ID). */
bool cfg_plain_name(const char *s);

/* config_subjects.c: the "subjects" and "requests" groups (SPEC §8). */
void cfg_parse_subjects(struct cfg_ctx *c, const config_setting_t *g);
void cfg_parse_requests(struct cfg_ctx *c, const config_setting_t *g);
/* Once rules and subjects are read: every rule's subject is a known kind. */
void cfg_check_rule_subjects(struct cfg_ctx *c);

void cfg_parse_root(struct cfg_ctx *c, const config_setting_t *root);
void cfg_parse_rules(struct cfg_ctx *c, const config_setting_t *rules);
/* The "coverage" group (config_coverage.c). */
void cfg_parse_coverage(struct cfg_ctx *c, const config_setting_t *g);

#endif
