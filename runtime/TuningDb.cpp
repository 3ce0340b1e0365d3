// mhcjit runtime: the tuning database (JSON through llvm::json) and the runtime's tile choice.
// Saves are atomic and merge with the file on disk under a node-local lock.
#include "mhcjit/TuningDb.h"
#include "mhcjit/Arch.h"
#include "mhcjit/Autotuner.h"
#include "mhcjit/Candidates.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"
#include "mhcjit/KernelProvider.h"
#include "mhcjit/KeyLock.h"
#include "mhcjit/LaunchSupport.h"
#include "mhcjit/Sha256.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/TileOverride.h"

#include "../cache/FileIO.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace mhcjit {

namespace {

constexpr int64_t Schema = 1;

llvm::json::Object tileJson(const TileConfig &T) {
  return llvm::json::Object{{"threads", T.Threads}, {"vec", T.Vec}, {"rows", T.Rows}};
}

bool readTile(const llvm::json::Object &O, TileConfig &T) {
  auto Threads = O.getInteger("threads"), Vec = O.getInteger("vec"), Rows = O.getInteger("rows");
  if (!Threads || !Vec || !Rows)
    return false;
  T = TileConfig{int(*Threads), int(*Vec), int(*Rows)};
  return true;
}

llvm::Error corrupt(const llvm::Twine &Why) {
  return makeError(Errc::InvalidArgument, "tuning database is not valid: " + Why);
}

llvm::Expected<TuningEntry> readEntry(const llvm::json::Value &V, size_t Index) {
  const llvm::json::Object *O = V.getAsObject();
  auto Bad = [&](llvm::StringRef Field) {
    return corrupt("entry " + llvm::Twine(unsigned(Index)) + " has no valid '" + Field + "'");
  };
  if (!O)
    return Bad("object");
  TuningEntry E;
  auto Spec = O->getString("spec");
  auto Gpu = O->getString("gpu");
  auto Arch = O->getString("arch");
  auto Nvrtc = O->getString("nvrtc");
  auto Sm = O->getInteger("sm_count");
  auto Driver = O->getInteger("driver");
  auto Bucket = O->getInteger("m_bucket");
  auto Stamp = O->getInteger("timestamp");
  const llvm::json::Object *Winner = O->getObject("winner");
  const llvm::json::Array *Timings = O->getArray("timings");
  if (!Spec) return Bad("spec");
  if (!Gpu) return Bad("gpu");
  if (!Arch) return Bad("arch");
  if (!Nvrtc) return Bad("nvrtc");
  if (!Sm) return Bad("sm_count");
  if (!Driver) return Bad("driver");
  if (!Bucket || *Bucket < 0) return Bad("m_bucket");
  if (!Stamp) return Bad("timestamp");
  if (!Winner || !readTile(*Winner, E.Winner)) return Bad("winner");
  if (!Timings) return Bad("timings");
  E.Key = TuningKey{Spec->str(), Gpu->str(), int(*Sm), Arch->str(), Nvrtc->str(), int(*Driver), *Bucket};
  E.Timestamp = *Stamp;
  for (const llvm::json::Value &T : *Timings) {
    const llvm::json::Object *TO = T.getAsObject();
    CandidateTiming C;
    auto Median = TO ? TO->getNumber("median_ms") : llvm::None;
    auto Spread = TO ? TO->getNumber("spread_ms") : llvm::None;
    if (!TO || !readTile(*TO, C.Tile) || !Median || !Spread)
      return Bad("timings");
    C.MedianMs = *Median;
    C.SpreadMs = *Spread;
    C.QuartileSpreadMs = TO->getNumber("quartile_spread_ms").getValueOr(0.0);
    if (C.QuartileSpreadMs < 0)
      return Bad("timings");
    E.Timings.push_back(C);
  }
  return E;
}

bool identityMatches(const TuningKey &K, const DeviceIdentity &D) {
  return K.Arch == D.Arch && K.NvrtcVersion == D.NvrtcVersion &&
         (D.GpuName.empty() || K.GpuName == D.GpuName) && (!D.SmCount || K.SmCount == D.SmCount) &&
         (!D.DriverVersion || K.DriverVersion == D.DriverVersion);
}

} // namespace

