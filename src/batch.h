/*
 * batch: one batch of a compiled rule (plan.h).
 *
 * A batch is one short transaction that changes up to LIMIT rows and
 * inserts the `actions` audit row, so the audit row exists if and only if
 * the change does. Every batch re-checks age, `where` and legal holds in
 * its DELETE or UPDATE.
 *
 * batch_run is a single statement: it picks rows with FOR UPDATE SKIP
 * LOCKED (rows another session has locked are left for the next cycle,
 * never waited on) and changes them by ctid. batch_run_range, for expiry
 * along an age index, finds where the next LIMIT due rows end and changes
 * that age range in one pass, without the lock step; it is the common
 * case, and falls back to batch_run for a batch that meets a locked row.
 */
#ifndef RETENTIOND_BATCH_H
#define RETENTIOND_BATCH_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "db.h"
#include "plan.h"
#include "util.h"

struct batch_outcome {
	long long picked;	/* rows selected and locked */
	long long changed;	/* rows deleted or updated */
	char *last_age;		/* largest age value picked, for the keyset */
	bool last;		/* nothing due is left past this batch */
	bool tied;		/* batch_run_range: the next LIMIT rows all
				 * have one age, so none was changed */
	bool ahead;		/* batch_run_range: its bound was read ahead */
	enum db_errclass errclass;	/* on failure */
};

/*
 * Run one batch on TARGET. FROM is the keyset lower bound ("-infinity" at
 * first). Returns false with *err and out->errclass on failure; nothing
 * was changed then.
 */
bool batch_run(PGconn *conn, struct plan *p, size_t target,
	       const char *cutoff, long long limit, const char *from,
	       long long run_id, const char *detail_json,
	       struct batch_outcome *out, char **err) MUSTCHECK;

/*
 * The same batch, when targets[TARGET].range is compiled, by age range
 * instead of by row: no lock step, so about half the work of batch_run per
 * row. It waits for a row someone else has locked (bound the wait with a
 * short lock_timeout, then redo the batch with batch_run, which skips it),
 * and changes nothing when all LIMIT rows picked share one age (out->tied:
 * use batch_run for that batch). With AH (else NULL), the next batch's
 * bound is read on a second connection while this batch runs (ahead.h);
 * the batch may then take fewer than LIMIT rows (out->picked).
 */
struct ahead;
bool batch_run_range(PGconn *conn, struct plan *p, size_t target,
		     const char *cutoff, long long limit, const char *from,
		     long long run_id, const char *detail_json,
		     struct ahead *ah, struct batch_outcome *out,
		     char **err) MUSTCHECK;

#endif
