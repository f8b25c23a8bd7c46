// The counsellor workflow's records on the wire (SDK-internal): a wrap-up as
// the plaintext that is sealed to the helpline key, and a resource card as
// the body of an end-to-end message. Schema: proto/haven/v1/sealed.proto
// (WrapUpRecord, ResourceCardBody). No I/O, no keys: sealing and sending are
// the engine's (e2e::SealToHelpline, the Double Ratchet).
//
// Bounds, on both sides: every string is valid UTF-8 of at most
// sdk::kMaxWorkflowFieldBytes bytes, at most sdk::kMaxReferralsGiven
// referral ids, enum values inside their enumerations, format version 1,
// and the `complete` marker (so that a record cut short is rejected).
// An encoder given something out of bounds returns an empty Bytes (a valid
// encoding is never empty); a decoder given anything out of bounds, or bytes
// that do not parse, returns nullopt. Decoders never crash, whatever the
// input, and look at no more than the size limits below.
//
// The plaintext these return holds the case note in ordinary heap memory:
// seal it and drop it at once.
#pragma once

#include <cstddef>
#include <optional>

#include "haven/common/bytes.h"
#include "haven/workflow.h"

namespace haven::client {

// Upper bounds of a valid encoding (with room for fields added later);
// longer inputs are rejected before parsing.
inline constexpr std::size_t kMaxWrapUpRecordBytes = 128 * 1024;
inline constexpr std::size_t kMaxResourceCardBytes = 16 * 1024;

// True when `w` (or `card`) is within the bounds above, so that encoding it
// succeeds. For an engine to answer kInvalidArgument with a reason of its own.
bool WithinBounds(const sdk::WrapUp& w);
bool WithinBounds(const sdk::ResourceCard& card);

// The WrapUpRecord for `w`, its outcome computed with sdk::Assess. Empty when
// !WithinBounds(w).
Bytes EncodeWrapUp(const sdk::WrapUp& w);

// nullopt unless `in` is a WrapUpRecord of format version 1 within bounds
// whose stored outcome equals sdk::Assess of its screening answers.
std::optional<sdk::WrapUp> DecodeWrapUp(ByteView in);

// The ResourceCardBody for `card`. Empty when !WithinBounds(card).
Bytes EncodeResourceCard(const sdk::ResourceCard& card);

// nullopt unless `in` is a ResourceCardBody of format version 1 within bounds.
std::optional<sdk::ResourceCard> DecodeResourceCard(ByteView in);

}  // namespace haven::client