int64_t tuningMBucket(const KernelSpec &Spec, int64_t M) {
  if (M < 1 || !tileMayDependOnM(Spec))
    return 0;
  return static_cast<int64_t>(llvm::PowerOf2Ceil(static_cast<uint64_t>(M)));
}

std::string TuningKey::str() const {
  std::string S;
  llvm::raw_string_ostream OS(S);
  OS << Spec << " | " << GpuName << " | sm=" << SmCount << " | " << Arch << " | nvrtc " << NvrtcVersion
     << " | driver " << DriverVersion << " | ";
  if (MBucket)
    OS << "M<=" << MBucket;
  else
    OS << "any M";
  return OS.str();
}

TuningKey tuningKey(const KernelSpec &Spec, const DeviceIdentity &D, int64_t M) {
  return TuningKey{untiledRecord(Spec), D.GpuName, D.SmCount, D.Arch, D.NvrtcVersion,
                   D.DriverVersion, tuningMBucket(Spec, M)};
}

double tieLimitMs(const std::vector<CandidateTiming> &Timings) {
  if (Timings.empty())
    return 0;
  const CandidateTiming *Best = &Timings.front();
  for (const CandidateTiming &T : Timings)
    if (T.MedianMs < Best->MedianMs)
      Best = &T;
  // NOTE: at least 2%: run-to-run noise of CUDA-event medians is about 1% for long kernels;
  // without the band two ranks timing the same candidates could pick different configs.
  return Best->MedianMs + std::max(Best->MedianMs * 0.02, Best->QuartileSpreadMs);
}

llvm::Expected<size_t> pickWinner(const std::vector<CandidateTiming> &Timings) {
  if (Timings.empty())
    return makeError(Errc::InvalidArgument, "pickWinner: no candidate timings");
  const double Limit = tieLimitMs(Timings);
  for (size_t I = 0; I < Timings.size(); ++I)
    if (Timings[I].MedianMs <= Limit)
      return I;
  return size_t(0);
}

std::string TuningDb::defaultPath(llvm::StringRef CacheRoot) {
  llvm::SmallString<256> P(CacheRoot);
  llvm::sys::path::append(P, "tuning", "v1.json");
  return std::string(P.str());
}

std::string TuningDb::toJson() const {
  llvm::json::Array List;
  for (const auto &KV : Entries) {
    const TuningEntry &E = KV.second;
    llvm::json::Array Timings;
    for (const CandidateTiming &T : E.Timings) {
      llvm::json::Object O = tileJson(T.Tile);
      O["median_ms"] = T.MedianMs;
      O["spread_ms"] = T.SpreadMs;
      O["quartile_spread_ms"] = T.QuartileSpreadMs;
      Timings.push_back(std::move(O));
    }
    List.push_back(llvm::json::Object{{"spec", E.Key.Spec},
                                      {"gpu", E.Key.GpuName},
                                      {"sm_count", E.Key.SmCount},
                                      {"arch", E.Key.Arch},
                                      {"nvrtc", E.Key.NvrtcVersion},
                                      {"driver", E.Key.DriverVersion},
                                      {"m_bucket", E.Key.MBucket},
                                      {"winner", tileJson(E.Winner)},
                                      {"timings", std::move(Timings)},
                                      {"timestamp", E.Timestamp}});
  }
  std::string S;
  llvm::raw_string_ostream OS(S);
  OS << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object{{"schema", Schema}, {"entries", std::move(List)}}))
     << "\n";
  return OS.str();
}

