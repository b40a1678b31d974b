// Unit tests of the legal transition table against the table in
// shared/reference/linux-tcp-state-transitions.md ("Transitions the kernel
// emits for TCP full sockets").

#include "tcpstated/transition_table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tcpstated/tcp_state.h"

namespace {

using tcpstated::IsLegalTransition;
using tcpstated::LegalTransitions;
using tcpstated::StateKernelName;
using S = tcpstated::TcpState;
using Transition = std::pair<S, S>;

std::vector<S> AllStates() {
  std::vector<S> states;
  for (unsigned n = 1; n < tcpstated::kStateSlots; ++n) {
    states.push_back(static_cast<S>(n));
  }
  return states;
}

// The reference's table, row by row.
const std::vector<Transition>& ReferenceTransitions() {
  static const std::vector<Transition> kReference = {
      {S::kClose, S::kSynSent},
      {S::kSynSent, S::kEstablished},
      {S::kSynSent, S::kSynRecv},
      {S::kSynSent, S::kClose},
      {S::kListen, S::kSynRecv},
      {S::kSynRecv, S::kEstablished},
      {S::kSynRecv, S::kClose},
      {S::kSynRecv, S::kFinWait1},
      {S::kSynRecv, S::kCloseWait},
      {S::kClose, S::kListen},
      {S::kListen, S::kClose},
      {S::kClose, S::kClose},
      {S::kEstablished, S::kCloseWait},
      {S::kEstablished, S::kFinWait1},
      {S::kCloseWait, S::kLastAck},
      {S::kFinWait1, S::kFinWait2},
      {S::kFinWait1, S::kClosing},
      {S::kFinWait2, S::kClose},
      {S::kClosing, S::kClose},
      {S::kLastAck, S::kClose},
      // "any synchronized -> CLOSE".
      {S::kEstablished, S::kClose},
      {S::kSynRecv, S::kClose},
      {S::kFinWait1, S::kClose},
      {S::kFinWait2, S::kClose},
      {S::kCloseWait, S::kClose},
      {S::kClosing, S::kClose},
      {S::kLastAck, S::kClose},
      // "X -> X for FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK".
      {S::kFinWait1, S::kFinWait1},
      {S::kFinWait2, S::kFinWait2},
      {S::kClosing, S::kClosing},
      {S::kLastAck, S::kLastAck},
  };
  return kReference;
}

std::string Name(const Transition& t) {
  return std::string(StateKernelName(t.first)) + "->" +
         std::string(StateKernelName(t.second));
}

TEST(TransitionTableTest, EveryReferenceTransitionIsLegal) {
  for (const Transition& t : ReferenceTransitions()) {
    EXPECT_TRUE(IsLegalTransition(t.first, t.second)) << Name(t);
  }
}

TEST(TransitionTableTest, SeedSequencesAreLegal) {
  const std::vector<std::vector<S>> sequences = {
      {S::kClose, S::kSynSent, S::kEstablished, S::kFinWait1, S::kFinWait2,
       S::kClose},
      {S::kListen, S::kSynRecv, S::kEstablished, S::kCloseWait, S::kLastAck,
       S::kClose},
      {S::kSynSent, S::kSynRecv, S::kEstablished, S::kFinWait1, S::kClosing,
       S::kClose},
      {S::kClose, S::kSynSent, S::kClose},
      {S::kClose, S::kListen, S::kClose, S::kClose},
  };
  for (const auto& seq : sequences) {
    for (size_t i = 1; i < seq.size(); ++i) {
      Transition t{seq[i - 1], seq[i]};
      EXPECT_TRUE(IsLegalTransition(t.first, t.second)) << Name(t);
    }
  }
}

TEST(TransitionTableTest, SampleOfIllegalTransitions) {
  // RFC 793's SYN_RECV -> LISTEN on RST: Linux drops the request socket.
  EXPECT_FALSE(IsLegalTransition(S::kSynRecv, S::kListen));
  EXPECT_FALSE(IsLegalTransition(S::kClose, S::kEstablished));
  EXPECT_FALSE(IsLegalTransition(S::kEstablished, S::kSynSent));
  EXPECT_FALSE(IsLegalTransition(S::kEstablished, S::kFinWait2));
  EXPECT_FALSE(IsLegalTransition(S::kCloseWait, S::kFinWait1));
  EXPECT_FALSE(IsLegalTransition(S::kListen, S::kEstablished));
  EXPECT_FALSE(IsLegalTransition(S::kFinWait2, S::kTimeWait));
  // Nothing reaches TIME_WAIT or NEW_SYN_RECV (or BOUND_INACTIVE) through
  // the tracepoint, and nothing leaves them.
  for (S from : AllStates()) {
    for (S special : {S::kTimeWait, S::kNewSynRecv, S::kBoundInactive}) {
      EXPECT_FALSE(IsLegalTransition(from, special)) << Name({from, special});
      EXPECT_FALSE(IsLegalTransition(special, from)) << Name({special, from});
    }
  }
}

TEST(TransitionTableTest, OutOfRangeStatesAreIllegal) {
  EXPECT_FALSE(IsLegalTransition(static_cast<S>(0), S::kClose));
  EXPECT_FALSE(IsLegalTransition(S::kClose, static_cast<S>(0)));
  EXPECT_FALSE(IsLegalTransition(static_cast<S>(14), S::kClose));
  EXPECT_FALSE(IsLegalTransition(S::kClose, static_cast<S>(200)));
}

TEST(TransitionTableTest, LegalTransitionsHasNoDuplicatesAndMatchesPredicate) {
  const auto& legal = LegalTransitions();
  std::set<Transition> unique(legal.begin(), legal.end());
  EXPECT_EQ(unique.size(), legal.size());
  for (S from : AllStates()) {
    for (S to : AllStates()) {
      EXPECT_EQ(IsLegalTransition(from, to), unique.count({from, to}) == 1)
          << Name({from, to});
    }
  }
  // Stable order: the same object, the same sequence, every call.
  EXPECT_EQ(&LegalTransitions(), &legal);
}

// The reference lists X -> X only for FIN_WAIT1, FIN_WAIT2, CLOSING and
// LAST_ACK (tcp_close_state() after shutdown(SHUT_WR)) plus CLOSE -> CLOSE,
// and says "an event outside this table is an invalid transition": the
// kernel never emits the other five, so the mirror should count them.
TEST(TransitionTableTest, LegalSetIsExactlyTheReference) {
  const std::set<Transition> reference(ReferenceTransitions().begin(),
                                       ReferenceTransitions().end());
  const auto& legal = LegalTransitions();
  for (const Transition& t : legal) {
    EXPECT_EQ(reference.count(t), 1u) << "not in the reference: " << Name(t);
  }
  EXPECT_EQ(std::set<Transition>(legal.begin(), legal.end()), reference);
}

}  // namespace
