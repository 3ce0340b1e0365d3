// mhcjit tests: the float64 references read the parameters phi, gamma and bias in either dtype
// (fp32 or a bf16/fp16 stream dtype, SPEC.md "Notation") through ParamTensor.
#include "HostTypes.h"
#include "ParamTensor.h"
#include "Reference.h"

#include "doctest/doctest.h"

#include <cmath>
#include <random>
#include <vector>

using namespace mhcjit;

namespace {

std::vector<float> normal(size_t Count, double Sd, uint64_t Seed) {
  std::mt19937_64 Gen(Seed);
  std::normal_distribution<double> D(0.0, Sd);
  std::vector<float> V(Count);
  for (float &E : V)
    E = float(D(Gen));
  return V;
}

} // namespace

TEST_CASE("a parameter tensor rounds to bf16 and fp16 to nearest even and keeps its bytes") {
  const std::vector<float> V = {0.1f, -1.5f, 3.0e-3f, 65504.0f};
  ParamTensor B = ParamTensor::rounded(V, DType::BF16);
  CHECK(B.type() == DType::BF16);
  CHECK(B.size() == V.size());
  CHECK(B[0] == 0.10009765625f); // bf16 0x3dcd
  CHECK(B[1] == -1.5f);
  CHECK(B.bytes().size() == 2 * V.size());
  ParamTensor Back = ParamTensor::fromBytes(B.bytes(), DType::BF16);
  CHECK(Back.values() == B.values());
  CHECK(Back.type() == DType::BF16);
  ParamTensor H = ParamTensor::rounded(V, DType::FP16);
  CHECK(H.type() == DType::FP16);
  CHECK(H[0] == 0.0999755859375f); // fp16 0x2e66
  CHECK(H[3] == 65504.0f);         // the largest fp16
  ParamTensor F = V;               // fp32 vectors convert implicitly and stay exact
  CHECK(F.type() == DType::FP32);
  CHECK(F.values() == V);
  CHECK(F.bytes().size() == 4 * V.size());
  CHECK(ParamTensor().empty());
}

TEST_CASE("project with bf16 phi and gamma uses the rounded values, forward and backward") {
  StreamShape S{1, 1, 2, Layout::SBCN}; // K = 2, N = 3
  std::vector<float> X = {1, 2};
  ParamTensor Phi = ParamTensor::rounded({0.1f, 0, 0, 0.1f, 1, 1}, DType::BF16);
  ParamTensor Gamma = ParamTensor::rounded({1, 3}, DType::BF16);
  const double P = 0.10009765625; // 0.1 in bf16
  ProjectOutputs O = projectForwardRef(S, X, Phi, Gamma);
  CHECK(O.H == std::vector<double>{P, 6 * P, 7});
  CHECK(O.Ms == std::vector<double>{2.5}); // ms never involves the parameters
  ProjectGrads G = projectBackwardRef(S, {1, 0, 0}, {0}, X, Phi, Gamma);
  CHECK(G.DX == std::vector<double>{P, 0});
  CHECK(G.DGamma == std::vector<double>{P, 0});
  CHECK(G.DPhi == std::vector<double>{1, 6, 0, 0, 0, 0});
}

TEST_CASE("expand_combine with an fp16 bias adds the rounded bias") {
  StreamShape S{1, 1, 2, Layout::SBNC};
  std::vector<float> F = {1, 2}, Post = {2}, X = {0, 0}, Res = {1};
  ParamTensor Bias = ParamTensor::rounded({0.1f, -0.25f}, DType::FP16);
  std::vector<double> Out = expandCombineForwardRef(S, F, Bias, Post, X, Res);
  CHECK(Out == std::vector<double>{2 * (1 + 0.0999755859375), 2 * (2 - 0.25)});
  ExpandCombineGrads G = expandCombineBackwardRef(S, {1, 1}, F, Bias, Post, X, Res);
  CHECK(G.DPost == std::vector<double>{(1 + 0.0999755859375) + (2 - 0.25)});
  CHECK(G.DBias == std::vector<double>{2, 2});
}

TEST_CASE("references fed bf16/fp16 parameters equal references fed their fp32 values, bit for bit") {
  const StreamShape S{5, 3, 16, Layout::SBCN};
  const int64_t K = S.width();
  std::vector<float> X = normal(S.M * K, 1.0, 1), DH = normal(S.M * S.mixes(), 1.0, 2),
                     DMs = normal(S.M, 1.0, 3), Phi = normal(S.mixes() * K, 0.2, 4),
                     Gamma = normal(K, 0.5, 5), F = normal(S.M * S.C, 1.0, 6), Bias = normal(S.C, 0.5, 7),
                     Post = normal(S.M * S.N, 1.0, 8), Res = normal(S.M * S.N * S.N, 1.0, 9),
                     DOut = normal(S.elements(), 1.0, 10);
  for (DType T : {DType::BF16, DType::FP16}) {
    CAPTURE(dtypeName(T).str());
    ParamTensor PhiT = ParamTensor::rounded(Phi, T), GammaT = ParamTensor::rounded(Gamma, T),
                BiasT = ParamTensor::rounded(Bias, T);
    std::vector<float> PhiR = roundToDType(Phi, T), GammaR = roundToDType(Gamma, T), BiasR = roundToDType(Bias, T);
    CHECK(projectForwardRef(S, X, PhiT, GammaT).H == projectForwardRef(S, X, PhiR, GammaR).H);
    ProjectGrads A = projectBackwardRef(S, DH, DMs, X, PhiT, GammaT), B = projectBackwardRef(S, DH, DMs, X, PhiR, GammaR);
    CHECK(A.DX == B.DX);
    CHECK(A.DPhi == B.DPhi);
    CHECK(A.DGamma == B.DGamma);
    CHECK(expandCombineForwardRef(S, F, BiasT, Post, X, Res) == expandCombineForwardRef(S, F, BiasR, Post, X, Res));
    CHECK(expandCombineBackwardRef(S, DOut, F, BiasT, Post, X, Res).DPost ==
          expandCombineBackwardRef(S, DOut, F, BiasR, Post, X, Res).DPost);
    // and the rounding is visible: the unrounded parameters give other results
    CHECK(projectForwardRef(S, X, PhiT, GammaT).H != projectForwardRef(S, X, Phi, Gamma).H);
    CHECK(expandCombineForwardRef(S, F, BiasT, Post, X, Res) != expandCombineForwardRef(S, F, Bias, Post, X, Res));
  }
}
