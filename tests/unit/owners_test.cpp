// Unit tests of tcpstated::UnitFromCgroupPath and tcpstated::OwnerResolver:
// a table of cgroup paths, a fake /proc tree under a temporary directory, and
// this test process's own socket in the real /proc.

#include "tcpstated/owners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using tcpstated::OwnerResolver;
using tcpstated::ProcessInfo;
using tcpstated::UnitFromCgroupPath;

// ---------------------------------------------------------------------------
// UnitFromCgroupPath

struct UnitCase {
  std::string path;
  std::string unit;
};

TEST(UnitFromCgroupPathTest, Table) {
  const std::vector<UnitCase> cases = {
      // The shapes the brief names.
      {"0::/system.slice/nginx.service", "nginx.service"},
      {"/system.slice/nginx.service", "nginx.service"},
      {"/system.slice/foo.service/bar", "foo.service"},
      {"/user.slice/user-1000.slice/session-3.scope", "session-3.scope"},
      {"/system.slice/docker-abc.scope", "docker-abc.scope"},
      {"/", ""},
      {"/kubepods/pod123/abc", ""},
      // Every unit type that can own processes or sockets.
      {"/system.slice/dbus.socket", "dbus.socket"},
      {"/system.slice/home.mount", "home.mount"},
      {"/system.slice/dev-sda2.swap", "dev-sda2.swap"},
      {"/system.slice/logrotate.timer", "logrotate.timer"},
      {"/init.scope", "init.scope"},
      // Innermost wins: user@.service contains the app scopes.
      {"/user.slice/user-1000.slice/user@1000.service/app.slice/"
       "app-gnome-firefox-1234.scope",
       "app-gnome-firefox-1234.scope"},
      {"/user.slice/user-1000.slice/user@1000.service/init.scope",
       "init.scope"},
      {"/system.slice/outer.service/inner.scope/leaf", "inner.scope"},
      // Template instances and systemd's \x escapes.
      {"/system.slice/system-getty.slice/getty@tty1.service",
       "getty@tty1.service"},
      {"/system.slice/system-systemd\\x2dfsck.slice/"
       "systemd-fsck@dev-disk-by\\x2duuid-1234.service",
       "systemd-fsck@dev-disk-by\\x2duuid-1234.service"},
      // Whole /proc/<pid>/cgroup lines, line endings, removed cgroups.
      {"0::/system.slice/nginx.service\n", "nginx.service"},
      {"0::/system.slice/nginx.service\r\n", "nginx.service"},
      {"0::/system.slice/a.service\n0::/system.slice/b.service\n", "a.service"},
      {"1:name=systemd:/system.slice/cron.service", "cron.service"},
      {"/system.slice/nginx.service (deleted)", "nginx.service"},
      {"/system.slice/foo.service/", "foo.service"},
      // A cgroup namespace root below ours shows up as "/..".
      {"/../../system.slice/x.service", "x.service"},
      {"nginx.service", "nginx.service"},
      // Not units.
      {"", ""},
      {"0::", ""},
      {"0::/", ""},
      {"/system.slice", ""},
      {"/user.slice/user-1000.slice", ""},
      {"/system.slice/.service", ""},
      {"/system.slice/foo.services", ""},
      {"/system.slice/foo.service.d", ""},
      {"/system.slice/foo.Service", ""},
      {"///", ""},
      {"::::", ""},
      {"0:", ""},
      // Garbage never reaches a metric label: invalid characters skip the
      // component (falling back to an outer unit, if any).
      {"/system.slice/bad name.service", ""},
      {"/system.slice/ok.service/bad name.scope", "ok.service"},
      {"/system.slice/\xff\xfe.service", ""},
      {std::string("/system.slice/a\0b.service", 25), ""},
      {"/system.slice/" + std::string(300, 'a') + ".service", ""},
      {"/system.slice/" + std::string(247, 'a') + ".service",
       std::string(247, 'a') + ".service"},  // exactly 255 bytes
  };
  for (const UnitCase& c : cases) {
    EXPECT_EQ(UnitFromCgroupPath(c.path), c.unit) << "path: " << c.path;
  }
}

