// mhcjit templates: sinkhorn (SPEC.md section 3), `log` and `softmax_eps`, one thread per token
// with its n x n matrix in registers. The backward recomputes the forward iterations it needs in
// registers (O(T^2) small steps): no history in global or shared memory.
#pragma once

#include "mhc_common.cuh"

namespace mhc {

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
  for (int t = 0; t < iters; ++t) {
#pragma unroll
    for (int i = 0; i < kN; ++i)
      v_prev[i] = v[i];
    log_row_update<kN>(L, v, u);
    log_col_update<kN>(L, u, v);
  }
}

/// S = softmax of each row of L.
template <int kN> __device__ __forceinline__ void row_softmax(const float (&L)[kN][kN], float (&S)[kN][kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    float mx = L[i][0];
#pragma unroll
    for (int j = 1; j < kN; ++j)
      mx = fmaxf(mx, L[i][j]);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      S[i][j] = expf(L[i][j] - mx);
      s += S[i][j];
    }
#pragma unroll
    for (int j = 0; j < kN; ++j)
      S[i][j] /= s;
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

template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) sinkhorn_fwd(const __grid_constant__ SinkhornFwdArgs args) {
  constexpr int kT = K::sinkhorn_iters;
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    float L[kN][kN], R[kN][kN];
    load_matrix<kN>(args.logits + m * kN * kN, L);
    if constexpr (K::sinkhorn_log) {
      float u[kN], v[kN], v_prev[kN];
      log_potentials<kN>(L, kT, u, v, v_prev);
#pragma unroll
      for (int i = 0; i < kN; ++i)
#pragma unroll
        for (int j = 0; j < kN; ++j)
          R[i][j] = expf(u[i] + L[i][j] + v[j]);
    } else {
      float S[kN][kN];
      row_softmax<kN>(L, S);
      softmax_eps_state<kN, K>(S, 2 * kT - 1, R);
    }
    store_matrix<kN>(args.res + m * kN * kN, R);
  }
}

template <int kN, int kThreads, typename K>
__global__ void __launch_bounds__(kThreads) sinkhorn_bwd(const __grid_constant__ SinkhornBwdArgs args) {
  constexpr int kT = K::sinkhorn_iters;
  for (i64 m = i64(blockIdx.x) * kThreads + threadIdx.x; m < args.M; m += i64(gridDim.x) * kThreads) {
    float L[kN][kN], G[kN][kN], dL[kN][kN];
    load_matrix<kN>(args.logits + m * kN * kN, L);
    load_matrix<kN>(args.dres + m * kN * kN, G);
    if constexpr (K::sinkhorn_log) {
      // SPEC.md: G = dres * res; dL = G; du = sum_j G; dv = sum_i G; then t = T .. 1.
      float u[kN], v[kN], v_prev[kN], du[kN], dv[kN];
      log_potentials<kN>(L, kT, u, v, v_prev);
#pragma unroll
      for (int i = 0; i < kN; ++i)
#pragma unroll
        for (int j = 0; j < kN; ++j) {
          G[i][j] *= expf(u[i] + L[i][j] + v[j]);
          dL[i][j] = G[i][j];
        }
      axis_sums<kN>(G, false, du);
      axis_sums<kN>(G, true, dv);
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
    } else {
      // Walk the 2T-1 normalisation steps backwards: Y = X / (s + eps) along an axis gives
      // dX = (dY - sum_axis(dY * Y)) / (s + eps). X is recomputed from the start for each step.
      float S[kN][kN], X[kN][kN];
      row_softmax<kN>(L, S);
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
    store_matrix<kN>(args.dlogits + m * kN * kN, dL);
  }
}

} // namespace mhc
