# Runs at install time (install(SCRIPT) in CMakeLists.txt), after TC_SOURCE_DIR, TC_BINARY_DIR, TC_SBINDIR
# and TC_CONFDIR are set. CMAKE_INSTALL_PREFIX is the install-time prefix here and file(INSTALL) puts
# $DESTDIR in front of absolute destinations, so `cmake --install --prefix P`, DESTDIR installs and CPack's
# staging (CPACK_SET_DESTDIR) all get the right paths.

# The unit names the daemon where this install put it.
if(IS_ABSOLUTE "${TC_SBINDIR}")
  set(TC_DAEMON "${TC_SBINDIR}/telecentred")
else()
  set(TC_DAEMON "${CMAKE_INSTALL_PREFIX}/${TC_SBINDIR}/telecentred")
endif()
# One generated copy per destination: installs into several DESTDIRs may run at once (the tests do).
string(MD5 _tc_key "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(_tc_unit "${TC_BINARY_DIR}/systemd/${_tc_key}/telecentred.service")
configure_file("${TC_SOURCE_DIR}/systemd/telecentred.service.in" "${_tc_unit}" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE FILES "${_tc_unit}")

# The configuration: the documented example, only when none is installed. The .deb marks it a conffile
# (dpkg then keeps an edited one on upgrade); for `cmake --install` this check does it.
set(_tc_conf "$ENV{DESTDIR}${TC_CONFDIR}/telecentred.conf")
if(EXISTS "${_tc_conf}")
  message(STATUS "Kept: ${_tc_conf} (already there; the example is in the doc directory)")
else()
  file(INSTALL DESTINATION "${TC_CONFDIR}" TYPE FILE
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
    FILES "${TC_SOURCE_DIR}/config/telecentred.conf")
endif()
