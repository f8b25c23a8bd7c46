# cmake -DBUILD_DIR= -DPREFIX= -DLIBDIR=lib -DEXAMPLES_SRC= -DEXAMPLES_BUILD= -DCC= -DCXX=
#       -P sdk_install.cmake
#
# The SDK as an integrator receives it: `cmake --install` of the build tree
# into an empty prefix, then the examples built against that prefix only,
# with CMake (find_package(Haven)) and with pkg-config.
cmake_minimum_required(VERSION 3.25)
foreach(var BUILD_DIR PREFIX LIBDIR EXAMPLES_SRC EXAMPLES_BUILD CC CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "sdk_install.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${PREFIX} ${EXAMPLES_BUILD})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX} --component haven_sdk)

# Exactly the package and nothing of the build's internals.
foreach(f include/haven/haven.h include/haven/client.h include/haven/version.h include/haven/workflow.h
          ${LIBDIR}/libhaven.so ${LIBDIR}/libhaven.so.0 ${LIBDIR}/libhaven.a
          ${LIBDIR}/pkgconfig/haven.pc ${LIBDIR}/cmake/Haven/HavenConfig.cmake
          ${LIBDIR}/cmake/Haven/HavenConfigVersion.cmake)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
file(GLOB_RECURSE installed RELATIVE ${PREFIX} ${PREFIX}/*)
foreach(f IN LISTS installed)
  if(f MATCHES "^include/" AND NOT f MATCHES "^include/haven/(haven|client|version|workflow)\\.h$")
    message(FATAL_ERROR "an internal header was installed: ${f}")
  endif()
endforeach()

# The public headers stand alone: C for haven.h, C++ for client.h.
file(WRITE ${EXAMPLES_BUILD}-hdr/c.c "#include <haven/haven.h>\nint main(void){return 0;}\n")
file(WRITE ${EXAMPLES_BUILD}-hdr/cxx.cc
     "#include <haven/client.h>\n#include <haven/haven.h>\nint main(){return 0;}\n")
run(${CC} -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I${PREFIX}/include
    ${EXAMPLES_BUILD}-hdr/c.c)
run(${CXX} -std=c++17 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I${PREFIX}/include
    ${EXAMPLES_BUILD}-hdr/cxx.cc)

# CMake: the standalone examples project sees only the prefix.
run(${CMAKE_COMMAND} -S ${EXAMPLES_SRC} -B ${EXAMPLES_BUILD} -G Ninja
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=${CC} -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
file(STRINGS ${EXAMPLES_BUILD}/CMakeCache.txt haven_dir REGEX "^Haven_DIR:")
if(NOT haven_dir MATCHES "=${PREFIX}/")
  message(FATAL_ERROR "the examples found Haven outside the prefix: ${haven_dir}")
endif()
run(${CMAKE_COMMAND} --build ${EXAMPLES_BUILD} -j 2)

# pkg-config: a C integrator's one-liner, with an rpath to the prefix.
set(ENV{PKG_CONFIG_PATH} ${PREFIX}/${LIBDIR}/pkgconfig)
run(pkg-config --cflags --libs haven)
string(STRIP "${run_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(pkg-config --variable=libdir haven)
string(STRIP "${run_output}" libdir)
run(pkg-config --modversion haven)
string(STRIP "${run_output}" version)
if(NOT version STREQUAL "0.1.0")
  message(FATAL_ERROR "haven.pc says version ${version}")
endif()
run(${CC} -std=c11 -Wall -Wextra -Wpedantic -Werror -o ${EXAMPLES_BUILD}/counsellor_pkgconfig
    ${EXAMPLES_SRC}/counsellor.c ${flags} -pthread -Wl,-rpath,${libdir})
message(STATUS "installed into ${PREFIX}; examples built in ${EXAMPLES_BUILD}")
