#include "tcpstated/namespace_reads.h"

#include <errno.h>
#include <sched.h>

#include <exception>
#include <string>
#include <system_error>
#include <thread>

#include "tcpstated/proc_net_files.h"
#include "tcpstated/scoped_fd.h"

namespace tcpstated {
namespace {

// Runs on the helper thread, already inside the namespace. Never throws
// except std::bad_alloc: every failure becomes a line in the result.
void ReadHere(const NamespaceRequest& request, NamespaceResult* result) {
  try {
    result->cookie = CurrentNetnsCookie();
  } catch (const std::system_error& e) {
    result->failures.push_back(std::string("netns cookie: ") + e.what());
  }
  if (request.dump_mask != 0) {
    try {
      SockDiagClient client;  // opened here, so in this namespace
      result->sockets =
          client.DumpTcp(request.dump_mask, request.dump_tcp_info);
      result->dumped = true;
    } catch (const std::system_error& e) {
      result->failures.push_back(std::string("sock_diag dump: ") + e.what());
    }
  }
  if (request.read_sockstat) {
    try {
      result->sockstat = ReadSockstat();
    } catch (const std::exception& e) {
      result->failures.push_back(std::string("sockstat: ") + e.what());
    }
  }
  if (request.files_only_if_sockets &&
      !(result->dumped && !result->sockets.empty())) {
    return;
  }
  if (request.read_settings) {
    try {
      result->settings = ReadTcpSettings();
    } catch (const std::exception& e) {
      result->failures.push_back(std::string("sysctls: ") + e.what());
    }
  }
  if (request.read_counters) {
    try {
      result->counters = ReadNetstat();
    } catch (const std::exception& e) {
      result->failures.push_back(std::string("netstat: ") + e.what());
    }
  }
}

}  // namespace

std::vector<NamespaceResult> ReadNamespaces(
    const std::vector<NamespaceRequest>& requests) {
  std::vector<NamespaceResult> results(requests.size());
  if (requests.empty()) return results;
  std::exception_ptr failure;
  // setns() moves only the calling thread: this one goes from namespace to
  // namespace and dies at the end, so no other thread of the daemon ever
  // changes namespace, and none stays behind in one.
  std::thread helper([&] {
    try {
      for (size_t i = 0; i < requests.size(); ++i) {
        const NamespaceRequest& request = requests[i];
        NamespaceResult& result = results[i];
        result.inode = request.handle.inode;
        {
          ScopedFd fd(OpenNetns(request.handle));
          if (fd.get() < 0) {
            result.enter_error = errno;
            continue;
          }
          if (setns(fd.get(), CLONE_NEWNET) != 0) {
            result.enter_error = errno;
            continue;
          }
        }  // inside now: the descriptor is no longer needed
        ReadHere(request, &result);
      }
    } catch (...) {
      failure = std::current_exception();  // std::bad_alloc
    }
  });
  helper.join();
  if (failure) std::rethrow_exception(failure);
  return results;
}

}  // namespace tcpstated
