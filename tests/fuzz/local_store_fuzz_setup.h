// Shared by local_store_fuzz.cc and its seed generator: the store's fixed
// key (a test constant) and a scratch directory, in /dev/shm when it exists.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "haven/common/secure_memory.h"

namespace haven::fuzz {

inline std::string LocalStoreFuzzKeyHex() {
  return "6c6f63616c2d73746f72652d66757a7a2d6b65792d6e6f742d612d7365637265";
}

inline SecureBuffer LocalStoreFuzzKey() {
  const std::string hex = LocalStoreFuzzKeyHex();
  SecureBuffer key(hex.size() / 2);
  for (std::size_t i = 0; i < key.size(); ++i) {
    key.data()[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return key;
}

inline std::filesystem::path FuzzScratchDir(const std::string& name) {
  std::error_code ec;
  const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                         ? std::filesystem::path("/dev/shm")
                                         : std::filesystem::temp_directory_path();
  const std::filesystem::path dir = base / (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace haven::fuzz
