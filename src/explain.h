/*
 * explain: why rows older than a rule's cutoff are still there, in numbers
 * and in words an auditor reads without knowing SQL.
 *
 * An old row that remains has one of these reasons: the rule's `where`
 * keeps it, it was de-identified already (a de-identify rule keeps the
 * row), a legal hold keeps it, rows of another table still refer to it, or
 * it is due and the cycle did not get to it (max_runtime, a lock timeout,
 * a stop, a failure). explain_load() counts them after the run, from the
 * report side, with the same conditions the engine's batches use
 * (plan_compile); the engine could record them in runs.summary instead,
 * which would also make a later report show the state at the run's end.
 *
 * Personal data never leaves the database here: the counts, the `where`
 * text from the config, hold ids and table names are all that is read.
 */
#ifndef RETENTIOND_EXPLAIN_H
#define RETENTIOND_EXPLAIN_H

#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "report.h"

/* Hold ids named per rule; more are counted ("and 3 more"). */
#define EXPLAIN_MAX_IDS 20

/*
 * Count, for each rule of R that the config still has and whose run
 * recorded a cutoff, why its rows older than the cutoff remain. Runs in
 * the caller's transaction (a savepoint per rule): a rule that cannot be
 * counted gets why.error and the others go on.
 */
void explain_load(PGconn *conn, const struct config *cfg, struct report *r);

/*
 * The explanation as sentences: the first is the verdict line
 * ("compliant: 19 rows older than 7 years are kept because the rule only
 * applies where status <> 'disputed'"), the others one per further reason.
 * *n lines, each malloc'd, in a malloc'd array (free with explain_lines_free).
 */
char **explain_lines(const struct report_rule *rr, size_t *n);
void explain_lines_free(char **lines, size_t n);

void explain_free(struct report_explain *e);

#endif
