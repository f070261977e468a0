// Pkcs11Module: one PKCS#11 module (a token vendor's .so) loaded with dlopen, its function list,
// and the names and classes of its return codes. Facts: remote-kms-apis.md §4b.
//
// The header is p11-kit's pkcs11.h (libp11-kit-dev) in its CRYPTOKI_GNU form: `struct ck_foo` and
// `ck_foo_t` types and lower-case members, so no OASIS compatibility macro (`value`, `count`,
// `params`, ...) leaks into code that includes this file. Constants (CKR_*, CKA_*, CKM_*) and the
// function-list member names (C_Initialize, ...) are the standard ones.
#ifndef KMSP_KMS_PKCS11_PKCS11_MODULE_H_
#define KMSP_KMS_PKCS11_PKCS11_MODULE_H_

#ifndef CRYPTOKI_GNU
#define CRYPTOKI_GNU 1
#endif
#include <p11-kit/pkcs11.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kmsplugin::pkcs11 {

// "CKR_PIN_INCORRECT (0xa0)"; "CKR 0x8000001f" for a code it does not know.
std::string CkrName(ck_rv_t rv);

// The classes of return codes that the backend recovers from (remote-kms-apis.md §4b.6).
// The session is gone: open another one and retry once (0xB3, 0xB0).
bool IsSessionLost(ck_rv_t rv);
// The token or the module's state is gone, or a handle went stale (token removed or re-initialised,
// someone called C_Finalize, a logout invalidated private handles): C_Finalize + C_Initialize,
// find the slot by label again, log in, re-find the keys, retry once
// (0x82, 0x60, 0x32, 0xE0, 0xE1, 0x30, 0x3, 0x190, 0x101).
bool IsTokenLost(ck_rv_t rv);
// Transient resource shortage (0x31, 0xB1, 0x6): an outage.
bool IsTransient(ck_rv_t rv);

// A blank-padded fixed-size PKCS#11 text field (CK_TOKEN_INFO.label, .serialNumber) without its
// padding (trailing blanks and NULs).
std::string PaddedText(const unsigned char* field, size_t size);

class Pkcs11Module {
 public:
  // dlopen()s `path` (RTLD_NOW | RTLD_LOCAL) and gets its function list. INVALID_ARGUMENT when the
  // file cannot be loaded or has no C_GetFunctionList (the dlerror text, which names the path, is
  // in the message). The library stays loaded for the life of the process (modules register
  // atexit handlers and threads; dlclose() under them is unsafe).
  static absl::StatusOr<std::unique_ptr<Pkcs11Module>> Load(const std::string& path);
  // Wraps a function list the caller keeps alive (tests: a real module's list with some entries
  // replaced).
  static std::unique_ptr<Pkcs11Module> FromFunctionList(struct ck_function_list* functions,
                                                        std::string path);

  // C_Finalize if this object initialised the module.
  ~Pkcs11Module();
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  struct ck_function_list* f() const {
    return functions_;
  }
  const std::string& path() const { return path_; }

  // C_Initialize with CKF_OS_LOCKING_OK. CKR_CRYPTOKI_ALREADY_INITIALIZED is fine: someone else in
  // the process owns the module (it is then never finalised by us). UNAVAILABLE otherwise.
  absl::Status Initialize();
  // C_Finalize (if we own the initialisation) then C_Initialize: every session and handle of the
  // module becomes invalid. Callers make sure no call is in flight.
  absl::Status Reinitialize();
  // Whether this object's C_Initialize succeeded (false: the module was already initialised).
  bool owns_initialization() const { return owns_; }

 private:
  Pkcs11Module(struct ck_function_list* functions, std::string path)
      : functions_(functions), path_(std::move(path)) {}

  struct ck_function_list* functions_;
  std::string path_;
  bool initialized_ = false;
  bool owns_ = false;
};

}  // namespace kmsplugin::pkcs11

#endif  // KMSP_KMS_PKCS11_PKCS11_MODULE_H_
