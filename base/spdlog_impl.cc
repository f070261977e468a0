// spdlog's implementation, compiled once for the whole project.
//
// Every target gets SPDLOG_COMPILED_LIB from kmsp_base (base/CMakeLists.txt), so spdlog's headers
// only declare; this file includes the "-inl.h" definitions and instantiates the templates we use,
// as spdlog's own src/spdlog.cpp, src/stdout_sinks.cpp and src/color_sinks.cpp do in a compiled
// build of the library. Why not spdlog's header-only mode: each of the ~25 translation units that
// log compiled the whole of spdlog again (an ASan TU took 20 s instead of 7 s, clang-tidy 6.9 s
// instead of 3.8 s). Why not Debian's libspdlog.so: the serving process would map the whole
// shared library (about 0.3 MB of RSS, bench/README.md); here the linker keeps only what is called.
#ifndef SPDLOG_COMPILED_LIB
#error SPDLOG_COMPILED_LIB must be defined
#endif
#include <mutex>

#include "spdlog/common-inl.h"
#include "spdlog/details/backtracer-inl.h"
#include "spdlog/details/log_msg-inl.h"
#include "spdlog/details/log_msg_buffer-inl.h"
#include "spdlog/details/null_mutex.h"
#include "spdlog/details/os-inl.h"
#include "spdlog/details/periodic_worker-inl.h"
#include "spdlog/details/registry-inl.h"
#include "spdlog/logger-inl.h"
#include "spdlog/pattern_formatter-inl.h"
#include "spdlog/sinks/ansicolor_sink-inl.h"
#include "spdlog/sinks/base_sink-inl.h"
#include "spdlog/sinks/sink-inl.h"
#include "spdlog/sinks/stdout_sinks-inl.h"
#include "spdlog/spdlog-inl.h"

// NOLINTBEGIN(bugprone-*,performance-*): explicit instantiations of spdlog's own templates.

template spdlog::logger::logger(std::string name, sinks_init_list::iterator begin,
                               sinks_init_list::iterator end);
template class spdlog::sinks::base_sink<std::mutex>;
template class spdlog::sinks::base_sink<spdlog::details::null_mutex>;
template class spdlog::sinks::stdout_sink_base<spdlog::details::console_mutex>;
template class spdlog::sinks::stdout_sink_base<spdlog::details::console_nullmutex>;
template class spdlog::sinks::stderr_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::stderr_sink<spdlog::details::console_nullmutex>;
template class spdlog::sinks::stdout_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::stdout_sink<spdlog::details::console_nullmutex>;
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_nullmutex>;
template class spdlog::sinks::ansicolor_stdout_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stdout_sink<spdlog::details::console_nullmutex>;
template class spdlog::sinks::ansicolor_stderr_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stderr_sink<spdlog::details::console_nullmutex>;
// NOLINTEND(bugprone-*,performance-*)
