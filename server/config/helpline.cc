#include "helpline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace haven::server {
namespace {

using L = HelplineLimits;

const char* const kSections =
    "[helpline], [queue], [blocking], [[priorities]], [[categories]], [[canned_responses]], "
    "[[referrals]]";

// Characters (code points) of valid UTF-8; toml++ has already rejected invalid UTF-8.
std::size_t CountChars(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0u) != 0x80u;
  }));
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// C0 controls (except a line break where allowed), DEL and C1 controls
// (U+0080..U+009F, encoded C2 80..C2 9F): they could rewrite a counsellor's terminal.
bool HasControlCharacter(std::string_view s, bool allow_line_break) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n' && allow_line_break) continue;
    if (c < 0x20u || c == 0x7Fu) return true;
    if (c == 0xC2u && i + 1 < s.size()) {
      const auto next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80u && next <= 0x9Fu) return true;
    }
  }
  return false;
}

bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > L::kMaxIdChars) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || IsAsciiDigit(c) || c == '-'; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A value quoted for a message, shortened so that a pasted paragraph stays readable.
std::string Quote(std::string_view s) {
  constexpr std::size_t kShown = 40;
  std::string shown(s.substr(0, kShown));
  for (char& c : shown) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20u || u == 0x7Fu) c = '?';
  }
  return "\"" + shown + (s.size() > kShown ? "...\"" : "\"");
}

