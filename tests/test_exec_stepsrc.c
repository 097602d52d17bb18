/* test_exec_stepsrc.c — exec/stepsrc.h on a hand-made trace and a tiny model: LLM sequence
 * lengths with pad_to and ratios (padding encoded, not spliced), label counts, per-rank rows under `none`, every registered
 * policy's plan verified, and the door checks (item over max_len, example over max_seq, a
 * modality without an encoder) each one error naming the example. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "exec/stepsrc.h"
#include "helpers.h"
#include "traces/trace.h"

static const TraceModality MODS[3] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};

typedef struct {
    uint32_t text, img, aud; /* 0 = no such item */
    uint32_t img2;
} Ex;

static const char *write_trace(const char *name, const Ex *ex, uint32_t n, uint32_t dp) {
    const char *path = th_tmp(name);
    TraceWriter *w = NULL;
    TraceProvenance prov = {"test", "test_exec_stepsrc"};
    cr_assert_eq(trace_writer_create(&w, path, MODS, 3, &prov, 0), OS_OK, "%s", os_last_error());
    TraceStep s;
    trace_step_init(&s);
    s.dp = dp;
    for (uint32_t i = 0; i < n; i++) {
        TraceItem it[3];
        uint32_t k = 0;
        if (ex[i].img) it[k++] = (TraceItem){ex[i].img, 1};
        if (ex[i].img2) it[k++] = (TraceItem){ex[i].img2, 1};
        if (ex[i].aud) it[k++] = (TraceItem){ex[i].aud, 2};
        cr_assert_eq(trace_step_push(&s, ex[i].text, 100 + i, it, k), OS_OK);
    }
    cr_assert_eq(trace_writer_add_step(w, &s), OS_OK, "%s", os_last_error());
    trace_step_free(&s);
    cr_assert_eq(trace_writer_close(w), OS_OK, "%s", os_last_error());
    return path;
}

static ModelSpec tiny(int with_audio) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.llm = (StackSpec){.layers = 1, .hidden = 8, .ffn = 16, .heads = 2, .kv_heads = 1, .vocab = 32,
                        .gated_mlp = 1, .causal = 1};
    m.max_seq = 64;
    m.n_enc = with_audio ? 2 : 1;
    snprintf(m.enc[0].modality, sizeof m.enc[0].modality, "image");
    m.enc[0].stack = (StackSpec){.layers = 1, .hidden = 8, .ffn = 16, .heads = 2, .kv_heads = 2};
    m.enc[0].ratio = 4, m.enc[0].max_len = 100, m.enc[0].in_bytes_per_unit = 8;
    snprintf(m.enc[1].modality, sizeof m.enc[1].modality, "audio");
    m.enc[1].stack = m.enc[0].stack;
    m.enc[1].ratio = 2, m.enc[1].max_len = 20, m.enc[1].pad_to = 10, m.enc[1].in_bytes_per_unit = 4;
    m.param_bytes = m.act_bytes = 2;
    return m;
}

/* S = text + ceil(REAL len / ratio) (params.h: padding runs in the encoder, is not spliced):
 * 5+2, 3+2 (audio 3, padded to 10 in the encoder, 2 tokens), 6, 2+4+10 */
static const Ex BATCH[4] = {{5, 8, 0, 0}, {3, 0, 3, 0}, {6, 0, 0, 0}, {2, 16, 20, 0}};

Test(exec_stepsrc, lengths_labels_and_rows_by_hand) {
    const char *path = write_trace("src1.h5", BATCH, 4, 2);
    ModelSpec m = tiny(1);
    Calib c;
    calib_default_h100(&c);
    PolicyOptions po = {.objective = OBJ_COST, .seed = 1};
    ExecStepSource *s = NULL;
    ExecStep st;
    cr_assert_eq(exec_src_create(&s, path, &m, policy_find("none"), &po, &c, 2, 2), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_src_n_steps(s), 1);
    cr_assert_eq(exec_src_step(s, 0, &st), OS_OK, "%s", os_last_error());
    const uint32_t S[4] = {7, 5, 6, 16};
    for (uint32_t i = 0; i < 4; i++) {
        cr_assert_eq(st.work->ex_tokens[i], S[i], "example %u", i);
        cr_assert_eq(st.ex_id[i], 100 + i);
    }
    /* labels: text with items before it, text - 1 without: 5 + 3 + 5 + 2 */
    cr_assert_eq(st.labels, 15);
    cr_assert_eq(st.longest_seq, 16);
    cr_assert_eq(st.longest_item[0], 16);
    cr_assert_eq(st.longest_item[1], 20);
    /* none: rank 0 runs examples 0, 1 (12 tokens), rank 1 runs 2, 3 (22) */
    cr_assert_eq(st.xp->llm_rows[0], 12);
    cr_assert_eq(st.xp->llm_rows[1], 22);
    cr_assert_eq(st.max_llm_rows, 22);
    /* image positions: rank 0 8, rank 1 16; audio: rank 0 10 (padded), rank 1 20 */
    cr_assert_eq(st.max_enc_rows[0], 16);
    cr_assert_eq(st.max_enc_rows[1], 20);
    exec_src_destroy(s);
}

