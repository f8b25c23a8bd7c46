# haven-chat (tools/haven-chat): included by tests/CMakeLists.txt.
if(NOT TARGET haven-chat)
  return()
endif()

# The terminal layer without a terminal: keys, the line editor, safe output;
# and the wrap-up form without a server.
haven_test(haven_chat_unit_test
  SOURCES unit/haven_chat_terminal_test.cc
  DEPS haven_chat_terminal haven_chat_wrapup)

# haven-chat processes driven through tmux the way people use them, against a
# real havend: queue, claim, messages both ways, quick exit; and, with the
# example helpline configuration, a supervisor and two counsellors: resource
# card, flag and alert, load, warm transfer with a note, wrap-up.
# tmux is required: without it the test fails unless HAVEN_ALLOW_NO_TMUX is set.
haven_test(haven_chat_tmux_test
  SOURCES integration/haven_chat_tmux_test.cc
  DEPS haven_havend_process
  PROPERTIES LABELS integration TIMEOUT 300)
target_compile_definitions(haven_chat_tmux_test PRIVATE
  HAVEN_CHAT_PATH="$<TARGET_FILE:haven-chat>" HAVEN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(haven_chat_tmux_test haven-chat)
