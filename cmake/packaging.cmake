# The Debian package: `cpack -G DEB` in a build directory (or scripts/cross-build for the Pi's arm64).
# docs/install.md explains installing and upgrading it; tests/integration/deb_package.sh installs, upgrades
# and removes it with dpkg in a scratch root.
#
# - Files land under /usr (binaries, man pages, unit, sysusers.d and tmpfiles.d snippets, docs) and
#   /etc/telecentred/telecentred.conf, a conffile: dpkg keeps an edited one on upgrade.
# - Depends: what dpkg-shlibdeps finds for the binaries' libraries, plus systemd (the maintainer scripts
#   run systemd-sysusers and systemd-tmpfiles) and tzdata (the site's timezone).
# - postinst creates the user and /var/lib/telecentred and enables nothing; prerm stops the service on
#   removal; postrm purge deletes /var/lib/telecentred (cmake/deb/).
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "telecentred")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "telecentred maintainers <telecentred@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "door access and desk-booking daemon for rural telecentres")
# The summary is the Description's first line; this is the rest.
set(CPACK_PACKAGE_DESCRIPTION "telecentred reads members' NFC badges (libnfc), decides each tap from the site's SQLite
database (memberships, bookings, opening hours, capacity), drives the door relay, LEDs and
buzzer (libgpiod) and reports to the network over MQTT. telecentrectl administers the site.")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)

# The install is relocatable (CMakeLists.txt): CPack installs it with prefix /usr into its staging
# directory through DESTDIR, so the unit's ExecStart= and the absolute /etc path come out right whatever
# prefix the build directory was configured with.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, tzdata")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto-clients, sqlite3")

# Cross builds: the target's Debian architecture, not the build machine's (dpkg --print-architecture).
if(CMAKE_CROSSCOMPILING)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "arm64")
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "armhf")
  elseif(CMAKE_SYSTEM_PROCESSOR STREQUAL "x86_64")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "amd64")
  endif()
endif()

file(WRITE "${PROJECT_BINARY_DIR}/deb/conffiles" "${TELECENTRED_CONFDIR}/telecentred.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_BINARY_DIR}/deb/conffiles"
  "${PROJECT_SOURCE_DIR}/cmake/deb/postinst"
  "${PROJECT_SOURCE_DIR}/cmake/deb/prerm"
  "${PROJECT_SOURCE_DIR}/cmake/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
