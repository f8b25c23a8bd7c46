# One fuzz_smoke.* ctest run (see CMakeLists.txt): copies the seed corpus into
# WORK_DIR, so the source tree is never written, and fuzzes for SECONDS.
#   cmake -DFUZZER=<binary> -DSEEDS=<dir> -DWORK_DIR=<dir> -DSECONDS=<n> [-DDICT=<file>] -P smoke.cmake
foreach(_var FUZZER SEEDS WORK_DIR SECONDS)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "smoke.cmake: -D${_var}=... is required")
  endif()
endforeach()

file(GLOB _seeds LIST_DIRECTORIES false "${SEEDS}/*")
if(NOT _seeds)
  message(FATAL_ERROR "no seed files in ${SEEDS}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")
file(COPY ${_seeds} DESTINATION "${WORK_DIR}/corpus")

set(_dict_flag)
if(DEFINED DICT AND EXISTS "${DICT}")
  set(_dict_flag "-dict=${DICT}")
endif()

execute_process(
  COMMAND "${FUZZER}" ${_dict_flag} -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10
          -print_final_stats=1 "-artifact_prefix=${WORK_DIR}/artifacts/" "${WORK_DIR}/corpus"
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "fuzzer exited with '${_rc}'; reproducer(s) in ${WORK_DIR}/artifacts/")
endif()
