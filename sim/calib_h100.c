/* calib_h100.c — the built-in calibration table for an H100 SXM5 80GB (calib_default_h100).
 * Every number is a published kernel-level measurement or a cited physical figure; none is
 * fitted to end-to-end training results. Sources (README: bench/fidelity/data/ holds the
 * transcriptions and bench/fidelity/README.md the discussion):
 *  - peak: 989.4e12 FLOP/s dense bf16 (REFERENCE.md §D.4).
 *  - GEMMs: the OpenXLA GPU cost model's measured sm_90 bf16 matmul table
 *    (tensorflow/tensorflow third_party/xla/xla/service/gpu/model/matmul_interpolator_data.h,
 *    commit 372d578b; 375 (b, m, n, k) entries, b in {1,2,4}, m, n, k in {256..4096}),
 *    transcribed in bench/fidelity/data/xla-matmul-sm90.csv and folded by
 *    bench/fidelity/data/gen_gemm_grid.py into the (b*m, n, k) grid below: 7 x 5 x 5 cells,
 *    m from 256 to 16384. Rates in FLOP/s (2*m*n*k per call).
 *  - attention: the kernel of the software stack this table stands for (PyTorch 2.1 eager,
 *    as MosaicML's llm-foundry H100 benchmarks ran in 2023: their MPT models used attn_impl
 *    "triton", Tri Dao's pre-MLIR Triton FlashAttention, llm-foundry commit b2a43a147). No H100
 *    figure of that kernel is published; its own docstring puts it "slightly slower" than
 *    FlashAttention v1 (CUDA) forward+backward, and scaling its A100 figures by FA1's H100/A100
 *    ratio gives FA1's H100 rates within 5% (bench/fidelity/data/SOURCES-clocks.md §4f). So the
 *    rows are FlashAttention v1 on H100 SXM5 from the FlashAttention-2 paper's H100 chart
 *    (Dao-AILab/flash-attention assets/flash2_h100_fwd_bwd_benchmark.png, commit 4f285b3;
 *    FP16/BF16, batch x seqlen = 16k, hidden 2048). That chart gives forward+backward together,
 *    so both passes take the combined rate: their sum, 3.5 F / R, is exactly the chart's.
 *    A FlashAttention-2 table for newer stacks is bench/fidelity/calib/h100-fa2.calib.
 *  - gemm_sustained: 730e12 FLOP/s, bf16 8192 x 8192 x 8192 cuBLASLt GEMMs back to back on
 *    random data for a minute or more on "NVIDIA H100-SXM5-80GB HBM3" (huggingface/gpu-fryer
 *    README reference table, commit f9d564b; the tool averages every second of the burn after
 *    the first four; its contributors' reference runs were 3 x 10 minutes). The GEMM rows above
 *    are bursts (OpenXLA's generator profiles 5 runs per shape, xla/tools/
 *    matmul_perf_table_gen.cc); their 8192^3 rate (clamped to the grid's 8192 x 4096 x 4096
 *    cell) is 807.7e12, so every GEMM runs at 730 / 807.7 = 0.904 of its row through a
 *    training run (calib.c prepare_sustain; bench/fidelity/data/SOURCES-clocks.md §2d).
 *  - hbm_bw: 2.903e12 B/s, device-to-device copy (read + write) on H100 80GB HBM3 SXM5
 *    (aigatech/vpbenchmarking README, "Memory Bandwidth"; 86.7% of the 3.35 TB/s peak).
 *  - overlap_slowdown: 0.189, the average slowdown of compute overlapped with communication
 *    measured on A100/H100/MI250/MI210 for GPT and LLaMA layers (arXiv 2507.03114, abstract).
 *  - kernel_launch_s: see KERNEL_LAUNCH_S below.
 *  - the stack's own kernels (bench/fidelity/data/SOURCES-stack.md has each in full):
 *    - layernorm rows: torch.nn.LayerNorm on "NVIDIA H100 80GB HBM3" (SXM5), forward and backward
 *      by hidden size, x = (4096, N) fp32, triton do_bench median (linkedin/Liger-Kernel
 *      benchmark/data/all_benchmark_data.csv, kernel_name layer_norm, 2025-07-17, commit 29b0667;
 *      SOURCES-membound.md §1a), as bytes/s on the op's ideal bytes (fwd 2, bwd 3 elements).
 *      llm-foundry's benchmarks ran MPT's low_precision_layernorm: the same ATen kernel in bf16
 *      (llmfoundry/models/layers/norm.py at v0.3.0); the fp32 rate is applied to bf16 bytes.
 *    - ce_eager_bw: F.cross_entropy(logits.float()) forward on H100 SXM, bf16 logits, 8192 rows,
 *      V = 32768 / 65536 / 131072: 2.1347 / 4.3911 / 8.8077 ms on 14 bytes per logit = 1.760 /
 *      1.712 / 1.707 TB/s, mean 1.726 (Liger-Kernel megatron_cross_entropy rows, commit 9ed7a44;
 *      SOURCES-membound.md §6a).
 *    - train_metric_ce 2: Composer 0.16 evaluates the model's train metrics after every
 *      micro-batch's backward (composer/trainer/trainer.py `_train_microbatch` ->
 *      `_eval_train_metrics`, under the autocast context); llm-foundry 0.3.0's MPT registers
 *      LanguageCrossEntropy and LanguagePerplexity, each a torch.nn.CrossEntropyLoss over the
 *      logits, which autocast runs in fp32 (composer/metrics/nlp.py).
 *    - grad_land_bytes 4: PyTorch 2.1 FSDP hands the modules views of the unsharded flat
 *      parameter made by torch.split (torch/distributed/fsdp/flat_param.py
 *      `_get_unflat_views_aligned`), so autograd lands every weight gradient with the split's
 *      backward, a concatenation into the flat gradient: read and write 2 bytes per parameter.
 *    - recompute_early_stop 1: Composer wraps each block in checkpoint_wrapper(NO_REENTRANT)
 *      (composer/trainer/dist_strategy.py; the MPT yamls set activation_checkpointing_reentrant:
 *      false), i.e. torch.utils.checkpoint(use_reentrant=False), whose recomputation stops once
 *      every saved tensor is rebuilt, by default since pytorch/pytorch PR #96866 (2023-03, in
 *      2.1): MPT's block saves nothing after the MLP-out GEMM's inputs, so that GEMM and the
 *      last residual add are not recomputed. */
