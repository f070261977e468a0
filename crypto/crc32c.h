// CRC-32C (Castagnoli): the checksum Google Cloud KMS uses for its integrity fields
// (plaintextCrc32c, ciphertextCrc32c, ...; remote-kms-apis.md §5.3). Reflected polynomial
// 0x82F63B78, initial value and final XOR 0xFFFFFFFF. OpenSSL has none, hence this 256-entry
// table. Not a cryptographic check: it catches corruption in transit, not forgery.
#ifndef KMSP_CRYPTO_CRC32C_H_
#define KMSP_CRYPTO_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace kmsplugin {

// CRC-32C of `bytes` ("123456789" -> 0xE3069283; empty -> 0).
uint32_t Crc32c(std::string_view bytes);

// Continues a CRC: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, std::string_view bytes);

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_CRC32C_H_
