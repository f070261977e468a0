#include "crypto/secret_bytes.h"

#include <openssl/crypto.h>

#include <cstring>
#include <new>

namespace kmsplugin {

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size_ > 0) {
    data_ = new uint8_t[size_];
    std::memset(data_, 0, size_);
  }
}

SecretBytes SecretBytes::CopyFrom(std::string_view bytes) {
  SecretBytes out(bytes.size());
  if (!bytes.empty()) std::memcpy(out.data_, bytes.data(), bytes.size());
  return out;
}

SecretBytes SecretBytes::TakeFrom(std::string& bytes) {
  SecretBytes out = CopyFrom(bytes);
  WipeString(bytes);
  return out;
}

SecretBytes::~SecretBytes() { Clear(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Clear();
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes SecretBytes::Clone() const { return CopyFrom(Reveal()); }

bool SecretBytes::ConstantTimeEquals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return CRYPTO_memcmp(data_, other.data_, size_) == 0;
}

void SecretBytes::Clear() {
  if (data_ != nullptr) {
    OPENSSL_cleanse(data_, size_);
    delete[] data_;
  }
  data_ = nullptr;
  size_ = 0;
}

void WipeString(std::string& s) {
  if (s.capacity() > 0) OPENSSL_cleanse(s.data(), s.capacity());
  s.clear();
}

}  // namespace kmsplugin
