#include "haven/workflow.h"

namespace haven::sdk {
namespace {

bool Yes(Answer a) { return a == Answer::kYes; }

bool AnyAction(const Screening::Action& a) {
  return Yes(a.recruits) || Yes(a.harbours) || Yes(a.transports) || Yes(a.provides) ||
         Yes(a.obtains) || Yes(a.advertises) || Yes(a.patronises) || Yes(a.solicits);
}

bool AnyMeans(const Screening::Means& m) {
  return Yes(m.force) || Yes(m.fraud) || Yes(m.coercion);
}

bool AnyPurpose(const Screening::Purpose& p) { return Yes(p.commercial_sex); }

}  // namespace

bool IsMinor(AgeBand band) {
  switch (band) {
    case AgeBand::kUnder13:
    case AgeBand::k13To17:
      return true;
    case AgeBand::kUnknown:
    case AgeBand::k18To24:
    case AgeBand::k25To39:
    case AgeBand::k40Plus:
      return false;
  }
  return false;  // outside the enumeration
}

ScreeningOutcome Assess(const Screening& s) {
  const bool action = AnyAction(s.action);
  const bool purpose = AnyPurpose(s.purpose);
  // For a minor, Means is not required.
  const bool means = AnyMeans(s.means) || IsMinor(s.age_band);
  return action && means && purpose ? ScreeningOutcome::kPotentialTrafficking
                                    : ScreeningOutcome::kNotIndicated;
}

const char* ToString(ScreeningOutcome o) {
  switch (o) {
    case ScreeningOutcome::kNotIndicated: return "not indicated";
    case ScreeningOutcome::kPotentialTrafficking: return "potential trafficking";
  }
  return "unknown outcome";
}

}  // namespace haven::sdk
