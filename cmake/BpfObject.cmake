# bpf_object(<name> <source.bpf.c>...)
# Compiles each BPF source with clang for the target's arch (CMAKE_SYSTEM_PROCESSOR: the
# BPF bytecode is the same, the kernel types and __TARGET_ARCH_* differ), links the units into
# one object with `bpftool gen object` (libbpf's static linker: externs and
# __hidden functions are resolved across units), generates its libbpf skeleton,
# and exposes an INTERFACE target <name>_skel whose include directory holds
# <name>.skel.h.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPF_STRIP NAMES llvm-strip llvm-strip-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_ARCH arm64)
else()
  message(FATAL_ERROR "unsupported architecture for BPF: ${CMAKE_SYSTEM_PROCESSOR}")
endif()

# The kernel's types for CO-RE, one vmlinux.h per architecture: bpf/x86, and bpf/arm64 (made
# from Debian's arm64 kernel package by scripts/gen-vmlinux-arm64, on any machine).
set(BPF_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/bpf/${BPF_ARCH})
if(NOT EXISTS ${BPF_VMLINUX_DIR}/vmlinux.h)
  message(FATAL_ERROR "no vmlinux.h for ${BPF_ARCH} (bpf/${BPF_ARCH}/vmlinux.h): "
    "generate it on a ${CMAKE_SYSTEM_PROCESSOR} machine with\n"
    "  mkdir -p bpf/${BPF_ARCH} && bpftool btf dump file /sys/kernel/btf/vmlinux format c "
    "> bpf/${BPF_ARCH}/vmlinux.h")
endif()

function(bpf_object name)
  set(sources ${ARGN})
  if(NOT sources)
    message(FATAL_ERROR "bpf_object(${name}): no sources")
  endif()
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(GLOB bpf_headers ${CMAKE_SOURCE_DIR}/bpf/*.h)
  set(unit_objs)
  foreach(source ${sources})
    get_filename_component(unit ${source} NAME_WE)
    set(unit_obj ${out_dir}/${name}.units/${unit}.o)
    add_custom_command(
      OUTPUT ${unit_obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}/${name}.units
      COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${BPF_ARCH}
              -Wall -Werror
              -I${BPF_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf
              -I${CMAKE_SOURCE_DIR}/include
              -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${unit_obj}
      DEPENDS ${source} ${bpf_headers} ${BPF_VMLINUX_DIR}/vmlinux.h
              ${CMAKE_SOURCE_DIR}/include/tcpconnect/abi.h
      COMMENT "BPF ${source}"
      VERBATIM)
    list(APPEND unit_objs ${unit_obj})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPFTOOL} gen object ${obj} ${unit_objs}
    # Keep BTF (needed for CO-RE), drop DWARF: the object is embedded in the binary.
    COMMAND ${BPF_STRIP} -g ${obj}
    DEPENDS ${unit_objs}
    COMMENT "BPF link ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
endfunction()
