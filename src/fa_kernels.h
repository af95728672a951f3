/* fa_kernels.h -- the C interface of the native kernels.
 *
 * Layers (DESIGN.md section 2): Python validates and allocates; the Cython
 * entries in _activations.pyx split work into chunks, release the GIL and
 * call these functions; these functions dispatch once per call to the loops
 * compiled for the CPU (AVX-512, AVX2+FMA or the portable baseline), which
 * are generated in fa_kernels_impl.h from the scalar math in fa_acts.h
 * (plus a few hand-vectorised AVX-512 loops, fa_avx512_hand.h).
 *
 * All arrays are contiguous; n, rows, cols count elements.  dtype is FA_F32
 * or FA_F64 and every array of a call has that dtype, except the double
 * accumulators (db, gw) which are always double and are ADDED to.
 */
#ifndef FA_KERNELS_H
#define FA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this compiler can build the AVX2+FMA variant (x86 with gcc/clang);
 * setup.py passes -DFA_HAVE_AVX2_BUILD=0 when FASTACT_AVX2=0. */
#ifndef FA_HAVE_AVX2_BUILD
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FA_HAVE_AVX2_BUILD 1
#else
#define FA_HAVE_AVX2_BUILD 0
#endif
#endif

/* The activation parameters, meaning per activation (see fa_acts.h):
 * leaky_relu a = negative_slope;  elu a = alpha;  celu a = alpha, b = 1/alpha;
 * softplus, softplus_pow2, softplus_far a = beta, b = threshold, c = 1/beta,
 * d = the threshold rounded down to float;
 * hardtanh a = min, b = max. */
typedef struct {
    double a, b, c, d;
} fa_params;

/* X(name): every elementwise activation with its own loops.  relu6 runs as
 * hardtanh(0, 6); softplus_pow2 is softplus for a beta that is a power of
 * two >= 1 (float32 then takes the float polynomials), softplus_far softplus
 * for a beta < 1 (the far tail, where e^(beta x) underflows but e^(beta x) / beta
 * does not); prelu and the row-wise softmax family have their own entry points
 * below.  Ids are positions (new ones at the end). */
#define FA_ACTIVATIONS(X) \
    X(identity)           \
    X(sigmoid)            \
    X(tanh)               \
    X(relu)               \
    X(leaky_relu)         \
    X(elu)                \
    X(selu)               \
    X(celu)               \
    X(gelu)               \
    X(gelu_tanh)          \
    X(silu)               \
    X(mish)               \
    X(softplus)           \
    X(softsign)           \
    X(hardtanh)           \
    X(hardsigmoid)        \
    X(hardswish)          \
    X(log_sigmoid)        \
    X(softplus_pow2)      \
    X(softplus_far)

#define FA_ENUM_ENTRY(name) FA_ACT_##name,
enum { FA_ACTIVATIONS(FA_ENUM_ENTRY) FA_N_ACT };
#undef FA_ENUM_ENTRY

enum { FA_F32 = 0, FA_F64 = 1 };
enum { FA_ISA_BASELINE = 0, FA_ISA_AVX2 = 1, FA_ISA_AVX512 = 2 };

/* the name of activation id (NULL when out of range) */
const char *fa_act_name(int act);

/* y = f(x) */
void fa_fwd(int act, int dtype, const void *x, void *y, ptrdiff_t n, const fa_params *p);
/* out = g * f'(s), s = saved input or output */
void fa_bwd(int act, int dtype, const void *g, const void *s, void *out, ptrdiff_t n,
            const fa_params *p);
/* y[r, j] = f(z[r, j] + b[j]) for a (rows, cols) block */
void fa_bias_fwd(int act, int dtype, const void *z, const void *b, void *y, ptrdiff_t rows,
                 ptrdiff_t cols, const fa_params *p);
/* y = f(z + b) and d = f'(z + b) (b may be NULL; d may be z): what a dense layer keeps
 * for its backward, dz = g d.  f must be input-saving (its backward reads the input:
 * fastact/_registry.py's "saves"), as the fallback's derivative is bwd(1, z + b).  One fused pass where
 * fa_bias_fwd_d_fused says so, else the bias pass, the forward and the derivative over
 * blocks of rows in L1. */
void fa_bias_fwd_d(int act, int dtype, const void *z, const void *b, void *y, void *d,
                   ptrdiff_t rows, ptrdiff_t cols, const fa_params *p);
int fa_bias_fwd_d_fused(int act, int dtype);
/* dz[r, j] = g[r, j] * f'(s[r, j] (+ b[j] when b != NULL));  db[j] += sum_r dz[r, j] */
void fa_bias_bwd(int act, int dtype, const void *g, const void *s, const void *b, void *dz,
                 double *db, ptrdiff_t rows, ptrdiff_t cols, const fa_params *p);

/* prelu with one slope per column: y = x > 0 ? x : w[j] x */
void fa_prelu_fwd(int dtype, const void *x, const void *w, void *y, ptrdiff_t rows,
                  ptrdiff_t cols);
/* gx = g * (x > 0 ? 1 : w[j]);  gw[j] += sum_r (x > 0 ? 0 : x g) */
void fa_prelu_bwd(int dtype, const void *g, const void *x, const void *w, void *gx,
                  double *gw, ptrdiff_t rows, ptrdiff_t cols);

/* row-wise softmax (log_ = 0) or log_softmax (log_ = 1) over the last axis */
void fa_softmax_fwd(int dtype, int log_, const void *x, void *y, ptrdiff_t rows, ptrdiff_t cols);
/* backward from the output y */
void fa_softmax_bwd(int dtype, int log_, const void *g, const void *y, void *gx, ptrdiff_t rows,
                    ptrdiff_t cols);
/* softmax cross-entropy of a (rows, cols) block of logits.
 * labels: class indices (target == NULL) or probability rows (labels == NULL).
 * grad = scale * (softmax(x) * sum(target) - target); loss[r] = row loss. */
void fa_softmax_xent(int dtype, const void *x, const int64_t *labels, const void *target,
                     void *grad, double *loss, ptrdiff_t rows, ptrdiff_t cols, double scale);

/* floating-point exception flags of the calling thread: the -fno-trapping-math
 * loops may raise spurious ones (e.g. overflow in a branch a select drops);
 * the entry points restore the caller's flags so NumPy never reports them. */
int fa_fp_flags(void);
void fa_fp_restore(int flags);

/* CPU dispatch */
int fa_cpu_has_avx2_fma(void);
int fa_cpu_has_avx512(void);   /* F, VL, DQ and BW, enabled by the OS */
int fa_avx2_compiled(void);
int fa_get_isa(void);
/* select the best ISA not above `isa` that this CPU runs; returns it */
int fa_set_isa(int isa);
int fa_pick_isa(int isa, int has_avx2_fma, int has_avx512);   /* pure, for tests */

#ifdef __cplusplus
}
#endif
#endif /* FA_KERNELS_H */