#include <stdio.h>
#include <string.h>

#include "sim/cost.h"

#define H100_PEAK 989.4e12
#define H100_HBM_BW 2.903e12
#define OVERLAP_SLOWDOWN 0.189
/* Fixed GPU time of one short memory-bound kernel beyond its bytes: back-to-back launches of
 * a small kernel on a stream cost ~1 us of gap each and a kernel cannot finish in less than
 * one wave (~2-3 us). ESTIMATE, not a measurement: 2.5 us. */
#define KERNEL_LAUNCH_S 2.5e-6
#define CE_EAGER_BW 1.726e12
#define TRAIN_METRIC_CE 2.0
#define GRAD_LAND_BYTES 4.0
#define GEMM_SUSTAINED 730e12 /* FLOP/s at GEMM_SUSTAINED_EDGE^3 (header) */
#define GEMM_SUSTAINED_EDGE 8192.0

/* torch.nn.LayerNorm on H100 SXM5 (header): {hidden, forward bytes/s, backward bytes/s} */
static const double H100_LAYERNORM[][3] = {
    {1024, 1.42e12, 0.83e12}, {2048, 1.80e12, 1.01e12}, {4096, 2.03e12, 1.13e12},
    {8192, 1.76e12, 1.21e12}, {16384, 1.75e12, 1.25e12},
};

