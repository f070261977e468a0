// In-process helpers of the PKCS#11 unit tests: the real SoftHSM function list (the same one the
// backend's dlopen gets), a counting/faulting copy of it to hand to the backend, and a key import
// (C_CreateObject) for the golden vector.
#ifndef KMSP_TESTS_PKCS11_PKCS11_TEST_UTIL_H_
#define KMSP_TESTS_PKCS11_PKCS11_TEST_UTIL_H_

#include <dlfcn.h>

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "kms/pkcs11/pkcs11_module.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace kmsplugin::testing {

// SoftHSM's function list (loaded once; dlopen of the same path shares the module's state).
inline struct ck_function_list* SoftHsmFunctions() {
  static struct ck_function_list* f = [] {
    void* h = dlopen(kSoftHsmModule, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) return static_cast<struct ck_function_list*>(nullptr);
    using Get = ck_rv_t (*)(struct ck_function_list**);
    auto get = reinterpret_cast<Get>(dlsym(h, "C_GetFunctionList"));
    struct ck_function_list* list = nullptr;
    if (get == nullptr || get(&list) != CKR_OK)
      return static_cast<struct ck_function_list*>(nullptr);
    return list;
  }();
  return f;
}

// Counts and faults injected through a copy of SoftHSM's function list.
struct Pkcs11Counters {
  std::atomic<int> logins{0};
  std::atomic<int> crypto{0};  // C_Encrypt(Init), C_Decrypt(Init), C_WrapKey, C_UnwrapKey.
  std::atomic<int> finds{0};   // C_FindObjectsInit.
  std::atomic<unsigned long> login_rv{CKR_OK};  // Non-OK: C_Login returns it without calling.
  std::atomic<bool> pin_locked_flag{false};     // C_GetTokenInfo adds CKF_USER_PIN_LOCKED.
  std::atomic<bool> no_gcm{false};  // C_GetMechanismInfo(CKM_AES_GCM) says CKR_MECHANISM_INVALID.
  void Reset() {
    logins = 0;
    crypto = 0;
    finds = 0;
    login_rv = CKR_OK;
    pin_locked_flag = false;
    no_gcm = false;
  }
};

inline Pkcs11Counters& Counters() {
  static Pkcs11Counters c;
  return c;
}

// A copy of SoftHSM's function list whose entries count (and may fault) before calling the real
// ones. Hand it to the backend with Pkcs11Module::FromFunctionList.
inline struct ck_function_list* CountingFunctions() {
  static struct ck_function_list list = [] {
    struct ck_function_list l = *SoftHsmFunctions();
    l.C_Login = [](ck_session_handle_t s, ck_user_type_t u, unsigned char* pin,
                   unsigned long len) -> ck_rv_t {
      ++Counters().logins;
      if (Counters().login_rv != CKR_OK) return Counters().login_rv;
      return SoftHsmFunctions()->C_Login(s, u, pin, len);
    };
    l.C_GetTokenInfo = [](ck_slot_id_t slot, struct ck_token_info* info) -> ck_rv_t {
      ck_rv_t rv = SoftHsmFunctions()->C_GetTokenInfo(slot, info);
      if (rv == CKR_OK && Counters().pin_locked_flag) info->flags |= CKF_USER_PIN_LOCKED;
      return rv;
    };
    l.C_GetMechanismInfo = [](ck_slot_id_t slot, ck_mechanism_type_t type,
                              struct ck_mechanism_info* info) -> ck_rv_t {
      if (type == CKM_AES_GCM && Counters().no_gcm) return CKR_MECHANISM_INVALID;
      return SoftHsmFunctions()->C_GetMechanismInfo(slot, type, info);
    };
    l.C_FindObjectsInit = [](ck_session_handle_t s, struct ck_attribute* t,
                             unsigned long n) -> ck_rv_t {
      ++Counters().finds;
      return SoftHsmFunctions()->C_FindObjectsInit(s, t, n);
    };
    l.C_EncryptInit = [](ck_session_handle_t s, struct ck_mechanism* m,
                         ck_object_handle_t k) -> ck_rv_t {
      ++Counters().crypto;
      return SoftHsmFunctions()->C_EncryptInit(s, m, k);
    };
    l.C_DecryptInit = [](ck_session_handle_t s, struct ck_mechanism* m,
                         ck_object_handle_t k) -> ck_rv_t {
      ++Counters().crypto;
      return SoftHsmFunctions()->C_DecryptInit(s, m, k);
    };
    l.C_WrapKey = [](ck_session_handle_t s, struct ck_mechanism* m, ck_object_handle_t k,
                     ck_object_handle_t o, unsigned char* out, unsigned long* n) -> ck_rv_t {
      ++Counters().crypto;
      return SoftHsmFunctions()->C_WrapKey(s, m, k, o, out, n);
    };
    l.C_UnwrapKey = [](ck_session_handle_t s, struct ck_mechanism* m, ck_object_handle_t k,
                       unsigned char* in, unsigned long n, struct ck_attribute* t, unsigned long tn,
                       ck_object_handle_t* o) -> ck_rv_t {
      ++Counters().crypto;
      return SoftHsmFunctions()->C_UnwrapKey(s, m, k, in, n, t, tn, o);
    };
    return l;
  }();
  return &list;
}

