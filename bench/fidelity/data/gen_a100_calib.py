#!/usr/bin/env python3
"""Write bench/fidelity/calib/a100-megatron.calib: an A100 SXM4 80GB table for the Megatron-LM
2021 stack (PyTorch 20.12 container: CUDA 11.1, cuBLAS GEMMs, unfused attention = two batched
GEMMs + Megatron's fused scale-causal-mask-softmax + dropout), built only from the published
A100 measurements transcribed in SOURCES-3d.md section 3 and SOURCES-clocks.md section 4e. The
rules that extend them (non-square GEMMs, 40 GB -> 80 GB, head dimensions) are stated here and
in SOURCES-a100.md; none uses Megatron's Table 1. Usage: gen_a100_calib.py > a100-megatron.calib
"""
import math
import sys

# ---- GEMMs ---------------------------------------------------------------------------------
# NVIDIA "CUDA 11 Features Revealed" (2020) Fig. 6, cuBLAS mixed-precision m = n = k on A100,
# BF16 series read off the chart (SOURCES-3d.md 3a; FP16 within 3 TFLOP/s of it). TFLOP/s.
CHART = [(256, 5), (512, 28), (768, 62), (1024, 91), (1280, 149), (1536, 150), (1792, 201), (2048, 196),
         (2304, 242), (2560, 229), (2816, 238), (3072, 236), (3328, 247), (3584, 245), (3840, 260), (4096, 261),
         (4352, 248), (4608, 275), (4864, 266), (5120, 263), (5376, 260), (5632, 283), (5888, 280), (6144, 277),
         (6400, 276), (6656, 277), (6912, 279), (7168, 281), (7424, 282), (7680, 285), (7936, 288), (8192, 292)]
# Horace He (thonking.ai, 2024): A100 8192^3 through PyTorch's cuBLAS, 295 TFLOP/s on zeros, 257 on
# randn (SOURCES-clocks.md section 1). The chart's 292 at 8192^3 is his zeros figure: the chart
# does not say what data it multiplied. Training multiplies random-like bits: no GEMM is taken
# faster than the randn figure (the rate a power-limited GPU sustains on such data).
RANDN_CAP = 257.0
AXIS = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768]


def chart_rate(e):
    """Square-GEMM rate at edge e: power law between chart points, the largest above."""
    if e <= CHART[0][0]:
        return CHART[0][1] * e / CHART[0][0]
    if e >= CHART[-1][0]:
        return CHART[-1][1]
    for (a, ra), (b, rb) in zip(CHART, CHART[1:]):
        if a <= e <= b:
            t = math.log(e / a) / math.log(b / a)
            return math.exp((1 - t) * math.log(ra) + t * math.log(rb))
    raise AssertionError(e)


def gemm_rate(m, n, k):
    """Rule for shapes the chart does not have: the square GEMM of the same FLOPs, edge (mnk)^(1/3).
    Checked on the only measured non-square table we have, OpenXLA's sm_90 one
    (xla-matmul-sm90.csv, b = 1, 120 non-square shapes from 256 to 4096): against its own
    diagonal the rule's log error has mean +0.01 and rms 0.11 (mean -0.05, rms 0.08 where every
    dimension >= 1024); equal arithmetic intensity (the harmonic mean of m, n, k) errs by
    -0.64 (rms 0.78), the smallest dimension by -2.0."""
    return min(RANDN_CAP, chart_rate((m * n * k) ** (1.0 / 3.0)))


