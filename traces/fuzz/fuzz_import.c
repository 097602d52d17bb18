/* fuzz_import.c — libFuzzer target: arbitrary bytes as a JSONL file and as a CSV file, each
 * imported (B = 2, D = 1, drop-remainder, then shuffled) into a temp trace; a produced trace
 * must open and validate. Build and run: traces/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "traces/import.h"
#include "traces/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, const char *ext, int shuffle) {
    char in[64], out[64];
    snprintf(in, sizeof in, "/tmp/fuzz_import_%ld.%s", (long)getpid(), ext);
    snprintf(out, sizeof out, "/tmp/fuzz_import_%ld.h5", (long)getpid());
    FILE *f = fopen(in, "wb");
    if (!f) return;
    fwrite(data, 1, size, f);
    fclose(f);
    os_clear_error();
    ImportConfig cfg = {in, out, NULL, 2, 1, shuffle, 3, 1, 0, NULL};
    ImportSummary sum;
    OsStatus st = import_run(&cfg, &sum);
    if (st != OS_OK && !os_has_error()) abort();
    if (st == OS_OK) {
        Trace *t = NULL;
        if (trace_open(&t, out) != OS_OK || trace_validate(t) != OS_OK) abort(); /* we wrote it */
        if (trace_n_examples(t) != sum.examples) abort();
        trace_close(t);
    } else if (access(out, F_OK) == 0) {
        abort(); /* a failed import must leave no output */
    }
    remove(out);
    remove(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size, "jsonl", 0);
    one(data, size, "csv", 1);
    return 0;
}
