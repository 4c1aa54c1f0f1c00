/*
 * sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained so
 * the audit hash chain and the "hash" de-identification method do not depend
 * on which TLS library libpq or libcurl were built with.
 */
#ifndef RETENTIOND_SHA256_H
#define RETENTIOND_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_BLOCK_LEN 64
#define SHA256_HEX_LEN 65	/* 64 hex digits and a NUL */

struct sha256_ctx {
	uint32_t state[8];
	uint64_t bytes;		/* message length so far */
	unsigned char block[SHA256_BLOCK_LEN];
	size_t fill;		/* bytes waiting in block */
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes ctx; init again to reuse it. */
void sha256_final(struct sha256_ctx *ctx, unsigned char out[32]);

void sha256(const void *data, size_t len, unsigned char out[32]);
void hmac_sha256(const void *key, size_t keylen, const void *msg,
		 size_t msglen, unsigned char out[32]);

/* Lower-case hex, NUL-terminated. */
void sha256_hex(const unsigned char in[32], char out[65]);

#endif
