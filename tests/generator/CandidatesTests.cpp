// mhcjit tests: the autotuner's candidate tile configs (pruning, defaults, order, M rules).
// Pure generator code: no NVRTC, no GPU.
#include "mhcjit/Candidates.h"
#include "mhcjit/KernelSource.h"
#include "mhcjit/TileHeuristic.h"

#include "mhc_args.h"

#include "TestSupport.h"
#include "doctest/doctest.h"

#include <algorithm>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

KernelSpec specOf(Op O, Direction D, int N = 4, int64_t C = 7168, DType T = DType::BF16,
                  Precision P = Precision::FP32) {
  KernelSpec S;
  S.Operation = O;
  S.Dir = D;
  S.N = N;
  S.C = C;
  S.StreamType = T;
  S.Prec = P;
  S.Tile = defaultTileConfig(S);
  return S;
}

std::vector<KernelSpec> everySpec() {
  std::vector<KernelSpec> Specs;
  for (Op O : allOps())
    for (Direction D : {Direction::Forward, Direction::Backward})
      for (int N : {1, 4, 8})
        for (int64_t C : {7, 1000, 7168})
          for (DType T : {DType::BF16, DType::FP32})
            for (Precision P : {Precision::FP32, Precision::TF32})
              Specs.push_back(specOf(O, D, N, C, T, P));
  Specs.push_back(specOf(Op::ReduceRows, Direction::Forward, 4, 1));
  return Specs;
}

} // namespace

TEST_CASE("every candidate list starts with the default, is small, unique and valid") {
  for (const KernelSpec &S : everySpec()) {
    const std::string Label = specLabel(S) + " " + precisionName(S.Prec).str();
    CAPTURE(Label);
    std::vector<TileConfig> List = tileCandidates(S);
    REQUIRE(!List.empty());
    CHECK((List.front() == defaultTileConfig(S)));
    CHECK(List.size() <= 12);
    for (size_t I = 0; I < List.size(); ++I) {
      KernelSpec T = S;
      T.Tile = List[I];
      CHECK(!failureOf(validateSpec(T)).Failed);
      CHECK(List[I].Threads <= 1024);
      CHECK(List[I].Vec * dtypeSize(S.StreamType) <= 16);
      for (size_t J = 0; J < I; ++J)
        CHECK(!(List[I] == List[J]));
    }
  }
}

TEST_CASE("the candidate order is deterministic (it is the tie-break order)") {
  KernelSpec S = specOf(Op::Aggregate, Direction::Forward);
  std::vector<TileConfig> A = tileCandidates(S), B = tileCandidates(S);
  REQUIRE(A.size() == B.size());
  for (size_t I = 0; I < A.size(); ++I)
    CHECK((A[I] == B[I]));
  // bf16, C = 7168: vec 8, 4 and 2, four thread counts each; the heuristic's (256, 2) first
  CHECK(A.size() == 12);
  CHECK((A[0] == TileConfig{256, 2, 1}));
  CHECK((A[1] == TileConfig{128, 8, 1}));
}

TEST_CASE("project forward candidates give each warp 1, 2 or 4 whole tiles of 16 tokens") {
  for (Precision P : {Precision::TF32, Precision::FP32}) {
    KernelSpec S = specOf(Op::Project, Direction::Forward, 4, 7168, DType::BF16, P);
    std::vector<TileConfig> List = tileCandidates(S);
    CHECK(List.size() == 5);
    for (const TileConfig &T : List) {
      const int Warps = T.Threads / 32;
      CHECK(T.Rows % (16 * Warps) == 0);
      const int Tiles = T.Rows / (16 * Warps);
      CHECK((Tiles == 1 || Tiles == 2 || Tiles == 4));
    }
  }
  KernelSpec Bad = specOf(Op::Project, Direction::Forward, 4, 7168, DType::BF16, Precision::TF32);
  Bad.Tile = TileConfig{128, 8, 48}; // 12 tokens per warp
  CHECK(failureOf(validateSpec(Bad)).Failed);
}

