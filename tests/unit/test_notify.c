/* notify: the sd_notify datagram protocol, spoken without libsystemd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

static void
test_address_of_a_path(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;

	(void)state;
	assert_true(notify_address("/run/systemd/notify", &sa, &len));
	assert_int_equal(sa.sun_family, AF_UNIX);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) +
				      strlen("/run/systemd/notify") + 1);
}

static void
test_address_in_the_abstract_namespace(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;

	(void)state;
	assert_true(notify_address("@sd-notify/1", &sa, &len));
	/* a leading NUL instead of '@'; the length has no terminator */
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "sd-notify/1", 11);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 12);
}

static void
test_bad_addresses_are_refused(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;
	char longpath[sizeof(sa.sun_path) + 2];

	(void)state;
	assert_false(notify_address(NULL, &sa, &len));
	assert_false(notify_address("", &sa, &len));
	assert_false(notify_address("@", &sa, &len));
	assert_false(notify_address("relative/sock", &sa, &len));
	assert_false(notify_address("vsock:2:1234", &sa, &len));
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_false(notify_address(longpath, &sa, &len));
	/* exactly sun_path long: no room for the terminator */
	longpath[sizeof(sa.sun_path)] = '\0';
	assert_false(notify_address(longpath, &sa, &len));
	/* abstract names need no terminator, so they may fill it */
	longpath[0] = '@';
	assert_true(notify_address(longpath, &sa, &len));
}

static void
test_status_is_one_line(void **state)
{
	char buf[NOTIFY_STATUS_MAX + 16];

	(void)state;
	notify_format_status(buf, sizeof(buf), "idle, next cycle at 14:00");
	assert_string_equal(buf, "STATUS=idle, next cycle at 14:00");
	/* a newline would start a new assignment such as READY=1 */
	notify_format_status(buf, sizeof(buf), "rule x\nREADY=1\tok\r");
	assert_string_equal(buf, "STATUS=rule x READY=1 ok ");
	assert_null(strchr(buf, '\n'));
	notify_format_status(buf, sizeof(buf), NULL);
	assert_string_equal(buf, "STATUS=");
}

static void
test_status_is_cut_on_a_character_boundary(void **state)
{
	char line[NOTIFY_STATUS_MAX + 50];
	char buf[NOTIFY_STATUS_MAX + 16];

	(void)state;
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	notify_format_status(buf, sizeof(buf), line);
	assert_int_equal(strlen(buf), strlen("STATUS=") + NOTIFY_STATUS_MAX);

	/* "é" (2 bytes) straddling the limit is left out whole */
	memset(line, 'a', NOTIFY_STATUS_MAX - 1);
	strcpy(line + NOTIFY_STATUS_MAX - 1, "\xc3\xa9tail");
	notify_format_status(buf, sizeof(buf), line);
	assert_int_equal(strlen(buf), strlen("STATUS=") + NOTIFY_STATUS_MAX - 1);
	assert_int_equal(buf[strlen(buf) - 1], 'a');

	/* a small buffer cuts too, never overflows */
	char tiny[12];
	notify_format_status(tiny, sizeof(tiny), "abcdefghijkl");
	assert_string_equal(tiny, "STATUS=abcd");
	notify_format_status(tiny, 3, "x");
	assert_string_equal(tiny, "");
}

static void
test_reloading_carries_the_monotonic_time(void **state)
{
	char buf[64];

	(void)state;
	notify_format_reloading(buf, sizeof(buf), 123456789012ULL);
	assert_string_equal(buf, "RELOADING=1\nMONOTONIC_USEC=123456789012");
}

