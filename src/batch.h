/*
 * batch: the SQL one rule runs, and one batch of it.
 *
 * A batch is a single statement, so a single short transaction: it picks up
 * to LIMIT expired rows with FOR UPDATE SKIP LOCKED (rows another session
 * has locked are left for the next cycle, never waited on), deletes or
 * updates them re-checking age, `where` and legal holds, and inserts the
 * `actions` audit row in the same statement, so the audit row exists if and
 * only if the change does.
 */
#ifndef RETENTIOND_BATCH_H
#define RETENTIOND_BATCH_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "config.h"
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
	P_FIXED = P_DETAIL
};
#define BATCH_MAX_PARAMS 12

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
	char *not_held;		/* NULL when the rule has no subject */
	char *unreferenced;	/* NULL, or: no row of a table whose foreign
				 * key does not cascade still points here */
	char *cascades;		/* JSON array of tables ON DELETE CASCADE
				 * reaches, or NULL */
	bool ordered;		/* an index on the age column: walk it */
	char *set;		/* de-identify: the SET list */
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

/* The oldest row still in the table (NULL when empty). */
bool batch_oldest(PGconn *conn, struct rule_sql *rs, char **oldest,
		  char **err) MUSTCHECK;

struct batch_outcome {
	long long picked;	/* rows selected and locked */
	long long changed;	/* rows deleted or updated */
	char *last_age;		/* largest age value picked, for the keyset */
	char sqlstate[6];	/* on failure */
};

/*
 * Run one batch on TARGET. FROM is the keyset lower bound ("-infinity" at
 * first). Returns false with *err and out->sqlstate on failure; nothing
 * was changed then.
 */
bool batch_run(PGconn *conn, struct rule_sql *rs, size_t target,
	       const char *cutoff, long long limit, const char *from,
	       long long run_id, const char *detail_json,
	       struct batch_outcome *out, char **err) MUSTCHECK;

#endif
