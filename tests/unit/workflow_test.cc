// The counsellor workflow's pure pieces: the Action-Means-Purpose rule with
// the minor rule (table-driven, then exhaustively against an oracle), the
// wrap-up and resource-card records, and a wrap-up sealed to the helpline.
#include "haven/workflow.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "e2e/sealing.h"
#include "haven/v1/sealed.pb.h"
#include "workflow/records.h"

namespace haven {
namespace {

using sdk::AgeBand;
using sdk::Answer;
using sdk::Assess;
using sdk::ScreeningOutcome;
using sdk::Screening;

constexpr ScreeningOutcome kNot = ScreeningOutcome::kNotIndicated;
constexpr ScreeningOutcome kPot = ScreeningOutcome::kPotentialTrafficking;

// The 12 answers in a fixed order: 8 Action, 3 Means, 1 Purpose.
constexpr std::array<Answer Screening::Action::*, 8> kActions = {
    &Screening::Action::recruits,   &Screening::Action::harbours, &Screening::Action::transports,
    &Screening::Action::provides,   &Screening::Action::obtains,  &Screening::Action::advertises,
    &Screening::Action::patronises, &Screening::Action::solicits};
constexpr std::array<Answer Screening::Means::*, 3> kMeans = {
    &Screening::Means::force, &Screening::Means::fraud, &Screening::Means::coercion};
constexpr std::array<const char*, 8> kActionNames = {"recruits", "harbours",   "transports",
                                                     "provides", "obtains",    "advertises",
                                                     "patronises", "solicits"};
constexpr std::array<const char*, 3> kMeansNames = {"force", "fraud", "coercion"};
constexpr std::array<AgeBand, 6> kBands = {AgeBand::kUnknown, AgeBand::kUnder13, AgeBand::k13To17,
                                           AgeBand::k18To24,  AgeBand::k25To39,  AgeBand::k40Plus};

Answer& At(Screening& s, std::size_t i) {
  if (i < 8) return s.action.*kActions[i];
  if (i < 11) return s.means.*kMeans[i - 8];
  return s.purpose.commercial_sex;
}

Answer FromChar(char c) {
  switch (c) {
    case 'y': return Answer::kYes;
    case 'n': return Answer::kNo;
    default: return Answer::kUnknown;  // '.'
  }
}

// "AAAAAAAA MMM P", one character per answer: 'y' yes, 'n' no, '.' unknown.
// Action: recruits harbours transports provides obtains advertises
// patronises solicits; Means: force fraud coercion; Purpose: commercial sex.
Screening Parse(std::string_view pattern, AgeBand band) {
  Screening s;
  std::size_t i = 0;
  for (char c : pattern) {
    if (c == ' ') continue;
    At(s, i++) = FromChar(c);
  }
  EXPECT_EQ(i, 12u) << pattern;
  s.age_band = band;
  return s;
}

struct Row {
  const char* name;
  const char* answers;
  AgeBand band;
  ScreeningOutcome expected;
};

// clang-format off
const Row kRows[] = {
    // Nothing known, nothing said.
    {"AllUnknownAdult",               "........ ... .", AgeBand::k25To39,  kNot},
    {"AllUnknownMinor",               "........ ... .", AgeBand::k13To17,  kNot},
    {"AllUnknownAgeUnknown",          "........ ... .", AgeBand::kUnknown, kNot},
    // Each column alone.
    {"ActionAlone",                   "y....... ... .", AgeBand::k18To24,  kNot},
    {"MeansAlone",                    "........ y.. .", AgeBand::k18To24,  kNot},
    {"PurposeAlone",                  "........ ... y", AgeBand::k18To24,  kNot},
    {"AllActionsAlone",               "yyyyyyyy ... .", AgeBand::k40Plus,  kNot},
    {"AllMeansAlone",                 "........ yyy .", AgeBand::k40Plus,  kNot},
    // Every pair of columns.
    {"ActionMeans",                   "y....... y.. .", AgeBand::k18To24,  kNot},
    {"ActionPurpose",                 "y....... ... y", AgeBand::k18To24,  kNot},
    {"MeansPurpose",                  "........ y.. y", AgeBand::k18To24,  kNot},
    {"ActionMeansPurposeNo",          "yyyyyyyy yyy n", AgeBand::k18To24,  kNot},
    {"ActionPurposeMeansNo",          "yyyyyyyy nnn y", AgeBand::k18To24,  kNot},
    {"MeansPurposeActionNo",          "nnnnnnnn yyy y", AgeBand::k18To24,  kNot},
    // All three.
    {"AllThreeAdult",                 "y....... y.. y", AgeBand::k18To24,  kPot},
    {"AllThreeAgeUnknown",            "y....... y.. y", AgeBand::kUnknown, kPot},
    {"AllThreeMinor",                 "y....... y.. y", AgeBand::kUnder13, kPot},
    {"EverythingYes",                 "yyyyyyyy yyy y", AgeBand::k40Plus,  kPot},
    {"OneYesAmongNosInEachColumn",    "nnnnnnny nyn y", AgeBand::k25To39,  kPot},
    {"OneYesAmongUnknownsInEachColumn", "...y.... ..y y", AgeBand::k25To39, kPot},
    // "no" never counts.
    {"AllNoAdult",                    "nnnnnnnn nnn n", AgeBand::k25To39,  kNot},
    {"AllNoMinor",                    "nnnnnnnn nnn n", AgeBand::kUnder13, kNot},
    {"AllNoAgeUnknown",               "nnnnnnnn nnn n", AgeBand::kUnknown, kNot},
    // Unknown never counts as yes.
    {"PurposeUnknown",                "yyyyyyyy yyy .", AgeBand::k18To24,  kNot},
    {"MeansUnknown",                  "yyyyyyyy ... y", AgeBand::k18To24,  kNot},
    {"ActionUnknown",                 "........ yyy y", AgeBand::k18To24,  kNot},
    {"MixedNoAndUnknownNoYes",        "n.n.n.n. .n. n", AgeBand::k13To17,  kNot},
    // The minor rule: Action and Purpose suffice, no Means needed.
    {"MinorUnder13ActionPurpose",     "y....... ... y", AgeBand::kUnder13, kPot},
    {"Minor13To17ActionPurpose",      "y....... ... y", AgeBand::k13To17,  kPot},
    {"MinorActionPurposeMeansNo",     ".......y nnn y", AgeBand::k13To17,  kPot},
    {"MinorActionPurposeMeansUnknown", "....y... ... y", AgeBand::kUnder13, kPot},
    {"MinorWithMeans",                "y....... ..y y", AgeBand::k13To17,  kPot},
    {"MinorActionOnly",               "yyyyyyyy ... .", AgeBand::k13To17,  kNot},
    {"MinorPurposeOnly",              "........ ... y", AgeBand::k13To17,  kNot},
    {"MinorMeansPurposeNoAction",     "........ yyy y", AgeBand::kUnder13, kNot},
    {"MinorActionMeansNoPurpose",     "yyyyyyyy yyy n", AgeBand::kUnder13, kNot},
    {"MinorActionMeansPurposeUnknown", "yyyyyyyy yyy .", AgeBand::k13To17, kNot},
    // The minor rule needs a known minor: an unknown age is not one.
    {"AgeUnknownActionPurpose",       "y....... ... y", AgeBand::kUnknown, kNot},
    {"Adult18To24ActionPurpose",      "y....... ... y", AgeBand::k18To24,  kNot},
    {"Adult25To39ActionPurpose",      "y....... ... y", AgeBand::k25To39,  kNot},
    {"Adult40PlusActionPurpose",      "y....... ... y", AgeBand::k40Plus,  kNot},
};
// clang-format on

class AssessTable : public testing::TestWithParam<Row> {};

TEST_P(AssessTable, GivesTheExpectedOutcome) {
  const Row& row = GetParam();
  const Screening s = Parse(row.answers, row.band);
  EXPECT_EQ(Assess(s), row.expected)
      << row.answers << " band " << static_cast<int>(row.band) << ": got "
      << sdk::ToString(Assess(s));
}

INSTANTIATE_TEST_SUITE_P(Rows, AssessTable, testing::ValuesIn(kRows),
                         [](const testing::TestParamInfo<Row>& row) { return row.param.name; });

TEST(Assess, EachActionElementWithEachMeansElementAndPurposeIsSufficient) {
  for (std::size_t a = 0; a < kActions.size(); ++a) {
    for (std::size_t m = 0; m < kMeans.size(); ++m) {
      for (AgeBand band : kBands) {
        Screening s;
        s.age_band = band;
        s.action.*kActions[a] = Answer::kYes;
        s.means.*kMeans[m] = Answer::kYes;
        s.purpose.commercial_sex = Answer::kYes;
        EXPECT_EQ(Assess(s), kPot) << kActionNames[a] << " + " << kMeansNames[m];
        // And each of the three is necessary (for an adult or an unknown age).
        Screening without_purpose = s;
        without_purpose.purpose.commercial_sex = Answer::kNo;
        EXPECT_EQ(Assess(without_purpose), kNot) << kActionNames[a];
        Screening without_action = s;
        without_action.action.*kActions[a] = Answer::kUnknown;
        EXPECT_EQ(Assess(without_action), kNot) << kActionNames[a];
        Screening without_means = s;
        without_means.means.*kMeans[m] = Answer::kNo;
        EXPECT_EQ(Assess(without_means), sdk::IsMinor(band) ? kPot : kNot)
            << kActionNames[a] << " band " << static_cast<int>(band);
      }
    }
  }
}

TEST(Assess, EachActionElementWithPurposeIsSufficientForAMinorOnly) {
  for (std::size_t a = 0; a < kActions.size(); ++a) {
    for (AgeBand band : kBands) {
      Screening s;
      s.age_band = band;
      s.action.*kActions[a] = Answer::kYes;
      s.purpose.commercial_sex = Answer::kYes;
      EXPECT_EQ(Assess(s), sdk::IsMinor(band) ? kPot : kNot)
          << kActionNames[a] << " band " << static_cast<int>(band);
    }
  }
}

TEST(Assess, EveryPairOfColumnsFallsShortForAnAdult) {
  // Columns: 0 Action, 1 Means, 2 Purpose; every element of the two set to
  // yes, the third column all "no" or all "unknown".
  for (int missing = 0; missing < 3; ++missing) {
    for (Answer filler : {Answer::kNo, Answer::kUnknown}) {
      Screening s;
      s.age_band = AgeBand::k25To39;
      for (auto f : kActions) s.action.*f = missing == 0 ? filler : Answer::kYes;
      for (auto f : kMeans) s.means.*f = missing == 1 ? filler : Answer::kYes;
      s.purpose.commercial_sex = missing == 2 ? filler : Answer::kYes;
      EXPECT_EQ(Assess(s), kNot) << "missing column " << missing;
      s.age_band = AgeBand::kUnder13;  // a minor needs no Means, but the others still
      EXPECT_EQ(Assess(s), missing == 1 ? kPot : kNot) << "missing column " << missing;
    }
  }
}

// Every one of the 3^12 answer combinations in every age band, against an
// oracle that counts yeses per column.
TEST(Assess, AgreesWithTheRuleOnEveryCombination) {
  constexpr std::array<Answer, 3> kValues = {Answer::kUnknown, Answer::kNo, Answer::kYes};
  std::uint32_t combos = 1;
  for (int i = 0; i < 12; ++i) combos *= 3;
  std::uint64_t checked = 0;
  std::uint64_t potential = 0;
  for (std::uint32_t code = 0; code < combos; ++code) {
    Screening s;
    int yes[3] = {0, 0, 0};
    std::uint32_t rest = code;
    for (std::size_t i = 0; i < 12; ++i) {
      const Answer a = kValues[rest % 3];
      rest /= 3;
      At(s, i) = a;
      if (a == Answer::kYes) ++yes[i < 8 ? 0 : i < 11 ? 1 : 2];
    }
    for (AgeBand band : kBands) {
      s.age_band = band;
      const bool minor = band == AgeBand::kUnder13 || band == AgeBand::k13To17;
      const bool expected = yes[0] > 0 && yes[2] > 0 && (yes[1] > 0 || minor);
      const ScreeningOutcome got = Assess(s);
      if (got != (expected ? kPot : kNot)) {
        FAIL() << "combination " << code << " band " << static_cast<int>(band);
      }
      ++checked;
      if (expected) ++potential;
    }
  }
  EXPECT_EQ(checked, std::uint64_t{combos} * kBands.size());
  EXPECT_GT(potential, 0u);
}

TEST(Assess, ValuesOutsideTheEnumerationNeverCount) {
  Screening s = Parse("y....... y.. y", AgeBand::k25To39);
  s.purpose.commercial_sex = static_cast<Answer>(3);
  EXPECT_EQ(Assess(s), kNot);
  s = Parse("y....... ... y", static_cast<AgeBand>(6));
  EXPECT_EQ(Assess(s), kNot);
  s.age_band = static_cast<AgeBand>(-1);
  EXPECT_EQ(Assess(s), kNot);
}

TEST(Screening, StartsAllUnknown) {
  const Screening s;
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(At(const_cast<Screening&>(s), i), Answer::kUnknown);
  EXPECT_EQ(s.age_band, AgeBand::kUnknown);
  EXPECT_EQ(Assess(s), kNot);
}

TEST(IsMinor, UnderEighteenOnly) {
  const std::pair<AgeBand, bool> table[] = {
      {AgeBand::kUnknown, false}, {AgeBand::kUnder13, true},  {AgeBand::k13To17, true},
      {AgeBand::k18To24, false},  {AgeBand::k25To39, false},  {AgeBand::k40Plus, false},
      {static_cast<AgeBand>(6), false}, {static_cast<AgeBand>(-1), false},
  };
  for (const auto& [band, minor] : table) {
    EXPECT_EQ(sdk::IsMinor(band), minor) << static_cast<int>(band);
  }
}

TEST(ScreeningOutcomeNames, AreStable) {
  EXPECT_STREQ(sdk::ToString(kNot), "not indicated");
  EXPECT_STREQ(sdk::ToString(kPot), "potential trafficking");
  EXPECT_NE(sdk::ToString(static_cast<ScreeningOutcome>(7)), nullptr);
}

// ---- Records ------------------------------------------------------------

std::string Text(ByteView b) { return std::string(b.begin(), b.end()); }

bool Contains(ByteView haystack, std::string_view text) {
  const ByteView needle = AsBytes(text);
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

sdk::WrapUp FullWrapUp() {
  sdk::WrapUp w;
  w.category_id = "cat-labour-and-sex";
  w.case_note = "Contact unsure about the job offer abroad; talked through red flags. Été, ночь.";
  w.screening = Parse("y.n..... .yn y", AgeBand::k13To17);
  w.referrals_given = {"ref-shelter-north", "ref-legal-aid-1", ""};
  w.consent.follow_up = true;
  w.consent.follow_up_scope = "follow up by chat only";
  w.consent.sharing = true;
  w.consent.sharing_scope = "shelter referral only";
  return w;
}

v1::WrapUpRecord ParseRecord(ByteView b) {
  v1::WrapUpRecord r;
  EXPECT_TRUE(r.ParseFromArray(b.data(), static_cast<int>(b.size())));
  return r;
}

Bytes Serialize(const google::protobuf::MessageLite& m) {
  const std::string s = m.SerializeAsString();
  return Bytes(s.begin(), s.end());
}

TEST(WrapUpRecord, RoundTrips) {
  const sdk::WrapUp w = FullWrapUp();
  const Bytes encoded = client::EncodeWrapUp(w);
  ASSERT_FALSE(encoded.empty());
  const auto decoded = client::DecodeWrapUp(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, w);

  const sdk::WrapUp empty;
  const Bytes encoded_empty = client::EncodeWrapUp(empty);
  ASSERT_FALSE(encoded_empty.empty());
  const auto decoded_empty = client::DecodeWrapUp(encoded_empty);
  ASSERT_TRUE(decoded_empty.has_value());
  EXPECT_EQ(*decoded_empty, empty);
}

TEST(WrapUpRecord, EveryAnswerInEveryPlaceAndEveryAgeBandRoundTrips) {
  for (std::size_t i = 0; i < 12; ++i) {
    for (Answer a : {Answer::kUnknown, Answer::kNo, Answer::kYes}) {
      for (AgeBand band : kBands) {
        sdk::WrapUp w;
        w.screening = Parse("yyyyyyyy yyy y", band);
        At(w.screening, i) = a;
        const auto decoded = client::DecodeWrapUp(client::EncodeWrapUp(w));
        ASSERT_TRUE(decoded.has_value()) << i;
        EXPECT_EQ(decoded->screening, w.screening) << i;
      }
    }
  }
}

TEST(WrapUpRecord, StoresTheOutcomeAssessGives) {
  for (const Row& row : kRows) {
    sdk::WrapUp w = FullWrapUp();
    w.screening = Parse(row.answers, row.band);
    const Bytes encoded = client::EncodeWrapUp(w);
    const v1::WrapUpRecord record = ParseRecord(encoded);
    EXPECT_EQ(static_cast<int>(record.outcome()), static_cast<int>(Assess(w.screening)))
        << row.name;
    EXPECT_EQ(static_cast<int>(record.outcome()), static_cast<int>(row.expected)) << row.name;
    EXPECT_EQ(record.format_version(), 1u);
    EXPECT_TRUE(record.complete());
    EXPECT_EQ(static_cast<int>(record.screening().age_band()), static_cast<int>(row.band));
  }
}

TEST(WrapUpRecord, AnOutcomeThatContradictsTheAnswersIsRejected) {
  sdk::WrapUp w = FullWrapUp();
  for (AgeBand band : {AgeBand::k13To17, AgeBand::k40Plus}) {
    w.screening = Parse("y....... ... y", band);  // potential for the minor only
    v1::WrapUpRecord record = ParseRecord(client::EncodeWrapUp(w));
    record.set_outcome(record.outcome() == v1::WrapUpRecord::OUTCOME_NOT_INDICATED
                           ? v1::WrapUpRecord::OUTCOME_POTENTIAL_TRAFFICKING
                           : v1::WrapUpRecord::OUTCOME_NOT_INDICATED);
    EXPECT_FALSE(client::DecodeWrapUp(Serialize(record)).has_value());
    record.set_outcome(static_cast<v1::WrapUpRecord::Outcome>(2));
    EXPECT_FALSE(client::DecodeWrapUp(Serialize(record)).has_value());
  }
}

TEST(WrapUpRecord, BoundsOnEncode) {
  sdk::WrapUp w = FullWrapUp();
  w.case_note.assign(sdk::kMaxWorkflowFieldBytes, 'a');
  w.category_id.assign(sdk::kMaxWorkflowFieldBytes, 'b');
  w.consent.follow_up_scope.assign(sdk::kMaxWorkflowFieldBytes, 'c');
  w.consent.sharing_scope.assign(sdk::kMaxWorkflowFieldBytes, 'd');
  w.referrals_given.assign(sdk::kMaxReferralsGiven, std::string(sdk::kMaxWorkflowFieldBytes, 'e'));
  ASSERT_TRUE(client::WithinBounds(w));
  const Bytes at_limit = client::EncodeWrapUp(w);
  ASSERT_FALSE(at_limit.empty());
  EXPECT_LE(at_limit.size(), client::kMaxWrapUpRecordBytes);
  const auto decoded = client::DecodeWrapUp(at_limit);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, w);

  auto rejected = [](const sdk::WrapUp& bad, const char* what) {
    EXPECT_FALSE(client::WithinBounds(bad)) << what;
    EXPECT_TRUE(client::EncodeWrapUp(bad).empty()) << what;
  };
  const std::string too_long(sdk::kMaxWorkflowFieldBytes + 1, 'x');
  sdk::WrapUp bad = FullWrapUp();
  bad.case_note = too_long;
  rejected(bad, "case note");
  bad = FullWrapUp();
  bad.category_id = too_long;
  rejected(bad, "category");
  bad = FullWrapUp();
  bad.consent.follow_up_scope = too_long;
  rejected(bad, "follow-up scope");
  bad = FullWrapUp();
  bad.consent.sharing_scope = too_long;
  rejected(bad, "sharing scope");
  bad = FullWrapUp();
  bad.referrals_given.push_back(too_long);
  rejected(bad, "referral id");
  bad = FullWrapUp();
  bad.referrals_given.assign(sdk::kMaxReferralsGiven + 1, "ref");
  rejected(bad, "referral count");
  bad = FullWrapUp();
  bad.case_note = "caf\xC3";  // cut inside a UTF-8 sequence
  rejected(bad, "truncated UTF-8");
  for (const char* invalid : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\x80"}) {
    bad = FullWrapUp();
    bad.category_id = invalid;
    rejected(bad, "invalid UTF-8");
  }
  bad = FullWrapUp();
  bad.screening.means.fraud = static_cast<Answer>(3);
  rejected(bad, "answer outside the enumeration");
  bad = FullWrapUp();
  bad.screening.age_band = static_cast<AgeBand>(6);
  rejected(bad, "age band outside the enumeration");
}

TEST(WrapUpRecord, HostileRecordsAreRejected) {
  const v1::WrapUpRecord good = ParseRecord(client::EncodeWrapUp(FullWrapUp()));
  ASSERT_TRUE(client::DecodeWrapUp(Serialize(good)).has_value());

  auto rejected = [&](auto mutate, const char* what) {
    v1::WrapUpRecord r = good;
    mutate(r);
    EXPECT_FALSE(client::DecodeWrapUp(Serialize(r)).has_value()) << what;
  };
  rejected([](v1::WrapUpRecord& r) { r.set_format_version(0); }, "version 0");
  rejected([](v1::WrapUpRecord& r) { r.set_format_version(2); }, "version 2");
  rejected([](v1::WrapUpRecord& r) { r.set_complete(false); }, "not complete");
  rejected([](v1::WrapUpRecord& r) { r.set_case_note(std::string(2001, 'n')); }, "long note");
  rejected([](v1::WrapUpRecord& r) { r.set_category_id(std::string(2001, 'c')); }, "long category");
  rejected([](v1::WrapUpRecord& r) { r.add_referrals_given(std::string(2001, 'r')); },
           "long referral");
  rejected(
      [](v1::WrapUpRecord& r) {
        for (int i = 0; i < 40; ++i) r.add_referrals_given("ref");
      },
      "too many referrals");
  rejected([](v1::WrapUpRecord& r) { r.mutable_consent()->set_sharing_scope(std::string(2001, 's')); },
           "long sharing scope");
  rejected([](v1::WrapUpRecord& r) { r.mutable_consent()->set_follow_up_scope(std::string(2001, 'f')); },
           "long follow-up scope");
  rejected(
      [](v1::WrapUpRecord& r) {
        r.mutable_screening()->set_coercion(static_cast<v1::WrapUpRecord::Answer>(3));
      },
      "answer 3");
  rejected(
      [](v1::WrapUpRecord& r) {
        r.mutable_screening()->set_recruits(static_cast<v1::WrapUpRecord::Answer>(-1));
      },
      "answer -1");
  rejected(
      [](v1::WrapUpRecord& r) {
        r.mutable_screening()->set_age_band(static_cast<v1::WrapUpRecord::AgeBand>(6));
      },
      "age band 6");

  // Invalid UTF-8, written as raw bytes (field 3, case_note: tag 0x1A).
  const Bytes bad_text = {0x1A, 0x02, 0xC0, 0xAF};
  v1::WrapUpRecord no_note = good;
  no_note.clear_case_note();
  Bytes raw_only_bad = Serialize(no_note);
  raw_only_bad.insert(raw_only_bad.begin(), bad_text.begin(), bad_text.end());
  EXPECT_FALSE(client::DecodeWrapUp(raw_only_bad).has_value());

  // A field from a later version is ignored.
  Bytes newer = Serialize(good);
  const Bytes extra = {0xA0, 0x06, 0x07};  // field 100, varint 7
  newer.insert(newer.begin(), extra.begin(), extra.end());
  const auto decoded = client::DecodeWrapUp(newer);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, FullWrapUp());
}

TEST(WrapUpRecord, EveryTruncationIsRejected) {
  const Bytes full = client::EncodeWrapUp(FullWrapUp());
  ASSERT_TRUE(client::DecodeWrapUp(full).has_value());
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(client::DecodeWrapUp(ByteView(full).first(n)).has_value()) << n;
  }
  const Bytes minimal = client::EncodeWrapUp(sdk::WrapUp{});
  for (std::size_t n = 0; n < minimal.size(); ++n) {
    EXPECT_FALSE(client::DecodeWrapUp(ByteView(minimal).first(n)).has_value()) << n;
  }
}