std::string Indexed(std::string_view list, std::size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

std::string JoinKeys(const std::vector<std::string_view>& keys) {
  std::string out;
  for (std::string_view k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

// How a text field is checked.
struct TextRule {
  std::size_t max_chars;
  bool multiline;  // line breaks allowed (canned text, what a service offers, how to reach it)
  bool required;
};

constexpr TextRule kLabel{L::kMaxLabelChars, false, true};
constexpr TextRule kCannedText{L::kMaxCannedTextChars, true, true};
constexpr TextRule kReferralLine{L::kMaxReferralFieldChars, false, true};
constexpr TextRule kReferralText{L::kMaxReferralFieldChars, true, true};

class Validator {
 public:
  explicit Validator(std::string_view origin) : origin_(origin) {}

  // "<origin>: <path>: <what> (line N)".
  Status Error(const std::string& path, const std::string& what, const toml::node* at) const {
    std::string msg = std::string(origin_) + ": " + path + ": " + what;
    if (at != nullptr && at->source().begin.line > 0) {
      msg += " (line " + std::to_string(at->source().begin.line) + ")";
    }
    return Status::InvalidArgument(msg);
  }

  Status CheckSections(const toml::table& root) const {
    static const std::set<std::string_view> kTables = {"helpline", "queue", "blocking"};
    static const std::set<std::string_view> kLists = {"priorities", "categories",
                                                      "canned_responses", "referrals"};
    for (const auto& [key, node] : root) {
      const std::string_view name = key.str();
      if (kTables.count(name) != 0) {
        if (!node.is_table()) {
          return Error(std::string(name), "must be a section, written [" + std::string(name) + "]",
                       &node);
        }
      } else if (kLists.count(name) != 0) {
        if (!node.is_array()) {
          return Error(std::string(name),
                       "must be a list of entries, each starting with [[" + std::string(name) +
                           "]] (double brackets)",
                       &node);
        }
      } else {
        return Error(std::string(name),
                     std::string("unknown section (or a setting outside any section); expected ") +
                         kSections,
                     &node);
      }
    }
    return Status::Ok();
  }

  Status CheckKeys(const toml::table& t, const std::string& path,
                   const std::vector<std::string_view>& known) const {
    for (const auto& [key, node] : t) {
      if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
        return Error(path + "." + std::string(key.str()),
                     "unknown setting; expected one of " + JoinKeys(known), &node);
      }
    }
    return Status::Ok();
  }

  Status Text(const toml::table& t, std::string_view key, const std::string& owner, TextRule rule,
              std::string* out) const {
    const std::string path = owner + "." + std::string(key);
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      if (!rule.required) return Status::Ok();
      return Error(path, "is missing; add " + std::string(key) + " = \"...\" to this entry", &t);
    }
    if (!n->is_string()) return Error(path, "must be text in double quotes", n);
    const std::string& v = n->as_string()->get();
    if (IsBlank(v)) return Error(path, "must not be empty", n);
    const std::size_t chars = CountChars(v);
    if (chars > rule.max_chars) {
      return Error(path,
                   "is " + std::to_string(chars) + " characters long; shorten it to at most " +
                       std::to_string(rule.max_chars),
                   n);
    }
    if (HasControlCharacter(v, rule.multiline)) {
      return Error(path,
                   rule.multiline ? "must not contain control characters other than line breaks"
                                  : "must be a single line without control characters",
                   n);
    }
    *out = v;
    return Status::Ok();
  }

  Status Id(const toml::table& t, const std::string& owner, std::string* out) const {
    const std::string path = owner + ".id";
    const toml::node* n = t.get("id");
    if (n == nullptr) {
      return Error(path, "is missing; add id = \"...\" (a short name such as \"legal-aid\")", &t);
    }
    if (!n->is_string()) return Error(path, "must be text in double quotes, such as \"legal-aid\"", n);
    const std::string& v = n->as_string()->get();
    if (!IsValidId(v)) {
      return Error(path,
                   Quote(v) + " is not a valid id; use 1 to " + std::to_string(L::kMaxIdChars) +
                       " characters of a-z, 0-9 and '-', such as \"legal-aid\"",
                   n);
    }
    *out = v;
    return Status::Ok();
  }

  template <typename T>
  Status Integer(const toml::table& t, std::string_view key, const std::string& owner,
                 std::int64_t min, std::int64_t max, bool required, T* out) const {
    const std::string path = owner + "." + std::string(key);
    const std::string range = std::to_string(min) + " and " + std::to_string(max);
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      if (!required) return Status::Ok();
      return Error(path, "is missing; add " + std::string(key) + " = <a number between " + range +
                             ">",
                   &t);
    }
    if (!n->is_integer()) {
      return Error(path, "must be a whole number without quotes, between " + range, n);
    }
    const std::int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      return Error(path, "must be between " + range + ", got " + std::to_string(v), n);
    }
    *out = static_cast<T>(v);
    return Status::Ok();
  }

  // A list of language tags; `required` demands at least one.
  Status Languages(const toml::table& t, const std::string& owner, bool required,
                   std::vector<std::string>* out) const {
    const std::string path = owner + ".languages";
    const toml::node* n = t.get("languages");
    if (n == nullptr) {
      if (!required) return Status::Ok();
      return Error(path, "is missing; list the languages, such as languages = [\"en\", \"es\"]", &t);
    }
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      return Error(path, "must be a list of language tags, such as [\"en\", \"es\"]", n);
    }
    if (a->empty() && required) {
      return Error(path, "must list at least one language, such as [\"en\"]", n);
    }
    if (a->size() > L::kMaxEntriesPerList) {
      return Error(path,
                   "has " + std::to_string(a->size()) + " entries; at most " +
                       std::to_string(L::kMaxEntriesPerList) + " are allowed",
                   n);
    }
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string item = Indexed(path, i);
      if (!e.is_string()) return Error(item, "must be a language tag in quotes, such as \"en\"", &e);
      const std::string& tag = e.as_string()->get();
      if (!IsValidLanguageTag(tag)) {
        return Error(item,
                     Quote(tag) + " is not a BCP 47 language tag; use a tag such as \"en\", \"es\" "
                                  "or \"pt-BR\" (a 2- or 3-letter language code, then optionally "
                                  "'-' and a script or region, at most 35 characters)",
                     &e);
      }
      const auto [it, inserted] = seen.emplace(Lower(tag), i);
      if (!inserted) {
        return Error(item, Quote(tag) + " is already listed at " + Indexed(path, it->second) +
                               "; list each language once",
                     &e);
      }
      out->push_back(tag);
    }
    return Status::Ok();
  }

  // The entries of an array-of-tables section, each checked for unknown keys.
  Status Entries(const toml::table& root, std::string_view list,
                 const std::vector<std::string_view>& known,
                 std::vector<const toml::table*>* out) const {
    const toml::node* n = root.get(list);
    if (n == nullptr) return Status::Ok();
    const toml::array& a = *n->as_array();  // CheckSections made sure
    const std::string name(list);
    if (a.size() > L::kMaxEntriesPerList) {
      return Error(name,
                   "has " + std::to_string(a.size()) + " entries; at most " +
                       std::to_string(L::kMaxEntriesPerList) + " are allowed",
                   n);
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      const toml::node& e = *a.get(i);
      const toml::table* t = e.as_table();
      if (t == nullptr) {
        return Error(Indexed(name, i), "must be an entry written [[" + name + "]] with its settings",
                     &e);
      }
      HAVEN_RETURN_IF_ERROR(CheckKeys(*t, Indexed(name, i), known));
      out->push_back(t);
    }
    return Status::Ok();
  }

  // Ids must be unique within a list; remembers the first use of each.
  Status UniqueId(std::map<std::string, std::string>* seen, const std::string& id,
                  const std::string& owner, std::string_view list, const toml::table& t) const {
    const auto [it, inserted] = seen->emplace(id, owner);
    if (inserted) return Status::Ok();
    return Error(owner + ".id",
                 Quote(id) + " is already used by " + it->second + "; ids must be unique within " +
                     std::string(list),
                 t.get("id"));
  }

 private:
  std::string_view origin_;
};

}  // namespace

