// Invitation codes for enrolling counsellor devices. The code is shown once
// to the operator; the database keeps only a keyed hash of it, so a stolen
// database cannot be used to enrol a device.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace haven::server {

using InvitationHash = std::array<std::uint8_t, 32>;

// A fresh code: 160 random bits in Crockford base32, grouped by four with
// dashes, e.g. "7K2M-...". Easy to read out and to type.
std::string NewInvitationCode();

// Normalises (case, dashes and spaces ignored; O->0, I/L->1) and hashes a
// code. nullopt if it cannot be a code we issued.
std::optional<InvitationHash> HashInvitationCode(std::string_view code);

}  // namespace haven::server
