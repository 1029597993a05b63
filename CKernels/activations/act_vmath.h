/*
 * Vector math for the activations, written once for every SIMD path.
 *
 * Not a normal header: act_avx2.c, act_avx512.c and act_neon.c each include the lane primitives
 * below for their ISA (simd/lanes_<isa>.h) and then this file, so the same exp, log1p, erfc and
 * activation code is compiled once per ISA, every function carrying that ISA's target attribute
 * (VFN). The optimizer spans (optim/optim_vmath.h) are written on the same primitives. What each
 * lanes header provides:
 *
 *   V, M, VSUM      a vector of V_WIDTH floats, a lane mask, a double accumulator
 *   VFN             `static inline` plus the ISA's target attribute
 *   v_set v_load v_store v_load_part v_store_part (k < V_WIDTH lanes; the rest read as 0)
 *   v_add v_sub v_mul v_div v_sqrt v_max, v_fma(a, b, c) = a b + c and v_fnma(a, b, c) = c - a b,
 *                   each rounded once
 *   v_abs v_neg v_with_sign_of(m, s) (m >= 0 given the sign of s) v_round (to nearest even)
 *   v_scale2(p, k)  p 2^k for integral k in [-152, 128], rounded once (denormals included)
 *   v_lt v_gt       ordered compares (false on NaN); v_not; v_sel(m, a, b) = m ? a : b;
 *                   v_keep(m, a) = m ? a : 0; v_first(k) = the first k lanes (k <= V_WIDTH)
 *   v_hmax          the largest lane
 *   vsum_zero vsum_add vsum_total   sum lanes in double, in a fixed order
 *   vsum_add_squares(s, p)  lane i of s plus p[i]^2 (exact in double), i < V_WIDTH;
 *                   vsum_store(d, s) writes the V_WIDTH lanes of s to d, in order
 *
 * Accuracy, measured against double on 2M points of [-20, 20] (the same on AVX2, AVX-512 and
 * NEON; check_activations.c holds every path to its tolerances): sigmoid, tanh, silu <= 3.5 ulp,
 * elu, softplus <= 1.6 ulp, GELU (erf) <= 5 ulp for |x| <= 10 (10 ulp below -13, where Phi(x)
 * nears FLT_MIN), GELU (tanh) <= 2.3e-7 relative for |x| <= 3, 6.5e-7 at x = -10.1 (where y nears
 * FLT_MIN). Derivatives taken from x <= 2.5e-6 relative, the roots of SiLU' and the GELUs'
 * included (vm_near_root; the worst is just outside its window). Over [-100, 100] (measured on
 * check_activations.c's inputs, AVX2 and NEON) the same bounds hold where the exact value is a
 * normal float, and the error is within 1.2e-6 FLT_MIN (~10 denormal steps) below that.
 */
#ifndef V_WIDTH
#error "act_vmath.h is included by an ISA file after it defines the lane primitives"
#endif

#define VM_LOG2E 1.44269504088896341f
#define VM_LN2_HI 0.693359375f /* ln 2 = VM_LN2_HI + VM_LN2_LO; k * VM_LN2_HI is exact for |k| < 2^15 */
#define VM_LN2_LO (-2.12194440e-4f)
#define VM_SQRT2 1.41421356237309505f
#define VM_SQRT1_2 0.707106781186547524f
#define VM_INV_SQRT_2PI 0.398942280401432678f
#define VM_LN2 0.693147181f
#define VM_EXP_ZERO_BELOW (-104.0f) /* e^-104 < half the smallest denormal */
#define VM_EXP_SCALE 64.0f          /* log2 of the scale vm_sigmoid2_scaled carries a small sigmoid in */
#define VM_GELU_C 0.797884560802865356f /* sqrt(2 / pi) */
#define VM_GELU_K 0.044715f

/* ---- clamps ------------------------------------------------------------------------------ */

/* x < lo ? lo : x and x > hi ? hi : x; NaN passes through. */
VFN V v_clamp_lo(V x, float lo) { return v_sel(v_lt(x, v_set(lo)), v_set(lo), x); }
VFN V v_clamp_hi(V x, float hi) { return v_sel(v_gt(x, v_set(hi)), v_set(hi), x); }
VFN V v_clamp(V x, float lo, float hi) { return v_clamp_hi(v_clamp_lo(x, lo), hi); }

