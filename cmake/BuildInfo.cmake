# What `tcpstated --version` reports besides the version: the source
# revision, the build date and the libbpf it was built against. CMake
# re-runs this when HEAD moves (a commit, a checkout), so the revision
# follows the tree without rebuilding on every build.
find_package(Git QUIET)
set(TCPSTATED_REVISION "unknown")
if(GIT_FOUND)
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" rev-parse --short=12 HEAD
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
    OUTPUT_VARIABLE _rev OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _rev_status ERROR_QUIET)
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" rev-parse --path-format=absolute
            --git-path logs/HEAD
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
    OUTPUT_VARIABLE _head_log OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_rev_status EQUAL 0 AND _rev)
    set(TCPSTATED_REVISION "${_rev}")
  endif()
  if(_head_log AND EXISTS "${_head_log}")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                 "${_head_log}")
  endif()
endif()
# string(TIMESTAMP) honours SOURCE_DATE_EPOCH, for reproducible builds.
string(TIMESTAMP TCPSTATED_BUILD_DATE "%Y-%m-%dT%H:%M:%SZ" UTC)
set(TCPSTATED_LIBBPF_VERSION "${LIBBPF_VERSION}")
