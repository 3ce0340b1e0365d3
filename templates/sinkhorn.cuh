// mhcjit templates: sinkhorn (SPEC.md section 3), `log` and `softmax_eps`, one thread per token
// with its n x n matrix in registers. Both contracts iterate on scaling vectors of a fixed
// positive kernel (res = diag(a) E diag(b)): log with E = exp(L - max L), exactly the log-domain
// potentials exponentiated, when the token's logits span at most kExpSpread (else the log-domain
// loop); softmax_eps with E = softmax + eps. The backward keeps each iteration's vector in shared
// memory (on chip, never global) and walks back in O(T); it falls back to recomputing the
// iterations in registers (O(T^2)) where that history does not fit. Every loop over iterations
// or steps stays rolled (#pragma unroll 1): unrolling them only grows the code (H100: rolled and
// unrolled timed the same, PERF.md session 5).
#pragma once

#include "mhc_common.cuh"

namespace mhc {

/// sum_i p[i], added in pairs (depth log2 n instead of n - 1 on the critical path).
template <int kN> __device__ __forceinline__ float tree_sum(float (&p)[kN]) {
#pragma unroll
  for (int w = 1; w < kN; w *= 2)
#pragma unroll
    for (int i = 0; i + w < kN; i += 2 * w)
      p[i] += p[i + w];
  return p[0];
}

/// sum_j A[i][j] v[j] (kRow) or sum_j A[j][i] v[j] (column i) as two FMA chains over the halves
/// of j, added at the end: at n = 4 five instructions three deep, where a product tree takes
/// seven (a single chain of four is one step deeper on the iterations' critical path).
template <bool kRow, int kN> __device__ __forceinline__ float dot(const float (&A)[kN][kN], int i, const float (&v)[kN]) {
  constexpr int kHalf = (kN + 1) / 2;
  float lo = (kRow ? A[i][0] : A[0][i]) * v[0];
#pragma unroll
  for (int j = 1; j < kHalf; ++j)
    lo = fmaf(kRow ? A[i][j] : A[j][i], v[j], lo);
  if constexpr (kN == 1) {
    return lo;
  } else {
    float hi = (kRow ? A[i][kHalf] : A[kHalf][i]) * v[kHalf];
#pragma unroll
    for (int j = kHalf + 1; j < kN; ++j)
      hi = fmaf(kRow ? A[i][j] : A[j][i], v[j], hi);
    return lo + hi;
  }
}

/// Logit span up to which the log contract iterates in the exp domain: the scaling vectors then
/// stay within about e^(+-3 * 20), far inside fp32's range, and no entry of E underflows.
inline constexpr float kExpSpread = 20.0f;

/// The largest logit, and whether the token's logits span at most kExpSpread (false for NaN/inf).
template <int kN> __device__ __forceinline__ bool exp_domain_fits(const float (&L)[kN][kN], float &mx) {
  float mn = L[0][0];
  mx = L[0][0];
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      mx = fmaxf(mx, L[i][j]);
      mn = fminf(mn, L[i][j]);
    }
  return mx - mn <= kExpSpread;
}

/// -logsumexp over j of (L[i][j] + v[j]) for every row i (u update), or over i of (L[i][j] + u[i])
/// for every column j (v update), with the maximum subtracted first.
template <int kN> __device__ __forceinline__ void log_row_update(const float (&L)[kN][kN], const float (&v)[kN], float (&u)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    float mx = L[i][0] + v[0];
#pragma unroll
    for (int j = 1; j < kN; ++j)
      mx = fmaxf(mx, L[i][j] + v[j]);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kN; ++j)
      s += expf(L[i][j] + v[j] - mx);
    u[i] = -(mx + logf(s));
  }
}

template <int kN> __device__ __forceinline__ void log_col_update(const float (&L)[kN][kN], const float (&u)[kN], float (&v)[kN]) {
#pragma unroll
  for (int j = 0; j < kN; ++j) {
    float mx = L[0][j] + u[0];
#pragma unroll
    for (int i = 1; i < kN; ++i)
      mx = fmaxf(mx, L[i][j] + u[i]);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kN; ++i)
      s += expf(L[i][j] + u[i] - mx);
    v[j] = -(mx + logf(s));
  }
}

/// The log potentials after `iters` iterations (u_t, v_t) and v_{t-1} in v_prev.
template <int kN>
__device__ __forceinline__ void log_potentials(const float (&L)[kN][kN], int iters, float (&u)[kN], float (&v)[kN], float (&v_prev)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
    u[i] = v[i] = v_prev[i] = 0.0f;
#pragma unroll 1
  for (int t = 0; t < iters; ++t) {
#pragma unroll
    for (int i = 0; i < kN; ++i)
      v_prev[i] = v[i];
    log_row_update<kN>(L, v, u);
    log_col_update<kN>(L, u, v);
  }
}