/* ---- exp, expm1, log1p ------------------------------------------------------------------- */

/* e^r - 1 for |r| <= ln2/2 (a little more is fine): Taylor series to r^7, truncation < 6e-9
 * relative; the leading r is added last, so small r keep full relative accuracy. */
VFN V vm_expm1_small(V r) {
    V q = v_fma(r, v_set(1.0f / 5040), v_set(1.0f / 720));
    q = v_fma(q, r, v_set(1.0f / 120));
    q = v_fma(q, r, v_set(1.0f / 24));
    q = v_fma(q, r, v_set(1.0f / 6));
    q = v_fma(q, r, v_set(0.5f));
    return v_fma(v_mul(r, r), q, r);
}

/* Cody-Waite: k = round((a + b) / ln2) and the returned r = a + b - k ln2. k ln2 is taken off a
 * first (its high part exactly) and b added after, so a large a costs no accuracy (b is the
 * small, low-order part of a + b). */
VFN V vm_exp_reduce(V a, V b, V *k) {
    *k = v_round(v_mul(v_add(a, b), v_set(VM_LOG2E)));
    const V r = v_fnma(*k, v_set(VM_LN2_HI), a);
    return v_add(v_fnma(*k, v_set(VM_LN2_LO), r), b);
}

/* exp(a + b) 2^s for a + b <= 88 - s ln2, b the low-order part (|b| <~ 2), s a constant in
 * [0, VM_EXP_SCALE]. Lanes with a < -104 - s ln2 give 0 without computing on a (no overflow, no
 * slow denormal assist); results between 2^-150 and 2^-126 are correctly scaled denormals. With
 * s > 0 a result that would be denormal stays normal and keeps its 24 bits, for a caller that
 * multiplies it by other factors before a last multiply by 2^-s rounds once. NaN propagates. */
VFN V vm_exp2p_scaled(V a, V b, float s) {
    const M keep = v_not(v_lt(a, v_set(VM_EXP_ZERO_BELOW - s * VM_LN2)));
    V k;
    const V r = vm_exp_reduce(v_keep(keep, a), v_keep(keep, b), &k);
    return v_keep(keep, v_scale2(v_add(vm_expm1_small(r), v_set(1.0f)), s == 0.0f ? k : v_add(k, v_set(s))));
}

/* exp(a + b) for a + b <= 88, b the low-order part; as vm_exp2p_scaled with s = 0. */
VFN V vm_exp2p(V a, V b) { return vm_exp2p_scaled(a, b, 0.0f); }

VFN V vm_exp(V x) { return vm_exp2p(x, v_set(0.0f)); }

/* e^x - 1 for x <= 0, accurate relative to the result near 0. Below -30 it is -1 in float. */
VFN V vm_expm1_neg(V x) {
    V k;
    const V r = vm_exp_reduce(v_clamp_lo(x, -30.0f), v_set(0.0f), &k);
    const V s = v_scale2(v_set(1.0f), k); /* 2^k, k in [-44, 0] */
    return v_fma(s, vm_expm1_small(r), v_sub(s, v_set(1.0f)));
}

/* log(1 + e) for e in [0, 1], accurate relative to the result for tiny e (fdlibm's log1p
 * scheme): 1 + e = 2^k (1 + f) (1 + c), c the rounding of 1 + e, and
 * log(1 + f) = f - (f^2/2 - s (f^2/2 + R)), s = f / (2 + f), R = 2 (s^2/3 + s^4/5 + ...). */
