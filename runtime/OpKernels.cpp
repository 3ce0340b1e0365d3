// mhcjit runtime: the set of kernels each op direction may launch (for pre-warming and tests).
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/mhcjit.hpp"

#include "mhc_args.h"

#include <algorithm>

namespace mhcjit {

namespace {

bool producesDx(Op O, Direction D) {
  return D == Direction::Backward && O != Op::Expand && O != Op::Scale && O != Op::Sinkhorn &&
         O != Op::ScaleSinkhorn;
}

/// Backwards that reduce parameter gradients, and project forwards that split K, finish with
/// reduce_rows.
bool usesReduceRows(const KernelSpec &S) {
  if (S.Operation == Op::Project && S.Dir == Direction::Forward)
    return mhc::project_fwd_splits(int64_t(S.N) * S.C) > 1;
  return S.Dir == Direction::Backward &&
         (S.Operation == Op::Project || S.Operation == Op::Scale || S.Operation == Op::ScaleSinkhorn ||
          S.Operation == Op::ExpandCombine ||
          S.Operation == Op::Head);
}

} // namespace

llvm::Expected<std::vector<KernelSpec>> kernelsForCall(const MixConfig &Config, Op Operation, Direction Dir) {
  auto Base = specFor(Config, Operation, Dir);
  if (!Base)
    return Base.takeError();
  std::vector<KernelSpec> Specs = kernelVariants(*Base, Config.Params);
  // An untuned call picks its tile among defaultTileChoices by its grid: pre-warm them all.
  if (Base->Tile == defaultTileConfig(*Base))
    for (const TileConfig &Tile : defaultTileChoices(*Base)) {
      KernelSpec Other = *Base;
      Other.Tile = Tile;
      for (const KernelSpec &S : kernelVariants(Other, Config.Params))
        if (std::find(Specs.begin(), Specs.end(), S) == Specs.end())
          Specs.push_back(S);
    }
  return Specs;
}

std::vector<KernelSpec> kernelVariants(const KernelSpec &BaseSpec, ParamType Params) {
  const KernelSpec *Base = &BaseSpec;
  const Op Operation = Base->Operation;
  const Direction Dir = Base->Dir;
  std::vector<KernelSpec> Specs;
  std::vector<KernelSpec> Stages = {*Base};
  if (Operation == Op::Head && Dir == Direction::Backward) {
    Stages.push_back(*Base);
    Stages.back().Stage = 1;
  }
  for (const KernelSpec &Stage : Stages)
    for (bool Optional : {false, true}) {
      if (Optional && Operation != Op::Project && Operation != Op::ExpandCombine)
        continue;
      for (bool Accumulate : {false, true}) {
        // head backward's dx comes from its second stage only
        bool WritesDx = producesDx(Operation, Dir) && !(Operation == Op::Head && Stage.Stage == 0);
        if (Accumulate && !WritesDx)
          continue;
        KernelSpec S = Stage;
        S.HasGamma = Optional && Operation == Op::Project;
        S.HasBias = Optional && Operation == Op::ExpandCombine;
        S.AccumulateDx = Accumulate;
        S.Params = effectiveParams(S, Base->Params == ParamType::Stream ? ParamType::Stream : Params);
        Specs.push_back(S);
      }
    }
  if (usesReduceRows(*Base)) {
    KernelSpec Reduce;
    Reduce.Operation = Op::ReduceRows;
    Reduce.C = 1;
    Reduce.Tile = defaultTileConfig(Reduce);
    Specs.push_back(Reduce);
  }
  return Specs;
}

} // namespace mhcjit