# ---- attention ----------------------------------------------------------------------------
# FlashAttention paper (arXiv 2205.14135) Appendix E: one A100 40GB, FP16, batch 16, 8 heads of
# 64, runtimes in ms of the attention call (SOURCES-3d.md 3c; transcription read in full for this
# file). Megatron's own implementation "with dropout" (0.1), no mask tensor: Tables 15 (fwd) and
# 16 (bwd). Megatron GPT's causal mask is applied inside ScaledUpperTriangMaskedSoftmax without a
# mask tensor (megatron/model/fused_softmax.py at 83c4d95, sk <= 2048) and the SC21 runs keep the
# default --attention-dropout 0.1, so this is the closest measured configuration.
LENS = [128, 256, 512, 1024, 2048]
MEG_FWD = [0.27, 0.27, 0.56, 1.88, 6.56]
MEG_BWD = [0.28, 0.33, 0.92, 2.94, 10.80]
# PyTorch standard attention, no dropout, no mask: Tables 18 and 19 (for the head-dim rule).
PT_FWD = [0.21, 0.22, 0.43, 1.27, 4.32]
PT_BWD = [0.29, 0.29, 0.78, 2.44, 8.82]
BH, HD0 = 16 * 8, 64
# 40 GB -> 80 GB: the kernels are HBM-bound (20-30 TFLOP/s of 312), so their times scale by the
# achieved read bandwidth of the two parts, te42kyfo/gpu-benches gpu-stream/a100_40.txt 1,490 GB/s
# and cuda-stream/a100_80.txt 1,769 GB/s (SOURCES-3d.md 3d). Check: App E's PyTorch rows so
# scaled give 38.9 / 43.2 / 45.3 TFLOP/s (fwd+bwd, 3.5x convention) at 1k / 2k / 4k against
# 40 / 43 / 45 read independently off the FA2 paper's A100 80GB chart.
KAPPA = 1490.0 / 1769.0
# Head dimension: runtime linear in d at a fixed length (the two batched GEMMs do work in
# proportion to d; the softmax, scale, mask and dropout passes over the len^2 scores do not),
# t(d) = t_M(64) + g * t_PT(64) * (d / 64 - 1), with g the d-proportional share of PyTorch
# attention's hdim-64 time from the FA2 paper's A100 80GB fwd+bwd chart, PyTorch series, no mask
# (SOURCES-clocks.md 4e): rates R64, R128 at equal total FLOPs give t128/t64 per head = 2 R64/R128
# = 1 + g. 512: 36/53, 1k: 40/67, 2k: 43/76; 128 and 256 take 512's.
FA2_PT64 = {512: 36.0, 1024: 40.0, 2048: 43.0}
FA2_PT128 = {512: 53.0, 1024: 67.0, 2048: 76.0}
HDIMS = [64, 128, 160]  # 96 (GPT 1.7B, 3.6B) is interpolated by the cost model; 160 = 1 x 128 + 25 %


def g_of(L):
    L = max(L, 512)
    return 2.0 * FA2_PT64[L] / FA2_PT128[L] - 1.0


def attn_rows():
    rows = []
    for i, L in enumerate(LENS):
        g = g_of(L)
        for d in HDIMS:
            f = 4.0 * L * L * d * BH  # forward FLOPs, FlashAttention convention (no causal halving)
            tf = (MEG_FWD[i] + g * PT_FWD[i] * (d / HD0 - 1)) * KAPPA * 1e-3
            tb = (MEG_BWD[i] + g * PT_BWD[i] * (d / HD0 - 1)) * KAPPA * 1e-3
            rf, rb = f / tf, 2.5 * f / tb
            rows.append(('fwd', 'full', d, L, rf))
            rows.append(('bwd', 'full', d, L, rb))
            # causal: the batched GEMMs compute every score and the fused kernel masks them, so
            # the time is the unmasked one; the cost model counts half the FLOPs for causal
            rows.append(('fwd', 'causal', d, L, rf / 2))
            rows.append(('bwd', 'causal', d, L, rb / 2))
    order = {'fwd': 0, 'bwd': 1, 'full': 0, 'causal': 1}
    rows.sort(key=lambda r: (order[r[0]], order[r[1]], r[2], r[3]))
    return rows


