# Shared by the toolchain files: pkg-config for the target, and libnfc found without its -dev package.
# Expects TC_CROSS_TRIPLET and, for a sysroot build, CMAKE_SYSROOT.

# There is no ${TC_CROSS_TRIPLET}-pkg-config wrapper in Debian bookworm: the host's pkg-config, looking
# only at the target's .pc files (and, with a sysroot, prefixing the paths they give with it).
if(CMAKE_SYSROOT)
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CMAKE_SYSROOT}")
  set(_tc_pc_libdir "${CMAKE_SYSROOT}/usr/lib/${TC_CROSS_TRIPLET}/pkgconfig:${CMAKE_SYSROOT}/usr/share/pkgconfig")
  set(_tc_lib_dir "${CMAKE_SYSROOT}/usr/lib/${TC_CROSS_TRIPLET}")
else()
  set(_tc_pc_libdir "/usr/lib/${TC_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
  set(_tc_lib_dir "/usr/lib/${TC_CROSS_TRIPLET}")
endif()
unset(ENV{PKG_CONFIG_PATH})

# libnfc-dev for the target cannot be co-installed with the host's (it drags libusb-dev, which is not
# multi-arch), so only the runtime libnfc.so.6 is there. The headers are architecture-independent: the
# host's /usr/include/nfc serve. A generated libnfc.pc in the build tree points at a libnfc.so link to
# the target's libnfc.so.6, so cmake/libnfc.cmake finds it like any other.
# Not inside try_compile: it runs in this process with its own CMAKE_BINARY_DIR, a scratch directory
# deleted afterwards, and the environment it leaves would point there.
get_property(_tc_in_try_compile GLOBAL PROPERTY IN_TRY_COMPILE)
if(NOT _tc_in_try_compile AND NOT EXISTS "${_tc_lib_dir}/pkgconfig/libnfc.pc" AND EXISTS "${_tc_lib_dir}/libnfc.so.6"
   AND EXISTS /usr/include/nfc/nfc.h)
  set(_tc_shim "${CMAKE_BINARY_DIR}/cross-libnfc")
  file(MAKE_DIRECTORY "${_tc_shim}/lib" "${_tc_shim}/pkgconfig")
  file(CREATE_LINK "${_tc_lib_dir}/libnfc.so.6" "${_tc_shim}/lib/libnfc.so" SYMBOLIC)
  file(WRITE "${_tc_shim}/pkgconfig/libnfc.pc.tmp" "libdir=${_tc_shim}/lib
Name: libnfc
Description: libnfc.so.6 of the target, with the build machine's headers
Version: 1.8.0
Libs: -L\${libdir} -lnfc
Cflags:
")
  # Rewritten only when different, so the file's date does not make every configure look changed.
  file(COPY_FILE "${_tc_shim}/pkgconfig/libnfc.pc.tmp" "${_tc_shim}/pkgconfig/libnfc.pc" ONLY_IF_DIFFERENT)
  set(_tc_pc_libdir "${_tc_pc_libdir}:${_tc_shim}/pkgconfig")
endif()
if(NOT _tc_in_try_compile)
  set(ENV{PKG_CONFIG_LIBDIR} "${_tc_pc_libdir}")
endif()
