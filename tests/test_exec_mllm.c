/* test_exec_mllm.c — the GPU step executor (exec/mllm.cu) against its slow twin (exec/ref.c):
 * one step's loss and every module's gradients on the `tiny` preset (one encoder padded with
 * pad_to, so the encode-padding / splice-real-tokens convention is exercised), within bf16
 * tolerance; and the gradients of the same global batch under `none`, `post` and `post-node`
 * (4 ranks, 2 per node, LOCAL mode: one device, the moves as device copies) equal to each
 * other and to the reference. Skipped, visibly, without a CUDA device. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/gpu.h"
#include "exec/mllm.h"
#include "exec/params.h"
#include "exec/plan.h"
#include "exec/ref.h"
#include "sim/policy.h"

static void need_gpu(void) {
    int n = 0;
    char why[256] = "";
    OsStatus st = exec_gpu_count(&n, why, sizeof why);
    os_clear_error();
    if (st != OS_OK || n <= 0) cr_skip_test("no CUDA device: %s", why);
}

static ModelSpec tiny_padded(void) {
    const ModelSpec *p = model_preset_find("tiny");
    cr_assert_not_null(p);
    ModelSpec m = *p;
    m.enc[1].pad_to = 12; /* audio items shorter than 12 are encoded padded */
    return m;
}

/* 16 examples; item k of example i: image or audio, lengths 3..33 */
enum { N = 16, MMAX = 3 * N, D = 4 };
typedef struct {
    uint32_t drawn[N], tok[N], text[N], first[N], nit[N], it_ex[MMAX], it_len[MMAX], it_enc[MMAX];
    uint8_t it_ph[MMAX];
    double ex_cost[N], it_cost[MMAX];
    uint64_t ex_bytes[N], it_in[MMAX], it_out[MMAX], id[N];
    uint32_t M;
    PolicyOptions po;
    StepWork w;
} Batch;

static void make_batch(Batch *b, const ModelSpec *m) {
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
    b->po = (PolicyOptions){.objective = OBJ_COST, .seed = 1};
    b->w = (StepWork){.D = D, .P = m->n_enc + 1, .N = N, .M = b->M, .dp_per_node = 2, .drawn = b->drawn,
                      .ex_cost = b->ex_cost, .ex_tokens = b->tok, .ex_bytes = b->ex_bytes, .it_example = b->it_ex,
                      .it_phase = b->it_ph, .it_cost = b->it_cost, .it_len = b->it_len, .it_in_bytes = b->it_in,
                      .it_out_bytes = b->it_out, .opt = &b->po};
}

/* ||got - ref|| / ||ref|| over a module: bf16 activations make single elements noisy, the
 * norm of the difference is the stable measure. */
static double rel_err(const float *got, const double *ref, uint64_t n) {
    double d = 0, r = 0;
    for (uint64_t i = 0; i < n; i++) d += (got[i] - ref[i]) * (got[i] - ref[i]), r += ref[i] * ref[i];
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* Run one step of the whole batch under `policy` on D local ranks; grads and loss out. */
static void run_policy(const char *policy, Batch *b, const ModelSpec *m, ExecMllm *x, double norm, double *loss) {
    uint32_t home[N], exr[N], itr[MMAX + 1];
    Plan p = {.home = home, .ex_rank = exr, .it_rank = itr, .hierarchical = 0};
    PolicyScratch *ps = NULL;
    ExecStepPlan sp;
    ExecRankTimes t[D];
    cr_assert_eq(policy_scratch_create(&ps), OS_OK);
    cr_assert_eq(policy_find(policy)->fn(&p, &b->w, ps), OS_OK, "%s", os_last_error());
    cr_assert_eq(plan_check(&p, &b->w, policy), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_step_plan_build(&sp, &p, &b->w, m), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_mllm_zero_grads(x), OS_OK);
    cr_assert_eq(exec_mllm_step(x, &sp, b->id, 7, norm, t), OS_OK, "%s: %s", policy, os_last_error());
    *loss = 0;
    for (uint32_t k = 0; k < D; k++) {
        *loss += t[k].loss;
        cr_assert(t[k].step > 0 && isfinite(t[k].step), "%s rank %u: step time %g", policy, k, t[k].step);
    }
    exec_step_plan_free(&sp);
    policy_scratch_destroy(ps);
}

Test(exec_mllm, step_matches_reference_and_is_policy_invariant, .timeout = 120) {
    need_gpu();
    ModelSpec m = tiny_padded();
    Batch b;
    make_batch(&b, &m);
    ExecBatch eb = {.n = N, .id = b.id, .text = b.text, .first_item = b.first, .n_items = b.nit,
                    .it_enc = b.it_enc, .it_len = b.it_len};
    RefModel *ref = NULL;
    ExecMllm *x = NULL;
    double norm = (double)ref_batch_labels(&m, &eb), rl = 0;
    cr_assert_eq(ref_model_create(&ref, &m, 42), OS_OK);
    cr_assert_eq(ref_model_step(&rl, ref, &eb, 7, norm, 1), OS_OK);
    cr_assert_eq(exec_mllm_create_local(&x, &m, 42, D, 0), OS_OK, "%s", os_last_error());
    const char *pols[] = {"none", "post", "post-node"};
    float *first[2 * MODEL_MAX_ENC + 1] = {0};
    for (int q = 0; q < 3; q++) {
        double loss;
        run_policy(pols[q], &b, &m, x, norm, &loss);
        cr_assert(fabs(loss - rl) <= 2e-2 * fabs(rl), "%s: loss %.6g vs reference %.6g", pols[q], loss, rl);
        for (uint32_t k = 0; k < exec_n_modules(&m); k++) {
            uint64_t n;
            const double *g = ref_grads(ref, k, &n);
            float *got = malloc(n * sizeof *got);
            cr_assert_not_null(got);
            cr_assert_eq(exec_mllm_grads(x, k, got, n), OS_OK);
            double e = rel_err(got, g, n);
            cr_assert(e < 5e-2, "%s module %u: |grad - ref| / |ref| = %.4g", pols[q], k, e);
            if (q == 0) {
                first[k] = got;
            } else {
                double *f = malloc(n * sizeof *f);
                for (uint64_t i = 0; i < n; i++) f[i] = first[k][i];
                double pe = rel_err(got, f, n);
                cr_assert(pe < 3e-2, "%s vs none, module %u: %.4g", pols[q], k, pe);
                free(f), free(got);
            }
        }
    }
    for (uint32_t k = 0; k < exec_n_modules(&m); k++) free(first[k]);
    exec_mllm_destroy(x);
    ref_model_destroy(ref);
}

Test(exec_mllm, without_cuda_build_says_so) {
    int n = 0;
    char why[64];
    if (exec_gpu_count(&n, why, sizeof why) == OS_OK) cr_skip_test("a CUDA device is present");
    os_clear_error();
    ExecMllm *x = (ExecMllm *)1;
    ModelSpec m = tiny_padded();
    OsStatus st = exec_mllm_create_local(&x, &m, 1, 2, 0);
    cr_assert_neq(st, OS_OK);
    cr_assert_null(x);
    os_clear_error();
}
