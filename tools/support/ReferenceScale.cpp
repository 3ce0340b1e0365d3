// mhcjit tool support: float64 reference of scale (SPEC.md 2): RMS-normalise H, scale by alpha,
// add beta, apply the sigmoids; forward and backward, both rms forms.
#include "Parallel.h"
#include "Reference.h"

#include <cmath>

namespace mhcjit {

namespace {

double sigmoid(double V) { return 1.0 / (1.0 + std::exp(-V)); }

/// The group of mix entry t: 0 pre (t < n), 1 post (n <= t < 2n), 2 res.
int groupOf(int t, int n) { return t < n ? 0 : (t < 2 * n ? 1 : 2); }

} // namespace

ScaleOutputs scaleForwardRef(const StreamShape &S, const ContractConstants &Consts,
                             const std::vector<float> &H, const std::vector<float> &Ms,
                             const std::vector<float> &Alpha, const std::vector<float> &Beta) {
  const int n = S.N, N = S.mixes();
  ScaleOutputs Out;
  Out.Pre.assign(S.M * n, 0.0);
  Out.Post.assign(S.M * n, 0.0);
  Out.Logits.assign(S.M * n * n, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m) {
          double R = reciprocalRms(Ms[m], Consts.RmsEps, Consts.Rms);
          for (int t = 0; t < N; ++t) {
            // h[t] = H[t]*r*a(t) + beta[t].
            double Hs = double(H[m * N + t]) * R * double(Alpha[groupOf(t, n)]) + double(Beta[t]);
            if (t < n)
              Out.Pre[m * n + t] = sigmoid(Hs) + double(Consts.PreEps);
            else if (t < 2 * n)
              Out.Post[m * n + t - n] = double(Consts.PostMult) * sigmoid(Hs);
            else
              Out.Logits[m * n * n + t - 2 * n] = Hs;
          }
        }
      },
      referenceGrain(4 * N));
  return Out;
}

ScaleGrads scaleBackwardRef(const StreamShape &S, const ContractConstants &Consts,
                            const std::vector<float> &DPre, const std::vector<float> &DPost,
                            const std::vector<float> &DLogits, const std::vector<float> &H,
                            const std::vector<float> &Ms, const std::vector<float> &Alpha,
                            const std::vector<float> &Beta) {
  const int n = S.N, N = S.mixes();
  ScaleGrads G;
  G.DH.assign(S.M * N, 0.0);
  G.DMs.assign(S.M, 0.0);
  // Per token: gh (N) for dbeta and the three group sums of gh*H*r for dalpha; both are then
  // summed over tokens in token order.
  std::vector<double> Gh(S.M * N, 0.0), AlphaParts(S.M * 3, 0.0), AlphaMagnitudes(S.M * 3, 0.0);
  G.DMsMagnitude.assign(S.M, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m) {
          double R = reciprocalRms(Ms[m], Consts.RmsEps, Consts.Rms);
          double MsSum = 0, MsMagnitude = 0;
          for (int t = 0; t < N; ++t) {
            int Group = groupOf(t, n);
            double A = Alpha[Group];
            double Hv = H[m * N + t];
            double Hs = Hv * R * A + double(Beta[t]);
            double Sg = sigmoid(Hs);
            double GhT;
            if (Group == 0)
              GhT = double(DPre[m * n + t]) * Sg * (1 - Sg);
            else if (Group == 1)
              GhT = double(DPost[m * n + t - n]) * double(Consts.PostMult) * Sg * (1 - Sg);
            else
              GhT = DLogits[m * n * n + t - 2 * n];
            Gh[m * N + t] = GhT;
            G.DH[m * N + t] = GhT * A * R;
            AlphaParts[m * 3 + Group] += GhT * Hv * R;
            AlphaMagnitudes[m * 3 + Group] += std::fabs(GhT * Hv * R);
            MsSum += GhT * A * Hv;
            MsMagnitude += std::fabs(GhT * A * Hv);
          }
          const double Slope = reciprocalRmsSlope(Ms[m], Consts.RmsEps, Consts.Rms);
          G.DMs[m] = Slope * MsSum;
          G.DMsMagnitude[m] = std::fabs(Slope) * MsMagnitude;
        }
      },
      referenceGrain(6 * N));
  G.DAlpha = columnSums(AlphaParts, S.M, 3);
  G.DAlphaMagnitude = columnSums(AlphaMagnitudes, S.M, 3);
  G.DBeta = columnSums(Gh, S.M, N);
  return G;
}

} // namespace mhcjit
