// Writes the seed corpus of fuzz-decoder: ring-buffer records
// (struct tcpstated_event, bpf/tcpstated_abi.h) for whole socket lifecycles
// as the BPF programs report them, laid end to end, one scenario per file.
// A file may end with a tail of fewer than 128 bytes that tunes the run
// (see fuzz_decoder.cpp): [table bound % 65, tcp_fin_timeout seconds].
//
//   c++ -std=c++17 -I. tests/fuzz/make_event_corpus.cpp -o /tmp/mkcorpus
//   /tmp/mkcorpus tests/fuzz/corpus/decoder
// (or: cmake --build build-fuzz --target fuzz-make-event-corpus)

#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/tcpstated_abi.h"

namespace {

constexpr uint32_t kInitNetns = 4026531840u;  // init_net's inode
constexpr uint64_t kInitCookie = 1;
constexpr uint64_t kMs = 1000000ULL;

struct Endpoint {
  bool ipv6 = false;
  uint8_t addr[16] = {};
};

Endpoint V4(const char* text) {
  Endpoint e;
  inet_pton(AF_INET, text, e.addr);
  return e;
}

Endpoint V6(const char* text) {
  Endpoint e;
  e.ipv6 = true;
  inet_pton(AF_INET6, text, e.addr);
  return e;
}

// One socket as the BPF side sees it.
struct Sock {
  uint64_t id;
  uint64_t skaddr;
  Endpoint local;
  Endpoint remote;
  uint16_t sport;
  uint16_t dport;
  uint32_t netns = kInitNetns;
  uint64_t netns_cookie = kInitCookie;
  bool cookie_ids = true;  // tp_btf: ids are socket cookies
};

struct Owner {
  uint32_t tgid;
  uint64_t cgroup_id;
  const char* comm;
};

class Recorder {
 public:
  explicit Recorder(uint64_t start_ns) : now_(start_ns) {}

  void Advance(uint64_t ns) { now_ += ns; }

