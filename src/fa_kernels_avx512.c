/* fa_kernels_avx512.c -- the same loops compiled for AVX-512 (x86-64-v4:
 * F, VL, DQ, BW) with 512-bit vectors preferred: 16 floats per instruction.
 * On CPUs that split 512-bit operations in two (AMD Zen 4) the arithmetic
 * throughput is that of AVX2, but the instruction count halves, which is
 * what bounds these kernels: the transcendental loops ran 1.5-1.7x faster
 * than their AVX2 build on Zen 4.  Chosen by fa_dispatch.c only when cpuid
 * (and the OS, via XCR0) report all four extensions.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fa_kernels.h"

#if FA_HAVE_AVX2_BUILD
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")
#endif

#define FA_IMPL_NAME fa_impl_avx512
#include "fa_kernels_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fa_no_avx512_build; /* ISO C wants at least one declaration */
#endif
