/*
 * grants: the least-privilege GRANT statements a role needs to run the
 * configured rules (`retentiond grants ROLE`). Pure: no database needed.
 */
#ifndef RETENTIOND_GRANTS_H
#define RETENTIOND_GRANTS_H

#include "config.h"
#include "strbuf.h"

/* SQL identifier quoting as PostgreSQL's quote_ident does it, always
 * quoted: "a""b". */
char *sql_quote_ident(const char *name);

void grants_render(const struct config *cfg, const char *role, struct strbuf *out);

#endif
