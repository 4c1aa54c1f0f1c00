/*
 * access: the right of access and portability (SPEC §8). A request is
 * recorded in access_requests; fulfilling it writes access-ID.json and
 * access-ID.html into requests.directory (streamed, temporary file and
 * rename, 0600 in a 0700 directory), appends an "access_export" action to
 * the audit chain and mails staff, never with a value of the subject's.
 */
#ifndef RETENTIOND_ACCESS_H
#define RETENTIOND_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "sha256.h"
#include "subject_graph.h"
#include "util.h"

struct access_request {
	long long id;
	char *subject;
	char *subject_id;
	char *requested_at;	/* UTC, ISO 8601 */
	char *due_at;
};

/* Stop hooks: checked between fetches. */
struct access_hooks {
	bool (*should_stop)(void *arg);
	void *arg;
	double deadline_ms;	/* monotonic_ms() limit; 0: none */
};

enum access_status {
	ACCESS_OK,
	ACCESS_FAILED,		/* *err says why */
	ACCESS_STOPPED,		/* a stop request: left pending */
	ACCESS_TIME		/* max_runtime reached: left pending */
};

struct access_file {
	char *path;
	char sha256[SHA256_HEX_LEN];
	long long bytes;
};

struct access_export {
	struct access_file json, html;
	char *generated_at;
	long long rows;
	long long *table_rows;	/* per graph table, in graph order */
	size_t n_tables;
};

/* Write both files for RQ from graph G. In its own read-only, repeatable
 * read transaction, so every table is read from one snapshot. */
enum access_status access_export_write(PGconn *conn, const struct config *cfg,
				       const struct access_request *rq,
				       const struct subject_graph *g,
				       const struct access_hooks *hooks,
				       struct access_export *out, char **err)
	MUSTCHECK;
void access_export_free(struct access_export *e);

/* "deleted 2 years after created_at", for people; malloc'd. */
char *access_rule_when(const struct rule *r);

bool access_add(PGconn *conn, const char *schema, const char *subject,
		const char *subject_id, const char *reason, long long *id,
		char **due_at, char **err) MUSTCHECK;

/* Fulfil request ID now (it must be pending); the result in *out. */
enum access_status access_fulfil(PGconn *conn, const struct config *cfg,
				 long long run_id, long long id,
				 const struct access_hooks *hooks,
				 struct access_outcome *out) MUSTCHECK;

/* Each cycle: fulfil every pending request, oldest first, into out's
 * accesses. False when the pending requests could not be read. */
bool access_process(PGconn *conn, const struct config *cfg, long long run_id,
		    double deadline_ms, bool (*should_stop)(void *), void *arg,
		    struct run_result *out, char **err) MUSTCHECK;

void access_outcome_free(struct access_outcome *o);

#endif