// Imports `value` as a token AES key (sensitive, not extractable, private) labelled `label` with
// CKA_ID `id`, through its own C_Initialize/C_Finalize (call with no backend alive).
inline absl::Status ImportAesKey(const std::string& token_label, const std::string& pin,
                                 const std::string& label, const std::string& id,
                                 const std::string& value) {
  struct ck_function_list* f = SoftHsmFunctions();
  if (f == nullptr) return absl::InternalError("cannot load SoftHSM");
  struct ck_c_initialize_args args = {};
  args.flags = CKF_OS_LOCKING_OK;
  if (ck_rv_t rv = f->C_Initialize(&args); rv != CKR_OK) {
    return absl::InternalError(fmt::format("C_Initialize: {}", pkcs11::CkrName(rv)));
  }
  auto fail = [&](const char* call, ck_rv_t rv) {
    f->C_Finalize(nullptr);
    return absl::InternalError(fmt::format("{}: {}", call, pkcs11::CkrName(rv)));
  };
  ck_slot_id_t slots[16];
  unsigned long n = 16;
  if (ck_rv_t rv = f->C_GetSlotList(1, slots, &n); rv != CKR_OK) return fail("C_GetSlotList", rv);
  for (unsigned long i = 0; i < n; ++i) {
    struct ck_token_info info = {};
    if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK ||
        pkcs11::PaddedText(info.label, sizeof(info.label)) != token_label) {
      continue;
    }
    ck_session_handle_t s = 0;
    ck_rv_t rv =
        f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &s);
    if (rv != CKR_OK) return fail("C_OpenSession", rv);
    rv = f->C_Login(s, CKU_USER, reinterpret_cast<unsigned char*>(const_cast<char*>(pin.data())),
                    pin.size());
    if (rv != CKR_OK) return fail("C_Login", rv);
    ck_object_class_t cls = CKO_SECRET_KEY;
    ck_key_type_t type = CKK_AES;
    unsigned char yes = 1, no = 0;
    struct ck_attribute t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                               {CKA_KEY_TYPE, &type, sizeof(type)},
                               {CKA_TOKEN, &yes, 1},
                               {CKA_PRIVATE, &yes, 1},
                               {CKA_SENSITIVE, &yes, 1},
                               {CKA_EXTRACTABLE, &no, 1},
                               {CKA_ENCRYPT, &yes, 1},
                               {CKA_DECRYPT, &yes, 1},
                               {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
                               {CKA_ID, const_cast<char*>(id.data()), id.size()},
                               {CKA_VALUE, const_cast<char*>(value.data()), value.size()}};
    ck_object_handle_t obj = 0;
    rv = f->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &obj);
    if (rv != CKR_OK) return fail("C_CreateObject", rv);
    f->C_Finalize(nullptr);
    return absl::OkStatus();
  }
  f->C_Finalize(nullptr);
  return absl::NotFoundError("no token " + token_label);
}

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_PKCS11_PKCS11_TEST_UTIL_H_
