# bpf_object(NAME SOURCE HEADERS...)
#
# Builds SOURCE (a CO-RE BPF C file) into ${NAME}.bpf.o with clang, generates
# vmlinux.h from the running kernel's BTF and the ${NAME}.skel.h skeleton with
# bpftool, all inside the build directory, and defines an INTERFACE target
# ${NAME}_skel whose include directory holds the skeleton. The object is
# rebuilt when the source or any of the listed shared headers changes.
#
# A function, not a macro, so that nothing leaks into the caller's scope.

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(TCPSTATED_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH
    "Kernel BTF used to generate vmlinux.h")

function(bpf_object name source)
  set(headers ${ARGN})
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/bpf_${name}")
  set(vmlinux_h "${out_dir}/vmlinux.h")
  set(object "${out_dir}/${name}.bpf.o")
  set(skel "${out_dir}/${name}.skel.h")

  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(target_arch x86)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(target_arch arm64)
  else()
    message(FATAL_ERROR "unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
  endif()

  add_custom_command(
    OUTPUT "${vmlinux_h}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
    COMMAND ${BPFTOOL} btf dump file ${TCPSTATED_VMLINUX_BTF} format c > "${vmlinux_h}.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${vmlinux_h}.tmp" "${vmlinux_h}"
    DEPENDS "${TCPSTATED_VMLINUX_BTF}"
    COMMENT "Generating vmlinux.h from ${TCPSTATED_VMLINUX_BTF}"
    VERBATIM)

  add_custom_command(
    OUTPUT "${object}"
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${target_arch}
            -Wall -Wextra -Werror -Wno-unused-parameter
            -I "${out_dir}" -I "${CMAKE_CURRENT_SOURCE_DIR}"
            -c "${CMAKE_CURRENT_SOURCE_DIR}/${source}" -o "${object}"
    DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${source}" "${vmlinux_h}" ${headers}
    COMMENT "Compiling BPF object ${name}.bpf.o"
    VERBATIM)

  add_custom_command(
    OUTPUT "${skel}"
    COMMAND ${BPFTOOL} gen skeleton "${object}" name ${name} > "${skel}.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${skel}.tmp" "${skel}"
    DEPENDS "${object}"
    COMMENT "Generating BPF skeleton ${name}.skel.h"
    VERBATIM)

  add_custom_target(${name}_skel_gen DEPENDS "${skel}")
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE "${out_dir}")
endfunction()
