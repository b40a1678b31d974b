// Unit tests of the netstat and sysctl parsers (captured, hand-made, broken
// and random input) and the ephemeral-port arithmetic; and, as root, of
// network-namespace discovery, RunInNetns and per-namespace reading against
// the running kernel, in namespaces created for the test and always removed.

#include "tcpstated/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tcpstated/kernel_settings.h"
#include "tcpstated/namespace_reads.h"
#include "tcpstated/proc_net_files.h"

namespace {

using tcpstated::CurrentNetnsCookie;
using tcpstated::CurrentNetnsInode;
using tcpstated::DiscoverStats;
using tcpstated::EphemeralPortsAvailable;
using tcpstated::NamespaceRequest;
using tcpstated::NamespaceResult;
using tcpstated::NetnsHandle;
using tcpstated::NetnsRegistry;
using tcpstated::OpenNetns;
using tcpstated::ParseNetstat;
using tcpstated::ParseTcpSettings;
using tcpstated::ReadNamespaces;
using tcpstated::ReadNetstat;
using tcpstated::ReadTcpSettings;
using tcpstated::RunInNetns;
using tcpstated::TcpExtCounters;
using tcpstated::TcpSettings;

// /proc/net/netstat of the development machine (Linux 6.18), verbatim.
const std::string kCapturedNetstat =
    "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed"
    " EmbryonicRsts PruneCalled RcvPruned OfoPruned OutOfWindowIcmps"
    " LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive"
    " PAWSEstab BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait"
    " DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows"
    " ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery"
    " TCPSackRecovery TCPSACKReneging TCPSACKReorder TCPRenoReorder"
    " TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo TCPLossUndo"
    " TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures"
    " TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes"
    " TCPLossProbeRecovery TCPRenoRecoveryFail TCPSackRecoveryFail"
    " TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent"
    " TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData"
    " TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout"
    " TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures"
    " TCPMemoryPressuresChrono TCPSACKDiscard TCPDSACKIgnoredOld"
    " TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound"
    " TCPMD5Unexpected TCPMD5Failure TCPSackShifted TCPSackMerged"
    " TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop TCPMinTTLDrop"
    " TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow"
    " TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail"
    " TCPRcvCoalesce TCPOFOQueue TCPOFODrop TCPOFOMerge TCPChallengeACK"
    " TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail"
    " TCPFastOpenPassive TCPFastOpenPassiveFail"
    " TCPFastOpenListenOverflow TCPFastOpenCookieReqd"
    " TCPFastOpenBlackhole TCPSpuriousRtxHostQueues BusyPollRxPackets"
    " TCPAutoCorking TCPFromZeroWindowAdv TCPToZeroWindowAdv"
    " TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent"
    " TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect"
    " TCPHystartDelayCwnd TCPACKSkippedSynRecv TCPACKSkippedPAWS"
    " TCPACKSkippedSeq TCPACKSkippedFinWait2 TCPACKSkippedTimeWait"
    " TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail"
    " TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed"
    " TCPZeroWindowDrop TCPRcvQDrop TCPWqueueTooBig"
    " TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash"
    " TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess"
    " TCPMigrateReqFailure TCPPLBRehash TCPAORequired TCPAOBad"
    " TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps\n"
    "TcpExt: 0 0 0 0 0 0 0 0 0 0 591 0 0 0 0 0 0 0 0 75 0 0 0 0 57 2241"
    " 582 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 2 0 0 0 0 0 6 0 0 0 0 1 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 36 0 0 0 0 0 1922 0 0 0 0 0 0 0"
    " 0 0 0 0 0 2 0 1 143 143 0 0 2825 0 0 0 0 0 0 0 0 0 0 0 0 0 0 3418"
    " 0 0 0 0 0 0 2 0 0 0 0 0 0 0 0 0 0 0\n"
    "IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts"
    " InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets"
    " OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors"
    " InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps\n"
    "IpExt: 0 0 0 0 0 0 74476019 10781695 0 0 0 0 0 8396 0 0 0 0\n"
    "MPTcpExt: MPCapableSYNRX MPCapableSYNTX MPCapableSYNACKRX"
    " MPCapableACKRX MPCapableFallbackACK MPCapableFallbackSYNACK"
    " MPCapableSYNTXDrop MPCapableSYNTXDisabled MPCapableEndpAttempt"
    " MPFallbackTokenInit MPTCPRetrans MPJoinNoTokenFound MPJoinSynRx"
    " MPJoinSynBackupRx MPJoinSynAckRx MPJoinSynAckBackupRx"
    " MPJoinSynAckHMacFailure MPJoinAckRx MPJoinAckHMacFailure"
    " MPJoinRejected MPJoinSynTx MPJoinSynTxCreatSkErr"
    " MPJoinSynTxBindErr MPJoinSynTxConnectErr DSSNotMatching"
    " DSSCorruptionFallback DSSCorruptionReset InfiniteMapTx"
    " InfiniteMapRx DSSNoMatchTCP DataCsumErr OFOQueueTail OFOQueue"
    " OFOMerge NoDSSInWindow DuplicateData AddAddr AddAddrTx"
    " AddAddrTxDrop EchoAdd EchoAddTx EchoAddTxDrop PortAdd AddAddrDrop"
    " MPJoinPortSynRx MPJoinPortSynAckRx MPJoinPortAckRx"
    " MismatchPortSynRx MismatchPortAckRx RmAddr RmAddrDrop RmAddrTx"
    " RmAddrTxDrop RmSubflow MPPrioTx MPPrioRx MPFailTx MPFailRx"
    " MPFastcloseTx MPFastcloseRx MPRstTx MPRstRx SubflowStale"
    " SubflowRecover SndWndShared RcvWndShared RcvWndConflictUpdate"
    " RcvWndConflict MPCurrEstab Blackhole MPCapableDataFallback"
    " MD5SigFallback DssFallback SimultConnectFallback FallbackFailed"
    " WinProbe\n"
    "MPTcpExt: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
// The names of the captured TcpExt header, in order.
std::vector<std::string> CapturedTcpExtNames() {
  std::istringstream in(kCapturedNetstat);
  std::string line;
  std::getline(in, line);
  std::istringstream words(line);
  std::vector<std::string> names;
  std::string word;
  words >> word;  // "TcpExt:"
  while (words >> word) names.push_back(word);
  return names;
}

// Expects ParseNetstat to reject `text` with an invalid_argument whose
// message contains `needle`.
void ExpectBadNetstat(const std::string& text, const std::string& needle) {
  try {
    ParseNetstat(text);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' lacks '" << needle << "'";
  }
}

// ---- ParseNetstat ---------------------------------------------------------

TEST(ParseNetstatTest, CapturedText) {
  TcpExtCounters c = ParseNetstat(kCapturedNetstat);
  EXPECT_EQ(c.TW, 591u);
  EXPECT_EQ(c.ListenOverflows, 0u);
  EXPECT_EQ(c.ListenDrops, 0u);
  EXPECT_EQ(c.TCPTimeWaitOverflow, 0u);
  EXPECT_EQ(c.SyncookiesSent, 0u);
  EXPECT_EQ(c.TWKilled, 0u);
}

// The captured header with value i+1000 at position i: every field must land
// in its own member, wherever the kernel put it.
TEST(ParseNetstatTest, CapturedHeaderMapsEachField) {
  std::vector<std::string> names = CapturedTcpExtNames();
  ASSERT_GT(names.size(), 100u);
  std::string header = "TcpExt:";
  std::string values = "TcpExt:";
  std::map<std::string, uint64_t> expected;
  for (size_t i = 0; i < names.size(); ++i) {
    header += " " + names[i];
    values += " " + std::to_string(i + 1000);
    expected[names[i]] = i + 1000;
  }
  TcpExtCounters c = ParseNetstat(header + "\n" + values + "\n");
  EXPECT_EQ(c.ListenOverflows, expected["ListenOverflows"]);
  EXPECT_EQ(c.ListenDrops, expected["ListenDrops"]);
  EXPECT_EQ(c.TCPReqQFullDrop, expected["TCPReqQFullDrop"]);
  EXPECT_EQ(c.TCPReqQFullDoCookies, expected["TCPReqQFullDoCookies"]);
  EXPECT_EQ(c.SyncookiesSent, expected["SyncookiesSent"]);
  EXPECT_EQ(c.SyncookiesRecv, expected["SyncookiesRecv"]);
  EXPECT_EQ(c.SyncookiesFailed, expected["SyncookiesFailed"]);
  EXPECT_EQ(c.TCPTimeWaitOverflow, expected["TCPTimeWaitOverflow"]);
  EXPECT_EQ(c.TW, expected["TW"]);
  EXPECT_EQ(c.TWRecycled, expected["TWRecycled"]);
  EXPECT_EQ(c.TWKilled, expected["TWKilled"]);
  EXPECT_EQ(c.EmbryonicRsts, expected["EmbryonicRsts"]);
}

TEST(ParseNetstatTest, MissingFieldsAreZero) {
  TcpExtCounters c = ParseNetstat("TcpExt: TW ListenDrops\nTcpExt: 5 7\n");
  EXPECT_EQ(c.TW, 5u);
  EXPECT_EQ(c.ListenDrops, 7u);
  EXPECT_EQ(c.ListenOverflows, 0u);
  EXPECT_EQ(c.SyncookiesSent, 0u);
  EXPECT_EQ(c.EmbryonicRsts, 0u);
  // An empty TcpExt table is well formed: all zero.
  TcpExtCounters empty = ParseNetstat("TcpExt:\nTcpExt:\n");
  EXPECT_EQ(empty.TW, 0u);
}

TEST(ParseNetstatTest, ReorderedExtraFieldsAndOtherSections) {
  TcpExtCounters c = ParseNetstat(
      "IpExt: InOctets OutOctets\n"
      "IpExt: 123 456\n"
      "TcpExt: FutureCounter SyncookiesFailed TWRecycled ListenOverflows\n"
      "TcpExt: 99 3 2 1\n"
      "MPTcpExt: MPCurrEstab\n"
      "MPTcpExt: 0\n");
  EXPECT_EQ(c.ListenOverflows, 1u);
  EXPECT_EQ(c.TWRecycled, 2u);
  EXPECT_EQ(c.SyncookiesFailed, 3u);
  EXPECT_EQ(c.TW, 0u);
}

TEST(ParseNetstatTest, ToleratesBlankLinesCrlfAndExtraSpaces) {
  TcpExtCounters c =
      ParseNetstat("\n\nTcpExt:  TW   TWKilled \r\nTcpExt:\t8 9\r\n\n   \n");
  EXPECT_EQ(c.TW, 8u);
  EXPECT_EQ(c.TWKilled, 9u);
}

TEST(ParseNetstatTest, FullUint64Range) {
  TcpExtCounters c =
      ParseNetstat("TcpExt: TW ListenDrops\nTcpExt: 18446744073709551615 0\n");
  EXPECT_EQ(c.TW, UINT64_MAX);
}

TEST(ParseNetstatTest, Malformed) {
  ExpectBadNetstat("", "empty");
  ExpectBadNetstat("\n \n\t\n", "empty");
  ExpectBadNetstat("TcpExt: TW ListenDrops\nTcpExt: 1\n", "2 names but 1");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: 1 2\n", "1 names but 2");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: abc\n", "not a number");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: -1\n", "not a number");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: +1\n", "not a number");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: 1.5\n", "not a number");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: 18446744073709551616\n",
                   "not a number");
  ExpectBadNetstat("TcpExt: TW\n", "without a value line");
  ExpectBadNetstat("TcpExt: TW\nIpExt: 1\n", "values for 'IpExt'");
  ExpectBadNetstat("IpExt: InOctets\nIpExt: 1\n", "no TcpExt");
  ExpectBadNetstat("TcpExt: TW\nTcpExt: 1\nTcpExt: TW\nTcpExt: 2\n",
                   "two TcpExt");
  ExpectBadNetstat("TcpExt: TW TW\nTcpExt: 1 2\n", "twice");
  ExpectBadNetstat("TcpExt TW\nTcpExt 1\n", "no 'Section:' prefix");
  ExpectBadNetstat(": TW\n: 1\n", "no 'Section:' prefix");
  ExpectBadNetstat("Tcp Ext: TW\nTcp Ext: 1\n", "bad section name");
  // Another section is checked as strictly as TcpExt.
  ExpectBadNetstat("IpExt: A\nIpExt: x\nTcpExt: TW\nTcpExt: 1\n",
                   "not a number");
  // A truncated capture: the last value line lost.
  std::string truncated =
      kCapturedNetstat.substr(0, kCapturedNetstat.rfind("MPTcpExt: 0"));
  ExpectBadNetstat(truncated, "without a value line");
}