Test(exec_stepsrc, every_policy_plans_and_verifies) {
    const Ex big[8] = {{5, 8, 0, 0}, {3, 0, 3, 0}, {6, 0, 0, 0}, {2, 16, 20, 0},
                       {30, 40, 0, 4}, {1, 0, 18, 0}, {9, 0, 0, 0}, {4, 12, 0, 12}};
    const char *path = write_trace("src2.h5", big, 8, 4);
    ModelSpec m = tiny(1);
    Calib c;
    calib_default_h100(&c);
    PolicyOptions po = {.objective = OBJ_COST, .seed = 1};
    for (uint32_t k = 0; k < policy_count(); k++) {
        const Policy *p = policy_at(k);
        ExecStepSource *s = NULL;
        ExecStep st;
        cr_assert_eq(exec_src_create(&s, path, &m, p, &po, &c, 4, 2), OS_OK, "%s: %s", p->name, os_last_error());
        cr_assert_eq(exec_src_step(s, 0, &st), OS_OK, "%s: %s", p->name, os_last_error());
        uint64_t tot = 0, want = 0;
        for (uint32_t d = 0; d < 4; d++) tot += st.xp->llm_rows[d];
        for (uint32_t i = 0; i < 8; i++) want += st.work->ex_tokens[i];
        cr_assert_eq(tot, want, "%s: LLM tokens not conserved", p->name);
        exec_src_destroy(s);
    }
}

static void expect_error(const Ex *ex, uint32_t n, int with_audio, OsStatus code, const char *needle) {
    const char *path = write_trace("src_bad.h5", ex, n, 2);
    ModelSpec m = tiny(with_audio);
    Calib c;
    calib_default_h100(&c);
    PolicyOptions po = {.objective = OBJ_COST, .seed = 1};
    ExecStepSource *s = NULL;
    ExecStep st;
    cr_assert_eq(exec_src_create(&s, path, &m, policy_find("post"), &po, &c, 2, 2), OS_OK, "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(exec_src_step(s, 0, &st), code, "%s", os_last_error());
    cr_assert(strstr(os_last_error(), needle), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "example id 101"), "%s", os_last_error());
    os_clear_error();
    exec_src_destroy(s);
}

Test(exec_stepsrc, item_over_max_len_is_one_error) {
    const Ex ex[2] = {{5, 8, 0, 0}, {3, 0, 21, 0}};
    expect_error(ex, 2, 1, OS_ERR_RANGE, "accepts at most 20");
}

Test(exec_stepsrc, example_over_max_seq_is_one_error) {
    const Ex ex[2] = {{5, 8, 0, 0}, {61, 16, 0, 0}}; /* 61 + 4 = 65 > 64 */
    expect_error(ex, 2, 1, OS_ERR_RANGE, "65 LLM tokens");
}

Test(exec_stepsrc, modality_without_encoder_is_one_error) {
    const Ex ex[2] = {{5, 8, 0, 0}, {3, 0, 4, 0}};
    expect_error(ex, 2, 0, OS_ERR_ARG, "no encoder");
}

Test(exec_stepsrc, bad_arguments) {
    ExecStepSource *s = (ExecStepSource *)1;
    ModelSpec m = tiny(1);
    Calib c;
    calib_default_h100(&c);
    PolicyOptions po = {0};
    cr_assert_eq(exec_src_create(&s, "x.h5", &m, policy_find("none"), &po, &c, 0, 1), OS_ERR_ARG);
    cr_assert_null(s);
    os_clear_error();
    cr_assert_neq(exec_src_create(&s, th_tmp("missing.h5"), &m, policy_find("none"), &po, &c, 2, 1), OS_OK);
    os_clear_error();
    exec_src_destroy(NULL);
}
