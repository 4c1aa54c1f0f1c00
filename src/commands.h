/*
 * commands: one function per command line verb. Each returns the process
 * exit status (SPEC §2).
 */
#ifndef RETENTIOND_COMMANDS_H
#define RETENTIOND_COMMANDS_H

enum exit_status {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,	/* a rule failed, database unreachable, chain broken */
	EXIT_USAGE = 2,		/* usage or config error */
	EXIT_LOCKED = 3		/* another instance holds the lock */
};

struct cli {
	const char *config_path;
	int verbosity;		/* -1 quiet, 0 normal, 1 verbose */
	int argc;		/* the command's own arguments, after COMMAND */
	char **argv;		/* argv[0] is the command name */
};

struct config;
typedef struct pg_conn PGconn;

/*
 * Shared start of every command that works on the database: load and
 * validate the config and its secrets (errors printed, EXIT_USAGE), then
 * connect (error logged, EXIT_RUNTIME). Returns EXIT_OK with *cfg loaded
 * and *conn open; the caller ends with cmd_teardown.
 */
int cmd_setup(const struct cli *cli, struct config *cfg, PGconn **conn);
/* The same for a command that only reads: a standby will do (SPEC §10). */
int cmd_setup_read(const struct cli *cli, struct config *cfg, PGconn **conn);
void cmd_teardown(struct config *cfg, PGconn *conn);

/* Load and validate the config and secrets only (no database). */
int cmd_load_config(const struct cli *cli, struct config *cfg);

/* The SUBJECT:ID and --reason of a request from a person (erase, access):
 * EXIT_OK with *subject and *subject_id (malloc'd), or EXIT_USAGE with the
 * problem printed, naming COMMAND. */
int cmd_request_args(const char *command, const char *target,
		     const char *reason, char **subject, char **subject_id);

int cmd_check(const struct cli *cli);
int cmd_init_db(const struct cli *cli);
int cmd_verify(const struct cli *cli);
int cmd_hold(const struct cli *cli);
int cmd_run(const struct cli *cli);
int cmd_plan(const struct cli *cli);
int cmd_grants(const struct cli *cli);
int cmd_report(const struct cli *cli);
int cmd_daemon(const struct cli *cli);
int cmd_erase(const struct cli *cli);
int cmd_erasure(const struct cli *cli);
int cmd_replay(const struct cli *cli);
int cmd_coverage(const struct cli *cli);
int cmd_access(const struct cli *cli);

#endif
