#include "kms/pkcs11/pkcs11_module.h"

#include <dlfcn.h>

#include <utility>

#include "fmt/format.h"

namespace kmsplugin::pkcs11 {
namespace {

struct CkrEntry {
  ck_rv_t rv;
  const char* name;
};

// The codes a KEK backend meets (remote-kms-apis.md §4b.6), plus the common ones.
constexpr CkrEntry kCkrNames[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
};

}  // namespace

std::string CkrName(ck_rv_t rv) {
  for (const CkrEntry& e : kCkrNames) {
    if (e.rv == rv) return fmt::format("{} (0x{:x})", e.name, rv);
  }
  return fmt::format("CKR 0x{:x}", rv);
}

bool IsSessionLost(ck_rv_t rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

bool IsTokenLost(ck_rv_t rv) {
  switch (rv) {
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_ERROR:
    case CKR_SLOT_ID_INVALID:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_USER_NOT_LOGGED_IN:
      return true;
    default:
      return false;
  }
}

bool IsTransient(ck_rv_t rv) {
  return rv == CKR_DEVICE_MEMORY || rv == CKR_SESSION_COUNT || rv == CKR_FUNCTION_FAILED;
}

std::string PaddedText(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

absl::StatusOr<std::unique_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no PKCS#11 module path (--pkcs11-module)");
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::InvalidArgumentError(fmt::format("cannot load the PKCS#11 module {}: {}", path,
                                                  err != nullptr ? err : "dlopen failed"));
  }
  using GetFunctionList = ck_rv_t (*)(struct ck_function_list**);
  auto get = reinterpret_cast<GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  if (get == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("{} is not a PKCS#11 module: it has no C_GetFunctionList", path));
  }
  struct ck_function_list* functions = nullptr;
  ck_rv_t rv = get(&functions);
  if (rv != CKR_OK || functions == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("C_GetFunctionList of {} failed: {}", path, CkrName(rv)));
  }
  return std::unique_ptr<Pkcs11Module>(new Pkcs11Module(functions, path));
}

std::unique_ptr<Pkcs11Module> Pkcs11Module::FromFunctionList(struct ck_function_list* functions,
                                                             std::string path) {
  return std::unique_ptr<Pkcs11Module>(new Pkcs11Module(functions, std::move(path)));
}

Pkcs11Module::~Pkcs11Module() {
  if (initialized_ && owns_) functions_->C_Finalize(nullptr);
}

absl::Status Pkcs11Module::Initialize() {
  struct ck_c_initialize_args args = {};
  args.flags = CKF_OS_LOCKING_OK;
  ck_rv_t rv = functions_->C_Initialize(&args);
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    initialized_ = true;
    owns_ = false;
    return absl::OkStatus();
  }
  if (rv != CKR_OK) {
    return absl::UnavailableError(
        fmt::format("C_Initialize of the PKCS#11 module {} failed: {}", path_, CkrName(rv)));
  }
  initialized_ = true;
  owns_ = true;
  return absl::OkStatus();
}

absl::Status Pkcs11Module::Reinitialize() {
  if (initialized_ && owns_) functions_->C_Finalize(nullptr);
  initialized_ = false;
  owns_ = false;
  return Initialize();
}

}  // namespace kmsplugin::pkcs11
