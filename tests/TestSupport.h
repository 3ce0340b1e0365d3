// mhcjit tests: helpers every CPU test binary shares (error inspection, strings, specs).
#pragma once

#include "mhcjit/Errors.h"
#include "mhcjit/KernelSpec.h"
#include "mhcjit/TileHeuristic.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <algorithm>
#include <string>

namespace mhcjit {
namespace test {

/// What an llvm::Error held: whether it failed, its Errc value (0 if foreign) and its message.
struct Failure {
  bool Failed = false;
  int Code = 0;
  std::string Message;
};

inline Failure failureOf(llvm::Error E) {
  Failure F;
  llvm::handleAllErrors(std::move(E), [&](const llvm::ErrorInfoBase &Info) {
    F.Failed = true;
    std::error_code EC = Info.convertToErrorCode();
    if (EC.category() == errorCategory())
      F.Code = EC.value();
    F.Message += Info.message();
  });
  return F;
}

template <typename T> Failure failureOf(llvm::Expected<T> &Value) {
  if (Value)
    return {};
  return failureOf(Value.takeError());
}

inline bool contains(llvm::StringRef Haystack, llvm::StringRef Needle) {
  return Haystack.find(Needle) != llvm::StringRef::npos;
}

inline bool isLowerHex64(llvm::StringRef S) {
  return S.size() == 64 && std::all_of(S.begin(), S.end(), [](char C) {
           return (C >= '0' && C <= '9') || (C >= 'a' && C <= 'f');
         });
}

/// An aggregate spec with the runtime's default tile.
inline KernelSpec aggregateSpec(Direction D, Layout L, DType T = DType::BF16, int N = 4,
                                int64_t C = 7168, bool Accumulate = false,
                                bool ElementAligned = false) {
  KernelSpec S;
  S.Dir = D;
  S.N = N;
  S.C = C;
  S.StreamType = T;
  S.StreamLayout = L;
  S.Tile = defaultTileConfig(S);
  S.AccumulateDx = Accumulate;
  S.PointerAlign = ElementAligned ? dtypeSize(T) : 16;
  return S;
}

} // namespace test
} // namespace mhcjit
