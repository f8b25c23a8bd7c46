# libhaven: the SDK as integrators get it (included by client-sdk/CMakeLists.txt).
#   haven_shared  libhaven.so.0: the C ABI (haven.h) and the C++ API
#                 (client.h); every other symbol is local (haven.map).
#   haven_static  libhaven.a: the C ABI plus every internal static library
#                 merged into one archive, so a static integrator links one
#                 file and the system libraries (libsodium, SQLCipher,
#                 protobuf-lite, threads).
#   install       headers, both libraries, find_package(Haven) and haven.pc
#                 (component haven_sdk).
#
# In script mode (cmake -P) this file merges the archives: see the end.
if(CMAKE_SCRIPT_MODE_FILE AND NOT CMAKE_PROJECT_NAME)
  # ar's MRI script (CREATE/ADDLIB/SAVE) keeps members whose names repeat
  # across libraries (haven_noise and haven_crypto both have primitives.cc.o),
  # which extracting and re-archiving would silently overwrite.
  execute_process(COMMAND ${HAVEN_AR} -M INPUT_FILE ${HAVEN_MRI} RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ar -M failed (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${HAVEN_RANLIB} ${HAVEN_OUT}.merged RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ranlib failed on ${HAVEN_OUT}.merged")
  endif()
  file(RENAME ${HAVEN_OUT}.merged ${HAVEN_OUT})
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Everything haven_client needs, in link order (what libhaven.a must carry).
set(HAVEN_SDK_INTERNAL_LIBS haven_client haven_workflow haven_client_transport haven_e2e haven_crypto
    haven_noise haven_framing haven_sqlcipher haven_common haven_proto)
set(HAVEN_SDK_PUBLIC_HEADERS
    ${CMAKE_CURRENT_SOURCE_DIR}/include/haven/haven.h
    ${CMAKE_CURRENT_SOURCE_DIR}/include/haven/client.h
    ${CMAKE_CURRENT_SOURCE_DIR}/include/haven/workflow.h
    ${CMAKE_CURRENT_SOURCE_DIR}/include/haven/version.h)

# The C ABI, compiled once for both libraries. Hidden by default: only what
# haven.h marks HAVEN_EXPORT leaves this object.
add_library(haven_capi OBJECT src/capi/haven_capi.cc)
target_link_libraries(haven_capi PRIVATE haven_client haven_warnings)
target_compile_options(haven_capi PRIVATE -fvisibility=hidden -fvisibility-inlines-hidden)

# --- libhaven.so ---
add_library(haven_shared SHARED $<TARGET_OBJECTS:haven_capi>)
# The whole of haven_client, not only what the C ABI calls: C++ integrators
# use all of client.h (ToString, History, ...) from this library.
target_link_libraries(haven_shared PRIVATE $<LINK_LIBRARY:WHOLE_ARCHIVE,haven_client>)
target_include_directories(haven_shared INTERFACE
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_options(haven_shared PRIVATE
  -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/haven.map
  -Wl,--no-undefined)
set_target_properties(haven_shared PROPERTIES
  OUTPUT_NAME haven
  VERSION ${PROJECT_VERSION}
  SOVERSION 0
  C_VISIBILITY_PRESET hidden
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/haven.map)

# --- libhaven.a ---
# CMake archives the C ABI object; the POST_BUILD step then merges the
# internal archives into the same file. A static library has no link step
# that LINK_DEPENDS could hook, so an (empty) generated source that depends
# on every internal archive makes Ninja re-archive and re-merge whenever one
# of them changes.
set(_haven_static_stamp ${CMAKE_CURRENT_BINARY_DIR}/haven_static_inputs.cc)
add_library(haven_static STATIC $<TARGET_OBJECTS:haven_capi> ${_haven_static_stamp})
set_target_properties(haven_static PROPERTIES OUTPUT_NAME haven)
add_dependencies(haven_static ${HAVEN_SDK_INTERNAL_LIBS})
set(_haven_mri_lines
    "CREATE $<TARGET_FILE:haven_static>.merged\nADDLIB $<TARGET_FILE:haven_static>\n")
set(_haven_archives "")
foreach(lib IN LISTS HAVEN_SDK_INTERNAL_LIBS)
  string(APPEND _haven_mri_lines "ADDLIB $<TARGET_FILE:${lib}>\n")
  list(APPEND _haven_archives $<TARGET_FILE:${lib}>)
endforeach()
string(APPEND _haven_mri_lines "SAVE\nEND\n")
file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/haven_static.mri CONTENT "${_haven_mri_lines}")
add_custom_command(OUTPUT ${_haven_static_stamp}
  COMMAND ${CMAKE_COMMAND} -E touch ${_haven_static_stamp}
  DEPENDS ${_haven_archives}
  COMMENT "libhaven.a: an internal archive changed"
  VERBATIM)
add_custom_command(TARGET haven_static POST_BUILD
  COMMAND ${CMAKE_COMMAND} -DHAVEN_AR=${CMAKE_AR} -DHAVEN_RANLIB=${CMAKE_RANLIB}
          -DHAVEN_MRI=${CMAKE_CURRENT_BINARY_DIR}/haven_static.mri
          -DHAVEN_OUT=$<TARGET_FILE:haven_static>
          -P ${CMAKE_CURRENT_SOURCE_DIR}/packaging.cmake
  COMMENT "Merging the SDK's internal libraries into libhaven.a"
  VERBATIM)
target_include_directories(haven_static INTERFACE
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(haven_static INTERFACE
  PkgConfig::SODIUM PkgConfig::SQLCIPHER protobuf::libprotobuf-lite Threads::Threads)

# --- install (component haven_sdk) ---
set(HAVEN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Haven)
install(TARGETS haven_shared haven_static
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT haven_sdk NAMELINK_COMPONENT haven_sdk
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT haven_sdk)
install(FILES ${HAVEN_SDK_PUBLIC_HEADERS}
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/haven COMPONENT haven_sdk)

# Hand-written imported targets rather than install(EXPORT): the internal
# targets behind libhaven are not (and must not become) part of the package.
configure_package_config_file(
  ${CMAKE_CURRENT_SOURCE_DIR}/HavenConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/HavenConfig.cmake
  INSTALL_DESTINATION ${HAVEN_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# 0.x: a new minor version may break the ABI.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/HavenConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/HavenConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/HavenConfigVersion.cmake
  DESTINATION ${HAVEN_INSTALL_CMAKEDIR} COMPONENT haven_sdk)

# haven.pc finds its prefix from its own location (${pcfiledir}), so an
# installed tree can be moved.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(HAVEN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _haven_pc_up "/haven-root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/haven-root")
  set(HAVEN_PC_PREFIX "\${pcfiledir}/${_haven_pc_up}")
endif()
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/haven.pc.in ${CMAKE_CURRENT_BINARY_DIR}/haven.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/haven.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT haven_sdk)
