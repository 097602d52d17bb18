/* test_exec_flash.c — the fused variable-length attention's algorithm without a GPU
 * (exec/flash.h): the tile lists (count, order by work, lengths 0 and 1), the work per
 * sequence (sum of len^2 tile pairs, never (sum len)^2), and the CPU emulation of the GPU
 * kernels' exact tiling (online softmax with rescaling, bf16 P and dS, LSE, dO.O row sums,
 * GQA accumulation) against the naive float64 reference: causal and bidirectional, odd
 * lengths, length 1, several sequences packed, head dims 8..128. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/flash.h"
#include "exec/params.h"
#include "exec/tol.h"

static float val(uint64_t seed, uint64_t i) { return exec_bf16_round(exec_uniform(exec_hash3(seed, i, 77))); }

Test(exec_flash, tiles_by_work_and_lengths_0_and_1) {
    uint64_t len[4] = {130, 0, 1, 64};
    ExecFlashTile f[16], b[16];
    cr_assert_leq(5, exec_flash_max_tiles(195));
    uint32_t n = exec_flash_tiles(f, b, len, 4, 1);
    cr_assert_eq(n, 5);
    /* forward causal: the third tile of the 130-row sequence sees 3 key tiles, first */
    int want_w[5] = {3, 2, 1, 1, 1}, want_start[5] = {128, 64, 0, 0, 0}, want_t0[5] = {0, 0, 0, 130, 131};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(f[i].work, want_w[i], "tile %d", i);
        cr_assert_eq(f[i].start, want_start[i], "tile %d", i);
        cr_assert_eq(f[i].t0, want_t0[i], "tile %d", i);
    }
    /* backward causal: key tile 0 of the long sequence is seen by all three query tiles */
    cr_assert_eq(b[0].work, 3);
    cr_assert_eq(b[0].start, 0);
    cr_assert_eq(b[0].len, 130);
    n = exec_flash_tiles(f, NULL, len, 4, 0);
    cr_assert_eq(n, 5);
    for (int i = 0; i < 3; i++) cr_assert_eq(f[i].work, 3);
    cr_assert_eq(exec_flash_tiles(f, b, len + 1, 1, 1), 0, "a sequence of length 0 has no tile");
}

Test(exec_flash, work_is_sum_of_len_squared_never_packed_square) {
    uint64_t len[10];
    for (int i = 0; i < 10; i++) len[i] = 64;
    cr_assert_eq(exec_flash_pairs(len, 10, 0), 10, "10 sequences of one tile: 10 pairs, not (640/64)^2 = 100");
    cr_assert_eq(exec_flash_pairs(len, 10, 1), 10);
    uint64_t one = 640;
    cr_assert_eq(exec_flash_pairs(&one, 1, 0), 100);
    cr_assert_eq(exec_flash_pairs(&one, 1, 1), 55);
}

typedef struct {
    int nseq;
    uint64_t len[6];
    int nh, nkv, hd;
} Shape;

