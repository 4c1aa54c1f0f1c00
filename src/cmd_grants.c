/*
 * `retentiond grants ROLE`: print what ROLE needs; changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "diag.h"
#include "grants.h"
#include "strbuf.h"

int
cmd_grants(const struct cli *cli)
{
	struct config cfg;
	struct diag diag;

	if (cli->argc != 2 || cli->argv[1][0] == '\0') {
		fprintf(stderr, "Usage: retentiond grants ROLE\n");
		return EXIT_USAGE;
	}
	diag_init(&diag);
	if (!config_load(cli->config_path, &cfg, &diag)) {
		diag_print(&diag);
		diag_fini(&diag);
		return EXIT_USAGE;
	}
	diag_fini(&diag);

	struct strbuf out = STRBUF_INIT;
	grants_render(&cfg, cli->argv[1], &out);
	fputs(out.s, stdout);
	sb_free(&out);
	config_free(&cfg);
	return EXIT_OK;
}
