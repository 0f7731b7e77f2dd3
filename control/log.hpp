// Logging for the control thread: one line per event on stderr, with a
// timestamp and a level, so systemd/journald and test logs read the same.
#pragma once

#include <string_view>

namespace podgate::ctl {

enum class LogLevel { kInfo, kWarn, kError };

void log(LogLevel level, std::string_view message);
inline void log_info(std::string_view m) { log(LogLevel::kInfo, m); }
inline void log_warn(std::string_view m) { log(LogLevel::kWarn, m); }
inline void log_error(std::string_view m) { log(LogLevel::kError, m); }

}  // namespace podgate::ctl
