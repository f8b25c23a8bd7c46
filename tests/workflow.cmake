# The counsellor workflow's pure pieces: the screening rule (table-driven),
# wrap-up and resource-card records, a wrap-up sealed to the helpline key.
# haven_proto: the test reads the stored outcome from the record itself.
haven_test(workflow_test
  SOURCES unit/workflow_test.cc
  DEPS haven_workflow haven_e2e haven_proto)