/// 1/x within 1 ulp (rcp.approx). Every reciprocal of the scaling iterations uses it: the
/// iterations damp the error, and the result stays within 1e-6 of the float64 reference (tested
/// with every reciprocal off by an ulp). kNormal: x is known to lie in [2^-126, 2^126], so the
/// flush-to-zero form is exact to the same ulp and is one MUFU instruction; without it ptxas
/// wraps the MUFU in a range test and two rescalings (four more dependent instructions on the
/// iterations' critical path).
template <bool kNormal = false> __device__ __forceinline__ float approx_rcp(float x) {
  float r;
  if constexpr (kNormal)
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  else
    asm("rcp.approx.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

/// S = softmax of each row of L.
template <int kN> __device__ __forceinline__ void row_softmax(const float (&L)[kN][kN], float (&S)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    float mx = L[i][0];
#pragma unroll
    for (int j = 1; j < kN; ++j)
      mx = fmaxf(mx, L[i][j]);
#pragma unroll
    for (int j = 0; j < kN; ++j)
      S[i][j] = expf(L[i][j] - mx);
    float p[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j)
      p[j] = S[i][j];
    // s >= 1 (the maximum's term), a normal float: a reciprocal within 1 ulp, then products
    // (within 2 ulp of the quotients). A division or the correctly rounded reciprocal brings a
    // slow-path branch per row; it cost the deepseek sinkhorn about 1 us (PERF.md session 15).
    const float inv = approx_rcp<true>(tree_sum<kN>(p));
#pragma unroll
    for (int j = 0; j < kN; ++j)
      S[i][j] *= inv;
  }
}

/// Normalisation step k of softmax_eps: k = 0 and every even k divide columns, odd k divide rows.
__device__ __forceinline__ bool step_is_column(int k) { return k % 2 == 0; }

/// sums[a] = sum along the step's axis of P (column sums for a column step, row sums otherwise).
template <int kN> __device__ __forceinline__ void axis_sums(const float (&P)[kN][kN], bool column, float (&sums)[kN]) {
#pragma unroll
  for (int a = 0; a < kN; ++a) {
    float s = 0.0f;
#pragma unroll
    for (int b = 0; b < kN; ++b)
      s += column ? P[b][a] : P[a][b];
    sums[a] = s;
  }
}

/// P after `steps` normalisation steps of softmax_eps, starting from S + eps.
template <int kN, typename K>
__device__ __forceinline__ void softmax_eps_state(const float (&S)[kN][kN], int steps, float (&P)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      P[i][j] = S[i][j] + K::sinkhorn_eps;
#pragma unroll 1
  for (int k = 0; k < steps; ++k) {
    const bool column = step_is_column(k);
    float sums[kN];
    axis_sums<kN>(P, column, sums);
#pragma unroll
    for (int i = 0; i < kN; ++i)
#pragma unroll
      for (int j = 0; j < kN; ++j)
        P[i][j] /= (column ? sums[j] : sums[i]) + K::sinkhorn_eps;
  }
}

template <int kN> __device__ __forceinline__ void load_matrix(const float *p, float (&A)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      A[i][j] = p[i * kN + j];
}

template <int kN> __device__ __forceinline__ void store_matrix(float *p, const float (&A)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      p[i * kN + j] = A[i][j];
}

/// Whether softmax_eps's scaling recurrence (scaled_step) stays among normal floats, so that its
/// reciprocals can take the single-MUFU form: w starts at 1 and then lies between about 2.4 eps
/// and 1 / sqrt(eps) (measured on random and one-hot logits at n = 1..8, eps from 1e-3 down to
/// 2^-40); below 2^-60, above 1 and at 0 the reciprocals keep the range test.
template <typename K> constexpr bool kNormalScales = K::sinkhorn_eps >= 0x1p-60f && K::sinkhorn_eps <= 1.0f;

/// a[i] = 1 / sum_j E[i][j] b[j]: the log contract's u update, exp(u_t + max L) = a_t. The sums
/// lie in [e^-60, n e^60] (kExpSpread), normal floats.
template <int kN> __device__ __forceinline__ void recip_row_sums(const float (&E)[kN][kN], const float (&b)[kN], float (&a)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
    a[i] = approx_rcp<true>(dot<true, kN>(E, i, b));
}

/// b[j] = 1 / sum_i E[i][j] a[i]: the v update, exp(v_t) = b_t.
template <int kN> __device__ __forceinline__ void recip_col_sums(const float (&E)[kN][kN], const float (&a)[kN], float (&b)[kN]) {
#pragma unroll
  for (int j = 0; j < kN; ++j)
    b[j] = approx_rcp<true>(dot<false, kN>(E, j, a));
}

/// History slot k of this thread: its kN words at mine + k * kN * kThreads, with mine =
/// own_history<kN>(hist) = hist + threadIdx.x * kN. A slot is one 16-byte access at n = 4 (two
/// at n = 8, 8-byte ones at n = 2 and 6, words at odd n); consecutive threads hold consecutive
/// slots, so a warp's access has no bank conflicts (two-way at n = 8). Each access is the slot's
/// base plus an immediate offset (an address computed an entry instead cost the log walk back
/// 124 against 109 instructions a step at n = 4, H100 SASS).
template <int kN> __device__ __forceinline__ float *own_history(float *hist) { return hist + threadIdx.x * kN; }

/// Words per access of a history slot: 4, 2 or 1.
template <int kN> constexpr int kSlotWords = kN % 4 == 0 ? 4 : kN % 2 == 0 ? 2 : 1;

template <int kN, int kThreads>
__device__ __forceinline__ void store_column_slot(float *mine, int k, const float (&v)[kN]) {
  float *p = mine + k * (kN * kThreads);
#pragma unroll
  for (int a = 0; a < kN; a += kSlotWords<kN>) {
    if constexpr (kSlotWords<kN> == 4)
      *reinterpret_cast<float4 *>(p + a) = make_float4(v[a], v[a + 1], v[a + 2], v[a + 3]);
    else if constexpr (kSlotWords<kN> == 2)
      *reinterpret_cast<float2 *>(p + a) = make_float2(v[a], v[a + 1]);
    else
      p[a] = v[a];
  }
}

template <int kN, int kThreads>
__device__ __forceinline__ void load_column_slot(const float *mine, int k, float (&v)[kN]) {
  const float *p = mine + k * (kN * kThreads);
#pragma unroll
  for (int a = 0; a < kN; a += kSlotWords<kN>) {
    if constexpr (kSlotWords<kN> == 4) {
      const float4 q = *reinterpret_cast<const float4 *>(p + a);
      v[a] = q.x, v[a + 1] = q.y, v[a + 2] = q.z, v[a + 3] = q.w;
    } else if constexpr (kSlotWords<kN> == 2) {
      const float2 q = *reinterpret_cast<const float2 *>(p + a);
      v[a] = q.x, v[a + 1] = q.y;
    } else {
      v[a] = p[a];
    }
  }
}

/// Slot k - 2 of the history, or the ones the iterations start from where k < 2: the log
/// contract's b_{t-1} for k = t (slot t - 1 holds b_t).
template <int kN, int kThreads>
__device__ __forceinline__ void vector_before_step(const float *mine, int k, float (&v)[kN]) {
  if (k >= 2) {
    load_column_slot<kN, kThreads>(mine, k - 2, v);
  } else {
#pragma unroll
    for (int a = 0; a < kN; ++a)
      v[a] = 1.0f;
  }
}

/// The log contract in the exp domain: E = exp(L - mx), T iterations from b_0 = 1, leaving a_T,
/// b_T. With a history, b_t (1 <= t < T) goes to slot t - 1; with kKeepA instead b_t (0 <= t < T)
/// goes to slot t and a_t (1 <= t <= T) to slot T + t - 1, so that the walk back reads both
/// vectors of every step from fixed offsets.
template <int kN, int kThreads, int kT, bool kKeepA = false>
__device__ __forceinline__ void exp_iterations(const float (&E)[kN][kN], float (&a)[kN], float (&b)[kN], float *hist) {
#pragma unroll
  for (int j = 0; j < kN; ++j)
    b[j] = 1.0f;
  float *mine = own_history<kN>(hist);
  if (hist && kKeepA)
    store_column_slot<kN, kThreads>(mine, 0, b);
#pragma unroll 1
  for (int t = 1; t <= kT; ++t) {
    recip_row_sums<kN>(E, b, a);
    if (hist && kKeepA)
      store_column_slot<kN, kThreads>(mine, kT + t - 1, a);
    recip_col_sums<kN>(E, a, b);
    if (hist && kKeepA && t < kT)
      store_column_slot<kN, kThreads>(mine, t, b);
    else if (hist && t < kT)
      store_column_slot<kN, kThreads>(mine, t - 1, b);
  }
}

/// One softmax_eps normalisation in scaling form, P = diag(r) E diag(c) with E = S + eps. A
/// column step divides column j by its sum plus eps, c[j] / (c[j] q[j] + eps) with q[j] = sum_i
/// r[i] E[i][j]: that is c[j] = 1 / w[j] with w[j] = q[j] + eps w[j], where w = 1 / c before the
/// step. The step keeps w (the axis's own, wc or wr) beside the vector: eps w is ready a step
/// ahead and starts the sum's FMA chain, so a step's critical path is the log contract's, a
/// dot product and a reciprocal. A row step likewise for r with q[i] = sum_j E[i][j] c[j].
template <bool kColumn, int kN, typename K>
__device__ __forceinline__ void scaled_step(const float (&E)[kN][kN], float (&r)[kN], float (&c)[kN], float (&w)[kN]) {
  const float (&fixed)[kN] = kColumn ? r : c;
#pragma unroll
  for (int a = 0; a < kN; ++a) {
    // two FMA chains, the first from eps w, the second from its first product (written out:
    // left to a tree of products, the compiler kept some products and sums apart)
    constexpr int kHalf = (kN + 1) / 2;
    float lo = K::sinkhorn_eps * w[a], hi = 0.0f;
#pragma unroll
    for (int b = 0; b < kHalf; ++b)
      lo = fmaf(kColumn ? E[b][a] : E[a][b], fixed[b], lo);
#pragma unroll
    for (int b = kHalf; b < kN; ++b)
      hi = b == kHalf ? (kColumn ? E[b][a] : E[a][b]) * fixed[b] : fmaf(kColumn ? E[b][a] : E[a][b], fixed[b], hi);
    w[a] = lo + hi;
    (kColumn ? c : r)[a] = approx_rcp<kNormalScales<K>>(w[a]);
  }
}

/// The 2T - 1 softmax_eps steps (step 0 and every even step divide columns) from c = 1 and the
/// given row vector r with its wr = 1 / r. With a history, the w of the vector step k changed
/// goes to slot k (k < 2T - 2; the last two steps' vectors stay in r, c), stored through this
/// thread's column (store_column_slot).
template <int kN, int kThreads, typename K>
__device__ __forceinline__ void scaled_steps_from(const float (&E)[kN][kN], float (&r)[kN], float (&wr)[kN], float (&c)[kN], float *hist) {
  constexpr int kSteps = 2 * K::sinkhorn_iters - 1;
  float *mine = own_history<kN>(hist);
  float wc[kN];
#pragma unroll
  for (int a = 0; a < kN; ++a)
    c[a] = wc[a] = 1.0f;
  scaled_step<true, kN, K>(E, r, c, wc);
  if (hist && 0 < kSteps - 2)
    store_column_slot<kN, kThreads>(mine, 0, wc);
#pragma unroll 1
  for (int k = 1; k < kSteps; k += 2) {
    scaled_step<false, kN, K>(E, r, c, wr);
    if (hist && k < kSteps - 2)
      store_column_slot<kN, kThreads>(mine, k, wr);
    scaled_step<true, kN, K>(E, r, c, wc);
    if (hist && k + 1 < kSteps - 2)
      store_column_slot<kN, kThreads>(mine, k + 1, wc);
  }
}

/// The steps from r = c = 1 (E = S + eps as SPEC.md writes it).
template <int kN, int kThreads, typename K>
__device__ __forceinline__ void scaled_steps(const float (&E)[kN][kN], float (&r)[kN], float (&c)[kN], float *hist) {
  float wr[kN];
#pragma unroll
  for (int a = 0; a < kN; ++a)
    r[a] = wr[a] = 1.0f;
  scaled_steps_from<kN, kThreads, K>(E, r, wr, c, hist);
}

/// softmax_eps's kernel with the softmax's row sums s left in the row vector: S + eps =
/// diag(1/s) (e + eps s) with e = exp(L - row max), so the forward iterates on E' = e + eps s
/// from r = 1/s (wr = s), the same P = diag(r) E' diag(c), without the 2 n^2 products and sums
/// of S + eps on the way to the first step.
template <int kN, typename K>
__device__ __forceinline__ void softmax_eps_kernel(const float (&L)[kN][kN], float (&E)[kN][kN], float (&r)[kN], float (&wr)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    float mx = L[i][0];
#pragma unroll
    for (int j = 1; j < kN; ++j)
      mx = fmaxf(mx, L[i][j]);
    float p[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j)
      p[j] = E[i][j] = expf(L[i][j] - mx);
    wr[i] = tree_sum<kN>(p); // >= 1, the maximum's term
    r[i] = approx_rcp<true>(wr[i]);
#pragma unroll
    for (int j = 0; j < kN; ++j)
      E[i][j] = fmaf(K::sinkhorn_eps, wr[i], E[i][j]);
  }
}

