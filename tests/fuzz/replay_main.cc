// Replay driver for builds without libFuzzer (the normal g++ build): runs
// LLVMFuzzerTestOneInput on every file given (directories are walked, in
// sorted order), then on a deterministic pseudo-random set of inputs: half of
// them plain random bytes, half corpus files with a few random edits.
//
//   <target>_replay [--random N] [--seed S] [--max-len L] [file-or-dir...]
//
// Exit status 0 when every input ran; a violated invariant aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Input = std::vector<std::uint8_t>;

bool ReadInput(const std::filesystem::path& path, Input* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

void RunOne(const Input& input) {
  // Copy into an exactly sized heap block so ASan catches reads past the end.
  const std::size_t size = input.size();
  auto* copy = new std::uint8_t[size == 0 ? 1 : size];
  std::copy(input.begin(), input.end(), copy);
  LLVMFuzzerTestOneInput(size == 0 ? nullptr : copy, size);
  delete[] copy;
}

bool ParseCount(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = value;
  return true;
}

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--random N] [--seed S] [--max-len L] [file-or-dir...]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t random_inputs = 0;
  std::uint64_t seed = 1;
  std::uint64_t max_len = 512;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::uint64_t* target = nullptr;
    if (arg == "--random") target = &random_inputs;
    if (arg == "--seed") target = &seed;
    if (arg == "--max-len") target = &max_len;
    if (target != nullptr) {
      if (i + 1 >= argc || !ParseCount(argv[i + 1], target)) return Usage(argv[0]);
      ++i;
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage(argv[0]);
    } else {
      paths.emplace_back(arg);
    }
  }

  std::vector<Input> corpus;
  for (const std::filesystem::path& path : paths) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      if (ec) {
        std::fprintf(stderr, "cannot list %s: %s\n", path.c_str(), ec.message().c_str());
        return 1;
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(path);
    }
    for (const std::filesystem::path& file : files) {
      Input input;
      if (!ReadInput(file, &input)) {
        std::fprintf(stderr, "cannot read %s\n", file.c_str());
        return 1;
      }
      RunOne(input);
      corpus.push_back(std::move(input));
    }
  }
  std::printf("replayed %zu corpus file(s)\n", corpus.size());

  std::mt19937_64 rng(seed);
  auto below = [&rng](std::size_t n) {
    return n == 0 ? std::size_t{0} : static_cast<std::size_t>(rng() % n);
  };
  auto random_byte = [&rng] { return static_cast<std::uint8_t>(rng() & 0xffu); };
  for (std::uint64_t round = 0; round < random_inputs; ++round) {
    Input input;
    if (round % 2 == 1 && !corpus.empty()) {
      input = corpus[below(corpus.size())];
      const std::size_t edits = 1 + below(4);
      for (std::size_t e = 0; e < edits; ++e) {
        switch (below(4)) {
          case 0:  // flip a byte
            if (!input.empty()) input[below(input.size())] ^= static_cast<std::uint8_t>(1 + below(255));
            break;
          case 1:  // truncate
            input.resize(below(input.size() + 1));
            break;
          case 2:  // insert a byte
            input.insert(input.begin() + static_cast<std::ptrdiff_t>(below(input.size() + 1)),
                         random_byte());
            break;
          default:  // overwrite a byte
            if (!input.empty()) input[below(input.size())] = random_byte();
            break;
        }
      }
    } else {
      input.resize(below(static_cast<std::size_t>(max_len) + 1));
      for (std::uint8_t& b : input) b = random_byte();
    }
    RunOne(input);
  }
  std::printf("ran %llu pseudo-random input(s), seed %llu: all passed\n",
              static_cast<unsigned long long>(random_inputs),
              static_cast<unsigned long long>(seed));
  return 0;
}
