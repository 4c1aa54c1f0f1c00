/*
 * erasure_graph: an erasure follows foreign keys (SPEC §11). The subject's
 * rows are subject_graph's (the same as access, §8); each table of it is
 * handled by its own rule's on_erasure, children first. A row that stays
 * (kept, or de-identified) keeps the rows it refers to: those count as kept
 * under that rule and its policy. A referring table that no rule covers
 * blocks: the request names it and its row count, and staff are mailed
 * once per request.
 */
#ifndef RETENTIOND_ERASURE_GRAPH_H
#define RETENTIOND_ERASURE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "subject_graph.h"
#include "util.h"

struct erasure_walk {
	struct subject_graph g;	/* the id is $PLAN_ERASURE_ID_PARAM */
	const char *kind;
	/* per table: the rule whose rows there stay and keep what they
	 * refer to (a keep or de-identify rule, or the one a kept parent
	 * was kept under); NULL when nothing there stays */
	const struct rule **holder;
	/* per table: rows there stay and block what they refer to (no rule
	 * covers the table, or its rows were left blocked) */
	bool *blocker;
};

bool erasure_walk_init(PGconn *conn, const struct config *cfg,
		       const char *kind, struct erasure_walk *w,
		       char **err) MUSTCHECK;
void erasure_walk_fini(struct erasure_walk *w);

/* RULE's table in the graph, or -1 when no row of the subject is there. */
long erasure_walk_table(const struct erasure_walk *w, const struct rule *r);

/* Whether RULE (not one with the request's subject) handles the subject's
 * rows that foreign keys reach: it is enabled, its table is in the graph,
 * and no rule on that table has the subject (those handle it). */
bool erasure_walk_applies(const struct erasure_walk *w, const struct rule *r);

/* Rows of table I of the graph, and of EXTRA when not NULL (on alias t). */
bool erasure_walk_count(PGconn *conn, const struct erasure_walk *w, size_t i,
			const char *extra, const char *subject_id,
			long long *n, char **err) MUSTCHECK;

/* Table I's rows stay and keep what they refer to under RULE (the first
 * such rule wins). */
void erasure_walk_hold(struct erasure_walk *w, size_t i, const struct rule *r);

/* The condition (on alias t) that selects table I's rows that rows
 * staying in a child table refer to; *cond NULL when no child's rows
 * stay. A delete leaves those rows alone: a kept row keeps what it refers
 * to, even where the foreign key would cascade. */
bool erasure_walk_held(PGconn *conn, const struct erasure_walk *w, size_t i,
		       char **cond, char **err) MUSTCHECK;

/* After a delete on table I: how many of its rows left (and matching
 * WHERE, when not NULL) rows that stay in a child table refer to; *under
 * the rule they are kept under (NULL when none). */
bool erasure_walk_kept(PGconn *conn, const struct erasure_walk *w, size_t i,
		       const char *where, const char *subject_id,
		       long long *n, const struct rule **under,
		       char **err) MUSTCHECK;

/* For a plan (nothing is deleted): how many of table I's rows (WHERE's,
 * not HELD's) rows of a blocking child table refer to; the rest of its
 * referred-to rows go once their children have gone. */
bool erasure_walk_staying(PGconn *conn, const struct erasure_walk *w,
			  size_t i, const char *where, const char *held,
			  const char *subject_id, long long *n,
			  char **err) MUSTCHECK;

/* Every table of the graph, reached by a foreign key, that no rule covers
 * and that still has rows of the subject: appended to EO->blocks, or, when
 * its rows go with their parents by cascade and a parent stays, to
 * EO->cascaded (kept with that parent, under its rule). */
bool erasure_walk_blocks(PGconn *conn, const struct erasure_walk *w,
			 struct erasure_outcome *eo, char **err) MUSTCHECK;

/* Tell staff about EO's blocks once per request: queue a mail (in the
 * caller's transaction) unless the request's detail says every blocking
 * table was mailed before. Sets EO->blocks_mailed when staff know. */
bool erasure_blocks_mail(PGconn *conn, const struct config *cfg,
			 struct erasure_outcome *eo, char **err) MUSTCHECK;

#endif
