# Debian's hardening flags from dpkg-buildflags (with hardening=+all, so
# also -z now), applied to every C and C++ target: fortified libc calls,
# stack protector, format checks, read-only relocations bound at start-up.
# The optimisation and debug flags are left to CMAKE_BUILD_TYPE. The BPF
# object is compiled by its own clang command and does not see these.
# Without dpkg-buildflags (not a Debian system) nothing is added, nor to the
# libFuzzer build (TCPSTATED_FUZZ), which is never shipped.
option(TCPSTATED_DPKG_BUILDFLAGS
       "Apply dpkg-buildflags' hardening flags to the build" ON)
find_program(TCPSTATED_DPKG_BUILDFLAGS_PROGRAM dpkg-buildflags)

if(TCPSTATED_DPKG_BUILDFLAGS AND TCPSTATED_DPKG_BUILDFLAGS_PROGRAM
   AND NOT TCPSTATED_FUZZ)
  foreach(_var CPPFLAGS CFLAGS CXXFLAGS LDFLAGS)
    execute_process(
      COMMAND "${CMAKE_COMMAND}" -E env
              "DEB_BUILD_MAINT_OPTIONS=hardening=+all $ENV{DEB_BUILD_MAINT_OPTIONS}"
              "${TCPSTATED_DPKG_BUILDFLAGS_PROGRAM}" --get ${_var}
      WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
      OUTPUT_VARIABLE _flags
      OUTPUT_STRIP_TRAILING_WHITESPACE
      COMMAND_ERROR_IS_FATAL ANY)
    separate_arguments(_flags UNIX_COMMAND "${_flags}")
    list(FILTER _flags EXCLUDE REGEX "^-(g|O[0-3sz]?)$")
    set(_dpkg_${_var} ${_flags})
  endforeach()
  add_compile_options(${_dpkg_CPPFLAGS}
                      "$<$<COMPILE_LANGUAGE:C>:${_dpkg_CFLAGS}>"
                      "$<$<COMPILE_LANGUAGE:CXX>:${_dpkg_CXXFLAGS}>")
  add_link_options(${_dpkg_LDFLAGS})
  message(STATUS "dpkg-buildflags: ${_dpkg_CPPFLAGS} ${_dpkg_CXXFLAGS} ${_dpkg_LDFLAGS}")
endif()
