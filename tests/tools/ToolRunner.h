// mhcjit tests: running the mhc-jit binary as a child process in a clean environment, with its
// output captured, and scratch directories that remove themselves.
#pragma once

#include "doctest/doctest.h"

#include "llvm/ADT/Optional.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <string>
#include <vector>

#include <unistd.h> // environ (g++ defines _GNU_SOURCE)

namespace mhcjit {
namespace test {

/// A scratch directory, removed with its contents at the end of the test.
class TempDir {
public:
  TempDir() {
    std::error_code EC = llvm::sys::fs::createUniqueDirectory("mhcjit-tool-test", Path);
    REQUIRE_MESSAGE(!EC, EC.message());
  }
  ~TempDir() { llvm::sys::fs::remove_directories(Path); }
  std::string path() const { return std::string(Path.str()); }
  std::string sub(llvm::StringRef Name) const {
    llvm::SmallString<128> P(Path);
    llvm::sys::path::append(P, Name);
    return std::string(P.str());
  }

private:
  llvm::SmallString<128> Path;
};

struct RunResult {
  int ExitCode = -1;
  std::string Out, Err;
};

inline std::string readWhole(const std::string &Path) {
  auto Buffer = llvm::MemoryBuffer::getFile(Path);
  return Buffer ? (*Buffer)->getBuffer().str() : std::string();
}

/// Runs mhc-jit with Args in a clean environment: every MHCJIT_* variable of ours removed and
/// MHCJIT_CACHE_DIR set to DefaultCache, so a run without --cache-dir touches no real cache.
inline RunResult runTool(const std::vector<std::string> &Args, const std::string &DefaultCache) {
  TempDir Capture;
  const std::string OutPath = Capture.sub("stdout"), ErrPath = Capture.sub("stderr");
  std::vector<std::string> EnvStrings;
  for (char **E = environ; *E; ++E)
    if (!llvm::StringRef(*E).startswith("MHCJIT_"))
      EnvStrings.push_back(*E);
  EnvStrings.push_back("MHCJIT_CACHE_DIR=" + DefaultCache);
  std::vector<llvm::StringRef> Env(EnvStrings.begin(), EnvStrings.end());

  std::vector<llvm::StringRef> Argv{MHCJIT_TOOL_PATH};
  for (const std::string &A : Args)
    Argv.push_back(A);
  llvm::Optional<llvm::StringRef> Redirects[] = {llvm::StringRef(""), llvm::StringRef(OutPath),
                                                 llvm::StringRef(ErrPath)};
  std::string ErrMsg;
  bool ExecutionFailed = false;
  RunResult R;
  R.ExitCode = llvm::sys::ExecuteAndWait(MHCJIT_TOOL_PATH, Argv, llvm::makeArrayRef(Env), Redirects,
                                         /*SecondsToWait=*/120, /*MemoryLimit=*/0, &ErrMsg,
                                         &ExecutionFailed);
  REQUIRE_MESSAGE(!ExecutionFailed, ErrMsg);
  R.Out = readWhole(OutPath);
  R.Err = readWhole(ErrPath);
  return R;
}

} // namespace test
} // namespace mhcjit
