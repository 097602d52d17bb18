/* test_exec_worker.c — exec/worker.h with fake worker bodies (no GPU): reports arrive in order
 * from every worker, worker 0's broadcast reaches all, a hanging worker is killed by the
 * watchdog within the timeout, a failing worker is named with its own error, a worker killed
 * by a signal or exiting early is reported, and the pool finishes cleanly otherwise. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec/worker.h"
#include "base/util.h"

typedef enum { B_OK, B_HANG, B_HANG_FIRST, B_FAIL, B_SIGNAL, B_SILENT, B_HANG_LATER } Behaviour;

typedef struct {
    Behaviour bad;     /* what worker `victim` does; the others run B_OK (or B_BCAST) */
    uint32_t victim;
    uint32_t steps, per_step;
    int bcast;         /* every worker takes part in a broadcast first */
} Fake;

static OsStatus fake_body(ExecWorker *w, void *user) {
    OsStatus st = OS_OK;
    const Fake *f = user;
    uint32_t me = exec_worker_index(w);
    Behaviour b = me == f->victim ? f->bad : B_OK;
    char blob[64] = "";
    if (b == B_HANG_FIRST) for (;;) pause(); /* before its broadcast: the others wait on it */
    if (f->bcast) {
        if (me == 0) snprintf(blob, sizeof blob, "nccl-id-%u", 4242u);
        OS_CHECK(exec_worker_bcast(w, blob, sizeof blob));
    }
    if (b == B_HANG) for (;;) pause();
    if (b == B_FAIL) OS_FAIL(OS_ERR_CUDA, "cuda", "cudaMalloc", NULL, "out of memory on purpose (worker %u)", me);
    if (b == B_SIGNAL) raise(SIGKILL);
    if (b == B_SILENT) return OS_OK;
    for (uint32_t s = 0; s < f->steps; s++) {
        if (b == B_HANG_LATER && s == 1) for (;;) pause();
        for (uint32_t i = 0; i < f->per_step; i++) {
            ExecReport r = {0};
            r.rank = me * 100 + i, r.step = s, r.n = 2;
            r.v[0] = me * 10.0 + s;
            r.v[1] = (double)(blob[0] ? strlen(blob) : 0);
            OS_CHECK(exec_worker_report(w, &r));
        }
    }
fail:
    return st;
}

Test(exec_worker, reports_arrive_from_every_worker_in_order) {
    Fake f = {B_OK, 99, 3, 2, 0};
    ExecPool *p = NULL;
    ExecReport out[4 * 2];
    cr_assert_eq(exec_pool_start(&p, 4, fake_body, &f), OS_OK, "%s", os_last_error());
    for (uint32_t s = 0; s < 3; s++) {
        cr_assert_eq(exec_pool_collect(p, out, 2, 10.0), OS_OK, "%s", os_last_error());
        for (uint32_t k = 0; k < 4; k++)
            for (uint32_t i = 0; i < 2; i++) {
                const ExecReport *r = &out[k * 2 + i];
                cr_assert_eq(r->worker, k);
                cr_assert_eq(r->rank, k * 100 + i);
                cr_assert_eq(r->step, s);
                cr_assert_eq(r->n, 2);
                cr_assert_float_eq(r->v[0], k * 10.0 + s, 0);
            }
    }
    cr_assert_eq(exec_pool_finish(p, 10.0), OS_OK, "%s", os_last_error());
    exec_pool_destroy(p);
}

Test(exec_worker, broadcast_reaches_every_worker) {
    Fake f = {B_OK, 99, 1, 1, 1};
    ExecPool *p = NULL;
    ExecReport out[5];
    cr_assert_eq(exec_pool_start(&p, 5, fake_body, &f), OS_OK);
    cr_assert_eq(exec_pool_collect(p, out, 1, 10.0), OS_OK, "%s", os_last_error());
    for (uint32_t k = 0; k < 5; k++) cr_assert_float_eq(out[k].v[1], (double)strlen("nccl-id-4242"), 0, "worker %u", k);
    cr_assert_eq(exec_pool_finish(p, 10.0), OS_OK, "%s", os_last_error());
    exec_pool_destroy(p);
}

