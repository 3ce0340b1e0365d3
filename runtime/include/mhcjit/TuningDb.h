// mhcjit runtime: the persistent tuning database (autotuner winners per spec, GPU and M bucket)
// and the runtime's choice of a tile config from it. A JSON file, written atomically, merged on save.
#pragma once

#include "mhcjit/KernelSpec.h"
#include "mhcjit/RuntimeOptions.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mhcjit {

/// What a tuning result was measured on. An empty GpuName, a zero SmCount or DriverVersion is a
/// wildcard in lookups (tools without a GPU know only the arch and this NVRTC).
struct DeviceIdentity {
  std::string GpuName;  ///< cuDeviceGetName, e.g. "NVIDIA H100 80GB HBM3"
  int SmCount = 0;
  std::string Arch;     ///< e.g. "sm_90a"
  std::string NvrtcVersion;
  int DriverVersion = 0; ///< cuDriverGetVersion, e.g. 13000
};

/// The identity of the current context's device (cached per device); Errc::NoDevice without one.
llvm::Expected<DeviceIdentity> currentDeviceIdentity();

/// M bucket of a tuning entry: 0 (any M) where tileMayDependOnM(Spec) is false or M < 1, else
/// the power of two at or above M. Example: M = 3000 -> 4096; M = 4096 -> 4096.
int64_t tuningMBucket(const KernelSpec &Spec, int64_t M);

/// One entry's identity: the spec without its tile (untiledRecord), the device and the M bucket.
struct TuningKey {
  std::string Spec;
  std::string GpuName;
  int SmCount = 0;
  std::string Arch;
  std::string NvrtcVersion;
  int DriverVersion = 0;
  int64_t MBucket = 0;
  /// One line naming every field: "<spec> | <gpu> | sm=132 | sm_90a | nvrtc 13.0 | driver 13000 | M<=4096"
  std::string str() const;
  bool operator<(const TuningKey &O) const { return str() < O.str(); }
};

/// The key of Spec measured on Device at M.
TuningKey tuningKey(const KernelSpec &Spec, const DeviceIdentity &Device, int64_t M);

/// One candidate's measurement: median and spread (max - min) of its runs, in milliseconds.
struct CandidateTiming {
  TileConfig Tile;
  double MedianMs = 0;
  double SpreadMs = 0;         ///< slowest sample minus fastest
  double QuartileSpreadMs = 0; ///< third quartile of the samples minus the first (0: not known)
};

struct TuningEntry {
  TuningKey Key;
  TileConfig Winner;
  std::vector<CandidateTiming> Timings; ///< in candidate order
  int64_t Timestamp = 0;                ///< seconds since the epoch, when measured
};

/// The slowest median tied with the fastest one: the best median plus the larger of 2% of it and
/// the best candidate's quartile spread. Medians closer than the noise of one run cannot be told
/// apart: a kernel of 11 us times within about 3% from run to run, past a fixed 2% band.
/// Example: medians {1.03, 1.00}, the second's quartile spread 0.04 -> 1.04. 0 for an empty list.
double tieLimitMs(const std::vector<CandidateTiming> &Timings);

/// The index of the winner: the fastest median; candidates up to tieLimitMs() are tied and the
/// first of them in candidate order wins, so every rank picks the same config from slightly
/// different timings. Example: medians {1.01, 1.00, 0.90} -> 2; {1.01, 1.00} -> 0.
/// Errc::InvalidArgument for an empty list.
llvm::Expected<size_t> pickWinner(const std::vector<CandidateTiming> &Timings);

/// The database in memory; load() and save() move it to and from a JSON file:
/// {"schema": 1, "entries": [{"spec", "gpu", "sm_count", "arch", "nvrtc", "driver", "m_bucket",
///   "winner": {"threads", "vec", "rows"}, "timings": [{"threads", "vec", "rows", "median_ms",
///   "spread_ms", "quartile_spread_ms" (optional, 0 where absent)}], "timestamp"}]}, entries sorted by key.
class TuningDb {
public:
  /// <cache root>/tuning/v1.json.
  static std::string defaultPath(llvm::StringRef CacheRoot);

