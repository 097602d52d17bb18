/* nccl_dl.cu — see nccl_dl.cuh. */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "exec/nccl_dl.cuh"

extern "C" {
#include "exec/gpumod.h"
}

static ExecNccl g_nccl;
static int g_tried;
static OsStatus g_st;
static char g_err[768];

template <typename F>
static int sym(F *out, void *h, const char *name) {
    void *p = dlsym(h, name);
    memcpy(out, &p, sizeof p);
    return p != NULL;
}

OsStatus exec_nccl(const ExecNccl **out) {
    *out = NULL;
    if (g_tried) {
        if (g_st != OS_OK) return os_fail(g_st, "libnccl.so.2", "NCCL", EXEC_GPU_LIB_HINT, "%s", g_err);
        *out = &g_nccl;
        return OS_OK;
    }
    g_tried = 1;
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(g_err, sizeof g_err, "dlopen: %s", e ? e : "unknown error");
        g_st = OS_ERR_NODEV;
        return os_fail(g_st, "libnccl.so.2", "NCCL", EXEC_GPU_LIB_HINT, "%s", g_err);
    }
    int ok = sym(&g_nccl.GetVersion, h, "ncclGetVersion") && sym(&g_nccl.GetUniqueId, h, "ncclGetUniqueId") &&
             sym(&g_nccl.CommInitRank, h, "ncclCommInitRank") && sym(&g_nccl.CommDestroy, h, "ncclCommDestroy") &&
             sym(&g_nccl.CommAbort, h, "ncclCommAbort") &&
             sym(&g_nccl.CommGetAsyncError, h, "ncclCommGetAsyncError") &&
             sym(&g_nccl.GetErrorString, h, "ncclGetErrorString") && sym(&g_nccl.GroupStart, h, "ncclGroupStart") &&
             sym(&g_nccl.GroupEnd, h, "ncclGroupEnd") && sym(&g_nccl.Send, h, "ncclSend") &&
             sym(&g_nccl.Recv, h, "ncclRecv") && sym(&g_nccl.AllReduce, h, "ncclAllReduce") &&
             sym(&g_nccl.ReduceScatter, h, "ncclReduceScatter") && sym(&g_nccl.AllGather, h, "ncclAllGather");
    sym(&g_nccl.GetLastError, h, "ncclGetLastError"); /* optional */
    {
        struct link_map *lm = NULL;
        if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name)
            snprintf(g_nccl.path, sizeof g_nccl.path, "%s", lm->l_name);
    }
    if (!ok) {
        snprintf(g_err, sizeof g_err, "%.600s lacks a call orchsim needs (NCCL >= 2.19 has them all)",
                 g_nccl.path[0] ? g_nccl.path : "libnccl.so.2");
        g_st = OS_ERR_NODEV;
        return os_fail(g_st, "libnccl.so.2", "NCCL", "install a newer nvidia-nccl-cu13 wheel", "%s", g_err);
    }
    if (g_nccl.GetVersion(&g_nccl.version) != ncclSuccess) g_nccl.version = 0;
    g_st = OS_OK;
    *out = &g_nccl;
    return OS_OK;
}

const char *exec_nccl_strerror(ncclResult_t r) {
    if (g_st != OS_OK || !g_tried || !g_nccl.GetErrorString) return "NCCL not loaded";
    return g_nccl.GetErrorString(r);
}
