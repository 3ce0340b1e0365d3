// mhcjit cache: manifest.json of a cache entry, written and read with llvm::json.
// Reading is strict: every field must be present with its type, or the entry is rejected.
#include "Manifest.h"

#include "mhcjit/Sha256.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

namespace mhcjit {

namespace {

namespace json = llvm::json;

// NOTE: json::Value silently replaces invalid UTF-8 (and asserts in debug builds); the compile
// log is informational, so it is repaired explicitly here rather than by surprise.
json::Value text(llvm::StringRef S) {
  if (json::isUTF8(S))
    return S.str();
  return json::fixUTF8(S);
}

json::Object recordToJson(const CacheKeyRecord &R) {
  json::Array Options;
  for (const std::string &Option : R.Options)
    Options.push_back(text(Option));
  return json::Object{
      {"schema", R.SchemaVersion},      {"generator", text(R.GeneratorVersion)},
      {"templates", text(R.TemplatesDigest)}, {"spec", text(R.SpecRecord)},
      {"name", text(R.NameExpression)}, {"nvrtc", text(R.NvrtcVersion)},
      {"options", std::move(Options)},  {"arch", text(R.Arch)},
  };
}

json::Object resourcesToJson(const KernelResources &K) {
  return json::Object{
      {"registers", K.Registers},       {"spill_store_bytes", K.SpillStoreBytes},
      {"spill_load_bytes", K.SpillLoadBytes}, {"shared_bytes", K.SharedBytes},
      {"stack_bytes", K.StackBytes},    {"constant_bytes", K.ConstantBytes},
  };
}

llvm::Error fieldError(llvm::StringRef Where, llvm::StringRef Field, llvm::StringRef Type) {
  return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                 "manifest field '" + Where + Field + "' is missing or not " +
                                     Type);
}

/// Reads the fields of one JSON object, remembering the first problem.
class FieldReader {
public:
  FieldReader(const json::Object &O, llvm::StringRef Where) : O(O), Where(Where) {}

  void string(llvm::StringRef Field, std::string &Out) {
    if (llvm::Optional<llvm::StringRef> V = O.getString(Field))
      Out = V->str();
    else
      fail(Field, "a string");
  }
  void integer(llvm::StringRef Field, int64_t &Out) {
    if (llvm::Optional<int64_t> V = O.getInteger(Field))
      Out = *V;
    else
      fail(Field, "an integer");
  }
  void integer(llvm::StringRef Field, int &Out) {
    int64_t Wide = 0;
    integer(Field, Wide);
    if (Wide < INT32_MIN || Wide > INT32_MAX)
      fail(Field, "a 32-bit integer");
    Out = static_cast<int>(Wide);
  }
  void number(llvm::StringRef Field, double &Out) {
    if (llvm::Optional<double> V = O.getNumber(Field))
      Out = *V;
    else
      fail(Field, "a number");
  }
  const json::Object *object(llvm::StringRef Field) {
    const json::Object *V = O.getObject(Field);
    if (!V)
      fail(Field, "an object");
    return V;
  }
  const json::Array *array(llvm::StringRef Field) {
    const json::Array *V = O.getArray(Field);
    if (!V)
      fail(Field, "an array");
    return V;
  }
  void fail(llvm::StringRef Field, llvm::StringRef Type) {
    // The first problem is the one reported; the rest are usually its consequences.
    if (!Problem)
      Problem = fieldError(Where, Field, Type);
  }
  llvm::Error takeError() { return std::move(Problem); }

private:
  const json::Object &O;
  llvm::StringRef Where;
  llvm::Error Problem = llvm::Error::success();
};

llvm::Error readRecord(const json::Object &O, CacheKeyRecord &R) {
  FieldReader Reader(O, "record.");
  Reader.integer("schema", R.SchemaVersion);
  Reader.string("generator", R.GeneratorVersion);
  Reader.string("templates", R.TemplatesDigest);
  Reader.string("spec", R.SpecRecord);
  Reader.string("name", R.NameExpression);
  Reader.string("nvrtc", R.NvrtcVersion);
  if (const json::Array *Options = Reader.array("options")) {
    for (const json::Value &Option : *Options) {
      llvm::Optional<llvm::StringRef> S = Option.getAsString();
      if (!S) {
        Reader.fail("options", "an array of strings");
        break;
      }
      R.Options.push_back(S->str());
    }
  }
  Reader.string("arch", R.Arch);
  return Reader.takeError();
}

llvm::Error readResources(const json::Object &O, KernelResources &K) {
  FieldReader Reader(O, "resources.");
  Reader.integer("registers", K.Registers);
  Reader.integer("spill_store_bytes", K.SpillStoreBytes);
  Reader.integer("spill_load_bytes", K.SpillLoadBytes);
  Reader.integer("shared_bytes", K.SharedBytes);
  Reader.integer("stack_bytes", K.StackBytes);
  Reader.integer("constant_bytes", K.ConstantBytes);
  return Reader.takeError();
}

} // namespace

