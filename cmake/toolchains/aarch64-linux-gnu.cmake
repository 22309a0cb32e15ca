# Cross build for 64-bit Raspberry Pi OS / Debian arm64 (Pi 3, 4, 5, Zero 2 W) with Debian's cross
# toolchain and multiarch :arm64 libraries; scripts/cross-build installs them, configures with this file,
# runs the unit tests under qemu-user and makes the arm64 .deb. docs/install.md, "Building for the Pi".
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(TC_CROSS_TRIPLET aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${TC_CROSS_TRIPLET}-gcc)
# Multiarch: the target's libraries are in /usr/lib/aarch64-linux-gnu, its headers in /usr/include (and
# /usr/include/aarch64-linux-gnu), where Debian's cross gcc and find_library look already.
set(CMAKE_LIBRARY_ARCHITECTURE ${TC_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# Test programs run under qemu-user; binfmt_misc may not be mounted (containers), so ctest calls qemu
# explicitly. The :arm64 libraries bring libc6:arm64, whose loader is at its real path
# (/lib/ld-linux-aarch64.so.1): no -L then. Measured here: with -L /usr/aarch64-linux-gnu (the loader and
# libc of libc6-arm64-cross beside the multiarch libraries) every pthread_create spins forever, with
# bookworm's qemu 7.2 and trixie's 10.0 alike.
find_program(TC_QEMU_AARCH64 qemu-aarch64-static)
if(TC_QEMU_AARCH64 AND EXISTS /lib/ld-linux-aarch64.so.1)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TC_QEMU_AARCH64})
elseif(TC_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TC_QEMU_AARCH64} -L /usr/${TC_CROSS_TRIPLET})
endif()

include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
