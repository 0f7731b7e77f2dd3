// Which ports' queues the workers take as steered, and what the start-up
// log says of each (control/queue_steering.hpp).
#include "control/queue_steering.hpp"

#include <gtest/gtest.h>

namespace podgate::ctl {
namespace {

constexpr uint32_t kWorkers = 4;

// A port as open_port() leaves it: `queues` RX queues, RSS as given.
dp::PortInfo port(uint16_t queues, bool client_rss = false, bool client_rss6 = false,
                  bool own_rss = false) {
  dp::PortInfo p;
  p.rx_queues = queues;
  p.client_rss = client_rss;
  p.client_rss6 = client_rss6;
  p.own_rss = own_rss || client_rss;
  return p;
}

PortConfig config(bool steered_by_peer) {
  PortConfig c;
  c.steered_by_peer = steered_by_peer;
  return c;
}

void expect(const dp::PortInfo& p, const PortConfig& c, bool ipv4, bool ipv6, const std::string& words) {
  const QueueSteering s = queue_steering(p, c, kWorkers);
  EXPECT_EQ(s.ipv4, ipv4);
  EXPECT_EQ(s.ipv6, ipv6);
  EXPECT_EQ(describe_steering(p, c, kWorkers), words);
}

TEST(QueueSteering, AClientRssPortIsSteeredForTheFamiliesItsDeviceHashes) {
  expect(port(kWorkers, true, true), config(false), true, true,
         "RSS-steered: each connection arrives at its owner");
  expect(port(kWorkers, true, false), config(false), true, false,
         "RSS-steered for IPv4: each IPv4 connection arrives at its owner");
}

TEST(QueueSteering, APortWhoseOwnRssWasProgrammedIgnoresSteeredByPeer) {
  // The NIC decides the queue; IPv6 it does not hash goes to queue 0.
  expect(port(kWorkers, true, false), config(true), true, false,
         "RSS-steered for IPv4: each IPv4 connection arrives at its owner");
}

TEST(QueueSteering, APortWithoutRssIsSteeredForBothFamiliesWhenItsPeerSteers) {
  expect(port(kWorkers), config(true), true, true,
         "steered by its peer (steered_by_peer): each connection arrives at its owner");
}

TEST(QueueSteering, APeerCannotSteerPastADeviceThatSpreadsByItsOwnRss) {
  // net_tap, or a NIC hashing the whole 5-tuple.
  expect(port(kWorkers, false, false, true), config(true), false, false,
         "steered_by_peer ignored: the device spreads packets by its own RSS; packets are "
         "handed to their owner");
}

TEST(QueueSteering, NothingIsSteeredWithoutAQueuePerWorker) {
  expect(port(kWorkers + 1), config(true), false, false,
         "steered_by_peer ignored: it needs an RX queue per worker, the device has 5; packets "
         "are handed to their owner");
  expect(port(kWorkers + 1, true, true), config(false), false, false,
         "RSS on the client's fields, but not an RX queue per worker, the device has 5; packets "
         "are handed to their owner");
}

TEST(QueueSteering, APortWithNeitherHandsPacketsToTheirOwner) {
  expect(port(kWorkers), config(false), false, false,
         "no RSS on it: packets are handed to their owner");
  expect(port(kWorkers, false, false, true), config(false), false, false,
         "RSS on the whole 5-tuple, not the client's fields: packets are handed to their owner");
}

TEST(QueueSteering, OneWorkerOwnsEverything) {
  const dp::PortInfo p = port(1);
  EXPECT_EQ(describe_steering(p, config(true), 1), "one worker owns them all");
  EXPECT_EQ(describe_steering(p, config(false), 1), "one worker owns them all");
}

}  // namespace
}  // namespace podgate::ctl
