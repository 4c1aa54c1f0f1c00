/*
 * order: the order rules run in. A rule on a table that references another
 * rule's table runs first (child before parent), so the parent's expired
 * rows are no longer referenced when its turn comes. Otherwise the config
 * file's order; rules in a reference cycle keep it too.
 */
#ifndef RETENTIOND_ORDER_H
#define RETENTIOND_ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "util.h"

/* ORDER receives cfg->n_rules indexes into cfg->rules. */
bool order_rules(PGconn *conn, const struct config *cfg, size_t *order,
		 char **err) MUSTCHECK;

/* The sort itself, on an adjacency matrix: before[i * n + j] means rule i
 * must run before rule j. Stable; cycles fall back to index order. */
void order_topological(size_t n, const bool *before, size_t *order);

#endif