TEST(ParseNetstatTest, ErrorMessagesAreShortAndPrintable) {
  std::string garbage(100000, '\x01');
  try {
    ParseNetstat("TcpExt: TW\nTcpExt: " + garbage + "\n");
    FAIL() << "accepted garbage";
  } catch (const std::invalid_argument& e) {
    std::string message = e.what();
    EXPECT_LT(message.size(), 200u) << message;
    for (char ch : message) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << message;
  }
}

// For any input: either std::invalid_argument with a one-line "netstat: "
// message, or counters that the text really holds (each non-zero value is
// one of its tokens). Crashes are the fuzzer's (tests/fuzz/fuzz_netstat.cpp).
void ExpectParsedOrRefused(const std::string& text) {
  TcpExtCounters counters;
  try {
    counters = ParseNetstat(text);
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("netstat: ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return;
  }
  EXPECT_NE(text.find("TcpExt:"), std::string::npos) << text;
  for (uint64_t value :
       {counters.ListenOverflows, counters.ListenDrops,
        counters.TCPReqQFullDrop, counters.TCPReqQFullDoCookies,
        counters.SyncookiesSent, counters.SyncookiesRecv,
        counters.SyncookiesFailed, counters.TCPTimeWaitOverflow, counters.TW,
        counters.TWRecycled, counters.TWKilled, counters.EmbryonicRsts}) {
    if (value == 0) continue;
    EXPECT_NE(text.find(std::to_string(value)), std::string::npos)
        << value << " is not in:\n"
        << text;
  }
}

TEST(ParseNetstatTest, RandomGarbageIsRefusedOrReadAsWritten) {
  std::mt19937 rng(20240613);
  const std::string alphabet = "TcpExt: 0123456789\n\r\t-+abcXYZ";
  for (int i = 0; i < 5000; ++i) {
    std::string text(rng() % 300, '\0');
    bool printable = i % 2 == 0;
    for (char& ch : text) {
      ch = printable ? alphabet[rng() % alphabet.size()]
                     : static_cast<char>(rng() & 0xff);
    }
    ExpectParsedOrRefused(text);
  }
}

TEST(ParseNetstatTest, MutatedCaptureIsRefusedOrReadAsWritten) {
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string text = kCapturedNetstat;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t at = rng() % text.size();
      switch (rng() % 4) {
        case 0:
          text[at] = static_cast<char>(rng() & 0xff);
          break;
        case 1:
          text.erase(at, 1 + rng() % 20);
          break;
        case 2:
          text.insert(at, 1, "\n :9-"[rng() % 5]);
          break;
        default:
          text.resize(at);
          break;
      }
    }
    ExpectParsedOrRefused(text);
  }
}

