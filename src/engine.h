/*
 * engine: one enforcement cycle (or a plan of one). Takes a config and a
 * connection, returns results; knows nothing of signals or the command
 * line — a stop request arrives through the hooks.
 */
#ifndef RETENTIOND_ENGINE_H
#define RETENTIOND_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "runlog.h"
#include "util.h"

/* Host and database clocks may differ by at most this much. */
#define ENGINE_MAX_SKEW_SECONDS 300
/* A retention shorter than this needs --force: likely a typo. */
#define ENGINE_MIN_RETAIN_MS (3600LL * 1000)

struct engine_hooks {
	bool (*should_stop)(void *arg);		/* checked between batches */
	void (*status)(void *arg, const char *line);	/* what it does now */
	void *arg;
};

struct engine_options {
	const char *command;		/* "run", "plan" or "daemon" */
	bool dry_run;			/* plan: count, change nothing */
	bool force;			/* pass the safety guards */
	const char *const *only;	/* --rule NAME...; NULL: all enabled */
	size_t n_only;
};

enum rule_outcome {
	OUTCOME_DONE,		/* nothing left that is due */
	OUTCOME_NOTHING,	/* nothing was due */
	OUTCOME_TIME,		/* max_runtime reached; rest next cycle */
	OUTCOME_STOPPED,	/* a stop was requested */
	OUTCOME_LOCKED,		/* lock_timeout; rest next cycle */
	OUTCOME_REFUSED,	/* a safety guard stopped it */
	OUTCOME_FAILED,		/* an error */
	OUTCOME_PLANNED,	/* plan only */
	OUTCOME_SKIPPED		/* disabled or not selected: only counted */
};

const char *rule_outcome_name(enum rule_outcome o);
bool rule_outcome_is_failure(enum rule_outcome o);

struct rule_result {
	const struct rule *rule;
	enum rule_outcome outcome;
	char *cutoff;		/* as the database wrote it */
	long long eligible;	/* rows due at the start */
	long long held;		/* due but kept by a legal hold */
	long long blocked;	/* due but still referenced */
	long long table_rows;
	long long overdue;	/* rows older than retain + one schedule
				 * interval left after the cycle, held or not */
	long long changed;
	long long partitions;	/* whole partitions dropped or detached */
	long long batches;
	double longest_batch_ms;
	double seconds;
	double lag_wait_seconds;	/* waited for standbys (max_replica_lag) */
	char *oldest;		/* oldest remaining row, NULL when empty */
	char *how;		/* "row batches ordered by the age index", ... */
	char *message;		/* why it refused, failed or stopped */
};

/* Compliant: nothing is older than the retention period plus one schedule
 * interval (a row may have expired just after the last cycle). */
bool rule_result_compliant(const struct rule_result *rr);

/* What one rule did for one erasure request. */
struct erasure_rule_result {
	const struct rule *rule;
	enum rule_action method;	/* the rule's on_erasure */
	long long rows;		/* deleted or de-identified */
	long long kept;		/* rows kept ("keep": a duty outlives it) */
	long long blocked;	/* rows still referenced from elsewhere */
	long long left;		/* rows left for the next cycle (time, stop) */
	char *message;		/* an error, or why rows are left, or NULL */
	bool failed;		/* MESSAGE is an error, not rows a lock kept */
	const struct rule *kept_under;	/* KEPT rows stay because kept or
					 * de-identified rows of this rule's
					 * table refer to them (SPEC §11);
					 * NULL: the rule's own "keep" */
};

/* A table that no rule covers whose rows refer to the subject's: it blocks
 * the rows they refer to until staff add a rule (SPEC §11). */
struct erasure_block {
	char *table;		/* schema.table */
	long long rows;
	const struct rule *kept_under;	/* in erasure_outcome.cascaded: the
					 * rule its parent rows are kept
					 * under; NULL in blocks */
};

struct erasure_outcome {
	long long id;
	char *subject;
	char *subject_id;
	char *due_at;
	const char *status;	/* "done", "partial", "held" or "pending" */
	struct erasure_rule_result *rules;
	size_t n_rules;
	long long changed;
	bool failed;		/* a rule failed on it: the run is partial */
	char *waiting;		/* why it stays pending though no rule
				 * failed: a rule with its subject did not
				 * run, or none exists; NULL otherwise */
	struct erasure_block *blocks;	/* uncovered referring tables */
	size_t n_blocks;
	struct erasure_block *cascaded;	/* uncovered tables whose rows go
					 * with kept parents by cascade */
	size_t n_cascaded;
	bool blocks_mailed;	/* staff were told of every block before */
	char *error;		/* the foreign keys could not be followed */
};

/* What one access request came to in a cycle (SPEC §8). */
struct access_outcome {
	long long id;
	char *subject;
	char *subject_id;
	const char *status;	/* "done", "failed" or "pending" (stopped) */
	long long rows;		/* exported, over all tables */
	size_t n_tables;
	char *json_path;	/* NULL unless done */
	char *html_path;
	char *message;		/* why it failed or was left pending */
};

struct run_result {
	long long run_id;	/* 0 when no run row could be written */
	enum run_status status;
	struct rule_result *rules;
	size_t n_rules;
	struct erasure_outcome *erasures;
	size_t n_erasures;
	long long changed;
	double seconds;
	char *erasure_error;	/* what stopped the erasure pass, or NULL */
	bool interrupted;	/* a stop cut an erasure request short */
	struct access_outcome *accesses;
	size_t n_accesses;
	char *access_error;	/* what stopped the access pass, or NULL */
	char *error;		/* what stopped the whole cycle, or NULL */
};

enum engine_status {
	ENGINE_OK,		/* ran; see result->status */
	ENGINE_LOCKED,		/* another instance holds the lock */
	ENGINE_ERROR		/* could not run at all; result->error */
};

enum engine_status engine_cycle(PGconn *conn, const struct config *cfg,
				const struct engine_options *opt,
				const struct engine_hooks *hooks,
				struct run_result *out) MUSTCHECK;
void run_result_free(struct run_result *r);

#endif
