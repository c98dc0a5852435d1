# bpf_object(<name> <source.bpf.c>)
# Compiles a BPF program with clang for the host's arch, generates its libbpf
# skeleton with bpftool, and exposes an INTERFACE target <name>_skel whose
# include directory holds <name>.skel.h.
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

function(bpf_object name source)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(GLOB bpf_headers ${CMAKE_SOURCE_DIR}/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${BPF_ARCH}
            -Wall -Werror
            -I${CMAKE_SOURCE_DIR}/bpf/${BPF_ARCH} -I${CMAKE_SOURCE_DIR}/bpf
            -I${CMAKE_SOURCE_DIR}/include
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${obj}
    # Keep BTF (needed for CO-RE), drop DWARF: the object is embedded in the binary.
    COMMAND ${BPF_STRIP} -g ${obj}
    DEPENDS ${source} ${bpf_headers} ${CMAKE_SOURCE_DIR}/include/tcpconnect/abi.h
    COMMENT "BPF ${source}"
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