HEADER = """# orchsim calibration v2
# A100 SXM4 80GB for the Megatron-LM 2021 stack (Narayanan et al., arXiv 2104.04473, Selene; the
# SC21 scripts ran nvcr.io/nvidia/pytorch:20.12-py3: CUDA 11.1, cuBLAS 11.3). Written by
# bench/fidelity/data/gen_a100_calib.py from published A100 kernel measurements only (sources
# and every rule: bench/fidelity/data/SOURCES-a100.md); nothing here is fitted to Table 1.
#  peak_flops  312 TFLOP/s dense FP16/BF16 (NVIDIA A100 datasheet; the paper's own figure).
#  gemm        cuBLAS m = n = k chart (NVIDIA "CUDA 11 Features Revealed", Fig. 6, BF16 ~ FP16),
#              read off the image; a non-square (m, n, k) takes the square rate at the same FLOPs,
#              edge (m n k)^(1/3) (checked on OpenXLA's measured sm_90 table: log-rms 0.11);
#              capped at 257 TFLOP/s, cuBLAS 8192^3 on randn (Horace He; 295 on zeros = the
#              chart's 292): training data are random bits. 8 sizes per axis, 256 ... 32768.
#  attn        Megatron's unfused attention (batched GEMMs + fused scale-causal-mask-softmax +
#              dropout 0.1): FlashAttention paper App. E Tables 15/16 (A100 40GB, hdim 64, batch
#              16 x 8 heads), times x 1490/1769 (40 GB -> 80 GB HBM read, gpu-benches); head dims
#              128 and 160 by t(d) = t(64) + g t_PyTorch(64) (d/64 - 1), g from the FA2 paper's
#              A100 80GB chart (PyTorch series, hdim 64 vs 128); causal rows are the unmasked time
#              (the GEMMs compute every score), i.e. half the rate in the cost model's convention.
#  hbm_bw      1.732e12 B/s: gpu-benches cuda-stream a100_80 "scale" (read + write), 85 % of 2.039.
#  intra_bw    300 GB/s per direction (NVLink 3, 12 x 25 GB/s; "600 GB/s" bidirectional). With
#              sim/net's ring efficiency (358/450, fitted on H100) the ring busbw is 238.7 GB/s
#              against 234.9 GB/s measured on 8 x A100 (nccl-tests all_reduce_perf, 16 GiB).
#  inter_bw    25 GB/s per GPU: one 200 Gb/s HDR HCA per GPU (8 per Selene node); sim/net's NIC
#              efficiency gives 8 x 23.5 = 188 GB/s per node against NVIDIA's 192 GB/s all-reduce
#              busbw on DGX A100 (nccl #812).
#  overlap_slowdown 0.189 (arXiv 2507.03114, GPT/LLaMA layers on A100/H100/MI250/MI210).
#  kernel_launch_s  2.5e-06: an ESTIMATE (no A100 figure found), the built-in H100 table's.
#  gemm_sustained   270 TFLOP/s, bf16 8192^3 cuBLASLt GEMMs held for minutes on "NVIDIA
#              A100-SXM4-80GB HBM2e" (huggingface/gpu-fryer README, PR #9: 3 x 10-minute runs).
#              Above the rows' 257 (already a randn, power-bound figure), so the scale is 1: the
#              burn leaves this table's GEMMs as they are (sim/calib.c prepare_sustain).
#  grad_land_bytes  6: the SC21 scripts ran --fp16 with --DDP-impl local (39B and up) or torch, and
#              no --use-contiguous-buffers-in-ddp (examples/sc21/CONFIG.sh, run_table_1.sh at
#              6985e58); megatron/model/distributed.py (de7dc40) then keeps the gradients in
#              param.grad, so autograd's AccumulateGrad adds every micro-batch's fp16 weight
#              gradient into it in place: read 2 + read 2 + write 2 bytes per parameter. (The
#              first micro-batch's gradient is stolen, not added: rows with one micro-batch are
#              charged ~0.2% of their step too much.)
# rates in FLOP/s; gemm m n k rate (C[m x n] = A[m x k] B[k x n]); attn fwd|bwd causal|full head_dim length rate (FlashAttention FLOP convention)
name = a100-megatron
device = NVIDIA A100 SXM4 80GB (published kernel measurements, not measured here)
stack = Megatron-LM 2021 (PyTorch 20.12, CUDA 11.1): cuBLAS fp16 GEMMs, unfused attention
attn_kernel = Megatron unfused: baddbmm + ScaledUpperTriangMaskedSoftmax + dropout + bmm (FA1 paper App. E)
peak_flops = 312000000000000
hbm_bw = 1732000000000
kernel_launch_s = 2.5e-06
overlap_slowdown = 0.189
gemm_sustained = 270000000000000 8192 8192 8192
grad_land_bytes = 6
intra_bw = 300000000000
inter_bw = 25000000000
# nvls = 0: A100's second-generation NVSwitch has no NVLink SHARP (NVIDIA introduced it with the
# third-generation NVSwitch of DGX H100); NCCL's NVLS algorithm needs it, so rings apply.
nvls = 0
"""


def main():
    out = sys.stdout
    out.write(HEADER)
    for m in AXIS:
        for n in AXIS:
            for k in AXIS:
                out.write('gemm %d %d %d %.0f\n' % (m, n, k, gemm_rate(m, n, k) * 1e12))
    for d, mask, hd, L, r in attn_rows():
        out.write('attn %s %s %d %d %.0f\n' % (d, mask, hd, L, r))


if __name__ == '__main__':
    main()
