// Unit tests of the state file's text format (state_file.h): what is
// written reads back the same, and every damaged file is refused with a
// reason instead of being half read.
#include "tcpstated/state_file.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using tcpstated::FormatStateFile;
using tcpstated::kMaxStateEntries;
using tcpstated::kMaxStateFileBytes;
using tcpstated::ParseStateFile;
using tcpstated::SavedSocket;
using tcpstated::StateFile;
using S = tcpstated::TcpState;

StateFile Sample() {
  StateFile f;
  f.boot_id = "0f6b2c1e-9d5a-4c4b-8a43-1d2e3f405162";
  f.written_ns = 123456789012345ULL;
  SavedSocket cw;
  cw.netns = 4026531840u;
  cw.netns_cookie = 1;
  cw.cookie = 4242;
  cw.state = S::kCloseWait;
  cw.saddr = {127, 0, 0, 1};
  cw.daddr = {127, 0, 0, 2};
  cw.sport = 8080;
  cw.dport = 40001;
  cw.entered_ns = 987654321ULL;
  SavedSocket v6 = cw;
  v6.ipv6 = true;
  v6.state = S::kFinWait2;
  v6.cookie = 0;
  v6.netns_cookie = 0;
  v6.saddr.fill(0xfe);
  v6.daddr.fill(0x01);
  v6.sport = 65535;
  v6.dport = 1;
  v6.entered_ns = UINT64_MAX;
  v6.lower_bound = true;
  f.sockets = {cw, v6};
  return f;
}

void ExpectSame(const SavedSocket& a, const SavedSocket& b) {
  EXPECT_EQ(a.netns, b.netns);
  EXPECT_EQ(a.netns_cookie, b.netns_cookie);
  EXPECT_EQ(a.cookie, b.cookie);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.ipv6, b.ipv6);
  EXPECT_EQ(a.saddr, b.saddr);
  EXPECT_EQ(a.daddr, b.daddr);
  EXPECT_EQ(a.sport, b.sport);
  EXPECT_EQ(a.dport, b.dport);
  EXPECT_EQ(a.entered_ns, b.entered_ns);
  EXPECT_EQ(a.lower_bound, b.lower_bound);
}

std::string Refusal(const std::string& text) {
  StateFile out;
  out.boot_id = "untouched";
  std::string error;
  EXPECT_FALSE(ParseStateFile(text, &out, &error)) << text;
  EXPECT_EQ(out.boot_id, "untouched") << "a refused file changed the output";
  EXPECT_FALSE(error.empty());
  return error;
}

TEST(StateFileTest, WhatIsWrittenReadsBack) {
  const StateFile in = Sample();
  const std::string text = FormatStateFile(in);
  StateFile out;
  std::string error;
  ASSERT_TRUE(ParseStateFile(text, &out, &error)) << error << "\n" << text;
  EXPECT_EQ(out.boot_id, in.boot_id);
  EXPECT_EQ(out.written_ns, in.written_ns);
  ASSERT_EQ(out.sockets.size(), 2u);
  ExpectSame(out.sockets[0], in.sockets[0]);
  ExpectSame(out.sockets[1], in.sockets[1]);
  EXPECT_EQ(text.rfind("end\n"), text.size() - 4);
}

TEST(StateFileTest, AnEmptyStateIsAFile) {
  StateFile in;
  in.boot_id = "b";
  StateFile out;
  std::string error;
  ASSERT_TRUE(ParseStateFile(FormatStateFile(in), &out, &error)) << error;
  EXPECT_TRUE(out.sockets.empty());
}

TEST(StateFileTest, ABootIdWithSpacesIsNotWritten) {
  StateFile in;
  in.boot_id = "two words";
  StateFile out;
  std::string error;
  ASSERT_TRUE(ParseStateFile(FormatStateFile(in), &out, &error)) << error;
  EXPECT_EQ(out.boot_id, "unknown");
}

TEST(StateFileTest, TruncatedFilesAreRefused) {
  const std::string text = FormatStateFile(Sample());
  // Every prefix but the whole: a crash mid-write (were it not atomic) or a
  // full disk never reads as a shorter valid file.
  for (size_t n = 0; n < text.size(); ++n) {
    Refusal(text.substr(0, n));
  }
}

TEST(StateFileTest, ForeignAndCorruptFilesAreRefused) {
  const std::string good = FormatStateFile(Sample());
  auto replace = [&good](const std::string& from, const std::string& to) {
    std::string t = good;
    const size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  EXPECT_NE(Refusal(replace("tcpstated-state 1", "tcpstated-state 2"))
                .find("version 2"),
            std::string::npos);
  Refusal(replace("tcpstated-state", "something-else"));
  Refusal(replace("entries 2", "entries 3"));
  Refusal(replace("entries 2", "entries 1"));
  Refusal(replace("entries 2", "entries -1"));
  Refusal(
      replace("entries 2", "entries " + std::to_string(kMaxStateEntries + 1)));
  Refusal(replace(" 8080 ", " 65536 "));     // a port out of range
  Refusal(replace(" 8 4 ", " 99 4 "));       // no such state
  Refusal(replace(" 8 4 ", " 8 5 "));        // no such family
  Refusal(replace("7f000001", "7f00000g"));  // not hex
  Refusal(replace("7f000001", "7F000001"));  // not as written
  Refusal(replace(" exact\n", " maybe\n"));
  Refusal(replace(" exact\n", "  exact\n"));  // an empty field
  Refusal(replace(" exact\n", " exact \n"));
  Refusal(replace(" exact\n", " exact 1\n"));             // a field too many
  Refusal(replace("987654321", "18446744073709551616"));  // > 2^64 - 1
  Refusal(good + "s 1\n");                                // after "end"
  Refusal(replace("end\n", "end"));
  Refusal(std::string(good).insert(0, "\n"));
  Refusal(std::string("tcpstated-state 1\0\n", 19));
}

TEST(StateFileTest, OversizedFilesAreRefusedUnread) {
  std::string huge(kMaxStateFileBytes + 1, 'x');
  EXPECT_NE(Refusal(huge).find("larger than"), std::string::npos);
}

TEST(StateFileTest, AtMostTheCapIsWrittenAndReadBack) {
  StateFile in = Sample();
  in.sockets.resize(kMaxStateEntries + 5, in.sockets[0]);
  const std::string text = FormatStateFile(in);
  EXPECT_LE(text.size(), kMaxStateFileBytes);
  StateFile out;
  std::string error;
  ASSERT_TRUE(ParseStateFile(text, &out, &error)) << error;
  EXPECT_EQ(out.sockets.size(), kMaxStateEntries);
}

}  // namespace
