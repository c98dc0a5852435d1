# Cross build for arm64 on a Debian x86_64 host (scripts/cross-arm64):
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
#
# The compilers are Debian's cross gcc (g++-aarch64-linux-gnu). The libraries are Debian's
# arm64 packages installed beside the native ones through multiarch (libfoo-dev:arm64): their
# files are in /usr/lib/aarch64-linux-gnu and their headers in /usr/include (shared) or
# /usr/include/aarch64-linux-gnu, so the system root stays "/". The programs the build runs
# (clang and bpftool for the BPF object, protoc and grpc_cpp_plugin) are the host's.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Packages are looked up in the arm64 multiarch directories only (and /usr/share for the
# architecture-independent ones: CLI11, nlohmann-json), never in the x86_64 ones. The variables
# are read by pkg-config when CMake runs it, at configure time: a re-run of CMake during the
# build reads this file again.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# No CMAKE_SYSROOT or CMAKE_FIND_ROOT_PATH: with multiarch the target's files are under "/" as
# the host's are, and find_library / find_package keep to the target's by the library
# architecture (lib/aarch64-linux-gnu, for the libraries and their CMake packages); find_program
# finds the host's tools.
