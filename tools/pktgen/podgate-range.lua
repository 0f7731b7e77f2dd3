-- podgate-range.lua: pktgen-dpdk Lua script (run with `pktgen ... -- -f
-- podgate-range.lua`, or `script podgate-range.lua` at the Pktgen:/> prompt).
--
-- The same range traffic as podgate-range.pkt (TCP from many client
-- addresses and ports to one VIP:port, out of port 0 towards podgate's
-- uplink), then a timed run that prints what each side should agree on.
-- Calls as in pktgen-dpdk's test/test_range.lua and test/simple_range.lua:
-- pktgen.range.<field>(portlist, "start"|"min"|"max"|"inc", value),
-- pktgen.set_proto, pktgen.set_range, pktgen.set, pktgen.start, pktgen.stop,
-- pktgen.portStats.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

-- Edit these: podgate's uplink MAC and pktgen port 0's MAC.
local podgate_mac = "02:00:00:00:00:01"
local client_mac  = "02:00:00:00:01:01"
local vip, vip_port = "10.96.0.20", 80
local first_client, last_client = "198.51.100.1", "198.51.100.254"
local first_port, last_port = 1024, 65535
local frame_size = 64    -- pktgen counts the 4-byte FCS
local seconds = 10

local function fixed(setter, value, zero)
  setter("0", "start", value)
  setter("0", "min", value)
  setter("0", "max", value)
  setter("0", "inc", zero)
end

pktgen.stop("all")
pktgen.clr()

fixed(pktgen.range.dst_mac, podgate_mac, "00:00:00:00:00:00")
fixed(pktgen.range.src_mac, client_mac, "00:00:00:00:00:00")
fixed(pktgen.range.dst_ip, vip, "0.0.0.0")
fixed(pktgen.range.dst_port, vip_port, 0)
fixed(pktgen.range.pkt_size, frame_size, 0)

pktgen.range.src_ip("0", "start", first_client)
pktgen.range.src_ip("0", "min", first_client)
pktgen.range.src_ip("0", "max", last_client)
pktgen.range.src_ip("0", "inc", "0.0.0.1")

pktgen.range.src_port("0", "start", first_port)
pktgen.range.src_port("0", "min", first_port)
pktgen.range.src_port("0", "max", last_port)
pktgen.range.src_port("0", "inc", 1)

pktgen.set_proto("0", "tcp")
pktgen.set_range("0", "on")
pktgen.set("0", "rate", 100)

pktgen.start("0")
pktgen.delay(seconds * 1000)
pktgen.stop("0")
pktgen.delay(1000)   -- let the last packets arrive at port 1

local stats = pktgen.portStats("all", "port")
local tx, rx = stats[0], stats[1]
printf("\npodgate-range: port 0 sent %d packets, port 1 received %d (%d missing)\n",
       tx.opackets, rx.ipackets, tx.opackets - rx.ipackets)
printf("compare with podgate: uplink ipackets, worker rx_packets/tx_packets, pods opackets\n")
