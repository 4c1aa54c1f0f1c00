#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "strbuf.h"

#define HEADER "# retentiond ledger, format 1: see retentiond(8). Append only.\n"

char *
ledger_path(const char *dir)
{
	return xasprintf("%s/%s", dir, LEDGER_FILE);
}

static void
checksum(const char *s, size_t len, char out[LEDGER_CHECKSUM_LEN + 1])
{
	unsigned char d[SHA256_DIGEST_LEN];
	char hex[SHA256_HEX_LEN];

	sha256(s, len, d);
	sha256_hex(d, hex);
	memcpy(out, hex, LEDGER_CHECKSUM_LEN);
	out[LEDGER_CHECKSUM_LEN] = '\0';
}

static void
add_escaped(struct strbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\')
			sb_add(b, "\\\\");
		else if (c == '\t')
			sb_add(b, "\\t");
		else if (c == '\n')
			sb_add(b, "\\n");
		else if (c == '\r')
			sb_add(b, "\\r");
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\x%02x", c);
		else
			sb_addn(b, s, 1);
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The inverse of add_escaped; NULL when S is not its output. */
static char *
unescape(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			*o++ = s[i];
			continue;
		}
		if (++i == len)
			goto bad;
		switch (s[i]) {
		case '\\': *o++ = '\\'; break;
		case 't': *o++ = '\t'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 'x': {
			int hi, lo;
			if (i + 2 >= len || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			goto bad;
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static char *
finish_line(struct strbuf *b)
{
	char sum[LEDGER_CHECKSUM_LEN + 1];

	sb_add(b, "\t");
	checksum(b->s, b->len - 1, sum);
	sb_printf(b, "%s\n", sum);
	return sb_take(b);
}

char *
ledger_format_erasure(const struct ledger_erasure *e)
{
	struct strbuf b = STRBUF_INIT;

	sb_printf(&b, "erasure\t%lld\t", e->request_id);
	add_escaped(&b, e->subject);
	sb_add(&b, "\t");
	add_escaped(&b, e->subject_id);
	sb_add(&b, "\t");
	add_escaped(&b, e->completed_at);
	return finish_line(&b);
}

char *
ledger_format_head(const struct ledger_head *h)
{
	struct strbuf b = STRBUF_INIT;

	sb_printf(&b, "head\t%lld\t%s\t%lld", h->id, h->hash, h->rows);
	return finish_line(&b);
}

/* A positive decimal number filling all of S[0..len). */
static bool
parse_count(const char *s, size_t len, bool positive, long long *out)
{
	long long v = 0;

	if (len == 0 || len > 18)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (positive && v == 0)
		return false;
	*out = v;
	return true;
}

static bool
is_hash(const char *s, size_t len)
{
	if (len != SHA256_HEX_LEN - 1)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

#define MAX_FIELDS 6

enum ledger_line
ledger_parse_line(const char *line, size_t len, struct ledger_erasure *e,
		  struct ledger_head *h)
{
	const char *f[MAX_FIELDS];
	size_t flen[MAX_FIELDS], n = 0, start = 0;
	char sum[LEDGER_CHECKSUM_LEN + 1];

	if (len == 0 || line[0] == '#')
		return LEDGER_LINE_SKIP;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != '\t')
			continue;
		if (n == MAX_FIELDS)
			return LEDGER_LINE_BAD;
		f[n] = line + start;
		flen[n++] = i - start;
		start = i + 1;
	}
	if (n < 2 || flen[n - 1] != LEDGER_CHECKSUM_LEN)
		return LEDGER_LINE_BAD;
	checksum(line, (size_t)(f[n - 1] - line) - 1, sum);
	if (memcmp(sum, f[n - 1], LEDGER_CHECKSUM_LEN) != 0)
		return LEDGER_LINE_BAD;

	if (n == 5 && flen[0] == 4 && memcmp(f[0], "head", 4) == 0) {
		memset(h, 0, sizeof(*h));
		if (!parse_count(f[1], flen[1], true, &h->id) ||
		    !is_hash(f[2], flen[2]) ||
		    !parse_count(f[3], flen[3], false, &h->rows))
			return LEDGER_LINE_BAD;
		memcpy(h->hash, f[2], flen[2]);
		h->hash[flen[2]] = '\0';
		return LEDGER_LINE_HEAD;
	}
	if (n == 6 && flen[0] == 7 && memcmp(f[0], "erasure", 7) == 0) {
		memset(e, 0, sizeof(*e));
		if (!parse_count(f[1], flen[1], true, &e->request_id))
			return LEDGER_LINE_BAD;
		e->subject = unescape(f[2], flen[2]);
		e->subject_id = unescape(f[3], flen[3]);
		e->completed_at = unescape(f[4], flen[4]);
		if (!e->subject || !e->subject_id || !e->completed_at ||
		    !e->subject[0] || !e->subject_id[0] || !e->completed_at[0]) {
			ledger_erasure_free(e);
			return LEDGER_LINE_BAD;
		}
		return LEDGER_LINE_ERASURE;
	}
	return LEDGER_LINE_BAD;
}

static char *
read_file(int fd, size_t *len, char **err, const char *path)
{
	struct strbuf b = STRBUF_INIT;
	char buf[8192];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = xasprintf("could not read %s: %s", path,
					 strerror(errno));
			sb_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		sb_addn(&b, buf, (size_t)n);
	}
	*len = b.len;
	return b.s ? sb_take(&b) : xstrndup("", 0);
}

bool
ledger_load(const char *dir, struct ledger *out, char **err)
{
	char *path = ledger_path(dir);
	size_t len = 0, cap = 0, lineno = 0;

	memset(out, 0, sizeof(*out));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		bool missing = errno == ENOENT;
		if (!missing)
			*err = xasprintf("could not open %s: %s", path,
					 strerror(errno));
		free(path);
		return missing;
	}
	char *text = read_file(fd, &len, err, path);
	close(fd);
	if (!text) {
		free(path);
		return false;
	}
	for (size_t pos = 0; pos < len; lineno++) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		struct ledger_erasure e;
		struct ledger_head h;

		if (!nl) {
			/* only an append killed half way leaves this */
			log_warning("%s:%zu: ignoring a torn last line (an "
				    "append was interrupted); the next append "
				    "cuts it off", path, lineno + 1);
			out->n_ignored++;
			break;
		}
		switch (ledger_parse_line(text + pos, end - pos, &e, &h)) {
		case LEDGER_LINE_BAD:
			log_warning("%s:%zu: ignoring a damaged line (its "
				    "checksum or format is wrong)", path,
				    lineno + 1);
			out->n_ignored++;
			break;
		case LEDGER_LINE_SKIP:
			break;
		case LEDGER_LINE_HEAD:
			out->head = h;
			break;
		case LEDGER_LINE_ERASURE:
			if (out->n_erasures == cap) {
				cap = cap ? 2 * cap : 16;
				out->erasures = xreallocarray(out->erasures, cap,
							      sizeof(*out->erasures));
			}
			out->erasures[out->n_erasures++] = e;
			break;
		}
		pos = end + 1;
	}
	free(text);
	free(path);
	return true;
}