TEST_CASE("only project asks for dynamic shared memory, and every candidate fits an H100 SM") {
  const int H100BlockLimit = 227 * 1024; // the most dynamic shared memory a block may opt in to
  for (const KernelSpec &Base : everySpec()) {
    KernelSpec S = Base;
    for (ParamType Params : {ParamType::FP32, ParamType::Stream}) {
      S.Params = Params;
      for (const TileConfig &T : tileCandidates(Base)) {
        S.Tile = T;
        const int Bytes = dynamicSharedBytes(S);
        INFO(canonicalRecord(S));
        if (S.Operation == Op::Project && S.Dir == Direction::Forward) {
          CHECK(Bytes > 0);
          CHECK(Bytes <= H100BlockLimit);
        } else if (S.Operation == Op::Project && mhc::project_bwd_dynamic_stages(S.N, dtypeSize(S.StreamType),
                                                                                 S.Tile.Threads,
                                                                                 S.Prec == Precision::TF32)) {
          // the blocks an SM its launch bounds ask for fit one H100 SM (228 KB, 1 KB a block)
          CHECK(Bytes > 0);
          const int Blocks = std::max(1, mhc::project_bwd_min_blocks(S.N, S.Prec == Precision::TF32, S.Tile.Threads));
          CHECK(Blocks * (Bytes + 1024) <= 228 * 1024);
        } else {
          CHECK(Bytes == 0);
        }
      }
    }
  }
  // project backward's default at n = 4, bf16, tf32 (256 threads) takes its 4-step pipelines
  // dynamically; the fp32 mode's (128 threads) fit the static 48 KB
  CHECK(dynamicSharedBytes(specOf(Op::Project, Direction::Backward, 4, 7168, DType::BF16, Precision::TF32)) > 48 * 1024);
  CHECK(dynamicSharedBytes(specOf(Op::Project, Direction::Backward, 4, 7168, DType::BF16, Precision::FP32)) == 0);
  // the default at n = 4, bf16, tf32 (64 tokens a block) leaves room for three blocks an SM
  // (228 KB, 1 KB each reserved), the 128-token tile for two
  KernelSpec S = specOf(Op::Project, Direction::Forward, 4, 7168, DType::BF16, Precision::TF32);
  REQUIRE(S.Tile.Rows == 64);
  CHECK(3 * (dynamicSharedBytes(S) + 1024) <= 228 * 1024);
  S.Tile = TileConfig{256, 1, 128};
  CHECK(2 * (dynamicSharedBytes(S) + 1024) <= 228 * 1024);
}

TEST_CASE("vec candidates divide C and respect 16-byte accesses") {
  for (DType T : {DType::BF16, DType::FP16, DType::FP32})
    for (int64_t C : {7, 12, 1000, 7168}) {
      KernelSpec S = specOf(Op::Expand, Direction::Forward, 4, C, T);
      for (const TileConfig &Tile : tileCandidates(S)) {
        CHECK(C % Tile.Vec == 0);
        CHECK(Tile.Vec * dtypeSize(T) <= 16);
      }
    }
  CHECK(tileCandidates(specOf(Op::Aggregate, Direction::Forward, 4, 7)).front().Vec == 1);
}

TEST_CASE("block-per-token backwards never get more threads than a token has chunks") {
  KernelSpec S = specOf(Op::Aggregate, Direction::Backward, 4, 256); // 32 chunks of 8
  for (const TileConfig &T : tileCandidates(S))
    CHECK(T.Threads <= 128); // 32 chunks of vec 8, 64 of vec 4, 128 of vec 2
  CHECK(tileCandidates(S).front().Threads == 128); // the heuristic: vec 2, a thread per chunk
}

