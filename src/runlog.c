#include "runlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"

const char *
run_status_name(enum run_status s)
{
	switch (s) {
	case RUN_RUNNING:
		return "running";
	case RUN_OK:
		return "ok";
	case RUN_PARTIAL:
		return "partial";
	case RUN_FAILED:
		return "failed";
	case RUN_INTERRUPTED:
		return "interrupted";
	}
	return "failed";
}

/* One key per database and schema, so two deployments with different
 * schemas in one database do not block each other. */
#define LOCK_KEY "hashtextextended('retentiond/' || $1, 0)"

enum lock_result
runlog_lock(PGconn *conn, const char *schema, int *holder_pid, char **err)
{
	const char *p[] = { schema };
	PGresult *res = db_query(conn,
		"SELECT pg_try_advisory_lock(" LOCK_KEY ")", 1, p, err);
	if (!res)
		return LOCK_ERROR;
	bool taken = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (taken)
		return LOCK_TAKEN;

	*holder_pid = 0;
	char *e = NULL;
	res = db_query(conn,
		"SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
		" AND granted AND database = (SELECT oid FROM pg_database"
		"   WHERE datname = current_database())"
		" AND ((classid::bigint << 32) | objid::bigint) = " LOCK_KEY
		" LIMIT 1", 1, p, &e);
	if (res) {
		if (PQntuples(res) > 0)
			*holder_pid = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
	} else {
		free(e);
	}
	return LOCK_BUSY;
}

void
runlog_unlock(PGconn *conn, const char *schema)
{
	char *err = NULL;
	const char *p[] = { schema };
	PGresult *res = db_query(conn, "SELECT pg_advisory_unlock(" LOCK_KEY ")",
				 1, p, &err);
	if (res)
		PQclear(res);
	else
		free(err);	/* the lock goes with the session anyway */
}

static char *
table(PGconn *conn, const char *schema, const char *name)
{
	return db_qualified(conn, schema, name);
}

/*
 * Each run row is locked, from the statement that inserts it, by an
 * advisory lock of the session that works on it (keyed by schema and id),
 * until runlog_finish or the end of the session. A row still "running"
 * whose lock is free belongs to a process that died; a plan (which does
 * not take the instance lock) or a run of another schema's instance keeps
 * its lock and is left alone. PARAM is the schema's parameter number.
 */
#define RUN_ROW_KEY(param) \
	"hashtextextended('retentiond/run/' || " param "::text || '/' || id, 0)"

long long
runlog_mark_stale(PGconn *conn, const char *schema, char **err)
{
	char *t = table(conn, schema, "runs");
	char *sql = xasprintf(
		/* the lock is tried on running rows only: trying it on every
		 * row of a years-long history would fill the lock table */
		"WITH running AS MATERIALIZED (SELECT id FROM %s"
		"  WHERE status = 'running'),"
		" dead AS MATERIALIZED (SELECT id FROM running"
		"  WHERE pg_try_advisory_xact_lock(%s))"
		" UPDATE %s SET status = 'interrupted',"
		" finished_at = coalesce(finished_at, now()),"
		" error = coalesce(error, 'the process ended before the run was finished')"
		" WHERE id IN (SELECT id FROM dead)", t, RUN_ROW_KEY("$1"), t);
	const char *p[] = { schema };
	PGresult *res = db_query(conn, sql, 1, p, err);
	free(sql);
	free(t);
	if (!res)
		return -1;
	long long n = atoll(PQcmdTuples(res));
	PQclear(res);
	return n;
}

bool
runlog_begin(PGconn *conn, const char *schema, const char *command,
	     const char *config_sha256, long long *run_id, char **err)
{
	char host[256] = "unknown";
	char pid[16];

	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(pid, sizeof(pid), "%d", (int)getpid());

	char *t = table(conn, schema, "runs");
	char *sql = xasprintf(
		"INSERT INTO %s (host, command, status, config_sha256, pid)"
		" VALUES ($1, $2, 'running', $3, $4)"
		" RETURNING id, pg_advisory_lock(%s)", t, RUN_ROW_KEY("$5"));
	const char *p[] = { host, command, config_sha256, pid, schema };
	PGresult *res = db_query(conn, sql, 5, p, err);
	free(sql);
	free(t);
	if (!res)
		return false;
	*run_id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool
runlog_finish(PGconn *conn, const char *schema, long long run_id,
	      enum run_status status, const char *error,
	      const char *summary_json, char **err)
{
	char id[32];
	snprintf(id, sizeof(id), "%lld", run_id);
	char *t = table(conn, schema, "runs");
	char *sql = xasprintf(
		"UPDATE %s SET status = $2, finished_at = now(), error = $3,"
		" summary = $4::jsonb WHERE id = $1"
		" RETURNING pg_advisory_unlock(%s)", t, RUN_ROW_KEY("$5"));
	const char *p[] = { id, run_status_name(status), error, summary_json,
			    schema };
	PGresult *res = db_query(conn, sql, 5, p, err);
	free(sql);
	free(t);
	if (!res)
		return false;
	PQclear(res);
	return true;
}