/* Emulation vs reference; also counts the pairs visited against exec_flash_pairs. */
static void check(const Shape *s, int causal) {
    uint64_t T = 0;
    for (int q = 0; q < s->nseq; q++) T += s->len[q];
    const size_t ld = (size_t)(s->nh + 2 * s->nkv) * s->hd, ldo = (size_t)s->nh * s->hd;
    float *qkv = malloc(T * ld * sizeof *qkv), *att = malloc(T * ldo * sizeof *att);
    float *lse = malloc((size_t)s->nh * T * sizeof *lse), *dout = malloc(T * ldo * sizeof *dout);
    float *dqkv = calloc(T * ld, sizeof *dqkv);
    double *ref = malloc(T * ld * sizeof *ref);
    ExecFlashTile *f = malloc(exec_flash_max_tiles(T) * sizeof *f), *b = malloc(exec_flash_max_tiles(T) * sizeof *b);
    cr_assert(qkv && att && lse && dout && dqkv && ref && f && b);
    for (size_t i = 0; i < T * ld; i++) qkv[i] = 2.0f * val(1, i); /* scores of a few units: a peaked softmax */
    for (size_t i = 0; i < T * ldo; i++) dout[i] = val(2, i);
    uint32_t n = exec_flash_tiles(f, b, s->len, (uint32_t)s->nseq, causal);
    uint64_t pf = 0, pb = 0;
    exec_flash_forward_cpu(att, lse, qkv, f, n, T, s->nh, s->nkv, s->hd, causal, &pf);
    cr_assert_eq(pf, exec_flash_pairs(s->len, (uint32_t)s->nseq, causal) * (uint64_t)s->nh);
    exec_attn_ref_forward(ref, qkv, s->len, (uint32_t)s->nseq, s->nh, s->nkv, s->hd, causal);
    double wf = exec_worst(att, ref, T * ldo, 1e-2, 1e-2);
    cr_assert(wf <= 1.0, "forward %s hd %d: worst %g", causal ? "causal" : "full", s->hd, wf);
    /* the LSE: log sum exp of the scaled scores, checked on the first row of each sequence */
    uint64_t t0 = 0;
    for (int q = 0; q < s->nseq; t0 += s->len[q], q++) {
        if (!s->len[q]) continue;
        double mx = -INFINITY, sum = 0, sc[64 * 6];
        uint64_t nj = causal ? 1 : s->len[q];
        for (uint64_t j = 0; j < nj; j++) {
            double d = 0;
            for (int e = 0; e < s->hd; e++) d += (double)qkv[t0 * ld + e] * qkv[(t0 + j) * ld + (size_t)s->nh * s->hd + e];
            sc[j] = d / sqrt((double)s->hd);
            mx = fmax(mx, sc[j]);
        }
        for (uint64_t j = 0; j < nj; j++) sum += exp(sc[j] - mx);
        cr_assert(fabs(lse[t0] - (mx + log(sum))) < 1e-3, "lse %g vs %g", lse[t0], mx + log(sum));
    }
    exec_flash_backward_cpu(dqkv, dout, qkv, att, lse, b, n, T, s->nh, s->nkv, s->hd, causal, &pb);
    cr_assert_eq(pb, exec_flash_pairs(s->len, (uint32_t)s->nseq, causal) * (uint64_t)s->nh);
    exec_attn_ref_backward(ref, dout, qkv, s->len, (uint32_t)s->nseq, s->nh, s->nkv, s->hd, causal);
    double wb = exec_worst(dqkv, ref, T * ld, 3e-2, 3e-2);
    cr_assert(wb <= 1.0, "backward %s hd %d: worst %g", causal ? "causal" : "full", s->hd, wb);
    free(qkv), free(att), free(lse), free(dout), free(dqkv), free(ref), free(f), free(b);
}

Test(exec_flash, emulation_matches_reference_odd_lengths_gqa, .timeout = 120) {
    const Shape shapes[] = {
        {1, {1}, 2, 1, 8},                  /* one row */
        {3, {1, 37, 2}, 4, 2, 16},          /* odd lengths, GQA 2 heads per group */
        {3, {63, 64, 65}, 2, 2, 16},        /* tile edges */
        {2, {130, 7}, 4, 1, 24},            /* three tiles, MQA, a head dim not a power of two */
        {1, {200}, 2, 1, 64},
        {2, {70, 3}, 2, 2, 128},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int causal = 0; causal < 2; causal++) check(&shapes[i], causal);
}

Test(exec_flash, supported_head_dims) {
    cr_assert(exec_flash_supported(16) && exec_flash_supported(64) && exec_flash_supported(128));
    cr_assert(exec_flash_supported(8) && exec_flash_supported(88));
    cr_assert(!exec_flash_supported(4) && !exec_flash_supported(12) && !exec_flash_supported(256));
    cr_assert_eq(exec_flash_hdp(8), 16);
    cr_assert_eq(exec_flash_hdp(24), 32);
    cr_assert_eq(exec_flash_hdp(88), 128);
}
