#include "deid.h"

#include <stdio.h>
#include <string.h>

#include "sha256.h"

static bool
is_inet(const struct catalog_column *col)
{
	return strcmp(col->base, "inet") == 0 || strcmp(col->base, "cidr") == 0;
}

char *
deid_expr(enum deid_method method, const char *c,
	  const struct catalog_column *col, const char *schema_q,
	  int ipad_param, int opad_param)
{
	switch (method) {
	case METHOD_NULL:
		return xstrdup("NULL");
	case METHOD_REDACT:
		return xasprintf("CASE WHEN %s IS NULL THEN NULL ELSE '"
				 DEID_REDACTED "' END", c);
	case METHOD_HASH:
		/* text of any type, so equal inputs stay equal across tables */
		return xasprintf("encode(sha256($%d::bytea || sha256($%d::bytea"
				 " || convert_to(%s::text, 'UTF8'))), 'hex')",
				 opad_param, ipad_param, c);
	case METHOD_MASK_EMAIL:
		return xasprintf("CASE WHEN %s IS NULL THEN NULL"
				 " WHEN strpos(%s, '@') > 0"
				 " THEN '***@' || split_part(%s, '@', -1)"
				 " ELSE '***' END", c, c, c);
	case METHOD_TRUNCATE_IP:
		if (is_inet(col))
			return xasprintf(
				"CASE family(%s) WHEN 4"
				" THEN network(set_masklen(%s, least(masklen(%s), 24)))"
				" ELSE network(set_masklen(%s, least(masklen(%s), 48)))"
				" END", c, c, c, c, c);
		/* text: an unparsable address cannot be cast in plain SQL
		 * without failing the whole batch, so a helper catches it */
		return xasprintf("%s.truncate_ip_text(%s)", schema_q, c);
	case METHOD_YEAR:
		if (strcmp(col->base, "date") == 0)
			return xasprintf("date_trunc('year', %s)::date", c);
		if (strcmp(col->base, "timestamptz") == 0)
			/* fixed zone: the result must not depend on the session */
			return xasprintf("date_trunc('year', %s, 'UTC')", c);
		return xasprintf("date_trunc('year', %s)", c);
	}
	return xstrdup("NULL");
}

static void
to_hex_literal(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	*out++ = '\\';
	*out++ = 'x';
	for (size_t i = 0; i < n; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 15];
	}
	*out = '\0';
}

void
deid_hmac_pads(const unsigned char *key, size_t keylen,
	       char ipad_hex[DEID_PAD_HEX_LEN], char opad_hex[DEID_PAD_HEX_LEN])
{
	unsigned char k[64] = { 0 };
	unsigned char ipad[64], opad[64];

	if (keylen > sizeof(k))
		sha256(key, keylen, k);	/* long keys are hashed first */
	else
		memcpy(k, key, keylen);
	for (size_t i = 0; i < sizeof(k); i++) {
		ipad[i] = k[i] ^ 0x36;
		opad[i] = k[i] ^ 0x5c;
	}
	to_hex_literal(ipad, sizeof(ipad), ipad_hex);
	to_hex_literal(opad, sizeof(opad), opad_hex);
	explicit_bzero(k, sizeof(k));
	explicit_bzero(ipad, sizeof(ipad));
	explicit_bzero(opad, sizeof(opad));
}
