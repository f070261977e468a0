#include "kms/pkcs11/key_objects.h"

#include "fmt/format.h"

namespace kmsplugin::pkcs11 {
namespace {

using CkUlong = unsigned long;  // CK_ULONG (CRYPTOKI_GNU has no typedef).

// The modules take non-const buffers for inputs they only read.
unsigned char* In(std::string_view bytes) {
  return const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(bytes.data()));
}

struct ck_attribute Attr(ck_attribute_type_t type, void* value, CkUlong size) {
  struct ck_attribute a = {};
  a.type = type;
  a.value = value;
  a.value_len = size;
  return a;
}

unsigned char kTrue = 1;
unsigned char kFalse = 0;

CallResult Fail(ck_rv_t rv, std::string_view call) { return CallResult{rv, call}; }

}  // namespace

CallResult FindKeys(struct ck_function_list* f, ck_session_handle_t session, std::string_view label,
                    FoundKeys* out) {
  ck_object_class_t cls = CKO_SECRET_KEY;
  ck_key_type_t type = CKK_AES;
  struct ck_attribute tmpl[] = {Attr(CKA_CLASS, &cls, sizeof(cls)),
                                Attr(CKA_KEY_TYPE, &type, sizeof(type)),
                                Attr(CKA_LABEL, In(label), label.size())};
  ck_rv_t rv = f->C_FindObjectsInit(session, tmpl, 3);
  if (rv != CKR_OK) return Fail(rv, "C_FindObjectsInit");
  std::vector<ck_object_handle_t> handles;
  while (true) {
    ck_object_handle_t batch[16];
    CkUlong n = 0;
    rv = f->C_FindObjects(session, batch, 16, &n);
    if (rv != CKR_OK || n == 0) break;
    handles.insert(handles.end(), batch, batch + n);
    if (handles.size() > 4096) break;  // Far more versions than anyone keeps.
  }
  ck_rv_t final_rv = f->C_FindObjectsFinal(session);
  if (rv != CKR_OK) return Fail(rv, "C_FindObjects");
  if (final_rv != CKR_OK) return Fail(final_rv, "C_FindObjectsFinal");
  *out = FoundKeys{};
  for (ck_object_handle_t h : handles) {
    unsigned char id[16];
    struct ck_attribute a = Attr(CKA_ID, id, sizeof(id));
    rv = f->C_GetAttributeValue(session, h, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_BUFFER_TOO_SMALL ||
        rv == CKR_ATTRIBUTE_SENSITIVE) {
      ++out->unversioned;
      continue;
    }
    if (rv != CKR_OK) return Fail(rv, "C_GetAttributeValue(CKA_ID)");
    std::optional<uint32_t> version =
        a.value_len <= sizeof(id)
            ? ParseVersionId(std::string_view(reinterpret_cast<const char*>(id), a.value_len))
            : std::nullopt;
    if (!version.has_value()) {
      ++out->unversioned;
      continue;
    }
    if (!out->versions.emplace(*version, h).second) out->duplicates.push_back(*version);
  }
  return CallResult{};
}

CallResult ReadKeyAttributes(struct ck_function_list* f, ck_session_handle_t session,
                             ck_object_handle_t key, KeyAttributes* out) {
  unsigned char sensitive = 0, extractable = 1, encrypt = 0, decrypt = 0, wrap = 0, unwrap = 0,
                is_private = 0;
  CkUlong value_len = 0;
  struct ck_attribute tmpl[] = {
      Attr(CKA_SENSITIVE, &sensitive, 1), Attr(CKA_EXTRACTABLE, &extractable, 1),
      Attr(CKA_ENCRYPT, &encrypt, 1),     Attr(CKA_DECRYPT, &decrypt, 1),
      Attr(CKA_WRAP, &wrap, 1),           Attr(CKA_UNWRAP, &unwrap, 1),
      Attr(CKA_PRIVATE, &is_private, 1),  Attr(CKA_VALUE_LEN, &value_len, sizeof(value_len))};
  ck_rv_t rv = f->C_GetAttributeValue(session, key, tmpl, 8);
  // ATTRIBUTE_TYPE_INVALID / SENSITIVE: the others are filled, the unknown ones marked -1.
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
    return Fail(rv, "C_GetAttributeValue");
  }
  auto flag = [&](int i, unsigned char v, bool unknown) {
    return tmpl[i].value_len == static_cast<CkUlong>(-1) ? unknown : v != 0;
  };
  out->sensitive = flag(0, sensitive, false);
  out->extractable = flag(1, extractable, true);
  out->encrypt = flag(2, encrypt, false);
  out->decrypt = flag(3, decrypt, false);
  out->wrap = flag(4, wrap, false);
  out->unwrap = flag(5, unwrap, false);
  out->is_private = flag(6, is_private, false);
  out->value_len = tmpl[7].value_len == static_cast<CkUlong>(-1) ? 0 : value_len;
  return CallResult{};
}

