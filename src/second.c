#include "second.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

void
second_init(struct second *s, const struct config *cfg, const char *why)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->why = why;
}

void
second_close(struct second *s)
{
	if (s->connecting)
		PQfinish(s->conn);
	else
		db_close(s->conn);
	s->conn = NULL;
	s->connecting = false;
}

void
second_give_up(struct second *s, char *err)
{
	second_close(s);
	s->failed = true;
	log_info("could not use a second connection %s, working on one: %s",
		 s->why, err ? err : "unknown error");
	free(err);
}

void
second_prepare(struct second *s)
{
	char *err = NULL;

	if (s->conn || s->failed)
		return;
	s->conn = db_connect_start(s->cfg, &err);
	if (!s->conn)
		second_give_up(s, err);
	else
		s->connecting = true;
}

PGconn *
second_get(struct second *s)
{
	char *err = NULL;

	second_prepare(s);
	if (!s->connecting)
		return s->conn;
	s->connecting = false;
	s->conn = db_connect_finish(s->conn, s->cfg, &err);
	if (s->conn &&
	    !db_exec(s->conn, "SET max_parallel_workers_per_gather = 0", &err)) {
		db_close(s->conn);
		s->conn = NULL;
	}
	if (!s->conn)
		second_give_up(s, err);
	return s->conn;
}

void
second_cancel(PGconn *conn)
{
	db_cancel(conn);
	PGresult *res;
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
}