VFN V vm_log1p_unit(V e) {
    const V one = v_set(1.0f), half = v_set(0.5f);
    const V u = v_add(one, e);
    const V c = v_div(v_sub(e, v_sub(u, one)), u);
    const M big = v_gt(u, v_set(VM_SQRT2));
    const V k = v_keep(big, one);
    const V f = v_sub(v_sel(big, v_mul(u, half), u), one); /* exact; f in [-0.30, 0.42] */
    const V s = v_div(f, v_add(v_set(2.0f), f));
    const V z = v_mul(s, s);
    V R = v_fma(z, v_set(2.0f / 9), v_set(2.0f / 7));
    R = v_fma(R, z, v_set(2.0f / 5));
    R = v_mul(v_fma(R, z, v_set(2.0f / 3)), z); /* truncation < 1e-9 relative, |s| <= 0.172 */
    const V hfsq = v_mul(half, v_mul(f, f));
    const V lo = v_fma(s, v_add(hfsq, R), v_fma(k, v_set(VM_LN2_LO), c));
    return v_fma(k, v_set(VM_LN2_HI), v_sub(f, v_sub(hfsq, lo)));
}

/* ---- sigmoid, tanh, the Gaussian tail ---------------------------------------------------- */

/* sigmoid(t), and sigmoid(-t) = 1 - sigmoid(t) in *neg, each without cancellation, from
 * e = e^-|t| and tneg = t < 0. */
VFN V vm_sigmoid2_e(V e, M tneg, V *neg) {
    const V big = v_div(v_set(1.0f), v_add(v_set(1.0f), e)); /* sigmoid(|t|) */
    const V small = v_mul(e, big);                            /* sigmoid(-|t|) */
    *neg = v_sel(tneg, big, small);
    return v_sel(tneg, small, big);
}

/* sigmoid(x), and sigmoid(-x) in *neg. */
VFN V vm_sigmoid2(V x, V *neg) { return vm_sigmoid2_e(vm_exp(v_neg(v_abs(x))), v_lt(x, v_set(0.0f)), neg); }

/* sigmoid(t) = (returned) * *unscale and sigmoid(-t) = *neg, for t with -|t| = na + nb (nb the
 * low-order part) and tneg = t < 0. For t < 0 the small sigmoid(t) comes back scaled by
 * 2^VM_EXP_SCALE, with *unscale = 2^-VM_EXP_SCALE (else 1). SiLU(-91) is a normal float while
 * sigmoid(-91) is a denormal with 18 bits, and GELU-tanh'(-10.2) ~ -245 sigmoid(2u) is one while
 * sigmoid(2u) has 16: such a product is formed scaled and rounded once, at the last multiply by
 * *unscale. Unscaled, it is off by up to its factor times 2^-24 relative: 6e-6 for SiLU near -92,
 * 1.5e-5 for GELU-tanh' near -10.2. */
VFN V vm_sigmoid2_scaled(V na, V nb, M tneg, V *neg, V *unscale) {
    const V down = v_set(0x1p-64f); /* 2^-VM_EXP_SCALE */
    const V es = vm_exp2p_scaled(na, nb, VM_EXP_SCALE);   /* e^-|t| 2^64 */
    const V big = v_div(v_set(1.0f), v_fma(es, down, v_set(1.0f))); /* sigmoid(|t|) */
    const V small = v_mul(es, big);                                 /* sigmoid(-|t|) 2^64 */
    *neg = v_sel(tneg, big, v_mul(small, down));
    *unscale = v_sel(tneg, down, v_set(1.0f));
    return v_sel(tneg, small, big);
}

/* tanh |x| = -m / (2 + m) with m = e^-2|x| - 1, which keeps small |x| accurate. */
VFN V vm_tanh(V x) {
    const V m = vm_expm1_neg(v_mul(v_set(-2.0f), v_abs(x)));
    return v_with_sign_of(v_div(v_neg(m), v_add(v_set(2.0f), m)), x);
}

/* P(t) with erfc(z) = t exp(-z^2 + P(t)), t = 2 / (2 + z): a degree-10 polynomial in t - 11/16,
 * least-squares fitted (mpmath, 800 Chebyshev nodes on t in [0.15, 1], i.e. z <= 11.4) with
 * coefficients rounded to float one at a time from the top; |error| < 1.3e-8. */
static const float vm_erfc_poly_c[11] = {
    -4.154955447e-01f, 1.374380589e+00f, -3.569275513e-02f, -3.919158280e-01f,
    1.021678969e-01f,  2.173525989e-01f, -1.779693961e-01f, -9.130159020e-02f,
    2.072287053e-01f,  3.770829644e-03f, -1.337074637e-01f,
};