static const CalibGemm H100_GEMM[] = {
    {256, 256, 256, 6452775384615e0},
    {256, 256, 512, 11459846994535e0},
    {256, 256, 1024, 19463127610208e0},
    {256, 256, 2048, 31126560296846e0},
    {256, 256, 4096, 84307618090452e0},
    {256, 512, 256, 11459846994535e0},
    {256, 512, 512, 21959706806282e0},
    {256, 512, 1024, 39107729603729e0},
    {256, 512, 2048, 62368832713754e0},
    {256, 512, 4096, 91678775956284e0},
    {256, 1024, 256, 22671913513513e0},
    {256, 1024, 512, 41838443890274e0},
    {256, 1024, 1024, 72471775377969e0},
    {256, 1024, 2048, 118987347517730e0},
    {256, 1024, 4096, 172294901155327e0},
    {256, 2048, 256, 41838443890274e0},
    {256, 2048, 512, 78215459207459e0},
    {256, 2048, 1024, 138084082304526e0},
    {256, 2048, 2048, 215784128617363e0},
    {256, 2048, 4096, 285873755058572e0},
    {256, 4096, 256, 78033562790697e0},
    {256, 4096, 512, 138084082304526e0},
    {256, 4096, 1024, 225197530201342e0},
    {256, 4096, 2048, 324589426844014e0},
    {256, 4096, 4096, 412026793553338e0},
    {512, 256, 256, 11554556473829e0},
    {512, 256, 512, 21788592207792e0},
    {512, 256, 1024, 39290903981264e0},
    {512, 256, 2048, 60349697841726e0},
    {512, 256, 4096, 91304576870748e0},
    {512, 512, 256, 22310127659574e0},
    {512, 512, 512, 42048160401002e0},
    {512, 512, 1024, 72944417391304e0},
    {512, 512, 2048, 119623643493761e0},
    {512, 512, 4096, 175218966057441e0},
    {512, 1024, 256, 43464290155440e0},
    {512, 1024, 512, 80659692307692e0},
    {512, 1024, 1024, 138654677685950e0},
    {512, 1024, 2048, 216480206451612e0},
    {512, 1024, 4096, 309614136101499e0},
    {512, 2048, 256, 81840078048780e0},
    {512, 2048, 512, 143395008547008e0},
    {512, 2048, 1024, 232613046793760e0},
    {512, 2048, 2048, 342392163265306e0},
    {512, 2048, 4096, 430530001603849e0},
    {512, 4096, 256, 142481664543524e0},
    {512, 4096, 512, 236298816901408e0},
    {512, 4096, 1024, 373345557719054e0},
    {512, 4096, 2048, 522247968871595e0},
    {512, 4096, 4096, 644116271145770e0},
    {1024, 256, 256, 22550021505376e0},
    {1024, 256, 512, 41221660933660e0},
    {1024, 256, 1024, 71392408510638e0},
    {1024, 256, 2048, 117734849122807e0},
    {1024, 256, 4096, 171633923273657e0},
    {1024, 512, 256, 43351979328165e0},
    {1024, 512, 512, 82241254901960e0},
    {1024, 512, 1024, 141281818947368e0},
    {1024, 512, 2048, 220029062295081e0},
    {1024, 512, 4096, 312134251162790e0},
    {1024, 1024, 256, 82040176039119e0},
    {1024, 1024, 512, 145572373101952e0},
    {1024, 1024, 1024, 236298816901408e0},
    {1024, 1024, 2048, 349981037809648e0},
    {1024, 1024, 4096, 470114633975481e0},
    {1024, 2048, 256, 140395112970711e0},
    {1024, 2048, 512, 237553500884955e0},
    {1024, 2048, 1024, 373345557719054e0},
    {1024, 2048, 2048, 525314003913894e0},
    {1024, 2048, 4096, 653525151552039e0},
    {1024, 4096, 256, 209715200000000e0},
    {1024, 4096, 512, 338933656565656e0},
    {1024, 4096, 1024, 490293070319634e0},
    {1024, 4096, 2048, 634224349675132e0},
    {1024, 4096, 4096, 738474431911967e0},
    {2048, 256, 256, 43690666666666e0},
    {2048, 256, 512, 77852510440835e0},
    {2048, 256, 1024, 136400130081300e0},
    {2048, 256, 2048, 216131607085346e0},
    {2048, 256, 4096, 307486203894616e0},
    {2048, 512, 256, 83886080000000e0},
    {2048, 512, 512, 146206675381263e0},
    {2048, 512, 1024, 237553500884955e0},
    {2048, 512, 2048, 347714321243523e0},
    {2048, 512, 4096, 451152026890756e0},
    {2048, 1024, 256, 141579881856540e0},
    {2048, 1024, 512, 238397385435168e0},
    {2048, 1024, 1024, 375434204195804e0},
    {2048, 1024, 2048, 523265996101364e0},
    {2048, 1024, 4096, 653127630170316e0},
    {2048, 2048, 256, 213044012698412e0},
    {2048, 2048, 512, 345476777348777e0},
    {2048, 2048, 1024, 493901482980680e0},
    {2048, 2048, 2048, 631984593290170e0},
    {2048, 2048, 4096, 738998566899666e0},
    {2048, 4096, 256, 299259148272017e0},
    {2048, 4096, 512, 450395060402684e0},
    {2048, 4096, 1024, 596523235555555e0},
    {2048, 4096, 2048, 715350982011992e0},
    {2048, 4096, 4096, 753643516181744e0},
    {4096, 256, 256, 82241254901960e0},
    {4096, 256, 512, 139230008298755e0},
    {4096, 256, 1024, 218240208130081e0},
    {4096, 256, 2048, 313959597660818e0},
    {4096, 256, 4096, 384045003442571e0},
    {4096, 512, 256, 142481664543524e0},
    {4096, 512, 512, 238821580071174e0},
    {4096, 512, 1024, 371794260387811e0},
    {4096, 512, 2048, 521740439261418e0},
    {4096, 512, 4096, 649964784503632e0},
    {4096, 1024, 256, 216480206451612e0},
    {4096, 1024, 512, 343707370038412e0},
    {4096, 1024, 1024, 489845722627737e0},
    {4096, 1024, 2048, 631984593290170e0},
    {4096, 1024, 4096, 738474431911967e0},
    {4096, 2048, 256, 304003913929784e0},
    {4096, 2048, 512, 447019910074937e0},
    {4096, 2048, 1024, 600191069871436e0},
    {4096, 2048, 2048, 717741860962566e0},
    {4096, 2048, 4096, 758434522012648e0},
    {4096, 4096, 256, 393889150403521e0},
    {4096, 4096, 512, 543116754678806e0},
    {4096, 4096, 1024, 678724288242730e0},
    {4096, 4096, 2048, 738736406437117e0},
    {4096, 4096, 4096, 783328793548203e0},
    {8192, 256, 256, 136123456389452e0},
    {8192, 256, 512, 235469698245614e0},
    {8192, 256, 1024, 368224219478738e0},
    {8192, 256, 2048, 508400484848484e0},
    {8192, 256, 4096, 584190328618063e0},
    {8192, 512, 256, 213382715421303e0},
    {8192, 512, 512, 340654131979695e0},
    {8192, 512, 1024, 487178686025408e0},
    {8192, 512, 2048, 622820083526682e0},
    {8192, 512, 4096, 730436614965986e0},
    {8192, 1024, 256, 301612871910112e0},
    {8192, 1024, 512, 445536026556016e0},
    {8192, 1024, 1024, 598184860167130e0},
    {8192, 1024, 2048, 713449716943521e0},
    {8192, 1024, 4096, 750605958755679e0},
    {8192, 2048, 256, 394758023529411e0},
    {8192, 2048, 512, 546433498218829e0},
    {8192, 2048, 1024, 680876235890932e0},
    {8192, 2048, 2048, 733304984804507e0},
    {8192, 2048, 4096, 783185953785750e0},
    {8192, 4096, 256, 464019802938634e0},
    {8192, 4096, 512, 607674484339352e0},
    {8192, 4096, 1024, 692967184002742e0},
    {8192, 4096, 2048, 763011394582711e0},
    {8192, 4096, 4096, 807671014191940e0},
    {16384, 256, 256, 206488812307692e0},
    {16384, 256, 512, 335125413233458e0},
    {16384, 256, 1024, 477643160142348e0},
    {16384, 256, 2048, 588674245614035e0},
    {16384, 256, 4096, 622459028405797e0},
    {16384, 512, 256, 298593388209121e0},
    {16384, 512, 512, 441505684210526e0},
    {16384, 512, 1024, 588997160724081e0},
    {16384, 512, 2048, 703631601572739e0},
    {16384, 512, 4096, 728585722240481e0},
    {16384, 1024, 256, 393312023443223e0},
    {16384, 1024, 512, 542037204101593e0},
    {16384, 1024, 1024, 673839272969739e0},
    {16384, 1024, 2048, 720518760010484e0},
    {16384, 1024, 4096, 777585153532370e0},
    {16384, 2048, 256, 458472170794193e0},
    {16384, 2048, 512, 607491838189533e0},
    {16384, 2048, 1024, 687861993493688e0},
    {16384, 2048, 2048, 759301869386266e0},
    {16384, 2048, 4096, 808699906572796e0},
    {16384, 4096, 256, 503874974234136e0},
    {16384, 4096, 512, 619859436746254e0},
    {16384, 4096, 1024, 725508891943538e0},
    {16384, 4096, 2048, 764575547036718e0},
    {16384, 4096, 4096, 793131337247852e0},
};

