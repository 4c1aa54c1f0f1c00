/*
 * catalog: checks each rule against the live database catalog (`check`):
 * table and columns exist, types fit the method, NOT NULL vs "null", the
 * where condition is valid, an index on the age column, partitioning.
 */
#ifndef RETENTIOND_CATALOG_H
#define RETENTIOND_CATALOG_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"
#include "diag.h"
#include "util.h"

/* One column of a table as the catalog describes it. */
struct catalog_column {
	char *name;
	char *type;		/* format_type(), e.g. "character varying(20)" */
	char *base;		/* base type name after domains, e.g. "varchar" */
	char category;		/* pg_type.typcategory of the base type */
	int max_len;		/* declared length of varchar/char, else -1 */
	bool not_null;
	int attnum;
};

struct catalog_table {
	char *oid;		/* NULL when the table does not exist */
	char relkind;		/* 'r' table, 'p' partitioned table, ... */
	struct catalog_column *cols;
	int n_cols;
};

/* Load SCHEMA.TABLE's kind and columns. Returns false with *err on a
 * database error; true with t->oid NULL when there is no such relation. */
bool catalog_table_load(PGconn *conn, const char *schema, const char *table,
			struct catalog_table *t, char **err) MUSTCHECK;
void catalog_table_free(struct catalog_table *t);
const struct catalog_column *catalog_column(const struct catalog_table *t,
					    const char *name);

bool catalog_is_datetime(const struct catalog_column *col);
bool catalog_is_text(const struct catalog_column *col);

/* Whether an index starts with column ATTNUM of table OID. */
/*
 * The foreign keys that point at table OID, one row per column pair,
 * ordered by constraint: (constraint oid, child schema, child table,
 * confdeltype, child column, parent column, self-reference 't'/'f').
 * NULL with *err on failure.
 */
PGresult *catalog_referencing_keys(PGconn *conn, const char *oid,
				   char **err) MUSTCHECK;

bool catalog_has_index_on(PGconn *conn, const struct catalog_table *t,
			  const struct catalog_column *col, bool *has,
			  char **err) MUSTCHECK;

/* Adds errors, warnings and notes for every rule to diag, located at the
 * rule's (or the offending key's) line in the config file. */
void catalog_check_rules(PGconn *conn, const struct config *cfg,
			 struct diag *diag);

#endif
