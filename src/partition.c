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

/* A partition waiting for its group's transaction. */
struct candidate {
	size_t part;			/* in partition_result.parts */
	char *qpart;			/* owned */
	struct pcount_target target;	/* qpart, and the list's strings */
};

/* At most this many partitions leave in one transaction. */
#define GROUP_MAX 32

static bool
lock_all(PGconn *conn, const struct candidate *c, size_t n, bool *lock_busy,
	 char **err)
{
	struct strbuf sql = STRBUF_INIT;
	sb_add(&sql, "LOCK TABLE ");
	for (size_t i = 0; i < n; i++)
		sb_printf(&sql, "%s%s", i ? ", " : "", c[i].qpart);
	/* SHARE: readers go on, writers wait; the counts then stay true */
	sb_add(&sql, " IN SHARE MODE");
	bool ok = exec_lock_aware(conn, sql.s, lock_busy, err);
	sb_free(&sql);
	return ok;
}

/*
 * One transaction for the N partitions of C: lock them against writes,
 * check again that none holds rows that must stay (a hold may have been
 * placed since the list was made: such a partition is left, with why),
 * count each of the others, drop or detach it, and insert its audit row.
 * Returns false with *err (all rolled back); *lock_busy when only a lock
 * could not be had in time.
 */
static bool
retire_group(PGconn *conn, const struct config *cfg, struct plan *rs,
	     const char *cutoff, long long run_id, struct pcount *pc,
	     const struct candidate *c, size_t n, struct partition_result *out,
	     bool *lock_busy, char **err)
{
	bool drop = rs->rule->partitions == PARTITIONS_DROP;
	const char **why = xcalloc(n, sizeof(*why));

	*lock_busy = false;
	if (!db_exec(conn, "BEGIN", err)) {
		free(why);
		return false;
	}
	bool ok = lock_all(conn, c, n, lock_busy, err);
	for (size_t i = 0; i < n && ok; i++)
		ok = (why[i] = why_kept(conn, rs, c[i].qpart, err)) != NULL;
	for (size_t i = 0; i < n && ok; i++)
		if (!*why[i])
			ok = pcount_rows(pc, conn, &c[i].target,
					 &out->parts[c[i].part].rows, err);
	for (size_t i = 0; i < n && ok; i++) {
		if (*why[i])
			continue;
		char *sql = drop ? xasprintf("DROP TABLE %s", c[i].qpart)
				 : xasprintf("ALTER TABLE %s DETACH PARTITION %s",
					     rs->qtable, c[i].qpart);
		ok = exec_lock_aware(conn, sql, lock_busy, err);
		free(sql);
	}
	for (size_t i = 0; i < n && ok; i++)
		if (!*why[i])
			ok = insert_audit(conn, cfg, rs, run_id,
					  drop ? "drop_partition"
					       : "detach_partition",
					  cutoff, &out->parts[c[i].part], err);
	if (!ok)
		rollback(conn);
	else
		ok = db_exec(conn, "COMMIT", err);
	for (size_t i = 0; i < n; i++) {
		struct partition_plan *pp = &out->parts[c[i].part];
		if (!ok) {
			pp->rows = 0;
		} else if (*why[i]) {
			pp->skipped = xstrdup(why[i]);
		} else {
			pp->retired = true;
			out->rows += pp->rows;
		}
	}
	free(why);
	return ok;
}

/* Retire one partition on its own; a lock not granted in time leaves it
 * for the next cycle (it is marked skipped), any other failure is an
 * error naming it. */
static bool
retire_one(PGconn *conn, const struct config *cfg, struct plan *rs,
	   const char *cutoff, long long run_id, struct pcount *pc,
	   const struct candidate *c, struct partition_result *out,
	   char **err)
{
	struct partition_plan *pp = &out->parts[c->part];
	bool busy = false;
	char *e = NULL;

	if (retire_group(conn, cfg, rs, cutoff, run_id, pc, c, 1, out, &busy,
			 &e))
		return true;
	if (busy) {
		pp->skipped = xasprintf("lock not granted: %s", e);
		free(e);
		return true;
	}
	*err = xasprintf("partition %s: %s", pp->name, e);
	free(e);
	return false;
}

/* How many partitions the next group takes, when each took EACH ms and a
 * group aims at AIM ms. */
static size_t
group_size(double aim, double each)
{
	if (each * GROUP_MAX <= aim)
		return GROUP_MAX;
	if (each >= aim)
		return 1;
	return (size_t)(aim / each);
}

/*
 * Retire the N partitions of C in groups, a transaction each. A drop or
 * detach locks the parent table ACCESS EXCLUSIVE until its transaction
 * ends, so a group aims at half the rule's batch_target: the first is one
 * partition, the next sized from the time each took. Each transaction
 * costs a commit (on Citus a two-phase one on every worker), a lock and
 * its round trips: one per partition made drops on Citus half again as
 * slow as Citus's drop_old_time_partitions() (bench/README.md). A group
 * that fails is rolled back and its partitions retried one by one, so a
 * busy lock skips only its own partition and an error names its own.
 */
static bool
retire_groups(PGconn *conn, const struct config *cfg, struct plan *rs,
	      const char *cutoff, long long run_id, struct pcount *pc,
	      const struct candidate *c, size_t n,
	      struct partition_result *out, char **err)
{
	double aim = (double)duration_ms(&rs->rule->limits.batch_target) / 2;
	size_t size = 1, k;

	for (size_t i = 0; i < n; i += k) {
		k = size < n - i ? size : n - i;
		double t0 = monotonic_ms();
		if (k > 1) {
			bool busy = false;
			char *e = NULL;
			if (retire_group(conn, cfg, rs, cutoff, run_id, pc,
					 &c[i], k, out, &busy, &e)) {
				size = group_size(aim, (monotonic_ms() - t0) / (double)k);
				continue;
			}
			free(e);
		}
		for (size_t j = 0; j < k; j++)
			if (!retire_one(conn, cfg, rs, cutoff, run_id, pc,
					&c[i + j], out, err))
				return false;
		size = k > 1 ? 1 : group_size(aim, monotonic_ms() - t0);
	}
	return true;
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
	struct candidate *cand = xcalloc((size_t)PQntuples(res) + 1,
					 sizeof(*cand));
	size_t n_cand = 0;
	for (int i = 0; i < PQntuples(res) && ok; i++) {
		bool expired = PQgetvalue(res, i, 3)[0] == 't';
		bool pending = PQgetvalue(res, i, 4)[0] == 't';
		char *qpart = db_qualified(conn, PQgetvalue(res, i, 0),
					   PQgetvalue(res, i, 1));
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
		struct candidate *cd = &cand[n_cand++];
		*cd = (struct candidate){
			.part = out->n - 1,
			.qpart = qpart,
			.target = {
				.oid = PQgetvalue(res, i, 5),
				.schema = PQgetvalue(res, i, 0),
				.table = PQgetvalue(res, i, 1),
				.qpart = qpart,
				.reltuples = atof(PQgetvalue(res, i, 6)),
			},
		};
		if (!dry_run)
			continue;
		const char *why = why_kept(conn, rs, qpart, err);
		if (!why)
			ok = false;
		else if (*why)
			pp->skipped = xstrdup(why);
		else
			ok = pcount_rows(&pc, conn, &cd->target, &pp->rows, err);
	}
	if (ok && !dry_run)
		ok = retire_groups(conn, cfg, rs, cutoff, run_id, &pc, cand,
				   n_cand, out, err);
	for (size_t i = 0; i < n_cand; i++)
		free(cand[i].qpart);
	free(cand);
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
