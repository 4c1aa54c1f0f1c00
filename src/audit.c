#include "audit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/*
 * The same expression as action_canonical() in sql/001_init.sql; verify
 * uses this copy so that replacing the database function cannot make a
 * changed row look intact. Keep the two identical.
 */
#define AUDIT_TS(col) \
	"pg_catalog.to_char(a." col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define AUDIT_CANONICAL_SQL \
	"pg_catalog.json_build_array(a.id, a.run_id, a.rule, a.target, " \
	"a.action, " AUDIT_TS("cutoff") ", a.rows, " AUDIT_TS("started_at") \
	", " AUDIT_TS("finished_at") ", a.detail)::text"

/* Rows per page: memory stays flat however long the trail is. */
#define VERIFY_PAGE "1000"

void
audit_chain_hash(const char *prev_hex, const void *canonical, size_t len,
		 char out[SHA256_HEX_LEN])
{
	struct sha256_ctx ctx;
	unsigned char digest[SHA256_DIGEST_LEN];

	sha256_init(&ctx);
	sha256_update(&ctx, prev_hex, strlen(prev_hex));
	sha256_update(&ctx, canonical, len);
	sha256_final(&ctx, digest);
	sha256_hex(digest, out);
}

/* A stored hash for a message: the first 16 characters, only if they are
 * alphanumeric (a forged value could hold anything). */
static void
hash_prefix(const char *h, char out[20])
{
	size_t i;
	for (i = 0; i < 16 && h[i]; i++) {
		if (!isalnum((unsigned char)h[i])) {
			snprintf(out, 20, "(not a hash)");
			return;
		}
		out[i] = h[i];
	}
	out[i] = '\0';
	if (h[i])
		strcat(out, "...");
}

struct walk {
	bool have_head;
	bool head_has_id;
	long long head_id;
	char head_hash[SHA256_HEX_LEN];
	long long last_id;	/* of the last good row; 0 before the first */
	bool any;
	char expect[SHA256_HEX_LEN];	/* prev_hash the next row must carry */
};

