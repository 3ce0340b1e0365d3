// mhcjit cache: the canonical record that names a compiled kernel, and its sha256 key.
// Everything that can change the cubin is in the record; nothing else (no paths, no pointers).
#pragma once

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mhcjit {

/// Bump when the entry format or the meaning of any record field changes.
constexpr int CacheSchemaVersion = 1;

/// The ingredients of a cache key.
struct CacheKeyRecord {
  int SchemaVersion = CacheSchemaVersion;
  std::string GeneratorVersion;     ///< mhcjit's version (MHCJIT_VERSION)
  std::string TemplatesDigest;      ///< templatesDigest(): sha256 of every embedded template byte
  std::string SpecRecord;           ///< canonicalRecord(spec)
  std::string NameExpression;       ///< the template instantiation handed to NVRTC
  std::string NvrtcVersion;         ///< "13.0"
  std::vector<std::string> Options; ///< NVRTC options in order, the arch option excluded
  std::string Arch;                 ///< exact target, e.g. "sm_90a"
};

/// The record as canonical text: one "field=value" line per ingredient, options one per line.
std::string renderKeyRecord(const CacheKeyRecord &Record);

/// Parses renderKeyRecord()'s text; an error names the first bad line.
llvm::Expected<CacheKeyRecord> parseKeyRecord(llvm::StringRef Text);

/// Lower-case hex sha256 of renderKeyRecord(Record).
std::string cacheKey(const CacheKeyRecord &Record);

} // namespace mhcjit
