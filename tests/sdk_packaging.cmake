# The SDK as integrators get it (included by tests/CMakeLists.txt):
#   CAbi.*                      tests/c/haven_c_test.c, pure C on libhaven.so,
#                               end to end against havend (c_abi_launcher_test)
#   HavenSharedExportsOnlyApi   libhaven.so exports haven_* and haven::sdk only
#   HavenSdkInstall             cmake --install into a temporary prefix, then
#                               examples/ built against it (CMake, pkg-config)
#   SdkExamples.*               the installed examples and the Python ctypes
#                               binding against havend
if(NOT TARGET haven_shared)
  return()
endif()

# Pure C11, no extensions, warnings as errors: what an integrator's C sees.
add_executable(haven_c_test c/haven_c_test.c)
target_link_libraries(haven_c_test PRIVATE haven_shared Threads::Threads)
target_compile_options(haven_c_test PRIVATE -Wall -Wextra -Wpedantic -Werror)
set_target_properties(haven_c_test PROPERTIES
  C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)

haven_test(c_abi_launcher_test
  SOURCES c/c_abi_launcher_test.cc
  DEPS haven_havend_process
  PROPERTIES LABELS integration)
target_compile_definitions(c_abi_launcher_test PRIVATE
  HAVEN_C_TEST_PATH="$<TARGET_FILE:haven_c_test>")
add_dependencies(c_abi_launcher_test haven_c_test)

add_test(NAME HavenSharedExportsOnlyApi
  COMMAND ${CMAKE_COMMAND} -DLIB=$<TARGET_FILE:haven_shared> -DNM=${CMAKE_NM}
          -DHEADER=${PROJECT_SOURCE_DIR}/client-sdk/include/haven/haven.h
          -P ${CMAKE_CURRENT_SOURCE_DIR}/c/check_exports.cmake)

# The installed package is what an integrator links without sanitizers: a
# sanitizer build's libhaven needs the sanitizer runtime in every program
# that loads it, so the install and examples tests belong to the plain
# build (the default pass of scripts/test.sh runs them).
if(HAVEN_SANITIZE)
  return()
endif()

# Install, then build examples/ against the prefix. A fixture: the examples
# test below runs only after it.
set(HAVEN_SDK_TEST_PREFIX ${CMAKE_CURRENT_BINARY_DIR}/sdk-install)
set(HAVEN_SDK_EXAMPLES_BUILD ${CMAKE_CURRENT_BINARY_DIR}/sdk-examples)
add_test(NAME HavenSdkInstall
  COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DPREFIX=${HAVEN_SDK_TEST_PREFIX}
          -DLIBDIR=${CMAKE_INSTALL_LIBDIR} -DEXAMPLES_SRC=${PROJECT_SOURCE_DIR}/examples
          -DEXAMPLES_BUILD=${HAVEN_SDK_EXAMPLES_BUILD}
          -DCC=${CMAKE_C_COMPILER} -DCXX=${CMAKE_CXX_COMPILER}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/c/sdk_install.cmake)
set_tests_properties(HavenSdkInstall PROPERTIES
  FIXTURES_SETUP haven_sdk_installed LABELS packaging TIMEOUT 300)

find_package(Python3 COMPONENTS Interpreter)
haven_test(sdk_examples_test
  SOURCES c/sdk_examples_test.cc
  DEPS haven_havend_process
  PROPERTIES LABELS integration FIXTURES_REQUIRED haven_sdk_installed)
target_compile_definitions(sdk_examples_test PRIVATE
  HAVEN_EXAMPLES_BUILD="${HAVEN_SDK_EXAMPLES_BUILD}"
  HAVEN_SDK_LIB="${HAVEN_SDK_TEST_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libhaven.so.0"
  HAVEN_PYTHON="$<IF:$<BOOL:${Python3_EXECUTABLE}>,${Python3_EXECUTABLE},>"
  HAVEN_PYTHON_EXAMPLE="${PROJECT_SOURCE_DIR}/examples/python/haven_ctypes.py")
