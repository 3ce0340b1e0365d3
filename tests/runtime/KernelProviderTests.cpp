// mhcjit tests: the kernel provider under many threads (one compilation per key, shared entry).
#include "mhcjit/KernelProvider.h"
#include "mhcjit/mhcjit.hpp"

#include "doctest/doctest.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

#include <algorithm>
#include <thread>
#include <vector>

using namespace mhcjit;

TEST_CASE("eight threads asking for one new kernel compile it once and share one entry") {
  llvm::SmallString<128> Dir;
  REQUIRE(!llvm::sys::fs::createUniqueDirectory("mhcjit-provider-test", Dir));
  RuntimeOptions Options = RuntimeOptions::fromEnvironment();
  Options.CacheDir = Dir.str().str();
  Options.Warn = [](llvm::StringRef) {};
  MixConfig Config;
  Config.N = 5;
  Config.C = 4321; // a shape no other test builds, so this process has not compiled it yet
  auto Spec = specFor(Config, Op::Aggregate, Direction::Backward);
  REQUIRE(static_cast<bool>(Spec));

  const uint64_t CompilesBefore = providerStats().Compiles;
  std::vector<std::shared_ptr<const CacheEntry>> Entries(8);
  std::vector<std::string> Origins(8), Errors(8);
  std::vector<std::thread> Threads;
  for (int T = 0; T < 8; ++T)
    Threads.emplace_back([&, T] {
      auto Built = buildKernel(*Spec, "sm_90a", Options);
      if (!Built) {
        Errors[T] = llvm::toString(Built.takeError());
        return;
      }
      Entries[T] = Built->Entry;
      Origins[T] = originName(Built->Origin).str();
    });
  for (std::thread &T : Threads)
    T.join();
  for (int T = 0; T < 8; ++T) {
    REQUIRE_MESSAGE(Errors[T].empty(), Errors[T]);
    CHECK(Entries[T].get() == Entries[0].get()); // the very same in-memory entry
  }
  CHECK(std::count(Origins.begin(), Origins.end(), "compiled") == 1);
  CHECK(std::count(Origins.begin(), Origins.end(), "memory") == 7);
  CHECK(providerStats().Compiles == CompilesBefore + 1);
  llvm::sys::fs::remove_directories(Dir);
}
