# The helpline configuration (config/helpline.toml): included by tests/CMakeLists.txt.
haven_test(helpline_config_test SOURCES unit/helpline_config_test.cc DEPS haven_server_config)
target_compile_definitions(helpline_config_test PRIVATE HAVEN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
