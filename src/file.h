#ifndef RETENTIOND_FILE_H
#define RETENTIOND_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util.h"

/* write(2) until all of DATA is written or an error other than EINTR. */
bool file_write_all(int fd, const void *data, size_t len) MUSTCHECK;

/*
 * Replace PATH with DATA so that a reader, or a crash, sees the old file or
 * the new one, never part of either: a temporary dot file in the same
 * directory (mode MODE, less nothing: fchmod is not subject to umask),
 * fsync, rename over PATH, fsync of the directory. The dot name keeps
 * collectors that read *.prom or report globs off the temporary file.
 * Returns false with *err naming the file; nothing is left behind then.
 */
bool file_replace(const char *path, const void *data, size_t len, mode_t mode,
		  char **err) MUSTCHECK;

/*
 * A file written in pieces, too big to hold in memory, with the same
 * promise as file_replace: readers see the old file or the whole new one.
 * Data goes to a temporary file next to PATH (mode MODE from the start);
 * commit fsyncs and renames it, abort removes it. A failed write or
 * commit has aborted already; abort again is harmless.
 */
struct file_stream {
	int fd;
	char *tmp;
	char *path;
};

bool file_stream_open(struct file_stream *f, const char *path, mode_t mode,
		      char **err) MUSTCHECK;
bool file_stream_write(struct file_stream *f, const void *data, size_t len,
		       char **err) MUSTCHECK;
bool file_stream_commit(struct file_stream *f, char **err) MUSTCHECK;
void file_stream_abort(struct file_stream *f);

#endif
