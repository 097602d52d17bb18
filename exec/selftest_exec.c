/* selftest_exec.c — exec_selftest_executor (selftest.h): the GPU step executor against its
 * float64 twin (exec/ref.c) on one fixed batch of the tiny preset, under several policies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/mllm.h"
#include "exec/params.h"
#include "exec/plan.h"
#include "exec/ref.h"
#include "exec/selftest.h"
#include "sim/policy.h"

/* 16 examples; item k of example i: image or audio, lengths 3..33 (as tests/test_exec_mllm.c) */
enum { N = 16, MMAX = 3 * N, DMAX = 8 };
typedef struct {
    uint32_t drawn[N], tok[N], text[N], first[N], nit[N], it_ex[MMAX], it_len[MMAX], it_enc[MMAX];
    uint8_t it_ph[MMAX];
    double ex_cost[N], it_cost[MMAX];
    uint64_t ex_bytes[N], it_in[MMAX], it_out[MMAX], id[N];
    uint32_t M;
    PolicyOptions po;
    StepWork w;
} Batch;

static void make_batch(Batch *b, const ModelSpec *m, uint32_t D) {
    memset(b, 0, sizeof *b);
    uint64_t x = 99;
#define RND() (x = x * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(x >> 33))
    for (uint32_t i = 0; i < N; i++) {
        b->drawn[i] = i / (N / D), b->id[i] = 500 + i, b->text[i] = 2 + RND() % 12;
        b->first[i] = b->M, b->nit[i] = RND() % 3;
        uint32_t S = b->text[i];
        for (uint32_t k = 0; k < b->nit[i]; k++, b->M++) {
            uint32_t e = RND() % 2, len = 3 + RND() % 31;
            b->it_ex[b->M] = i, b->it_ph[b->M] = (uint8_t)e, b->it_enc[b->M] = e, b->it_len[b->M] = len;
            b->it_cost[b->M] = exec_item_positions(&m->enc[e], len);
            b->it_in[b->M] = 4ull * len, b->it_out[b->M] = 128ull * exec_item_tokens(&m->enc[e], len);
            S += exec_item_tokens(&m->enc[e], len);
        }
        b->tok[i] = S, b->ex_cost[i] = S, b->ex_bytes[i] = 4ull * b->text[i];
    }
#undef RND
    b->po = (PolicyOptions){.objective = OBJ_COST, .seed = 1};
    b->w = (StepWork){.D = D, .P = m->n_enc + 1, .N = N, .M = b->M, .dp_per_node = D > 1 ? D / 2 : 1,
                      .drawn = b->drawn, .ex_cost = b->ex_cost, .ex_tokens = b->tok, .ex_bytes = b->ex_bytes,
                      .it_example = b->it_ex, .it_phase = b->it_ph, .it_cost = b->it_cost, .it_len = b->it_len,
                      .it_in_bytes = b->it_in, .it_out_bytes = b->it_out, .opt = &b->po};
}

