// mhcjit: error categories shared by every module, so the C ABI can map any error to a status.
// Errors are llvm::StringError values carrying one of these codes and a full message.
#pragma once

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <system_error>

namespace mhcjit {

/// What kind of failure an error is; the C ABI's mhcjit_status mirrors these values.
enum class Errc {
  InvalidArgument = 1, ///< a bad config, size, pointer or option; nothing was launched
  Unsupported = 2,     ///< valid but not supported here (an arch NVRTC lacks, ...)
  CompileFailed = 3,   ///< NVRTC rejected a kernel; the message holds its log
  CudaFailed = 4,      ///< a Driver API call failed
  NoDevice = 5,        ///< no CUDA driver or device where one is needed
  CacheFailed = 6,     ///< the disk cache could not be read or written
  NoJit = 7,           ///< MHCJIT_NO_JIT is set and the kernel is not in any cache
};

const std::error_category &errorCategory();
inline std::error_code makeErrorCode(Errc E) { return {static_cast<int>(E), errorCategory()}; }

/// An llvm::Error of kind Code with Message.
inline llvm::Error makeError(Errc Code, const llvm::Twine &Message) {
  return llvm::createStringError(makeErrorCode(Code), Message);
}

} // namespace mhcjit
