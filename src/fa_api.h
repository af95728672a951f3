/* fa_api.h -- the kernels of fastact._activations as a table of function
 * pointers, for other extension modules of the package (src/_nn.pyx).
 *
 * fastact._activations exports the table as the PyCapsule `C_API`
 * (name FA_API_CAPSULE); a module that imports it calls the same dispatched
 * loops (same ISA choice, FASTACT_ISA included) without compiling the kernels
 * a second time.  FA_API_VERSION changes whenever the struct does.
 */
#ifndef FA_API_H
#define FA_API_H

#include "fa_kernels.h"

#define FA_API_VERSION 2
#define FA_API_CAPSULE "fastact._activations.C_API"

typedef struct {
    int version;
    void (*fwd)(int act, int dtype, const void *x, void *y, ptrdiff_t n, const fa_params *p);
    void (*bwd)(int act, int dtype, const void *g, const void *s, void *out, ptrdiff_t n,
                const fa_params *p);
    void (*bias_fwd)(int act, int dtype, const void *z, const void *b, void *y, ptrdiff_t rows,
                     ptrdiff_t cols, const fa_params *p);
    void (*bias_bwd)(int act, int dtype, const void *g, const void *s, const void *b, void *dz,
                     double *db, ptrdiff_t rows, ptrdiff_t cols, const fa_params *p);
    void (*softmax_xent)(int dtype, const void *x, const int64_t *labels, const void *target,
                         void *grad, double *loss, ptrdiff_t rows, ptrdiff_t cols, double scale);
    int (*fp_flags)(void);
    void (*fp_restore)(int flags);
    void (*bias_fwd_d)(int act, int dtype, const void *z, const void *b, void *y, void *d,
                       ptrdiff_t rows, ptrdiff_t cols, const fa_params *p);
    int (*bias_fwd_d_fused)(int act, int dtype);
} fa_api_t;

/* the table (defined in fa_dispatch.c) */
const fa_api_t *fa_api(void);

#endif /* FA_API_H */