static int
broken(struct audit_verify_result *r, long long id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
broken(struct audit_verify_result *r, long long id, const char *fmt, ...)
{
	va_list ap;
	r->first_bad_id = id;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	return 1;
}

/* Check one row; 0 when it is a good next link, 1 when broken. */
static int
check_row(struct walk *w, struct audit_verify_result *r, long long id,
	  const char *prev_hash, const char *hash, const char *canon,
	  size_t canon_len)
{
	char computed[SHA256_HEX_LEN], a[20], b[20];

	if (w->have_head && (!w->head_has_id || id > w->head_id)) {
		if (w->head_has_id)
			return broken(r, id, "the row is not in the chain: the "
				      "audit head ends at action %lld, so it "
				      "was inserted with the audit trigger "
				      "bypassed", w->head_id);
		return broken(r, id, "the row is not in the chain: the audit "
			      "head says the trail is empty, so it was "
			      "inserted with the audit trigger bypassed");
	}
	audit_chain_hash(prev_hash, canon, canon_len, computed);
	if (strcmp(computed, hash) != 0) {
		hash_prefix(hash, a);
		hash_prefix(computed, b);
		return broken(r, id, "row was changed: stored hash %s does not "
			      "match its content, which hashes to %s", a, b);
	}
	if (strcmp(prev_hash, w->expect) != 0) {
		if (!w->any)
			return broken(r, id, "previous hash is not the start of "
				      "the chain (the rows before it were "
				      "deleted)");
		return broken(r, id, "previous hash does not match action %lld "
			      "(a row before it was deleted or changed)",
			      w->last_id);
	}
	snprintf(w->expect, sizeof(w->expect), "%s", hash);
	w->last_id = id;
	r->last_id = id;
	w->any = true;
	r->n_rows++;
	snprintf(r->last_hash, sizeof(r->last_hash), "%s", hash);
	return 0;
}

static int
check_head(const struct walk *w, struct audit_verify_result *r)
{
	if (!w->have_head)
		return broken(r, w->last_id, "the audit head row is missing");
	if (w->head_has_id && (!w->any || w->head_id > w->last_id)) {
		if (!w->any)
			return broken(r, w->head_id, "the newest actions were "
				      "deleted: head says %lld but there are "
				      "no rows", w->head_id);
		return broken(r, w->head_id, "the newest actions were deleted: "
			      "head says %lld but the last row is %lld",
			      w->head_id, w->last_id);
	}
	if (strcmp(w->head_hash, w->expect) != 0) {
		if (w->any)
			return broken(r, w->last_id, "the audit head's hash does "
				      "not match action %lld (the head or "
				      "the row was changed)", w->last_id);
		return broken(r, 0, "the audit head was changed: the trail is "
			      "empty but the head hash is not the start of "
			      "the chain");
	}
	return 0;
}

static bool
load_head(PGconn *conn, const char *qschema, struct walk *w, char **err)
{
	char *sql = xasprintf("SELECT last_id, hash FROM %s.audit_head", qschema);
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	free(sql);
	if (!res)
		return false;
	w->have_head = PQntuples(res) > 0;
	if (w->have_head) {
		w->head_has_id = !PQgetisnull(res, 0, 0);
		if (w->head_has_id)
			w->head_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(w->head_hash, sizeof(w->head_hash), "%s",
			 PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return true;
}

/* Walk the rows page by page; 0 intact so far, 1 broken, -1 error. */
static int
walk_rows(PGconn *conn, const char *qschema, long long after_id,
	  struct walk *w, struct audit_verify_result *r, char **err)
{
	/* Binary results: the canonical text arrives as the exact UTF-8
	 * bytes the trigger hashed, whatever client_encoding is. */
	char *sql = xasprintf(
		"SELECT a.id::text, a.prev_hash, a.hash,"
		" pg_catalog.convert_to(" AUDIT_CANONICAL_SQL ", 'UTF8')"
		" FROM %s.actions a WHERE a.id > $1::bigint"
		" ORDER BY a.id LIMIT " VERIFY_PAGE, qschema);
	char after[32];
	int status = 0;

	snprintf(after, sizeof(after), "%lld", after_id);
	while (status == 0) {
		const char *p[] = { after };
		PGresult *res = PQexecParams(conn, sql, 1, NULL, p, NULL, NULL, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			char *e = db_error(conn, res);
			*err = xasprintf("could not read the audit trail: %s", e);
			free(e);
			PQclear(res);
			status = -1;
			break;
		}
		int n = PQntuples(res);
		for (int i = 0; i < n && status == 0; i++) {
			long long id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
			status = check_row(w, r, id, PQgetvalue(res, i, 1),
					   PQgetvalue(res, i, 2),
					   PQgetvalue(res, i, 3),
					   (size_t)PQgetlength(res, i, 3));
			snprintf(after, sizeof(after), "%lld", id);
		}
		PQclear(res);
		if (n == 0)
			break;
	}
	free(sql);
	return status;
}

/* Does row FROM_ID still carry FROM_HASH, and hash to it? 1 yes, 0 no,
 * -1 error. */
static int
from_row_intact(PGconn *conn, const char *qschema, long long from_id,
		const char *from_hash, char **err)
{
	char *sql = xasprintf(
		"SELECT a.prev_hash, a.hash,"
		" pg_catalog.convert_to(" AUDIT_CANONICAL_SQL ", 'UTF8')"
		" FROM %s.actions a WHERE a.id = $1::bigint", qschema);
	char id[32], computed[SHA256_HEX_LEN];
	snprintf(id, sizeof(id), "%lld", from_id);
	const char *p[] = { id };
	PGresult *res = PQexecParams(conn, sql, 1, NULL, p, NULL, NULL, 1);
	free(sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = db_error(conn, res);
		*err = xasprintf("could not read the audit trail: %s", e);
		free(e);
		PQclear(res);
		return -1;
	}
	int ok = 0;
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), from_hash) == 0) {
		audit_chain_hash(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2),
				 (size_t)PQgetlength(res, 0, 2), computed);
		ok = strcmp(computed, from_hash) == 0;
	}
	PQclear(res);
	return ok;
}

