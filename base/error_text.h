// Thread-safe text for errno values and signal numbers. std::strerror and strsignal may return a
// buffer shared by every thread (glibc marks them MT-Unsafe); these use glibc's constant tables.
#ifndef KMSP_BASE_ERROR_TEXT_H_
#define KMSP_BASE_ERROR_TEXT_H_

#include <cstring>
#include <string>

namespace kmsplugin {

// "No such file or directory" for ENOENT; "errno N" for a number glibc does not know.
inline std::string ErrnoText(int err) {
  const char* text = strerrordesc_np(err);
  return text != nullptr ? std::string(text) : "errno " + std::to_string(err);
}

// "Terminated" for SIGTERM; "signal N" for a number glibc does not know.
inline std::string SignalText(int sig) {
  const char* text = sigdescr_np(sig);
  return text != nullptr ? std::string(text) : "signal " + std::to_string(sig);
}

}  // namespace kmsplugin

#endif  // KMSP_BASE_ERROR_TEXT_H_