/* {dir, causal, head dim, length, TFLOP/s} */
typedef struct {
    int dir, causal;
    uint32_t hdim;
    double len, tflops;
} AttnRow;

#define CURVE(d, c, hd, a, b, e, f, g, h)                                                          \
    {d, c, hd, 512, a}, {d, c, hd, 1024, b}, {d, c, hd, 2048, e}, {d, c, hd, 4096, f},             \
        {d, c, hd, 8192, g}, {d, c, hd, 16384, h}
static const AttnRow H100_ATTN[] = {
    /* FlashAttention (v1), forward + backward combined: both passes at that rate */
    CURVE(ATTN_FWD, 0, 64, 157, 159, 161, 161, 166, 168),
    CURVE(ATTN_BWD, 0, 64, 157, 159, 161, 161, 166, 168),
    CURVE(ATTN_FWD, 0, 128, 127, 127, 128, 131, 137, 139),
    CURVE(ATTN_BWD, 0, 128, 127, 127, 128, 131, 137, 139),
    CURVE(ATTN_FWD, 1, 64, 104, 123, 136, 138, 149, 156),
    CURVE(ATTN_BWD, 1, 64, 104, 123, 136, 138, 149, 156),
    CURVE(ATTN_FWD, 1, 128, 98, 109, 108, 126, 135, 137),
    CURVE(ATTN_BWD, 1, 128, 98, 109, 108, 126, 135, 137),
};

