/* fa_kernels_avx512.c -- the same loops compiled for AVX-512 (x86-64-v4:
 * F, VL, DQ, BW) with 512-bit vectors preferred: 16 floats per instruction.
 * On CPUs that split 512-bit operations in two (AMD Zen 4) the arithmetic
 * throughput is that of AVX2, but the instruction count halves, which is
 * what bounds these kernels: the transcendental loops ran 1.5-1.7x faster
 * than their AVX2 build on Zen 4, and the hand-vectorised exp family of
 * fa_avx512_hand.h another ~1.5x.  Chosen by fa_dispatch.c only when cpuid
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

#define FA_IMPL_NAME fa_impl_avx512_auto
#define FA_HAVE_FMA 1      /* fa_acts.h: __builtin_fmaf is one instruction here */
#include "fa_kernels_impl.h"
#include "fa_avx512_hand.h"

/* the auto-vectorised table with the hand-vectorised loops swapped in;
 * built on the first call (from fa_set_isa, at import) */
const fa_impl *fa_avx512_table(void)
{
    static fa_impl table;
    static int ready = 0;
    if (!ready) {
        table = fa_impl_avx512_auto;
        fa_avx512_install_hand(&table);
        ready = 1;
    }
    return &table;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fa_no_avx512_build; /* ISO C wants at least one declaration */
#endif
