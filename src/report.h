/*
 * report: the audit trail rendered for auditors (SPEC §2 `report`, §6).
 *
 * Two halves that meet in plain structs: report_load() reads one run, or
 * every run started in a date range, from the database (runs.summary,
 * erasure_requests, legal_holds, the audit chain) into a struct report;
 * report_render() turns that into text, CSV, JSON or HTML without a
 * database, so rendering is unit-tested on its own.
 *
 * Every value that came from the database or the config is escaped for
 * its format: HTML entities (quotes included), RFC 4180 CSV quoting, JSON
 * string escaping, and control characters made visible in text.
 *
 * doc/report-json.md documents the JSON object and the CSV columns.
 */
#ifndef RETENTIOND_REPORT_H
#define RETENTIOND_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "strbuf.h"
#include "util.h"

/* Version of the JSON object and the CSV columns; bump on any change a
 * consumer could notice. */
#define REPORT_VERSION 1

struct coverage_result;

/* Erasure requests due within this many days count as "due soon". */
#define REPORT_DUE_SOON_DAYS 7

/* SQL: an erasure request that still has work to do (erasure.c finishes a
 * request as "done", or "partial" when a rule kept data by policy). */
#define REPORT_ERASURE_OPEN "status IN ('pending', 'held')"
/* SQL: an access request not yet answered; a failed export still owes the
 * person an answer by its due date. */
#define REPORT_ACCESS_OPEN "status IN ('pending', 'failed')"

enum report_audit {
	REPORT_AUDIT_UNKNOWN,	/* could not be checked */
	REPORT_AUDIT_INTACT,
	REPORT_AUDIT_BROKEN
};

struct report_run {
	long long id;
	char *host, *command, *status, *started_at, *finished_at;
	char *config_sha256;	/* NULL when not recorded */
	char *error;		/* NULL when none */
	long long changed;	/* -1: no summary (the run did not finish) */
};

/* A table whose rows still refer to rows a rule would delete. */
struct report_ref {
	char *table;		/* schema.table */
	long long rows;		/* blocked rows it refers to */
};

/*
 * Why rows older than a rule's cutoff are still there (explain.c), counted
 * when the report is loaded. Only counts, the rule's `where` text (config,
 * not personal data), hold ids and table names: never a value of a row.
 */
struct report_explain {
	bool counted;		/* false: not counted (see error) */
	char *error;		/* why not, or NULL (rule not in the config) */
	char *where;		/* the rule's condition, or NULL */
	long long older;	/* rows older than the cutoff, now */
	long long kept_where;	/* ... that `where` keeps */
	long long deidentified;	/* ... already de-identified, kept so */
	long long held;		/* ... kept by a legal hold */
	long long blocked;	/* ... still referred to (refs) */
	long long left;		/* ... due and not yet changed */
	char *hold_ids;		/* "3, 7" (at most EXPLAIN_MAX_IDS), or NULL */
	struct report_ref *refs;
	size_t n_refs;
};

/* One rule; in a range report, aggregated over the runs that had it:
 * changed is the sum, everything else is from the latest of those runs
 * (the state at the end of the period). */
struct report_rule {
	char *rule, *policy, *table, *action, *retain;
	char *outcome, *cutoff, *oldest, *message;	/* may be NULL */
	long long changed, held, blocked, eligible, overdue, table_rows;
	bool compliant;
	double oldest_age_s;	/* at the end of its run; < 0: unknown */
	double lag_wait_s;	/* waited for standbys (max_replica_lag) */
	long long runs;		/* runs aggregated */
	long long last_run_id;
	struct report_explain why;	/* as of generated_at */
};

struct report_erasure {
	long long received;	/* requested in the period */
	long long done;		/* finished (done/partial) in the period */
	long long due_soon;	/* open, due within 7 days from now */
	long long overdue;	/* open and past due_at now */
	long long open;		/* pending or held, now */
};

