#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
	bool failed_once;	/* a send failed: logged, not repeated */
	char last_status[NOTIFY_STATUS_MAX + 16];
	int64_t watchdog_ms;	/* half the timeout; 0: off */
	int64_t last_ping_ms;
	bool pinged;
} st = { .fd = -1 };

bool
notify_address(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return false;
	n = strlen(path);
	if (n < 2 || n > sizeof(sa->sun_path))
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@') {
		/* abstract namespace: a leading NUL, and the length counts
		 * exactly the name's bytes, no terminator */
		sa->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		if (n == sizeof(sa->sun_path))
			return false;	/* no room for the terminator */
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return true;
}

void
notify_format_status(char *buf, size_t len, const char *line)
{
	static const char prefix[] = "STATUS=";
	const size_t plen = sizeof(prefix) - 1;
	size_t room, n;

	if (len <= plen) {
		if (len)
			buf[0] = '\0';
		return;
	}
	room = len - 1 - plen;
	if (room > NOTIFY_STATUS_MAX)
		room = NOTIFY_STATUS_MAX;
	n = line ? strlen(line) : 0;
	if (n > room) {
		/* never cut a UTF-8 sequence, which would leave an invalid
		 * byte for systemctl to show: back up to the start of the
		 * first character that does not fit */
		n = room;
		while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(buf, prefix, plen);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		/* a newline would start a new assignment */
		buf[plen + i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	buf[plen + n] = '\0';
}

void
notify_format_reloading(char *buf, size_t len, uint64_t monotonic_usec)
{
	snprintf(buf, len, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, monotonic_usec);
}

uint64_t
notify_parse_watchdog(const char *usec, const char *pid, pid_t self)
{
	char *end;
	unsigned long long v;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		errno = 0;
		long p = strtol(pid, &end, 10);
		if (errno || *end || p <= 0 || (pid_t)p != self)
			return 0;
	}
	if (*usec < '0' || *usec > '9')
		return 0;
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0)
		return 0;
	return (uint64_t)v;
}

void
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	notify_fini();
	/* without a socket nobody could hear the watchdog either */
	if (!path || !*path)
		return;
	if (!notify_address(path, &st.addr, &st.addr_len)) {
		log_warning("NOTIFY_SOCKET \"%s\" is not an absolute path or "
			    "an abstract socket name; not notifying the "
			    "service manager", path);
		return;
	}
	st.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (st.fd < 0) {
		log_warning("could not create the notification socket: %s",
			    strerror(errno));
		return;
	}
	uint64_t wd = notify_parse_watchdog(getenv("WATCHDOG_USEC"),
					    getenv("WATCHDOG_PID"), getpid());
	/* ping at half the timeout, as sd_watchdog_enabled(3) advises, and
	 * never more often than every 10 ms */
	st.watchdog_ms = wd ? (int64_t)(wd / 2000) : 0;
	if (wd && st.watchdog_ms < 10)
		st.watchdog_ms = 10;
}

void
notify_fini(void)
{
	if (st.fd >= 0)
		close(st.fd);
	st.fd = -1;
	st.failed_once = false;
	st.last_status[0] = '\0';
	st.watchdog_ms = 0;
	st.pinged = false;
}

bool
notify_send(const char *msg)
{
	if (st.fd < 0)
		return false;
	ssize_t n;
	do
		n = sendto(st.fd, msg, strlen(msg), MSG_NOSIGNAL,
			   (const struct sockaddr *)&st.addr, st.addr_len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (!st.failed_once)
			log_debug("could not notify the service manager: %s",
				  strerror(errno));
		st.failed_once = true;
		return false;
	}
	return true;
}

void
notify_ready(void)
{
	(void)notify_send("READY=1");
}

void
notify_reloading(void)
{
	char buf[64];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_format_reloading(buf, sizeof(buf),
				(uint64_t)ts.tv_sec * 1000000u +
					(uint64_t)ts.tv_nsec / 1000u);
	(void)notify_send(buf);
}

void
notify_stopping(void)
{
	(void)notify_send("STOPPING=1");
}

void
notify_status(const char *line)
{
	char buf[sizeof(st.last_status)];

	if (st.fd < 0)
		return;
	notify_format_status(buf, sizeof(buf), line);
	if (strcmp(buf, st.last_status) == 0)
		return;
	if (notify_send(buf))
		memcpy(st.last_status, buf, sizeof(buf));
}

int64_t
notify_watchdog_interval_ms(void)
{
	return st.watchdog_ms;
}

void
notify_watchdog_tick(int64_t now_ms)
{
	if (st.watchdog_ms == 0)
		return;
	if (st.pinged && now_ms - st.last_ping_ms < st.watchdog_ms)
		return;
	/* counted as sent even on failure: retrying in a tight loop would
	 * not help a supervisor that does not listen */
	(void)notify_send("WATCHDOG=1");
	st.pinged = true;
	st.last_ping_ms = now_ms;
}

int64_t
notify_watchdog_wait_ms(int64_t now_ms)
{
	if (st.watchdog_ms == 0)
		return -1;
	if (!st.pinged)
		return 0;
	int64_t left = st.last_ping_ms + st.watchdog_ms - now_ms;
	return left > 0 ? left : 0;
}
