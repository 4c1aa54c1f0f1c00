/*
 * `retentiond hold add|release|list`: legal holds.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "hold.h"
#include "log.h"
#include "schema.h"

static void
hold_usage(FILE *out)
{
	fprintf(out,
		"Usage: retentiond hold add SUBJECT:ID --reason TEXT [--until DATE]\n"
		"       retentiond hold release ID\n"
		"       retentiond hold list [--all]\n"
		"\n"
		"  add      place a legal hold: no rule and no erasure touches the\n"
		"           subject's rows until it is released or DATE passes\n"
		"  release  release hold ID\n"
		"  list     active holds (--all: also expired and released ones)\n");
}

static int
usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("retentiond: hold: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry \"retentiond hold --help\" for more information.\n", stderr);
	return EXIT_USAGE;
}

struct hold_args {
	const char *reason;
	const char *until;
	bool all;
	const char *pos[4];	/* positional arguments after the subcommand */
	int n_pos;
};

/*
 * Options may come before or after the positional arguments ("hold add
 * customer:42 --reason ..."), so getopt returns non-options in order
 * ("-" optstring, which also ignores POSIXLY_CORRECT). optind = 0 makes
 * glibc start afresh after main's own scan.
 */
static int
parse_args(int argc, char **argv, const char *shortopts,
	   const struct option *longopts, struct hold_args *a)
{
	int opt;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (opt) {
		case 1:
			if (a->n_pos == (int)ARRAY_SIZE(a->pos))
				return usage_error("too many arguments (\"%s\")",
						   optarg);
			a->pos[a->n_pos++] = optarg;
			break;
		case 'r':
			a->reason = optarg;
			break;
		case 'u':
			a->until = optarg;
			break;
		case 'a':
			a->all = true;
			break;
		case ':':
			return usage_error("option \"%s\" needs a value",
					   argv[optind - 1]);
		default:
			return usage_error("unknown option \"%s\"",
					   argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {	/* after "--" */
		if (a->n_pos == (int)ARRAY_SIZE(a->pos))
			return usage_error("too many arguments (\"%s\")",
					   argv[optind]);
		a->pos[a->n_pos++] = argv[optind];
	}
	return EXIT_OK;
}

/* Characters, not bytes: pad UTF-8 text to WIDTH columns. */
static size_t
text_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Control characters would break the table (or a terminal). */
static char *
printable(const char *s)
{
	char *out = xstrdup(s ? s : "-");
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

static void
print_cell(const char *s, size_t width, bool last)
{
	fputs(s, stdout);
	if (last) {
		putchar('\n');
		return;
	}
	for (size_t w = text_width(s); w < width + 2; w++)
		putchar(' ');
}

enum { C_ID, C_TARGET, C_REASON, C_BY, C_AT, C_EXPIRES, C_STATE, N_COLS };

static void
print_holds(const struct hold *holds, size_t n)
{
	static const char *const head[N_COLS] = {
		"ID", "SUBJECT:ID", "REASON", "PLACED BY", "PLACED AT",
		"EXPIRES AT", "STATE"
	};
	char *(*cells)[N_COLS] = xcalloc(n, sizeof(*cells));
	size_t width[N_COLS];

	for (int c = 0; c < N_COLS; c++)
		width[c] = text_width(head[c]);
	for (size_t i = 0; i < n; i++) {
		const struct hold *h = &holds[i];
		char *target = xasprintf("%s:%s", h->subject, h->subject_id);
		cells[i][C_ID] = xasprintf("%lld", h->id);
		cells[i][C_TARGET] = printable(target);
		cells[i][C_REASON] = printable(h->reason);
		cells[i][C_BY] = printable(h->placed_by);
		cells[i][C_AT] = printable(h->placed_at);
		cells[i][C_EXPIRES] = printable(h->expires_at);
		cells[i][C_STATE] = xstrdup(hold_state_name(h->state));
		free(target);
		for (int c = 0; c < N_COLS; c++) {
			size_t w = text_width(cells[i][c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (int c = 0; c < N_COLS; c++)
		print_cell(head[c], width[c], c == N_COLS - 1);
	for (size_t i = 0; i < n; i++) {
		for (int c = 0; c < N_COLS; c++) {
			print_cell(cells[i][c], width[c], c == N_COLS - 1);
			free(cells[i][c]);
		}
	}
	free(cells);
}

static bool
blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t')
			return false;
	return true;
}

/* Warn about a hold no rule can honour: it would protect nothing. */
static void
warn_uncovered(const struct config *cfg, const char *subject)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (cfg->rules[i].subject &&
		    strcmp(cfg->rules[i].subject, subject) == 0)
			return;
	log_warning("no rule has subject \"%s\": this hold protects "
		    "nothing until a rule with that subject is added", subject);
}

static int
place_hold(const struct config *cfg, PGconn *conn, const char *subject,
	   const char *subject_id, const struct hold_args *a)
{
	char *expires = NULL, *err = NULL;
	long long id;
	int status;

	if (!config_subject_allowed(cfg, subject)) {
		fprintf(stderr, "retentiond: hold: unknown subject kind \"%s\": "
			"the \"subjects\" group of %s does not name it\n",
			subject, cfg->path);
		return EXIT_USAGE;
	}
	if (schema_require(conn, cfg->database.schema, &err) < 0) {
		log_error("hold: %s", err);
		free(err);
		return EXIT_RUNTIME;
	}
	warn_uncovered(cfg, subject);

	char *actor = hold_actor();
	enum hold_result r = hold_add(conn, cfg->database.schema, subject,
				      subject_id, a->reason, a->until, actor,
				      &id, &expires, &err);
	free(actor);
	switch (r) {
	case HOLD_OK:
		if (expires)
			printf("hold %lld placed on %s:%s until %s\n", id,
			       subject, subject_id, expires);
		else
			printf("hold %lld placed on %s:%s\n", id, subject,
			       subject_id);
		status = EXIT_OK;
		break;
	case HOLD_BAD_INPUT:
		fprintf(stderr, "retentiond: hold: %s\n", err);
		status = EXIT_USAGE;
		break;
	default:
		log_error("hold: %s", err);
		status = EXIT_RUNTIME;
		break;
	}
	free(err);
	free(expires);
	return status;
}

static int
hold_add_cmd(const struct cli *cli, const struct hold_args *a)
{
	char *subject = NULL, *subject_id = NULL;
	const char *perr;
	struct config cfg;
	PGconn *conn;
	int status;

	if (a->n_pos != 1)
		return usage_error("%s", a->n_pos == 0
				   ? "add needs SUBJECT:ID"
				   : "add takes one SUBJECT:ID");
	if (!a->reason)
		return usage_error("%s", "add needs --reason TEXT: say why the "
				   "data must be kept (case, request, ticket)");
	if (blank(a->reason))
		return usage_error("%s", "--reason must not be empty");
	if (str_has_ctl(a->reason))
		return usage_error("%s", "--reason must not contain control "
				   "characters");
	if (a->until && blank(a->until))
		return usage_error("%s", "--until must not be empty");
	if (!hold_parse_target(a->pos[0], &subject, &subject_id, &perr)) {
		fprintf(stderr, "retentiond: hold: \"%s\": %s\n", a->pos[0], perr);
		return EXIT_USAGE;
	}

	status = cmd_setup(cli, &cfg, &conn);
	if (status == EXIT_OK) {
		status = place_hold(&cfg, conn, subject, subject_id, a);
		cmd_teardown(&cfg, conn);
	}
	free(subject);
	free(subject_id);
	return status;
}

static int
hold_release_cmd(const struct cli *cli, const struct hold_args *a)
{
	struct config cfg;
	struct hold h = { 0 };
	PGconn *conn;
	char *err = NULL, *end;
	long long id;
	int status;

	if (a->n_pos != 1)
		return usage_error("%s", a->n_pos == 0 ? "release needs a hold ID"
				   : "release takes one hold ID");
	errno = 0;
	id = strtoll(a->pos[0], &end, 10);
	if (errno || end == a->pos[0] || *end || id <= 0)
		return usage_error("\"%s\" is not a hold ID (a positive number; "
				   "see \"retentiond hold list\")", a->pos[0]);

	status = cmd_setup(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;
	if (schema_require(conn, cfg.database.schema, &err) < 0) {
		log_error("hold: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	char *actor = hold_actor();
	enum hold_result r = hold_release(conn, cfg.database.schema, id, actor,
					  &h, &err);
	free(actor);
	if (r == HOLD_OK) {
		char *target = xasprintf("%s:%s", h.subject, h.subject_id);
		char *shown = printable(target);
		printf("hold %lld on %s released\n", id, shown);
		free(shown);
		free(target);
		hold_free(&h);
		status = EXIT_OK;
	} else {
		log_error("hold: %s", err);
		free(err);
		status = EXIT_RUNTIME;
	}
	cmd_teardown(&cfg, conn);
	return status;
}

static int
hold_list_cmd(const struct cli *cli, const struct hold_args *a)
{
	struct config cfg;
	struct hold *holds = NULL;
	size_t n = 0;
	PGconn *conn;
	char *err = NULL;
	int status;

	if (a->n_pos != 0)
		return usage_error("list takes no arguments (\"%s\")", a->pos[0]);
	status = cmd_setup_read(cli, &cfg, &conn);
	if (status != EXIT_OK)
		return status;
	if (schema_require(conn, cfg.database.schema, &err) < 0 ||
	    !hold_list(conn, cfg.database.schema, a->all, &holds, &n, &err)) {
		log_error("hold: %s", err);
		free(err);
		cmd_teardown(&cfg, conn);
		return EXIT_RUNTIME;
	}
	if (n == 0)
		printf(a->all ? "no legal holds\n" : "no active legal holds\n");
	else
		print_holds(holds, n);
	hold_free_list(holds, n);
	cmd_teardown(&cfg, conn);
	return EXIT_OK;
}

int
cmd_hold(const struct cli *cli)
{
	static const struct option add_opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "until", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option list_opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option no_opts[] = {
		{ NULL, 0, NULL, 0 },
	};
	struct hold_args a = { 0 };

	if (cli->argc < 2)
		return usage_error("%s", "missing subcommand: add, release or list");
	const char *sub = cli->argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
	    strcmp(sub, "help") == 0) {
		hold_usage(stdout);
		return EXIT_OK;
	}

	/* argv[0] of the scan is the subcommand, as getopt expects a name */
	int argc = cli->argc - 1;
	char **argv = cli->argv + 1;
	int status;
	if (strcmp(sub, "add") == 0) {
		status = parse_args(argc, argv, "-:r:u:", add_opts, &a);
		return status != EXIT_OK ? status : hold_add_cmd(cli, &a);
	}
	if (strcmp(sub, "release") == 0) {
		status = parse_args(argc, argv, "-:", no_opts, &a);
		return status != EXIT_OK ? status : hold_release_cmd(cli, &a);
	}
	if (strcmp(sub, "list") == 0) {
		status = parse_args(argc, argv, "-:a", list_opts, &a);
		return status != EXIT_OK ? status : hold_list_cmd(cli, &a);
	}
	return usage_error("unknown subcommand \"%s\" (add, release or list)",
			   sub);
}
