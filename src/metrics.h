/*
 * metrics: the optional Prometheus text file (`metrics_file`), for
 * node_exporter's textfile collector, rewritten after every cycle of `run`
 * and `daemon`.
 *
 * A text file outlives the process, and `run` is a new process every time,
 * so nothing here counts in memory across cycles. Two kinds of numbers:
 *
 *   gauges of the last cycle    retentiond_rows_changed{rule,action},
 *                               retentiond_cycle_duration_seconds, ...
 *   totals from the database    retentiond_rows_changed_total{rule,action}
 *                               summed over the `actions` audit trail, so
 *                               they survive restarts and agree with
 *                               `report`; holds, erasure requests and the
 *                               last successful cycle likewise
 *
 * The file is written to a temporary file in the same directory, fsynced
 * and renamed, so the collector never reads half a file. When the database
 * cannot be read the file is left as it was (stale rather than wrong; the
 * collector exports its mtime for staleness alerts).
 */
#ifndef RETENTIOND_METRICS_H
#define RETENTIOND_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "coverage.h"
#include "engine.h"
#include "strbuf.h"
#include "util.h"

struct metrics_total {
	char *rule;
	char *action;
	long long rows;
};

/* Zero (the default of an initializer) means "not known": not written. */
enum metrics_audit {
	METRICS_AUDIT_UNKNOWN,
	METRICS_AUDIT_INTACT,
	METRICS_AUDIT_BROKEN
};

/* What the database says, read after the cycle. */
struct metrics_db {
	double last_success;		/* epoch seconds; 0: never */
	long long erasure_pending;	/* open, not yet due */
	long long erasure_overdue;	/* open, past due_at */
	long long erasure_due_soon;	/* open, due within 7 days */
	long long access_pending;	/* access requests, alike (SPEC §8) */
	long long access_overdue;
	long long access_due_soon;	/* open, due within 7 days */
	long long holds_active;
	struct metrics_total *totals;
	size_t n_totals;
	enum metrics_audit audit;	/* the audit chain, as the cycle
					 * checked it (postcycle) */
	long long outbox_unsent;	/* mail not yet delivered */
	double outbox_oldest_s;		/* age of the oldest of it; 0: none */
	/* from the config, so an alert can compare ages with it; 0: unset */
	double interval_s;		/* schedule.interval */
	/* From the cycle's coverage (SPEC §9), when it ran. */
	bool has_coverage;
	long long uncovered_columns;
};

/* After a cycle: read the database, render, write cfg->metrics_file. Does
 * nothing when metrics_file is not set; logs and returns false on failure
 * (the cycle's outcome does not change). AUDIT is the audit chain as the
 * cycle checked it (postcycle: 0 intact, 1 broken, -1 not known): the
 * metrics do not walk the chain again. */
bool metrics_write(PGconn *conn, const struct config *cfg,
		   const struct run_result *res,
		   const struct coverage_cycle *cov, int audit);

/* --- the parts, for unit tests -------------------------------------------- */

/* Read DB's numbers; false with *err set on failure. */
bool metrics_collect(PGconn *conn, const char *schema, struct metrics_db *db,
		     char **err) MUSTCHECK;
void metrics_db_free(struct metrics_db *db);

/* The text exposition of one cycle; NOW is the epoch time it ended. */
void metrics_render(struct strbuf *b, const struct run_result *res,
		    const struct metrics_db *db, double now);

/* Append VALUE escaped as a label value (without the quotes): backslash,
 * double quote and newline are escaped, as the text format requires. */
void metrics_escape_label(struct strbuf *b, const char *value);

/* Write TEXT to PATH atomically (temporary file, fsync, rename, fsync of
 * the directory); mode 0644, since the collector runs as another user. */
bool metrics_write_file(const char *path, const char *text, char **err)
	MUSTCHECK;

#endif
