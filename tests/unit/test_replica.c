/*
 * replica: how far a standby is behind, and whether to wait for it
 * (max_replica_lag); and db: whether the admin's conninfo already chose
 * target_session_attrs (else retentiond asks for read-write).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "replica.h"

/* The primary wrote 1000 bytes a second from t=0 to t=10 s. */
static void
steady_history(struct replica_history *h)
{
	memset(h, 0, sizeof(*h));
	for (int t = 0; t <= 10; t++)
		replica_history_add(h, t * 1000.0, 1000 + (uint64_t)t * 1000);
}

static const struct lag_case {
	const char *promise;
	bool has_replay;
	uint64_t replay_lsn;
	double replay_lag_ms;	/* < 0: NULL */
	double now_ms;
	uint64_t current;
	double want_ms;
} lag_cases[] = {
	{"caught up is 0, even with a stale replay_lag",
	 true, 11000, 5000, 10000, 11000, 0},
	{"replay paused, replay_lag NULL: behind since the primary passed it",
	 true, 2500, -1, 10000, 11000, 8000},
	{"replay paused, replay_lag stale and small: positions win",
	 true, 2500, 120, 10000, 11000, 8000},
	{"the lag grows while the standby stands still",
	 true, 2500, -1, 25000, 11000, 23000},
	{"a larger replay_lag wins over the positions' lower bound",
	 true, 10500, 4000, 10000, 11000, 4000},
	{"just behind the newest sample: a little",
	 true, 10999, -1, 10000, 11000, 0},
	{"behind everything sampled: at least since the first sample",
	 true, 10, -1, 10000, 11000, 10000},
	{"no replay position yet: as from the start",
	 false, 0, -1, 10000, 11000, 10000},
	{"past the newest sample (the primary moved on since): not before now",
	 true, 11000, -1, 12000, 12500, 0},
};

static void
test_lag(void **state)
{
	(void)state;
	struct replica_history h;
	steady_history(&h);
	for (size_t i = 0; i < sizeof(lag_cases) / sizeof(lag_cases[0]); i++) {
		const struct lag_case *c = &lag_cases[i];
		struct replica_standby s = { "walreceiver (local)", true,
					     c->has_replay, c->replay_lsn,
					     c->replay_lag_ms };
		double got = replica_lag_ms(&h, c->now_ms, c->current, &s);
		if (got != c->want_ms)
			fail_msg("%s: got %.1f ms, want %.1f ms", c->promise, got,
				 c->want_ms);
	}
}

static void
test_decide(void **state)
{
	(void)state;
	struct replica_history h;
	steady_history(&h);
	struct replica_standby fine = { "a (10.0.0.1)", true, true, 11000, 50 };
	struct replica_standby slow = { "b (10.0.0.2)", true, true, 8500, -1 };
	struct replica_standby paused = { "c (10.0.0.3)", true, true, 2500, 10 };
	struct replica_standby hidden = { "d (local)", false, false, 0, -1 };

	/* no standby: go */
	struct replica_decision d = replica_decide(&h, 10000, 11000, NULL, 0, 2000);
	assert_int_equal(d.verdict, REPLICA_OK);

	struct replica_standby two[] = { fine, slow };
	d = replica_decide(&h, 10000, 11000, two, 2, 2000);
	assert_int_equal(d.verdict, REPLICA_OK);	/* slow is 2 s behind */
	d = replica_decide(&h, 10000, 11000, two, 2, 1000);
	assert_int_equal(d.verdict, REPLICA_BEHIND);
	assert_int_equal(d.worst, 1);

	/* the one furthest behind is named */
	struct replica_standby three[] = { slow, paused, fine };
	d = replica_decide(&h, 10000, 11000, three, 3, 1000);
	assert_int_equal(d.verdict, REPLICA_BEHIND);
	assert_int_equal(d.worst, 1);
	assert_true(d.lag_ms == 8000);

	/* positions hidden from the role: fail closed, whatever the rest */
	struct replica_standby with_hidden[] = { fine, hidden };
	d = replica_decide(&h, 10000, 11000, with_hidden, 2, 2000);
	assert_int_equal(d.verdict, REPLICA_HIDDEN);
	assert_int_equal(d.worst, 1);
}

static void
test_history_keeps_its_span(void **state)
{
	(void)state;
	struct replica_history h;
	memset(&h, 0, sizeof(h));
	/* the same position twice keeps the older time */
	replica_history_add(&h, 0, 100);
	replica_history_add(&h, 500, 100);
	assert_int_equal(h.n, 1);
	assert_true(h.s[0].at_ms == 0);
	for (int i = 1; i < 10 * REPLICA_HISTORY; i++)
		replica_history_add(&h, i * 10.0, 100 + (uint64_t)i);
	assert_true(h.n <= REPLICA_HISTORY);
	assert_true(h.s[0].at_ms == 0);		/* the first stays */
	/* the newest within a grain of the last added */
	assert_true(h.grain_ms > 0);
	assert_true(h.s[h.n - 1].at_ms >=
		    (10 * REPLICA_HISTORY - 1) * 10.0 - h.grain_ms);
	for (size_t i = 1; i < h.n; i++)
		assert_true(h.s[i].at_ms > h.s[i - 1].at_ms &&
			    h.s[i].lsn > h.s[i - 1].lsn);
	/* a standby stuck at the start is still seen as behind since about
	 * then (the grain is the span over half the history) */
	struct replica_standby s = { "x", true, true, 100, -1 };
	double lag = replica_lag_ms(&h, 100000, 5000, &s);
	assert_true(lag <= 100000 && lag >= 100000 - 1000);
}

/* Another server (a reload to another database): its positions start
 * lower, and the old history must not make its standbys look behind. */
static void
test_history_forgets_another_server(void **state)
{
	(void)state;
	struct replica_history h;
	steady_history(&h);
	replica_history_add(&h, 20000, 500);
	assert_int_equal(h.n, 1);
	assert_true(h.s[0].at_ms == 20000 && h.s[0].lsn == 500);
	struct replica_standby s = { "x", true, true, 400, -1 };
	assert_true(replica_lag_ms(&h, 20100, 500, &s) == 100);
}

static const struct attrs_case {
	const char *conninfo;
	bool sets;
} attrs_cases[] = {
	{"host=/run/postgresql dbname=shop", false},
	{"host=a,b port=5432,5433 dbname=shop", false},
	{"host=a,b dbname=shop target_session_attrs=any", true},
	{"host=a,b dbname=shop target_session_attrs=read-write", true},
	{"postgresql://a:5432,b:5433/shop", false},
	{"postgresql://a:5432,b:5433/shop?target_session_attrs=any", true},
	{"postgres://u@a,b/shop?connect_timeout=3&target_session_attrs=primary",
	 true},
	{"shop", false},		/* a bare database name */
	{"", false},
	{"host='x y", false},		/* unparsable: libpq will say so */
};

static void
test_conninfo_sets_target_session_attrs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(attrs_cases) / sizeof(attrs_cases[0]); i++)
		if (db_conninfo_sets(attrs_cases[i].conninfo,
				     "target_session_attrs") != attrs_cases[i].sets)
			fail_msg("\"%s\": want %s", attrs_cases[i].conninfo,
				 attrs_cases[i].sets ? "set" : "not set");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lag),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_history_keeps_its_span),
		cmocka_unit_test(test_history_forgets_another_server),
		cmocka_unit_test(test_conninfo_sets_target_session_attrs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