  // One event; `owner` non-null: the transition ran in the owner's process.
  void Emit(const Sock& s, uint8_t source, uint8_t oldstate, uint8_t newstate,
            const Owner* owner = nullptr, bool peer_fin = false) {
    tcpstated_event e;
    std::memset(&e, 0, sizeof(e));
    e.ts_ns = now_;
    e.id = s.id;
    e.skaddr = s.skaddr;
    e.netns_cookie = s.netns_cookie;
    e.netns = s.netns;
    e.sport = s.sport;
    e.dport = s.dport;
    std::memcpy(e.saddr, s.local.addr, 16);
    std::memcpy(e.daddr, s.remote.addr, 16);
    e.source = source;
    e.oldstate = oldstate;
    e.newstate = newstate;
    if (s.cookie_ids) e.flags |= TCPSTATED_F_COOKIE;
    if (s.local.ipv6) e.flags |= TCPSTATED_F_IPV6;
    if (peer_fin) e.flags |= TCPSTATED_F_PEER_FIN;
    if (owner != nullptr) {
      e.flags |= TCPSTATED_F_PROCESS_CTX;
      e.tgid = owner->tgid;
      e.pid = owner->tgid;
      e.cgroup_id = owner->cgroup_id;
      std::strncpy(e.comm, owner->comm, TCPSTATED_COMM_LEN - 1);
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(&e);
    out_.insert(out_.end(), bytes, bytes + sizeof(e));
    now_ += kMs;
  }

  void State(const Sock& s, uint8_t from, uint8_t to,
             const Owner* owner = nullptr, bool peer_fin = false) {
    Emit(s, TCPSTATED_SRC_STATE, from, to, owner, peer_fin);
  }
  // FIN_WAIT2->CLOSE of a socket with a TCP_LINGER2 of its own (jiffies;
  // fin_time 0: negative linger2).
  void OwnLingerHandOff(const Sock& s, uint32_t fin_time,
                        uint32_t fin_timeout) {
    State(s, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE);
    tcpstated_event e;
    uint8_t* last = out_.data() + out_.size() - sizeof(e);
    std::memcpy(&e, last, sizeof(e));
    e.flags |= TCPSTATED_F_LINGER2;
    e.fin_time = fin_time;
    e.fin_timeout = fin_timeout;
    std::memcpy(last, &e, sizeof(e));
  }
  void Tail(std::vector<uint8_t> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  const std::vector<uint8_t>& bytes() const { return out_; }

 private:
  uint64_t now_;
  std::vector<uint8_t> out_;
};

const Owner kCurl = {4242, 0x1001, "curl"};
const Owner kNginx = {800, 0x2002, "nginx"};
const Owner kPython = {5151, 0x3003, "python3"};

// Client: connect, data, active close, FIN from the peer: TIME_WAIT.
void ClientIpv4(Recorder& r) {
  Sock c{0x1001, 0xffff888100001000, V4("10.0.0.1"), V4("93.184.216.34"), 0,
         443};
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  c.sport = 40000;
  r.Advance(20 * kMs);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.Advance(500 * kMs);
  r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_FIN_WAIT1, &kCurl);
  r.State(c, TCPSTATED_TCP_FIN_WAIT1, TCPSTATED_TCP_FIN_WAIT2);
  r.State(c, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE, nullptr, true);
}

// Server: listener, a SYN-ACK retransmit, an accepted child closed by the
// peer first (CLOSE_WAIT, LAST_ACK), then the listener closes.
void ServerIpv4(Recorder& r) {
  Sock l{0x2001, 0xffff888100002000, V4("0.0.0.0"), V4("0.0.0.0"), 80, 0};
  r.State(l, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_LISTEN, &kNginx);
  Sock req = l;
  req.id = 0;
  req.dport = 51000;
  req.local = V4("10.0.0.1");
  req.remote = V4("10.0.0.2");
  r.Emit(req, TCPSTATED_SRC_SYNACK_RETRANS, TCPSTATED_TCP_NEW_SYN_RECV,
         TCPSTATED_TCP_NEW_SYN_RECV);
  Sock c{0x2002, 0xffff888100002800, V4("10.0.0.1"), V4("10.0.0.2"), 80, 51000};
  r.State(c, TCPSTATED_TCP_LISTEN, TCPSTATED_TCP_SYN_RECV);
  r.State(c, TCPSTATED_TCP_SYN_RECV, TCPSTATED_TCP_ESTABLISHED);
  r.Advance(2000 * kMs);
  r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_CLOSE_WAIT);
  r.Advance(5 * kMs);
  r.State(c, TCPSTATED_TCP_CLOSE_WAIT, TCPSTATED_TCP_LAST_ACK, &kNginx);
  r.State(c, TCPSTATED_TCP_LAST_ACK, TCPSTATED_TCP_CLOSE);
  r.State(l, TCPSTATED_TCP_LISTEN, TCPSTATED_TCP_CLOSE, &kNginx);
}

// Loopback IPv6, both ends in one namespace: the client closes first and
// exits, leaving a FIN_WAIT2 orphan that the server's close promotes to
// TIME_WAIT.
void LoopbackIpv6Orphan(Recorder& r) {
  Sock l{0x3001, 0xffff888100003000, V6("::"), V6("::"), 8080, 0};
  r.State(l, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_LISTEN, &kPython);
  Sock c{0x3002, 0xffff888100003400, V6("::1"), V6("::1"), 0, 8080};
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  c.sport = 45000;
  Sock s{0x3003, 0xffff888100003800, V6("::1"), V6("::1"), 8080, 45000};
  r.State(s, TCPSTATED_TCP_LISTEN, TCPSTATED_TCP_SYN_RECV);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.State(s, TCPSTATED_TCP_SYN_RECV, TCPSTATED_TCP_ESTABLISHED);
  r.Advance(100 * kMs);
  r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_FIN_WAIT1, &kCurl);
  r.State(s, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_CLOSE_WAIT);
  r.State(c, TCPSTATED_TCP_FIN_WAIT1, TCPSTATED_TCP_FIN_WAIT2);
  r.State(c, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE);  // orphaned
  r.Advance(3000 * kMs);
  r.State(s, TCPSTATED_TCP_CLOSE_WAIT, TCPSTATED_TCP_LAST_ACK, &kPython);
  r.State(s, TCPSTATED_TCP_LAST_ACK, TCPSTATED_TCP_CLOSE);
}

// connect() refused: SYN_SENT, RST received, CLOSE.
void ConnectRefused(Recorder& r) {
  Sock c{0x4001, 0xffff888100004000, V4("10.0.0.1"), V4("10.0.0.9"), 0, 5432};
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kPython);
  c.sport = 41000;
  r.Emit(c, TCPSTATED_SRC_RECV_RESET, TCPSTATED_TCP_SYN_SENT,
         TCPSTATED_TCP_SYN_SENT);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_CLOSE);
}