absl::Status CheckKeyAttributes(const KeyAttributes& a, Mechanism mechanism,
                                std::string_view description) {
  if (a.extractable) {
    return absl::FailedPreconditionError(fmt::format(
        "refusing {}: it is extractable (CKA_EXTRACTABLE true), so the KEK could leave the token; "
        "create it without --extractable (pkcs11-tool --keygen --key-type AES:32 --sensitive "
        "--private)",
        description));
  }
  if (!a.sensitive) {
    return absl::FailedPreconditionError(fmt::format(
        "refusing {}: it is not sensitive (CKA_SENSITIVE false), so its value could be read; "
        "create it with pkcs11-tool --keygen --key-type AES:32 --sensitive --private",
        description));
  }
  if (a.value_len != 32) {
    return absl::FailedPreconditionError(fmt::format(
        "refusing {}: it is an AES key of {} bytes, not AES-256 (32)", description, a.value_len));
  }
  if (mechanism == Mechanism::kAesGcm && (!a.encrypt || !a.decrypt)) {
    return absl::FailedPreconditionError(fmt::format(
        "refusing {}: CKM_AES_GCM needs CKA_ENCRYPT and CKA_DECRYPT true (they are {} and {})",
        description, a.encrypt, a.decrypt));
  }
  if (mechanism == Mechanism::kAesKeyWrapPad && (!a.wrap || !a.unwrap)) {
    return absl::FailedPreconditionError(fmt::format(
        "refusing {}: CKM_AES_KEY_WRAP_PAD needs CKA_WRAP and CKA_UNWRAP true (they are {} and {})",
        description, a.wrap, a.unwrap));
  }
  return absl::OkStatus();
}

CallResult GenerateKey(struct ck_function_list* f, ck_session_handle_t session,
                       std::string_view label, uint32_t version, Mechanism mechanism,
                       ck_object_handle_t* key) {
  ck_object_class_t cls = CKO_SECRET_KEY;
  ck_key_type_t type = CKK_AES;
  CkUlong len = 32;
  const std::string id = EncodeVersionId(version);
  unsigned char* gcm = mechanism == Mechanism::kAesGcm ? &kTrue : &kFalse;
  unsigned char* kwp = mechanism == Mechanism::kAesKeyWrapPad ? &kTrue : &kFalse;
  struct ck_attribute tmpl[] = {Attr(CKA_CLASS, &cls, sizeof(cls)),
                                Attr(CKA_KEY_TYPE, &type, sizeof(type)),
                                Attr(CKA_VALUE_LEN, &len, sizeof(len)),
                                Attr(CKA_TOKEN, &kTrue, 1),
                                Attr(CKA_PRIVATE, &kTrue, 1),
                                Attr(CKA_SENSITIVE, &kTrue, 1),
                                Attr(CKA_EXTRACTABLE, &kFalse, 1),
                                Attr(CKA_MODIFIABLE, &kFalse, 1),
                                Attr(CKA_ENCRYPT, gcm, 1),
                                Attr(CKA_DECRYPT, gcm, 1),
                                Attr(CKA_WRAP, kwp, 1),
                                Attr(CKA_UNWRAP, kwp, 1),
                                Attr(CKA_LABEL, In(label), label.size()),
                                Attr(CKA_ID, In(id), id.size())};
  struct ck_mechanism mech = {CKM_AES_KEY_GEN, nullptr, 0};
  ck_rv_t rv = f->C_GenerateKey(session, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), key);
  if (rv != CKR_OK) return Fail(rv, "C_GenerateKey");
  return CallResult{};
}

namespace {

struct ck_gcm_params GcmParams(std::string_view iv, std::string_view aad) {
  struct ck_gcm_params p = {};
  p.iv_ptr = In(iv);
  p.iv_len = iv.size();
  p.iv_bits = iv.size() * 8;
  p.aad_ptr = In(aad);
  p.aad_len = aad.size();
  p.tag_bits = kGcmTagSize * 8;
  return p;
}

}  // namespace

CallResult GcmEncrypt(struct ck_function_list* f, ck_session_handle_t session,
                      ck_object_handle_t key, std::string_view iv, std::string_view aad,
                      const SecretBytes& plaintext, std::string* out) {
  struct ck_gcm_params params = GcmParams(iv, aad);
  struct ck_mechanism mech = {CKM_AES_GCM, &params, sizeof(params)};
  ck_rv_t rv = f->C_EncryptInit(session, &mech, key);
  if (rv != CKR_OK) return Fail(rv, "C_EncryptInit");
  out->assign(plaintext.size() + kGcmTagSize, '\0');
  CkUlong n = out->size();
  rv = f->C_Encrypt(session, In(plaintext.Reveal()), plaintext.size(),
                    reinterpret_cast<unsigned char*>(out->data()), &n);
  if (rv != CKR_OK) return Fail(rv, "C_Encrypt");
  out->resize(n);
  return CallResult{};
}