struct report {
	bool range;		/* a --since/--until report */
	char *since, *until;	/* the range as given; NULL: open */
	char *period_start;	/* what "received"/"done" count in */
	char *period_end;
	char *generated_at;
	struct report_run *runs;
	size_t n_runs;
	struct report_rule *rules;
	size_t n_rules;
	struct report_erasure erasure;
	struct report_erasure access;	/* access requests (SPEC §8), alike */
	long long holds_active;
	struct {
		enum report_audit status;
		long long actions;	/* rows checked */
		long long first_bad_id;	/* 0 when intact */
		char *head;		/* hash of the last intact action */
		char *reason;		/* why broken or unknown; NULL */
	} audit;
	/* Alerts to show on top (a mail fills these); may be empty. */
	char **alerts;
	size_t n_alerts;
	/* The cycle's coverage (SPEC §9), set by postcycle, not owned; both
	 * NULL: coverage is not part of this report. */
	const struct coverage_result *coverage;
	const char *coverage_error;	/* why coverage failed this cycle */
};

struct report_totals {
	long long changed, held, blocked, overdue;
	size_t rules, rules_overdue, rules_failed;
	bool compliant;		/* every rule compliant */
};

/* What to load: a run (run_id > 0), a range (since and/or until, as
 * PostgreSQL timestamptz input; an until that is a bare date means the
 * end of that day), or neither: the latest finished cycle. */
struct audit_verify_result;

struct report_query {
	long long run_id;
	const char *since;
	const char *until;
	/* The chain as the cycle checked it (from the ledger's head, issue
	 * 20), with n_rows the whole trail's length, and its return value;
	 * NULL: check every row here. */
	const struct audit_verify_result *audit;
	int audit_status;
};

enum report_load_status {
	REPORT_LOADED,
	REPORT_NOT_FOUND,	/* no such run / no finished run yet */
	REPORT_BAD_DATE,	/* since/until not a date */
	REPORT_DB_ERROR
};

/* Must be called outside a transaction. *err (malloc'd) unless LOADED. */
enum report_load_status report_load(PGconn *conn, const struct config *cfg,
				    const struct report_query *q,
				    struct report *out, char **err) MUSTCHECK;
void report_free(struct report *r);

/* Add an alert line (copied). */
void report_add_alert(struct report *r, const char *text);

void report_totals(const struct report *r, struct report_totals *t);

/* "compliant", "OVERDUE 12", "not compliant" (failed), "unknown". */
void report_verdict(const struct report_rule *rr, char *out, size_t size);

/* The run a single-run report is about, or the latest one of a range;
 * NULL when there are none. */
const struct report_run *report_main_run(const struct report *r);

/* Render R in one format (exactly one bit of enum report_format). */
void report_render(const struct report *r, enum report_format f,
		   struct strbuf *out);
void report_render_text(const struct report *r, struct strbuf *out);
void report_render_csv(const struct report *r, struct strbuf *out);
void report_render_json(const struct report *r, struct strbuf *out);
void report_render_html(const struct report *r, struct strbuf *out);

/* "text", "csv", "json", "html"; and the file extension ("txt" ...). */
bool report_parse_format(const char *name, enum report_format *f) MUSTCHECK;
const char *report_format_name(enum report_format f);
const char *report_format_ext(enum report_format f);

/* Escapers: & < > " ' as entities; one RFC 4180 field (quoted when it
 * holds a comma, quote, CR or LF; NULL is empty). */
void report_html_escape(struct strbuf *b, const char *s);
void report_csv_field(struct strbuf *b, const char *s);

/*
 * Write DATA to PATH safely: a temporary file in the same directory,
 * fsync, rename, fsync of the directory (file_replace). Mode 0640.
 * Returns false with *err naming the file.
 */
bool report_write_file(const char *path, const char *data, size_t len,
		       char **err) MUSTCHECK;

/* Write R's files into DIRECTORY (created 0750 if missing) as
 * run-ID.EXT for each format bit in FORMATS. Failures are logged per
 * file; returns how many were written. */
int report_write_dir(const struct report *r, const char *directory,
		     unsigned formats, long long run_id);

#endif
