// mhcjit generator: contract presets and the names of contract-level enums.
// The numbers are SPEC.md's table, written as exact literals.
#include "mhcjit/Contract.h"

#include "llvm/ADT/StringSwitch.h"

namespace mhcjit {

ContractConstants contractPreset(ContractKind Kind) {
  ContractConstants C;
  C.Kind = Kind;
  switch (Kind) {
  case ContractKind::TE:
    C.DefaultLayout = Layout::SBCN;
    C.RmsEps = 0x1p-23f;
    C.Rms = RmsForm::Inside;
    C.PreEps = 0.0f;
    C.Sinkhorn = SinkhornKind::Log;
    C.SinkhornEps = 0.0f;
    break;
  case ContractKind::DeepSeek:
  case ContractKind::Megatron:
    C.DefaultLayout = Layout::SBNC;
    C.RmsEps = 1e-6f;
    C.Rms = Kind == ContractKind::DeepSeek ? RmsForm::Inside : RmsForm::Outside;
    C.PreEps = 1e-6f;
    C.Sinkhorn = SinkhornKind::SoftmaxEps;
    C.SinkhornEps = 1e-6f;
    break;
  }
  C.PostMult = 2.0f;
  C.SinkhornIters = 20;
  return C;
}

llvm::StringRef contractName(ContractKind K) {
  switch (K) {
  case ContractKind::TE: return "te";
  case ContractKind::DeepSeek: return "deepseek";
  case ContractKind::Megatron: return "megatron";
  }
  return "?";
}

llvm::StringRef layoutName(Layout L) { return L == Layout::SBCN ? "sbcn" : "sbnc"; }
llvm::StringRef rmsFormName(RmsForm F) { return F == RmsForm::Inside ? "inside" : "outside"; }
llvm::StringRef sinkhornName(SinkhornKind S) {
  return S == SinkhornKind::Log ? "log" : "softmax_eps";
}

llvm::Optional<ContractKind> parseContract(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<ContractKind>>(Name)
      .Case("te", ContractKind::TE)
      .Case("deepseek", ContractKind::DeepSeek)
      .Case("megatron", ContractKind::Megatron)
      .Default(llvm::None);
}

llvm::Optional<Layout> parseLayout(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<Layout>>(Name)
      .Case("sbcn", Layout::SBCN)
      .Case("sbnc", Layout::SBNC)
      .Default(llvm::None);
}

llvm::Optional<RmsForm> parseRmsForm(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<RmsForm>>(Name)
      .Case("inside", RmsForm::Inside)
      .Case("outside", RmsForm::Outside)
      .Default(llvm::None);
}

llvm::Optional<SinkhornKind> parseSinkhorn(llvm::StringRef Name) {
  return llvm::StringSwitch<llvm::Optional<SinkhornKind>>(Name)
      .Case("log", SinkhornKind::Log)
      .Case("softmax_eps", SinkhornKind::SoftmaxEps)
      .Default(llvm::None);
}

} // namespace mhcjit
