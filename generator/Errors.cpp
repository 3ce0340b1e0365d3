// mhcjit: the error category behind Errc.
#include "mhcjit/Errors.h"

namespace mhcjit {

namespace {
class MhcjitCategory : public std::error_category {
public:
  const char *name() const noexcept override { return "mhcjit"; }
  std::string message(int Code) const override {
    switch (static_cast<Errc>(Code)) {
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::Unsupported: return "unsupported";
    case Errc::CompileFailed: return "kernel compilation failed";
    case Errc::CudaFailed: return "CUDA driver call failed";
    case Errc::NoDevice: return "no CUDA device";
    case Errc::CacheFailed: return "kernel cache failure";
    case Errc::NoJit: return "kernel not cached and JIT disabled";
    }
    return "unknown mhcjit error";
  }
};
} // namespace

const std::error_category &errorCategory() {
  static MhcjitCategory Category;
  return Category;
}

} // namespace mhcjit
