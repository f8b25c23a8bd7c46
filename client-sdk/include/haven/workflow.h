// Haven client SDK: the counsellor workflow's data (screening, wrap-up,
// resource cards). Pure values and rules: nothing here does I/O, and no
// Asio, protobuf or libsodium type appears in this header.
//
// Screening follows the Action-Means-Purpose model of the UN trafficking
// (Palermo) protocol: a case indicates potential trafficking when at least
// one element of each column is present, except that for a minor the Means
// column is not required (any commercial sex act involving a minor is
// trafficking). Every answer may be "unknown": survivors decide what they
// disclose, and an unknown answer never counts as a yes.
//
// A WrapUp is sealed to the helpline key when a counsellor closes a
// conversation; the server stores only the blob. A ResourceCard is a
// structured referral that travels end to end like any message.
//
// All functions are thread-safe (they have no state).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace haven::sdk {

// One screening answer. Stable values (they are stored in sealed records).
enum class Answer : int { kUnknown = 0, kNo = 1, kYes = 2 };

// The person's age band, as far as it is known. Stable values.
enum class AgeBand : int {
  kUnknown = 0,  // not asked, not disclosed or unsure: NOT treated as a minor
  kUnder13 = 1,
  k13To17 = 2,
  k18To24 = 3,
  k25To39 = 4,
  k40Plus = 5,
};

// True for the bands under 18 (kUnder13, k13To17). False for kUnknown and
// for any value outside the enumeration.
bool IsMinor(AgeBand band);

// The structured screening record. Every answer starts as kUnknown.
struct Screening {
  // What was done to the person.
  struct Action {
    Answer recruits = Answer::kUnknown;
    Answer harbours = Answer::kUnknown;
    Answer transports = Answer::kUnknown;
    Answer provides = Answer::kUnknown;
    Answer obtains = Answer::kUnknown;
    Answer advertises = Answer::kUnknown;
    Answer patronises = Answer::kUnknown;
    Answer solicits = Answer::kUnknown;
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
    bool operator==(const Action&) const = default;
#endif
  } action;
  // How it was done.
  struct Means {
    Answer force = Answer::kUnknown;
    Answer fraud = Answer::kUnknown;
    Answer coercion = Answer::kUnknown;
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
    bool operator==(const Means&) const = default;
#endif
  } means;
  // To what end.
  struct Purpose {
    Answer commercial_sex = Answer::kUnknown;
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
    bool operator==(const Purpose&) const = default;
#endif
  } purpose;
  AgeBand age_band = AgeBand::kUnknown;
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
  bool operator==(const Screening&) const = default;
#endif
};

// Stable values (they are stored in sealed records).
enum class ScreeningOutcome : int { kNotIndicated = 0, kPotentialTrafficking = 1 };

// kPotentialTrafficking when at least one Action, one Means and one Purpose
// element is kYes, or when the person is a minor (IsMinor(s.age_band)) and
// at least one Action and one Purpose element is kYes (no Means needed).
// Only kYes counts: kNo, kUnknown and values outside the enumeration never
// do. A potential trafficking case, or a minor, is for the counsellor's app
// to bring to a supervisor at once.
ScreeningOutcome Assess(const Screening& s);

// English, lower case, for developers and logs ("not indicated",
// "potential trafficking"). Never null.
const char* ToString(ScreeningOutcome o);

// Bounds on what a wrap-up or a resource card may hold.
inline constexpr std::size_t kMaxWorkflowFieldBytes = 2000;
inline constexpr std::size_t kMaxReferralsGiven = 32;

// Consent recorded with its scope: the helpline acts only with consent
// (except for suspected child abuse or imminent danger).
struct Consent {
  bool follow_up = false;
  std::string follow_up_scope;  // e.g. "follow up by chat only"
  bool sharing = false;
  std::string sharing_scope;    // e.g. "shelter referral only"
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
  bool operator==(const Consent&) const = default;
#endif
};

// What a counsellor records when closing a conversation. Every string is at
// most kMaxWorkflowFieldBytes bytes of UTF-8; at most kMaxReferralsGiven
// referral ids. The outcome is not stored here: it is always Assess(screening).
struct WrapUp {
  std::string category_id;                   // from the helpline's configured categories
  std::string case_note;                     // minimal, non-identifying
  Screening screening;
  std::vector<std::string> referrals_given;  // referral ids from the directory
  Consent consent;
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
  bool operator==(const WrapUp&) const = default;
#endif
};

// A structured referral as the survivor's app shows it (from the helpline's
// referral directory). Every string is at most kMaxWorkflowFieldBytes bytes
// of UTF-8. Untrusted when received: display it as text, never as markup.
struct ResourceCard {
  std::string service;  // e.g. "shelter", "legal aid"
  std::string name;
  std::string offers;   // what they offer, in plain words
  std::string contact;  // how to reach them
  std::string region;
#if __cplusplus >= 202002L  // comparisons for C++20 users; the header itself is C++17
  bool operator==(const ResourceCard&) const = default;
#endif
};

}  // namespace haven::sdk
