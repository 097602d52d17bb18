/* gemm.cuh — one cublasGemmEx call from an ExecGemm (exec/gemm.h builds and tests the
 * arguments on the CPU): bf16 operands, fp32 accumulation (CUBLAS_COMPUTE_32F, so alpha and
 * beta are float), C in bf16 or fp32. Only for the .cu files of exec/. */
#ifndef OS_EXEC_GEMM_CUH
#define OS_EXEC_GEMM_CUH

#include <cublas_v2.h>

#include "exec/check.cuh"
#include "exec/gemm.h"

static inline OsStatus exec_gemm_run(cublasHandle_t h, const ExecGemm *g, cudaDataType ctype, float alpha,
                                     float beta) {
    OsStatus st = OS_OK;
    if (!exec_gemm_valid(g))
        OS_FAIL(OS_ERR_INTERNAL, "cublas", "cublasGemmEx", NULL, "bad arguments m %d n %d k %d lda %d ldb %d ldc %d",
                g->m, g->n, g->k, g->lda, g->ldb, g->ldc);
    CUBLAS_CHECK(cublasGemmEx(h, g->ta ? CUBLAS_OP_T : CUBLAS_OP_N, g->tb ? CUBLAS_OP_T : CUBLAS_OP_N, g->m, g->n, g->k,
                              &alpha, g->A, CUDA_R_16BF, g->lda, g->B, CUDA_R_16BF, g->ldb, &beta, g->C, ctype, g->ldc,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
fail:
    return st;
}

#endif