// close() with unread data: FIN_WAIT2 -> CLOSE looks like a hand-off, then
// tcp_send_reset on the closed socket says it was an abort. Then an
// established connection reset by the peer.
void AbortAndReset(Recorder& r) {
  Sock c{0x5001, 0xffff888100005000, V4("10.0.0.1"), V4("10.0.0.3"), 42000,
         8443};
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_FIN_WAIT1, &kCurl);
  r.State(c, TCPSTATED_TCP_FIN_WAIT1, TCPSTATED_TCP_FIN_WAIT2);
  r.State(c, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE, &kCurl);
  r.Emit(c, TCPSTATED_SRC_SEND_RESET, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_CLOSE);
  Sock d{0x5002, 0xffff888100005400, V4("10.0.0.1"), V4("10.0.0.3"), 42001,
         8443};
  r.State(d, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  r.State(d, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.Emit(d, TCPSTATED_SRC_RECV_RESET, TCPSTATED_TCP_ESTABLISHED,
         TCPSTATED_TCP_ESTABLISHED);
  r.State(d, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_CLOSE);
}

// Classic tracepoint (ids are not cookies, no netns cookie): simultaneous
// close through CLOSING, then TIME_WAIT.
void ClassicSimultaneousClose(Recorder& r) {
  Sock c{0x6001, 0xffff888100006000, V4("192.0.2.1"), V4("192.0.2.2"), 43000,
         22};
  c.cookie_ids = false;
  c.netns_cookie = 0;
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kPython);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_FIN_WAIT1, &kPython);
  r.State(c, TCPSTATED_TCP_FIN_WAIT1, TCPSTATED_TCP_CLOSING);
  r.State(c, TCPSTATED_TCP_CLOSING, TCPSTATED_TCP_CLOSE);
}