/// R = diag(a) E diag(b).
template <int kN> __device__ __forceinline__ void scaled_matrix(const float (&E)[kN][kN], const float (&a)[kN], const float (&b)[kN], float (&R)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      R[i][j] = a[i] * E[i][j] * b[j];
}

/// Floats of backward history per block: log keeps b_1 .. b_{T-1}, softmax_eps the w of steps
/// 0 .. 2T - 3. Used only while it fits in static shared memory.
/// kOtherBytes: the kernel's other static shared memory, which must fit beside it in 48 KiB.
/// log keeps b_0 .. b_{T-1} and a_1 .. a_T instead (kKeepsA) where those 2T slots fit: the walk
/// back then reads a_t instead of recomputing it (n dot products and n reciprocals a step).
template <int kN, int kThreads, typename K, int kOtherBytes = 0> struct SinkhornHistory {
  static constexpr int kBaseSlots = K::sinkhorn_log ? K::sinkhorn_iters - 1 : 2 * K::sinkhorn_iters - 2;
  __host__ __device__ static constexpr bool fits(int slots) {
    return (slots > 0 ? slots : 1) * kN * kThreads * 4 <= 40 * 1024 &&
           (slots > 0 ? slots : 1) * kN * kThreads * 4 + kOtherBytes <= 48 * 1024;
  }
  static constexpr bool kKeepsA = K::sinkhorn_log && fits(2 * K::sinkhorn_iters);
  static constexpr int kSlots = kKeepsA ? 2 * K::sinkhorn_iters : kBaseSlots;
  static constexpr int kFloats = (kSlots > 0 ? kSlots : 1) * kN * kThreads;
  static constexpr bool kFits = fits(kSlots);
};

