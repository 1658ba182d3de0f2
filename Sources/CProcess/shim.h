// What Swift cannot call directly (prctl is variadic; posix_spawn's close-from is a GNU extension): the CLI's
// process hardening and key commands.
#pragma once
#if defined(__linux__)
#include <spawn.h>
#include <sys/prctl.h>
/// Marks the process not dumpable: no core file, and no other process of the same user may ptrace it or read its
/// memory through /proc. Returns prctl's result (0 on success).
static inline int token_vault_disable_dumping(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
#include <fcntl.h>
int pipe2(int fds[2], int flags);
/// A pipe whose two ends close on exec, so that no other program started meanwhile inherits them.
static inline int token_vault_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
/// Closes every descriptor from `from` up in a spawned child (glibc 2.34), so that a key command inherits nothing
/// but its standard streams. Returns the function's result (0 on success).
static inline int token_vault_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
#else
#include <spawn.h>
#include <unistd.h>
static inline int token_vault_disable_dumping(void) { return 0; }
static inline int token_vault_pipe(int fds[2]) { return pipe(fds); }
static inline int token_vault_spawn_close_from(posix_spawn_file_actions_t *actions, int from) { return 0; }
#endif
