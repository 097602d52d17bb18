/* fuzz_import.c — libFuzzer target: arbitrary bytes as a JSONL/JSON file and as a CSV file, each
 * imported (B = 2, D = 1, drop-remainder, then shuffled) into a trace; a produced trace must
 * open and validate with the counts import reported, and a failed import must leave no
 * output. Inputs are memory files; outputs go to a scratch directory whose leftovers from dead
 * fuzz processes are removed at start-up. Build and run: traces/fuzz/run.sh. */
#include "traces/fuzz/fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <stdint.h>

#include "traces/import.h"
#include "traces/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, const char *fmt, int shuffle) {
    char in[64], out[640];
    int fd = fuzz_memfile(data, size, in, sizeof in);
    if (fd < 0) return;
    snprintf(out, sizeof out, "%s/%ld-import.h5", fuzz_scratch(), (long)getpid());
    os_clear_error();
    ImportConfig cfg = {in, out, fmt, 2, 1, shuffle, 3, 1, 0, NULL};
    ImportSummary sum;
    OsStatus st = import_run(&cfg, &sum);
    if (st != OS_OK && !os_has_error()) abort();
    if (st == OS_OK) {
        Trace *t = NULL;
        if (trace_open(&t, out) != OS_OK || trace_validate(t) != OS_OK) abort(); /* we wrote it */
        if (trace_n_examples(t) != sum.examples || trace_n_items(t) != sum.items) abort();
        trace_close(t);
    } else if (access(out, F_OK) == 0) {
        abort(); /* a failed import must leave no output */
    }
    unlink(out);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size, "jsonl", 0);
    one(data, size, "csv", 1);
    return 0;
}