/// One token's forward: res R from logits L with the contract's algorithm.
template <int kN, int kThreads, typename K>
__device__ __forceinline__ void sinkhorn_forward_token(const float (&L)[kN][kN], float (&R)[kN][kN]) {
  constexpr int kT = K::sinkhorn_iters;
  if constexpr (K::sinkhorn_log) {
    float mx;
    if (exp_domain_fits<kN>(L, mx)) {
      float E[kN][kN], a[kN], b[kN];
#pragma unroll
      for (int i = 0; i < kN; ++i)
#pragma unroll
        for (int j = 0; j < kN; ++j)
          E[i][j] = expf(L[i][j] - mx);
      exp_iterations<kN, kThreads, kT>(E, a, b, nullptr);
      scaled_matrix<kN>(E, a, b, R);
    } else {
      float u[kN], v[kN], v_prev[kN];
      log_potentials<kN>(L, kT, u, v, v_prev);
#pragma unroll
      for (int i = 0; i < kN; ++i)
#pragma unroll
        for (int j = 0; j < kN; ++j)
          R[i][j] = expf(u[i] + L[i][j] + v[j]);
    }
  } else {
    float E[kN][kN], r[kN], wr[kN], c[kN];
    softmax_eps_kernel<kN, K>(L, E, r, wr);
    scaled_steps_from<kN, kThreads, K>(E, r, wr, c, nullptr);
    scaled_matrix<kN>(E, r, c, R);
  }
}