TEST(WrapUpRecord, OversizedInputIsRejectedBeforeParsing) {
  Bytes big = client::EncodeWrapUp(FullWrapUp());
  // Padding as an unknown length-delimited field (field 100) that a parser
  // would accept, so that only the size limit rejects it.
  const std::size_t pad = client::kMaxWrapUpRecordBytes;
  Bytes field = {0xA2, 0x06};  // field 100, wire type 2
  std::size_t len = pad;
  while (len >= 0x80) {
    field.push_back(static_cast<std::uint8_t>((len & 0x7F) | 0x80));
    len >>= 7;
  }
  field.push_back(static_cast<std::uint8_t>(len));
  field.resize(field.size() + pad, 'p');
  big.insert(big.begin(), field.begin(), field.end());
  v1::WrapUpRecord parses;
  ASSERT_TRUE(parses.ParseFromArray(big.data(), static_cast<int>(big.size())));
  EXPECT_FALSE(client::DecodeWrapUp(big).has_value());
}

TEST(WrapUpRecord, GarbageIsRejected) {
  EXPECT_FALSE(client::DecodeWrapUp({}).has_value());
  std::mt19937 rng(20260601);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(1, 300);
  for (int i = 0; i < 20000; ++i) {
    Bytes garbage(length(rng));
    for (auto& b : garbage) b = static_cast<std::uint8_t>(byte(rng));
    EXPECT_FALSE(client::DecodeWrapUp(garbage).has_value()) << i;
    EXPECT_FALSE(client::DecodeResourceCard(garbage).has_value()) << i;
  }
  // Flipping bits of a valid record never crashes (most flips are rejected).
  const Bytes good = client::EncodeWrapUp(FullWrapUp());
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes flipped = good;
      flipped[i] = static_cast<std::uint8_t>(flipped[i] ^ (1u << bit));
      const auto decoded = client::DecodeWrapUp(flipped);
      if (decoded) {
        EXPECT_TRUE(client::WithinBounds(*decoded));
      }
    }
  }
  // Deeply nested or self-referential-looking lengths.
  const Bytes huge_length = {0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 'a'};
  EXPECT_FALSE(client::DecodeWrapUp(huge_length).has_value());
  const Bytes bad_varint = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_FALSE(client::DecodeWrapUp(bad_varint).has_value());
}

