# cmake -DLIB=libhaven.so -DNM=nm -DHEADER=haven.h -P check_exports.cmake
#
# libhaven.so must export the C ABI and the C++ API and nothing else: not
# protobuf's generated code, not Boost or Asio, not the SDK's internal
# haven:: namespaces. An exported internal symbol would be interposed by (or
# interpose on) an application's own copy of the same library.
cmake_minimum_required(VERSION 3.25)
foreach(var LIB NM HEADER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_exports.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND ${NM} -D --defined-only --demangle ${LIB}
                OUTPUT_VARIABLE symbols RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIB}: ${err}")
endif()

string(REPLACE "\n" ";" lines "${symbols}")
set(exported "")
set(unexpected "")
foreach(line IN LISTS lines)
  if(line STREQUAL "")
    continue()
  endif()
  # "<address> <type> <name>[@@VERSION]"; absolute symbols may have no address.
  if(NOT line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) (.*)$")
    list(APPEND unexpected "${line}")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "@@?HAVEN_0$" "" name "${CMAKE_MATCH_2}")
  if(type STREQUAL "A" AND name STREQUAL "HAVEN_0")
    continue()  # the version node itself (ld.bfd lists it)
  endif()
  # client.h's and workflow.h's surface only: not Client::Impl, not the
  # SDK's test hooks.
  if(name MATCHES "^haven_[a-z_0-9]+$" OR
     (name MATCHES "^haven::sdk::(Client::|ToString\\(|Assess\\(|IsMinor\\()" AND
      NOT name MATCHES "Impl|Internals"))
    list(APPEND exported "${name}")
  else()
    list(APPEND unexpected "${line}")
  endif()
endforeach()

if(unexpected)
  list(JOIN unexpected "\n  " text)
  message(FATAL_ERROR "libhaven.so exports symbols outside haven_* and haven::sdk:\n  ${text}")
endif()

# Everything haven.h declares is there, and the C++ entry points too.
file(READ ${HEADER} header)
string(REGEX MATCHALL "HAVEN_EXPORT[^;(]*[ *](haven_[a-z_0-9]+)\\(" decls "${header}")
set(missing "")
set(count 0)
foreach(decl IN LISTS decls)
  string(REGEX REPLACE ".*[ *](haven_[a-z_0-9]+)\\($" "\\1" fn "${decl}")
  math(EXPR count "${count} + 1")
  if(NOT fn IN_LIST exported)
    list(APPEND missing ${fn})
  endif()
endforeach()
if(count LESS 27)  # haven.h 0.1.0 declares 27
  message(FATAL_ERROR "found only ${count} HAVEN_EXPORT declarations in ${HEADER}")
endif()
foreach(cxx "haven::sdk::Client::Create(" "haven::sdk::Client::~Client()"
            "haven::sdk::Client::QuickExit()" "haven::sdk::Client::Send("
            "haven::sdk::ToString(haven::sdk::Code)")
  string(FIND "${exported}" "${cxx}" at)
  if(at EQUAL -1)
    list(APPEND missing "${cxx}")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "libhaven.so does not export: ${missing}")
endif()
list(LENGTH exported n)
message(STATUS "libhaven.so exports ${n} symbols, all haven_* (${count} in haven.h) or haven::sdk")
