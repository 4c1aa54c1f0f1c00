#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool
file_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool
file_replace(const char *path, const void *data, size_t len, mode_t mode,
	     char **err)
{
	struct file_stream f;

	return file_stream_open(&f, path, mode, err) &&
	       file_stream_write(&f, data, len, err) &&
	       file_stream_commit(&f, err);
}

static char *
dir_of_path(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
		     : xstrdup(".");
}

bool
file_stream_open(struct file_stream *f, const char *path, mode_t mode,
		 char **err)
{
	char *dir = dir_of_path(path);
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;

	f->path = xstrdup(path);
	f->tmp = xasprintf("%s/.%s.XXXXXX", strcmp(dir, "/") ? dir : "", base);
	f->fd = mkostemp(f->tmp, O_CLOEXEC);
	if (f->fd < 0) {
		*err = xasprintf("could not create a temporary file in \"%s\": %s",
				 dir, strerror(errno));
		free(dir);
		free(f->tmp);
		free(f->path);
		f->tmp = f->path = NULL;
		return false;
	}
	if (fchmod(f->fd, mode) != 0) {
		*err = xasprintf("could not create a temporary file in \"%s\": %s",
				 dir, strerror(errno));
		free(dir);
		file_stream_abort(f);
		return false;
	}
	free(dir);
	return true;
}

bool
file_stream_write(struct file_stream *f, const void *data, size_t len,
		  char **err)
{
	if (file_write_all(f->fd, data, len))
		return true;
	*err = xasprintf("could not write \"%s\": %s", f->tmp, strerror(errno));
	file_stream_abort(f);
	return false;
}

bool
file_stream_commit(struct file_stream *f, char **err)
{
	if (fsync(f->fd) != 0) {
		*err = xasprintf("could not write \"%s\": %s", f->tmp,
				 strerror(errno));
		file_stream_abort(f);
		return false;
	}
	int rc = close(f->fd);
	f->fd = -1;
	if (rc != 0 || rename(f->tmp, f->path) != 0) {
		*err = xasprintf("could not replace \"%s\": %s", f->path,
				 strerror(errno));
		file_stream_abort(f);
		return false;
	}
	char *dir = dir_of_path(f->path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	free(dir);
	free(f->tmp);
	free(f->path);
	f->tmp = f->path = NULL;
	return true;
}

void
file_stream_abort(struct file_stream *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		(void)unlink(f->tmp);
	f->fd = -1;
	free(f->tmp);
	free(f->path);
	f->tmp = f->path = NULL;
}