VFN V vm_erfc_poly(V t) {
    const V w = v_sub(t, v_set(0.6875f));
    V p = v_set(vm_erfc_poly_c[10]);
    for (int i = 9; i >= 0; i--) p = v_fma(p, w, v_set(vm_erfc_poly_c[i]));
    return p;
}

/* -x^2/2 = *a + b exactly (x^2 split by an fma), for the Gaussian factor at |x| <= 20. */
VFN V vm_half_square_neg(V x, V *a) {
    const V hi = v_mul(x, x);
    *a = v_mul(hi, v_set(-0.5f));
    return v_mul(v_fma(x, x, v_neg(hi)), v_set(-0.5f));
}

/* Phi(-|x|) = erfc(|x| / sqrt2) / 2 for |x| <= 20, accurate relative to itself far out in the
 * tail (the exponent -x^2/2 is carried exactly; 1 + erf would cancel). */
VFN V vm_gauss_tail(V x) {
    V a;
    const V b = vm_half_square_neg(x, &a);
    const V t = v_div(v_set(2.0f), v_fma(v_abs(x), v_set(VM_SQRT1_2), v_set(2.0f)));
    return v_mul(v_mul(t, v_set(0.5f)), vm_exp2p(a, v_add(b, vm_erfc_poly(t))));
}

/* phi(x) = exp(-x^2/2) / sqrt(2 pi) for |x| <= 20. */
VFN V vm_gauss_pdf(V x) {
    V a;
    const V b = vm_half_square_neg(x, &a);
    return v_mul(vm_exp2p(a, b), v_set(VM_INV_SQRT_2PI));
}

/* Phi(x), the standard normal CDF; x is clamped to +-20, where it is 0 or 1 in float. */
VFN V vm_gauss_cdf(V x) {
    const V h = vm_gauss_tail(v_clamp(x, -20.0f, 20.0f));
    return v_sel(v_lt(x, v_set(0.0f)), h, v_sub(v_set(1.0f), h));
}

/* -|2u|, 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (c0 + c1 x^2) of the tanh GELU (whose
 * 0.5 (1 + tanh u) is sigmoid(2u)), as hi + *lo within ~2^-40 relative, and x^2 in *q. 2u is
 * odd, so this is 2u at -|x|. sigmoid(2u) far out is e^2u, which turns an error in 2u into the
 * same error relative to the result: a float 2u (a few ulp of |2u| <= 104) cost 1.2e-5 relative at
 * x = -10. x^2, c1 x^2 and x (c0 + c1 x^2) are split exactly by fmas, the sum c0 + c1 x^2 by a
 * two-sum, and c0, c1 carry their own low parts. |x| is clamped to 20 (|2u| > 600 there, the
 * sigmoid saturated; x^3 stays finite). */
#define VM_GELU_C0_HI 1.595769167e+00f  /* 2 sqrt(2/pi) = C0_HI + C0_LO */
#define VM_GELU_C0_LO -4.534068054e-08f
#define VM_GELU_C1_HI 7.135481387e-02f  /* 2 sqrt(2/pi) 0.044715 = C1_HI + C1_LO */
#define VM_GELU_C1_LO 2.398832466e-09f
VFN V vm_gelu_tanh_2u_neg(V x, V *lo, V *q) {
    const V xa = v_clamp_lo(v_neg(v_abs(x)), -20.0f), c0 = v_set(VM_GELU_C0_HI), c1 = v_set(VM_GELU_C1_HI);
    *q = v_mul(xa, xa);
    const V ql = v_fma(xa, xa, v_neg(*q));                 /* x^2 = q + ql */
    const V m = v_mul(c1, *q), ml = v_fma(c1, *q, v_neg(m)); /* C1_HI q = m + ml */
    const V p = v_add(c0, m), pm = v_sub(p, m);            /* C0_HI + m = p + pe */
    const V pe = v_add(v_sub(c0, pm), v_sub(m, v_sub(p, pm)));
    const V pl = v_fma(c1, ql, v_add(v_fma(v_set(VM_GELU_C1_LO), *q, v_set(VM_GELU_C0_LO)), v_add(pe, ml)));
    const V h = v_mul(xa, p);
    *lo = v_fma(xa, pl, v_fma(xa, p, v_neg(h))); /* x p = h + (x p - h) exactly, then x pl */
    return h;
}

