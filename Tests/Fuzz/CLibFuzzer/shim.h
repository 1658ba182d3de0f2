// libFuzzer's driver, which the toolchain's clang ships (libclang_rt.fuzzer) and `-sanitize=fuzzer` links. The fuzz
// targets call it from their own entry point: SwiftPM names an executable's `main` itself, so libFuzzer's `main`
// cannot be used. Only referenced in a `-D FUZZING` build; an ordinary build links nothing from it.
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
