/*
 * grants: the least-privilege GRANT statements a role needs to run the
 * configured rules (`retentiond grants ROLE`). Pure: what only the
 * database knows (which tables reference a rule's table) comes in as data.
 */
#ifndef RETENTIOND_GRANTS_H
#define RETENTIOND_GRANTS_H

#include "config.h"
#include "strbuf.h"

/* SQL identifier quoting as PostgreSQL's quote_ident does it, always
 * quoted: "a""b". */
char *sql_quote_ident(const char *name);

/* A column of a table without a rule whose foreign key references a
 * rule's table (not ON DELETE CASCADE / SET NULL / SET DEFAULT): the
 * batches skip rows it still references, so they must read it. */
struct grants_ref {
	size_t rule;		/* index into cfg->rules */
	char *schema;		/* the referencing table ... */
	char *table;
	char *column;		/* ... and one of its referencing columns */
};

/* A leaf partition of a rule's partitioned table: the batches work on
 * each one directly, which PostgreSQL checks against the partition's own
 * privileges, not the parent's. */
struct grants_part {
	size_t rule;		/* index into cfg->rules */
	char *schema;
	char *table;
};

struct grants_refs {
	bool known;		/* false: the database could not be asked */
	char *why;		/* then: why not */
	struct grants_ref *v;	/* sorted by rule, schema, table */
	size_t n;
	struct grants_part *parts;	/* sorted by rule */
	size_t n_parts;
	/* Every table an access export reads (SPEC §8), for all subject
	 * kinds: the subject tables, the rule tables and their children by
	 * foreign key; n_access entries of schema and table. */
	char **access_schemas;
	char **access_tables;
	size_t n_access;
};

void grants_refs_free(struct grants_refs *refs);

void grants_render(const struct config *cfg, const char *role,
		   const struct grants_refs *refs, struct strbuf *out);

#endif