/* ---- the roots of the derivatives -------------------------------------------------------- */

/* Near a root r of f' (SiLU' at -1.278, GELU' at -0.752, GELU-tanh' at -0.752) its terms
 * cancel, and a float evaluation leaves an absolute error of a few 1e-8: up to 1.8e-7 / |x - r|
 * relative. For |x - r| < 1/16 f' is instead d P(d), d = x - r = (x - r_hi) - r_lo (the first
 * difference exact, Sterbenz), P a cubic least-squares fitted to f'(r + d) / d (mpmath, 400
 * Chebyshev nodes, relative weight), its coefficients rounded to float one at a time from the
 * top: < 1.1e-7 relative. Outside the window the plain formula is within 3e-6. */
typedef struct vm_root_fit { float hi, lo, c[4]; } vm_root_fit;
static const vm_root_fit vm_silu_root = {
    -1.278464556e+00f, 1.297928254e-08f, {2.178117186e-01f, 1.466487646e-01f, 1.884902269e-02f, -1.521335263e-02f}};
static const vm_root_fit vm_gelu_root = {
    -7.517915368e-01f, 1.211444989e-08f, {4.314940274e-01f, 3.882848024e-01f, -1.825730316e-02f, -1.138874814e-01f}};
static const vm_root_fit vm_gelu_tanh_root = {
    -7.524614334e-01f, 1.133962790e-08f, {4.304001331e-01f, 3.875182569e-01f, -1.584768668e-02f, -1.138192043e-01f}};

/* fx (f'(x) by its formula), or d P(d) where x is within 1/16 of the root of fit. */
VFN V vm_near_root(const vm_root_fit *fit, V x, V fx) {
    const V t = v_sub(x, v_set(fit->hi)), d = v_sub(t, v_set(fit->lo));
    V p = v_set(fit->c[3]);
    for (int i = 2; i >= 0; i--) p = v_fma(p, d, v_set(fit->c[i]));
    return v_sel(v_lt(v_abs(t), v_set(0.0625f)), v_mul(p, d), fx);
}

/* ---- the activations --------------------------------------------------------------------- */

VFN V vm_forward(nnk_act act, float alpha, V x) {
    V unused, un, s;
    switch (act) {
    case NNK_ACT_SIGMOID: return vm_sigmoid2(x, &unused);
    case NNK_ACT_TANH: return vm_tanh(x);
    case NNK_ACT_RELU: return v_sel(v_lt(x, v_set(0.0f)), v_set(0.0f), x);
    case NNK_ACT_LEAKY_RELU: return v_sel(v_gt(x, v_set(0.0f)), x, v_mul(v_set(alpha), x));
    case NNK_ACT_ELU:
        return v_sel(v_gt(x, v_set(0.0f)), x, v_mul(v_set(alpha), vm_expm1_neg(v_clamp_hi(x, 0.0f))));
    case NNK_ACT_GELU_ERF: return v_mul(x, vm_gauss_cdf(x));
    case NNK_ACT_GELU_TANH: { /* x sigmoid(2u); |x| <= 11 where the result is not 0, so a denormal
                                * sigmoid costs at most 11 denormal steps: no scaling */
        V lo, q;
        const V h = vm_gelu_tanh_2u_neg(x, &lo, &q);
        return v_mul(x, vm_sigmoid2_e(vm_exp2p(h, lo), v_lt(x, v_set(0.0f)), &unused));
    }
    case NNK_ACT_SILU:
        s = vm_sigmoid2_scaled(v_neg(v_abs(x)), v_set(0.0f), v_lt(x, v_set(0.0f)), &unused, &un);
        return v_mul(v_mul(x, s), un);
    case NNK_ACT_SOFTPLUS: return v_add(v_clamp_lo(x, 0.0f), vm_log1p_unit(vm_exp(v_neg(v_abs(x)))));
    default: return x; /* identity */
    }
}