// Light fuzzing: random splices of interesting fragments and random bytes.
// The result must always be empty or a unit-shaped substring of the input.
TEST(UnitFromCgroupPathTest, RandomInputGivesUnitShapedSubstrings) {
  const std::vector<std::string> fragments = {"/",
                                              ".",
                                              "0::",
                                              "1:name=systemd:",
                                              "service",
                                              ".service",
                                              "scope",
                                              ".scope",
                                              ".slice",
                                              " (deleted)",
                                              "\n",
                                              "\r",
                                              ":",
                                              "@",
                                              "\\x2d",
                                              "a",
                                              "..",
                                              " ",
                                              std::string(1, '\0'),
                                              "\xff",
                                              std::string(260, 'x')};
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    const int parts = static_cast<int>(rng() % 12);
    for (int p = 0; p < parts; ++p) {
      if (rng() % 4 == 0) {
        input.push_back(static_cast<char>(rng() % 256));
      } else {
        input += fragments[rng() % fragments.size()];
      }
    }
    const std::string unit = UnitFromCgroupPath(input);
    if (unit.empty()) continue;
    EXPECT_EQ(unit.find('/'), std::string::npos) << input;
    EXPECT_NE(input.find(unit), std::string::npos) << input;
    EXPECT_LE(unit.size(), 255u);
  }
}

// ---------------------------------------------------------------------------
// A fake /proc tree

// rm -rf without a shell (fork+exec under ASan is slow). Symlinks are
// removed, never followed.
bool RemoveTree(const std::string& path) {
  return nftw(
             path.c_str(),
             [](const char* p, const struct stat*, int, FTW*) {
               return remove(p);
             },
             16, FTW_DEPTH | FTW_PHYS) == 0;
}

// "<pid> (<comm>) S 1 ..." with `start_time` as field 22 and 52 fields in all,
// like Linux 6.x.
std::string StatLine(uint32_t pid, const std::string& comm,
                     uint64_t start_time) {
  std::ostringstream out;
  out << pid << " (" << comm << ") S";
  for (int field = 4; field <= 52; ++field) {
    out << ' ' << (field == 22 ? start_time : static_cast<uint64_t>(field));
  }
  out << '\n';
  return out.str();
}

class FakeProc {
 public:
  FakeProc() {
    std::string tmpl = testing::TempDir() + "owners_test.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* made = mkdtemp(buf.data());
    if (made == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << tmpl;
      return;
    }
    root_ = made;
  }
  ~FakeProc() {
    if (!root_.empty() && !RemoveTree(root_)) {
      ADD_FAILURE() << "could not remove " << root_;
    }
  }
  FakeProc(const FakeProc&) = delete;
  FakeProc& operator=(const FakeProc&) = delete;

  const std::string& root() const { return root_; }
  std::string Dir(uint32_t pid) const {
    return root_ + "/" + std::to_string(pid);
  }

  // A live process: /proc/<pid>/{comm,stat,cgroup} and an empty fd dir.
  void AddProcess(uint32_t pid, const std::string& comm,
                  const std::string& cgroup_path, uint64_t start_time) {
    MakeDir(Dir(pid));
    MakeDir(Dir(pid) + "/fd");
    Write(pid, "comm", comm + "\n");
    Write(pid, "stat", StatLine(pid, comm, start_time));
    Write(pid, "cgroup", "0::" + cgroup_path + "\n");
  }

  // /proc/<pid>/fd/<fd> -> target, e.g. "socket:[777]".
  void AddFd(uint32_t pid, int fd, const std::string& target) {
    MakeDir(Dir(pid));
    MakeDir(Dir(pid) + "/fd");
    const std::string link = Dir(pid) + "/fd/" + std::to_string(fd);
    ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0) << link;
  }

  void Write(uint32_t pid, const std::string& name,
             const std::string& contents) {
    std::ofstream out(Dir(pid) + "/" + name, std::ios::trunc);
    out << contents;
    ASSERT_TRUE(out.good()) << Dir(pid) << "/" << name;
  }

  void MakeDir(const std::string& path) {
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      ADD_FAILURE() << "mkdir " << path;
    }
  }

 private:
  std::string root_;
};

