/* fa_kernels_avx2.c -- the same loops compiled for AVX2 + FMA (x86-64-v3).
 *
 * The target pragma applies to every function defined after it, including
 * the inline math of fa_acts.h / fa_math.h, so the whole kernel body is
 * built for AVX2+FMA while the rest of the extension stays baseline.
 * fa_dispatch.c only calls this table after cpuid says AVX2 and FMA are
 * there.  On other compilers or architectures this file defines nothing.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fa_kernels.h"

#if FA_HAVE_AVX2_BUILD
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define FA_IMPL_NAME fa_impl_avx2
#define FA_HAVE_FMA 1      /* fa_acts.h: __builtin_fmaf is one instruction here */
#include "fa_kernels_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int fa_no_avx2_build; /* ISO C wants at least one declaration */
#endif