bool IsValidLanguageTag(std::string_view tag) {
  if (tag.empty() || tag.size() > L::kMaxLanguageTagChars) return false;
  std::size_t index = 0;
  std::size_t start = 0;
  while (start <= tag.size()) {
    std::size_t end = tag.find('-', start);
    if (end == std::string_view::npos) end = tag.size();
    const std::string_view sub = tag.substr(start, end - start);
    if (sub.empty() || sub.size() > 8) return false;
    if (index == 0) {
      // The primary language subtag: 2 or 3 letters ("en", "ase").
      if (sub.size() < 2 || sub.size() > 3) return false;
      if (!std::all_of(sub.begin(), sub.end(), IsAsciiAlpha)) return false;
    } else if (!std::all_of(sub.begin(), sub.end(),
                            [](char c) { return IsAsciiAlpha(c) || IsAsciiDigit(c); })) {
      return false;
    }
    ++index;
    start = end + 1;
  }
  return true;
}

Result<HelplineConfig> ParseHelplineConfig(std::string_view toml_text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << origin << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return Status::InvalidArgument(msg.str());
  }
  const Validator v(origin);
  HAVEN_RETURN_IF_ERROR(v.CheckSections(root));
  HelplineConfig c;

  if (const toml::table* t = root["helpline"].as_table()) {
    HAVEN_RETURN_IF_ERROR(v.CheckKeys(*t, "helpline", {"name", "languages"}));
    HAVEN_RETURN_IF_ERROR(v.Text(*t, "name", "helpline",
                                 {L::kMaxLabelChars, false, /*required=*/false}, &c.name));
    HAVEN_RETURN_IF_ERROR(v.Languages(*t, "helpline", /*required=*/false, &c.languages));
  }
  if (const toml::table* t = root["queue"].as_table()) {
    HAVEN_RETURN_IF_ERROR(v.CheckKeys(*t, "queue", {"max_active_per_counsellor"}));
    HAVEN_RETURN_IF_ERROR(v.Integer(*t, "max_active_per_counsellor", "queue", 1, 100, false,
                                    &c.max_active_per_counsellor));
  }
  if (const toml::table* t = root["blocking"].as_table()) {
    HAVEN_RETURN_IF_ERROR(v.CheckKeys(*t, "blocking", {"max_hours"}));
    HAVEN_RETURN_IF_ERROR(
        v.Integer(*t, "max_hours", "blocking", 1, 8760, false, &c.max_block_hours));
  }

  std::vector<const toml::table*> entries;
  HAVEN_RETURN_IF_ERROR(v.Entries(root, "priorities", {"level", "label"}, &entries));
  std::map<std::uint32_t, std::string> levels;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const toml::table& t = *entries[i];
    const std::string owner = Indexed("priorities", i);
    HelplineConfig::Priority p;
    HAVEN_RETURN_IF_ERROR(v.Integer(t, "level", owner, 0, 9, true, &p.level));
    const auto [it, inserted] = levels.emplace(p.level, owner);
    if (!inserted) {
      return v.Error(owner + ".level",
                     "level " + std::to_string(p.level) + " is already used by " + it->second +
                         "; give each level one label",
                     t.get("level"));
    }
    HAVEN_RETURN_IF_ERROR(v.Text(t, "label", owner, kLabel, &p.label));
    c.priorities.push_back(std::move(p));
  }

  // The lists keyed by id: each entry's id is checked and unique in its list;
  // `fill` reads the rest of the entry.
  const auto id_list = [&](const char* list, const std::vector<std::string_view>& keys, auto* out,
                           const auto& fill) -> Status {
    std::vector<const toml::table*> items;
    HAVEN_RETURN_IF_ERROR(v.Entries(root, list, keys, &items));
    std::map<std::string, std::string> ids;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const toml::table& t = *items[i];
      const std::string owner = Indexed(list, i);
      typename std::remove_pointer_t<decltype(out)>::value_type e;
      HAVEN_RETURN_IF_ERROR(v.Id(t, owner, &e.id));
      HAVEN_RETURN_IF_ERROR(v.UniqueId(&ids, e.id, owner, list, t));
      HAVEN_RETURN_IF_ERROR(fill(t, owner, e));
      out->push_back(std::move(e));
    }
    return Status::Ok();
  };
  HAVEN_RETURN_IF_ERROR(id_list("categories", {"id", "label"}, &c.categories,
                                [&](const toml::table& t, const std::string& owner,
                                    HelplineConfig::Category& cat) {
                                  return v.Text(t, "label", owner, kLabel, &cat.label);
                                }));
  HAVEN_RETURN_IF_ERROR(id_list("canned_responses", {"id", "text"}, &c.canned_responses,
                                [&](const toml::table& t, const std::string& owner,
                                    HelplineConfig::CannedResponse& r) {
                                  return v.Text(t, "text", owner, kCannedText, &r.text);
                                }));
  const auto referral = [&](const toml::table& t, const std::string& owner,
                            HelplineConfig::Referral& r) -> Status {
    HAVEN_RETURN_IF_ERROR(v.Text(t, "service", owner, kReferralLine, &r.service));
    HAVEN_RETURN_IF_ERROR(v.Text(t, "name", owner, kReferralLine, &r.name));
    HAVEN_RETURN_IF_ERROR(v.Text(t, "offers", owner, kReferralText, &r.offers));
    HAVEN_RETURN_IF_ERROR(v.Text(t, "contact", owner, kReferralText, &r.contact));
    HAVEN_RETURN_IF_ERROR(v.Text(t, "region", owner, kReferralLine, &r.region));
    return v.Languages(t, owner, /*required=*/true, &r.languages);
  };
  HAVEN_RETURN_IF_ERROR(id_list(
      "referrals", {"id", "service", "name", "offers", "contact", "region", "languages"},
      &c.referrals, referral));
  return c;
}

Result<HelplineConfig> LoadHelplineConfigFile(const std::string& path) {
  std::error_code ec;
  std::ifstream in;
  if (std::filesystem::is_regular_file(path, ec)) in.open(path);
  if (!in.is_open()) {
    return Status::NotFound("cannot read the helpline configuration " + path +
                            "; check files.helpline in havend.toml (a relative path is "
                            "relative to the directory of havend.toml)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::Unavailable("cannot read the helpline configuration " + path);
  return ParseHelplineConfig(text.str(), path);
}

}  // namespace haven::server
