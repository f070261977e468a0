// Reencryptor: rewrites every stored object of the chosen resources under the first provider of
// its EncryptionConfiguration rule, directly in etcd (kmsv2-contract.md §3.9), or inventories
// them (--scan).
//
// Per object: classify the value by prefix; skip it if it is already current (first provider,
// first key; for KMS v2 type 1 under the plugin's Status key_id); otherwise decrypt it with the
// provider that claims it (AAD = the exact etcd key), encrypt it with the first provider, decrypt
// the result back and compare, and write it with Txn(mod_revision == observed -> Put). A failed
// compare means a concurrent write won: the object is re-read (from the same Txn) and redone.
// So a crash at any instant leaves every key either old-and-valid or new-and-valid, and a
// re-run finishes the job. A value no provider can decrypt is reported (key, prefix) and left
// untouched, and so is an aescbc value two configured keys open to different plaintexts.
//
// KMS v2: the write provider's Status key_id is re-read before each page's objects are judged
// (ValueTransformer::Refresh), and on each value under a key_id not yet placed; values the
// apiserver already wrote under the plugin's current key_id are current, and nothing is written
// under a superseded one.
//
// Thread-safety: Run() is not reentrant; internally it uses `concurrency` worker threads.
#ifndef KMSP_TOOLS_REENCRYPT_REENCRYPTOR_H_
#define KMSP_TOOLS_REENCRYPT_REENCRYPTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "tools/reencrypt/etcd_client.h"
#include "tools/reencrypt/progress.h"
#include "tools/reencrypt/resources.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {

struct ReencryptOptions {
  bool dry_run = false;     // do everything but the etcd write
  bool scan_only = false;   // only classify and count; no KMS Encrypt or Decrypt (Status only),
                            // no write
  int concurrency = 4;      // worker threads, >= 1
  double rate = 0;          // max objects per second over all workers; 0 = unlimited
  int64_t page_size = 500;  // keys per Range page
  int max_attempts = 16;    // compare-and-swap attempts per key before it counts as failed
  size_t max_reported_failures = 1000;  // failures kept in the summary (all are counted)
};

struct InventoryRow {
  std::string resource;
  std::string provider;
  std::string key_id;
  int dek_type = -1;     // kms v2 only
  bool current = false;  // already what the first provider writes now
  int64_t count = 0;
  std::string recovery;  // kms v2 only: "sha256:<hex>" of the recovery key, "none", "invalid"
};

struct FailedKey {
  std::string key;
  std::string prefix;  // the value's format prefix (never value bytes)
  std::string error;
};

struct ReencryptSummary {
  int64_t scanned = 0;
  int64_t rewritten = 0;
  int64_t already_current = 0;
  int64_t would_rewrite = 0;  // dry run: objects that would have been rewritten
  int64_t failed = 0;
  int64_t conflicts = 0;  // compare-and-swap retries after a concurrent write
  int64_t vanished = 0;   // deleted while we worked on them
  int64_t kms_decrypt_calls = 0;  // seeds / DEKs opened (by the plugin, or the recovery key)
  int64_t recovery_opens = -1;    // of those, opened with a recovery key (-1: no key given)
  double seconds = 0;
  bool dry_run = false;
  bool scan_only = false;
  std::vector<InventoryRow> inventory;  // the objects as first read, sorted
  std::vector<FailedKey> failures;

  // One JSON object on one line: the counters, "objects_per_second", and for a scan the
  // inventory (kms v2 rows with "recovery") and "recovery" (KMS v2 objects by recovery wrap:
  // kms_v2_objects, with_recovery_wrap, without_recovery_wrap, invalid_recovery_wrap,
  // by_fingerprint {"sha256:<hex>": count}). Never contains values.
  std::string ToJson() const;
  // The inventory as an aligned text table.
  std::string InventoryTable() const;
};

class Reencryptor {
 public:
  // Borrows everything; all must outlive the Reencryptor. `progress` may be null.
  Reencryptor(EtcdClient* etcd, TransformerSet* transformers, ReencryptOptions options,
              ProgressListener* progress, const Clock* clock);

  // Processes `targets` in order. Returns the summary even when some objects failed (check
  // summary.failed); an error only when the run could not proceed: INVALID_ARGUMENT for bad
  // options, the KMS error when a first provider cannot prepare its seed or (not in a scan)
  // re-check its key_id between pages, the etcd error when a Range fails, DATA_LOSS when etcd
  // answers a listing with keys outside the range or out of order.
  absl::StatusOr<ReencryptSummary> Run(const std::vector<ResourceTarget>& targets);

 private:
  EtcdClient* const etcd_;
  TransformerSet* const transformers_;
  const ReencryptOptions options_;
  ProgressListener* const progress_;
  const Clock* const clock_;
};

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_REENCRYPTOR_H_
