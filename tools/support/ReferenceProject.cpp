// mhcjit tool support: float64 reference of project (SPEC.md 1), the skinny GEMM of the
// flattened streams against phi plus the per-token mean square, forward and backward.
#include "Parallel.h"
#include "Reference.h"

#include <algorithm>

namespace mhcjit {

ProjectOutputs projectForwardRef(const StreamShape &S, const std::vector<float> &X,
                                 const ParamTensor &Phi, const ParamTensor &Gamma) {
  const int64_t K = S.width();
  const int N = S.mixes();
  const bool HasGamma = !Gamma.empty();
  ProjectOutputs Out;
  Out.H.assign(S.M * N, 0.0);
  Out.Ms.assign(S.M, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m) {
          const float *Xm = X.data() + m * K;
          // H[m][t] = sum_k x[m][k] * phi[t][k] * gamma[k] (gamma = 1 when absent).
          for (int t = 0; t < N; ++t) {
            const float *PhiT = Phi.data() + int64_t(t) * K;
            double Sum = 0;
            for (int64_t k = 0; k < K; ++k)
              Sum += double(Xm[k]) * double(PhiT[k]) * (HasGamma ? double(Gamma[k]) : 1.0);
            Out.H[m * N + t] = Sum;
          }
          // ms[m] = (1/K) sum_k x[m][k]^2; never involves gamma.
          double Squares = 0;
          for (int64_t k = 0; k < K; ++k)
            Squares += double(Xm[k]) * double(Xm[k]);
          Out.Ms[m] = Squares / double(K);
        }
      },
      referenceGrain(K * (N + 1)));
  return Out;
}

ProjectGrads projectBackwardRef(const StreamShape &S, const std::vector<float> &DH,
                                const std::vector<float> &DMs, const std::vector<float> &X,
                                const ParamTensor &Phi, const ParamTensor &Gamma,
                                const std::vector<float> *DxIn) {
  const int64_t K = S.width();
  const int N = S.mixes();
  const bool HasGamma = !Gamma.empty();
  auto gammaAt = [&](int64_t k) { return HasGamma ? double(Gamma[k]) : 1.0; };
  ProjectGrads G;

  // dx[m][k] = gamma[k] * sum_t dH[m][t]*phi[t][k] + dms[m] * 2*x[m][k]/K (+ DxIn).
  G.DX.assign(S.M * K, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        // NOTE: t outer and k inner walks phi row by row (cache friendly); every k still sums
        // its terms in t order, so the result is the same as the k-outer loop.
        std::vector<double> Sum(K);
        for (int64_t m = Begin; m < End; ++m) {
          std::fill(Sum.begin(), Sum.end(), 0.0);
          for (int t = 0; t < N; ++t) {
            const double D = DH[m * N + t];
            const float *PhiT = Phi.data() + int64_t(t) * K;
            for (int64_t k = 0; k < K; ++k)
              Sum[k] += D * double(PhiT[k]);
          }
          for (int64_t k = 0; k < K; ++k) {
            int64_t I = m * K + k;
            G.DX[I] = gammaAt(k) * Sum[k] + double(DMs[m]) * 2.0 * double(X[I]) / double(K) +
                      (DxIn ? double((*DxIn)[I]) : 0.0);
          }
        }
      },
      referenceGrain(K * N));

  // dphi[t][k] = gamma[k] * sum_m dH[m][t]*x[m][k];
  // dgamma[k] = sum_m sum_t dH[m][t]*x[m][k]*phi[t][k]. Each chunk owns a range of columns k
  // and walks the tokens in order, so every sum has one fixed order.
  G.DPhi.assign(int64_t(N) * K, 0.0);
  if (HasGamma)
    G.DGamma.assign(K, 0.0);
  parallelFor(
      K,
      [&](int64_t Begin, int64_t End) {
        // t outer, k inner (row by row, as above); per element the same order as k outer.
        std::vector<double> Inner(End - Begin);
        for (int64_t m = 0; m < S.M; ++m) {
          std::fill(Inner.begin(), Inner.end(), 0.0);
          const float *Xm = X.data() + m * K;
          for (int t = 0; t < N; ++t) {
            const double D = DH[m * N + t];
            double *DPhiT = G.DPhi.data() + int64_t(t) * K;
            const float *PhiT = Phi.data() + int64_t(t) * K;
            for (int64_t k = Begin; k < End; ++k) {
              DPhiT[k] += D * double(Xm[k]);
              Inner[k - Begin] += D * double(PhiT[k]);
            }
          }
          if (HasGamma)
            for (int64_t k = Begin; k < End; ++k)
              G.DGamma[k] += Inner[k - Begin] * double(Xm[k]);
        }
        for (int t = 0; t < N; ++t)
          for (int64_t k = Begin; k < End; ++k)
            G.DPhi[int64_t(t) * K + k] *= gammaAt(k);
      },
      referenceGrain(S.M * N));
  return G;
}

} // namespace mhcjit
