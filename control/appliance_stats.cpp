// Appliance::format_stats(): the counters as text (SIGUSR1, the final log
// lines).  Beside appliance.cpp to keep that file about the appliance's life.
#include <sstream>

#include <rte_ethdev.h>

#include "control/appliance.hpp"

namespace podgate::ctl {

std::string Appliance::format_stats() const {
  std::ostringstream out;
  auto block = [&out](const std::string& who, const dp::WorkerCounters& c) {
    out << who << ":";
#define PODGATE_X(name, help) \
  if (c.name.get() != 0) out << " " #name "=" << c.name.get();
    PODGATE_WORKER_COUNTERS(PODGATE_X)
#undef PODGATE_X
    out << "\n";
    if (c.dropped() != 0) {
      out << "  drops:";
      for (size_t r = 0; r < dp::kDropReasonCount; ++r) {
        if (uint64_t v = c.drops[r].get()) {
          out << " " << dp::drop_reason_name(static_cast<dp::DropReason>(r)) << "=" << v;
        }
      }
      out << "\n";
    }
  };
  for (size_t w = 0; w < workers_.size(); ++w) {
    out << "  ";
    block("worker " + std::to_string(w), workers_[w]->counters());
  }
  out << "  ";
  block("control waiting_for_arp=" + std::to_string(punt_->waiting()) +
            " loop_turns=" + std::to_string(loop_turns_) +
            " doorbell_rings=" + std::to_string(doorbell_->rings()),
        punt_->counters());
  for (size_t i = 0; i < ports_.size(); ++i) {
    rte_eth_stats s{};
    rte_eth_stats_get(ports_[i].port_id, &s);
    out << "  port " << config().ports[i].name << ": ipackets=" << s.ipackets
        << " opackets=" << s.opackets << " imissed=" << s.imissed << " ierrors=" << s.ierrors
        << " oerrors=" << s.oerrors << " rx_nombuf=" << s.rx_nombuf << "\n";
  }
  out << "  " << dns_->format_counters() << "\n";
  out << "  snapshot generation=" << generation()
      << " awaiting_free=" << publisher_->pending_frees() << " freed=" << publisher_->freed();
  return out.str();
}

}  // namespace podgate::ctl