sdk::ResourceCard FullCard() {
  return {.service = "shelter",
          .name = "Harbour House",
          .offers = "A safe place to stay for up to 90 days; any gender; no questions asked.",
          .contact = "chat: ask your counsellor; phone +44 20 7946 0000",
          .region = "North — Läänemaa"};
}

TEST(ResourceCard, RoundTrips) {
  const auto decoded = client::DecodeResourceCard(client::EncodeResourceCard(FullCard()));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, FullCard());

  const sdk::ResourceCard empty;
  const Bytes encoded_empty = client::EncodeResourceCard(empty);
  ASSERT_FALSE(encoded_empty.empty());
  const auto decoded_empty = client::DecodeResourceCard(encoded_empty);
  ASSERT_TRUE(decoded_empty.has_value());
  EXPECT_EQ(*decoded_empty, empty);
}

TEST(ResourceCard, Bounds) {
  const std::string max(sdk::kMaxWorkflowFieldBytes, 'm');
  const sdk::ResourceCard at_limit{max, max, max, max, max};
  const Bytes encoded = client::EncodeResourceCard(at_limit);
  ASSERT_FALSE(encoded.empty());
  EXPECT_LE(encoded.size(), client::kMaxResourceCardBytes);
  const auto decoded = client::DecodeResourceCard(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, at_limit);

  const std::string too_long(sdk::kMaxWorkflowFieldBytes + 1, 'x');
  std::string sdk::ResourceCard::*fields[] = {
      &sdk::ResourceCard::service, &sdk::ResourceCard::name, &sdk::ResourceCard::offers,
      &sdk::ResourceCard::contact, &sdk::ResourceCard::region};
  for (auto f : fields) {
    sdk::ResourceCard card = FullCard();
    card.*f = too_long;
    EXPECT_FALSE(client::WithinBounds(card));
    EXPECT_TRUE(client::EncodeResourceCard(card).empty());
    card.*f = "\xE2\x82";  // cut inside a UTF-8 sequence
    EXPECT_TRUE(client::EncodeResourceCard(card).empty());
  }

  v1::ResourceCardBody body;
  ASSERT_TRUE(body.ParseFromString(Text(client::EncodeResourceCard(FullCard()))));
  v1::ResourceCardBody r = body;
  r.set_offers(too_long);
  EXPECT_FALSE(client::DecodeResourceCard(Serialize(r)).has_value());
  r = body;
  r.set_format_version(2);
  EXPECT_FALSE(client::DecodeResourceCard(Serialize(r)).has_value());
  r = body;
  r.clear_complete();
  EXPECT_FALSE(client::DecodeResourceCard(Serialize(r)).has_value());
  EXPECT_FALSE(client::DecodeResourceCard({}).has_value());
  EXPECT_FALSE(client::DecodeResourceCard(Bytes(client::kMaxResourceCardBytes + 1, 0)).has_value());
}

