# The counsellor workflow's pure pieces (SDK-internal library, public types in
# include/haven/workflow.h): the Action-Means-Purpose screening rule, and the
# wrap-up and resource-card records (proto/haven/v1/sealed.proto). No I/O.
haven_library(haven_workflow
  SOURCES src/workflow/workflow.cc src/workflow/records.cc
  PUBLIC_INCLUDE ${CMAKE_CURRENT_SOURCE_DIR}/src
  PUBLIC_DEPS haven_client_api haven_common
  PRIVATE_DEPS haven_proto)