// ---- ParseTcpSettings -----------------------------------------------------

// What a default 6.x kernel prints.
std::map<std::string, std::string> DefaultFiles() {
  return {
      {"ip_local_port_range", "32768\t60999\n"},
      {"ip_local_reserved_ports", "\n"},
      {"tcp_max_tw_buckets", "131072\n"},
      {"tcp_tw_reuse", "2\n"},
      {"tcp_fin_timeout", "60\n"},
      {"somaxconn", "4096\n"},
      {"tcp_max_syn_backlog", "2048\n"},
      {"tcp_syncookies", "1\n"},
  };
}

TEST(ParseTcpSettingsTest, DefaultValues) {
  TcpSettings s = ParseTcpSettings(DefaultFiles());
  EXPECT_EQ(s.port_range_lo, 32768u);
  EXPECT_EQ(s.port_range_hi, 60999u);
  EXPECT_TRUE(s.reserved_ports.empty());
  EXPECT_EQ(s.max_tw_buckets, 131072u);
  EXPECT_EQ(s.tw_reuse, 2);
  EXPECT_EQ(s.fin_timeout_s, 60u);
  EXPECT_EQ(s.somaxconn, 4096u);
  EXPECT_EQ(s.max_syn_backlog, 2048u);
  EXPECT_EQ(s.syncookies, 1);
  EXPECT_EQ(EphemeralPortsAvailable(s), 28232u);  // the reference's figure
}

