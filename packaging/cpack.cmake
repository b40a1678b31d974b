# Debian package of tcpstated, built with `cpack -G DEB` in the build
# directory. include()d from the top-level CMakeLists.txt after its install()
# rules, which place:
#
#   /usr/bin/tcpstated                         the daemon
#   /lib/systemd/system/tcpstated.service      the unit (disabled after install)
#   /etc/tcpstated/tcpstated.yaml              the default config (a conffile)
#   /usr/share/tcpstated/dashboards/           Grafana dashboard, Prometheus rules
#   /usr/share/doc/tcpstated/                  README.md, runbooks.md, copyright,
#                                              changelog.Debian.gz
#   /usr/share/man/man1/tcpstated.1.gz         generated from --help (help2man)
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
# The Maintainer field: the project's git identity (user.name and
# user.email, as for its commits; else the last commit's author), or
# -DTCPSTATED_MAINTAINER="Name <address>".
if(NOT TCPSTATED_MAINTAINER)
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND "${GIT_EXECUTABLE}" config user.name
                    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                    OUTPUT_VARIABLE _name OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET)
    execute_process(COMMAND "${GIT_EXECUTABLE}" config user.email
                    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                    OUTPUT_VARIABLE _email OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET)
    if(_name AND _email)
      set(TCPSTATED_MAINTAINER "${_name} <${_email}>")
    else()
      # A clone without an identity of its own: the last commit's author.
      execute_process(COMMAND "${GIT_EXECUTABLE}" log -1 "--format=%an <%ae>"
                      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                      OUTPUT_VARIABLE _author OUTPUT_STRIP_TRAILING_WHITESPACE
                      ERROR_QUIET)
      if(_author MATCHES "^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$")
        set(TCPSTATED_MAINTAINER "${_author}")
      endif()
    endif()
  endif()
endif()
if(NOT TCPSTATED_MAINTAINER)
  message(WARNING "No git identity: the Debian package needs "
                  "-DTCPSTATED_MAINTAINER=\"Name <address>\"")
  set(TCPSTATED_MAINTAINER "tcpstated")
endif()
set(TCPSTATED_MAINTAINER "${TCPSTATED_MAINTAINER}"
    CACHE STRING "Maintainer field of the Debian package: Name <address>")
set(CPACK_PACKAGE_CONTACT "${TCPSTATED_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TCPSTATED_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# tcpstated_<version>-<release>_<arch>.deb; the architecture comes from
# `dpkg --print-architecture`.
set(CPACK_DEBIAN_PACKAGE_RELEASE "1")
set(TCPSTATED_DEB_VERSION
    "${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")
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

# Debian policy's documentation: the copyright file, the changelog
# (gzip -9n: no name or time stamp, so reproducible) and a man page
# generated from the daemon's own --help, so it cannot drift from the flags.
string(TIMESTAMP TCPSTATED_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(_tcpstated_doc "${PROJECT_BINARY_DIR}/packaging/doc")
configure_file("${CMAKE_CURRENT_LIST_DIR}/debian/changelog.in"
               "${_tcpstated_doc}/changelog.Debian" @ONLY)
find_program(TCPSTATED_GZIP gzip REQUIRED)
find_program(TCPSTATED_HELP2MAN help2man)
set(_tcpstated_docs "${_tcpstated_doc}/changelog.Debian.gz")
add_custom_command(
  OUTPUT "${_tcpstated_doc}/changelog.Debian.gz"
  COMMAND "${TCPSTATED_GZIP}" -9nf -k "${_tcpstated_doc}/changelog.Debian"
  DEPENDS "${_tcpstated_doc}/changelog.Debian"
  COMMENT "Compressing the Debian changelog" VERBATIM)
if(TCPSTATED_HELP2MAN)
  add_custom_command(
    OUTPUT "${_tcpstated_doc}/tcpstated.1.gz"
    COMMAND "${TCPSTATED_HELP2MAN}" --no-info --section=1
            "--name=TCP connection-state monitor (eBPF) and Prometheus exporter"
            "--version-string=${PROJECT_VERSION}"
            --include "${CMAKE_CURRENT_LIST_DIR}/debian/tcpstated.h2m"
            --output "${_tcpstated_doc}/tcpstated.1" $<TARGET_FILE:tcpstated>
    COMMAND "${TCPSTATED_GZIP}" -9nf "${_tcpstated_doc}/tcpstated.1"
    DEPENDS tcpstated "${CMAKE_CURRENT_LIST_DIR}/debian/tcpstated.h2m"
    COMMENT "Generating the tcpstated(1) man page from --help" VERBATIM)
  list(APPEND _tcpstated_docs "${_tcpstated_doc}/tcpstated.1.gz")
  install(FILES "${_tcpstated_doc}/tcpstated.1.gz" DESTINATION share/man/man1)
else()
  message(WARNING "help2man not found: the Debian package has no man page "
                  "(apt-get install help2man)")
endif()
add_custom_target(tcpstated_docs ALL DEPENDS ${_tcpstated_docs})
install(FILES "${CMAKE_CURRENT_LIST_DIR}/debian/copyright"
              "${_tcpstated_doc}/changelog.Debian.gz"
        DESTINATION share/doc/tcpstated)
install(FILES "${CMAKE_CURRENT_LIST_DIR}/debian/lintian-overrides"
        DESTINATION share/lintian/overrides RENAME tcpstated)

# `make package_source` / `cpack --config CPackSourceConfig.cmake`.
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/\\\\.cache/"
    "__pycache__")

include(CPack)
