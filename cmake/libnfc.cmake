# libnfc badge readers (Debian: libnfc-dev). Without it, `driver = libnfc` is refused at start.
option(TELECENTRED_LIBNFC "Build the libnfc reader backend when libnfc is found" ON)
if(TELECENTRED_LIBNFC)
  pkg_check_modules(LIBNFC IMPORTED_TARGET libnfc)
endif()
if(LIBNFC_FOUND AND EXISTS ${PROJECT_SOURCE_DIR}/src/reader_libnfc.c)  # EXISTS: TEMPORARY while it is written
  target_sources(telecentre PRIVATE ${PROJECT_SOURCE_DIR}/src/reader_libnfc.c)
  target_compile_definitions(telecentre PUBLIC TC_HAVE_LIBNFC=1)
  target_link_libraries(telecentre PUBLIC PkgConfig::LIBNFC)
  message(STATUS "libnfc ${LIBNFC_VERSION}: reader backend enabled")
else()
  message(STATUS "libnfc not found: the libnfc reader backend is not built")
endif()
