/*
 * `retentiond access SUBJECT:ID [--reason TEXT] [--now]` and
 * `retentiond access list`: right-of-access requests (SPEC §8).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "commands.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "runlog.h"
#include "schema.h"

#define ACCESS_USAGE \
	"Usage: retentiond access SUBJECT:ID [--reason TEXT] [--now]\n" \
	"       retentiond access list\n"

static int
access_list(const struct cli *cli)
{
	struct config cfg;
	PGconn *conn = NULL;
	char *err = NULL;

	if (cli->argc != 2) {
		fputs(ACCESS_USAGE, stderr);
		return EXIT_USAGE;
	}
	int status = cmd_setup_read(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;
	if (schema_require(conn, cfg.database.schema, &err) < 0) {
		log_error("%s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	char *t = db_qualified(conn, cfg.database.schema, "access_requests");
	char *sql = xasprintf(
		"SELECT id, subject || ':' || subject_id, status,"
		" to_char(requested_at, 'YYYY-MM-DD HH24:MI'),"
		" to_char(due_at, 'YYYY-MM-DD HH24:MI'),"
		" CASE WHEN status <> 'done' AND due_at < now() THEN 'OVERDUE'"
		"      WHEN status <> 'done' AND due_at < now() + interval '7 days'"
		"      THEN 'due soon' ELSE '' END,"
		" coalesce(detail->>'rows', ''), coalesce(reason, '')"
		" FROM %s ORDER BY id", t);
	PGresult *res = db_query(conn, sql, 0, NULL, &err);
	free(sql);
	free(t);
	if (!res) {
		log_error("could not list access requests: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	printf("%-6s %-24s %-8s %-16s %-16s %-8s %-8s %s\n", "id", "subject",
	       "status", "requested", "due", "", "rows", "reason");
	for (int i = 0; i < PQntuples(res); i++) {
		char *subj = xstrdup(PQgetvalue(res, i, 1));
		char *reason = xstrdup(PQgetvalue(res, i, 7));
		/* control characters would break the table or the terminal */
		for (char *p = subj; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		printf("%-6s %-24s %-8s %-16s %-16s %-8s %-8s %s\n",
		       PQgetvalue(res, i, 0), subj, PQgetvalue(res, i, 2),
		       PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
		       PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), reason);
		free(subj);
		free(reason);
	}
	PQclear(res);
	cmd_teardown(&cfg, conn);
	return EXIT_OK;
}

/* --now: fulfil it in this process, under the instance lock, in a run of
 * its own (the audit row needs one). */
static int
fulfil_now(PGconn *conn, const struct config *cfg, long long id)
{
	const char *schema = cfg->database.schema;
	struct access_outcome o;
	long long run_id = 0;
	char *err = NULL;
	int holder = 0;

	switch (runlog_lock(conn, schema, &holder, &err)) {
	case LOCK_TAKEN:
		break;
	case LOCK_BUSY:
		log_error("another retentiond instance is working on this "
			  "database; it fulfils request %lld in its next cycle",
			  id);
		return EXIT_LOCKED;
	case LOCK_ERROR:
		log_error("%s", err);
		free(err);
		return EXIT_RUNTIME;
	}
	if (!runlog_begin(conn, schema, "access", cfg->sha256, &run_id, &err)) {
		log_error("could not record the run: %s", err);
		free(err);
		runlog_unlock(conn, schema);
		return EXIT_RUNTIME;
	}
	enum access_status st = access_fulfil(conn, cfg, run_id, id, NULL, &o);
	int status = st == ACCESS_OK ? EXIT_OK : EXIT_RUNTIME;
	if (st == ACCESS_OK)
		printf("access request %lld: %lld row%s from %zu table%s\n"
		       "  %s\n  %s\n", id, o.rows, o.rows == 1 ? "" : "s",
		       o.n_tables, o.n_tables == 1 ? "" : "s", o.json_path,
		       o.html_path);
	else if (st != ACCESS_FAILED)	/* a failure was logged already */
		log_error("access request %lld: %s", id,
			  o.message ? o.message : "not finished");
	if (!runlog_finish(conn, schema, run_id,
			   st == ACCESS_OK ? RUN_OK : RUN_FAILED,
			   st == ACCESS_OK ? NULL : o.message, NULL, &err)) {
		log_error("could not record the end of run %lld: %s", run_id,
			  err);
		free(err);
	}
	access_outcome_free(&o);
	runlog_unlock(conn, schema);
	return status;
}

int
cmd_access(const struct cli *cli)
{
	static const struct option longopts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "now", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *reason = NULL;
	bool now = false;
	int opt;

	if (cli->argc >= 2 && strcmp(cli->argv[1], "list") == 0)
		return access_list(cli);
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(cli->argc, cli->argv, "", longopts, NULL)) != -1) {
		if (opt == 'r') {
			reason = optarg;
		} else if (opt == 'n') {
			now = true;
		} else {
			fputs(ACCESS_USAGE, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != cli->argc - 1) {
		fputs(ACCESS_USAGE, stderr);
		return EXIT_USAGE;
	}
	char *subject = NULL, *subject_id = NULL;
	if (cmd_request_args("access", cli->argv[optind], reason, &subject,
			     &subject_id) != EXIT_OK)
		return EXIT_USAGE;

	struct config cfg;
	PGconn *conn = NULL;
	char *err = NULL, *due = NULL;
	long long id = 0;
	int status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK)
		goto out_args;
	if (!config_subject_allowed(&cfg, subject)) {
		fprintf(stderr, "retentiond: access: unknown subject kind \"%s\": "
			"the \"subjects\" group of %s does not name it\n",
			subject, cfg.path);
		status = EXIT_USAGE;
		goto out;
	}
	if (schema_require(conn, cfg.database.schema, &err) < 0) {
		log_error("%s", err);
		free(err);
		status = EXIT_RUNTIME;
		goto out;
	}
	if (!access_add(conn, cfg.database.schema, subject, subject_id, reason,
			&id, &due, &err)) {
		log_error("could not record the access request: %s", err);
		free(err);
		status = EXIT_RUNTIME;
		goto out;
	}
	printf("access request %lld for %s:%s recorded; due %s\n", id, subject,
	       subject_id, due);
	free(due);
	fflush(stdout);
	if (now)
		status = fulfil_now(conn, &cfg, id);
out:
	cmd_teardown(&cfg, conn);
out_args:
	free(subject);
	free(subject_id);
	return status;
}