TEST_CASE("expand_combine forward candidates try 1, 2 and 4 chunks a lane at the default vec") {
  for (Layout L : {Layout::SBCN, Layout::SBNC}) {
    KernelSpec S = specOf(Op::ExpandCombine, Direction::Forward);
    S.StreamLayout = L;
    S.Tile = defaultTileConfig(S);
    CAPTURE(layoutName(L).str());
    const std::vector<TileConfig> List = tileCandidates(S);
    for (int Rows : {1, 2, 4})
      CHECK(std::count_if(List.begin(), List.end(), [&](const TileConfig &T) {
              return T.Rows == Rows && T.Vec == S.Tile.Vec;
            }) >= 2);
    for (const TileConfig &T : List)
      CHECK((T.Rows == 1 || T.Rows == 2 || T.Rows == 4));
  }
  // the backward is a block per token: its tiles keep rows = 1
  for (const TileConfig &T : tileCandidates(specOf(Op::ExpandCombine, Direction::Backward)))
    CHECK(T.Rows == 1);
}

TEST_CASE("scale_sinkhorn candidates are the heuristic's tile, then 64, 128 and 256 threads where they fit") {
  for (Direction D : {Direction::Forward, Direction::Backward})
    for (int N : {1, 4, 8}) {
      KernelSpec S = specOf(Op::ScaleSinkhorn, D, N);
      CAPTURE(specLabel(S));
      std::vector<TileConfig> List = tileCandidates(S);
      // the default is one of the thread counts; at n = 8 a warp's staging tile takes 10368
      // bytes, so 256 threads (83 KB) exceed the 48 KiB of static shared memory
      const std::vector<int> Expected = N == 8 ? std::vector<int>{64, 128} : std::vector<int>{64, 128, 256};
      REQUIRE(List.size() == Expected.size());
      CHECK((List.front() == defaultTileConfig(S)));
      std::vector<int> Threads;
      for (const TileConfig &T : List) {
        CHECK(T.Vec == 1); // a thread per token: no vector width, no token rows
        CHECK(T.Rows == 1);
        Threads.push_back(T.Threads);
      }
      std::sort(Threads.begin(), Threads.end());
      CHECK(Threads == Expected);
    }
}

TEST_CASE("only tiles that leave every per-token reduction order alone may depend on M") {
  CHECK(tileMayDependOnM(specOf(Op::Project, Direction::Forward)));
  CHECK(tileMayDependOnM(specOf(Op::Aggregate, Direction::Forward)));
  CHECK(tileMayDependOnM(specOf(Op::Sinkhorn, Direction::Backward)));
  // scale_sinkhorn is a thread per token like scale and sinkhorn, so it follows them
  CHECK(tileMayDependOnM(specOf(Op::ScaleSinkhorn, Direction::Forward)));
  CHECK(tileMayDependOnM(specOf(Op::ScaleSinkhorn, Direction::Backward)));
  CHECK(!tileMayDependOnM(specOf(Op::Aggregate, Direction::Backward)));
  CHECK(!tileMayDependOnM(specOf(Op::ExpandCombine, Direction::Backward)));
  CHECK(!tileMayDependOnM(specOf(Op::Project, Direction::Backward)));
  CHECK(!tileMayDependOnM(specOf(Op::Head, Direction::Forward)));
  CHECK(!tileMayDependOnM(specOf(Op::Contract, Direction::Backward)));
}

TEST_CASE("the untiled record drops the tile and parses back with any tile") {
  KernelSpec S = specOf(Op::Project, Direction::Forward);
  KernelSpec Other = S;
  Other.Tile = TileConfig{64, 1, 32}; // another valid project tile
  CHECK(untiledRecord(S) == untiledRecord(Other));
  CHECK(contains(untiledRecord(S), " threads=0 vec=0 rows=0 "));
  auto Back = specFromUntiledRecord(untiledRecord(S), Other.Tile);
  REQUIRE(!failureOf(Back).Failed);
  CHECK(*Back == Other);
  auto Bad = specFromUntiledRecord(canonicalRecord(S), Other.Tile);
  CHECK(contains(failureOf(Bad).Message, "no normalised tile"));
}