template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) sinkhorn_fwd(const __grid_constant__ SinkhornFwdArgs args) {
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    float L[kN][kN], R[kN][kN];
    load_matrix<kN>(args.logits + m * kN * kN, L);
    sinkhorn_forward_token<kN, kThreads, K>(L, R);
    store_matrix<kN>(args.res + m * kN * kN, R);
  }
}

/// log backward, O(T^2): every step recomputes its potentials in the log domain.
template <int kN, int kT, typename GetG>
__device__ __forceinline__ void log_backward_recompute(const float (&L)[kN][kN], GetG get_G, float (&dL)[kN][kN]) {
  // SPEC.md: G = dres * res; dL = G; du = sum_j G; dv = sum_i G; then t = T .. 1.
  float u[kN], v[kN], v_prev[kN], du[kN], dv[kN], G[kN][kN];
  log_potentials<kN>(L, kT, u, v, v_prev);
  get_G(G);
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      G[i][j] *= expf(u[i] + L[i][j] + v[j]);
      dL[i][j] = G[i][j];
    }
  axis_sums<kN>(G, false, du);
  axis_sums<kN>(G, true, dv);
#pragma unroll 1
  for (int t = kT; t >= 1; --t) {
    log_potentials<kN>(L, t, u, v, v_prev);
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      float s = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j) {
        const float A = expf(L[i][j] + u[i] + v[j]);
        dL[i][j] -= dv[j] * A;
        s += dv[j] * A;
      }
      du[i] -= s;
    }
    float dv_new[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j)
      dv_new[j] = 0.0f;
