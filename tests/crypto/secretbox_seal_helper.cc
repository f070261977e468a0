// Test helper for secretbox_nacl_test.py: seals fixed plaintexts with crypto/secretbox.h under the
// key of testdata/secretbox_golden.json (a fresh random nonce each, as in production) and prints
// one line per value: "<plaintext hex> <sealed hex>". PyNaCl must open every one.
#include <cstdio>
#include <string>

#include "crypto/encoding.h"
#include "crypto/secretbox.h"

int main() {
  using kmsplugin::HexDecode;
  using kmsplugin::HexEncode;
  auto key = HexDecode("101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f");
  if (!key.ok()) return 2;
  auto box = kmsplugin::Secretbox::Create(kmsplugin::SecretBytes::CopyFrom(*key));
  if (!box.ok()) return 2;
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  const std::string plaintexts[] = {std::string("k8s\0\n\x0c\n\x02v1\x12\x06Secret", 18), "", "x",
                                    all_bytes, std::string(4096, 'z')};
  for (const std::string& pt : plaintexts) {
    auto sealed = (*box)->Seal(pt);
    if (!sealed.ok()) return 1;
    std::printf("%s %s\n", HexEncode(pt).c_str(), HexEncode(*sealed).c_str());
  }
  return 0;
}