// The tree most tests share:
//   45  "worker"   holds socket 777 (lowest holder of a shared socket)
//   123 "nginx"    holds 777 (forked), 888, and non-socket descriptors
//   999            holds 999 but has no comm/stat/cgroup: exited mid-scan
//   321 "(a) b)"   holds 555; its comm has spaces and parentheses
//   4000           has no fd directory at all: exited before the scan
// plus entries /proc also has that are not processes.
class OwnerResolverFakeTest : public testing::Test {
 protected:
  void SetUp() override {
    proc_.AddProcess(45, "worker", "/system.slice/nginx.service", 1000);
    proc_.AddFd(45, 7, "socket:[777]");

    proc_.AddProcess(123, "nginx", "/system.slice/nginx.service", 2000);
    proc_.AddFd(123, 0, "/dev/null");
    proc_.AddFd(123, 1, "pipe:[5]");
    proc_.AddFd(123, 2, "anon_inode:[eventpoll]");
    proc_.AddFd(123, 3, "socket:[777]");
    proc_.AddFd(123, 4, "socket:[888]");
    proc_.AddFd(123, 5, "socket:[abc]");
    proc_.AddFd(123, 6, "socket:[99999999999]");  // > 32 bits
    proc_.AddFd(123, 8, "socket:[5");
    proc_.AddFd(123, 9, "/var/log/" + std::string(200, 'x'));

    proc_.AddFd(999, 3, "socket:[999]");

    proc_.AddProcess(321, "(a) b)",
                     "/user.slice/user-1000.slice/session-3.scope", 424242);
    proc_.AddFd(321, 10, "socket:[555]");

    proc_.MakeDir(proc_.Dir(4000));

    proc_.MakeDir(proc_.root() + "/sys");
    proc_.MakeDir(proc_.root() + "/12a");
    proc_.MakeDir(proc_.root() + "/0");
    ASSERT_EQ(symlink("45", (proc_.root() + "/self").c_str()), 0);
  }

  static constexpr size_t kTotalFds = 12;  // symlinks under */fd above

  FakeProc proc_;
};

TEST_F(OwnerResolverFakeTest, ResolvesSocketsToLowestTgidWithInfo) {
  OwnerResolver resolver(proc_.root());
  bool complete = false;
  const auto owners =
      resolver.ResolveInodes({777, 888, 999, 555, 31337}, &complete);
  EXPECT_TRUE(complete);
  ASSERT_EQ(owners.size(), 4u);

  // 45 < 123, although "123" sorts first as a string.
  ASSERT_EQ(owners.count(777), 1u);
  EXPECT_EQ(owners.at(777).tgid, 45u);
  EXPECT_EQ(owners.at(777).comm, "worker");
  EXPECT_EQ(owners.at(777).unit, "nginx.service");

  ASSERT_EQ(owners.count(888), 1u);
  EXPECT_EQ(owners.at(888).tgid, 123u);
  EXPECT_EQ(owners.at(888).comm, "nginx");
  EXPECT_EQ(owners.at(888).unit, "nginx.service");

  // Held, but the holder cannot be described: tgid only.
  ASSERT_EQ(owners.count(999), 1u);
  EXPECT_EQ(owners.at(999).tgid, 999u);
  EXPECT_EQ(owners.at(999).comm, "");
  EXPECT_EQ(owners.at(999).unit, "");

  ASSERT_EQ(owners.count(555), 1u);
  EXPECT_EQ(owners.at(555).tgid, 321u);
  EXPECT_EQ(owners.at(555).comm, "(a) b)");
  EXPECT_EQ(owners.at(555).unit, "session-3.scope");

  EXPECT_EQ(owners.count(31337), 0u);  // nobody holds it
}

TEST_F(OwnerResolverFakeTest, IgnoresNonSocketAndMalformedLinks) {
  OwnerResolver resolver(proc_.root());
  bool complete = false;
  // 5 is a pipe's inode (and the number in "socket:[5" without its ']');
  // 99999999999 truncated to 32 bits would be 1215752191.
  const auto owners =
      resolver.ResolveInodes({5, 0, 1215752191u, 4294967295u}, &complete);
  EXPECT_TRUE(complete);
  EXPECT_TRUE(owners.empty());
}

TEST_F(OwnerResolverFakeTest, EmptyQueryIsCompleteWithoutScanning) {
  OwnerResolver resolver("/nonexistent/proc");
  bool complete = false;
  EXPECT_TRUE(resolver.ResolveInodes({}, &complete).empty());
  EXPECT_TRUE(complete);
}

TEST_F(OwnerResolverFakeTest, MissingProcRootIsIncomplete) {
  OwnerResolver resolver(proc_.root() + "/does-not-exist");
  bool complete = true;
  EXPECT_TRUE(resolver.ResolveInodes({777}, &complete).empty());
  EXPECT_FALSE(complete);
}