void calib_default_h100(Calib *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "builtin-h100-sxm");
    snprintf(c->device, sizeof c->device, "NVIDIA H100 SXM5 80GB (published kernel measurements, not measured here)");
    snprintf(c->stack, sizeof c->stack, "PyTorch 2.1 eager as llm-foundry ran it (2023): cuBLAS GEMMs, FlashAttention v1-class attention");
    snprintf(c->attn_kernel, sizeof c->attn_kernel, "flash-attention-1 fwd+bwd (FA2 paper H100 chart), for MPT's Triton kernel");
    c->peak_flops = H100_PEAK;
    c->hbm_bw = H100_HBM_BW;
    c->kernel_launch_s = KERNEL_LAUNCH_S;
    c->overlap_slowdown = OVERLAP_SLOWDOWN;
    for (size_t i = 0; i < sizeof H100_GEMM / sizeof H100_GEMM[0]; i++) c->gemm[c->n_gemm++] = H100_GEMM[i];
    for (size_t i = 0; i < sizeof H100_ATTN / sizeof H100_ATTN[0]; i++) {
        const AttnRow *r = &H100_ATTN[i];
        c->attn[c->n_attn++] = (CalibAttn){(uint8_t)r->dir, (uint8_t)r->causal, r->hdim, r->len, r->tflops * 1e12};
    }
    for (size_t i = 0; i < sizeof H100_LAYERNORM / sizeof H100_LAYERNORM[0]; i++) {
        uint32_t hid = (uint32_t)H100_LAYERNORM[i][0];
        c->norm[c->n_norm++] = (CalibNorm){ATTN_FWD, hid, H100_LAYERNORM[i][1]};
        c->norm[c->n_norm++] = (CalibNorm){ATTN_BWD, hid, H100_LAYERNORM[i][2]};
    }
    c->ce_eager_bw = CE_EAGER_BW;
    c->metric_ce = TRAIN_METRIC_CE;
    c->grad_land_bytes = GRAD_LAND_BYTES;
    c->recompute_early_stop = 1;
    c->gemm_sustained = GEMM_SUSTAINED;
    for (int d = 0; d < 3; d++) c->gemm_sustained_mnk[d] = GEMM_SUSTAINED_EDGE;
    c->intra_bw = 0.0; /* not measured: the cluster defaults (net.h) apply */
    c->inter_bw = 0.0;
    /* the rows above are a complete grid with rates below peak: this cannot fail */
    (void)calib_validate(c, c->name);
}
