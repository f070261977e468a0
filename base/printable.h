// The one sanitiser for text that may hold client or remote bytes (request uids, key_ids echoed
// by a backend, error bodies) before it goes into a log line or an error message.
//
// Output is printable ASCII only (0x20..0x7e, minus '"' and '\\'), each other byte replaced by
// '?', and at most `max_len` characters; a longer input ends in "..." and its full length, so
// the reader knows it was cut. Never use it on secrets: a secret must not reach a message at all.
#ifndef KMSP_BASE_PRINTABLE_H_
#define KMSP_BASE_PRINTABLE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace kmsplugin {

inline constexpr size_t kDefaultPrintableLength = 128;

std::string Printable(std::string_view in, size_t max_len = kDefaultPrintableLength);

}  // namespace kmsplugin

#endif  // KMSP_BASE_PRINTABLE_H_
