// mhc-jit: subcommand objects and the spec options shared by inspect, prewarm and tune.
#include "SpecOptions.h"

#include "mhcjit/Errors.h"
#include "mhcjit/RuntimeOptions.h"
#include "mhcjit/mhcjit.hpp"

#include "llvm/ADT/StringExtras.h"

#include <algorithm>

namespace cl = llvm::cl;

namespace mhcjit {

cl::SubCommand InspectCommand("inspect", "Print a kernel's generated source, PTX, resources or cache key");
cl::SubCommand PrewarmCommand("prewarm", "Compile kernels into the cache (no GPU needed)");
cl::SubCommand CacheCommand("cache", "The kernel cache: mhc-jit cache ls | verify [--repair] | prune | stats");
cl::SubCommand BenchCommand("bench", "Time every op on the GPU against copy bandwidth; --jit times the JIT pipeline");
cl::SubCommand TuneCommand("tune", "Time every candidate tile of a spec on the GPU and store the winner "
                            "(--op ... --C ...), or move the tuning database (--export FILE | --import FILE)");
cl::SubCommand DemoCommand("demo", "Run aggregate on the GPU and check it, or pre-warm and inspect without one");

namespace {

cl::OptionCategory SpecCategory("Kernel spec options");

#define MHCJIT_SPEC_LIST(Var, Flag, Help)                                                          \
  cl::list<std::string> Var(Flag, cl::desc(Help), cl::CommaSeparated, cl::cat(SpecCategory),       \
                            cl::sub(InspectCommand), cl::sub(PrewarmCommand), cl::sub(TuneCommand))

MHCJIT_SPEC_LIST(OpOpt, "op", "Op: project, scale, sinkhorn, scale_sinkhorn, aggregate, expand_combine, "
                              "expand, contract, head (prewarm: a comma list or 'all')");
MHCJIT_SPEC_LIST(DirOpt, "dir", "Direction: fwd, bwd, or both (prewarm and tune default: both)");
MHCJIT_SPEC_LIST(NOpt, "n", "Streams n, 1..8 (default 4)");
MHCJIT_SPEC_LIST(COpt, "C", "Hidden size per stream (required)");
MHCJIT_SPEC_LIST(DTypeOpt, "dtype", "Stream dtype: bf16, fp16, fp32 (default bf16)");
MHCJIT_SPEC_LIST(LayoutOpt, "layout", "Layout: sbcn, sbnc (default: the contract's)");
MHCJIT_SPEC_LIST(ContractOpt, "contract", "Contract: te, deepseek, megatron (default te)");
MHCJIT_SPEC_LIST(PrecisionOpt, "precision", "Precision: fp32, tf32 (default fp32)");
MHCJIT_SPEC_LIST(ParamsOpt, "params", "Parameter dtype of phi, gamma, bias: fp32, stream (default fp32; "
                                      "stream applies to project and expand_combine with a bf16/fp16 stream)");
#undef MHCJIT_SPEC_LIST

cl::opt<std::string> ArchOpt("arch", cl::desc("Target GPU architecture (default sm_90a)"),
                             cl::cat(SpecCategory), cl::sub(InspectCommand), cl::sub(PrewarmCommand));
cl::opt<std::string> TuningDbOpt("tuning-db", cl::desc("Tuning database file (default: $MHCJIT_TUNING_DB, else <cache dir>/tuning/v1.json)"),
                                 cl::sub(InspectCommand), cl::sub(PrewarmCommand), cl::sub(TuneCommand));
cl::opt<std::string> CacheDirOpt("cache-dir", cl::desc("Kernel cache directory (default: $MHCJIT_CACHE_DIR, else $XDG_CACHE_HOME/mhcjit)"),
                                 cl::sub(InspectCommand), cl::sub(PrewarmCommand),
                                 cl::sub(CacheCommand), cl::sub(DemoCommand), cl::sub(BenchCommand),
                                 cl::sub(TuneCommand));

/// The values of one option, or its default; every value parsed by Parse.
template <typename T, typename ParseFn>
llvm::Error collect(const std::vector<std::string> &Given, llvm::StringRef Flag,
                    std::vector<std::string> Defaults, bool Single, ParseFn Parse,
                    std::vector<T> &Out) {
  std::vector<std::string> Values = Given;
  if (Values.empty())
    Values = std::move(Defaults);
  if (Values.empty())
    return makeError(Errc::InvalidArgument, "--" + Flag + " is required");
  if (Single && Values.size() > 1)
    return makeError(Errc::InvalidArgument, "--" + Flag + " takes one value here, got " +
                                                llvm::Twine(unsigned(Values.size())));
  for (const std::string &V : Values) {
    llvm::Optional<T> Parsed = Parse(llvm::StringRef(V).trim());
    if (!Parsed)
      return makeError(Errc::InvalidArgument, "--" + Flag + "=" + V + " is not a valid value");
    Out.push_back(*Parsed);
  }
  return llvm::Error::success();
}

std::vector<std::string> values(const cl::list<std::string> &Option) {
  return std::vector<std::string>(Option.begin(), Option.end());
}

/// --dir values with "both" spelled out. Example: {"both"} -> {"fwd", "bwd"}.
std::vector<std::string> expandBoth(const cl::list<std::string> &Option) {
  std::vector<std::string> Out;
  for (const std::string &V : Option) {
    if (llvm::StringRef(V).trim() == "both") {
      Out.push_back("fwd");
      Out.push_back("bwd");
    } else {
      Out.push_back(V);
    }
  }
  return Out;
}

llvm::Optional<int64_t> parseInteger(llvm::StringRef S) {
  int64_t V;
  if (S.getAsInteger(10, V))
    return llvm::None;
  return V;
}

} // namespace

llvm::Error paramTypesOption(bool Single, std::vector<ParamType> &Out) {
  return collect<ParamType>(values(ParamsOpt), "params", {"fp32"}, Single, parseParamType, Out);
}

llvm::Expected<std::vector<KernelSpec>> specsFromOptions(SpecSelection Selection) {
  // Single: one value per option; TuneBases: one per option but --dir; both give base specs
  const bool Single = Selection != SpecSelection::Kernels;
  std::vector<Op> Ops;
  std::vector<Direction> Dirs;
  std::vector<int64_t> Ns, Cs;
  std::vector<DType> DTypes;
  std::vector<Layout> Layouts;
  std::vector<ContractKind> Contracts;
  std::vector<Precision> Precisions;
  std::vector<ParamType> ParamTypes;
  std::vector<std::string> OpValues(OpOpt.begin(), OpOpt.end());
  if (!Single && OpValues.size() == 1 && OpValues[0] == "all") {
    Ops.assign(allOps().begin(), allOps().end());
  } else if (llvm::Error E = collect<Op>(values(OpOpt), "op", {}, Single, parseOp, Ops)) {
    return std::move(E);
  }
  const bool OneDir = Selection == SpecSelection::Single;
  std::vector<std::string> DirDefault = OneDir ? std::vector<std::string>{"fwd"}
                                               : std::vector<std::string>{"fwd", "bwd"};
  if (llvm::Error E = collect<Direction>(expandBoth(DirOpt), "dir", DirDefault, OneDir, parseDirection, Dirs))
    return std::move(E);
  if (llvm::Error E = collect<int64_t>(values(NOpt), "n", {"4"}, Single, parseInteger, Ns))
    return std::move(E);
  if (llvm::Error E = collect<int64_t>(values(COpt), "C", {}, Single, parseInteger, Cs))
    return std::move(E);
  if (llvm::Error E = collect<DType>(values(DTypeOpt), "dtype", {"bf16"}, Single, parseDType, DTypes))
    return std::move(E);
  if (!LayoutOpt.empty())
    if (llvm::Error E = collect<Layout>(values(LayoutOpt), "layout", {}, Single, parseLayout, Layouts))
      return std::move(E);
  if (llvm::Error E = collect<ContractKind>(values(ContractOpt), "contract", {"te"}, Single, parseContract, Contracts))
    return std::move(E);
  if (llvm::Error E = collect<Precision>(values(PrecisionOpt), "precision", {"fp32"}, Single, parsePrecision, Precisions))
    return std::move(E);
  if (llvm::Error E = paramTypesOption(Single, ParamTypes))
    return std::move(E);

  std::vector<KernelSpec> Specs;
  for (Op O : Ops)
    for (Direction D : Dirs)
      for (int64_t N : Ns)
        for (int64_t C : Cs)
          for (DType T : DTypes)
            for (ContractKind K : Contracts)
              for (Precision P : Precisions)
                for (ParamType Params : ParamTypes) {
                  std::vector<llvm::Optional<Layout>> LayoutChoices;
                  if (Layouts.empty())
                    LayoutChoices.push_back(llvm::None);
                  for (Layout L : Layouts)
                    LayoutChoices.push_back(L);
                  for (const llvm::Optional<Layout> &L : LayoutChoices) {
                    MixConfig Config;
                    Config.N = static_cast<int>(std::max<int64_t>(std::min<int64_t>(N, 1 << 20), -1));
                    Config.C = C;
                    Config.StreamType = T;
                    Config.Contract = contractPreset(K);
                    Config.StreamLayout = L;
                    Config.Prec = P;
                    Config.Params = Params;
                    if (Single) {
                      auto Spec = specFor(Config, O, D);
                      if (!Spec)
                        return Spec.takeError();
                      Specs.push_back(*Spec);
                      continue;
                    }
                    auto Kernels = kernelsForCall(Config, O, D);
                    if (!Kernels)
                      return Kernels.takeError();
                    for (const KernelSpec &K : *Kernels)
                      if (std::find(Specs.begin(), Specs.end(), K) == Specs.end())
                        Specs.push_back(K);
                  }
                }
  return Specs;
}

std::string archOption() { return ArchOpt.empty() ? std::string("sm_90a") : ArchOpt.getValue(); }

std::string tuningDbOption() { return TuningDbOpt; }

std::string applyCacheDirOption() {
  RuntimeOptions Options = RuntimeOptions::fromEnvironment();
  if (!CacheDirOpt.empty())
    Options.CacheDir = CacheDirOpt;
  std::string Root = Options.CacheDir;
  setRuntimeOptions(std::move(Options));
  return Root;
}

} // namespace mhcjit
