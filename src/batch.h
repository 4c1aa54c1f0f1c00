/*
 * batch: the SQL one rule runs, and one batch of it.
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

#include "catalog.h"
#include "config.h"
#include "db.h"
#include "deid.h"
#include "util.h"

/* Parameters every statement of a rule shares; more follow (subject, HMAC
 * pads, erasure subject id) at the numbers recorded in struct rule_sql. */
enum {
	P_CUTOFF = 1,		/* timestamptz; NULL for an erasure */
	P_LIMIT,		/* int8 */
	P_FROM,			/* text: keyset lower bound on the age column */
	P_RUN,			/* int8 */
	P_RULE,			/* text */
	P_TARGET,		/* text */
	P_DETAIL,		/* jsonb for actions.detail, or NULL */
	P_UPTO,			/* text: upper end of a range batch */
	P_FIXED = P_UPTO
};
#define BATCH_MAX_PARAMS 16

/* Expiry: rows older than the cutoff. Erasure: one subject's rows, of any
 * age, for a right-to-erasure request. */
enum batch_mode {
	BATCH_EXPIRY,
	BATCH_ERASURE
};

struct batch_target {
	char *name;		/* schema.table, for messages and the audit row */
	char *qname;		/* quoted */
	char *stmt;		/* the batch statement for this target */
	char *bound;		/* batch_run_range's statements, or NULL */
	char *range;		/* ... up to an age */
	char *range_last;	/* ... to the end of what is due */
	char *swept;		/* where the last range batch began */
};

struct rule_sql {
	const struct rule *rule;
	enum rule_action action;	/* DELETE or DEIDENTIFY */
	enum batch_mode mode;
	char *oid;		/* the rule's table */
	char relkind;		/* 'r' or 'p' */
	int age_attnum;
	char *qtable;		/* the rule's table, quoted */
	char *age_q;		/* t."age_column" */
	char *age_type;		/* date, timestamp or timestamptz */
	char *eligible;		/* expired, `where`, not yet done: alias t */
	char *expired;		/* the age condition of eligible alone; NULL
				 * for an erasure */
	char *not_held;		/* NULL when the rule has no subject */
	char *unreferenced;	/* NULL, or: no row of a table whose foreign
				 * key does not cascade still points here */
	char *cascades;		/* JSON array of tables ON DELETE CASCADE
				 * reaches, or NULL */
	bool ordered;		/* an index on the age column: walk it */
	char *set;		/* de-identify: the SET list */
	char *audit;		/* batch_run_range's audit INSERT */
	struct batch_target *targets;	/* leaf partitions, or the table */
	size_t n_targets;

	int nparams;
	Oid types[BATCH_MAX_PARAMS];
	const char *values[BATCH_MAX_PARAMS];
	char ipad[DEID_PAD_HEX_LEN];
	char opad[DEID_PAD_HEX_LEN];
};

/*
 * Read the catalog and build every statement for RULE doing ACTION. For
 * BATCH_ERASURE, SUBJECT_ID selects the rows (kept by reference: it must
 * outlive RS). Returns false with *err (naming the problem, not the rule).
 */
bool batch_prepare(PGconn *conn, const struct config *cfg,
		   const struct rule *rule, enum rule_action action,
		   enum batch_mode mode, const char *subject_id,
		   struct rule_sql *rs, char **err) MUSTCHECK;

/* Look up the leaf tables again (after partitions were dropped). */
bool batch_reload_targets(PGconn *conn, const struct config *cfg,
			  struct rule_sql *rs, char **err) MUSTCHECK;
void batch_release(struct rule_sql *rs);

/* Run SQL with the rule's parameters (set them first with
 * batch_set_fixed); NULL with *err on failure. */
PGresult *batch_exec(PGconn *conn, struct rule_sql *rs, const char *sql,
		     char **err) MUSTCHECK;
/* Set the cutoff and clear the per-batch parameters. */
void batch_set_fixed(struct rule_sql *rs, const char *cutoff);

/* Counts for `plan`, the guards and the report, as of CUTOFF. */
struct batch_counts {
	long long eligible;	/* rows the rule would change now */
	long long held;		/* due rows kept by a legal hold */
	long long blocked;	/* due rows still referenced */
};

bool batch_count(PGconn *conn, struct rule_sql *rs, const char *cutoff,
		 struct batch_counts *out, char **err) MUSTCHECK;

/* Rows in the table: exact for small tables, else the planner's estimate. */
bool batch_table_rows(PGconn *conn, struct rule_sql *rs, long long *rows,
		      char **err) MUSTCHECK;

/* Rows due as of CUTOFF, held or not: for the compliance verdict. */
bool batch_count_due(PGconn *conn, struct rule_sql *rs, const char *cutoff,
		     long long *due, char **err) MUSTCHECK;

/* After a run, in one pass over the rows older than the cutoff: what is
 * left due, held and blocked, how many rows are due as of LATE (held or
 * not: the compliance verdict), and the oldest row of the table. */
struct batch_after {
	struct batch_counts counts;
	long long overdue;
	char *oldest;		/* NULL when the table is empty */
};

bool batch_after(PGconn *conn, struct rule_sql *rs, const char *cutoff,
		 const char *late, struct batch_after *out, char **err) MUSTCHECK;

/* The oldest row still in the table (NULL when empty). */
bool batch_oldest(PGconn *conn, struct rule_sql *rs, char **oldest,
		  char **err) MUSTCHECK;

struct batch_outcome {
	long long picked;	/* rows selected and locked */
	long long changed;	/* rows deleted or updated */
	char *last_age;		/* largest age value picked, for the keyset */
	bool last;		/* nothing due is left past this batch */
	bool tied;		/* batch_run_range: the next LIMIT rows all
				 * have one age, so none was changed */
	enum db_errclass errclass;	/* on failure */
};

/*
 * Run one batch on TARGET. FROM is the keyset lower bound ("-infinity" at
 * first). Returns false with *err and out->errclass on failure; nothing
 * was changed then.
 */
bool batch_run(PGconn *conn, struct rule_sql *rs, size_t target,
	       const char *cutoff, long long limit, const char *from,
	       long long run_id, const char *detail_json,
	       struct batch_outcome *out, char **err) MUSTCHECK;

/*
 * The same batch, when targets[TARGET].range is set, by age range instead
 * of by row: no lock step, so about half the work of batch_run per row. It
 * waits for a row someone else has locked (bound the wait with a short
 * lock_timeout, then redo the batch with batch_run, which skips it), and
 * changes nothing when all LIMIT rows picked share one age (out->tied: use
 * batch_run for that batch).
 */
bool batch_run_range(PGconn *conn, struct rule_sql *rs, size_t target,
		     const char *cutoff, long long limit, const char *from,
		     long long run_id, const char *detail_json,
		     struct batch_outcome *out, char **err) MUSTCHECK;

/* Due rows as of CUTOFF that the rule would change now, counting no
 * further than AT_MOST (a guard needs no more). */
bool batch_count_upto(PGconn *conn, struct rule_sql *rs, const char *cutoff,
		      long long at_most, long long *n, char **err) MUSTCHECK;

#endif
