// Session-level PKCS#11 operations on the KEK objects: find the versions of a label, read and
// check their attributes, generate a version, and the wrap/unwrap primitives (AES-GCM with
// C_Encrypt/C_Decrypt, AES-KEY-WRAP-PAD with C_WrapKey/C_UnwrapKey). Each returns the first failing
// call (CallResult); none logs. Facts: remote-kms-apis.md §4b.2–4b.5.
#ifndef KMSP_KMS_PKCS11_KEY_OBJECTS_H_
#define KMSP_KMS_PKCS11_KEY_OBJECTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "crypto/secret_bytes.h"
#include "kms/pkcs11/pkcs11_blob.h"
#include "kms/pkcs11/session_pool.h"

namespace kmsplugin::pkcs11 {

struct FoundKeys {
  std::map<uint32_t, ck_object_handle_t> versions;
  std::vector<uint32_t> duplicates;  // Versions held by more than one object.
  size_t unversioned = 0;            // Objects with the label whose CKA_ID is not a version.
};

// The AES secret-key objects labelled `label` (CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL), by version.
CallResult FindKeys(struct ck_function_list* f, ck_session_handle_t session, std::string_view label,
                    FoundKeys* out);

struct KeyAttributes {
  bool sensitive = false;
  bool extractable = true;
  bool encrypt = false;
  bool decrypt = false;
  bool wrap = false;
  bool unwrap = false;
  bool is_private = false;
  unsigned long value_len = 0;  // NOLINT(google-runtime-int): CK_ULONG.
};

// Attributes a module does not know stay at their (pessimistic) defaults.
CallResult ReadKeyAttributes(struct ck_function_list* f, ck_session_handle_t session,
                             ck_object_handle_t key, KeyAttributes* out);

// FAILED_PRECONDITION, naming the attribute and the fix, for a key that is not a usable KEK for
// `mechanism`: not sensitive, extractable, not 32 bytes, or without the operations it needs.
absl::Status CheckKeyAttributes(const KeyAttributes& a, Mechanism mechanism,
                                std::string_view description);

// C_GenerateKey(CKM_AES_KEY_GEN) of a token AES-256 key: private, sensitive, not extractable, not
// modifiable, CKA_LABEL `label`, CKA_ID EncodeVersionId(version); encrypt/decrypt for GCM,
// wrap/unwrap for KEY_WRAP_PAD.
CallResult GenerateKey(struct ck_function_list* f, ck_session_handle_t session,
                       std::string_view label, uint32_t version, Mechanism mechanism,
                       ck_object_handle_t* key);

// CKM_AES_GCM (6-field CK_GCM_PARAMS, 128-bit tag): out = ciphertext ‖ tag.
CallResult GcmEncrypt(struct ck_function_list* f, ck_session_handle_t session,
                      ck_object_handle_t key, std::string_view iv, std::string_view aad,
                      const SecretBytes& plaintext, std::string* out);
CallResult GcmDecrypt(struct ck_function_list* f, ck_session_handle_t session,
                      ck_object_handle_t key, std::string_view iv, std::string_view aad,
                      std::string_view ciphertext, SecretBytes* out);

// CKM_AES_KEY_WRAP_PAD through a temporary session object (CKK_GENERIC_SECRET), destroyed after.
CallResult KwpWrap(struct ck_function_list* f, ck_session_handle_t session, ck_object_handle_t key,
                   const SecretBytes& plaintext, std::string* out);
CallResult KwpUnwrap(struct ck_function_list* f, ck_session_handle_t session,
                     ck_object_handle_t key, std::string_view wrapped, SecretBytes* out);

// Whether the token's slot offers `mechanism` for both directions (C_GetMechanismInfo).
bool SlotSupports(struct ck_function_list* f, ck_slot_id_t slot, Mechanism mechanism);

}  // namespace kmsplugin::pkcs11

#endif  // KMSP_KMS_PKCS11_KEY_OBJECTS_H_
