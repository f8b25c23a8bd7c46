# Every dependency is a Debian 12 package (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium>=1.0.18)

# Fuzz builds need these too: the fuzz targets link the server and SDK libraries.
# Boost 1.81: 1.74 lacks as_tuple, channels and awaitable operators.
find_package(Boost 1.81 REQUIRED CONFIG)
# SQLCipher's pkg-config adds -I/usr/include/sqlcipher, so <sqlite3.h> is SQLCipher's.
pkg_check_modules(SQLCIPHER REQUIRED IMPORTED_TARGET sqlcipher)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)

if(HAVEN_BUILD_TESTS AND NOT HAVEN_FUZZ)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