#pragma unroll
    for (int i = 0; i < kN; ++i)
#pragma unroll
      for (int j = 0; j < kN; ++j) {
        const float B = expf(L[i][j] + u[i] + v_prev[j]);
        dL[i][j] -= du[i] * B;
        dv_new[j] -= du[i] * B;
      }
#pragma unroll
    for (int a = 0; a < kN; ++a) {
      dv[a] = dv_new[a];
      du[a] = 0.0f;
    }
  }
}

/// log backward, O(T), in the exp domain: A_t = diag(a_t) E diag(b_t), B_t = diag(a_t) E
/// diag(b_{t-1}). The SPEC.md walk becomes, with x = dv * b_t and y = du * a_t,
/// du -= a_t (E x); dv = -b_{t-1} (E^T y); dL -= E * W where W accumulates a_t x^T + y b_{t-1}^T.
/// a_t is read from the history (kKeepA), else recomputed from the stored b_{t-1} with the
/// forward's own operations: the same value either way.
template <int kN, int kThreads, int kT, bool kKeepA, typename GetG>
__device__ __forceinline__ void log_backward_history(const float (&L)[kN][kN], float mx, GetG get_G, float (&dL)[kN][kN], float *hist) {
  float E[kN][kN], a[kN], bt[kN], du[kN], dv[kN], W[kN][kN], G[kN][kN];
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      E[i][j] = expf(L[i][j] - mx);
      W[i][j] = 0.0f;
    }
  exp_iterations<kN, kThreads, kT, kKeepA>(E, a, bt, hist);
  get_G(G);
  float R[kN][kN];
  scaled_matrix<kN>(E, a, bt, R);
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      G[i][j] *= R[i][j];
  axis_sums<kN>(G, false, du);
  axis_sums<kN>(G, true, dv);
#pragma unroll 1
  for (int t = kT; t >= 1; --t) {
    float bp[kN], x[kN], y[kN];
    if constexpr (kKeepA) {
      load_column_slot<kN, kThreads>(own_history<kN>(hist), t - 1, bp);
      load_column_slot<kN, kThreads>(own_history<kN>(hist), kT + t - 1, a);
    } else {
      vector_before_step<kN, kThreads>(own_history<kN>(hist), t, bp); // b_{t-1}: slot t - 2, or ones
      recip_row_sums<kN>(E, bp, a);
    }
#pragma unroll
    for (int j = 0; j < kN; ++j)
      x[j] = dv[j] * bt[j];
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      du[i] = fmaf(-a[i], dot<true, kN>(E, i, x), du[i]);
      y[i] = du[i] * a[i];
    }
#pragma unroll
    for (int j = 0; j < kN; ++j)
      dv[j] = -bp[j] * dot<false, kN>(E, j, y);
#pragma unroll
    for (int i = 0; i < kN; ++i)
#pragma unroll
      for (int j = 0; j < kN; ++j)
        W[i][j] = fmaf(a[i], x[j], fmaf(y[i], bp[j], W[i][j]));
#pragma unroll
    for (int a2 = 0; a2 < kN; ++a2) {
      du[a2] = 0.0f;
      bt[a2] = bp[a2];
    }
  }
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j)
      dL[i][j] = fmaf(-E[i][j], W[i][j], G[i][j]);
}

