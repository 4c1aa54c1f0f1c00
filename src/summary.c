#include "summary.h"

#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"

/* ", "KEY": " (the first key of an object without the comma) */
static void
key(struct strbuf *b, const char *k)
{
	sb_printf(b, "%s\"%s\": ",
		  b->len && b->s[b->len - 1] == '{' ? "" : ", ", k);
}

static void
rule_json(struct strbuf *b, const struct rule_result *rr)
{
	char table[512], retain[DURATION_TEXT_MAX];

	snprintf(table, sizeof(table), "%s.%s", rr->rule->schema,
		 rr->rule->table);
	duration_to_interval(&rr->rule->retain, retain, sizeof(retain));
	sb_add(b, "{");
	key(b, SUMMARY_RULE);
	sb_json_str(b, rr->rule->name);
	key(b, SUMMARY_POLICY);
	sb_json_str(b, rr->rule->policy);
	key(b, SUMMARY_TABLE);
	sb_json_str(b, table);
	key(b, SUMMARY_ACTION);
	sb_json_str(b, rule_action_name(rr->rule->action));
	key(b, SUMMARY_RETAIN);
	sb_json_str(b, retain);
	key(b, SUMMARY_COMPLIANT);
	sb_add(b, rule_result_compliant(rr) ? "true" : "false");
	key(b, SUMMARY_OVERDUE);
	sb_printf(b, "%lld", rr->overdue);
	key(b, SUMMARY_TABLE_ROWS);
	sb_printf(b, "%lld", rr->table_rows);
	key(b, SUMMARY_OUTCOME);
	sb_json_str(b, rule_outcome_name(rr->outcome));
	key(b, SUMMARY_CUTOFF);
	sb_json_str(b, rr->cutoff);
	key(b, SUMMARY_PARTITIONS);
	sb_printf(b, "%lld", rr->partitions);
	key(b, SUMMARY_ELIGIBLE);
	sb_printf(b, "%lld", rr->eligible);
	key(b, SUMMARY_HELD);
	sb_printf(b, "%lld", rr->held);
	key(b, SUMMARY_BLOCKED);
	sb_printf(b, "%lld", rr->blocked);
	key(b, SUMMARY_CHANGED);
	sb_printf(b, "%lld", rr->changed);
	key(b, SUMMARY_BATCHES);
	sb_printf(b, "%lld", rr->batches);
	key(b, SUMMARY_LONGEST_BATCH_MS);
	sb_printf(b, "%.1f", rr->longest_batch_ms);
	key(b, SUMMARY_OLDEST);
	sb_json_str(b, rr->oldest);
	key(b, SUMMARY_MESSAGE);
	sb_json_str(b, rr->message);
	key(b, SUMMARY_LAG_WAIT);
	sb_printf(b, "%.1f", rr->lag_wait_seconds);
	sb_add(b, "}");
}

char *
summary_json(const struct run_result *out)
{
	struct strbuf b = STRBUF_INIT;
	sb_printf(&b, "{\"changed\": %lld, \"seconds\": %.3f, \"rules\": [",
		  out->changed, out->seconds);
	for (size_t i = 0; i < out->n_rules; i++) {
		if (i)
			sb_add(&b, ", ");
		rule_json(&b, &out->rules[i]);
	}
	sb_add(&b, "], \"erasures\": [");
	for (size_t i = 0; i < out->n_erasures; i++) {
		const struct erasure_outcome *eo = &out->erasures[i];
		sb_printf(&b, "%s{\"id\": %lld, \"subject\": ", i ? ", " : "",
			  eo->id);
		sb_json_str(&b, eo->subject);
		sb_add(&b, ", \"subject_id\": ");
		sb_json_str(&b, eo->subject_id);
		sb_add(&b, ", \"status\": ");
		sb_json_str(&b, eo->status);
		sb_add(&b, ", \"due_at\": ");
		sb_json_str(&b, eo->due_at);
		sb_printf(&b, ", \"changed\": %lld}", eo->changed);
	}
	sb_add(&b, "]}");
	return sb_take(&b);
}