/* f'(x) for the activations that need their input. */
VFN V vm_derivative_x(nnk_act act, float alpha, V x) {
    const M pos = v_gt(x, v_set(0.0f));
    V s, sn, un;
    switch (act) {
    case NNK_ACT_LEAKY_RELU: return v_sel(pos, v_set(1.0f), v_set(alpha));
    case NNK_ACT_ELU: return v_sel(pos, v_set(1.0f), v_mul(v_set(alpha), vm_exp(v_clamp_hi(x, 0.0f))));
    case NNK_ACT_GELU_ERF: { /* Phi(x) + x phi(x) */
        const V xc = v_clamp(x, -20.0f, 20.0f);
        return vm_near_root(&vm_gelu_root, x, v_fma(xc, vm_gauss_pdf(xc), vm_gauss_cdf(x)));
    }
    case NNK_ACT_GELU_TANH: { /* s + x s (1 - s) d(2u)/dx, s = sigmoid(2u) */
        V lo, q;
        const V h = vm_gelu_tanh_2u_neg(x, &lo, &q);
        s = vm_sigmoid2_scaled(h, lo, v_lt(x, v_set(0.0f)), &sn, &un);
        const V xd2u = v_mul(v_clamp(x, -20.0f, 20.0f), v_fma(q, v_set(6 * VM_GELU_C * VM_GELU_K), v_set(2 * VM_GELU_C)));
        return vm_near_root(&vm_gelu_tanh_root, x, v_mul(v_fma(xd2u, v_mul(s, sn), s), un));
    }
    case NNK_ACT_SILU: /* s + x s (1 - s) */
        s = vm_sigmoid2_scaled(v_neg(v_abs(x)), v_set(0.0f), v_lt(x, v_set(0.0f)), &sn, &un);
        return vm_near_root(&vm_silu_root, x, v_mul(v_fma(v_mul(x, sn), s, s), un));
    case NNK_ACT_SOFTPLUS: return vm_sigmoid2(x, &sn);
    default: return v_set(1.0f);
    }
}

/* dy f'(x); v is y = f(x) for identity, sigmoid, tanh and relu, which need no x, else x. */
VFN V vm_backward(nnk_act act, float alpha, V dy, V v) {
    const V one = v_set(1.0f);
    switch (act) {
    case NNK_ACT_IDENTITY: return dy;
    case NNK_ACT_SIGMOID: return v_mul(dy, v_mul(v, v_sub(one, v)));
    case NNK_ACT_TANH: return v_mul(dy, v_fnma(v, v, one));
    case NNK_ACT_RELU: return v_keep(v_gt(v, v_set(0.0f)), dy);
    default: return v_mul(dy, vm_derivative_x(act, alpha, v));
    }
}

/* ---- the loops --------------------------------------------------------------------------- */

/* The loops are inlined into a switch with act a constant at each call (vm_act_forward,
 * vm_act_backward), so the per-vector switch above folds away and each activation gets its
 * own loop with its constants kept in registers. */
#define VFN_FLAT VFN __attribute__((always_inline))

/* y (n) = f(x (n)); y may equal x. The tail runs the same code on a partial vector. */
VFN_FLAT void vm_forward_loop(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) v_store(y + i, vm_forward(act, alpha, v_load(x + i)));
    if (i < n) v_store_part(y + i, vm_forward(act, alpha, v_load_part(x + i, n - i)), n - i);
}

/* dx (n) = dy (n) f'(v (n)), v as in vm_backward. */
VFN_FLAT void vm_backward_loop(nnk_act act, float alpha, float *dx, const float *dy, const float *v, size_t n) {
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) v_store(dx + i, vm_backward(act, alpha, v_load(dy + i), v_load(v + i)));
    if (i < n) {
        const size_t k = n - i;
        v_store_part(dx + i, vm_backward(act, alpha, v_load_part(dy + i, k), v_load_part(v + i, k)), k);
    }
}