TEST_CASE("project forward's untuned tile is the one whose grid fills its waves best") {
  const TileConfig Narrow{128, 1, 64}, Wide{256, 1, 128};
  const KernelSpec Bf16 = specOf(Op::Project, Direction::Forward, 4, 2560, DType::BF16, Precision::TF32);
  const std::vector<TileConfig> Choices = defaultTileChoices(Bf16);
  REQUIRE(Choices.size() == 2);
  CHECK((Choices[0] == Narrow));
  CHECK((Choices[1] == Wide));
  CHECK((defaultTileConfig(Bf16) == Narrow));
  // every choice is a tuning candidate, so a tuned entry can always name it
  for (const TileConfig &T : Choices) {
    const std::vector<TileConfig> List = tileCandidates(Bf16);
    CHECK(std::find(List.begin(), List.end(), T) != List.end());
  }
  // one choice: the fp32 mode, fp32 streams, n > 4, and every other op
  CHECK(defaultTileChoices(specOf(Op::Project, Direction::Forward, 4, 2560, DType::BF16, Precision::FP32)).size() == 1);
  CHECK(defaultTileChoices(specOf(Op::Project, Direction::Forward, 4, 2560, DType::FP32, Precision::TF32)).size() == 1);
  CHECK(defaultTileChoices(specOf(Op::Project, Direction::Forward, 8, 2560, DType::BF16, Precision::TF32)).size() == 1);
  CHECK(defaultTileChoices(specOf(Op::Project, Direction::Backward, 4, 2560, DType::BF16, Precision::TF32)).size() == 1);
  CHECK(defaultTileChoices(specOf(Op::Aggregate, Direction::Forward)).size() == 1);

  // an H100 or H200: 132 SMs, 228 KB of shared memory an SM, 1 KB reserved a block; 64 tokens
  // fit three blocks an SM (73 KB each), 128 tokens two (89 KB)
  const SmShape Hopper{132, 233472, 1024};
  auto At = [&](int64_t C, int64_t M) {
    return defaultTileForGrid(specOf(Op::Project, Direction::Forward, 4, C, DType::BF16, Precision::TF32), M, Hopper);
  };
  CHECK((At(2560, 16384) == Narrow)); // 768 blocks: 1.94 waves of 396, against 384 in 1.45 of 264
  CHECK((At(2048, 24576) == Narrow)); // the same counts
  CHECK((At(6656, 4096) == Wide));    // 256 blocks: 0.97 waves of 264, against 512 in 1.29 of 396
  CHECK((At(7168, 32768) == Wide));   // 8 splits: 4096 in 10.3 waves of 396, 2048 in 7.8 of 264
  CHECK((At(4096, 32768) == Wide));   // 2560 in 6.5 waves, 1280 in 4.8
  CHECK((At(16384, 8192) == Wide));   // 8 splits: 1024 in 2.6 waves of 396, 512 in 1.94 of 264
  // no device shape or no M: the default
  CHECK((defaultTileForGrid(Bf16, 4096, SmShape{}) == Narrow));
  CHECK((defaultTileForGrid(Bf16, 0, Hopper) == Narrow));
  // a spec with one choice keeps it whatever the grid
  const KernelSpec Fp32Mode = specOf(Op::Project, Direction::Forward, 4, 6656, DType::BF16, Precision::FP32);
  CHECK((defaultTileForGrid(Fp32Mode, 4096, Hopper) == Wide));
}

TEST_CASE("project backward's default: 8 warps on tensor cores in tf32, 4 in the fp32 mode, 128 threads on CUDA cores") {
  auto Threads = [](int N, Precision P) {
    return defaultTileConfig(specOf(Op::Project, Direction::Backward, N, 2560, DType::BF16, P)).Threads;
  };
  CHECK(Threads(4, Precision::TF32) == 256);
  CHECK(Threads(2, Precision::TF32) == 256);
  CHECK(Threads(4, Precision::FP32) == 128);
  CHECK(Threads(8, Precision::TF32) == 128); // n > 4: a thread per column
  CHECK(Threads(8, Precision::FP32) == 128);
}