/* ||got - ref|| / ||ref||: bf16 activations make single elements noisy, the norm is stable. */
static double rel_err(const float *got, const double *ref, uint64_t n) {
    double d = 0, r = 0;
    for (uint64_t i = 0; i < n; i++) d += (got[i] - ref[i]) * (got[i] - ref[i]), r += ref[i] * ref[i];
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

OsStatus exec_selftest_executor(ExecExecCheck *out, uint32_t D, const char *const *policies, int n_policies,
                                ExecAttnImpl impl) {
    OsStatus st = OS_OK;
    const ModelSpec *p = model_preset_find("tiny");
    ModelSpec m;
    Batch *b = NULL;
    RefModel *ref = NULL;
    ExecMllm *x = NULL;
    PolicyScratch *ps = NULL;
    ExecMemTrack mt;
    ExecStepPlan sp;
    int have_sp = 0;
    uint32_t home[N], exr[N], itr[MMAX + 1];
    float *first[2 * MODEL_MAX_ENC + 1] = {0}, *got = NULL;
    double rl = 0;
    memset(out, 0, sizeof *out);
    memset(&mt, 0, sizeof mt);
    if (!p || D == 0 || D > DMAX || N % D || n_policies < 1)
        OS_FAIL(OS_ERR_INTERNAL, "selftest", "executor", NULL, "tiny preset, D = %u, %d policies", D, n_policies);
    m = *p;
    m.enc[1].pad_to = 12; /* audio items shorter than 12 are encoded padded */
    ALLOC_CHECK(b = malloc(sizeof *b));
    make_batch(b, &m, D);
    {
        ExecBatch eb = {.n = N, .id = b->id, .text = b->text, .first_item = b->first, .n_items = b->nit,
                        .it_enc = b->it_enc, .it_len = b->it_len};
        double norm = (double)ref_batch_labels(&m, &eb);
        OS_CHECK(ref_model_create(&ref, &m, 42));
        OS_CHECK(ref_model_step(&rl, ref, &eb, 7, norm, 1));
        OS_CHECK(exec_mllm_create_local(&x, &m, 42, D, 0));
        OS_CHECK(exec_mllm_set_attn(x, impl));
        OS_CHECK(exec_mem_track_init(&mt, &m, D, 1, 0, impl));
        OS_CHECK(policy_scratch_create(&ps));
        for (int q = 0; q < n_policies; q++) {
            const Policy *pol = policy_find(policies[q]);
            Plan plan = {.home = home, .ex_rank = exr, .it_rank = itr, .hierarchical = 0};
            ExecRankTimes t[DMAX];
            double loss = 0;
            if (!pol) OS_FAIL(OS_ERR_INTERNAL, "selftest", "policy", NULL, "no policy '%s'", policies[q]);
            OS_CHECK(pol->fn(&plan, &b->w, ps));
            OS_CHECK(plan_check(&plan, &b->w, policies[q]));
            OS_CHECK(exec_step_plan_build(&sp, &plan, &b->w, &m));
            have_sp = 1;
            OS_CHECK(exec_mem_track_step(&mt, &m, &sp, b->id));
            OS_CHECK(exec_mllm_zero_grads(x));
            OS_CHECK(exec_mllm_step(x, &sp, b->id, 7, norm, t));
            for (uint32_t k = 0; k < D; k++) loss += t[k].loss;
            out->loss_rel = fmax(out->loss_rel, fabs(loss - rl) / fmax(fabs(rl), 1e-30));
            for (uint32_t k = 0; k < exec_n_modules(&m); k++) {
                uint64_t n;
                const double *g = ref_grads(ref, k, &n);
                ALLOC_CHECK(got = malloc(n * sizeof *got));
                OS_CHECK(exec_mllm_grads(x, k, got, n));
                out->grad_rel = fmax(out->grad_rel, rel_err(got, g, n));
                if (q == 0) {
                    first[k] = got;
                } else {
                    double *f = malloc(n * sizeof *f);
                    ALLOC_CHECK(f);
                    for (uint64_t i = 0; i < n; i++) f[i] = first[k][i];
                    out->policy_rel = fmax(out->policy_rel, rel_err(got, f, n));
                    free(f);
                    free(got);
                }
                got = NULL;
            }
            exec_step_plan_free(&sp);
            have_sp = 0;
        }
        exec_mllm_mem(x, &out->held);
        exec_mem_track_count(&mt, &out->estimate);
    }
fail:
    if (have_sp) exec_step_plan_free(&sp);
    for (uint32_t k = 0; k < 2 * MODEL_MAX_ENC + 1; k++) free(first[k]);
    free(got);
    exec_mem_track_free(&mt);
    policy_scratch_destroy(ps);
    exec_mllm_destroy(x);
    ref_model_destroy(ref);
    free(b);
    return st;
}
