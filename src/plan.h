/*
 * plan: a rule compiled, once per cycle, into the SQL it runs.
 *
 * Named fragments (eligible, expired, not held, unreferenced) are the
 * conditions every statement re-checks; the statements (the row batch,
 * the range bound and change of a range batch, the counts, the count
 * after the run, the audit insert) each carry their own parameter list:
 * parameter $n of a statement means one thing, named by enum plan_arg.
 *
 * The fragments' parameters (the cutoff, the rule's subject, an erasure's
 * subject id, the HMAC pads) come first, at the same numbers in every
 * statement that uses the fragments; each statement's own follow.
 *
 * Fail closed: a fragment that cannot be built fails the compile, naming
 * it; a rule never runs with a weaker condition.
 */
#ifndef RETENTIOND_PLAN_H
#define RETENTIOND_PLAN_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "config.h"
#include "db.h"
#include "deid.h"
#include "util.h"

#define PLAN_MAX_PARAMS 16

/* Expiry: rows older than the cutoff. Erasure: one subject's rows, of any
 * age, for a right-to-erasure request. */
enum plan_mode {
	PLAN_EXPIRY,
	PLAN_ERASURE
};

/* What a statement's parameter is. */
enum plan_arg {
	/* the fragments' */
	PA_CUTOFF,		/* timestamptz; NULL for an erasure */
	PA_SUBJECT,		/* text: the rule's subject (holds) */
	PA_SUBJECT_ID,		/* text: an erasure's subject id */
	PA_IPAD,		/* bytea: HMAC inner pad ("hash") */
	PA_OPAD,		/* bytea: HMAC outer pad */
	PA_HELD,		/* text[]: ids under a hold (Citus) */
	/* the statements' own */
	PA_LIMIT,		/* int8: rows in a batch */
	PA_FROM,		/* text: keyset lower bound on the age */
	PA_UPTO,		/* text: upper end (excluded) of a range batch */
	PA_SWEPT,		/* text: where the unswept changed ranges begin */
	PA_SWEPT_UPTO,		/* text: ... and end (excluded) */
	PA_LATE,		/* timestamptz: the compliance cutoff */
	PA_RUN,			/* int8 */
	PA_RULE,		/* text */
	PA_TARGET,		/* text: schema.table of the batch */
	PA_ACTION,		/* text: the audit row's action */
	PA_ROWS,		/* int8: the audit row's row count */
	PA_DETAIL		/* jsonb for actions.detail, or NULL */
};

struct plan_stmt {
	char *sql;
	int nparams;
	Oid types[PLAN_MAX_PARAMS];
	enum plan_arg args[PLAN_MAX_PARAMS];
};

/* The values for a statement's own parameters; unused ones stay NULL. */
struct plan_args {
	const char *cutoff;
	const char *limit;
	const char *from;
	const char *upto;
	const char *swept;
	const char *swept_upto;
	const char *late;
	const char *run;
	const char *target;
	const char *rows;
	const char *detail;
};

struct plan_target {
	char *name;		/* schema.table, for messages and the audit row */
	char *qname;		/* quoted */
	struct plan_stmt batch;	/* the row batch (SKIP LOCKED) */
	/* range batches (an age index on an expiry), else sql NULL */
	struct plan_stmt bound;	/* where the next LIMIT due rows end */
	struct plan_stmt range;	/* change them, up to an age */
	struct plan_stmt range_last;	/* ... to the end of what is due */
	char *swept;		/* where the ranges changed and not yet swept
				 * begin (they end where the next batch
				 * begins) */
	/* Citus: the next time slice's width, in seconds of age per row of
	 * the last slice (0: not measured yet) */
	double slice_per_row;
	/* a partition of a table range-partitioned on the age column: its
	 * lower bound, in seconds since 1970 (NaN: none, or not known) */
	double lower_epoch;
};

struct plan_citus;	/* plan_citus.h */

