/*
 * `retentiond erase SUBJECT:ID [--reason TEXT]` and
 * `retentiond erasure list [--status S]`: right-to-erasure requests.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "erasure.h"
#include "log.h"

static bool
subject_has_rule(const struct config *cfg, const char *subject)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (cfg->rules[i].subject &&
		    strcmp(cfg->rules[i].subject, subject) == 0)
			return true;
	return false;
}

int
cmd_erase(const struct cli *cli)
{
	static const struct option longopts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *reason = NULL;
	int opt;

	optind = 0;
	/* no "+": options may follow SUBJECT:ID */
	while ((opt = getopt_long(cli->argc, cli->argv, "", longopts, NULL)) != -1) {
		if (opt != 'r') {
			fprintf(stderr, "Usage: retentiond erase SUBJECT:ID [--reason TEXT]\n");
			return EXIT_USAGE;
		}
		reason = optarg;
	}
	if (optind != cli->argc - 1) {
		fprintf(stderr, "Usage: retentiond erase SUBJECT:ID [--reason TEXT]\n");
		return EXIT_USAGE;
	}
	char *subject = NULL, *subject_id = NULL;
	if (cmd_request_args("erase", cli->argv[optind], reason, &subject,
			     &subject_id) != EXIT_OK)
		return EXIT_USAGE;

	struct config cfg;
	PGconn *conn = NULL;
	int status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK) {
		free(subject);
		free(subject_id);
		return status;
	}
	if (!config_subject_allowed(&cfg, subject)) {
		fprintf(stderr, "retentiond: erase: unknown subject kind \"%s\": "
			"the \"subjects\" group of %s does not name it\n",
			subject, cfg.path);
		free(subject);
		free(subject_id);
		cmd_teardown(&cfg, conn);
		return EXIT_USAGE;
	}
	/* a request nothing would carry out would sit pending, and a
	 * report would count it as on its way: refuse it now (a kind the
	 * subjects group names has its own row, which a rule may cover
	 * later: that request waits, saying why) */
	if (!subject_has_rule(&cfg, subject) && !cfg.has_subjects) {
		log_error("no rule in %s has subject \"%s\": an erasure request "
			  "for it would change nothing; add a rule with subject "
			  "= \"%s\" (or check the spelling)", cfg.path, subject,
			  subject);
		free(subject);
		free(subject_id);
		cmd_teardown(&cfg, conn);
		return EXIT_USAGE;
	}

	long long id = 0;
	char *due = NULL, *err = NULL;
	if (erasure_add(conn, cfg.database.schema, subject, subject_id, reason,
			&id, &due, &err)) {
		printf("erasure request %lld for %s:%s recorded; due %s\n", id,
		       subject, subject_id, due);
		free(due);
	} else {
		log_error("could not record the erasure request: %s", err);
		free(err);
		status = EXIT_RUNTIME;
	}
	free(subject);
	free(subject_id);
	cmd_teardown(&cfg, conn);
	return status;
}

static const char *const statuses[] = { "pending", "done", "partial", "held" };

int
cmd_erasure(const struct cli *cli)
{
	static const struct option longopts[] = {
		{ "status", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *want = NULL;
	int opt;

	if (cli->argc < 2 || strcmp(cli->argv[1], "list") != 0) {
		fprintf(stderr, "Usage: retentiond erasure list [--status pending|done|partial|held]\n");
		return EXIT_USAGE;
	}
	optind = 0;
	while ((opt = getopt_long(cli->argc - 1, cli->argv + 1, "", longopts,
				  NULL)) != -1) {
		if (opt != 's') {
			fprintf(stderr, "Usage: retentiond erasure list [--status S]\n");
			return EXIT_USAGE;
		}
		want = optarg;
	}
	if (optind != cli->argc - 1) {
		fprintf(stderr, "Usage: retentiond erasure list [--status S]\n");
		return EXIT_USAGE;
	}
	if (want) {
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
			known |= strcmp(want, statuses[i]) == 0;
		if (!known) {
			fprintf(stderr, "retentiond: erasure list: unknown status "
				"\"%s\" (pending, done, partial, held)\n", want);
			return EXIT_USAGE;
		}
	}

	struct config cfg;
	PGconn *conn = NULL;
	int status = cmd_setup_read(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;
	char *t = db_qualified(conn, cfg.database.schema, "erasure_requests");
	char *sql = xasprintf(
		"SELECT id, subject || ':' || subject_id, status,"
		" to_char(requested_at, 'YYYY-MM-DD HH24:MI'),"
		" to_char(due_at, 'YYYY-MM-DD HH24:MI'),"
		" CASE WHEN status IN ('pending', 'held') AND due_at < now() THEN 'OVERDUE'"
		"      WHEN status IN ('pending', 'held') AND due_at < now() + interval '7 days'"
		"      THEN 'due soon' ELSE '' END,"
		" coalesce(reason, '')"
		" FROM %s WHERE $1::text IS NULL OR status = $1 ORDER BY id", t);
	const char *p[] = { want };
	char *err = NULL;
	PGresult *res = db_query(conn, sql, 1, p, &err);
	free(sql);
	free(t);
	if (!res) {
		log_error("could not list erasure requests: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	printf("%-6s %-24s %-8s %-16s %-16s %-8s %s\n", "id", "subject",
	       "status", "requested", "due", "", "reason");
	for (int i = 0; i < PQntuples(res); i++)
		printf("%-6s %-24s %-8s %-16s %-16s %-8s %s\n",
		       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		       PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
		       PQgetvalue(res, i, 6));
	PQclear(res);
	cmd_teardown(&cfg, conn);
	return EXIT_OK;
}