  /// The entries of Path. A missing file is an empty database; an unreadable or corrupt one is
  /// too, after one warning through Warn (never an error: tuning results are only a speed-up).
  static TuningDb load(llvm::StringRef Path, const std::function<void(llvm::StringRef)> &Warn);
  /// The entries of Path, or an error for a missing, unreadable or corrupt file (import).
  static llvm::Expected<TuningDb> loadStrict(llvm::StringRef Path);

  /// Adds or replaces (same key) an entry.
  void record(TuningEntry Entry);
  /// Adds Other's entries; for a key in both, the newer timestamp wins (ties: Other's).
  void merge(const TuningDb &Other);

  /// The entry for Spec on Device at M: the exact M bucket first, then the any-M bucket (0).
  /// Device wildcards (empty name, zero SM count or driver) match any value; among several
  /// matches the first in key order wins.
  const TuningEntry *lookup(const KernelSpec &Spec, const DeviceIdentity &Device, int64_t M) const;

  /// Writes the entries to Path atomically (temporary file, fsync, rename), merged with what is
  /// on disk at that moment (under a node-local lock), so concurrent tuners lose nothing.
  /// Creates the parent directory (0700). The merged result is kept in this object.
  llvm::Error save(llvm::StringRef Path);

  bool empty() const { return Entries.empty(); }
  size_t size() const { return Entries.size(); }
  const std::map<TuningKey, TuningEntry> &entries() const { return Entries; }

  std::string toJson() const;
  static llvm::Expected<TuningDb> fromJson(llvm::StringRef Text);

private:
  std::map<TuningKey, TuningEntry> Entries;
};

/// A tile config and why the runtime uses it.
struct TileChoice {
  TileConfig Tile;
  std::string Reason; ///< "tuning DB hit <key>" or "heuristic (...)"
  bool FromDb = false;
};

/// The tile of a call with M tokens (M < 1: unknown) when no tuning entry applies:
/// defaultTileForGrid on the current device where Spec has several defaultTileChoices and M is
/// known, else (and without a device) defaultTileConfig(Spec).
TileConfig untunedTile(const KernelSpec &Spec, int64_t M);

/// The tile config for Spec on Device at M (M < 1: unknown) from Db: its winner when Db has an
/// entry (and the winner is still a candidate of this mhcjit), else untunedTile(Spec, M).
llvm::Expected<TileChoice> chooseTile(const TuningDb &Db, const KernelSpec &Spec,
                                      const DeviceIdentity &Device, int64_t M);
/// The same with the runtime's database (RuntimeOptions::TuningDbPath, loaded once).
llvm::Expected<TileChoice> chooseTile(const KernelSpec &Spec, const DeviceIdentity &Device, int64_t M);

/// Options.TuningDbPath, else <Options.CacheDir>/tuning/v1.json ("" without a cache dir).
std::string runtimeTuningDbPath(const RuntimeOptions &Options);

/// The runtime's database: loaded once, at first use, from runtimeTuningDbPath(runtimeOptions()).
const TuningDb &runtimeTuningDb();

/// The tile a launch of Spec with M tokens uses (M < 1: a spec query, not a launch), in order:
///  1. the tile a ScopedTileOverride of this thread forces on Spec (the tuner's candidates);
///  2. the heuristic when the runtime's database is empty (the default: no file) and
///     MHCJIT_AUTOTUNE is off, without touching a device;
///  3. chooseTile() for the current device (the heuristic when there is none);
///  4. with MHCJIT_AUTOTUNE=1, M >= 1 and no usable DB entry: autotuneOnFirstUse()'s winner
///     (the heuristic, after a warning, when tuning fails).
/// Choices are memoized per spec, M bucket and device.
TileConfig runtimeTile(const KernelSpec &Spec, int64_t M);

} // namespace mhcjit