/*
 * The walk both checks share, in one snapshot: from the first row
 * (FROM_HASH NULL), or from row FROM_ID, which must still carry
 * FROM_HASH (else AUDIT_FROM_GONE).
 */
static int
verify(PGconn *conn, const char *schema, long long from_id,
       const char *from_hash, struct audit_verify_result *r, char **err)
{
	struct walk w;
	char *e = NULL;
	int status;

	memset(r, 0, sizeof(*r));
	memset(&w, 0, sizeof(w));
	/* a known-good link stands for every row up to it */
	const char *start = from_hash ? from_hash : AUDIT_GENESIS_HASH;
	snprintf(w.expect, sizeof(w.expect), "%s", start);
	snprintf(r->last_hash, sizeof(r->last_hash), "%s", start);
	if (from_hash) {
		w.any = true;
		w.last_id = r->last_id = from_id;
	}

	char *qschema = db_ident(conn, schema);
	if (!qschema) {
		*err = db_error(conn, NULL);
		return -1;
	}
	/* One snapshot: the head and the rows agree unless someone bypassed
	 * the trigger, however busy writers are meanwhile. */
	if (!db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &e)) {
		*err = e;
		free(qschema);
		return -1;
	}
	status = from_hash ? from_row_intact(conn, qschema, from_id, from_hash,
					     err)
			   : 1;
	if (status == 1) {
		if (!load_head(conn, qschema, &w, &e)) {
			*err = xasprintf("could not read the audit head: %s", e);
			free(e);
			status = -1;
		} else {
			status = walk_rows(conn, qschema,
					   from_hash ? from_id
						     : (long long)INT64_MIN,
					   &w, r, err);
			if (status == 0)
				status = check_head(&w, r);
		}
	} else if (status == 0) {
		status = AUDIT_FROM_GONE;
	}
	free(qschema);
	if (!db_exec(conn, status < 0 ? "ROLLBACK" : "COMMIT", &e)) {
		if (status >= 0) {
			*err = e;
			return -1;
		}
		free(e);
	}
	return status;
}

int
audit_verify(PGconn *conn, const char *schema, struct audit_verify_result *r,
	     char **err)
{
	return verify(conn, schema, 0, NULL, r, err);
}

int
audit_verify_from(PGconn *conn, const char *schema, long long from_id,
		  const char *from_hash, struct audit_verify_result *r,
		  char **err)
{
	return verify(conn, schema, from_id, from_hash, r, err);
}

bool
audit_append(PGconn *conn, const char *schema, long long run_id,
	     const char *rule, const char *target, const char *action,
	     const char *cutoff, long long rows, const char *started_at,
	     const char *finished_at, const char *detail_json, char **err)
{
	char run[32], nrows[32];
	char *table = db_qualified(conn, schema, "actions");
	if (!table) {
		*err = db_error(conn, NULL);
		return false;
	}
	snprintf(run, sizeof(run), "%lld", run_id);
	snprintf(nrows, sizeof(nrows), "%lld", rows);
	const char *p[] = { run, rule, target, action, cutoff, nrows,
			    started_at, finished_at, detail_json };
	char *sql = xasprintf(
		"INSERT INTO %s (run_id, rule, target, action, cutoff, rows,"
		" started_at, finished_at, detail)"
		" VALUES ($1::bigint, $2, $3, $4, $5::timestamptz, $6::bigint,"
		" $7::timestamptz, $8::timestamptz, $9::jsonb)", table);
	char *e = NULL;
	PGresult *res = db_query(conn, sql, 9, p, &e);
	free(sql);
	free(table);
	if (!res) {
		*err = xasprintf("could not write the audit record for rule "
				 "\"%s\" (%s): %s", rule, target, e);
		free(e);
		return false;
	}
	PQclear(res);
	return true;
}