/// softmax_eps backward, O(T^2): X of each step recomputed from the start.
template <int kN, typename K>
__device__ __forceinline__ void softmax_eps_backward_recompute(const float (&S)[kN][kN], float (&G)[kN][kN]) {
  // Walk the 2T-1 normalisation steps backwards: Y = X / (s + eps) along an axis gives
  // dX = (dY - sum_axis(dY * Y)) / (s + eps). X is recomputed from the start for each step.
  constexpr int kT = K::sinkhorn_iters;
  float X[kN][kN];
#pragma unroll 1
  for (int k = 2 * kT - 2; k >= 0; --k) {
    softmax_eps_state<kN, K>(S, k, X);
    const bool column = step_is_column(k);
    float sums[kN], dot[kN];
    axis_sums<kN>(X, column, sums);
#pragma unroll
    for (int a = 0; a < kN; ++a) {
      float d = 0.0f;
#pragma unroll
      for (int b = 0; b < kN; ++b) {
        const int i = column ? b : a, j = column ? a : b;
        d += G[i][j] * (X[i][j] / (sums[a] + K::sinkhorn_eps));
      }
      dot[a] = d;
    }
#pragma unroll
    for (int i = 0; i < kN; ++i)
#pragma unroll
      for (int j = 0; j < kN; ++j) {
        const int a = column ? j : i;
        G[i][j] = (G[i][j] - dot[a]) / (sums[a] + K::sinkhorn_eps);
      }
  }
}

/// One softmax_eps step walked back in adjoint form (scaled_step: w = q + eps w_before, changed =
/// 1 / w, q the fixed vector's products with E along the axis). The adjoint of w is gw, carried
/// from the axis's next step (already times eps), minus gchanged changed^2; it reaches the fixed
/// vector through E (gfixed += E g along the other axis), E as the outer product of the fixed
/// vector and g (added to dE), and w_before as eps g. The changed vector's adjoint restarts at
/// zero (the steps before use only its w), and the vector walks back to `before` = 1 / w_before
/// (the forward's own reciprocal of the stored w, so the same value). A step is then a
/// matrix-vector product and a rank-1 update of dE, as in the log contract's walk.
template <bool kColumn, int kN, typename K>
__device__ __forceinline__ void scaled_step_adjoint(const float (&E)[kN][kN], float (&r)[kN], float (&c)[kN], float (&gr)[kN], float (&gc)[kN], float (&gw)[kN], float (&dE)[kN][kN], const float (&before)[kN]) {
  float (&changed)[kN] = kColumn ? c : r, (&fixed)[kN] = kColumn ? r : c;
  float (&gchanged)[kN] = kColumn ? gc : gr, (&gfixed)[kN] = kColumn ? gr : gc;
  float g[kN];
#pragma unroll
  for (int a = 0; a < kN; ++a) {
    g[a] = fmaf(-gchanged[a] * changed[a], changed[a], gw[a]);
    gw[a] = K::sinkhorn_eps * g[a];
    gchanged[a] = 0.0f;
    changed[a] = before[a];
  }
#pragma unroll
  for (int b = 0; b < kN; ++b)
#pragma unroll
    for (int a = 0; a < kN; ++a) {
      const int i = kColumn ? b : a, j = kColumn ? a : b;
      gfixed[b] = fmaf(E[i][j], g[a], gfixed[b]);
      dE[i][j] = fmaf(fixed[b], g[a], dE[i][j]);
    }
}

/// The vector before softmax_eps step k from its stored w: 1 / slot k - 2 (the w step k - 2 of
/// the same axis left), with the forward's reciprocal.
template <int kN, int kThreads, typename K>
__device__ __forceinline__ void vector_from_slot(const float *mine, int k, float (&v)[kN]) {
  load_column_slot<kN, kThreads>(mine, k - 2, v);
#pragma unroll
  for (int a = 0; a < kN; ++a)
    v[a] = approx_rcp<kNormalScales<K>>(v[a]);
}

/// softmax_eps backward, O(T), in scaling form: the forward stores each step's w, the walk back
/// reads one slot per step. G = dP in, dE out (dE = dP for the direct term diag(r) E diag(c) plus
/// every step's rank-1 update). The last step (2T - 2) divides columns; before it come row/column
/// pairs, the first of which (steps 1 and 0, from ones) is peeled off the loop so that every load
/// in the loop is unconditional.
template <int kN, int kThreads, typename K, typename GetG>
__device__ __forceinline__ void softmax_eps_backward_history(const float (&E)[kN][kN], GetG get_G, float (&G)[kN][kN], float *hist) {
  constexpr int kSteps = 2 * K::sinkhorn_iters - 1;
  float r[kN], c[kN], gr[kN], gc[kN], gwr[kN], gwc[kN], before[kN];
  scaled_steps<kN, kThreads, K>(E, r, c, hist);
  get_G(G);
  // P = diag(r) E diag(c): gr[i] = sum_j G E c, gc[j] = sum_i G r E, dE = G r c
#pragma unroll
  for (int a = 0; a < kN; ++a)
    gr[a] = gc[a] = gwr[a] = gwc[a] = 0.0f;
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      const float Gr = G[i][j] * r[i];
      gr[i] = fmaf(G[i][j] * c[j], E[i][j], gr[i]);
      gc[j] = fmaf(Gr, E[i][j], gc[j]);
      G[i][j] = Gr * c[j];
    }
  const float *mine = own_history<kN>(hist);
  if constexpr (kSteps >= 3) {
    vector_from_slot<kN, kThreads, K>(mine, kSteps - 1, before);
  } else {
#pragma unroll
    for (int a = 0; a < kN; ++a)
      before[a] = 1.0f;
  }
  scaled_step_adjoint<true, kN, K>(E, r, c, gr, gc, gwc, G, before);
