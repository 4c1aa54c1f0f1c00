/*
 * subject_graph: where one subject's rows are (SPEC §8). The subject's own
 * row (subjects.KIND.table by key), the rows of every rule table whose
 * subject_column holds the ID, and every row that refers to any of those
 * through foreign keys, parent to child, to a depth of 8, whether a rule
 * covers that table or not.
 *
 * Each table appears once, with a SQL predicate on the alias "t" that
 * selects exactly the subject's rows, taking the ID as the text parameter
 * $1 (cast to each key column's type, so indexes are used). Rows reached by
 * several paths are united in one predicate; self-references and cycles
 * are followed to the depth limit and no further. A foreign key into the
 * subject table itself is not followed: it leads to other people's rows.
 * Tables are listed parents first; erasure walks them in reverse, children
 * first.
 */
#ifndef RETENTIOND_SUBJECT_GRAPH_H
#define RETENTIOND_SUBJECT_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "diag.h"
#include "util.h"

/* Foreign keys are followed this far from the subject's own rows. */
#define SUBJECT_GRAPH_MAX_DEPTH 8
/* A predicate longer than this means a tangle of foreign keys that would
 * make a query no planner finishes: the request fails rather than guess. */
#define SUBJECT_GRAPH_MAX_SQL (1024 * 1024)

struct sg_table {
	char *schema;
	char *table;
	int depth;		/* 0: subject key or rule; N: N foreign keys away */
	char *reached_by;	/* how, for people: "subject key \"id\"", ... */
	char *predicate;	/* on alias t; $1 is the subject id as text */
	const struct rule **rules;	/* enabled rules on this table */
	size_t n_rules;
};

struct subject_graph {
	struct sg_table *tables;
	size_t n;
};

/* Build KIND's graph from the config and the live catalog. On failure *err
 * names the table, rule or subject that could not be followed. */
bool subject_graph_build(PGconn *conn, const struct config *cfg,
			 const char *kind, struct subject_graph *g,
			 char **err) MUSTCHECK;
void subject_graph_free(struct subject_graph *g);

/* `check`: each subject's table and key exist, and each kind's graph can
 * be built; problems go to DIAG at the subject's FILE:LINE. */
void subject_graph_check(PGconn *conn, const struct config *cfg,
			 struct diag *diag);

#endif