llvm::Expected<TuningDb> TuningDb::fromJson(llvm::StringRef Text) {
  llvm::Expected<llvm::json::Value> Parsed = llvm::json::parse(Text);
  if (!Parsed)
    return corrupt(llvm::toString(Parsed.takeError()));
  const llvm::json::Object *Root = Parsed->getAsObject();
  if (!Root)
    return corrupt("the top level is not an object");
  auto Version = Root->getInteger("schema");
  if (!Version || *Version != Schema)
    return corrupt("schema is not " + llvm::Twine(Schema));
  const llvm::json::Array *List = Root->getArray("entries");
  if (!List)
    return corrupt("no 'entries' array");
  TuningDb Db;
  for (size_t I = 0; I < List->size(); ++I) {
    auto Entry = readEntry((*List)[I], I);
    if (!Entry)
      return Entry.takeError();
    Db.record(std::move(*Entry));
  }
  return Db;
}

llvm::Expected<TuningDb> TuningDb::loadStrict(llvm::StringRef Path) {
  auto Text = fileio::readWholeFile(Path);
  if (!Text)
    return Text.takeError();
  auto Db = fromJson(*Text);
  if (!Db)
    return makeError(Errc::InvalidArgument, Path + ": " + llvm::toString(Db.takeError()));
  return Db;
}

TuningDb TuningDb::load(llvm::StringRef Path, const std::function<void(llvm::StringRef)> &Warn) {
  if (!llvm::sys::fs::exists(Path))
    return TuningDb();
  auto Db = loadStrict(Path);
  if (Db)
    return std::move(*Db);
  std::string Message = "tuning database ignored (using the heuristic tile configs): " +
                        llvm::toString(Db.takeError());
  if (Warn)
    Warn(Message);
  return TuningDb();
}

void TuningDb::record(TuningEntry Entry) {
  TuningKey Key = Entry.Key;
  Entries[Key] = std::move(Entry);
}

void TuningDb::merge(const TuningDb &Other) {
  for (const auto &KV : Other.Entries) {
    auto It = Entries.find(KV.first);
    if (It == Entries.end() || It->second.Timestamp <= KV.second.Timestamp)
      Entries[KV.first] = KV.second;
  }
}

const TuningEntry *TuningDb::lookup(const KernelSpec &Spec, const DeviceIdentity &Device,
                                    int64_t M) const {
  const std::string Record = untiledRecord(Spec);
  std::vector<int64_t> Buckets{tuningMBucket(Spec, M)};
  if (Buckets.front() != 0)
    Buckets.push_back(0);
  for (int64_t Bucket : Buckets)
    for (const auto &KV : Entries)
      if (KV.first.Spec == Record && KV.first.MBucket == Bucket && identityMatches(KV.first, Device))
        return &KV.second;
  return nullptr;
}

llvm::Error TuningDb::save(llvm::StringRef Path) {
  llvm::StringRef Dir = llvm::sys::path::parent_path(Path);
  if (Dir.empty())
    Dir = ".";
  if (llvm::Error E = fileio::makeDirectories(Dir))
    return makeError(Errc::CacheFailed, "cannot create the tuning database directory: " +
                                            llvm::toString(std::move(E)));
  // NOTE: the lock only orders this node's savers; savers on other nodes can still interleave
  // their read-merge-rename windows, and then the later rename wins.
  // The lock key: sha256 of "tuning:<path>" (KeyLock takes 64 hex digits, as cache keys).
  auto Lock = KeyLock::acquire(KeyLock::defaultDirectory(), sha256Hex(("tuning:" + Path).str()),
                               std::chrono::seconds(10));
  if (!Lock)
    return Lock.takeError();
  if (llvm::sys::fs::exists(Path)) {
    auto OnDisk = loadStrict(Path);
    if (OnDisk) {
      TuningDb Merged = std::move(*OnDisk);
      Merged.merge(*this);
      Entries = std::move(Merged.Entries);
    } else {
      llvm::consumeError(OnDisk.takeError()); // a corrupt file is replaced
    }
  }
  std::string Temp = fileio::uniqueName(Dir, ".tmp-tuning");
  if (llvm::Error E = fileio::writeFileDurably(Temp, toJson())) {
    fileio::removeTree(Temp);
    return E;
  }
  if (std::rename(Temp.c_str(), Path.str().c_str()) != 0) {
    int Errno = errno;
    fileio::removeTree(Temp);
    return fileio::errnoError("cannot rename the tuning database into place", Path, Errno);
  }
  return fileio::syncDirectory(Dir);
}

