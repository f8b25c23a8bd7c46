# Compiler launcher, linker and sanitizer settings shared by every target.

find_program(HAVEN_CCACHE ccache)
if(HAVEN_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${HAVEN_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${HAVEN_CCACHE})
endif()

# lld links about three times faster than ld.bfd on this class of machine.
find_program(HAVEN_LLD ld.lld)
if(HAVEN_LLD)
  add_link_options(-fuse-ld=lld)
endif()

if(HAVEN_SANITIZE)
  string(REPLACE ";" "," _haven_san "${HAVEN_SANITIZE}")
  add_compile_options(-fsanitize=${_haven_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_haven_san})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND _haven_san MATCHES "undefined")
    # clang 14 cannot compile UBSan's function check on coroutine frames.
    add_compile_options(-fno-sanitize=function)
  endif()
endif()

# Warnings apply to project targets only (haven_project_options); third-party
# headers come in as system headers and are not checked.
add_library(haven_warnings INTERFACE)
target_compile_options(haven_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(HAVEN_WERROR)
  target_compile_options(haven_warnings INTERFACE -Werror)
endif()
if(HAVEN_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(haven_warnings INTERFACE -Wno-tsan)
endif()
