// A real SoftHSM2 token in a test's temp dir, for the PKCS#11 backend's tests (tests/pkcs11) and
// the rotate integration test: its own softhsm2.conf (directories.tokendir = <dir>/tokens,
// objectstore.backend = file), a token initialised with softhsm2-util, opensc's pkcs11-tool for
// operator actions (keygen, delete, list), and the modules' paths (remote-kms-apis.md §4b.1).
#ifndef KMSP_TESTS_PKCS11_SOFTHSM_FIXTURE_H_
#define KMSP_TESTS_PKCS11_SOFTHSM_FIXTURE_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "tests/integration/itest_util.h"
#include "tests/integration/plugin_process.h"

namespace kmsplugin::testing {

inline constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr char kPkcs11SpyModule[] = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";
inline constexpr char kPkcs11Tool[] = "/usr/bin/pkcs11-tool";
inline constexpr char kSoftHsmUtil[] = "/usr/bin/softhsm2-util";

class SoftHsmToken {
 public:
  static constexpr char kDefaultPin[] = "1234";
  static constexpr char kSoPin[] = "5678";

  // Writes <dir>/softhsm2.conf and initialises a token labelled `label` with user PIN `pin`.
  static absl::StatusOr<SoftHsmToken> Create(const std::string& dir,
                                             const std::string& label = "kms-test",
                                             const std::string& pin = kDefaultPin) {
    SoftHsmToken t;
    t.dir_ = dir;
    t.conf_ = dir + "/softhsm2.conf";
    t.label_ = label;
    t.pin_ = pin;
    if (absl::Status s = MakeDir(dir + "/tokens"); !s.ok()) return s;
    std::string conf = fmt::format(
        "directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
    if (absl::Status s = WriteFile(t.conf_, conf); !s.ok()) return s;
    if (absl::Status s = t.InitToken(label, pin); !s.ok()) return s;
    return t;
  }

  const std::string& conf() const { return conf_; }
  const std::string& label() const { return label_; }
  const std::string& pin() const { return pin_; }
  // "SOFTHSM2_CONF=<conf>" for a child process.
  std::vector<std::string> Env() const { return {"SOFTHSM2_CONF=" + conf_}; }
  // For this process (the in-process tests load the module themselves), set between tests while
  // no other thread reads the environment.
  void SetProcessEnv() const {
    setenv("SOFTHSM2_CONF", conf_.c_str(), 1);  // NOLINT(concurrency-mt-unsafe): see above.
  }

  // Another token in the same SoftHSM (same conf).
  absl::Status InitToken(const std::string& label, const std::string& pin) const {
    return Run(kSoftHsmUtil,
               {"--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", kSoPin})
        .status();
  }

  // A 0600 file in the dir holding `pin` and a newline.
  absl::StatusOr<std::string> WritePinFile(const std::string& name, const std::string& pin) const {
    const std::string path = dir_ + "/" + name;
    if (absl::Status s = WriteFile(path, pin + "\n", 0600); !s.ok()) return s;
    return path;
  }

  // pkcs11-tool on this token, logged in; its output, or an error with the output.
  absl::StatusOr<std::string> Tool(std::vector<std::string> args) const {
    std::vector<std::string> all = {
        "--module", kSoftHsmModule, "--token-label", label_, "--login", "--pin", pin_};
    all.insert(all.end(), args.begin(), args.end());
    return Run(kPkcs11Tool, all);
  }

  // An operator's key: pkcs11-tool --keygen --key-type AES:32 --label L --id ID --sensitive
  // --private, plus `extra` (e.g. "--extractable").
  absl::Status KeyGen(const std::string& key_label, const std::string& id_hex,
                      std::vector<std::string> extra = {}, bool sensitive = true) const {
    std::vector<std::string> args = {"--keygen", "--key-type", "AES:32", "--label",
                                     key_label,  "--id",       id_hex,   "--private"};
    if (sensitive) args.emplace_back("--sensitive");
    args.insert(args.end(), extra.begin(), extra.end());
    return Tool(args).status();
  }

  absl::Status DeleteKey(const std::string& id_hex) const {
    return Tool({"--delete-object", "--type", "secrkey", "--id", id_hex}).status();
  }

  // The CKA_IDs (hex) of the secret keys labelled `key_label`.
  absl::StatusOr<std::vector<std::string>> KeyIds(const std::string& key_label) const {
    absl::StatusOr<std::string> out = Tool({"--list-objects", "--type", "secrkey"});
    if (!out.ok()) return out.status();
    std::vector<std::string> ids;
    bool ours = false;
    for (absl::string_view line : absl::StrSplit(*out, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (absl::ConsumePrefix(&line, "label:")) {
        ours = absl::StripAsciiWhitespace(line) == key_label;
      } else if (ours && absl::ConsumePrefix(&line, "ID:")) {
        ids.emplace_back(absl::StripAsciiWhitespace(line));
      }
    }
    return ids;
  }

  // CK_TOKEN_INFO.serialNumber, from pkcs11-tool -L.
  absl::StatusOr<std::string> Serial() const {
    absl::StatusOr<std::string> out = Run(kPkcs11Tool, {"--module", kSoftHsmModule, "-L"});
    if (!out.ok()) return out.status();
    bool ours = false;
    for (absl::string_view line : absl::StrSplit(*out, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (absl::ConsumePrefix(&line, "token label")) {
        ours = FieldValue(line) == label_;
      } else if (ours && absl::ConsumePrefix(&line, "serial num")) {
        return std::string(FieldValue(line));
      }
    }
    return absl::NotFoundError("no serial for token " + label_ + " in:\n" + *out);
  }

  // Runs a tool with this token's conf; its stdout+stderr.
  absl::StatusOr<std::string> Run(const std::string& binary,
                                  const std::vector<std::string>& args) const {
    static int n = 0;
    ProcessOptions p;
    p.binary = binary;
    p.args = args;
    p.env = Env();
    p.stdout_path = fmt::format("{}/tool-{}.out", dir_, ++n);
    p.stderr_path = p.stdout_path;
    absl::StatusOr<ExitInfo> exit = Subprocess::Run(p, absl::Seconds(60));
    if (!exit.ok()) return exit.status();
    std::string out = ReadFile(p.stdout_path).value_or("");
    if (!exit->exited || exit->code != 0) {
      return absl::InternalError(fmt::format("{} {} failed ({}):\n{}", binary, fmt::join(args, " "),
                                             exit->ToString(), out));
    }
    return out;
  }

 private:
  // "   : value" -> "value".
  static absl::string_view FieldValue(absl::string_view rest) {
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumePrefix(&rest, ":");
    return absl::StripAsciiWhitespace(rest);
  }

  static absl::Status MakeDir(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    return ec ? absl::InternalError("cannot create " + path + ": " + ec.message())
              : absl::OkStatus();
  }

  std::string dir_;
  std::string conf_;
  std::string label_;
  std::string pin_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_PKCS11_SOFTHSM_FIXTURE_H_
