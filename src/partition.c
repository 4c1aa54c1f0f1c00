#include "partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "db.h"
#include "log.h"
#include "pcount.h"
#include "strbuf.h"

/* The rule's table is range-partitioned on exactly its age column. */
static bool
partitioned_by_age(PGconn *conn, const struct plan *rs, bool *yes,
		   char **err)
{
	char attnum[16];
	snprintf(attnum, sizeof(attnum), "%d", rs->age_attnum);
	const char *p[] = { rs->oid, attnum };
	PGresult *res = db_query(conn,
		"SELECT partstrat = 'r' AND partnatts = 1 AND partattrs[0] = $2::int2"
		" FROM pg_partitioned_table WHERE partrelid = $1::oid", 2, p, err);
	if (!res)
		return false;
	*yes = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

/* The direct leaf partitions and their upper bounds ("TO ('...')"), with
 * whether the whole range lies before the cutoff (the default partition
 * and MAXVALUE bounds never match), their oids and estimated rows. */
static PGresult *
list_partitions(PGconn *conn, const struct plan *rs, const char *cutoff,
		char **err)
{
	const char *p[] = { rs->oid, cutoff };
	return db_query(conn,
		"SELECT n.nspname, c.relname, b.upper,"
		"  b.upper IS NOT NULL AND b.upper::timestamptz <= $2::timestamptz,"
		"  i.inhdetachpending, c.oid, c.reltuples"
		" FROM pg_inherits i"
		" JOIN pg_class c ON c.oid = i.inhrelid"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" CROSS JOIN LATERAL (SELECT (regexp_match("
		"    pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]"
		"    AS upper) b"
		" WHERE i.inhparent = $1::oid AND c.relkind = 'r'"
		" ORDER BY b.upper", 2, p, err);
}

/* Whether any row of partition QPART fails COND (an expression on alias t
 * using the rule's parameters). */
static bool
any_row_fails(PGconn *conn, struct plan *rs, const char *qpart,
	      const char *cond, bool *found, char **err)
{
	char *sql = xasprintf("SELECT EXISTS (SELECT 1 FROM %s t WHERE NOT (%s))",
			      qpart, cond);
	PGresult *res = plan_exec_sql(conn, rs, sql, NULL, err);
	free(sql);
	if (!res)
		return false;
	*found = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

static bool
insert_audit(PGconn *conn, const struct config *cfg, const struct plan *rs,
	     long long run_id, const char *action, const char *cutoff,
	     const struct partition_plan *pp, char **err)
{
	struct strbuf d = STRBUF_INIT;
	sb_add(&d, "{\"partition_bound\": ");
	sb_json_str(&d, pp->bound);
	sb_add(&d, "}");
	/* "now": the transaction's start, when the partition was locked */
	bool ok = audit_append(conn, cfg->database.schema, run_id,
			       rs->rule->name, pp->name, action, cutoff,
			       pp->rows, "now", "now", d.s, err);
	sb_free(&d);
	return ok;
}

/* Like db_exec, noting whether the failure was a lock we may not wait for. */
static bool
exec_lock_aware(PGconn *conn, const char *sql, bool *lock_busy, char **err)
{
	enum db_errclass class;
	PGresult *res = db_exec_params(conn, sql, 0, NULL, NULL, &class, err);
	if (res) {
		PQclear(res);
		return true;
	}
	*lock_busy = db_errclass_is_lock(class);
	return false;
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e))
		free(e);
}

/* Why the rows of partition QPART must stay ("": none need), or NULL
 * with *err. */
static const char *
why_kept(PGconn *conn, struct plan *rs, const char *qpart, char **err)
{
	bool found = false;
	if (rs->rule->where) {
		char *cond = xasprintf("(%s)", rs->rule->where);
		bool ok = any_row_fails(conn, rs, qpart, cond, &found, err);
		free(cond);
		if (!ok)
			return NULL;
		if (found)
			return "rows the rule's where keeps";
	}
	if (strcmp(rs->not_held, "true") != 0) {
		if (!any_row_fails(conn, rs, qpart, rs->not_held, &found, err))
			return NULL;
		if (found)
			return "rows of a subject under legal hold";
	}
	return "";
}

/*
 * One transaction: lock the partition against writes, check that none of
 * its rows must stay (under the lock: a hold placed since the partitions
 * were listed is seen), count, drop or detach, audit. Returns false with
 * *err; *lock_busy when only the lock could not be had in time (the
 * partition waits for the next cycle). *KEPT says why the partition
 * stays ("": it left).
 */
static bool
retire_one(PGconn *conn, const struct config *cfg, struct plan *rs,
	   const char *cutoff, long long run_id, struct pcount *pc,
	   const struct pcount_target *target, struct partition_plan *pp,
	   const char **kept, bool *lock_busy, char **err)
{
	const char *qpart = target->qpart;
	bool drop = rs->rule->partitions == PARTITIONS_DROP;
	char *sql = NULL;

	*lock_busy = false;
	if (!db_exec(conn, "BEGIN", err))
		return false;
	/* SHARE: readers go on, writers wait; the count then stays true */
	char *lock = xasprintf("LOCK TABLE %s IN SHARE MODE", qpart);
	bool locked = exec_lock_aware(conn, lock, lock_busy, err);
	free(lock);
	if (!locked)
		goto fail;
	*kept = why_kept(conn, rs, qpart, err);
	if (!*kept)
		goto fail;
	if (**kept) {
		rollback(conn);
		return true;
	}
	if (!pcount_rows(pc, conn, target, &pp->rows, err))
		goto fail;
	sql = drop ? xasprintf("DROP TABLE %s", qpart)
		   : xasprintf("ALTER TABLE %s DETACH PARTITION %s", rs->qtable,
			       qpart);
	if (!exec_lock_aware(conn, sql, lock_busy, err))
		goto fail;
	if (!insert_audit(conn, cfg, rs, run_id,
			  drop ? "drop_partition" : "detach_partition", cutoff,
			  pp, err))
		goto fail;
	if (!db_exec(conn, "COMMIT", err))
		goto fail;
	free(sql);
	pp->retired = true;
	return true;
fail:
	free(sql);
	rollback(conn);
	return false;
}