TEST_F(OwnerResolverFakeTest, MaxFdsBoundMakesScanIncomplete) {
  OwnerResolver resolver(proc_.root());
  bool complete = true;
  // 45 (one fd) then 123: the second descriptor examined is over the bound.
  auto owners = resolver.ResolveInodes({888, 555}, &complete, 1);
  EXPECT_FALSE(complete);
  EXPECT_TRUE(owners.empty());

  // Exactly enough for every descriptor: complete.
  owners = resolver.ResolveInodes({888, 555, 31337}, &complete, kTotalFds);
  EXPECT_TRUE(complete);
  EXPECT_EQ(owners.size(), 2u);

  // One short of the whole tree: incomplete, but what was found is kept.
  owners = resolver.ResolveInodes({888, 31337}, &complete, kTotalFds - 1);
  EXPECT_FALSE(complete);
  ASSERT_EQ(owners.count(888), 1u);
  EXPECT_EQ(owners.at(888).tgid, 123u);

  // No bound at all: nothing examined.
  owners = resolver.ResolveInodes({777}, &complete, 0);
  EXPECT_FALSE(complete);
  EXPECT_TRUE(owners.empty());
}

TEST_F(OwnerResolverFakeTest, StopsEarlyOnceEveryInodeIsFound) {
  OwnerResolver resolver(proc_.root());
  bool complete = false;
  // 45 is scanned first and holds 777 in its only descriptor; pids are
  // visited in ascending order, so nobody later can be a lower holder and
  // the bound is never reached.
  const auto owners = resolver.ResolveInodes({777}, &complete, 1);
  EXPECT_TRUE(complete);
  ASSERT_EQ(owners.count(777), 1u);
  EXPECT_EQ(owners.at(777).tgid, 45u);
}

TEST_F(OwnerResolverFakeTest, ZeroBudgetMakesScanIncomplete) {
  OwnerResolver resolver(proc_.root());
  bool complete = true;
  const auto owners = resolver.ResolveInodes({777}, &complete, 4000000,
                                             std::chrono::milliseconds(0));
  EXPECT_FALSE(complete);
  EXPECT_TRUE(owners.empty());
}

TEST_F(OwnerResolverFakeTest, CompleteMayBeOmitted) {
  OwnerResolver resolver(proc_.root());
  EXPECT_EQ(resolver.ResolveInodes({888}).at(888).tgid, 123u);
}

TEST_F(OwnerResolverFakeTest, DescribeReadsCommAndUnit) {
  OwnerResolver resolver(proc_.root());
  const std::optional<ProcessInfo> info = resolver.Describe(123);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->tgid, 123u);
  EXPECT_EQ(info->comm, "nginx");
  EXPECT_EQ(info->unit, "nginx.service");
}

TEST_F(OwnerResolverFakeTest, DescribeParsesStatWithParenthesesInComm) {
  OwnerResolver resolver(proc_.root());
  std::optional<ProcessInfo> info = resolver.Describe(321);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->comm, "(a) b)");
  EXPECT_EQ(info->unit, "session-3.scope");

  // The start time was parsed (field 22 counted from the LAST ')'): same
  // start time -> cached, a different one -> re-read.
  proc_.Write(321, "comm", "changed\n");
  info = resolver.Describe(321);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->comm, "(a) b)");
  proc_.Write(321, "stat", StatLine(321, "(a) b)", 424243));
  info = resolver.Describe(321);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->comm, "changed");
}

TEST_F(OwnerResolverFakeTest, DescribeVanishedOrUnknownPidIsNullopt) {
  OwnerResolver resolver(proc_.root());
  EXPECT_FALSE(resolver.Describe(999).has_value());   // fd dir only
  EXPECT_FALSE(resolver.Describe(4000).has_value());  // empty dir
  EXPECT_FALSE(resolver.Describe(77777).has_value());
  EXPECT_FALSE(resolver.Describe(0).has_value());

  // A process that was described and then exits is not answered from cache.
  ASSERT_TRUE(resolver.Describe(45).has_value());
  ASSERT_TRUE(RemoveTree(proc_.Dir(45)));
  EXPECT_FALSE(resolver.Describe(45).has_value());
}

TEST_F(OwnerResolverFakeTest, DescribeNoticesRecycledPid) {
  OwnerResolver resolver(proc_.root());
  ASSERT_EQ(resolver.Describe(123)->comm, "nginx");
  // Same pid, new process: different start time, comm and unit.
  proc_.Write(123, "comm", "sshd\n");
  proc_.Write(123, "cgroup", "0::/system.slice/ssh.service\n");
  proc_.Write(123, "stat", StatLine(123, "sshd", 2500));
  const std::optional<ProcessInfo> info = resolver.Describe(123);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->comm, "sshd");
  EXPECT_EQ(info->unit, "ssh.service");
}

