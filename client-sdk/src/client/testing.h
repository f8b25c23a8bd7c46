// SDK-internal hooks for tests that must look inside a client: the memory
// scan after quick exit needs the session keys the client holds.
#pragma once

#include <vector>

#include "haven/client.h"
#include "haven/common/secure_memory.h"

namespace haven::sdk {

struct ClientInternals {
  // Copies of the transport keys and end-to-end root keys the client holds
  // now (empty after quick exit).
  static std::vector<SecureBuffer> SessionKeys(Client& client);
};

}  // namespace haven::sdk
