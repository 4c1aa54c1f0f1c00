/*
 * deid: the SQL for each de-identification method (SPEC §3).
 *
 * Every method but "hash" is idempotent: applying it to its own result
 * changes nothing, so "done" is simply "value equals method(value)". Hashing
 * a hash would change it again, which is why "hash" needs a marker column.
 */
#ifndef RETENTIOND_DEID_H
#define RETENTIOND_DEID_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "util.h"

/* The text "redact" writes. */
#define DEID_REDACTED "[redacted]"

/*
 * SQL expression for METHOD applied to COL_REF (an already quoted column
 * reference such as t."email"). COL describes the column's type. For
 * "hash", IPAD_PARAM and OPAD_PARAM are the parameter numbers of the HMAC
 * pads (bytea); SCHEMA_Q is retentiond's quoted schema, home of the helper
 * for IP addresses stored as text. Returns malloc'd SQL.
 */
char *deid_expr(enum deid_method method, const char *col_ref,
		const struct catalog_column *col, const char *schema_q,
		int ipad_param, int opad_param) MUSTCHECK;

/*
 * HMAC-SHA256 as two pads (RFC 2104): HMAC(K, m) = H(opad || H(ipad || m)),
 * so PostgreSQL's built-in sha256() computes it with no extension. Writes
 * each pad as a bytea hex literal ("\\x" + 128 hex digits + NUL).
 */
#define DEID_PAD_HEX_LEN (2 + 128 + 1)
void deid_hmac_pads(const unsigned char *key, size_t keylen,
		    char ipad_hex[DEID_PAD_HEX_LEN],
		    char opad_hex[DEID_PAD_HEX_LEN]);

#endif
