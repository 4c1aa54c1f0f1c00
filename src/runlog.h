/*
 * runlog: the `runs` table (one row per cycle or plan) and the instance
 * lock that keeps a second retentiond off the same database.
 */
#ifndef RETENTIOND_RUNLOG_H
#define RETENTIOND_RUNLOG_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "util.h"

enum run_status {
	RUN_RUNNING,
	RUN_OK,
	RUN_PARTIAL,
	RUN_FAILED,
	RUN_INTERRUPTED
};

const char *run_status_name(enum run_status s);

enum lock_result {
	LOCK_TAKEN,
	LOCK_BUSY,	/* another instance holds it */
	LOCK_ERROR
};

/*
 * Take the session-level advisory lock for retentiond on this database and
 * schema. On LOCK_BUSY, *holder_pid is the other backend's pid (0 if
 * unknown). Released by runlog_unlock or when the connection closes.
 */
enum lock_result runlog_lock(PGconn *conn, const char *schema,
			     int *holder_pid, char **err) MUSTCHECK;
void runlog_unlock(PGconn *conn, const char *schema);

/* Runs left "running" by a process that died (their session's lock on
 * the row is gone; a plan still working keeps its own): call with the
 * instance lock held. Returns how many. */
long long runlog_mark_stale(PGconn *conn, const char *schema, char **err);

bool runlog_begin(PGconn *conn, const char *schema, const char *command,
		  const char *config_sha256, long long *run_id,
		  char **err) MUSTCHECK;

/* summary_json may be NULL; error may be NULL. */
bool runlog_finish(PGconn *conn, const char *schema, long long run_id,
		   enum run_status status, const char *error,
		   const char *summary_json, char **err) MUSTCHECK;

#endif