/* Cut a torn last line off FD (the file holds nothing else unfinished). */
static bool
cut_torn_tail(int fd, const char *path, char **err)
{
	struct stat st;
	char buf[4096];

	if (fstat(fd, &st) != 0) {
		*err = xasprintf("could not stat %s: %s", path, strerror(errno));
		return false;
	}
	off_t end = st.st_size;
	while (end > 0) {
		size_t n = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
		ssize_t got = pread(fd, buf, n, end - (off_t)n);
		if (got != (ssize_t)n) {
			*err = xasprintf("could not read %s: %s", path,
					 got < 0 ? strerror(errno) : "short read");
			return false;
		}
		size_t i = n;
		while (i > 0 && buf[i - 1] != '\n')
			i--;
		if (i > 0) {
			end = end - (off_t)n + (off_t)i;
			break;
		}
		end -= (off_t)n;
	}
	if (end == st.st_size)
		return true;
	log_notice("%s: cutting off a torn last line of %lld bytes", path,
		   (long long)(st.st_size - end));
	if (ftruncate(fd, end) != 0) {
		*err = xasprintf("could not truncate %s: %s", path,
				 strerror(errno));
		return false;
	}
	return true;
}

static bool
sync_dir(const char *dir, char **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		*err = xasprintf("could not sync the directory %s: %s", dir,
				 strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

/*
 * Write LINES. For tests only, RETENTIOND_INJECT_FAULT=ledger_slow_append
 * writes them in two halves 5 s apart, so that a test can SIGKILL the
 * writer with half a line in the file, as a crash or a power cut may leave
 * it. It makes the append slower, never weaker: every byte is still
 * written and fsynced before the append returns.
 */
static bool
write_lines(int fd, const char *lines)
{
	size_t len = strlen(lines);
	const char *fault = getenv("RETENTIOND_INJECT_FAULT");

	if (fault && strcmp(fault, "ledger_slow_append") == 0 && len > 1) {
		size_t half = len / 2;
		if (!file_write_all(fd, lines, half))
			return false;
		sleep(5);
		return file_write_all(fd, lines + half, len - half);
	}
	return file_write_all(fd, lines, len);
}

bool
ledger_append(const char *dir, const char *lines, char **err)
{
	bool created_dir = false, ok = false;

	if (mkdir(dir, 0700) == 0)
		created_dir = true;
	else if (errno != EEXIST) {
		*err = xasprintf("could not create the state directory %s: %s",
				 dir, strerror(errno));
		return false;
	}
	char *path = ledger_path(dir);
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = xasprintf("could not open %s: %s", path, strerror(errno));
		free(path);
		return false;
	}
	struct stat st;
	while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
		;
	if (!cut_torn_tail(fd, path, err))
		goto out;
	if (fstat(fd, &st) != 0) {
		*err = xasprintf("could not stat %s: %s", path, strerror(errno));
		goto out;
	}
	if ((st.st_size == 0 && !file_write_all(fd, HEADER, strlen(HEADER))) ||
	    !write_lines(fd, lines)) {
		*err = xasprintf("could not write %s: %s", path, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		*err = xasprintf("could not sync %s: %s", path, strerror(errno));
		goto out;
	}
	/* a new file's name must be durable too */
	ok = st.st_size > 0 || sync_dir(dir, err);
	if (ok && created_dir) {
		char *parent = xasprintf("%s/..", dir);
		ok = sync_dir(parent, err);
		free(parent);
	}
out:
	close(fd);
	free(path);
	return ok;
}

const struct ledger_erasure *
ledger_find(const struct ledger *l, long long request_id,
	    const char *completed_at)
{
	for (size_t i = 0; i < l->n_erasures; i++)
		if (l->erasures[i].request_id == request_id &&
		    strcmp(l->erasures[i].completed_at, completed_at) == 0)
			return &l->erasures[i];
	return NULL;
}

void
ledger_erasure_free(struct ledger_erasure *e)
{
	free(e->subject);
	free(e->subject_id);
	free(e->completed_at);
	memset(e, 0, sizeof(*e));
}

void
ledger_free(struct ledger *l)
{
	for (size_t i = 0; i < l->n_erasures; i++)
		ledger_erasure_free(&l->erasures[i]);
	free(l->erasures);
	memset(l, 0, sizeof(*l));
}