#pragma unroll 1
  for (int k = kSteps - 2; k >= 3; k -= 2) {
    vector_from_slot<kN, kThreads, K>(mine, k, before);
    scaled_step_adjoint<false, kN, K>(E, r, c, gr, gc, gwr, G, before);
    vector_from_slot<kN, kThreads, K>(mine, k - 1, before);
    scaled_step_adjoint<true, kN, K>(E, r, c, gr, gc, gwc, G, before);
  }
  if constexpr (kSteps >= 3) {
#pragma unroll
    for (int a = 0; a < kN; ++a)
      before[a] = 1.0f;
    scaled_step_adjoint<false, kN, K>(E, r, c, gr, gc, gwr, G, before);
    scaled_step_adjoint<true, kN, K>(E, r, c, gr, gc, gwc, G, before);
  }
}

/// One token's backward: dL from logits L and dres, which get_G(G) puts into G (called once,
/// where the recomputed forward is done, so that a caller may still be fetching dres before).
/// kHistory: hist is this thread's column of a SinkhornHistory in shared memory (O(T)); else the
/// O(T^2) recomputation. kKeepA: the history holds a_t as well (SinkhornHistory::kKeepsA).
template <int kN, int kThreads, typename K, bool kHistory, bool kKeepA, typename GetG>
__device__ __forceinline__ void sinkhorn_backward_token(const float (&L)[kN][kN], GetG get_G, float (&dL)[kN][kN], float *hist) {
  constexpr int kT = K::sinkhorn_iters;
  if constexpr (K::sinkhorn_log) {
    float mx;
    if (kHistory && exp_domain_fits<kN>(L, mx))
      log_backward_history<kN, kThreads, kT, kKeepA>(L, mx, get_G, dL, hist);
    else
      log_backward_recompute<kN, kT>(L, get_G, dL);
  } else {
    float S[kN][kN], G[kN][kN];
    row_softmax<kN>(L, S);
    if constexpr (kHistory) {
      float E[kN][kN];
#pragma unroll
      for (int i = 0; i < kN; ++i)
#pragma unroll
        for (int j = 0; j < kN; ++j) {
          E[i][j] = S[i][j] + K::sinkhorn_eps;
          // S stays live for the softmax derivative below; without this NVVM re-adds eps to it
          // in every step of the walk back instead of keeping E (16 FADD a step pair at n = 4)
          asm("" : "+f"(E[i][j]));
        }
      softmax_eps_backward_history<kN, kThreads, K>(E, get_G, G, hist);
    } else {
      get_G(G);
      softmax_eps_backward_recompute<kN, K>(S, G);
    }
    // The eps added after the softmax is a constant: dS = dP; dL = S (dS - sum_j dS S).
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      float d = 0.0f;
#pragma unroll
      for (int j = 0; j < kN; ++j)
        d += G[i][j] * S[i][j];
#pragma unroll
      for (int j = 0; j < kN; ++j)
        dL[i][j] = S[i][j] * (G[i][j] - d);
    }
  }
}

template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) sinkhorn_bwd(const __grid_constant__ SinkhornBwdArgs args) {
  using History = SinkhornHistory<kN, kThreads, K>;
  __shared__ alignas(16) float hist_storage[History::kFits ? History::kFloats : 1];
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    float L[kN][kN], dres[kN][kN], dL[kN][kN];
    load_matrix<kN>(args.logits + m * kN * kN, L);
    load_matrix<kN>(args.dres + m * kN * kN, dres);
    sinkhorn_backward_token<kN, kThreads, K, History::kFits, History::kKeepsA>(
        L,
        [&](float (&G)[kN][kN]) {
#pragma unroll
          for (int i = 0; i < kN; ++i)
#pragma unroll
            for (int j = 0; j < kN; ++j)
              G[i][j] = dres[i][j];
        },
        dL, hist_storage);
    store_matrix<kN>(args.dlogits + m * kN * kN, dL);
  }
}

} // namespace mhc
