# Cross build for 32-bit Raspberry Pi OS / Debian armhf (ARMv7 with VFP: Pi 2, 3, 4 and Zero 2 W on a
# 32-bit OS; not the ARMv6 Pi Zero/1) with Debian's cross compiler (gcc-arm-linux-gnueabihf) and a
# sysroot of the :armhf libraries unpacked from their .debs, not installed: scripts/cross-build --arch
# armhf makes it under the build tree, configures with this file, runs the unit tests under qemu-user and
# makes the armhf .deb. docs/install.md, "Building for the Pi on a PC".
#
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake \
#         -DTC_SYSROOT=$PWD/build-armhf/armhf-sysroot
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(TC_CROSS_TRIPLET arm-linux-gnueabihf)

set(CMAKE_C_COMPILER ${TC_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${TC_CROSS_TRIPLET})

# Not multiarch, as for arm64: adding armhf to dpkg failed on the build machines (a bookworm-security armhf
# index whose size did not match its Release file), and a sysroot keeps the host's packages untouched.
# try_compile runs this file again in a scratch project: TC_SYSROOT is handed to it.
if(NOT TC_SYSROOT AND DEFINED ENV{TC_SYSROOT})
  set(TC_SYSROOT "$ENV{TC_SYSROOT}")
endif()
if(NOT TC_SYSROOT OR NOT EXISTS "${TC_SYSROOT}/usr/lib/${TC_CROSS_TRIPLET}/libc.so")
  message(FATAL_ERROR "arm-linux-gnueabihf.cmake: set TC_SYSROOT to an armhf sysroot (scripts/cross-build "
                      "--arch armhf makes one); '${TC_SYSROOT}' has no usr/lib/${TC_CROSS_TRIPLET}/libc.so")
endif()
set(TC_SYSROOT "${TC_SYSROOT}" CACHE PATH "armhf sysroot (the :armhf .debs unpacked)")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TC_SYSROOT)
set(CMAKE_SYSROOT "${TC_SYSROOT}")

# Headers and libraries from the sysroot only (never the build machine's amd64 ones), programs (python3,
# systemd-analyze ...) from the build machine.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Test programs run under qemu-user, called by ctest (binfmt_misc is not mounted in containers). The loader
# and libc are the sysroot's (libc6:armhf is not installed): -L. Measured here, unlike aarch64 with -L
# (every pthread_create spins), threads work with qemu-arm 7.2 and -L.
find_program(TC_QEMU_ARM qemu-arm-static)
if(TC_QEMU_ARM)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TC_QEMU_ARM} -L ${TC_SYSROOT})
endif()

include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
