/*
 * busy: whether other sessions are writing to the database server, judged
 * from the write-ahead log they write while retentiond pauses between
 * batches.
 *
 * Every commit must wait until the WAL written before it is on disk. A
 * retentiond batch writes WAL fast (mostly full-page images), so a commit
 * of the application that falls into a batch waits for the batch's WAL
 * too. While others write, retentiond therefore makes its batches short
 * and flushes each at its own commit (engine.c); alone, it runs at full
 * speed. The WAL insert position is readable by any role, so this needs
 * no privilege, unlike pg_stat_activity.
 *
 * Pure arithmetic on readings the caller passes in, unit-tested.
 */
#ifndef RETENTIOND_BUSY_H
#define RETENTIOND_BUSY_H

#include <stdbool.h>

/* More WAL than this in one pause is someone else's work: retentiond
 * itself writes nothing between its commit and its next batch, and the
 * server's own records (a running-transactions snapshot every 15 s) are
 * smaller. One small application transaction writes several hundred. */
#define BUSY_WAL_BYTES 256LL

/* Once others were seen writing, stay gentle this long: a pause catches
 * only part of their commits, so one quiet pause proves little. */
#define BUSY_HOLD_MS 2000.0

/* Batches while others write never go below this many rows (or the
 * configured batch_size, if smaller): the size of a framework's "in
 * batches" loop, gentle on others and not dominated by commit costs. */
#define BUSY_MIN_ROWS 1000LL

struct busy {
	double until_ms;	/* monotonic; busy before this time */
	bool seen;		/* ever busy */
};

/* Others wrote BYTES of WAL in a pause that ended at NOW_MS (monotonic).
 * Returns whether retentiond should be gentle now. */
bool busy_observe(struct busy *b, long long bytes, double now_ms);

/* Whether retentiond should be gentle at NOW_MS. */
bool busy_now(const struct busy *b, double now_ms);

#endif
