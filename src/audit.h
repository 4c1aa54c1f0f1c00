/*
 * audit: the hash-chained audit trail (the `actions` table, SPEC §4).
 *
 * Each row's hash = SHA-256 over the previous row's hash (64 hex digits; 64
 * zeros before the first row) followed by the row's canonical text: a JSON
 * array of its columns with timestamps in UTC (sql/001_init.sql,
 * action_canonical). A BEFORE INSERT trigger computes both hashes and
 * advances the one-row audit_head table, holding its row lock until the
 * writer commits; UPDATE, DELETE and TRUNCATE are refused by triggers.
 *
 * Writing: insert into actions any way you like -- audit_append() below, or
 * an INSERT inside a bigger statement (e.g. a CTE whose DELETE ... RETURNING
 * feeds the count) -- in the same transaction as the change it records. The
 * trigger does the chaining either way; leave id, prev_hash and hash out.
 * Because the trigger locks audit_head until commit, insert the audit row
 * last in the transaction and commit soon after.
 *
 * Checking: audit_verify() walks the chain in C, with its own copy of the
 * canonical expression, so a replaced database function cannot hide a
 * change. What no hash chain can catch: someone who can bypass the
 * triggers and rewrites every row after a change and the head as well;
 * compare the head hash with one recorded elsewhere (reports, mail).
 */
#ifndef RETENTIOND_AUDIT_H
#define RETENTIOND_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "sha256.h"
#include "util.h"

/* prev_hash of the first action. */
#define AUDIT_GENESIS_HASH \
	"0000000000000000000000000000000000000000000000000000000000000000"

struct audit_verify_result {
	long long n_rows;	/* rows checked (up to the break) */
	long long first_bad_id;	/* 0 when intact */
	char reason[256];	/* why the chain is broken; "" when intact */
	char last_hash[SHA256_HEX_LEN];	/* hash of the last good row */
	long long last_id;	/* id of the last good row; 0: none */
};

/*
 * Check the whole chain in one consistent snapshot, reading the rows in
 * pages. Returns 0 when intact, 1 when broken (result says where and why),
 * -1 on a database error (*err set, malloc'd). Must be called outside a
 * transaction; it runs its own read-only one.
 */
int audit_verify(PGconn *conn, const char *schema,
		 struct audit_verify_result *result, char **err) MUSTCHECK;

/*
 * The same check from a link known to be good (the head the ledger
 * recorded after an earlier check): row FROM_ID must still carry
 * FROM_HASH and hash to it, then only the rows after it are walked, so
 * the cost follows what was appended since, not the length of the trail.
 * result->n_rows counts those rows only. Returns as audit_verify, or
 * AUDIT_FROM_GONE when row FROM_ID is missing or changed (a restore, or
 * tampering: check every row instead).
 */
#define AUDIT_FROM_GONE 2
int audit_verify_from(PGconn *conn, const char *schema, long long from_id,
		      const char *from_hash, struct audit_verify_result *result,
		      char **err) MUSTCHECK;

/*
 * Append one action, inside the caller's transaction. cutoff,
 * started_at and finished_at are timestamptz literals (cutoff may be
 * NULL); detail_json may be NULL. Returns false with *err set.
 */
bool audit_append(PGconn *conn, const char *schema, long long run_id,
		  const char *rule, const char *target, const char *action,
		  const char *cutoff, long long rows, const char *started_at,
		  const char *finished_at, const char *detail_json,
		  char **err) MUSTCHECK;

/* One link: lower-case hex SHA-256 of PREV_HEX (as text) followed by the
 * LEN bytes of CANONICAL (UTF-8). */
void audit_chain_hash(const char *prev_hex, const void *canonical, size_t len,
		      char out[SHA256_HEX_LEN]);

#endif
