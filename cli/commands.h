/* commands.h — every `orchsim <command>` entry point. Each lives in cli/cmd_<name>.c, takes
 * argv with argv[0] = the command name, and returns a status (OS_DONE = help printed). The
 * registry in main.c is the only list. */
#ifndef OS_CLI_COMMANDS_H
#define OS_CLI_COMMANDS_H

#include "base/status.h"

typedef OsStatus CommandFn(int argc, char **argv);

CommandFn cmd_gen, cmd_import, cmd_info, cmd_replay, cmd_compare, cmd_advise, cmd_sweep, cmd_plot,
    cmd_calibrate, cmd_validate, cmd_fidelity;
CommandFn cmd_pipeline; /* text-to-image pipelines (sim/diffusion/pipesim.h) */
CommandFn cmd_selftest, cmd_doctor; /* the GPU module's commands (exec/gpumod.h) */

#endif