TEST(ParseTcpSettingsTest, ReservedPortsAndEdgeValues) {
  auto files = DefaultFiles();
  files["ip_local_reserved_ports"] = "8080,40000-40009,65535\n";
  files["ip_local_port_range"] = "1 65535";  // no newline, space separated
  files["tcp_fin_timeout"] = "-5\n";         // proc_dointvec_jiffies allows it
  files["tcp_max_tw_buckets"] = "-1\n";      // proc_dointvec allows it
  files["tcp_max_syn_backlog"] = "0";
  files["tcp_syncookies"] = "2";
  files["tcp_tw_reuse"] = " 0 ";
  files["unrelated"] = "garbage";  // ignored
  TcpSettings s = ParseTcpSettings(files);
  ASSERT_EQ(s.reserved_ports.size(), 3u);
  EXPECT_EQ(s.reserved_ports[0], std::make_pair(8080u, 8080u));
  EXPECT_EQ(s.reserved_ports[1], std::make_pair(40000u, 40009u));
  EXPECT_EQ(s.reserved_ports[2], std::make_pair(65535u, 65535u));
  EXPECT_EQ(s.port_range_lo, 1u);
  EXPECT_EQ(s.port_range_hi, 65535u);
  EXPECT_EQ(s.fin_timeout_s, 0u);
  EXPECT_EQ(s.max_tw_buckets, 0u);
  EXPECT_EQ(s.max_syn_backlog, 0u);
  EXPECT_EQ(s.syncookies, 2);
  EXPECT_EQ(s.tw_reuse, 0);
  EXPECT_EQ(EphemeralPortsAvailable(s), 65535u - 12u);
}

struct BadSysctl {
  const char* file;
  const char* value;  // nullptr: leave the key out
  const char* name;   // what the message must name
};

class ParseTcpSettingsBadTest : public ::testing::TestWithParam<BadSysctl> {};

TEST_P(ParseTcpSettingsBadTest, ThrowsNamingTheSysctl) {
  auto files = DefaultFiles();
  if (GetParam().value == nullptr) {
    files.erase(GetParam().file);
  } else {
    files[GetParam().file] = GetParam().value;
  }
  try {
    ParseTcpSettings(files);
    FAIL() << GetParam().file << " = '"
           << (GetParam().value ? GetParam().value : "(none)") << "' accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().name), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Values, ParseTcpSettingsBadTest,
    ::testing::Values(
        BadSysctl{"ip_local_port_range", "", "net.ipv4.ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "32768", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "1 2 3", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "60999 32768", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "0 100", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "1 65536", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "a b", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", "-1 5", "ip_local_port_range"},
        BadSysctl{"ip_local_port_range", nullptr, "ip_local_port_range"},
        BadSysctl{"ip_local_reserved_ports", "80,", "ip_local_reserved_ports"},
        BadSysctl{"ip_local_reserved_ports", "9-8", "ip_local_reserved_ports"},
        BadSysctl{"ip_local_reserved_ports", "70000",
                  "ip_local_reserved_ports"},
        BadSysctl{"ip_local_reserved_ports", "1-2-3",
                  "ip_local_reserved_ports"},
        BadSysctl{"ip_local_reserved_ports", "x", "ip_local_reserved_ports"},
        BadSysctl{"tcp_max_tw_buckets", "lots", "net.ipv4.tcp_max_tw_buckets"},
        BadSysctl{"tcp_max_tw_buckets", "2147483648", "tcp_max_tw_buckets"},
        BadSysctl{"tcp_tw_reuse", "3", "net.ipv4.tcp_tw_reuse"},
        BadSysctl{"tcp_tw_reuse", "-1", "tcp_tw_reuse"},
        BadSysctl{"tcp_fin_timeout", "60s", "net.ipv4.tcp_fin_timeout"},
        BadSysctl{"tcp_fin_timeout", "", "tcp_fin_timeout"},
        BadSysctl{"tcp_fin_timeout", "99999999999999999999", "tcp_fin_timeout"},
        BadSysctl{"somaxconn", "-1", "net.core.somaxconn"},
        BadSysctl{"somaxconn", "4096 4096", "net.core.somaxconn"},
        BadSysctl{"somaxconn", nullptr, "net.core.somaxconn"},
        BadSysctl{"tcp_max_syn_backlog", "0x10", "tcp_max_syn_backlog"},
        BadSysctl{"tcp_syncookies", "256", "net.ipv4.tcp_syncookies"},
        BadSysctl{"tcp_syncookies", "yes", "tcp_syncookies"}));

// ---- EphemeralPortsAvailable ----------------------------------------------

TcpSettings Range(uint32_t lo, uint32_t hi,
                  std::vector<std::pair<uint32_t, uint32_t>> reserved = {}) {
  TcpSettings s;
  s.port_range_lo = lo;
  s.port_range_hi = hi;
  s.reserved_ports = std::move(reserved);
  return s;
}

TEST(EphemeralPortsAvailableTest, NoReservedPorts) {
  EXPECT_EQ(EphemeralPortsAvailable(Range(32768, 60999)), 28232u);
  EXPECT_EQ(EphemeralPortsAvailable(Range(1000, 1000)), 1u);
  EXPECT_EQ(EphemeralPortsAvailable(Range(1, 65535)), 65535u);
  EXPECT_EQ(EphemeralPortsAvailable(Range(2000, 1000)), 0u);
}

TEST(EphemeralPortsAvailableTest, OverlappingReservedRangesCountOnce) {
  // 40000-40099 (100) union 40050-40149 (+50) union 40100 (inside) union
  // 40120-40130 (inside) = 150 ports.
  EXPECT_EQ(
      EphemeralPortsAvailable(Range(
          40000, 40999,
          {{40050, 40149}, {40000, 40099}, {40100, 40100}, {40120, 40130}})),
      1000u - 150u);
  // The same range twice, and a single port repeated.
  EXPECT_EQ(EphemeralPortsAvailable(Range(
                100, 199, {{110, 119}, {110, 119}, {150, 150}, {150, 150}})),
            100u - 11u);
  // Adjacent ranges: no gap, no double count.
  EXPECT_EQ(EphemeralPortsAvailable(Range(100, 199, {{100, 149}, {150, 199}})),
            0u);
}

TEST(EphemeralPortsAvailableTest, ReservedRangesPartlyOrWhollyOutside) {
  // 30000-32999 overlaps the bottom by 232 ports; 60000-61999 the top by
  // 1000; 8080 and 62000-65535 lie outside.
  EXPECT_EQ(
      EphemeralPortsAvailable(Range(
          32768, 60999,
          {{8080, 8080}, {30000, 32999}, {60000, 61999}, {62000, 65535}})),
      28232u - 232u - 1000u);
  // A reserved range covering the whole ephemeral range and more.
  EXPECT_EQ(EphemeralPortsAvailable(Range(32768, 60999, {{1, 65535}})), 0u);
  // Backwards pairs in a hand-built struct are tolerated.
  EXPECT_EQ(EphemeralPortsAvailable(Range(100, 199, {{119, 110}})), 90u);
}

// ---- Namespace plumbing without privileges --------------------------------

TEST(RunInNetnsTest, BadDescriptorThrowsWithoutRunning) {
  bool ran = false;
  try {
    RunInNetns(-1, [&ran] { ran = true; });
    FAIL() << "ran with fd -1";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF) << e.what();
  }
  EXPECT_FALSE(ran);
}

