/*
 * hold: legal holds (the `legal_holds` table). While a hold on SUBJECT:ID
 * is neither released nor expired, no rule and no erasure touches rows of
 * that subject; the engine enforces it with hold_sql_not_held() in every
 * DELETE and UPDATE it runs.
 */
#ifndef RETENTIOND_HOLD_H
#define RETENTIOND_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "util.h"

enum hold_state {
	HOLD_ACTIVE,
	HOLD_EXPIRED,
	HOLD_RELEASED
};

struct hold {
	long long id;
	char *subject;
	char *subject_id;
	char *reason;
	char *placed_by;
	char *placed_at;	/* timestamps as PostgreSQL prints them */
	char *expires_at;	/* NULL: until released */
	char *released_at;	/* NULL unless released */
	char *released_by;
	enum hold_state state;
};

enum hold_result {
	HOLD_OK,
	HOLD_BAD_INPUT,		/* e.g. --until not a date or in the past */
	HOLD_NOT_FOUND,
	HOLD_ALREADY_RELEASED,
	HOLD_DB_ERROR
};

const char *hold_state_name(enum hold_state s);

/*
 * Split "SUBJECT:ID" at the first ':'. SUBJECT is [A-Za-z0-9_.-]+, ID any
 * non-empty text without control characters. On success *subject and
 * *subject_id are malloc'd; on failure *err is a static message.
 */
bool hold_parse_target(const char *arg, char **subject, char **subject_id,
		       const char **err) MUSTCHECK;

/*
 * The condition the engine adds to its DELETE/UPDATE so held rows are left
 * alone, e.g. for subject_param "$3" and row_subject_expr t."customer_id":
 *   NOT EXISTS (SELECT 1 FROM "retention".legal_holds h
 *     WHERE h.subject = $3 AND h.subject_id = (t."customer_id")::text
 *     AND h.released_at IS NULL
 *     AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now()))
 * row_subject_expr must already be quoted. malloc'd; NULL with *err when
 * it cannot be built (the schema name cannot be quoted): the caller must
 * then fail, never go on without the condition.
 *
 * Test seam: with RETENTIOND_INJECT_FAULT=hold_condition in the
 * environment it always fails, so a test can show that a rule whose hold
 * condition cannot be built touches nothing. It can only make things fail.
 */
char *hold_sql_not_held(PGconn *conn, const char *schema,
			const char *subject_param,
			const char *row_subject_expr, char **err) MUSTCHECK;

/*
 * On a distributed table (Citus) the correlated subquery above cannot
 * join the coordinator's legal_holds: the SQL of one query, SUBJECT_PARAM
 * its only parameter, returning the ids under an active hold for that
 * subject as one text[] literal ('{}' for none), which the batch passes
 * as a parameter instead.
 */
char *hold_sql_held_ids(PGconn *conn, const char *schema,
			const char *subject_param, char **err);

/*
 * Place a hold. until may be NULL (no expiry); it is parsed by PostgreSQL
 * and must lie in the future (HOLD_BAD_INPUT otherwise, with *err saying
 * why). On HOLD_OK, *id is the new hold's id and *expires_at (when until
 * was given) the expiry as PostgreSQL prints it, malloc'd.
 */
enum hold_result hold_add(PGconn *conn, const char *schema,
			  const char *subject, const char *subject_id,
			  const char *reason, const char *until,
			  const char *placed_by, long long *id,
			  char **expires_at, char **err) MUSTCHECK;

/* Release hold ID. HOLD_NOT_FOUND / HOLD_ALREADY_RELEASED set *err too. */
enum hold_result hold_release(PGconn *conn, const char *schema, long long id,
			      const char *released_by, struct hold *released,
			      char **err) MUSTCHECK;

/* Active holds (all holds when ALL), oldest first. *holds is malloc'd. */
bool hold_list(PGconn *conn, const char *schema, bool all,
	       struct hold **holds, size_t *n, char **err) MUSTCHECK;

void hold_free(struct hold *h);
void hold_free_list(struct hold *holds, size_t n);

/* "user@host" of whoever runs this: $SUDO_USER, else the effective user. */
char *hold_actor(void);

#endif
