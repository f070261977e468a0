// SecretBytes: the only container for key material, seeds, plaintext keys, tokens and PINs.
//
// - Wiped with OPENSSL_cleanse on destruction, on assignment and when moved from.
// - Move-only; copies are explicit (Clone()).
// - Has no operator<<, no fmt::formatter and no implicit conversion, so logging one does not
//   compile. The bytes come out only through Reveal() (and RevealMutable() to write them in
//   place), which are meant to be grep-able.
// - Compare with ConstantTimeEquals(), never operator== on revealed bytes.
//
// Not thread-safe for concurrent mutation; concurrent const access is fine.
#ifndef KMSP_CRYPTO_SECRET_BYTES_H_
#define KMSP_CRYPTO_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kmsplugin {

class SecretBytes {
 public:
  SecretBytes() = default;
  // A zero-filled buffer of `size` bytes.
  explicit SecretBytes(size_t size);
  // Copies `bytes`; the caller remains responsible for wiping its own copy.
  static SecretBytes CopyFrom(std::string_view bytes);
  // Takes the bytes of `bytes` and wipes the string (capacity included).
  static SecretBytes TakeFrom(std::string& bytes);

  ~SecretBytes();

  // Move only.
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The only ways to read or write the bytes. Every call site is a place where secret bytes
  // leave this wrapper: keep them few, and never pass the result to a logger. RevealMutable() is
  // for filling the buffer in place (a cipher's or RNG's output), never for reading it out.
  std::string_view Reveal() const {
    return std::string_view(reinterpret_cast<const char*>(data_), size_);
  }
  uint8_t* RevealMutable() { return data_; }

  // Constant-time comparison (CRYPTO_memcmp); sizes are not secret.
  bool ConstantTimeEquals(const SecretBytes& other) const;

  // Wipes and releases the bytes; size() becomes 0.
  void Clear();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Wipes a std::string's whole buffer (for temporaries that held secret bytes) and clears it.
void WipeString(std::string& s);

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_SECRET_BYTES_H_
