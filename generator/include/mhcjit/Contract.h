// mhcjit generator: the contract constants (SPEC.md "Contracts") and the named presets.
// Each value becomes a compile-time constant of the generated kernel.
#pragma once

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/StringRef.h"

namespace mhcjit {

/// Memory layout of a stream tensor x (M, n, C): sbcn = x[m][c][j], sbnc = x[m][j][c].
enum class Layout { SBCN, SBNC };
enum class ContractKind { TE, DeepSeek, Megatron };
/// Where rms_eps goes: 1/sqrt(ms + eps) (inside) or 1/(sqrt(ms) + eps) (outside).
enum class RmsForm { Inside, Outside };
enum class SinkhornKind { Log, SoftmaxEps };

/// The constants one ecosystem uses; users may override any of them.
struct ContractConstants {
  ContractKind Kind = ContractKind::TE;
  Layout DefaultLayout = Layout::SBCN;
  float RmsEps = 0x1p-23f;
  RmsForm Rms = RmsForm::Inside;
  float PreEps = 0.0f;
  float PostMult = 2.0f;
  SinkhornKind Sinkhorn = SinkhornKind::Log;
  int SinkhornIters = 20;
  float SinkhornEps = 0.0f;
};

/// The table of SPEC.md for te, deepseek and megatron.
ContractConstants contractPreset(ContractKind Kind);

llvm::StringRef contractName(ContractKind K);
llvm::StringRef layoutName(Layout L);
llvm::StringRef rmsFormName(RmsForm F);
llvm::StringRef sinkhornName(SinkhornKind S);
llvm::Optional<ContractKind> parseContract(llvm::StringRef Name);
llvm::Optional<Layout> parseLayout(llvm::StringRef Name);
llvm::Optional<RmsForm> parseRmsForm(llvm::StringRef Name);
llvm::Optional<SinkhornKind> parseSinkhorn(llvm::StringRef Name);

} // namespace mhcjit