struct plan {
	const struct rule *rule;
	enum rule_action action;	/* DELETE or DEIDENTIFY */
	enum plan_mode mode;
	char *oid;		/* the rule's table */
	char relkind;		/* 'r' or 'p' */
	int age_attnum;
	char *qtable;		/* the rule's table, quoted */
	char *age_q;		/* t."age_column" */
	char *age_type;		/* date, timestamp or timestamptz */
	bool ordered;		/* an index on the age column: walk it */

	/* named fragments (alias t) */
	char *eligible;		/* expired, `where`, not yet done */
	char *expired;		/* the age condition alone; NULL for an
				 * erasure */
	char *not_held;		/* "true" when the rule has no subject */
	char *unreferenced;	/* "true", or: no row of a table whose
				 * foreign key does not cascade points here */
	char *cascades;		/* JSON array of tables ON DELETE CASCADE
				 * reaches, or NULL */
	char *set;		/* de-identify: the SET list */

	/* the fragments' parameters: $1.. in every statement using them */
	int nfrag;
	Oid frag_types[PLAN_MAX_PARAMS];
	enum plan_arg frag_args[PLAN_MAX_PARAMS];
	const char *subject_id;
	const char *rows;	/* an erasure's rows by subject_graph, or NULL:
				 * by the rule's subject_column */
	char ipad[DEID_PAD_HEX_LEN];
	char opad[DEID_PAD_HEX_LEN];

	/* statements on the whole table */
	struct plan_stmt count;		/* eligible, held, blocked */
	struct plan_stmt count_upto;	/* eligible, up to LIMIT */
	struct plan_stmt count_due;	/* eligible as of a cutoff */
	struct plan_stmt after;		/* after the run; expiry only */
	struct plan_stmt oldest;	/* the oldest row */
	struct plan_stmt audit;		/* a range batch's audit row */

	struct plan_target *targets;	/* leaf partitions, or the table */
	size_t n_targets;

	/* a Citus table (distributed, reference, citus-local): the other
	 * statement forms of plan_citus.c; NULL on a single server */
	struct plan_citus *citus;
};

/*
 * Read the catalog and compile RULE doing ACTION. For PLAN_ERASURE,
 * SUBJECT_ID selects the rows (kept by reference: it must outlive P).
 * Returns false with *err (naming the problem, not the rule).
 */
bool plan_compile(PGconn *conn, const struct config *cfg,
		  const struct rule *rule, enum rule_action action,
		  enum plan_mode mode, const char *subject_id, struct plan *p,
		  char **err) MUSTCHECK;

/* An erasure's parameter $n for the subject id, the one after the cutoff:
 * plan_compile_rows' ROWS must use it. */
#define PLAN_ERASURE_ID_PARAM 2

/*
 * plan_compile for an erasure whose rows are ROWS (a predicate on alias t,
 * the subject id as $PLAN_ERASURE_ID_PARAM; subject_graph's, which follows
 * foreign keys) instead of the rule's subject_column. ROWS and SUBJECT_ID
 * must outlive P.
 */
bool plan_compile_rows(PGconn *conn, const struct config *cfg,
		       const struct rule *rule, enum rule_action action,
		       const char *subject_id, const char *rows,
		       struct plan *p, char **err) MUSTCHECK;

/* Look up the leaf tables again (after partitions were dropped). */
bool plan_reload_targets(PGconn *conn, const struct config *cfg,
			 struct plan *p, char **err) MUSTCHECK;
void plan_release(struct plan *p);

/* Run statement ST of P with A's values for its own parameters; the
 * result (caller PQclear) or NULL with *err and *class. */
PGresult *plan_exec(PGconn *conn, const struct plan *p,
		    const struct plan_stmt *st, const struct plan_args *a,
		    enum db_errclass *class, char **err) MUSTCHECK;

/* Send statement ST like plan_exec, without waiting for its result
 * (PQgetResult). False when it could not be sent, or when it needs work
 * first that only plan_exec does (Citus holds). */
bool plan_send(PGconn *conn, const struct plan *p, const struct plan_stmt *st,
	       const struct plan_args *a) MUSTCHECK;

/* Run SQL that uses only the fragments (and their parameters). */
PGresult *plan_exec_sql(PGconn *conn, const struct plan *p, const char *sql,
			const char *cutoff, char **err) MUSTCHECK;

#endif
