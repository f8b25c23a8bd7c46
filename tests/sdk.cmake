# The SDK's client object against a real havend, and quick exit's proofs.
haven_test(sdk_integration_test
  SOURCES integration/sdk_client_test.cc
  DEPS haven_client haven_havend_process haven_client_transport haven_server_store
  PROPERTIES LABELS integration)

# Quick exit's proofs: directory diff, memory scan, kill mid-wipe, exits
# under way. A binary of its own: it forks and scans its own memory.
haven_test(sdk_quick_exit_test
  SOURCES integration/sdk_quick_exit_test.cc
  DEPS haven_client haven_havend_process
  PROPERTIES LABELS integration)

# The SDK's sans-I/O pieces: resumption secret, stored device keys.
haven_test(sdk_unit_test
  SOURCES unit/sdk_engine_test.cc
  DEPS haven_client)

# The counsellor workflow through the SDK against havend with a helpline
# configuration (transfers, cap, filter, cards, flags, blocks, wrap-up, audit).
haven_test(sdk_workflow_test
  SOURCES integration/sdk_workflow_test.cc
  DEPS haven_client haven_havend_process haven_server_store haven_server_config haven_client_transport
  PROPERTIES LABELS integration)
target_compile_definitions(sdk_workflow_test PRIVATE HAVEN_AUDIT_PATH="$<TARGET_FILE:haven-audit>")
add_dependencies(sdk_workflow_test haven-audit)
