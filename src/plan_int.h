/* plan_int: what plan.c and plan_frag.c share; not for other modules. */
#ifndef RETENTIOND_PLAN_INT_H
#define RETENTIOND_PLAN_INT_H

#include "plan.h"
#include "strbuf.h"

/* PostgreSQL type oids of the parameters (pg_type.h is server-side). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_TIMESTAMPTZ 1184
#define OID_JSONB 3802

/* t."name", or NULL when NAME cannot be quoted. */
char *plan_column_ref(PGconn *conn, const char *name);

/* Add a fragment parameter; its number ($n in every statement). */
int plan_frag_param(struct plan *p, enum plan_arg arg, Oid type);

/* The SET list and the "not yet done" condition of a de-identify rule on
 * table T; adds the HMAC pads as fragment parameters for "hash". */
bool plan_frag_deidentify(PGconn *conn, const struct config *cfg,
			  struct plan *p, const struct catalog_table *t,
			  struct strbuf *set, struct strbuf *todo, char **err);

/*
 * Foreign keys that point at the rule's table: p->unreferenced ("true"
 * when none can block) and p->cascades.
 */
bool plan_frag_references(PGconn *conn, struct plan *p, char **err);

#endif
