/* plan_frag: the named fragments of a plan (plan.h) that need the
 * catalog: the de-identify SET list, the foreign key condition. */
#include "plan_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_citus.h"
#include "strbuf.h"

char *
plan_column_ref(PGconn *conn, const char *name)
{
	char *q = db_ident(conn, name);
	if (!q)
		return NULL;
	char *r = xasprintf("t.%s", q);
	free(q);
	return r;
}

int
plan_frag_param(struct plan *p, enum plan_arg arg, Oid type)
{
	int n = p->nfrag++;
	p->frag_args[n] = arg;
	p->frag_types[n] = type;
	return n + 1;
}

/* SET list and the "not yet done" condition of a de-identify rule. */
bool
plan_frag_deidentify(PGconn *conn, const struct config *cfg, struct plan *rs,
		     const struct catalog_table *t, struct strbuf *set,
		     struct strbuf *todo, char **err)
{
	const struct rule *r = rs->rule;
	char *schema_q = db_ident(conn, cfg->database.schema);
	bool uses_hash = false;
	int ipad = 0, opad = 0;
	bool ok = true;

	for (size_t i = 0; i < r->n_deidentify; i++)
		if (r->deidentify[i].method == METHOD_HASH)
			uses_hash = true;
	if (uses_hash) {
		if (!cfg->pseudonym_key.data) {
			*err = xstrdup("method \"hash\" needs the pseudonym key, "
				       "and none was loaded");
			free(schema_q);
			return false;
		}
		deid_hmac_pads(cfg->pseudonym_key.data, cfg->pseudonym_key.len,
			       rs->ipad, rs->opad);
		ipad = plan_frag_param(rs, PA_IPAD, OID_BYTEA);
		opad = plan_frag_param(rs, PA_OPAD, OID_BYTEA);
	}

	/* Done: the marker is set, or (without "hash", whose result cannot
	 * be recognised) every column already equals its method's result. */
	struct strbuf same = STRBUF_INIT;
	for (size_t i = 0; i < r->n_deidentify && ok; i++) {
		const struct column_method *cm = &r->deidentify[i];
		const struct catalog_column *col = catalog_column(t, cm->column);
		if (!col) {
			*err = xasprintf("column \"%s\" does not exist", cm->column);
			ok = false;
			break;
		}
		char *ref = plan_column_ref(conn, cm->column);
		char *lhs = db_ident(conn, cm->column);
		char *citus_err = NULL;
		char *expr = !(ref && lhs && schema_q) ? NULL
			: rs->citus ? plan_citus_deid_expr(conn, cm->method, ref,
							   col, ipad, opad,
							   &citus_err)
			: deid_expr(cm->method, ref, col, schema_q, ipad, opad);
		if (!expr && citus_err) {
			*err = xasprintf("column \"%s\": %s", cm->column,
					 citus_err);
			free(citus_err);
			free(ref);
			free(lhs);
			ok = false;
			break;
		}
		if (!expr) {
			/* fail closed: no half-built SET list */
			*err = xasprintf("could not build the de-identify "
					 "expression for column \"%s\"",
					 cm->column);
			free(ref);
			free(lhs);
			ok = false;
			break;
		}
		sb_printf(set, "%s%s = %s", set->len ? ", " : "", lhs, expr);
		sb_printf(&same, "%s%s IS NOT DISTINCT FROM %s",
			  same.len ? " AND " : "", ref, expr);
		free(ref);
		free(lhs);
		free(expr);
	}
	if (ok && r->marker_column) {
		const struct catalog_column *m = catalog_column(t, r->marker_column);
		if (!m) {
			*err = xasprintf("marker column \"%s\" does not exist",
					 r->marker_column);
			ok = false;
		} else {
			char *lhs = db_ident(conn, r->marker_column);
			char *ref = plan_column_ref(conn, r->marker_column);
			bool is_bool = strcmp(m->base, "bool") == 0;
			if (!lhs || !ref) {
				*err = xasprintf("could not quote the marker "
						 "column \"%s\"", r->marker_column);
				free(lhs);
				free(ref);
				sb_free(&same);
				free(schema_q);
				return false;
			}
			sb_printf(set, ", %s = %s", lhs,
				  is_bool ? "true"
				  : strcmp(m->base, "date") == 0 ? "current_date"
								 : "now()");
			if (uses_hash)
				sb_printf(todo, "%s IS %s", ref,
					  is_bool ? "NOT TRUE" : "NULL");
			else
				sb_printf(todo, "%s IS %s AND NOT (%s)", ref,
					  is_bool ? "NOT TRUE" : "NULL", same.s);
			free(lhs);
			free(ref);
		}
	} else if (ok) {
		sb_printf(todo, "NOT (%s)", same.s);
	}
	sb_free(&same);
	free(schema_q);
	return ok;
}

/*
 * Foreign keys that point at the rule's table. A non-cascading one keeps a
 * referenced row until the rows pointing at it are gone (child rules run
 * first), so the batch skips such rows instead of failing on them; cascades
 * are recorded so the audit trail names the tables they reach.
 */
bool
plan_frag_references(PGconn *conn, struct plan *rs, char **err)
{
	PGresult *res = catalog_referencing_keys(conn, rs->oid, err);
	if (!res)
		return false;

	struct strbuf cond = STRBUF_INIT, casc = STRBUF_INIT;
	const char *prev = "";
	bool open = false, ok = true;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *conoid = PQgetvalue(res, i, 0);
		char type = PQgetvalue(res, i, 3)[0];
		bool first = strcmp(conoid, prev) != 0;
		prev = conoid;
		if (type == 'c') {
			if (first) {
				sb_add(&casc, casc.len ? ", " : "[");
				char *name = xasprintf("%s.%s", PQgetvalue(res, i, 1),
						       PQgetvalue(res, i, 2));
				sb_json_str(&casc, name);
				free(name);
			}
			continue;
		}
		if (type == 'n' || type == 'd')
			continue;	/* SET NULL / DEFAULT: never blocks */
		if (first) {
			if (open)
				sb_add(&cond, ")");
			char *child = db_qualified(conn, PQgetvalue(res, i, 1),
						   PQgetvalue(res, i, 2));
			if (!child) {
				ok = false;
				break;
			}
			sb_printf(&cond, "%sNOT EXISTS (SELECT 1 FROM %s c WHERE %s",
				  cond.len ? " AND " : "", child,
				  PQgetvalue(res, i, 6)[0] == 't'
					  ? "c.ctid <> t.ctid" : "true");
			free(child);
			open = true;
		}
		char *cc = db_ident(conn, PQgetvalue(res, i, 4));
		char *pc = db_ident(conn, PQgetvalue(res, i, 5));
		if (cc && pc)
			sb_printf(&cond, " AND c.%s = t.%s", cc, pc);
		else
			ok = false;
		free(cc);
		free(pc);
		if (!ok)
			break;
	}
	PQclear(res);
	if (!ok) {
		/* fail closed: never a weaker condition */
		*err = xstrdup("could not build the foreign key condition: a "
			       "name is not valid in the database encoding");
		sb_free(&cond);
		sb_free(&casc);
		return false;
	}
	if (open)
		sb_add(&cond, ")");
	if (casc.len)
		sb_add(&casc, "]");
	rs->unreferenced = cond.len ? sb_take(&cond) : xstrdup("true");
	rs->cascades = casc.len ? sb_take(&casc) : NULL;
	sb_free(&cond);
	sb_free(&casc);
	return true;
}
