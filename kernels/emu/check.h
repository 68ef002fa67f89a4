// check.h — what the emulator's check programs (kernels/emu/*_check.cpp) share: a seeded
// splitmix64 stream (each program sets its own seed, so its cases do not move when another's
// do) and the one-line-per-case verdict whose failure count is the exit code.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace check {

inline uint64_t rng_state = 0;
inline uint64_t next_u64() {  // splitmix64
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
inline float uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((next_u64() >> 40) * (1.0 / 16777216.0));
}

inline int failures = 0;
inline void report(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

}  // namespace check