TEST(OpenNetnsTest, RejectsWhatIsNotANetworkNamespace) {
  NetnsHandle missing{0, 0, "x", "/nonexistent/tcpstated/ns"};
  EXPECT_EQ(OpenNetns(missing), -1);
  EXPECT_EQ(errno, ENOENT);
  NetnsHandle regular{0, 0, "x", "/proc/self/status"};
  EXPECT_EQ(OpenNetns(regular), -1);
  EXPECT_EQ(errno, EINVAL);
}

// A fake /proc with no processes and a /run/netns full of things that are
// not namespaces (a stale file, a FIFO that must not block open(), a
// directory): nothing found, nothing thrown, nothing hung.
TEST(NetnsRegistryTest, FakeTreeFindsNothing) {
  char dir_template[] = "/tmp/tcpstated-netns-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string root = dir_template;
  std::string proc = root + "/proc";
  std::string run = root + "/netns";
  ASSERT_EQ(mkdir(proc.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(run.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((proc + "/self").c_str(), 0755), 0);
  std::ofstream(proc + "/self/mountinfo")
      << "44 43 0:4 net:[4026532177] /nonexistent/x rw - nsfs nsfs rw\n"
         "garbage line\n\n - \n";
  std::ofstream(run + "/stale");
  ASSERT_EQ(mkfifo((run + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(mkdir((run + "/dir").c_str(), 0755), 0);

  NetnsRegistry registry(proc, run);
  DiscoverStats stats;
  std::vector<NetnsHandle> found = registry.Discover(&stats);
  EXPECT_TRUE(found.empty());
  EXPECT_EQ(stats.pids_scanned, 0u);
  EXPECT_FALSE(stats.pid_limit_reached);

  NetnsRegistry no_proc(root + "/missing", run);
  EXPECT_THROW(no_proc.Discover(), std::system_error);

  std::string cleanup = "rm -rf '" + root + "'";
  EXPECT_EQ(std::system(cleanup.c_str()), 0);
}

// ---- Against the running kernel (root) ------------------------------------

#define SKIP_UNLESS_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root"

uint32_t InodeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
}

// Where the host namespace is expected: PID 1's, unless PID 1 denies even
// root (this development VM's init does), then kthreadd's.
std::string HostPath() {
  if (InodeOf("/proc/1/ns/net") != 0) return "/proc/1/ns/net";
  std::ifstream comm_file("/proc/2/comm");
  std::string comm;
  std::getline(comm_file, comm);
  return comm == "kthreadd" ? "/proc/2/ns/net" : "";
}

int Run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

// `ip netns add` on construction, `ip netns del` however the test ends.
class TestNetns {
 public:
  explicit TestNetns(const std::string& suffix = "")
      : name_("tcpstated-test-netns-" + std::to_string(getpid()) + suffix) {
    Run("ip netns del " + name_);  // left over from a crashed run
    added_ = Run("ip netns add " + name_) == 0;
  }
  ~TestNetns() {
    if (added_ && Run("ip netns del " + name_) != 0) {
      ADD_FAILURE() << "could not delete netns " << name_;
    }
  }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  bool added() const { return added_; }
  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  int Exec(const std::string& command) const {
    return Run("ip netns exec " + name_ + " " + command);
  }

 private:
  std::string name_;
  bool added_ = false;
};

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A `sleep` alone in a fresh network namespace (unshare -n execs it in
// place, so the pid is the child's); killed and reaped however the test ends.
class LonelyProcess {
 public:
  LonelyProcess() {
    pid_ = fork();
    if (pid_ == 0) {
      execlp("unshare", "unshare", "-n", "sleep", "60",
             static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~LonelyProcess() { Kill(); }
  LonelyProcess(const LonelyProcess&) = delete;
  LonelyProcess& operator=(const LonelyProcess&) = delete;

  // Waits until the exec of sleep is done inside the new namespace.
  bool Ready() const {
    if (pid_ <= 0) return false;
    std::string proc = "/proc/" + std::to_string(pid_);
    for (int i = 0; i < 300; ++i) {
      std::ifstream comm_file(proc + "/comm");
      std::string comm;
      std::getline(comm_file, comm);
      uint32_t inode = InodeOf(proc + "/ns/net");
      if (comm == "sleep" && inode != 0 && inode != CurrentNetnsInode()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

const NetnsHandle* FindInode(const std::vector<NetnsHandle>& handles,
                             uint32_t inode) {
  for (const NetnsHandle& handle : handles) {
    if (handle.inode == inode) return &handle;
  }
  return nullptr;
}

TEST(NetnsKernelTest, DiscoverFindsHostAndIpNetns) {
  SKIP_UNLESS_ROOT();
  TestNetns netns;
  ASSERT_TRUE(netns.added()) << "ip netns add " << netns.name();
  std::string host_path = HostPath();
  ASSERT_FALSE(host_path.empty()) << "neither pid 1 nor kthreadd visible";
  uint32_t host_inode = InodeOf(host_path);
  uint32_t test_inode = InodeOf(netns.path());
  ASSERT_NE(host_inode, 0u);
  // 6.18 fixed the initial namespace's inode; before, it was >= 0xF0000000.
  EXPECT_TRUE(host_inode == 0xEFFFFFF9u || host_inode >= 0xF0000000u)
      << host_inode;
  ASSERT_NE(test_inode, 0u);
  uint32_t caller = CurrentNetnsInode();

  DiscoverStats stats;
  auto start = std::chrono::steady_clock::now();
  std::vector<NetnsHandle> handles = NetnsRegistry().Discover(&stats);
  auto elapsed = std::chrono::steady_clock::now() - start;
  RecordProperty(
      "discover_us",
      std::to_string(
          std::chrono::duration_cast<std::chrono::microseconds>(elapsed)
              .count()));
  EXPECT_EQ(CurrentNetnsInode(), caller) << "Discover moved the caller";
  EXPECT_GT(stats.pids_scanned, 0u);
  EXPECT_EQ(stats.cookie_failures, 0u);

  ASSERT_FALSE(handles.empty());
  EXPECT_EQ(handles[0].inode, host_inode) << "host comes first";
  const NetnsHandle* host = FindInode(handles, host_inode);
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->name, "host");
  EXPECT_EQ(host->path, host_path);
  const NetnsHandle* test = FindInode(handles, test_inode);
  ASSERT_NE(test, nullptr);
  EXPECT_EQ(test->name, netns.name());
  EXPECT_EQ(test->path, netns.path());

  // Cookies: set, distinct, and the same as read from inside.
  EXPECT_NE(host->cookie, 0u);
  EXPECT_NE(test->cookie, 0u);
  EXPECT_NE(host->cookie, test->cookie);
  ScopedFd test_fd(OpenNetns(*test));
  ASSERT_GE(test_fd.get(), 0) << std::strerror(errno);
  EXPECT_EQ(RunInNetns(test_fd.get(), CurrentNetnsCookie), test->cookie);
  EXPECT_EQ(RunInNetns(test_fd.get(), CurrentNetnsInode), test_inode);

  // No two handles for one namespace.
  for (size_t i = 0; i < handles.size(); ++i) {
    for (size_t j = i + 1; j < handles.size(); ++j) {
      EXPECT_NE(handles[i].inode, handles[j].inode) << handles[i].name;
    }
  }
}

TEST(NetnsKernelTest, ProcessOnlyNamespaceThenBindMount) {
  SKIP_UNLESS_ROOT();
  LonelyProcess process;
  ASSERT_TRUE(process.Ready()) << "unshare -n sleep did not start";
  std::string pid = std::to_string(process.pid());
  uint32_t inode = InodeOf("/proc/" + pid + "/ns/net");

  std::vector<NetnsHandle> handles = NetnsRegistry().Discover();
  const NetnsHandle* found = FindInode(handles, inode);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->name, "pid:" + pid + ":sleep");
  EXPECT_EQ(found->path, "/proc/" + pid + "/ns/net");
  EXPECT_NE(found->cookie, 0u);
  NetnsHandle by_pid = *found;

  // A bind mount outside /run/netns (with a space, which mountinfo escapes)
  // outranks the pid, and keeps the namespace alive after the process dies.
  std::string mount_path =
      "/tmp/tcpstated test nsfs-" + std::to_string(getpid());
  std::ofstream(mount_path).close();
  struct MountGuard {
    std::string path;
    bool mounted = false;
    ~MountGuard() {
      if (mounted) umount2(path.c_str(), MNT_DETACH);
      unlink(path.c_str());
    }
  } guard{mount_path};
  ASSERT_EQ(mount(("/proc/" + pid + "/ns/net").c_str(), mount_path.c_str(),
                  nullptr, MS_BIND, nullptr),
            0)
      << std::strerror(errno);
  guard.mounted = true;

  handles = NetnsRegistry().Discover();
  found = FindInode(handles, inode);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->name, mount_path);
  EXPECT_EQ(found->path, mount_path);

  process.Kill();
  handles = NetnsRegistry().Discover();
  found = FindInode(handles, inode);
  ASSERT_NE(found, nullptr) << "held by the mount alone";
  EXPECT_EQ(found->name, mount_path);
  ScopedFd fd(OpenNetns(*found));
  EXPECT_GE(fd.get(), 0) << std::strerror(errno);
  // The pid path went stale with the process.
  EXPECT_EQ(OpenNetns(by_pid), -1);
  EXPECT_TRUE(errno == ENOENT || errno == ESTALE) << std::strerror(errno);
}

TEST(NetnsKernelTest, OpenNetnsDetectsAnotherNamespace) {
  SKIP_UNLESS_ROOT();
  NetnsHandle self{CurrentNetnsInode(), 0, "self", "/proc/thread-self/ns/net"};
  ScopedFd fd(OpenNetns(self));
  EXPECT_GE(fd.get(), 0) << std::strerror(errno);
  NetnsHandle wrong = self;
  wrong.inode += 1;
  EXPECT_EQ(OpenNetns(wrong), -1);
  EXPECT_EQ(errno, ESTALE);
  // Another namespace type is not a network namespace.
  NetnsHandle uts{0, 0, "uts", "/proc/self/ns/uts"};
  EXPECT_EQ(OpenNetns(uts), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(NetnsKernelTest, RunInNetnsPropagatesResultsAndExceptions) {
  SKIP_UNLESS_ROOT();
  TestNetns netns;
  ASSERT_TRUE(netns.added());
  ScopedFd fd(open(netns.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  uint32_t caller = CurrentNetnsInode();

  // A move-only result, and a socket made inside that stays inside.
  auto inside = RunInNetns(fd.get(), [] {
    return std::make_unique<int>(
        socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  });
  ASSERT_GE(*inside, 0);
  ScopedFd inside_socket(*inside);
  uint64_t socket_cookie = 0;
  socklen_t len = sizeof(socket_cookie);
  ASSERT_EQ(
      getsockopt(inside_socket.get(), SOL_SOCKET, 71, &socket_cookie, &len), 0);
  EXPECT_EQ(socket_cookie, RunInNetns(fd.get(), CurrentNetnsCookie));
  EXPECT_NE(socket_cookie, CurrentNetnsCookie());

  EXPECT_THROW(
      RunInNetns(fd.get(), []() -> int { throw std::runtime_error("inside"); }),
      std::runtime_error);
  EXPECT_EQ(CurrentNetnsInode(), caller);

  ScopedFd uts(open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC));
  try {
    RunInNetns(uts.get(), [] {});
    FAIL() << "entered a UTS namespace as a network one";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EINVAL) << e.what();
  }
}

TEST(NetnsKernelTest, SettingsAreReadPerNamespace) {
  SKIP_UNLESS_ROOT();
  TestNetns netns;
  ASSERT_TRUE(netns.added());
  ASSERT_EQ(netns.Exec("sysctl -w net.ipv4.ip_local_port_range='40000 40999'"
                       " net.ipv4.tcp_fin_timeout=17"
                       " net.ipv4.ip_local_reserved_ports=40100-40199,40500"),
            0);

  // The host first, so that its /proc/sys dentries are already cached when
  // the helper thread looks.
  TcpSettings host = ReadTcpSettings();
  ScopedFd fd(open(netns.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  TcpSettings inside = RunInNetns(fd.get(), ReadTcpSettings);
  TcpSettings host_again = ReadTcpSettings();

  EXPECT_EQ(inside.port_range_lo, 40000u);
  EXPECT_EQ(inside.port_range_hi, 40999u);
  EXPECT_EQ(inside.fin_timeout_s, 17u);
  ASSERT_EQ(inside.reserved_ports.size(), 2u);
  EXPECT_EQ(EphemeralPortsAvailable(inside), 1000u - 101u);

  EXPECT_FALSE(host.port_range_lo == 40000 && host.port_range_hi == 40999)
      << "the host has the test's range: inconclusive";
  EXPECT_NE(host.fin_timeout_s, 17u);
  EXPECT_EQ(host_again.port_range_lo, host.port_range_lo);
  EXPECT_EQ(host_again.fin_timeout_s, host.fin_timeout_s);
}

// Writes `value` to a sysctl of the calling thread's namespace in pieces
// that end at commas: proc_do_large_bitmap takes at most a page per write()
// and continues the list on the next one.
void WriteLargeBitmapSysctl(const std::string& path, const std::string& value) {
  ScopedFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0) << std::strerror(errno);
  size_t start = 0;
  while (start < value.size()) {
    size_t end = std::min(value.size(), start + 3000);
    if (end < value.size()) end = value.rfind(',', end) + 1;
    std::string piece = value.substr(start, end - start);
    ASSERT_EQ(write(fd.get(), piece.data(), piece.size()),
              static_cast<ssize_t>(piece.size()))
        << std::strerror(errno);
    start = end;
  }
}

// 5,000 reserved ports print as ~30 KB: more than one small read, which the
// sysctl would silently truncate (a second read() returns EOF).
TEST(NetnsKernelTest, LongReservedPortListIsReadWhole) {
  SKIP_UNLESS_ROOT();
  TestNetns netns;
  ASSERT_TRUE(netns.added());
  ASSERT_EQ(netns.Exec("sysctl -w net.ipv4.ip_local_port_range='40000 49999'"),
            0);
  std::string ports;
  for (int port = 40000; port < 50000; port += 2) {
    ports += (ports.empty() ? "" : ",") + std::to_string(port);
  }
  ScopedFd fd(open(netns.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  RunInNetns(fd.get(), [&ports] {
    WriteLargeBitmapSysctl("/proc/sys/net/ipv4/ip_local_reserved_ports", ports);
  });
  TcpSettings inside = RunInNetns(fd.get(), ReadTcpSettings);
  ASSERT_EQ(inside.reserved_ports.size(), 5000u);
  EXPECT_EQ(inside.reserved_ports.back(), std::make_pair(49998u, 49998u));
  EXPECT_EQ(EphemeralPortsAvailable(inside), 5000u);
}

// Makes one connection on loopback and closes the client end first, so
// that the client reaches tcp_time_wait().
void ActiveCloseOnLoopback() {
  ScopedFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_GE(listener.get(), 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&address),
                 sizeof(address)),
            0)
      << std::strerror(errno);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  socklen_t len = sizeof(address);
  ASSERT_EQ(
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &len),
      0);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  ASSERT_EQ(
      connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0)
      << std::strerror(errno);
  ScopedFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(server.get(), 0);
  close(client);
  // Let the FIN be acknowledged before the server closes too.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

TEST(NetnsKernelTest, CountersAreReadPerNamespace) {
  SKIP_UNLESS_ROOT();
  TestNetns netns;
  ASSERT_TRUE(netns.added());
  // No timewait socket may be made in there: each active close overflows.
  ASSERT_EQ(netns.Exec("sysctl -w net.ipv4.tcp_max_tw_buckets=0"), 0);
  ASSERT_EQ(netns.Exec("ip link set lo up"), 0);
  ScopedFd fd(open(netns.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);

  TcpExtCounters host_before = ReadNetstat();
  TcpExtCounters inside_before = RunInNetns(fd.get(), ReadNetstat);
  EXPECT_EQ(inside_before.TCPTimeWaitOverflow, 0u) << "a fresh namespace";

  RunInNetns(fd.get(), ActiveCloseOnLoopback);
  uint64_t overflows = 0;
  for (int i = 0; i < 100 && overflows == 0; ++i) {
    overflows = RunInNetns(fd.get(), ReadNetstat).TCPTimeWaitOverflow;
    if (overflows == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(overflows, 1u);
  EXPECT_EQ(ReadNetstat().TCPTimeWaitOverflow, host_before.TCPTimeWaitOverflow)
      << "the host's counter moved: read the wrong namespace?";
}

// ---- Cheap discovery and batched reads -------------------------------------

size_t OpenDescriptors() {
  size_t n = 0;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
  if (!dir) return 0;
  while (dirent* entry = readdir(dir.get())) n += entry->d_name[0] != '.';
  return n;
}

TEST(NetnsKernelTest, DiscoverWithoutCookiesEntersNothing) {
  SKIP_UNLESS_ROOT();
  TestNetns netns;
  ASSERT_TRUE(netns.added());
  uint32_t test_inode = InodeOf(netns.path());
  DiscoverStats stats;
  std::vector<NetnsHandle> cheap =
      NetnsRegistry().Discover(&stats, /*read_cookies=*/false);
  std::vector<NetnsHandle> full = NetnsRegistry().Discover();
  EXPECT_EQ(stats.cookie_failures, 0u);
  const NetnsHandle* test = FindInode(cheap, test_inode);
  ASSERT_NE(test, nullptr);
  EXPECT_EQ(test->name, netns.name());
  EXPECT_EQ(test->path, netns.path());
  for (const NetnsHandle& h : cheap) EXPECT_EQ(h.cookie, 0u) << h.name;
  // The same namespaces, names and paths as the discovery that enters each
  // (both see the same machine, but processes may come and go between the
  // two calls: compare the namespaces this test controls).
  ASSERT_FALSE(cheap.empty());
  ASSERT_FALSE(full.empty());
  EXPECT_EQ(cheap[0].inode, full[0].inode) << "host first in both";
  const NetnsHandle* test_full = FindInode(full, test_inode);
  ASSERT_NE(test_full, nullptr);
  EXPECT_EQ(test_full->path, test->path);
}

TEST(NetnsKernelTest, ReadNamespacesVisitsInOneBatchAndKeepsNothing) {
  SKIP_UNLESS_ROOT();
  TestNetns busy("-busy");
  TestNetns idle("-idle");
  ASSERT_TRUE(busy.added());
  ASSERT_TRUE(idle.added());
  ASSERT_EQ(busy.Exec("ip link set lo up"), 0);
  ASSERT_EQ(busy.Exec("sysctl -w net.ipv4.ip_local_port_range='40000 40100'"),
            0);
  ScopedFd busy_fd(open(busy.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(busy_fd.get(), 0);
  // A listener made inside stays there.
  ScopedFd listener(RunInNetns(busy_fd.get(), [] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(4242);
    if (fd < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd, 4) != 0) {
      return -1;
    }
    return fd;
  }));
  ASSERT_GE(listener.get(), 0) << std::strerror(errno);
  uint64_t busy_cookie = RunInNetns(busy_fd.get(), CurrentNetnsCookie);

  auto request = [](const TestNetns& n) {
    NamespaceRequest r;
    r.handle.inode = InodeOf(n.path());
    r.handle.path = n.path();
    r.dump_mask = (1u << 13) - 2;
    r.read_settings = r.read_counters = true;
    r.files_only_if_sockets = true;
    return r;
  };
  NamespaceRequest gone = request(idle);
  gone.handle.path = "/run/netns/tcpstated-test-netns-no-such-namespace";
  std::vector<NamespaceRequest> requests = {request(busy), request(idle), gone};
  uint32_t caller = CurrentNetnsInode();
  size_t fds_before = OpenDescriptors();
  std::vector<NamespaceResult> results = ReadNamespaces(requests);
  EXPECT_EQ(OpenDescriptors(), fds_before) << "a descriptor was kept";
  EXPECT_EQ(CurrentNetnsInode(), caller) << "the caller was moved";
  ASSERT_EQ(results.size(), 3u);

  const NamespaceResult& b = results[0];
  EXPECT_EQ(b.inode, requests[0].handle.inode);
  EXPECT_EQ(b.enter_error, 0);
  EXPECT_TRUE(b.failures.empty()) << b.failures[0];
  EXPECT_EQ(b.cookie, busy_cookie);
  ASSERT_TRUE(b.dumped);
  ASSERT_EQ(b.sockets.size(), 1u);
  EXPECT_EQ(b.sockets[0].state, tcpstated::TcpState::kListen);
  EXPECT_EQ(b.sockets[0].sport, 4242);
  EXPECT_EQ(b.sockets[0].netns, b.inode);
  ASSERT_TRUE(b.settings.has_value());
  EXPECT_EQ(b.settings->port_range_lo, 40000u);
  EXPECT_TRUE(b.counters.has_value());

  // Dumped (empty), and its files not read: nothing there needs them.
  const NamespaceResult& i = results[1];
  EXPECT_EQ(i.enter_error, 0);
  EXPECT_TRUE(i.dumped);
  EXPECT_TRUE(i.sockets.empty());
  EXPECT_FALSE(i.settings.has_value());
  EXPECT_FALSE(i.counters.has_value());
  EXPECT_NE(i.cookie, b.cookie);

  EXPECT_EQ(results[2].enter_error, ENOENT);
  EXPECT_FALSE(results[2].dumped);

  // A listener dump only, no files.
  NamespaceRequest listeners = request(busy);
  listeners.dump_mask = 1u << 10;
  listeners.read_settings = listeners.read_counters = false;
  results = ReadNamespaces({listeners});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].sockets.size(), 1u);
  EXPECT_FALSE(results[0].settings.has_value());
  EXPECT_FALSE(results[0].counters.has_value());
  EXPECT_TRUE(ReadNamespaces({}).empty());
}

}  // namespace
