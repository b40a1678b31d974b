// Helpers shared by the configuration tests (config_test.cpp for the pure
// parser, command_line_test.cpp for flags and files).
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

#include "tcpstated/config.h"

namespace tcpstated {

// Runs `fn` and returns the ConfigError message, failing the test if it
// does not throw one. Every message must fit on one line for the caller.
template <typename Fn>
inline std::string ErrorOf(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_FALSE(message.empty());
    return message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

inline void ExpectSameConfig(const Config& a, const Config& b) {
  EXPECT_EQ(a.web.listen_address, b.web.listen_address);
  EXPECT_EQ(a.web.telemetry_path, b.web.telemetry_path);
  EXPECT_EQ(a.web.config_file, b.web.config_file);
  EXPECT_EQ(a.log.level, b.log.level);
  EXPECT_EQ(a.log.format, b.log.format);
  EXPECT_EQ(a.bpf.attach, b.bpf.attach);
  EXPECT_EQ(a.bpf.ring_buffer_bytes, b.bpf.ring_buffer_bytes);
  EXPECT_EQ(a.bpf.ring_buffers, b.bpf.ring_buffers);
  EXPECT_EQ(a.tracking.max_tracked_sockets, b.tracking.max_tracked_sockets);
  EXPECT_EQ(a.tracking.reconcile_interval, b.tracking.reconcile_interval);
  EXPECT_EQ(a.tracking.full_reconcile_interval,
            b.tracking.full_reconcile_interval);
  EXPECT_EQ(a.tracking.max_series_per_metric, b.tracking.max_series_per_metric);
  EXPECT_EQ(a.detectors.close_wait_leak_after,
            b.detectors.close_wait_leak_after);
  EXPECT_EQ(a.detectors.syn_flood_half_open_ratio,
            b.detectors.syn_flood_half_open_ratio);
  EXPECT_EQ(a.detectors.synack_retransmit_rate,
            b.detectors.synack_retransmit_rate);
  EXPECT_EQ(a.detectors.port_exhaustion_ratio,
            b.detectors.port_exhaustion_ratio);
  EXPECT_EQ(a.detectors.time_wait_buckets_ratio,
            b.detectors.time_wait_buckets_ratio);
}

}  // namespace tcpstated
