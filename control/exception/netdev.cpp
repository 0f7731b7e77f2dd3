#include "control/exception/netdev.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

namespace podgate::ctl::netdev {
namespace {

Error failure(const std::string& iface, const std::string& what, int err) {
  return make_error(ErrorCode::kIo, "interface " + iface + ": cannot " + what + ": " + errno_text(err));
}

// One SIOCSIF* ioctl on `iface` through a throwaway datagram socket.
Result<void> interface_ioctl(const std::string& iface, unsigned long request, ifreq& ifr,
                             const std::string& what) {
  if (iface.size() >= IFNAMSIZ) return failure(iface, what, ENAMETOOLONG);
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failure(iface, what, errno);
  const int rc = ioctl(fd, request, &ifr);
  const int err = errno;
  close(fd);
  if (rc != 0) return failure(iface, what, err);
  return {};
}

// An rtnetlink request: header, the family's fixed part, then attributes.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags) {
    hdr().nlmsg_type = type;
    hdr().nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    hdr().nlmsg_len = NLMSG_LENGTH(0);
  }
  template <typename T>
  T& body() {
    hdr().nlmsg_len = NLMSG_LENGTH(sizeof(T));
    return *reinterpret_cast<T*>(NLMSG_DATA(buf_));
  }
  void attr(uint16_t type, const void* data, uint16_t len) {
    auto* rta = reinterpret_cast<rtattr*>(buf_ + NLMSG_ALIGN(hdr().nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    hdr().nlmsg_len = NLMSG_ALIGN(hdr().nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }
  // Sends the request and reads the kernel's acknowledgement: 0 or an errno.
  int send() {
    const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return errno;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    int err = 0;
    if (sendto(fd, buf_, hdr().nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
      err = errno;
    } else {
      alignas(nlmsghdr) char reply[1024];
      const ssize_t n = recv(fd, reply, sizeof reply, 0);
      const auto* h = reinterpret_cast<const nlmsghdr*>(reply);
      if (n < 0) {
        err = errno;
      } else if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) || h->nlmsg_type != NLMSG_ERROR) {
        err = EPROTO;
      } else {
        err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      }
    }
    close(fd);
    return err;
  }
  // Sends the request as a dump and hands `each` every message of the
  // reply but the last (NLMSG_DONE): 0 or an errno.  With strict checking
  // (Linux 4.20+) the kernel sends only what the request's attributes ask
  // for; older kernels send everything, so `each` filters too.
  template <typename Each>
  int dump(Each&& each) {
    hdr().nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return errno;
    const int on = 1;
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof on);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    int err = 0;
    if (sendto(fd, buf_, hdr().nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
      err = errno;
    }
    // The kernel's dump messages are at most 32 KiB (netlink_dump()).
    std::vector<char> reply(32 * 1024);
    for (bool done = err != 0; !done;) {
      const ssize_t n = recv(fd, reply.data(), reply.size(), MSG_TRUNC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || static_cast<size_t>(n) > reply.size()) {
        err = n < 0 ? errno : EMSGSIZE;
        break;
      }
      for (size_t at = 0; !done && at + sizeof(nlmsghdr) <= static_cast<size_t>(n);) {
        const auto* h = reinterpret_cast<const nlmsghdr*>(reply.data() + at);
        if (h->nlmsg_len < sizeof(nlmsghdr) || h->nlmsg_len > static_cast<size_t>(n) - at) {
          err = EPROTO;
          done = true;
        } else if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          // Both end the dump; each may carry the kernel's -errno.
          if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) err = -*static_cast<const int*>(NLMSG_DATA(h));
          done = true;
        } else {
          each(*h);
        }
        at += NLMSG_ALIGN(h->nlmsg_len);
      }
    }
    close(fd);
    return err;
  }

 private:
  nlmsghdr& hdr() { return *reinterpret_cast<nlmsghdr*>(buf_); }
  alignas(nlmsghdr) char buf_[256] = {};
};

Result<int> interface_index(const std::string& iface, const std::string& what) {
  const unsigned index = if_nametoindex(iface.c_str());
  if (index == 0) return failure(iface, what, errno);
  return static_cast<int>(index);
}

}  // namespace

Result<void> set_mac(const std::string& iface, const dp::MacAddr& mac) {
  ifreq ifr{};
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, mac.bytes.data(), 6);
  return interface_ioctl(iface, SIOCSIFHWADDR, ifr, "set mac " + dp::to_string(mac));
}

Result<void> set_mtu(const std::string& iface, uint16_t mtu) {
  ifreq ifr{};
  ifr.ifr_mtu = mtu;
  return interface_ioctl(iface, SIOCSIFMTU, ifr, "set mtu " + std::to_string(mtu));
}

Result<void> set_up(const std::string& iface) {
  ifreq ifr{};
  if (auto r = interface_ioctl(iface, SIOCGIFFLAGS, ifr, "read its flags"); !r) return r;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return interface_ioctl(iface, SIOCSIFFLAGS, ifr, "set it up");
}

Result<void> disable_ipv6(const std::string& iface) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + iface + "/disable_ipv6";
  if (access("/proc/sys/net/ipv6", F_OK) != 0) return {};  // no IPv6 in this kernel
  std::ofstream f(path);
  f << "1\n";
  f.close();
  if (!f) return failure(iface, "disable IPv6 (" + path + ")", errno != 0 ? errno : EIO);
  return {};
}

