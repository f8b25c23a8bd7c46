#include "workflow/records.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "haven/v1/sealed.pb.h"

namespace haven::client {
namespace {

using v1::ResourceCardBody;
using v1::WrapUpRecord;

constexpr std::uint32_t kFormatVersion = 1;

static_assert(kMaxWrapUpRecordBytes <= static_cast<std::size_t>(std::numeric_limits<int>::max()));
static_assert(kMaxResourceCardBytes <= static_cast<std::size_t>(std::numeric_limits<int>::max()));

// The sdk enums and the proto enums carry the same values.
static_assert(static_cast<int>(sdk::Answer::kYes) == WrapUpRecord::ANSWER_YES);
static_assert(static_cast<int>(sdk::Answer::kNo) == WrapUpRecord::ANSWER_NO);
static_assert(static_cast<int>(sdk::Answer::kUnknown) == WrapUpRecord::ANSWER_UNKNOWN);
static_assert(static_cast<int>(sdk::AgeBand::kUnknown) == WrapUpRecord::AGE_BAND_UNKNOWN);
static_assert(static_cast<int>(sdk::AgeBand::kUnder13) == WrapUpRecord::AGE_BAND_UNDER_13);
static_assert(static_cast<int>(sdk::AgeBand::k13To17) == WrapUpRecord::AGE_BAND_13_TO_17);
static_assert(static_cast<int>(sdk::AgeBand::k18To24) == WrapUpRecord::AGE_BAND_18_TO_24);
static_assert(static_cast<int>(sdk::AgeBand::k25To39) == WrapUpRecord::AGE_BAND_25_TO_39);
static_assert(static_cast<int>(sdk::AgeBand::k40Plus) == WrapUpRecord::AGE_BAND_40_PLUS);
static_assert(static_cast<int>(sdk::ScreeningOutcome::kNotIndicated) ==
              WrapUpRecord::OUTCOME_NOT_INDICATED);
static_assert(static_cast<int>(sdk::ScreeningOutcome::kPotentialTrafficking) ==
              WrapUpRecord::OUTCOME_POTENTIAL_TRAFFICKING);

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsUtf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<std::uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint8_t lo = 0x80;
    std::uint8_t hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (n - i < len) return false;
    const auto second = static_cast<std::uint8_t>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      const auto b = static_cast<std::uint8_t>(s[i + k]);
      if (b < 0x80 || b > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

bool FieldOk(std::string_view s) { return s.size() <= sdk::kMaxWorkflowFieldBytes && IsUtf8(s); }

bool AnswerOk(sdk::Answer a) {
  switch (a) {
    case sdk::Answer::kUnknown:
    case sdk::Answer::kNo:
    case sdk::Answer::kYes:
      return true;
  }
  return false;
}

bool AgeBandOk(sdk::AgeBand b) {
  switch (b) {
    case sdk::AgeBand::kUnknown:
    case sdk::AgeBand::kUnder13:
    case sdk::AgeBand::k13To17:
    case sdk::AgeBand::k18To24:
    case sdk::AgeBand::k25To39:
    case sdk::AgeBand::k40Plus:
      return true;
  }
  return false;
}

bool ScreeningOk(const sdk::Screening& s) {
  const auto& a = s.action;
  const auto& m = s.means;
  return AnswerOk(a.recruits) && AnswerOk(a.harbours) && AnswerOk(a.transports) &&
         AnswerOk(a.provides) && AnswerOk(a.obtains) && AnswerOk(a.advertises) &&
         AnswerOk(a.patronises) && AnswerOk(a.solicits) && AnswerOk(m.force) &&
         AnswerOk(m.fraud) && AnswerOk(m.coercion) && AnswerOk(s.purpose.commercial_sex) &&
         AgeBandOk(s.age_band);
}

WrapUpRecord::Answer ToProto(sdk::Answer a) {
  return static_cast<WrapUpRecord::Answer>(static_cast<int>(a));
}

// Proto3 enums are open: a parsed field may hold any int32.
std::optional<sdk::Answer> FromProto(int a) {
  const auto answer = static_cast<sdk::Answer>(a);
  if (!AnswerOk(answer)) return std::nullopt;
  return answer;
}

Bytes Serialize(const google::protobuf::MessageLite& message) {
  Bytes out(message.ByteSizeLong());
  if (out.empty()) return out;
  if (!message.SerializeToArray(out.data(), static_cast<int>(out.size()))) return {};
  return out;
}

bool Parse(ByteView in, std::size_t max_bytes, google::protobuf::MessageLite* message) {
  if (in.empty() || in.size() > max_bytes) return false;
  return message->ParseFromArray(in.data(), static_cast<int>(in.size()));
}

}  // namespace

bool WithinBounds(const sdk::WrapUp& w) {
  if (!FieldOk(w.category_id) || !FieldOk(w.case_note)) return false;
  if (!FieldOk(w.consent.follow_up_scope) || !FieldOk(w.consent.sharing_scope)) return false;
  if (w.referrals_given.size() > sdk::kMaxReferralsGiven) return false;
  for (const std::string& id : w.referrals_given) {
    if (!FieldOk(id)) return false;
  }
  return ScreeningOk(w.screening);
}

bool WithinBounds(const sdk::ResourceCard& card) {
  return FieldOk(card.service) && FieldOk(card.name) && FieldOk(card.offers) &&
         FieldOk(card.contact) && FieldOk(card.region);
}

Bytes EncodeWrapUp(const sdk::WrapUp& w) {
  if (!WithinBounds(w)) return {};
  WrapUpRecord record;
  record.set_format_version(kFormatVersion);
  record.set_category_id(w.category_id);
  record.set_case_note(w.case_note);

  const sdk::Screening& s = w.screening;
  WrapUpRecord::Screening* out = record.mutable_screening();
  out->set_recruits(ToProto(s.action.recruits));
  out->set_harbours(ToProto(s.action.harbours));
  out->set_transports(ToProto(s.action.transports));
  out->set_provides(ToProto(s.action.provides));
  out->set_obtains(ToProto(s.action.obtains));
  out->set_advertises(ToProto(s.action.advertises));
  out->set_patronises(ToProto(s.action.patronises));
  out->set_solicits(ToProto(s.action.solicits));
  out->set_force(ToProto(s.means.force));
  out->set_fraud(ToProto(s.means.fraud));
  out->set_coercion(ToProto(s.means.coercion));
  out->set_commercial_sex(ToProto(s.purpose.commercial_sex));
  out->set_age_band(static_cast<WrapUpRecord::AgeBand>(static_cast<int>(s.age_band)));
  record.set_outcome(static_cast<WrapUpRecord::Outcome>(static_cast<int>(sdk::Assess(s))));

  for (const std::string& id : w.referrals_given) record.add_referrals_given(id);

  WrapUpRecord::Consent* consent = record.mutable_consent();
  consent->set_follow_up(w.consent.follow_up);
  consent->set_follow_up_scope(w.consent.follow_up_scope);
  consent->set_sharing(w.consent.sharing);
  consent->set_sharing_scope(w.consent.sharing_scope);
  record.set_complete(true);

  Bytes encoded = Serialize(record);
  if (encoded.size() > kMaxWrapUpRecordBytes) return {};  // cannot happen within bounds
  return encoded;
}

std::optional<sdk::WrapUp> DecodeWrapUp(ByteView in) {
  WrapUpRecord record;
  if (!Parse(in, kMaxWrapUpRecordBytes, &record)) return std::nullopt;
  if (record.format_version() != kFormatVersion || !record.complete()) return std::nullopt;

  sdk::WrapUp w;
  w.category_id = record.category_id();
  w.case_note = record.case_note();

  const WrapUpRecord::Screening& in_s = record.screening();
  const std::optional<sdk::Answer> answers[] = {
      FromProto(in_s.recruits()),   FromProto(in_s.harbours()),   FromProto(in_s.transports()),
      FromProto(in_s.provides()),   FromProto(in_s.obtains()),    FromProto(in_s.advertises()),
      FromProto(in_s.patronises()), FromProto(in_s.solicits()),   FromProto(in_s.force()),
      FromProto(in_s.fraud()),      FromProto(in_s.coercion()),   FromProto(in_s.commercial_sex()),
  };
  for (const auto& a : answers) {
    if (!a) return std::nullopt;
  }
  sdk::Screening& s = w.screening;
  s.action.recruits = *answers[0];
  s.action.harbours = *answers[1];
  s.action.transports = *answers[2];
  s.action.provides = *answers[3];
  s.action.obtains = *answers[4];
  s.action.advertises = *answers[5];
  s.action.patronises = *answers[6];
  s.action.solicits = *answers[7];
  s.means.force = *answers[8];
  s.means.fraud = *answers[9];
  s.means.coercion = *answers[10];
  s.purpose.commercial_sex = *answers[11];
  s.age_band = static_cast<sdk::AgeBand>(static_cast<int>(in_s.age_band()));

  if (record.referrals_given().size() > static_cast<int>(sdk::kMaxReferralsGiven)) {
    return std::nullopt;
  }
  w.referrals_given.assign(record.referrals_given().begin(), record.referrals_given().end());

  const WrapUpRecord::Consent& consent = record.consent();
  w.consent.follow_up = consent.follow_up();
  w.consent.follow_up_scope = consent.follow_up_scope();
  w.consent.sharing = consent.sharing();
  w.consent.sharing_scope = consent.sharing_scope();

  if (!WithinBounds(w)) return std::nullopt;  // strings, UTF-8, age band
  // The stored outcome must be what the answers give.
  if (static_cast<int>(record.outcome()) != static_cast<int>(sdk::Assess(s))) return std::nullopt;
  return w;
}

Bytes EncodeResourceCard(const sdk::ResourceCard& card) {
  if (!WithinBounds(card)) return {};
  ResourceCardBody body;
  body.set_format_version(kFormatVersion);
  body.set_service(card.service);
  body.set_name(card.name);
  body.set_offers(card.offers);
  body.set_contact(card.contact);
  body.set_region(card.region);
  body.set_complete(true);
  Bytes encoded = Serialize(body);
  if (encoded.size() > kMaxResourceCardBytes) return {};  // cannot happen within bounds
  return encoded;
}

std::optional<sdk::ResourceCard> DecodeResourceCard(ByteView in) {
  ResourceCardBody body;
  if (!Parse(in, kMaxResourceCardBytes, &body)) return std::nullopt;
  if (body.format_version() != kFormatVersion || !body.complete()) return std::nullopt;
  sdk::ResourceCard card;
  card.service = body.service();
  card.name = body.name();
  card.offers = body.offers();
  card.contact = body.contact();
  card.region = body.region();
  if (!WithinBounds(card)) return std::nullopt;
  return card;
}

}  // namespace haven::client