// A namespace dies and its inode comes back with a new cookie.
void NetnsReuse(Recorder& r) {
  Sock a{0x7001, 0xffff888100007000, V4("10.1.0.1"), V4("10.1.0.2"), 44000, 80};
  a.netns = 4026532500u;
  a.netns_cookie = 77;
  r.State(a, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  r.State(a, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.State(a, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_CLOSE_WAIT);
  Sock b = a;
  b.id = 0x7002;
  b.netns_cookie = 78;
  r.State(b, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
}

// CLOSE_WAIT leak: the peer closed, the application never does.
void CloseWaitLeak(Recorder& r) {
  Sock l{0x8001, 0xffff888100008000, V4("0.0.0.0"), V4("0.0.0.0"), 8080, 0};
  r.State(l, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_LISTEN, &kPython);
  for (uint16_t i = 0; i < 3; ++i) {
    Sock s{0x8010u + i,    0xffff888100008100 + i * 0x100,
           V4("10.0.0.1"), V4("10.0.0.5"),
           8080,           static_cast<uint16_t>(52000 + i)};
    r.State(s, TCPSTATED_TCP_LISTEN, TCPSTATED_TCP_SYN_RECV);
    r.State(s, TCPSTATED_TCP_SYN_RECV, TCPSTATED_TCP_ESTABLISHED);
    r.State(s, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_CLOSE_WAIT);
  }
}

// Many clients towards one destination with a table bound of 8: eviction,
// and per-destination port books. Tail: bound 8, tcp_fin_timeout 5 s.
void EvictionSmallTable(Recorder& r) {
  for (uint16_t i = 0; i < 20; ++i) {
    Sock c{0x9000u + i,    0xffff888100009000 + i * 0x100,   V4("10.0.0.1"),
           V4("10.0.0.7"), static_cast<uint16_t>(33000 + i), 6379};
    r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kPython);
    r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  }
  r.Tail({8, 5});
}

// FIN_WAIT2 orphans aged by a short tcp_fin_timeout (tail: bound 64, 1 s),
// and a timewait id coming back on a new connection (fd reused).
void FinTimeoutAndReuse(Recorder& r) {
  Sock c{0xa001, 0xffff88810000a000, V4("10.0.0.1"), V4("10.0.0.8"), 46000,
         443};
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_FIN_WAIT1, &kCurl);
  r.State(c, TCPSTATED_TCP_FIN_WAIT1, TCPSTATED_TCP_FIN_WAIT2);
  r.State(c, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE);
  r.Advance(2000 * kMs);
  c.sport = 46001;
  r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
  r.Tail({64, 1});
}

// Orphans on the paths no state change reports: TCP_LINGER2 of 3 s and of
// -1 (HZ 250, tcp_fin_timeout 60 s), and one killed by its peer's data (the
// timewait socket's reset, Linux 6.10+).
void OrphanLingerAndReset(Recorder& r) {
  for (uint16_t i = 0; i < 3; ++i) {
    Sock c{0xe001u + i,     0xffff88810000e000 + 0x400u * i,  V4("192.0.2.1"),
           V4("192.0.2.9"), static_cast<uint16_t>(48000 + i), 80};
    r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
    r.State(c, TCPSTATED_TCP_SYN_SENT, TCPSTATED_TCP_ESTABLISHED);
    r.State(c, TCPSTATED_TCP_ESTABLISHED, TCPSTATED_TCP_FIN_WAIT1, &kCurl);
    r.State(c, TCPSTATED_TCP_FIN_WAIT1, TCPSTATED_TCP_FIN_WAIT2);
    if (i == 0) r.OwnLingerHandOff(c, 3 * 250, 60 * 250);
    if (i == 1) r.OwnLingerHandOff(c, 0, 60 * 250);
    if (i == 2) {
      r.State(c, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE);
      r.Advance(500 * kMs);
      Sock tw = c;
      tw.id = 0;
      r.Emit(tw, TCPSTATED_SRC_SEND_RESET, TCPSTATED_TCP_TIME_WAIT,
             TCPSTATED_TCP_TIME_WAIT);
    }
  }
  r.Advance(4000 * kMs);
}

bool Write(const std::string& dir, const char* name,
           const std::vector<uint8_t>& bytes) {
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    return false;
  }
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

template <typename F>
bool Scenario(const std::string& dir, const char* name, F&& build) {
  Recorder r(1000 * 1000 * kMs);  // 1000 s after boot
  build(r);
  return Write(dir, name, r.bytes());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;
  ok &= Scenario(dir, "client_ipv4_lifecycle.bin", ClientIpv4);
  ok &= Scenario(dir, "server_ipv4_lifecycle.bin", ServerIpv4);
  ok &= Scenario(dir, "loopback_ipv6_fin_wait2_orphan.bin", LoopbackIpv6Orphan);
  ok &= Scenario(dir, "connect_refused.bin", ConnectRefused);
  ok &= Scenario(dir, "abort_and_reset.bin", AbortAndReset);
  ok &=
      Scenario(dir, "classic_simultaneous_close.bin", ClassicSimultaneousClose);
  ok &= Scenario(dir, "netns_reuse.bin", NetnsReuse);
  ok &= Scenario(dir, "close_wait_leak.bin", CloseWaitLeak);
  ok &= Scenario(dir, "eviction_small_table.bin", EvictionSmallTable);
  ok &= Scenario(dir, "fin_timeout_and_reuse.bin", FinTimeoutAndReuse);
  ok &= Scenario(dir, "orphan_linger_and_reset.bin", OrphanLingerAndReset);
  // Single records: the one-event path of the target.
  ok &= Scenario(dir, "single_connect.bin", [](Recorder& r) {
    Sock c{0xb001, 0xffff88810000b000, V4("10.0.0.1"), V4("10.0.0.2"), 0, 80};
    r.State(c, TCPSTATED_TCP_CLOSE, TCPSTATED_TCP_SYN_SENT, &kCurl);
  });
  ok &= Scenario(dir, "single_synack_retransmit.bin", [](Recorder& r) {
    Sock q{0,    0xffff88810000c000, V6("2001:db8::1"), V6("2001:db8::2"), 443,
           60000};
    r.Emit(q, TCPSTATED_SRC_SYNACK_RETRANS, TCPSTATED_TCP_NEW_SYN_RECV,
           TCPSTATED_TCP_NEW_SYN_RECV);
  });
  ok &= Scenario(dir, "single_orphan_handoff.bin", [](Recorder& r) {
    Sock c{0xd001, 0xffff88810000d000, V4("10.0.0.1"), V4("10.0.0.2"), 47000,
           80};
    r.State(c, TCPSTATED_TCP_FIN_WAIT2, TCPSTATED_TCP_CLOSE);
  });
  return ok ? 0 : 1;
}
