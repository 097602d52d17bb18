/* fuzz_trace.c — libFuzzer target: arbitrary bytes as a trace file. The bytes go to a temp
 * file, which is opened and fully validated; any outcome but a crash, leak or sanitizer
 * report is fine (a rejection must carry a message). Build and run: traces/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "traces/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_trace_%ld.h5", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    os_clear_error();
    Trace *t = NULL;
    OsStatus st = trace_open(&t, path);
    if (st == OS_OK) {
        st = trace_validate(t);
        trace_close(t);
    }
    if (st != OS_OK && !os_has_error()) abort(); /* every rejection names its reason */
    remove(path);
    return 0;
}
