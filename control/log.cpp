#include "control/log.hpp"

#include <cstdio>
#include <ctime>

namespace podgate::ctl {

void log(LogLevel level, std::string_view message) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
  const char* tag = level == LogLevel::kInfo ? "info" : level == LogLevel::kWarn ? "warn" : "error";
  // One fprintf per line keeps lines whole when several threads log.
  std::fprintf(stderr, "%s.%03ldZ podgate %s: %.*s\n", when, ts.tv_nsec / 1000000, tag,
               static_cast<int>(message.size()), message.data());
}

}  // namespace podgate::ctl