TEST(ResourceCard, EveryTruncationIsRejected) {
  const Bytes full = client::EncodeResourceCard(FullCard());
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(client::DecodeResourceCard(ByteView(full).first(n)).has_value()) << n;
  }
}

// ---- Sealed to the helpline --------------------------------------------

TEST(SealedWrapUp, HoldsNothingInClearAndOpensWithTheHelplineKey) {
  const e2e::DhKeyPair helpline = e2e::DhKeyPair::Generate();
  const sdk::WrapUp w = FullWrapUp();
  const Bytes plaintext = client::EncodeWrapUp(w);
  auto blob = e2e::SealToHelpline(helpline.public_key, plaintext);
  ASSERT_TRUE(blob.ok());

  const std::vector<std::string> in_clear = {
      w.category_id, w.case_note, "talked through red flags", w.referrals_given[0],
      w.referrals_given[1], w.consent.follow_up_scope, w.consent.sharing_scope};
  for (const std::string& s : in_clear) {
    EXPECT_TRUE(Contains(plaintext, s)) << "the search itself works: " << s;
    EXPECT_FALSE(Contains(*blob, s)) << s;
  }
  // Nor the screening: the record's bytes from the screening onward are not there.
  const v1::WrapUpRecord record = ParseRecord(plaintext);
  EXPECT_FALSE(Contains(*blob, record.screening().SerializeAsString()));
  EXPECT_FALSE(Contains(*blob, Text(plaintext)));

  auto opened = e2e::OpenHelplineBlob(helpline, *blob);
  ASSERT_TRUE(opened.ok());
  const auto decoded = client::DecodeWrapUp(opened->view());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, w);
  EXPECT_EQ(Assess(decoded->screening), kPot);  // a minor, with Action and Purpose

  EXPECT_FALSE(e2e::OpenHelplineBlob(e2e::DhKeyPair::Generate(), *blob).ok());
}

}  // namespace
}  // namespace haven