llvm::Expected<DeviceIdentity> currentDeviceIdentity() {
  auto CurrentDevice = currentDevice();
  if (!CurrentDevice)
    return CurrentDevice.takeError();
  const CUdevice Device = *CurrentDevice;
  const DriverApi &Api = *driverApi();
  static std::mutex Lock;
  static std::unordered_map<int, DeviceIdentity> Known;
  std::lock_guard<std::mutex> Guard(Lock);
  auto It = Known.find(int(Device));
  if (It != Known.end())
    return It->second;
  DeviceIdentity Id;
  char Name[256] = {0};
  if (llvm::Error E = checkCuda(Api.cuDeviceGetName(Name, sizeof Name - 1, Device), "cuDeviceGetName"))
    return std::move(E);
  Id.GpuName = Name;
  if (llvm::Error E = checkCuda(Api.cuDeviceGetAttribute(&Id.SmCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, Device),
                                "cuDeviceGetAttribute(multiprocessor count)"))
    return std::move(E);
  if (llvm::Error E = checkCuda(Api.cuDriverGetVersion(&Id.DriverVersion), "cuDriverGetVersion"))
    return std::move(E);
  auto Arch = currentDeviceArch();
  if (!Arch)
    return Arch.takeError();
  Id.Arch = *Arch;
  Id.NvrtcVersion = nvrtcVersionString();
  Known[int(Device)] = Id;
  return Id;
}

TileConfig untunedTile(const KernelSpec &Spec, int64_t M) {
  if (M < 1 || !defaultTileFollowsGrid(Spec))
    return defaultTileConfig(Spec);
  auto Shape = currentSmShape();
  if (!Shape) {
    llvm::consumeError(Shape.takeError());
    return defaultTileConfig(Spec);
  }
  return defaultTileForGrid(Spec, M, *Shape);
}

llvm::Expected<TileChoice> chooseTile(const TuningDb &Db, const KernelSpec &Spec,
                                      const DeviceIdentity &Device, int64_t M) {
  TileChoice Choice;
  Choice.Tile = untunedTile(Spec, M);
  Choice.Reason = "heuristic (no tuning DB entry)";
  if (Db.empty()) {
    Choice.Reason = "heuristic (no tuning DB)";
    return Choice;
  }
  const TuningEntry *Entry = Db.lookup(Spec, Device, M);
  if (!Entry)
    return Choice;
  std::vector<TileConfig> Candidates = tileCandidates(Spec);
  const TileConfig &W = Entry->Winner;
  bool Known = std::find(Candidates.begin(), Candidates.end(), W) != Candidates.end();
  if (!Known) {
    Choice.Reason = "heuristic (the tuning DB winner threads=" + std::to_string(W.Threads) +
                    " vec=" + std::to_string(W.Vec) + " rows=" + std::to_string(W.Rows) +
                    " is not a candidate of this mhcjit; re-tune)";
    return Choice;
  }
  Choice.Tile = W;
  Choice.FromDb = true;
  Choice.Reason = "tuning DB hit " + Entry->Key.str();
  return Choice;
}

std::string runtimeTuningDbPath(const RuntimeOptions &Options) {
  if (!Options.TuningDbPath.empty())
    return Options.TuningDbPath;
  return Options.CacheDir.empty() ? std::string() : TuningDb::defaultPath(Options.CacheDir);
}

