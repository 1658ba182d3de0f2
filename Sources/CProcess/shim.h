// What Swift cannot call directly (prctl is variadic): the CLI's process hardening.
#pragma once
#if defined(__linux__)
#include <sys/prctl.h>
/// Marks the process not dumpable: no core file, and no other process of the same user may ptrace it or read its
/// memory through /proc. Returns prctl's result (0 on success).
static inline int token_vault_disable_dumping(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
#else
static inline int token_vault_disable_dumping(void) { return 0; }
#endif