Manifest manifestFor(const CacheEntry &Entry, int64_t CreatedUnix) {
  Manifest M;
  M.Key = Entry.Key;
  M.Record = Entry.Record;
  M.CubinBytes = Entry.Cubin.size();
  M.CubinSha256 = sha256Hex(Entry.Cubin);
  M.LoweredName = Entry.LoweredName;
  M.Resources = Entry.Resources;
  M.CompileLog = Entry.CompileLog;
  M.CompileSeconds = Entry.CompileSeconds;
  M.CreatedUnix = CreatedUnix;
  return M;
}

std::string renderManifest(const Manifest &M) {
  json::Object Root{
      {"key", text(M.Key)},
      {"record", recordToJson(M.Record)},
      {"cubin_bytes", static_cast<int64_t>(M.CubinBytes)},
      {"cubin_sha256", text(M.CubinSha256)},
      {"lowered_name", text(M.LoweredName)},
      {"resources", resourcesToJson(M.Resources)},
      {"compile_log", text(M.CompileLog)},
      {"compile_seconds", M.CompileSeconds},
      {"created_unix", M.CreatedUnix},
  };
  std::string Text;
  llvm::raw_string_ostream OS(Text);
  OS << llvm::formatv("{0:2}", json::Value(std::move(Root))) << '\n';
  OS.flush();
  return Text;
}

llvm::Expected<Manifest> parseManifest(llvm::StringRef Text) {
  llvm::Expected<json::Value> Parsed = json::parse(Text);
  if (!Parsed)
    return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                   "manifest is not valid JSON: " +
                                       llvm::toString(Parsed.takeError()));
  const json::Object *Root = Parsed->getAsObject();
  if (!Root)
    return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                   "manifest is not a JSON object");

  Manifest M;
  FieldReader Reader(*Root, "");
  Reader.string("key", M.Key);
  const json::Object *Record = Reader.object("record");
  int64_t CubinBytes = 0;
  Reader.integer("cubin_bytes", CubinBytes);
  Reader.string("cubin_sha256", M.CubinSha256);
  Reader.string("lowered_name", M.LoweredName);
  const json::Object *Resources = Reader.object("resources");
  Reader.string("compile_log", M.CompileLog);
  Reader.number("compile_seconds", M.CompileSeconds);
  Reader.integer("created_unix", M.CreatedUnix);
  if (llvm::Error E = Reader.takeError())
    return std::move(E);
  if (CubinBytes < 0)
    return fieldError("", "cubin_bytes", "a non-negative integer");
  M.CubinBytes = static_cast<uint64_t>(CubinBytes);
  if (llvm::Error E = readRecord(*Record, M.Record))
    return std::move(E);
  if (llvm::Error E = readResources(*Resources, M.Resources))
    return std::move(E);
  return M;
}

} // namespace mhcjit
