/*
 * summary: a cycle's results as runs.summary (JSON), which the report
 * reads back (report_load.c) for runs of the past. The keys are named
 * once, here, for both sides; report_load refuses a rule without one of
 * SUMMARY_RULE_KEYS rather than read it as 0, and tests/unit/test_summary.c
 * checks the engine writes every one with its value.
 */
#ifndef RETENTIOND_SUMMARY_H
#define RETENTIOND_SUMMARY_H

#include "engine.h"
#include "util.h"

#define SUMMARY_RULE "rule"
#define SUMMARY_POLICY "policy"
#define SUMMARY_TABLE "table"
#define SUMMARY_ACTION "action"
#define SUMMARY_RETAIN "retain"
#define SUMMARY_COMPLIANT "compliant"
#define SUMMARY_OVERDUE "overdue"
#define SUMMARY_TABLE_ROWS "table_rows"
#define SUMMARY_OUTCOME "outcome"
#define SUMMARY_CUTOFF "cutoff"
#define SUMMARY_PARTITIONS "partitions"
#define SUMMARY_ELIGIBLE "eligible"
#define SUMMARY_HELD "held"
#define SUMMARY_BLOCKED "blocked"
#define SUMMARY_CHANGED "changed"
#define SUMMARY_BATCHES "batches"
#define SUMMARY_LONGEST_BATCH_MS "longest_batch_ms"
#define SUMMARY_OLDEST "oldest"
#define SUMMARY_MESSAGE "message"
/* optional: runs before max_replica_lag existed do not have it */
#define SUMMARY_LAG_WAIT "lag_wait_seconds"

/* The keys of a rule the report reads, as X(key) for each. */
#define SUMMARY_RULE_KEYS(X) \
	X(SUMMARY_RULE) X(SUMMARY_POLICY) X(SUMMARY_TABLE) X(SUMMARY_ACTION) \
	X(SUMMARY_RETAIN) X(SUMMARY_OUTCOME) X(SUMMARY_CUTOFF) \
	X(SUMMARY_OLDEST) X(SUMMARY_MESSAGE) X(SUMMARY_CHANGED) \
	X(SUMMARY_HELD) X(SUMMARY_BLOCKED) X(SUMMARY_ELIGIBLE) \
	X(SUMMARY_OVERDUE) X(SUMMARY_TABLE_ROWS) X(SUMMARY_COMPLIANT)

/* The run's summary (malloc'd). */
char *summary_json(const struct run_result *out) MUSTCHECK;

#endif
