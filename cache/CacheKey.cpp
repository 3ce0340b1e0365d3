// mhcjit cache: the canonical text of a cache key record, its parser, and the sha256 key.
// One "field=value" line per ingredient in a fixed order; the key hashes exactly that text.
#include "mhcjit/CacheKey.h"

#include "mhcjit/Sha256.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"

namespace mhcjit {

namespace {

// NOTE: values are escaped ("\\" -> "\\\\", newline -> "\\n", carriage return -> "\\r") so that
// no value can forge a line of its own: without it, the single option "a\noption=b" and the two
// options "a", "b" would render, and hash, identically. Ordinary values contain none of these
// characters and render unchanged.
std::string escapeValue(llvm::StringRef Value) {
  std::string Out;
  Out.reserve(Value.size());
  for (char C : Value) {
    switch (C) {
    case '\\': Out += "\\\\"; break;
    case '\n': Out += "\\n"; break;
    case '\r': Out += "\\r"; break;
    default: Out += C; break;
    }
  }
  return Out;
}

/// The inverse of escapeValue(); false on a dangling or unknown escape.
bool unescapeValue(llvm::StringRef Value, std::string &Out) {
  Out.clear();
  for (size_t I = 0; I < Value.size(); ++I) {
    if (Value[I] != '\\') {
      Out += Value[I];
      continue;
    }
    if (++I == Value.size())
      return false;
    switch (Value[I]) {
    case '\\': Out += '\\'; break;
    case 'n': Out += '\n'; break;
    case 'r': Out += '\r'; break;
    default: return false;
    }
  }
  return true;
}

void appendLine(std::string &Text, llvm::StringRef Field, llvm::StringRef Value) {
  Text += Field;
  Text += '=';
  Text += escapeValue(Value);
  Text += '\n';
}

/// Walks the lines of a rendered record, remembering the 1-based number of the current one.
class LineReader {
public:
  explicit LineReader(llvm::StringRef Text) {
    // NOTE: the rendering ends every line with '\n'; a missing final newline is tolerated, so
    // a record pasted by hand still parses. The split then leaves no empty trailing piece.
    if (Text.endswith("\n"))
      Text = Text.drop_back();
    if (!Text.empty())
      Text.split(Lines, '\n', /*MaxSplit=*/-1, /*KeepEmpty=*/true);
  }

  bool atEnd() const { return Next == Lines.size(); }
  size_t lineNumber() const { return Next; }
  llvm::StringRef peek() const { return Lines[Next]; }
  llvm::StringRef take() { return Lines[Next++]; }

private:
  llvm::SmallVector<llvm::StringRef, 16> Lines;
  size_t Next = 0;
};

llvm::Error badLine(size_t LineNumber, llvm::StringRef Line, const llvm::Twine &Why) {
  return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                 "cache key record line " + llvm::Twine(LineNumber) + " ('" +
                                     Line + "'): " + Why);
}

/// Reads the next line, which must be "<Field>=<value>", into Value (unescaped).
llvm::Error expectField(LineReader &Reader, llvm::StringRef Field, std::string &Value) {
  if (Reader.atEnd())
    return llvm::createStringError(std::make_error_code(std::errc::invalid_argument),
                                   "cache key record ends after line " +
                                       llvm::Twine(Reader.lineNumber()) + ", expected a '" +
                                       Field + "=' line");
  llvm::StringRef Line = Reader.take();
  size_t Number = Reader.lineNumber();
  std::pair<llvm::StringRef, llvm::StringRef> Parts = Line.split('=');
  if (Parts.first != Field || !Line.contains('='))
    return badLine(Number, Line, "expected a '" + Field + "=' line");
  if (!unescapeValue(Parts.second, Value))
    return badLine(Number, Line, "bad backslash escape in the value");
  return llvm::Error::success();
}

} // namespace

std::string renderKeyRecord(const CacheKeyRecord &Record) {
  std::string Text;
  appendLine(Text, "schema", std::to_string(Record.SchemaVersion));
  appendLine(Text, "generator", Record.GeneratorVersion);
  appendLine(Text, "templates", Record.TemplatesDigest);
  appendLine(Text, "spec", Record.SpecRecord);
  appendLine(Text, "name", Record.NameExpression);
  appendLine(Text, "nvrtc", Record.NvrtcVersion);
  for (const std::string &Option : Record.Options)
    appendLine(Text, "option", Option);
  appendLine(Text, "arch", Record.Arch);
  return Text;
}

llvm::Expected<CacheKeyRecord> parseKeyRecord(llvm::StringRef Text) {
  CacheKeyRecord Record;
  LineReader Reader(Text);

  std::string Schema;
  if (llvm::Error E = expectField(Reader, "schema", Schema))
    return std::move(E);
  if (llvm::StringRef(Schema).getAsInteger(10, Record.SchemaVersion))
    return badLine(1, "schema=" + escapeValue(Schema), "the schema version is not an integer");

  if (llvm::Error E = expectField(Reader, "generator", Record.GeneratorVersion))
    return std::move(E);
  if (llvm::Error E = expectField(Reader, "templates", Record.TemplatesDigest))
    return std::move(E);
  if (llvm::Error E = expectField(Reader, "spec", Record.SpecRecord))
    return std::move(E);
  if (llvm::Error E = expectField(Reader, "name", Record.NameExpression))
    return std::move(E);
  if (llvm::Error E = expectField(Reader, "nvrtc", Record.NvrtcVersion))
    return std::move(E);

  while (!Reader.atEnd() && Reader.peek().startswith("option=")) {
    std::string Option;
    if (llvm::Error E = expectField(Reader, "option", Option))
      return std::move(E);
    Record.Options.push_back(std::move(Option));
  }

  if (llvm::Error E = expectField(Reader, "arch", Record.Arch))
    return std::move(E);
  if (!Reader.atEnd()) {
    size_t Number = Reader.lineNumber() + 1;
    return badLine(Number, Reader.take(), "unexpected line after 'arch='");
  }
  return Record;
}

std::string cacheKey(const CacheKeyRecord &Record) {
  return sha256Hex(renderKeyRecord(Record));
}

} // namespace mhcjit
