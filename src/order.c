#include "order.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

void
order_topological(size_t n, const bool *before, size_t *order)
{
	bool *placed = xcalloc(n, sizeof(*placed));
	size_t done = 0;

	while (done < n) {
		bool progress = false;
		/* the first unplaced rule nothing unplaced must precede */
		for (size_t j = 0; j < n; j++) {
			if (placed[j])
				continue;
			bool ready = true;
			for (size_t i = 0; i < n && ready; i++)
				if (i != j && !placed[i] && before[i * n + j])
					ready = false;
			if (ready) {
				order[done++] = j;
				placed[j] = true;
				progress = true;
				break;
			}
		}
		if (!progress) {
			/* a cycle: take the first remaining in file order */
			for (size_t j = 0; j < n; j++) {
				if (!placed[j]) {
					order[done++] = j;
					placed[j] = true;
					break;
				}
			}
		}
	}
	free(placed);
}

bool
order_rules(PGconn *conn, const struct config *cfg, size_t *order, char **err)
{
	size_t n = cfg->n_rules;
	char **oids = xcalloc(n ? n : 1, sizeof(*oids));
	size_t cells = n * n;
	bool *before = xcalloc(cells ? cells : 1, sizeof(*before));
	bool ok = false;

	for (size_t i = 0; i < n; i++) {
		const char *p[] = { cfg->rules[i].schema, cfg->rules[i].table };
		PGresult *res = db_query(conn,
			"SELECT c.oid FROM pg_class c JOIN pg_namespace s"
			" ON s.oid = c.relnamespace WHERE s.nspname = $1"
			" AND c.relname = $2", 2, p, err);
		if (!res)
			goto out;
		if (PQntuples(res) == 1)
			oids[i] = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	PGresult *res = db_query(conn,
		"SELECT conrelid::text, confrelid::text FROM pg_constraint"
		" WHERE contype = 'f' AND conparentid = 0"
		" AND conrelid <> confrelid", 0, NULL, err);
	if (!res)
		goto out;
	for (int k = 0; k < PQntuples(res); k++) {
		const char *child = PQgetvalue(res, k, 0);
		const char *parent = PQgetvalue(res, k, 1);
		for (size_t i = 0; i < n; i++) {
			if (!oids[i] || strcmp(oids[i], child) != 0)
				continue;
			for (size_t j = 0; j < n; j++)
				if (oids[j] && strcmp(oids[j], parent) == 0)
					before[i * n + j] = true;
		}
	}
	PQclear(res);
	order_topological(n, before, order);
	ok = true;
out:
	for (size_t i = 0; i < n; i++)
		free(oids[i]);
	free(oids);
	free(before);
	return ok;
}
