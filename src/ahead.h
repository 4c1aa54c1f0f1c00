/*
 * ahead: the next range batch's bound, read over a second connection
 * while this batch changes its rows.
 *
 * A range batch (batch.h) first reads where the next LIMIT due rows end
 * (a walk along the age index, plus a sweep of the ranges changed since
 * the last one), then changes that range. The read is a quarter of a
 * batch's time on a backlog of a million rows (bench/README.md, issue
 * 20); it only reads rows past the range being changed, so it can run at
 * the same time on another connection, where a second core is free. The
 * batch after uses that bound when it starts where the read started, and
 * is no bigger than the driver's size for it now; otherwise (a batch
 * redone row by row, a switch to short batches while others write) the
 * read is thrown away and the batch reads its bound itself.
 *
 * Nothing about safety rests on the bound: every range statement re-checks
 * the age, `where` and holds when it runs, so a bound read a moment
 * earlier only decides how many rows the batch takes. The second
 * connection is an optimization: when it cannot be had, or a read on it
 * fails, batches read their own bounds as before.
 */
#ifndef RETENTIOND_AHEAD_H
#define RETENTIOND_AHEAD_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"
#include "plan.h"
#include "second.h"

/* A read of where a range batch ends. */
struct ahead_bound {
	char *first;		/* the first due age; NULL: nothing is due */
	char *limit_age;	/* the LIMIT-th; NULL: fewer are due */
};

struct ahead {
	struct second second;
	/* the read in flight (sent) or done (have) */
	bool sent, have;
	const struct plan_target *target;
	char *from;		/* where it starts */
	char *swept_upto;	/* what it swept ends here */
	long long limit;
	struct ahead_bound bound;
};

void ahead_init(struct ahead *ah, const struct config *cfg);

/* More than one batch is coming: start opening the second connection,
 * so that it is ready for the next one. */
void ahead_prepare(struct ahead *ah);

/* Send the bound of the batch after this one: LIMIT rows from FROM, and
 * sweep [SWEPT, SWEPT_UPTO). False when it was not sent (no connection). */
bool ahead_send(struct ahead *ah, const struct plan *p,
		const struct plan_target *t, const char *cutoff,
		const char *from, long long limit, const char *swept,
		const char *swept_upto);

/* The bound read ahead for a batch of T from FROM of at most LIMIT rows:
 * true with *out (caller ahead_bound_free) and *SWEPT_UPTO (the caller's,
 * malloc'd) when there is one; false otherwise, the read then dropped. */
bool ahead_take(struct ahead *ah, const struct plan_target *t,
		const char *from, long long limit, struct ahead_bound *out,
		long long *used_limit, char **swept_upto);

/* Wait for the read in flight to end, keeping its result for
 * ahead_take. The batch calls this before its pause, so that the pause's
 * watch for others' WAL (busy.h) never sees the read's own: its sweep
 * marks index entries dead and prunes pages, which is logged. */
void ahead_wait(struct ahead *ah);

/* Drop a read in flight (cancelled) or done. */
void ahead_drop(struct ahead *ah);

void ahead_bound_free(struct ahead_bound *b);

/* Close the second connection, cancelling whatever it still runs. */
void ahead_close(struct ahead *ah);

#endif
