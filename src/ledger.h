/*
 * ledger: state_directory/ledger (SPEC §11), the record of the one
 * database that the config names, kept outside that database so that a
 * restore from a backup cannot take it back in time.
 *
 * One line per entry, appended and fsynced, never rewritten:
 *
 *   erasure <TAB> request id <TAB> subject <TAB> subject id <TAB>
 *           completed at (UTC, ISO 8601) <TAB> checksum
 *   head <TAB> action id <TAB> action hash <TAB> actions up to it <TAB>
 *           checksum
 *
 * Subject and subject id are escaped (\\ \t \n \r \xHH) so a line is one
 * line whatever they hold. The checksum (16 hex digits of SHA-256 over the
 * line before its last tab) finds a torn or damaged line: such a line is
 * ignored with a warning, never trusted, never a crash. Lines starting
 * with '#' are comments (the file starts with one naming the format).
 * Nothing else about a subject is ever written here.
 */
#ifndef RETENTIOND_LEDGER_H
#define RETENTIOND_LEDGER_H

#include <stdbool.h>
#include <stddef.h>

#include "sha256.h"
#include "util.h"

#define LEDGER_FILE "ledger"
#define LEDGER_CHECKSUM_LEN 16

struct ledger_erasure {
	long long request_id;
	char *subject;
	char *subject_id;
	char *completed_at;	/* "2026-12-06T02:08:01.123456Z" */
};

/* The audit chain's head after a cycle: the newest action that the cycle's
 * check found intact. */
struct ledger_head {
	long long id;		/* 0: none recorded */
	char hash[SHA256_HEX_LEN];
	long long rows;		/* actions in the chain up to and with id */
};

struct ledger {
	struct ledger_erasure *erasures;
	size_t n_erasures;
	struct ledger_head head;	/* the last one recorded */
	size_t n_ignored;		/* torn or damaged lines */
};

/* DIR/ledger, malloc'd. */
char *ledger_path(const char *dir);

/* One line, checksum and newline included; malloc'd. */
char *ledger_format_erasure(const struct ledger_erasure *e);
char *ledger_format_head(const struct ledger_head *h);

enum ledger_line {
	LEDGER_LINE_BAD,	/* torn, damaged or unknown: ignore */
	LEDGER_LINE_SKIP,	/* comment or empty */
	LEDGER_LINE_ERASURE,	/* *e filled (free with ledger_erasure_free) */
	LEDGER_LINE_HEAD	/* *h filled */
};

/* Parse one line of LEN bytes, without its newline. */
enum ledger_line ledger_parse_line(const char *line, size_t len,
				   struct ledger_erasure *e,
				   struct ledger_head *h);

/*
 * Read DIR/ledger into *out. A missing file is an empty ledger. Torn and
 * damaged lines are skipped with a warning naming PATH:LINE. Returns false
 * with *err (malloc'd) when the file exists but cannot be read.
 */
bool ledger_load(const char *dir, struct ledger *out, char **err) MUSTCHECK;

/*
 * Append LINES (complete lines, see ledger_format_*) to DIR/ledger and
 * fsync it. DIR is created 0700 when missing (its parent must exist), the
 * file 0600. A torn last line left by an append that was killed is cut off
 * first, so every line after it is whole. Appenders serialise on flock.
 */
bool ledger_append(const char *dir, const char *lines, char **err) MUSTCHECK;

/* The erasure of the ledger with this request id and completion, or NULL. */
const struct ledger_erasure *ledger_find(const struct ledger *l,
					 long long request_id,
					 const char *completed_at);

void ledger_erasure_free(struct ledger_erasure *e);
void ledger_free(struct ledger *l);

#endif
