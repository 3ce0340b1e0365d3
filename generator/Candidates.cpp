// mhcjit generator: candidate tile configs per op and direction for the autotuner.
// Every list starts with the heuristic's choice and keeps only configs a GPU can run.
#include "mhcjit/Candidates.h"
#include "mhcjit/Errors.h"
#include "mhcjit/TileHeuristic.h"

#include "llvm/ADT/StringRef.h"

#include <algorithm>
#include <utility>

namespace mhcjit {

namespace {

/// Vec values to try for a stream op: the widest that divides C, its half and its quarter.
/// Example: bf16, C = 7168 -> {8, 4, 2}; fp32 -> {4, 2, 1}; C = 7 -> {1}.
std::vector<int> streamVecs(const KernelSpec &Spec) {
  std::vector<int> Vecs;
  for (int Vec = widestStreamVec(Spec); Vec >= 1 && Vecs.size() < 3; Vec /= 2)
    Vecs.push_back(Vec);
  return Vecs;
}

/// Threads for a block-per-token kernel with Vec: at most a token's chunks (rounded up to a
/// warp), at least 32. Example: C = 7168, Vec = 8 -> 896 chunks: 64..512 all fit.
bool fitsChunks(const KernelSpec &Spec, int Threads, int Vec) {
  int64_t Chunks = (Spec.C + Vec - 1) / Vec;
  return Threads == 32 || Threads <= (Chunks + 31) / 32 * 32;
}

bool runnable(const KernelSpec &Spec) {
  if (llvm::Error E = validateSpec(Spec)) {
    llvm::consumeError(std::move(E));
    return false;
  }
  return true;
}

} // namespace

std::vector<TileConfig> tileCandidates(const KernelSpec &Spec) {
  const TileConfig Default = defaultTileConfig(Spec);
  const bool Bwd = Spec.Dir == Direction::Backward;
  std::vector<TileConfig> Raw{Default};
  auto Add = [&](int Threads, int Vec, int Rows) { Raw.push_back(TileConfig{Threads, Vec, Rows}); };
  switch (Spec.Operation) {
  case Op::Aggregate:
  case Op::ExpandCombine:
  case Op::Expand:
  case Op::Contract: {
    if (Spec.Operation == Op::ExpandCombine && !Bwd) {
      // forward: vec and threads at the default chunks a lane, then chunks a lane at the default vec
      for (int Vec : streamVecs(Spec))
        for (int Threads : {128, 256})
          Add(Threads, Vec, Default.Rows);
      for (int Rows : {1, 2, 4})
        for (int Threads : {128, 256})
          Add(Threads, Default.Vec, Rows);
      Add(512, Default.Vec, Default.Rows);
      break;
    }
    const bool BlockPerToken = Bwd && (Spec.Operation == Op::Aggregate ||
                                       Spec.Operation == Op::ExpandCombine);
    for (int Vec : streamVecs(Spec))
      for (int Threads : {128, 256, 512, 64})
        if (!BlockPerToken || fitsChunks(Spec, Threads, Vec))
          Add(Threads, Vec, 1);
    break;
  }
  case Op::Project:
    if (Bwd) {
      for (int Threads : {256, 128, 64})
        Add(Threads, Default.Vec, 1);
    } else {
      // (threads, tokens per block): 1, 2 or 4 tiles of 16 tokens per warp
      for (auto [Threads, Rows] : {std::pair{256, 128}, {128, 64}, {128, 128}, {256, 256}, {64, 64}})
        Add(Threads, Default.Vec, Rows);
    }
    break;
  case Op::Sinkhorn:
  case Op::ScaleSinkhorn:
    for (int Threads : {64, 128, 256})
      Add(Threads, Default.Vec, 1);
    break;
  case Op::Scale:
  case Op::Head:
  case Op::ReduceRows:
    for (int Threads : {128, 256, 512})
      Add(Threads, Default.Vec, 1);
    break;
  }
  std::vector<TileConfig> Out;
  for (const TileConfig &T : Raw) {
    if (std::find(Out.begin(), Out.end(), T) != Out.end())
      continue;
    KernelSpec S = Spec;
    S.Tile = T;
    // NOTE: the default is kept even if a check here were stricter than the kernel needs:
    // the runtime launches it today, so the tuner must be able to compare against it.
    if (Out.empty() || runnable(S))
      Out.push_back(T);
  }
  return Out;
}

bool tileMayDependOnM(const KernelSpec &Spec) {
  const bool Fwd = Spec.Dir == Direction::Forward;
  switch (Spec.Operation) {
  case Op::Project:
  case Op::Aggregate:
  case Op::ExpandCombine:
  case Op::Contract:
    return Fwd;
  case Op::Scale:
  case Op::Sinkhorn:
  case Op::ScaleSinkhorn:
  case Op::Expand:
  case Op::ReduceRows:
    return true;
  case Op::Head:
    return false;
  }
  return false;
}

std::string untiledRecord(const KernelSpec &Spec) {
  KernelSpec S = Spec;
  S.Tile = TileConfig{0, 0, 0};
  return canonicalRecord(S);
}

llvm::Expected<KernelSpec> specFromUntiledRecord(llvm::StringRef Record, const TileConfig &Tile) {
  const llvm::StringRef Untiled = " threads=0 vec=0 rows=0 ";
  size_t At = Record.find(Untiled);
  if (At == llvm::StringRef::npos)
    return makeError(Errc::InvalidArgument,
                     "tuning record has no normalised tile (threads=0 vec=0 rows=0): " + Record);
  std::string Tiled = Record.take_front(At).str() + " threads=" + std::to_string(Tile.Threads) +
                      " vec=" + std::to_string(Tile.Vec) + " rows=" + std::to_string(Tile.Rows) +
                      " " + Record.drop_front(At + Untiled.size()).str();
  return parseCanonicalRecord(Tiled);
}

} // namespace mhcjit
