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

/* A foreign key between two tables of the graph: CHILD's cols refer to
 * PARENT's pcols (indexes into tables). Erasure needs it to tell which of a
 * parent's rows the child's remaining rows still keep. */
struct sg_edge {
	size_t child, parent;
	char **cols, **pcols;	/* unquoted names */
	size_t n_cols;
	char on_delete;		/* confdeltype: 'c' cascade, 'n' set null,
				 * 'd' set default, 'a'/'r' no action */
};

struct subject_graph {
	struct sg_table *tables;
	size_t n;
	struct sg_edge *edges;
	size_t n_edges;
};

/* Build KIND's graph from the config and the live catalog. On failure *err
 * names the table, rule or subject that could not be followed. */
bool subject_graph_build(PGconn *conn, const struct config *cfg,
			 const char *kind, struct subject_graph *g,
			 char **err) MUSTCHECK;
/* The same with the ID as parameter $PARAM instead of $1, for queries
 * whose $1 is taken (an erasure's plan: $1 is the cutoff). */
bool subject_graph_build_param(PGconn *conn, const struct config *cfg,
			       const char *kind, int param,
			       struct subject_graph *g, char **err) MUSTCHECK;
void subject_graph_free(struct subject_graph *g);

/* "(t.p1, ..) IN (SELECT t.c1, .. FROM child t WHERE CHILD_PRED)": the rows
 * of E's parent that rows of its child matching CHILD_PRED refer to; NULL
 * when a name is not valid in the database encoding. */
char *subject_graph_referenced(PGconn *conn, const struct subject_graph *g,
			       const struct sg_edge *e, const char *child_pred);

/* `check`: each subject's table and key exist, and each kind's graph can
 * be built; problems go to DIAG at the subject's FILE:LINE. */
void subject_graph_check(PGconn *conn, const struct config *cfg,
			 struct diag *diag);

#endif