VFN void vm_act_forward(nnk_act act, float alpha, float *y, const float *x, size_t n) {
    switch (act) {
    case NNK_ACT_SIGMOID: vm_forward_loop(NNK_ACT_SIGMOID, alpha, y, x, n); return;
    case NNK_ACT_TANH: vm_forward_loop(NNK_ACT_TANH, alpha, y, x, n); return;
    case NNK_ACT_RELU: vm_forward_loop(NNK_ACT_RELU, alpha, y, x, n); return;
    case NNK_ACT_LEAKY_RELU: vm_forward_loop(NNK_ACT_LEAKY_RELU, alpha, y, x, n); return;
    case NNK_ACT_ELU: vm_forward_loop(NNK_ACT_ELU, alpha, y, x, n); return;
    case NNK_ACT_GELU_ERF: vm_forward_loop(NNK_ACT_GELU_ERF, alpha, y, x, n); return;
    case NNK_ACT_GELU_TANH: vm_forward_loop(NNK_ACT_GELU_TANH, alpha, y, x, n); return;
    case NNK_ACT_SILU: vm_forward_loop(NNK_ACT_SILU, alpha, y, x, n); return;
    case NNK_ACT_SOFTPLUS: vm_forward_loop(NNK_ACT_SOFTPLUS, alpha, y, x, n); return;
    default: vm_forward_loop(NNK_ACT_IDENTITY, alpha, y, x, n); return;
    }
}

/* x is read by the activations that need it, y by the others (identity reads neither). */
VFN void vm_act_backward(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                         const float *y, size_t n) {
    switch (act) {
    case NNK_ACT_SIGMOID: vm_backward_loop(NNK_ACT_SIGMOID, alpha, dx, dy, y, n); return;
    case NNK_ACT_TANH: vm_backward_loop(NNK_ACT_TANH, alpha, dx, dy, y, n); return;
    case NNK_ACT_RELU: vm_backward_loop(NNK_ACT_RELU, alpha, dx, dy, y, n); return;
    case NNK_ACT_LEAKY_RELU: vm_backward_loop(NNK_ACT_LEAKY_RELU, alpha, dx, dy, x, n); return;
    case NNK_ACT_ELU: vm_backward_loop(NNK_ACT_ELU, alpha, dx, dy, x, n); return;
    case NNK_ACT_GELU_ERF: vm_backward_loop(NNK_ACT_GELU_ERF, alpha, dx, dy, x, n); return;
    case NNK_ACT_GELU_TANH: vm_backward_loop(NNK_ACT_GELU_TANH, alpha, dx, dy, x, n); return;
    case NNK_ACT_SILU: vm_backward_loop(NNK_ACT_SILU, alpha, dx, dy, x, n); return;
    case NNK_ACT_SOFTPLUS: vm_backward_loop(NNK_ACT_SOFTPLUS, alpha, dx, dy, x, n); return;
    default: vm_backward_loop(NNK_ACT_IDENTITY, alpha, dx, dy, dy, n); return;
    }
}

/* max of x (n), n >= 1. */
VFN float vm_max(const float *x, size_t n) {
    V m = v_set(x[0]);
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) m = v_max(m, v_load(x + i));
    float r = v_hmax(m);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

/* exp(x - shift), ns = -shift, with x - shift carried exactly as d + err (two-sum). */
VFN V vm_exp_shifted(V x, V ns) {
    const V d = v_add(x, ns);
    const V bb = v_sub(d, x);
    const V err = v_add(v_sub(x, v_sub(d, bb)), v_sub(ns, bb));
    return vm_exp2p(d, err);
}

/* y (n) = exp(x (n) - shift) when y is not NULL; returns the sum in double. */
VFN double vm_exp_sum(float *y, const float *x, float shift, size_t n) {
    const V ns = v_set(-shift);
    VSUM acc = vsum_zero();
    size_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH) {
        const V e = vm_exp_shifted(v_load(x + i), ns);
        if (y != NULL) v_store(y + i, e);
        acc = vsum_add(acc, e);
    }
    if (i < n) {
        const V e = v_keep(v_first(n - i), vm_exp_shifted(v_load_part(x + i, n - i), ns));
        if (y != NULL) v_store_part(y + i, e, n - i);
        acc = vsum_add(acc, e);
    }
    return vsum_total(acc);
}
