# Debian package of tcpstated, built with `cpack -G DEB` in the build
# directory. include()d from the top-level CMakeLists.txt after its install()
# rules, which place:
#
#   /usr/bin/tcpstated                         the daemon
#   /lib/systemd/system/tcpstated.service      the unit (disabled after install)
#   /etc/tcpstated/tcpstated.yaml              the default config (a conffile)
#   /usr/share/tcpstated/dashboards/           Grafana dashboard, Prometheus rules
#   /usr/share/doc/tcpstated/README.md
#
# Runtime dependencies come from dpkg-shlibdeps (package dpkg-dev, pulled in by
# build-essential) when it is installed; otherwise from the fixed list below,
# which names the Debian 12 packages of the libraries the binary links.

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "tcpstated")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "tcpstated")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "TCP connection-state monitor (eBPF) and Prometheus exporter")
set(CPACK_PACKAGE_DESCRIPTION
    "tcpstated watches every TCP connection on the host through eBPF
tracepoints, keeps its own mirror of the TCP state machine for each socket,
checks every state change against what Linux allows, and exports per-state
socket counts, transitions and state durations for every network namespace
as Prometheus metrics. It detects CLOSE_WAIT leaks (attributed to the owning
process and port), SYN_RECV floods per listener, and TIME_WAIT / ephemeral
port exhaustion per destination.
.
The package installs a hardened systemd unit, disabled: review
/etc/tcpstated/tcpstated.yaml (it listens on :9640 on every address by
default), then run `systemctl enable --now tcpstated`.")
set(CPACK_PACKAGE_CONTACT "tcpstated maintainers <tcpstated@example.invalid>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# tcpstated_<version>-<release>_<arch>.deb; the architecture comes from
# `dpkg --print-architecture`.
set(CPACK_DEBIAN_PACKAGE_RELEASE "1")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_COMPRESSION_TYPE "xz")
# The build type is RelWithDebInfo: ship a stripped binary.
set(CPACK_STRIP_FILES ON)
# Files owned by root, 0644/0755, maintainer scripts 0755 (Debian policy).
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

find_program(TCPSTATED_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(TCPSTATED_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libbpf1, libelf1, zlib1g, libprometheus-cpp-core1.0, libssl3, \
libspdlog1.10, libfmt9, libyaml-cpp0.7, libsystemd0, libstdc++6, libgcc-s1, libc6")
endif()
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus, grafana")

# conffiles: dpkg keeps an administrator's edits of these on upgrade and
# removes them only on purge. CMake 3.25's DEB generator does not mark /etc
# files by itself, so the list goes in the control archive explicitly.
set(_tcpstated_deb_control "${PROJECT_BINARY_DIR}/packaging/debian")
file(MAKE_DIRECTORY "${_tcpstated_deb_control}")
file(WRITE "${_tcpstated_deb_control}/conffiles"
     "/etc/tcpstated/tcpstated.yaml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${_tcpstated_deb_control}/conffiles"
    "${CMAKE_CURRENT_LIST_DIR}/debian/postinst"
    "${CMAKE_CURRENT_LIST_DIR}/debian/prerm"
    "${CMAKE_CURRENT_LIST_DIR}/debian/postrm")

# `make package_source` / `cpack --config CPackSourceConfig.cmake`.
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/\\\\.cache/"
    "__pycache__")

include(CPack)
