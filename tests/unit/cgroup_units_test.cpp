// CgroupUnits on a fake cgroup v2 tree: a cgroup id (a directory's inode)
// names its unit, new cgroups are found by a rescan, and a tree that is not
// cgroup v2 answers "unknown" so the caller falls back to the pid.
#include "tcpstated/cgroup_units.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

namespace tcpstated {
namespace {

class CgroupUnitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcpstated-cgroup-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  void MarkCgroup2() {
    std::ofstream(root_ + "/cgroup.controllers") << "cpu memory\n";
  }
  uint64_t MakeCgroup(const std::string& path) {
    std::string full = root_;
    size_t pos = 1;
    while (pos <= path.size()) {
      size_t next = path.find('/', pos);
      if (next == std::string::npos) next = path.size();
      full = root_ + path.substr(0, next);
      mkdir(full.c_str(), 0755);
      pos = next + 1;
    }
    struct stat st {};
    EXPECT_EQ(stat(full.c_str(), &st), 0) << full;
    return st.st_ino;
  }
  uint64_t InodeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  }

  std::string root_;
};

TEST_F(CgroupUnitsTest, IdNamesTheInnermostUnit) {
  MarkCgroup2();
  const uint64_t nginx = MakeCgroup("/system.slice/nginx.service");
  const uint64_t sub = MakeCgroup("/system.slice/app.service/workers");
  const uint64_t slice = MakeCgroup("/user.slice");
  CgroupUnits units(root_);
  EXPECT_EQ(units.UnitOf(nginx), "nginx.service");
  EXPECT_EQ(units.UnitOf(sub), "app.service");
  EXPECT_EQ(units.UnitOf(slice), "");
  EXPECT_EQ(units.UnitOf(InodeOf(root_)), "");
  EXPECT_EQ(units.size(), 6u);  // root, system.slice, 3 below, user.slice
}

TEST_F(CgroupUnitsTest, ACgroupMadeLaterIsFoundByARescan) {
  MarkCgroup2();
  MakeCgroup("/system.slice");
  CgroupUnits units(root_, std::chrono::milliseconds(0));
  EXPECT_EQ(units.size(), 0u);     // nothing read before the first call
  EXPECT_EQ(units.UnitOf(1), "");  // no such cgroup: no unit
  const uint64_t later = MakeCgroup("/system.slice/late.service");
  EXPECT_EQ(units.UnitOf(later), "late.service");
}

TEST_F(CgroupUnitsTest, RescansAreRateLimited) {
  MarkCgroup2();
  CgroupUnits units(root_, std::chrono::hours(1));
  EXPECT_EQ(units.UnitOf(1), "");
  const uint64_t later = MakeCgroup("/system.slice/late.service");
  // Within the interval a miss is answered from the last walk.
  EXPECT_EQ(units.UnitOf(later), "");
}

TEST_F(CgroupUnitsTest, HybridHostsHierarchyIsUnderUnified) {
  MakeCgroup("/unified");
  std::ofstream(root_ + "/unified/cgroup.controllers") << "\n";
  const uint64_t id = MakeCgroup("/unified/system.slice/cron.service");
  MakeCgroup("/systemd/system.slice/other.service");  // a v1 hierarchy
  CgroupUnits units(root_);
  EXPECT_EQ(units.UnitOf(id), "cron.service");
  EXPECT_EQ(units.size(), 3u);  // unified, system.slice, cron.service
}

TEST_F(CgroupUnitsTest, NotACgroup2TreeIsUnknown) {
  const uint64_t id = MakeCgroup("/system.slice/nginx.service");
  CgroupUnits units(root_);
  EXPECT_EQ(units.UnitOf(id), std::nullopt);
  CgroupUnits missing(root_ + "/does-not-exist");
  EXPECT_EQ(missing.UnitOf(id), std::nullopt);
}

}  // namespace
}  // namespace tcpstated
