/* CZlib: the system zlib, for NNBackprop's gzip reader (IDX files of the MNIST family ship as
 * .gz). This shim exists because zlib's inflateInit2() is a function-like macro, which Swift
 * cannot import; the inline wrapper below gives Swift a real function to call. */
#ifndef NNB_CZLIB_SHIM_H
#define NNB_CZLIB_SHIM_H

#include <zlib.h>

/* inflateInit2 with windowBits 15 + 32: a zlib or gzip stream, detected from its header. */
static inline int czlib_inflate_init_auto(z_streamp stream) {
    return inflateInit2(stream, 15 + 32);
}

#endif