CallResult GcmDecrypt(struct ck_function_list* f, ck_session_handle_t session,
                      ck_object_handle_t key, std::string_view iv, std::string_view aad,
                      std::string_view ciphertext, SecretBytes* out) {
  struct ck_gcm_params params = GcmParams(iv, aad);
  struct ck_mechanism mech = {CKM_AES_GCM, &params, sizeof(params)};
  ck_rv_t rv = f->C_DecryptInit(session, &mech, key);
  if (rv != CKR_OK) return Fail(rv, "C_DecryptInit");
  SecretBytes buffer(ciphertext.size());
  CkUlong n = buffer.size();
  rv = f->C_Decrypt(session, In(ciphertext), ciphertext.size(), buffer.RevealMutable(), &n);
  if (rv != CKR_OK) return Fail(rv, "C_Decrypt");
  *out = SecretBytes::CopyFrom(buffer.Reveal().substr(0, n));
  return CallResult{};
}

CallResult KwpWrap(struct ck_function_list* f, ck_session_handle_t session, ck_object_handle_t key,
                   const SecretBytes& plaintext, std::string* out) {
  ck_object_class_t cls = CKO_SECRET_KEY;
  ck_key_type_t type = CKK_GENERIC_SECRET;
  struct ck_attribute tmpl[] = {Attr(CKA_CLASS, &cls, sizeof(cls)),
                                Attr(CKA_KEY_TYPE, &type, sizeof(type)),
                                Attr(CKA_TOKEN, &kFalse, 1),
                                Attr(CKA_PRIVATE, &kTrue, 1),
                                Attr(CKA_SENSITIVE, &kFalse, 1),
                                Attr(CKA_EXTRACTABLE, &kTrue, 1),
                                Attr(CKA_VALUE, In(plaintext.Reveal()), plaintext.size())};
  ck_object_handle_t obj = 0;
  ck_rv_t rv = f->C_CreateObject(session, tmpl, 7, &obj);
  if (rv != CKR_OK) return Fail(rv, "C_CreateObject");
  struct ck_mechanism mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  out->assign(plaintext.size() + 16, '\0');
  CkUlong n = out->size();
  rv = f->C_WrapKey(session, &mech, key, obj, reinterpret_cast<unsigned char*>(out->data()), &n);
  f->C_DestroyObject(session, obj);
  if (rv != CKR_OK) return Fail(rv, "C_WrapKey");
  out->resize(n);
  return CallResult{};
}

CallResult KwpUnwrap(struct ck_function_list* f, ck_session_handle_t session,
                     ck_object_handle_t key, std::string_view wrapped, SecretBytes* out) {
  ck_object_class_t cls = CKO_SECRET_KEY;
  ck_key_type_t type = CKK_GENERIC_SECRET;
  struct ck_attribute tmpl[] = {
      Attr(CKA_CLASS, &cls, sizeof(cls)), Attr(CKA_KEY_TYPE, &type, sizeof(type)),
      Attr(CKA_TOKEN, &kFalse, 1),        Attr(CKA_PRIVATE, &kTrue, 1),
      Attr(CKA_SENSITIVE, &kFalse, 1),    Attr(CKA_EXTRACTABLE, &kTrue, 1)};
  struct ck_mechanism mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  ck_object_handle_t obj = 0;
  ck_rv_t rv = f->C_UnwrapKey(session, &mech, key, In(wrapped), wrapped.size(), tmpl, 6, &obj);
  if (rv != CKR_OK) return Fail(rv, "C_UnwrapKey");
  SecretBytes buffer(wrapped.size());
  struct ck_attribute value = Attr(CKA_VALUE, buffer.RevealMutable(), buffer.size());
  rv = f->C_GetAttributeValue(session, obj, &value, 1);
  f->C_DestroyObject(session, obj);
  if (rv != CKR_OK) return Fail(rv, "C_GetAttributeValue(CKA_VALUE)");
  *out = SecretBytes::CopyFrom(buffer.Reveal().substr(0, value.value_len));
  return CallResult{};
}

bool SlotSupports(struct ck_function_list* f, ck_slot_id_t slot, Mechanism mechanism) {
  struct ck_mechanism_info info = {};
  const bool gcm = mechanism == Mechanism::kAesGcm;
  if (f->C_GetMechanismInfo(slot, gcm ? CKM_AES_GCM : CKM_AES_KEY_WRAP_PAD, &info) != CKR_OK) {
    return false;
  }
  const ck_flags_t need = gcm ? (CKF_ENCRYPT | CKF_DECRYPT) : (CKF_WRAP | CKF_UNWRAP);
  return (info.flags & need) == need;
}

}  // namespace kmsplugin::pkcs11