const TuningDb &runtimeTuningDb() {
  static std::once_flag Once;
  static std::unique_ptr<TuningDb> Db;
  std::call_once(Once, [] {
    const RuntimeOptions &Options = runtimeOptions();
    std::string Path = runtimeTuningDbPath(Options);
    Db = std::make_unique<TuningDb>(Path.empty() ? TuningDb() : TuningDb::load(Path, Options.Warn));
  });
  return *Db;
}

llvm::Expected<TileChoice> chooseTile(const KernelSpec &Spec, const DeviceIdentity &Device, int64_t M) {
  return chooseTile(runtimeTuningDb(), Spec, Device, M);
}

namespace {

/// A memo of the runtime's choices, so a launch with a tuning DB costs one hash lookup.
struct ChoiceKey {
  KernelSpec Spec;
  int64_t Bucket;
  std::string GpuName;
  int SmCount;
  bool operator==(const ChoiceKey &O) const {
    return Spec == O.Spec && Bucket == O.Bucket && GpuName == O.GpuName && SmCount == O.SmCount;
  }
};
struct ChoiceKeyHash {
  size_t operator()(const ChoiceKey &K) const {
    return specHash(K.Spec) ^ std::hash<std::string>()(K.GpuName) ^ size_t(K.Bucket * 31 + K.SmCount);
  }
};

} // namespace

TileConfig runtimeTile(const KernelSpec &Spec, int64_t M) {
  // NOTE: the tuner's forced candidate comes first: it is timing exactly that tile.
  if (llvm::Optional<TileConfig> Forced = forcedTile(Spec))
    return *Forced;
  const TuningDb &Db = runtimeTuningDb();
  // M < 1 is a spec query (inspect, prewarm, specFor), never a launch: nothing to tune there
  const bool Autotune = runtimeOptions().Autotune && M >= 1;
  if (Db.empty() && !Autotune)
    return untunedTile(Spec, M);
  // NOTE: no device (prewarm, inspect without a GPU) means no identity to match: the heuristic.
  auto Device = currentDeviceIdentity();
  if (!Device) {
    llvm::consumeError(Device.takeError());
    return defaultTileConfig(Spec);
  }
  // A bucket's tuned tile, or none: the untuned tile follows the call's own M (untunedTile).
  static std::mutex Lock;
  static std::unordered_map<ChoiceKey, llvm::Optional<TileConfig>, ChoiceKeyHash> Memo;
  KernelSpec Untiled = Spec;
  Untiled.Tile = TileConfig{0, 0, 0};
  ChoiceKey Key{Untiled, tuningMBucket(Spec, M), Device->GpuName, Device->SmCount};
  {
    std::lock_guard<std::mutex> Guard(Lock);
    auto It = Memo.find(Key);
    if (It != Memo.end())
      return It->second ? *It->second : untunedTile(Spec, M);
  }
  llvm::Optional<TileConfig> Tuned;
  auto Choice = chooseTile(Db, Spec, *Device, M);
  if (Choice && Choice->FromDb)
    Tuned = Choice->Tile;
  else if (!Choice)
    llvm::consumeError(Choice.takeError());
  if (Autotune && !Tuned) {
    // MHCJIT_AUTOTUNE=1 and no usable entry: tune now (once per spec and bucket)
    auto Winner = autotuneOnFirstUse(Spec, *Device, M);
    if (Winner) {
      Tuned = *Winner;
    } else if (const auto &Warn = runtimeOptions().Warn) {
      Warn("MHCJIT_AUTOTUNE: tuning " + specLabel(Spec) + " failed, using the heuristic tile: " +
           llvm::toString(Winner.takeError()));
    } else {
      llvm::consumeError(Winner.takeError());
    }
  }
  std::lock_guard<std::mutex> Guard(Lock);
  Memo.emplace(std::move(Key), Tuned);
  return Tuned ? *Tuned : untunedTile(Spec, M);
}

} // namespace mhcjit
