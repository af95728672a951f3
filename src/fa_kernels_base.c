/* fa_kernels_base.c -- the loops for the portable baseline of the target
 * (x86-64: SSE2).  Correct on every CPU; the fallback of fa_dispatch.c. */
#define FA_IMPL_NAME fa_impl_baseline
#include "fa_kernels_impl.h"