static void
test_watchdog_only_for_this_process(void **state)
{
	(void)state;
	assert_int_equal(notify_parse_watchdog("30000000", NULL, 42), 30000000);
	assert_int_equal(notify_parse_watchdog("30000000", "", 42), 30000000);
	assert_int_equal(notify_parse_watchdog("30000000", "42", 42), 30000000);
	/* inherited from a parent that was the watched one */
	assert_int_equal(notify_parse_watchdog("30000000", "41", 42), 0);
	assert_int_equal(notify_parse_watchdog("30000000", "x", 42), 0);
	assert_int_equal(notify_parse_watchdog(NULL, NULL, 42), 0);
	assert_int_equal(notify_parse_watchdog("", NULL, 42), 0);
	assert_int_equal(notify_parse_watchdog("0", NULL, 42), 0);
	assert_int_equal(notify_parse_watchdog("-5", NULL, 42), 0);
	assert_int_equal(notify_parse_watchdog("10s", NULL, 42), 0);
}

/* A receiving socket, as systemd would have, bound at PATH (or abstract). */
static int
listener(const char *name, char *env, size_t envlen)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	snprintf(env, envlen, "%s", name);
	assert_true(notify_address(env, &sa, &len));
	if (name[0] == '/')
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
expect(int fd, const char *msg)
{
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, msg);
}

static void
test_messages_reach_the_socket(void **state)
{
	char path[64], env[64];
	(void)state;

	snprintf(path, sizeof(path), "/tmp/rtd-notify-%ld.sock", (long)getpid());
	int fd = listener(path, env, sizeof(env));
	setenv("NOTIFY_SOCKET", env, 1);
	unsetenv("WATCHDOG_USEC");
	notify_init();
	notify_ready();
	expect(fd, "READY=1");
	notify_status("idle");
	expect(fd, "STATUS=idle");
	notify_status("idle");		/* unchanged: not repeated */
	notify_status("busy");
	expect(fd, "STATUS=busy");
	notify_stopping();
	expect(fd, "STOPPING=1");
	assert_int_equal(notify_watchdog_interval_ms(), 0);
	assert_int_equal(notify_watchdog_wait_ms(0), -1);
	notify_fini();
	close(fd);
	unlink(path);
}

static void
test_abstract_socket_and_watchdog(void **state)
{
	char name[64], env[64], usec[32];
	(void)state;

	snprintf(name, sizeof(name), "@rtd-notify-test-%ld", (long)getpid());
	int fd = listener(name, env, sizeof(env));
	setenv("NOTIFY_SOCKET", env, 1);
	setenv("WATCHDOG_USEC", "4000000", 1);	/* 4 s: ping every 2 s */
	snprintf(usec, sizeof(usec), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", usec, 1);
	notify_init();
	assert_int_equal(notify_watchdog_interval_ms(), 2000);
	assert_int_equal(notify_watchdog_wait_ms(1000), 0);	/* never pinged */
	notify_watchdog_tick(1000);
	expect(fd, "WATCHDOG=1");
	assert_int_equal(notify_watchdog_wait_ms(1500), 1500);
	notify_watchdog_tick(2999);	/* not yet due: nothing sent */
	notify_watchdog_tick(3000);
	expect(fd, "WATCHDOG=1");
	notify_reloading();
	char buf[128];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	notify_fini();

	/* variables meant for another process switch the watchdog off */
	setenv("WATCHDOG_PID", "1", 1);
	notify_init();
	assert_int_equal(notify_watchdog_interval_ms(), 0);
	notify_fini();
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(fd);
}

static void
test_without_socket_nothing_is_sent(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	notify_init();
	assert_false(notify_send("READY=1"));
	notify_status("x");	/* no crash, no effect */
	notify_fini();
	setenv("NOTIFY_SOCKET", "relative", 1);
	notify_init();
	assert_false(notify_send("READY=1"));
	notify_fini();
	unsetenv("NOTIFY_SOCKET");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_of_a_path),
		cmocka_unit_test(test_address_in_the_abstract_namespace),
		cmocka_unit_test(test_bad_addresses_are_refused),
		cmocka_unit_test(test_status_is_one_line),
		cmocka_unit_test(test_status_is_cut_on_a_character_boundary),
		cmocka_unit_test(test_reloading_carries_the_monotonic_time),
		cmocka_unit_test(test_watchdog_only_for_this_process),
		cmocka_unit_test(test_messages_reach_the_socket),
		cmocka_unit_test(test_abstract_socket_and_watchdog),
		cmocka_unit_test(test_without_socket_nothing_is_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
