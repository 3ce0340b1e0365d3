// mhcjit cache (private): manifest.json, the description of one cache entry.
// It names the key and its record, checks the cubin (length, sha256) and keeps the compile report.
#pragma once

#include "mhcjit/CacheEntry.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mhcjit {

/// The fields of manifest.json.
struct Manifest {
  std::string Key;
  CacheKeyRecord Record;
  uint64_t CubinBytes = 0;
  std::string CubinSha256;
  std::string LoweredName;
  KernelResources Resources;
  std::string CompileLog;
  double CompileSeconds = 0;
  int64_t CreatedUnix = 0;
};

/// The manifest that describes Entry, created at CreatedUnix.
Manifest manifestFor(const CacheEntry &Entry, int64_t CreatedUnix);

/// Pretty-printed JSON text of M (with a final newline).
std::string renderManifest(const Manifest &M);

/// Parses renderManifest()'s text; an error names the missing or mistyped field.
llvm::Expected<Manifest> parseManifest(llvm::StringRef Text);

} // namespace mhcjit
