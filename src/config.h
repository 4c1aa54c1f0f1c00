/*
 * config: the configuration file (SPEC §3), loaded once into plain structs.
 *
 * config_load() parses with libconfig, checks every key, type and range,
 * and reports every problem it finds into a struct diag as
 * "FILE:LINE: message" before giving up. It reads no secrets and touches
 * no database; secrets are loaded by secret_load_all() (secret.h).
 */
#ifndef RETENTIOND_CONFIG_H
#define RETENTIOND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "duration.h"
#include "util.h"

enum rule_action {
	ACTION_DELETE,
	ACTION_DEIDENTIFY,
	ACTION_KEEP		/* only for on_erasure */
};

enum deid_method {
	METHOD_NULL,
	METHOD_REDACT,
	METHOD_HASH,
	METHOD_MASK_EMAIL,
	METHOD_TRUNCATE_IP,
	METHOD_YEAR
};

enum partitions_mode {
	PARTITIONS_DROP,
	PARTITIONS_DETACH,
	PARTITIONS_ROWS
};

enum mail_tls {
	MAIL_TLS_STARTTLS,
	MAIL_TLS_IMPLICIT,
	MAIL_TLS_NONE
};

enum mail_send {
	MAIL_SEND_ALWAYS,
	MAIL_SEND_CHANGES,
	MAIL_SEND_ERRORS,
	MAIL_SEND_NEVER
};

enum report_format {
	REPORT_TEXT = 1 << 0,
	REPORT_CSV = 1 << 1,
	REPORT_JSON = 1 << 2,
	REPORT_HTML = 1 << 3
};

struct secret {
	unsigned char *data;	/* NUL-terminated for convenience */
	size_t len;
	char *source;		/* where it came from, for messages: a path */
};

struct limits {
	int64_t batch_size;		/* 1 .. 10,000,000 */
	struct duration batch_target;	/* fixed unit, > 0 */
	struct duration pause;		/* fixed unit, >= 0 */
	struct duration busy_batch_target; /* fixed unit, >= 0; 0: off */
	struct duration max_runtime;	/* fixed unit, > 0 */
	double max_fraction;		/* (0, 1] */
	struct duration max_replica_lag; /* fixed unit, > 0; 0: off */
};

struct column_method {
	char *column;
	enum deid_method method;
	int line;
};

/* One entry of coverage.ignore (SPEC §9). */
struct coverage_ignore {
	char *match;		/* schema.table[.column], "*" wildcards */
	char *reason;
	int line;
};

struct rule {
	char *name;
	char *policy;
	char *schema;		/* "public" when the table is unqualified */
	char *table;
	char *age_column;
	struct duration retain;	/* > 0; may be a calendar unit */
	enum rule_action action;	/* DELETE or DEIDENTIFY */
	enum rule_action on_erasure;	/* DELETE, DEIDENTIFY or KEEP */
	bool enabled;
	char *where;		/* NULL when absent */
	char *subject;		/* NULL when absent */
	char *subject_column;	/* NULL when absent */
	char *marker_column;	/* NULL when absent */
	enum partitions_mode partitions;
	struct limits limits;	/* the global limits with this rule's overrides */
	struct column_method *deidentify;
	size_t n_deidentify;
	const char *file;	/* file the rule was read from (may be an @include) */
	int line;		/* line of the rule's opening brace */
	/* Line of each key, for messages found later (e.g. by `check` against
	 * the catalog); 0 when the key is absent (then use `line`). */
	struct {
		int name, table, age_column, retain, action, where, subject,
		    subject_column, marker_column, partitions, deidentify;
	} lines;
};

/* A kind of subject (SPEC §8): one row of TABLE is one subject, found by
 * KEY = the ID in SUBJECT:ID. */
struct subject {
	char *name;
	char *schema;
	char *table;
	char *key;
	const char *file;
	int line;
};

struct config {
	char *path;
	char sha256[65];	/* hex digest of the file's bytes */

	struct {
		char *conninfo;
		char *password_file;	/* NULL: libpq's own (.pgpass...) */
		char *schema;		/* default "retention" */
		struct duration statement_timeout;	/* default 30s */
		struct duration lock_timeout;		/* default 2s */
		struct duration connect_timeout;	/* default 10s */
		struct secret password;	/* filled by secret_load_all */
		const char *conninfo_file;	/* where conninfo was written, */
		int conninfo_line;		/* for messages about the database */
	} database;

	struct {
		struct duration interval;	/* default 1h, fixed unit */
		bool has_window;
		int window_start;	/* minutes after local midnight */
		int window_end;		/* may be < start: spans midnight */
	} schedule;

	struct limits limits;

	char *pseudonym_key_file;	/* NULL: credential or none */
	struct secret pseudonym_key;

	struct {
		bool configured;	/* the mail group is present */
		char *url;
		enum mail_tls tls;
		char *username;
		char *password_file;
		char *ca_file;		/* NULL: the system store */
		char *from;
		char **to;
		size_t n_to;
		enum mail_send send;
		struct duration timeout;	/* default 30s */
		struct secret password;
	} mail;

	struct {
		char *directory;	/* NULL: no report files */
		unsigned formats;	/* enum report_format bits */
	} report;

	char *metrics_file;

	/* Holds the ledger (SPEC §11). Default: $STATE_DIRECTORY when systemd
	 * sets one (the unit's StateDirectory=), else /var/lib/retentiond. */
	char *state_directory;
	struct {
		int64_t sample_rows;	/* default 1000; 0: names and types only */
		struct coverage_ignore *ignore;
		size_t n_ignore;
	} coverage;
	/* The "subjects" group; when absent (has_subjects false) any subject
	 * kind is accepted, as in v1. */
	bool has_subjects;
	struct subject *subjects;
	size_t n_subjects;

	struct {
		char *directory;	/* access exports; never NULL */
	} requests;

	struct rule *rules;
	size_t n_rules;

	/* Every file read (the main file and @includes), for checks. */
	char **files;
	size_t n_files;
};

/*
 * Load and validate PATH into *out. Every problem is added to diag. Returns
 * false when any error was found; *out is then freed and zeroed.
 * Checks file permissions: writable by group or others is an error.
 */
bool config_load(const char *path, struct config *out, struct diag *diag)
	MUSTCHECK;

/* Parse config text (no permission checks) as if read from NAME; for tests
 * and fuzzing. */
bool config_load_string(const char *text, const char *name, struct config *out,
			struct diag *diag) MUSTCHECK;

void config_free(struct config *cfg);

#define CONFIG_STATE_DIRECTORY "/var/lib/retentiond"
/* state_directory when the file does not set it. */
const char *config_default_state_directory(void);

const struct rule *config_find_rule(const struct config *cfg,
				    const char *name);

const struct subject *config_find_subject(const struct config *cfg,
					  const char *name);

/* Whether SUBJECT:ID may name this subject kind: the "subjects" group is
 * absent (v1), or it names KIND. */
bool config_subject_allowed(const struct config *cfg, const char *kind);

const char *rule_action_name(enum rule_action a);
const char *deid_method_name(enum deid_method m);
const char *partitions_mode_name(enum partitions_mode p);

/* "public.api_requests" -> schema "public", table "api_requests". Quoted
 * parts ("My Schema"."x.y") are honoured. Returns false on bad syntax. */
bool config_split_table(const char *qualified, char **schema, char **table)
	MUSTCHECK;

#endif
