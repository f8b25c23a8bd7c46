// Fuzz target: the counsellor workflow's record decoders
// (client-sdk/src/workflow/records.*, schema proto/haven/v1/sealed.proto):
// DecodeWrapUp (what a counsellor device opens from a sealed wrap-up) and
// DecodeResourceCard (what a survivor's app receives from a counsellor).
//
// The low bit of the first byte picks the decoder; the rest is its input.
// Checked: decoders never crash; what decodes is within bounds, encodes
// again, and that encoding decodes to the same value (a canonical fixed
// point: decode(encode(decode(x))) == decode(x)).
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "workflow/records.h"

namespace {

using haven::ByteView;
using haven::Bytes;
namespace client = haven::client;

void WrapUp(ByteView in) {
  auto decoded = client::DecodeWrapUp(in);
  if (!decoded) return;
  HAVEN_FUZZ_CHECK(client::WithinBounds(*decoded));
  const Bytes again = client::EncodeWrapUp(*decoded);
  HAVEN_FUZZ_CHECK(!again.empty());
  auto redecoded = client::DecodeWrapUp(again);
  HAVEN_FUZZ_CHECK(redecoded.has_value() && *redecoded == *decoded);
}

void ResourceCard(ByteView in) {
  auto decoded = client::DecodeResourceCard(in);
  if (!decoded) return;
  HAVEN_FUZZ_CHECK(client::WithinBounds(*decoded));
  const Bytes again = client::EncodeResourceCard(*decoded);
  HAVEN_FUZZ_CHECK(!again.empty());
  auto redecoded = client::DecodeResourceCard(again);
  HAVEN_FUZZ_CHECK(redecoded.has_value() && *redecoded == *decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteView body(data + 1, size - 1);
  if ((data[0] & 1u) == 0) {
    WrapUp(body);
  } else {
    ResourceCard(body);
  }
  return 0;
}