/* A detach someone started CONCURRENTLY and did not finish blocks further
 * detaches of that table; FINALIZE completes it. */
static bool
finalize(PGconn *conn, const struct plan *rs, const char *qpart, char **err)
{
	char *sql = xasprintf("ALTER TABLE %s DETACH PARTITION %s FINALIZE",
			      rs->qtable, qpart);
	bool ok = db_exec(conn, sql, err);
	free(sql);
	return ok;
}

bool
partition_retire(PGconn *conn, const struct config *cfg, struct plan *rs,
		 const char *cutoff, long long run_id, bool dry_run,
		 struct partition_result *out, char **err)
{
	bool by_age = false;

	memset(out, 0, sizeof(*out));
	if (rs->relkind != 'p' || rs->action != ACTION_DELETE ||
	    rs->mode != PLAN_EXPIRY || rs->rule->partitions == PARTITIONS_ROWS)
		return true;
	if (!partitioned_by_age(conn, rs, &by_age, err))
		return false;
	if (!by_age)
		return true;
	if (strcmp(rs->unreferenced, "true") != 0) {
		log_info("rule \"%s\" (%s.%s): other tables reference this "
			 "table, so expired partitions are emptied by row batches",
			 rs->rule->name, rs->rule->schema, rs->rule->table);
		return true;
	}

	PGresult *res = list_partitions(conn, rs, cutoff, err);
	if (!res)
		return false;
	bool ok = true;
	struct pcount pc;
	pcount_init(&pc, cfg);
	/* a big partition will be counted over two connections: let the
	 * second one start while the work before it goes on */
	for (int i = 0; i < PQntuples(res); i++)
		if (PQgetvalue(res, i, 3)[0] == 't' &&
		    atof(PQgetvalue(res, i, 6)) >= PCOUNT_SPLIT_ROWS) {
			pcount_prepare(&pc);
			break;
		}
	for (int i = 0; i < PQntuples(res) && ok; i++) {
		bool expired = PQgetvalue(res, i, 3)[0] == 't';
		bool pending = PQgetvalue(res, i, 4)[0] == 't';
		char *qpart = db_qualified(conn, PQgetvalue(res, i, 0),
					   PQgetvalue(res, i, 1));
		struct pcount_target target = {
			.oid = PQgetvalue(res, i, 5),
			.schema = PQgetvalue(res, i, 0),
			.table = PQgetvalue(res, i, 1),
			.qpart = qpart,
			.reltuples = atof(PQgetvalue(res, i, 6)),
		};
		char *name = xasprintf("%s.%s", PQgetvalue(res, i, 0),
				       PQgetvalue(res, i, 1));
		if (pending && !dry_run) {
			if (!finalize(conn, rs, qpart, err)) {
				ok = false;
			} else {
				out->finalized++;
				log_notice("rule \"%s\": finished the interrupted "
					   "detach of partition %s",
					   rs->rule->name, name);
			}
			free(qpart);
			free(name);
			continue;
		}
		if (!expired) {
			free(qpart);
			free(name);
			continue;
		}
		out->parts = xreallocarray(out->parts, out->n + 1,
					   sizeof(*out->parts));
		struct partition_plan *pp = &out->parts[out->n++];
		memset(pp, 0, sizeof(*pp));
		pp->name = name;
		pp->bound = xstrdup(PQgetvalue(res, i, 2));

		/* a run checks under the partition's lock (retire_one) */
		const char *why = dry_run ? why_kept(conn, rs, qpart, err) : "";
		if (!why) {
			ok = false;
		} else if (*why) {
			pp->skipped = xstrdup(why);
		} else if (dry_run) {
			ok = pcount_rows(&pc, conn, &target, &pp->rows, err);
		} else {
			bool busy = false;
			char *e = NULL;
			const char *kept = "";
			if (retire_one(conn, cfg, rs, cutoff, run_id, &pc, &target,
				       pp, &kept, &busy, &e)) {
				if (*kept)
					pp->skipped = xstrdup(kept);
				else
					out->rows += pp->rows;
			} else if (busy) {
				pp->skipped = xasprintf("lock not granted: %s", e);
				free(e);
			} else {
				*err = xasprintf("partition %s: %s", name, e);
				free(e);
				ok = false;
			}
		}
		free(qpart);
	}
	pcount_close(&pc);
	PQclear(res);
	return ok;
}

void
partition_result_free(struct partition_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->parts[i].name);
		free(r->parts[i].bound);
		free(r->parts[i].skipped);
	}
	free(r->parts);
	memset(r, 0, sizeof(*r));
}