Result<void> set_ipv4_conf(const std::string& iface, const std::string& key, int value) {
  const std::string path = "/proc/sys/net/ipv4/conf/" + iface + "/" + key;
  std::ofstream f(path);
  f << value << "\n";
  f.close();
  if (!f) return failure(iface, "set " + key + " (" + path + ")", errno != 0 ? errno : EIO);
  return {};
}

Result<void> add_address(const std::string& iface, dp::Prefix4 address) {
  const std::string what = "add address " + dp::to_string(address);
  auto index = interface_index(iface, what);
  if (!index) return std::move(index).error();
  NetlinkRequest req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg& ifa = req.body<ifaddrmsg>();
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = address.length;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(*index);
  req.attr(IFA_LOCAL, &address.addr.be, 4);
  req.attr(IFA_ADDRESS, &address.addr.be, 4);
  const int err = req.send();
  if (err != 0 && err != EEXIST) return failure(iface, what, err);
  return {};
}

namespace {

// The request both route calls share: family, prefix, table, device.
NetlinkRequest route_request(uint16_t type, uint16_t flags, int oif, dp::Prefix4 prefix, uint32_t table,
                             unsigned char scope) {
  NetlinkRequest req(type, flags);
  rtmsg& rt = req.body<rtmsg>();
  rt.rtm_family = AF_INET;
  rt.rtm_dst_len = prefix.length;
  rt.rtm_table = static_cast<unsigned char>(table < 256 ? table : uint32_t{RT_TABLE_UNSPEC});
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = scope;
  rt.rtm_type = RTN_UNICAST;
  const dp::Ip4 network = prefix.network();
  req.attr(RTA_DST, &network.be, 4);
  req.attr(RTA_TABLE, &table, sizeof table);
  req.attr(RTA_OIF, &oif, sizeof oif);
  return req;
}

}  // namespace

Result<void> add_route(const std::string& iface, dp::Prefix4 prefix, dp::Ip4 via, uint32_t table) {
  const std::string what = "add route " + dp::to_string(prefix) +
                           (via.is_zero() ? "" : " via " + dp::to_string(via)) +
                           " table " + std::to_string(table);
  auto index = interface_index(iface, what);
  if (!index) return std::move(index).error();
  NetlinkRequest req = route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, *index, prefix, table,
                                     via.is_zero() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
  if (!via.is_zero()) req.attr(RTA_GATEWAY, &via.be, 4);
  if (const int err = req.send(); err != 0) return failure(iface, what, err);
  return {};
}

Result<void> delete_route(const std::string& iface, dp::Prefix4 prefix, uint32_t table) {
  const std::string what = "delete route " + dp::to_string(prefix) + " table " + std::to_string(table);
  auto index = interface_index(iface, what);
  if (!index) return std::move(index).error();
  NetlinkRequest req = route_request(RTM_DELROUTE, 0, *index, prefix, table, RT_SCOPE_NOWHERE);
  const int err = req.send();
  if (err != 0 && err != ESRCH) return failure(iface, what, err);
  return {};
}

Result<std::vector<dp::Ip4>> host_routes(const std::string& iface, uint32_t table) {
  const std::string what = "list the routes of table " + std::to_string(table);
  auto index = interface_index(iface, what);
  if (!index) return std::move(index).error();
  const uint32_t oif = static_cast<uint32_t>(*index);
  NetlinkRequest req(RTM_GETROUTE, 0);
  rtmsg& filter = req.body<rtmsg>();
  filter.rtm_family = AF_INET;
  filter.rtm_table = static_cast<unsigned char>(table < 256 ? table : uint32_t{RT_TABLE_UNSPEC});
  filter.rtm_protocol = RTPROT_STATIC;
  req.attr(RTA_TABLE, &table, sizeof table);
  req.attr(RTA_OIF, &oif, sizeof oif);
  std::vector<dp::Ip4> out;
  const int err = req.dump([&](const nlmsghdr& h) {
    if (h.nlmsg_type != RTM_NEWROUTE || h.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
    const auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(&h));
    if (rt->rtm_family != AF_INET || rt->rtm_dst_len != 32 || rt->rtm_protocol != RTPROT_STATIC ||
        rt->rtm_type != RTN_UNICAST) {
      return;
    }
    uint32_t route_table = rt->rtm_table;
    uint32_t route_oif = 0;
    std::optional<dp::Ip4> dst;
    const char* attrs = reinterpret_cast<const char*>(rt) + NLMSG_ALIGN(sizeof(rtmsg));
    const size_t attrs_len = h.nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(rtmsg)));
    for (size_t at = 0; at + sizeof(rtattr) <= attrs_len;) {
      const auto* a = reinterpret_cast<const rtattr*>(attrs + at);
      if (a->rta_len < sizeof(rtattr) || a->rta_len > attrs_len - at) break;
      const size_t len = a->rta_len - RTA_LENGTH(0);
      if (a->rta_type == RTA_TABLE && len == 4) std::memcpy(&route_table, RTA_DATA(a), 4);
      if (a->rta_type == RTA_OIF && len == 4) std::memcpy(&route_oif, RTA_DATA(a), 4);
      if (a->rta_type == RTA_DST && len == 4) {
        dp::Ip4 ip;
        std::memcpy(&ip.be, RTA_DATA(a), 4);
        dst = ip;
      }
      at += RTA_ALIGN(a->rta_len);
    }
    if (route_table == table && route_oif == oif && dst) out.push_back(*dst);
  });
  // ENOENT: the table does not exist yet (nothing was ever added to it).
  if (err != 0 && err != ENOENT) return failure(iface, what, err);
  return out;
}

}  // namespace podgate::ctl::netdev
