#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;
static volatile sig_atomic_t wakeup_flag;
static volatile sig_atomic_t busy_flag;
static volatile sig_atomic_t cancelled_flag;
static volatile sig_atomic_t grace_seconds;
static int pipe_fds[2] = { -1, -1 };
/* Read by the SIGALRM handler; only changed with SIGALRM blocked. */
static PGcancel *volatile cancel_obj;

static void
poke(void)
{
	int saved = errno;
	if (pipe_fds[1] >= 0) {
		char c = 0;
		/* a full pipe already wakes the loop: EAGAIN is fine */
		(void)!write(pipe_fds[1], &c, 1);
	}
	errno = saved;
}

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGINT:
		if (stop_flag) {
			/* the operator pressed ^C twice: leave now; the
			 * database rolls back the batch in flight */
			static const char msg[] = "retentiond: interrupted again, exiting now\n";
			(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
			_exit(130);
		}
		/* fall through */
	case SIGTERM:
		if (!stop_flag && grace_seconds > 0)
			alarm((unsigned)grace_seconds);
		stop_flag = 1;
		break;
	case SIGHUP:
		reload_flag = 1;
		break;
	case SIGUSR1:
		wakeup_flag = 1;
		break;
	default:
		break;
	}
	poke();
}

static void
on_alarm(int sig)
{
	(void)sig;
	if (stop_flag && busy_flag && cancel_obj) {
		char errbuf[256];
		int saved = errno;
		/* the grace is over: cancel the statement in flight; the
		 * engine sees "canceling statement" with a stop requested
		 * and marks the run interrupted */
		if (PQcancel(cancel_obj, errbuf, sizeof(errbuf)))
			cancelled_flag = 1;
		errno = saved;
	}
	poke();
}

static bool
make_pipe(void)
{
	if (pipe_fds[0] >= 0)
		return true;
	if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
		pipe_fds[0] = pipe_fds[1] = -1;
		return false;
	}
	return true;
}

void
signals_init(void)
{
	struct sigaction sa;

	/* without the pipe a sleeping daemon only wakes on its timeout; the
	 * flags still work, so this is not fatal */
	(void)make_pipe();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a sleep or a wait on the server should wake up */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
signals_fini(void)
{
	alarm(0);
	signals_set_cancel(NULL);
	for (int i = 0; i < 2; i++) {
		if (pipe_fds[i] >= 0)
			close(pipe_fds[i]);
		pipe_fds[i] = -1;
	}
}

bool
signals_stop_requested(void)
{
	return stop_flag != 0;
}

bool
signals_take_reload(void)
{
	bool r = reload_flag != 0;
	reload_flag = 0;
	return r;
}

bool
signals_take_wakeup(void)
{
	bool r = wakeup_flag != 0;
	wakeup_flag = 0;
	return r;
}

int
signals_fd(void)
{
	return pipe_fds[0];
}

void
signals_drain(void)
{
	char buf[64];

	if (pipe_fds[0] < 0)
		return;
	while (read(pipe_fds[0], buf, sizeof(buf)) > 0)
		;
}

void
signals_set_grace(unsigned seconds)
{
	grace_seconds = (sig_atomic_t)seconds;
}

void
signals_set_cancel(PGcancel *cancel)
{
	sigset_t block, old;

	/* the handler must never see a half-freed object */
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &old);
	PGcancel *prev = cancel_obj;
	cancel_obj = cancel;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (prev)
		PQfreeCancel(prev);
}

void
signals_set_busy(bool busy)
{
	busy_flag = busy;
}

bool
signals_take_cancelled(void)
{
	bool r = cancelled_flag != 0;
	cancelled_flag = 0;
	return r;
}