Test(exec_worker, hanging_worker_is_killed_by_the_watchdog) {
    Fake f = {B_HANG_LATER, 2, 3, 1, 0};
    ExecPool *p = NULL;
    ExecReport out[3];
    cr_assert_eq(exec_pool_start(&p, 3, fake_body, &f), OS_OK);
    cr_assert_eq(exec_pool_collect(p, out, 1, 10.0), OS_OK, "%s", os_last_error()); /* step 0 fine */
    os_clear_error();
    double t0 = os_now();
    OsStatus st = exec_pool_collect(p, out, 1, 0.4);
    double took = os_now() - t0;
    cr_assert_eq(st, OS_ERR_TIMEOUT, "got %d: %s", st, os_last_error());
    cr_assert(took >= 0.35 && took < 5.0, "took %.3f s", took);
    cr_assert(strstr(os_last_error(), "rank(s) 2"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "killed"), "%s", os_last_error());
    /* the pool is dead: no further collect pretends to work */
    os_clear_error();
    cr_assert_neq(exec_pool_collect(p, out, 1, 1.0), OS_OK);
    os_clear_error();
    exec_pool_destroy(p);
}

Test(exec_worker, missing_broadcast_times_out_instead_of_hanging) {
    Fake f = {B_HANG_FIRST, 0, 1, 1, 1}; /* worker 0 never broadcasts: 1..3 block in bcast */
    ExecPool *p = NULL;
    ExecReport out[4];
    cr_assert_eq(exec_pool_start(&p, 4, fake_body, &f), OS_OK);
    os_clear_error();
    cr_assert_eq(exec_pool_collect(p, out, 1, 0.3), OS_ERR_TIMEOUT, "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "rank(s) 0,1,2,3"), "%s", os_last_error());
    os_clear_error();
    exec_pool_destroy(p);
}

Test(exec_worker, failing_worker_is_named_with_its_error) {
    Fake f = {B_FAIL, 1, 2, 1, 0};
    ExecPool *p = NULL;
    ExecReport out[3];
    cr_assert_eq(exec_pool_start(&p, 3, fake_body, &f), OS_OK);
    os_clear_error();
    double t0 = os_now();
    OsStatus st = exec_pool_collect(p, out, 1, 30.0);
    cr_assert(os_now() - t0 < 10.0, "the failure was only noticed at the timeout");
    cr_assert_eq(st, OS_ERR_CUDA, "got %d: %s", st, os_last_error());
    cr_assert(strstr(os_last_error(), "rank 1 failed"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "out of memory on purpose (worker 1)"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "exited with status 1"), "%s", os_last_error());
    os_clear_error();
    exec_pool_destroy(p);
}

Test(exec_worker, worker_killed_by_a_signal_is_reported) {
    Fake f = {B_SIGNAL, 0, 1, 1, 0};
    ExecPool *p = NULL;
    ExecReport out[2];
    cr_assert_eq(exec_pool_start(&p, 2, fake_body, &f), OS_OK);
    os_clear_error();
    cr_assert_neq(exec_pool_collect(p, out, 1, 30.0), OS_OK);
    cr_assert(strstr(os_last_error(), "rank 0 killed by signal 9"), "%s", os_last_error());
    os_clear_error();
    exec_pool_destroy(p);
}

Test(exec_worker, worker_exiting_before_its_reports_is_an_error) {
    Fake f = {B_SILENT, 1, 1, 1, 0};
    ExecPool *p = NULL;
    ExecReport out[2];
    cr_assert_eq(exec_pool_start(&p, 2, fake_body, &f), OS_OK);
    os_clear_error();
    cr_assert_neq(exec_pool_collect(p, out, 1, 30.0), OS_OK);
    cr_assert(strstr(os_last_error(), "rank 1"), "%s", os_last_error());
    os_clear_error();
    exec_pool_destroy(p);
}

Test(exec_worker, bad_arguments_are_refused) {
    ExecPool *p = (ExecPool *)1;
    Fake f = {B_OK, 99, 1, 1, 0};
    cr_assert_eq(exec_pool_start(&p, 0, fake_body, &f), OS_ERR_ARG);
    cr_assert_null(p);
    os_clear_error();
    exec_pool_destroy(NULL);
}

Test(exec_worker, mpi_detection_reads_the_environment) {
    uint32_t r = 7, n = 7;
    unsetenv("PMI_SIZE"), unsetenv("PMI_RANK");
    unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("OMPI_COMM_WORLD_RANK");
    cr_assert_eq(exec_under_mpi(&r, &n), 0);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    setenv("OMPI_COMM_WORLD_RANK", "3", 1);
    cr_assert_eq(exec_under_mpi(&r, &n), 1);
    cr_assert_eq(r, 3);
    cr_assert_eq(n, 4);
}