TEST_F(OwnerResolverFakeTest, DescribeWithUnparsableStatIsNotCached) {
  OwnerResolver resolver(proc_.root());
  proc_.Write(123, "stat", "123 (nginx S 1 2 3\n");  // no ')', too short
  ASSERT_EQ(resolver.Describe(123)->comm, "nginx");
  proc_.Write(123, "comm", "other\n");
  EXPECT_EQ(resolver.Describe(123)->comm, "other");
}

TEST_F(OwnerResolverFakeTest, DescribeFallsBackToV1SystemdHierarchy) {
  OwnerResolver resolver(proc_.root());
  proc_.Write(123, "cgroup",
              "12:pids:/system.slice/nginx.service\n"
              "1:name=systemd:/system.slice/legacy.service\n");
  proc_.Write(123, "stat", StatLine(123, "nginx", 9999));  // bypass cache
  EXPECT_EQ(resolver.Describe(123)->unit, "legacy.service");
}

TEST_F(OwnerResolverFakeTest, DescribeWithoutCgroupFileHasEmptyUnit) {
  OwnerResolver resolver(proc_.root());
  ASSERT_EQ(unlink((proc_.Dir(123) + "/cgroup").c_str()), 0);
  const std::optional<ProcessInfo> info = resolver.Describe(123);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->comm, "nginx");
  EXPECT_EQ(info->unit, "");
}

// ---------------------------------------------------------------------------
// The real /proc

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string SelfComm() {
  std::string comm = ReadFile("/proc/self/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

std::string SelfUnit() {
  std::istringstream lines(ReadFile("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("0::", 0) == 0) return UnitFromCgroupPath(line.substr(3));
  }
  return "";
}

class ListeningSocket {
 public:
  ListeningSocket() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd_, 1) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~ListeningSocket() {
    if (fd_ >= 0) close(fd_);
  }
  ListeningSocket(const ListeningSocket&) = delete;
  ListeningSocket& operator=(const ListeningSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

TEST(OwnerResolverRealProcTest, FindsOwnListeningSocket) {
  ListeningSocket sock;
  ASSERT_GE(sock.fd(), 0) << "socket/bind/listen failed";
  struct stat st {};
  ASSERT_EQ(fstat(sock.fd(), &st), 0);
  ASSERT_TRUE(S_ISSOCK(st.st_mode));
  const uint32_t inode = static_cast<uint32_t>(st.st_ino);

  OwnerResolver resolver;
  bool complete = false;
  // A generous budget: this checks correctness, not speed, and sanitizers
  // on a busy machine are slow.
  const auto start = std::chrono::steady_clock::now();
  const auto owners = resolver.ResolveInodes({inode}, &complete, 4000000,
                                             std::chrono::milliseconds(30000));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(complete);
  ASSERT_EQ(owners.count(inode), 1u);
  EXPECT_EQ(owners.at(inode).tgid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(owners.at(inode).comm, SelfComm());
  EXPECT_EQ(owners.at(inode).unit, SelfUnit());
  RecordProperty(
      "resolve_us",
      std::to_string(
          std::chrono::duration_cast<std::chrono::microseconds>(elapsed)
              .count()));
}

TEST(OwnerResolverRealProcTest, DescribesSelf) {
  OwnerResolver resolver;
  const std::optional<ProcessInfo> info =
      resolver.Describe(static_cast<uint32_t>(getpid()));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->tgid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(info->comm, SelfComm());
  EXPECT_EQ(info->unit, SelfUnit());
  // Cached path gives the same answer.
  const std::optional<ProcessInfo> again =
      resolver.Describe(static_cast<uint32_t>(getpid()));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->comm, info->comm);
  EXPECT_EQ(again->unit, info->unit);
}

// A socket nobody holds forces a scan of every descriptor on the machine;
// it must finish within the default bounds on any reasonable host.
TEST(OwnerResolverRealProcTest, FullScanOfUnheldInode) {
  OwnerResolver resolver;
  bool complete = false;
  const auto start = std::chrono::steady_clock::now();
  // Socket inodes come from a 32-bit counter; the top value is practically
  // never live.
  const auto owners = resolver.ResolveInodes({4294967295u}, &complete, 4000000,
                                             std::chrono::milliseconds(30000));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(complete);
  EXPECT_TRUE(owners.empty());
  RecordProperty(
      "full_scan_us",
      std::to_string(
          std::chrono::duration_cast<std::chrono::microseconds>(elapsed)
              .count()));
}

}  // namespace
