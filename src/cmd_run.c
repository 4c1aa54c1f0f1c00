/*
 * `retentiond run` (one cycle) and `retentiond plan` (what a cycle would
 * do now, changing nothing).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "engine.h"
#include "erasure.h"
#include "log.h"
#include "metrics.h"
#include "postcycle.h"
#include "signals.h"

struct run_args {
	const char **only;
	size_t n_only;
	bool force;
};

static int
parse_args(const struct cli *cli, bool allow_force, struct run_args *a)
{
	static const struct option longopts[] = {
		{ "rule", required_argument, NULL, 'r' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(a, 0, sizeof(*a));
	a->only = xcalloc((size_t)cli->argc, sizeof(*a->only));
	optind = 0;	/* glibc: start over on the command's own arguments */
	while ((opt = getopt_long(cli->argc, cli->argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			a->only[a->n_only++] = optarg;
			break;
		case 'f':
			if (allow_force) {
				a->force = true;
				break;
			}
			/* fall through */
		default:
			fprintf(stderr, "Usage: retentiond %s [--rule NAME]...%s\n",
				cli->argv[0], allow_force ? " [--force]" : "");
			return EXIT_USAGE;
		}
	}
	if (optind < cli->argc) {
		fprintf(stderr, "retentiond: %s: unexpected argument \"%s\"\n",
			cli->argv[0], cli->argv[optind]);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static bool
hook_stop(void *arg)
{
	(void)arg;
	return signals_stop_requested();
}

static void
print_rule(const struct rule_result *rr, bool plan)
{
	const struct rule *r = rr->rule;
	const char *verb = r->action == ACTION_DELETE ? "deleted" : "de-identified";
	const char *would = r->action == ACTION_DELETE ? "delete" : "de-identify";

	printf("rule \"%s\" (%s.%s): ", r->name, r->schema, r->table);
	switch (rr->outcome) {
	case OUTCOME_PLANNED:
		printf("would %s %lld of %lld rows", would, rr->eligible,
		       rr->table_rows);
		break;
	case OUTCOME_NOTHING:
		printf("nothing due");
		break;
	case OUTCOME_DONE:
	case OUTCOME_TIME:
	case OUTCOME_STOPPED:
	case OUTCOME_LOCKED:
		printf("%s %lld rows in %lld batch%s, %.2f s", verb, rr->changed,
		       rr->batches, rr->batches == 1 ? "" : "es", rr->seconds);
		if (rr->outcome != OUTCOME_DONE)
			printf("; %s, the rest is left for the next cycle",
			       rule_outcome_name(rr->outcome));
		break;
	case OUTCOME_REFUSED:
	case OUTCOME_FAILED:
		printf("%s: %s", rule_outcome_name(rr->outcome),
		       rr->message ? rr->message : "");
		break;
	case OUTCOME_SKIPPED:
		printf("disabled");
		break;
	}
	if (rr->overdue > 0)
		printf("; %lld row%s OVERDUE", rr->overdue,
		       rr->overdue == 1 ? "" : "s");
	if (rr->held > 0)
		printf("; %lld kept by legal hold", rr->held);
	if (rr->blocked > 0)
		printf("; %lld still referenced", rr->blocked);
	if (rr->partitions > 0)
		printf("; %lld whole partition%s", rr->partitions,
		       rr->partitions == 1 ? "" : "s");
	printf("\n");
	if (plan) {
		char retain[DURATION_TEXT_MAX];
		duration_to_interval(&r->retain, retain, sizeof(retain));
		if (rr->cutoff)
			printf("  cutoff:  %s (retain %s)\n", rr->cutoff, retain);
		printf("  how:     %s%s%s\n", rule_action_name(r->action),
		       rr->how ? ", " : "", rr->how ? rr->how : "");
		printf("  due:     %lld rows\n", rr->eligible);
		printf("  held:    %lld rows kept by legal hold\n", rr->held);
		printf("  blocked: %lld rows still referenced\n", rr->blocked);
		printf("  oldest:  %s\n", rr->oldest ? rr->oldest : "(table is empty)");
		if (rr->outcome == OUTCOME_REFUSED)
			printf("  guard:   would stop it\n");
		else if (rr->outcome == OUTCOME_PLANNED)
			printf("  guard:   passes\n");
		if (rr->message && rr->outcome == OUTCOME_PLANNED)
			printf("  note:    %s\n", rr->message);
	}
}

static void
print_erasure(const struct erasure_outcome *eo, bool plan)
{
	printf("erasure request %lld (%s:%s, due %s): %s%s\n", eo->id,
	       eo->subject, eo->subject_id, eo->due_at,
	       plan ? "would be " : "", eo->status);
	for (size_t i = 0; i < eo->n_rules; i++) {
		const struct erasure_rule_result *rr = &eo->rules[i];
		printf("  rule \"%s\": ", rr->rule->name);
		if (rr->method == ACTION_KEEP)
			printf("%lld rows kept: %s", rr->kept, rr->rule->policy);
		else
			printf("%s%s %lld rows", plan ? "would " : "",
			       rr->method == ACTION_DELETE
				       ? (plan ? "delete" : "deleted")
				       : (plan ? "de-identify" : "de-identified"),
			       rr->rows);
		if (rr->kept_under && rr->kept > 0)
			printf("; %lld rows kept, referred to by %s.%s: rule "
			       "\"%s\": %s", rr->kept, rr->kept_under->schema,
			       rr->kept_under->table, rr->kept_under->name,
			       rr->kept_under->policy);
		if (rr->blocked > 0)
			printf("; %lld still referenced", rr->blocked);
		if (rr->message)
			printf("; %s", rr->message);
		printf("\n");
	}
	for (size_t i = 0; i < eo->n_cascaded; i++)
		printf("  kept with their parent rows (ON DELETE CASCADE): "
		       "table %s: %lld rows: rule \"%s\": %s\n",
		       eo->cascaded[i].table, eo->cascaded[i].rows,
		       eo->cascaded[i].kept_under->name,
		       eo->cascaded[i].kept_under->policy);
	for (size_t i = 0; i < eo->n_blocks; i++)
		printf("  blocked by table %s: %lld rows, no rule covers it\n",
		       eo->blocks[i].table, eo->blocks[i].rows);
	if (eo->error)
		printf("  error: %s\n", eo->error);
}

static int
cycle_command(const struct cli *cli, bool plan)
{
	struct run_args args;
	struct config cfg;
	PGconn *conn = NULL;
	int status = parse_args(cli, !plan, &args);

	if (status != EXIT_OK) {
		free(args.only);
		return status;
	}
	status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK) {
		free(args.only);
		return status;
	}
	for (size_t i = 0; i < args.n_only; i++) {
		if (!config_find_rule(&cfg, args.only[i])) {
			fprintf(stderr, "retentiond: %s: no rule named \"%s\"\n",
				cfg.path, args.only[i]);
			cmd_teardown(&cfg, conn);
			free(args.only);
			return EXIT_USAGE;
		}
	}

	signals_init();
	struct engine_options opt = {
		.command = plan ? "plan" : "run",
		.dry_run = plan,
		.force = args.force,
		.only = args.only,
		.n_only = args.n_only,
	};
	struct engine_hooks hooks = { .should_stop = hook_stop };
	struct run_result res;
	enum engine_status es = engine_cycle(conn, &cfg, &opt, &hooks, &res);

	switch (es) {
	case ENGINE_LOCKED:
		log_error("%s", res.error);
		status = EXIT_LOCKED;
		break;
	case ENGINE_ERROR:
		log_error("%s", res.error ? res.error : "the cycle could not run");
		status = EXIT_RUNTIME;
		break;
	case ENGINE_OK:
		for (size_t i = 0; i < res.n_rules; i++)
			print_rule(&res.rules[i], plan);
		for (size_t i = 0; i < res.n_erasures; i++)
			print_erasure(&res.erasures[i], plan);
		if (res.error)
			log_error("%s", res.error);
		long long total = res.changed;
		if (plan) {
			total = 0;
			for (size_t i = 0; i < res.n_rules; i++)
				if (res.rules[i].outcome == OUTCOME_PLANNED)
					total += res.rules[i].eligible;
		}
		size_t worked = 0;
		for (size_t i = 0; i < res.n_rules; i++)
			if (res.rules[i].outcome != OUTCOME_SKIPPED)
				worked++;
		printf("%s %lld: %s, %lld row%s %s by %zu rule%s in %.2f s\n",
		       plan ? "plan" : "run", res.run_id,
		       run_status_name(res.status), total,
		       total == 1 ? "" : "s",
		       plan ? "would change" : "changed", worked,
		       worked == 1 ? "" : "s", res.seconds);
		status = res.status == RUN_OK || res.status == RUN_INTERRUPTED
				 ? EXIT_OK : EXIT_RUNTIME;
		break;
	}
	if (!plan && res.run_id) {
		struct coverage_cycle cov;
		coverage_cycle_run(conn, &cfg, &cov);
		int audit = postcycle(conn, &cfg, &res, &cov);
		(void)metrics_write(conn, &cfg, &res, &cov, audit);
		coverage_cycle_free(&cov);
	}
	run_result_free(&res);
	cmd_teardown(&cfg, conn);
	free(args.only);
	return status;
}

int
cmd_run(const struct cli *cli)
{
	return cycle_command(cli, false);
}

int
cmd_plan(const struct cli *cli)
{
	return cycle_command(cli, true);
}
