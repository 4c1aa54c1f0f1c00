/* sha256: FIPS 180-4 example vectors, RFC 4231 HMAC-SHA256 test cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void
assert_digest(const unsigned char digest[32], const char *hex)
{
	char got[65];

	sha256_hex(digest, got);
	assert_string_equal(got, hex);
}

static void
test_nist_short_messages(void **state)
{
	static const struct {
		const char *msg;
		const char *hex;
	} cases[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb924"
		     "27ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223"
			"b00361a396177a9cb410ff61f20015ad"},
		/* 448 bits: the padding needs a second block */
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039"
		 "a33ce45964ff2167f6ecedd419db06c1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		 "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		 "cf5b16a778af8380036ce59e7b049237"
		 "0b249b11e8f07a51afac45037afee9d1"},
	};
	unsigned char d[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sha256(cases[i].msg, strlen(cases[i].msg), d);
		assert_digest(d, cases[i].hex);
	}
}

static void
test_nist_million_a_in_uneven_pieces(void **state)
{
	struct sha256_ctx ctx;
	unsigned char d[32];
	char *a = malloc(1000000);
	size_t done = 0, piece = 1;

	(void)state;
	assert_non_null(a);
	memset(a, 'a', 1000000);
	sha256(a, 1000000, d);
	assert_digest(d, "cdc76e5c9914fb9281a1c7e284d73e67"
			 "f1809a48a497200e046d39ccc7112cd0");

	sha256_init(&ctx);
	while (done < 1000000) {
		size_t n = piece < 1000000 - done ? piece : 1000000 - done;
		sha256_update(&ctx, a + done, n);
		done += n;
		piece = piece * 7 % 997 + 1;
	}
	sha256_final(&ctx, d);
	assert_digest(d, "cdc76e5c9914fb9281a1c7e284d73e67"
			 "f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

/* Lengths around the 56-byte padding limit and the 64-byte block. */
static void
test_padding_boundaries(void **state)
{
	static const struct {
		size_t n;
		const char *hex;
	} cases[] = {
		{55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
		{56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
		{63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
		{64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
		{65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
		{119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
		{120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
	};
	char a[128];
	unsigned char d[32];

	(void)state;
	memset(a, 'a', sizeof(a));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sha256(a, cases[i].n, d);
		assert_digest(d, cases[i].hex);
	}
}

static void
test_any_split_of_the_input_gives_the_same_digest(void **state)
{
	unsigned char msg[200], whole[32], split[32];

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 31 + 7);
	for (size_t len = 0; len <= sizeof(msg); len += 13) {
		sha256(msg, len, whole);
		for (size_t cut = 0; cut <= len; cut++) {
			struct sha256_ctx ctx;
			sha256_init(&ctx);
			sha256_update(&ctx, msg, cut);
			sha256_update(&ctx, NULL, 0);
			sha256_update(&ctx, msg + cut, len - cut);
			sha256_final(&ctx, split);
			assert_memory_equal(whole, split, 32);
		}
	}
}

static void
test_rfc4231_hmac_cases(void **state)
{
	static const char tc7_data[] =
		"This is a test using a larger than block-size key and a "
		"larger than block-size data. The key needs to be hashed "
		"before being used by the HMAC algorithm.";
	static const char tc6_data[] =
		"Test Using Larger Than Block-Size Key - Hash Key First";
	unsigned char key[131], data[50], d[32];

	(void)state;

	/* 1: a 20-byte key */
	memset(key, 0x0b, 20);
	hmac_sha256(key, 20, "Hi There", 8, d);
	assert_digest(d, "b0344c61d8db38535ca8afceaf0bf12b"
			 "881dc200c9833da726e9376c2e32cff7");

	/* 2: a key shorter than the digest */
	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
	assert_digest(d, "5bdcc146bf60754e6a042426089575c7"
			 "5a003f089d2739839dec58b964ec3843");

	/* 3: key and data of non-text bytes */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	hmac_sha256(key, 20, data, 50, d);
	assert_digest(d, "773ea91e36800e46854db8ebd09181a7"
			 "2959098b3ef8c122d9635514ced565fe");

	/* 4: a 25-byte key 0x01..0x19 */
	for (int i = 0; i < 25; i++)
		key[i] = (unsigned char)(i + 1);
	memset(data, 0xcd, 50);
	hmac_sha256(key, 25, data, 50, d);
	assert_digest(d, "82558a389a443c0ea4cc819899f2083a"
			 "85f0faa3e578f8077a2e3ff46729665b");

	/* 6: a key longer than a block is hashed first */
	memset(key, 0xaa, 131);
	hmac_sha256(key, 131, tc6_data, strlen(tc6_data), d);
	assert_digest(d, "60e431591ee0b67f0d8a26aacbf5b77f"
			 "8e0bc6213728c5140546040f0ee37f54");

	/* 7: key and data both longer than a block */
	hmac_sha256(key, 131, tc7_data, strlen(tc7_data), d);
	assert_digest(d, "9b09ffa71b942fcb27635fbcd5b0e944"
			 "bfdc63644f0713938a7f51535c3a35e2");
}

/* A key of exactly one block is used as is, not hashed. */
static void
test_hmac_block_sized_key(void **state)
{
	unsigned char key[64], d[32];

	(void)state;
	memset(key, 'k', sizeof(key));
	hmac_sha256(key, sizeof(key), "m", 1, d);
	assert_digest(d, "3b7a8d453e76edb519238a515105a575"
			 "08d0f169f480ebeee120a9e7803289fa");
}

static void
test_hex_is_lower_case_and_terminated(void **state)
{
	unsigned char in[32];
	char out[66];

	(void)state;
	for (int i = 0; i < 32; i++)
		in[i] = (unsigned char)(i * 8 + 0x0f);
	memset(out, 'X', sizeof(out));
	sha256_hex(in, out);
	assert_int_equal(strlen(out), 64);
	assert_string_equal(out, "0f171f272f373f474f575f676f777f87"
				 "8f979fa7afb7bfc7cfd7dfe7eff7ff07");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nist_short_messages),
		cmocka_unit_test(test_nist_million_a_in_uneven_pieces),
		cmocka_unit_test(test_padding_boundaries),
		cmocka_unit_test(test_any_split_of_the_input_gives_the_same_digest),
		cmocka_unit_test(test_rfc4231_hmac_cases),
		cmocka_unit_test(test_hmac_block_sized_key),
		cmocka_unit_test(test_hex_is_lower_case_and_terminated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
