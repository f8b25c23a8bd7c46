#include "haven/noise/handshake_pattern.h"

#include <array>
#include <charconv>

namespace haven::noise {
namespace {

// Written as in the specification; "" means no pre-message.
struct PatternText {
  std::string_view name;
  std::string_view initiator_pre;
  std::string_view responder_pre;
  std::vector<std::string_view> messages;
};

const std::vector<PatternText>& PatternTable() {
  static const std::vector<PatternText> table = {
      // One-way (7.4).
      {"N", "", "s", {"e, es"}},
      {"K", "s", "s", {"e, es, ss"}},
      {"X", "", "s", {"e, es, s, ss"}},
      // Fundamental interactive (7.5).
      {"NN", "", "", {"e", "e, ee"}},
      {"NK", "", "s", {"e, es", "e, ee"}},
      {"NX", "", "", {"e", "e, ee, s, es"}},
      {"KN", "s", "", {"e", "e, ee, se"}},
      {"KK", "s", "s", {"e, es, ss", "e, ee, se"}},
      {"KX", "s", "", {"e", "e, ee, se, s, es"}},
      {"XN", "", "", {"e", "e, ee", "s, se"}},
      {"XK", "", "s", {"e, es", "e, ee", "s, se"}},
      {"XX", "", "", {"e", "e, ee, s, es", "s, se"}},
      {"IN", "", "", {"e, s", "e, ee, se"}},
      {"IK", "", "s", {"e, es, s, ss", "e, ee, se"}},
      {"IX", "", "", {"e, s", "e, ee, se, s, es"}},
      // Deferred (7.6).
      {"NK1", "", "s", {"e", "e, ee, es"}},
      {"NX1", "", "", {"e", "e, ee, s", "es"}},
      {"X1N", "", "", {"e", "e, ee", "s", "se"}},
      {"X1K", "", "s", {"e, es", "e, ee", "s", "se"}},
      {"XK1", "", "s", {"e", "e, ee, es", "s, se"}},
      {"X1K1", "", "s", {"e", "e, ee, es", "s", "se"}},
      {"X1X", "", "", {"e", "e, ee, s, es", "s", "se"}},
      {"XX1", "", "", {"e", "e, ee, s", "es, s, se"}},
      {"X1X1", "", "", {"e", "e, ee, s", "es, s", "se"}},
      {"K1N", "s", "", {"e", "e, ee", "se"}},
      {"K1K", "s", "s", {"e, es", "e, ee", "se"}},
      {"KK1", "s", "s", {"e", "e, ee, se, es"}},
      {"K1K1", "s", "s", {"e", "e, ee, es", "se"}},
      {"K1X", "s", "", {"e", "e, ee, s, es", "se"}},
      {"KX1", "s", "", {"e", "e, ee, se, s", "es"}},
      {"K1X1", "s", "", {"e", "e, ee, s", "se, es"}},
      {"I1N", "", "", {"e, s", "e, ee", "se"}},
      {"I1K", "", "s", {"e, es, s", "e, ee", "se"}},
      {"IK1", "", "s", {"e, s", "e, ee, se, es"}},
      {"I1K1", "", "s", {"e, s", "e, ee, es", "se"}},
      {"I1X", "", "", {"e, s", "e, ee, s, es", "se"}},
      {"IX1", "", "", {"e, s", "e, ee, se, s", "es"}},
      {"I1X1", "", "", {"e, s", "e, ee, s", "se, es"}},
  };
  return table;
}

Result<Token> ParseToken(std::string_view t) {
  if (t == "e") return Token::kE;
  if (t == "s") return Token::kS;
  if (t == "ee") return Token::kEE;
  if (t == "es") return Token::kES;
  if (t == "se") return Token::kSE;
  if (t == "ss") return Token::kSS;
  if (t == "psk") return Token::kPsk;
  return Status::Internal("bad token in the pattern table");
}

Result<std::vector<Token>> ParseTokens(std::string_view text) {
  std::vector<Token> tokens;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view t = text.substr(0, comma);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    HAVEN_ASSIGN_OR_RETURN(Token token, ParseToken(t));
    tokens.push_back(token);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return tokens;
}

Status ApplyPskModifier(std::string_view modifier, HandshakePattern* p) {
  if (modifier.substr(0, 3) != "psk" || modifier.size() < 4) {
    return Status::InvalidArgument("unknown pattern modifier");
  }
  unsigned index = 0;
  const char* first = modifier.data() + 3;
  const char* last = modifier.data() + modifier.size();
  auto [ptr, ec] = std::from_chars(first, last, index);
  if (ec != std::errc() || ptr != last || index > p->messages.size()) {
    return Status::InvalidArgument("psk modifier names no message of the pattern");
  }
  if (index == 0) {
    p->messages[0].insert(p->messages[0].begin(), Token::kPsk);
  } else {
    p->messages[index - 1].push_back(Token::kPsk);
  }
  p->has_psk = true;
  return Status::Ok();
}

}  // namespace

Result<HandshakePattern> LookupPattern(std::string_view name) {
  const std::size_t psk_at = name.find("psk");
  const std::string_view base = name.substr(0, psk_at);
  for (const PatternText& text : PatternTable()) {
    if (text.name != base) continue;
    HandshakePattern p;
    p.name = std::string(name);
    p.one_way = base.size() == 1;
    HAVEN_ASSIGN_OR_RETURN(p.initiator_premessage, ParseTokens(text.initiator_pre));
    HAVEN_ASSIGN_OR_RETURN(p.responder_premessage, ParseTokens(text.responder_pre));
    for (std::string_view m : text.messages) {
      HAVEN_ASSIGN_OR_RETURN(std::vector<Token> tokens, ParseTokens(m));
      p.messages.push_back(std::move(tokens));
    }
    if (psk_at != std::string_view::npos) {
      std::string_view modifiers = name.substr(psk_at);
      while (!modifiers.empty()) {
        const std::size_t plus = modifiers.find('+');
        HAVEN_RETURN_IF_ERROR(ApplyPskModifier(modifiers.substr(0, plus), &p));
        if (plus == std::string_view::npos) break;
        modifiers.remove_prefix(plus + 1);
      }
    }
    return p;
  }
  return Status::InvalidArgument("unknown Noise handshake pattern");
}

Result<ProtocolName> ParseProtocolName(std::string_view name) {
  // Noise_<pattern>_<dh>_<cipher>_<hash>
  std::array<std::string_view, 5> parts{};
  std::string_view rest = name;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::size_t underscore = rest.find('_');
    if ((underscore == std::string_view::npos) != (i + 1 == parts.size())) {
      return Status::InvalidArgument("a Noise protocol name has five '_'-separated parts");
    }
    parts[i] = rest.substr(0, underscore);
    rest.remove_prefix(underscore == std::string_view::npos ? rest.size() : underscore + 1);
  }
  if (parts[0] != "Noise") return Status::InvalidArgument("protocol name must start with Noise_");
  if (parts[2] != "25519") return Status::InvalidArgument("only DH 25519 is implemented");
  if (parts[3] != "ChaChaPoly") return Status::InvalidArgument("only ChaChaPoly is implemented");
  ProtocolName out;
  if (parts[4] == "SHA256") {
    out.hash = HashAlgorithm::kSha256;
  } else if (parts[4] == "SHA512") {
    out.hash = HashAlgorithm::kSha512;
  } else if (parts[4] == "BLAKE2b") {
    out.hash = HashAlgorithm::kBlake2b;
  } else {
    return Status::InvalidArgument("hash must be SHA256, SHA512 or BLAKE2b");
  }
  HAVEN_ASSIGN_OR_RETURN(out.pattern, LookupPattern(parts[1]));
  out.full = std::string(name);
  return out;
}

}  // namespace haven::noise
