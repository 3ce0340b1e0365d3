// mhcjit generator: the kernel templates compiled into the library.
// The bytes come from templates/ at build time (cmake/EmbedTemplates.cmake); no install path needed.
#pragma once

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>

namespace mhcjit {

/// One template file: its include name (e.g. "aggregate.cuh") and its full text.
struct EmbeddedTemplate {
  const char *Name;
  const char *Text;
};

/// Every embedded template, in the order templates/CMakeLists.txt lists them.
llvm::ArrayRef<EmbeddedTemplate> embeddedTemplates();

/// Hex sha256 over every template's name and bytes; part of every cache key.
const std::string &templatesDigest();

} // namespace mhcjit
