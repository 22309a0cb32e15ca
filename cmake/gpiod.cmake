# libgpiod door I/O (Debian bookworm: libgpiod 1.6; trixie: 2.x). Without it, `driver = gpiod` is refused.
# TC_GPIOD_API is 1 or 2 from the version found; src/gpio_gpiod.c supports both.
#
# TELECENTRED_GPIOD_ROOT: a directory holding an unpacked libgpiod (DEST of tests/rigs/fetch-libgpiod2.sh:
# Debian trixie's libgpiod-dev + libgpiod3 under DEST/usr) to build against instead of the system's. The
# binaries get an RPATH to its lib directory, so they run without LD_LIBRARY_PATH.
option(TELECENTRED_GPIOD "Build the libgpiod backend when libgpiod is found" ON)
set(TELECENTRED_GPIOD_ROOT "" CACHE PATH
  "Use the libgpiod unpacked under this directory (e.g. by tests/rigs/fetch-libgpiod2.sh) instead of the system's")

# Looked up again at every configure (pkg_check_modules would reuse its cached answer): setting or
# clearing TELECENTRED_GPIOD_ROOT in an existing build directory must switch libraries.
unset(LIBGPIOD_FOUND CACHE)
unset(__pkg_config_checked_LIBGPIOD CACHE)
if(TELECENTRED_GPIOD AND TELECENTRED_GPIOD_ROOT)
  # pkg-config looks only in the root's .pc files, and prefixes their paths with the root. Only for this
  # check: the environment is restored afterwards.
  file(GLOB _tc_gpiod_pc_dirs "${TELECENTRED_GPIOD_ROOT}/usr/lib/*/pkgconfig" "${TELECENTRED_GPIOD_ROOT}/usr/lib/pkgconfig")
  if(NOT _tc_gpiod_pc_dirs)
    message(FATAL_ERROR "TELECENTRED_GPIOD_ROOT=${TELECENTRED_GPIOD_ROOT}: no usr/lib/*/pkgconfig in it "
      "(run tests/rigs/fetch-libgpiod2.sh ${TELECENTRED_GPIOD_ROOT})")
  endif()
  list(JOIN _tc_gpiod_pc_dirs ":" _tc_gpiod_pc_path)
  # Saved as "defined + value": an empty PKG_CONFIG_LIBDIR is not the same as none (it hides every
  # default directory), and set(ENV{X} "") leaves X defined but empty.
  foreach(_tc_var PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR PKG_CONFIG_PATH)
    if(DEFINED ENV{${_tc_var}})
      set(_tc_saved_${_tc_var} "$ENV{${_tc_var}}")
    else()
      unset(_tc_saved_${_tc_var})
    endif()
  endforeach()
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${TELECENTRED_GPIOD_ROOT}")
  set(ENV{PKG_CONFIG_LIBDIR} "${_tc_gpiod_pc_path}")
  unset(ENV{PKG_CONFIG_PATH})
  pkg_check_modules(LIBGPIOD REQUIRED IMPORTED_TARGET libgpiod)
  foreach(_tc_var PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR PKG_CONFIG_PATH)
    if(DEFINED _tc_saved_${_tc_var})
      set(ENV{${_tc_var}} "${_tc_saved_${_tc_var}}")
    else()
      unset(ENV{${_tc_var}})
    endif()
  endforeach()
  # Exactly that library: the system's libgpiod.so (1.6) must not be picked by the linker's search.
  find_library(_tc_gpiod_lib NAMES gpiod PATHS ${LIBGPIOD_LIBRARY_DIRS} NO_DEFAULT_PATH NO_CACHE)
  if(NOT _tc_gpiod_lib)
    message(FATAL_ERROR "TELECENTRED_GPIOD_ROOT: no libgpiod.so in ${LIBGPIOD_LIBRARY_DIRS}")
  endif()
  set_property(TARGET PkgConfig::LIBGPIOD PROPERTY INTERFACE_LINK_LIBRARIES "${_tc_gpiod_lib}")
  # The binaries find this libgpiod.so.3 through their RUNPATH. Built with the install RPATH from the
  # start: CMake pads a separate build RPATH with a trailing ':', an empty entry that makes the loader
  # search the current directory for every library. Our own libraries are static, so nothing else needs a
  # build-tree RPATH.
  list(APPEND CMAKE_INSTALL_RPATH ${LIBGPIOD_LIBRARY_DIRS})
  set(CMAKE_BUILD_WITH_INSTALL_RPATH ON)
elseif(TELECENTRED_GPIOD)
  pkg_check_modules(LIBGPIOD IMPORTED_TARGET libgpiod)
endif()

if(LIBGPIOD_FOUND)
  if(LIBGPIOD_VERSION VERSION_GREATER_EQUAL 2.0)
    set(TC_GPIOD_API 2)
  else()
    set(TC_GPIOD_API 1)
  endif()
  target_sources(telecentre PRIVATE ${PROJECT_SOURCE_DIR}/src/gpio_gpiod.c)
  target_compile_definitions(telecentre PUBLIC TC_HAVE_GPIOD=1 TC_GPIOD_API=${TC_GPIOD_API})
  target_link_libraries(telecentre PUBLIC PkgConfig::LIBGPIOD)
  if(TELECENTRED_GPIOD_ROOT)
    message(STATUS "libgpiod ${LIBGPIOD_VERSION} from ${TELECENTRED_GPIOD_ROOT}: gpiod backend enabled (API ${TC_GPIOD_API})")
  else()
    message(STATUS "libgpiod ${LIBGPIOD_VERSION}: gpiod backend enabled (API ${TC_GPIOD_API})")
  endif()
else()
  message(STATUS "libgpiod not found: the gpiod backend is not built")
endif()
