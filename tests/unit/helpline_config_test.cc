#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "config/helpline.h"

namespace haven::server {
namespace {

namespace fs = std::filesystem;

const HelplineConfig::Referral* FindReferral(const HelplineConfig& c, const std::string& id) {
  for (const auto& r : c.referrals) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

TEST(HelplineConfig, ShippedExampleParsesAndHasWhatAHelplineNeeds) {
  auto c = LoadHelplineConfigFile(HAVEN_SOURCE_DIR "/config/helpline.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->name.empty());
  EXPECT_EQ(c->languages, (std::vector<std::string>{"en", "es"}));
  EXPECT_EQ(c->max_active_per_counsellor, 4u);
  EXPECT_EQ(c->max_block_hours, 72u);

  ASSERT_EQ(c->priorities.size(), 3u);
  EXPECT_EQ(c->priorities[0].level, 0u);
  EXPECT_EQ(c->priorities[0].label, "normal");
  EXPECT_EQ(c->priorities[1].level, 5u);
  EXPECT_EQ(c->priorities[1].label, "urgent");
  EXPECT_EQ(c->priorities[2].level, 9u);
  EXPECT_EQ(c->priorities[2].label, "immediate danger");

  std::vector<std::string> categories;
  for (const auto& cat : c->categories) categories.push_back(cat.id);
  for (const char* id : {"sex-trafficking", "labour-trafficking", "at-risk-not-sure",
                         "someone-else-concerned", "information-request", "other"}) {
    EXPECT_NE(std::find(categories.begin(), categories.end(), id), categories.end()) << id;
  }

  bool safety_check = false;
  bool quick_exit = false;
  for (const auto& r : c->canned_responses) {
    if (r.text == "Are you somewhere you can talk safely right now?") safety_check = true;
    if (r.text.find("You can leave at any time with the quick-exit button.") == 0) {
      quick_exit = true;
    }
    // Plain words for someone under stress: no blame, no labels put on them.
    EXPECT_EQ(r.text.find("victim"), std::string::npos) << r.id;
  }
  EXPECT_TRUE(safety_check);
  EXPECT_TRUE(quick_exit);
  EXPECT_GE(c->canned_responses.size(), 5u);

  // One referral of each kind a trafficking helpline needs, every field filled.
  for (const char* service : {"shelter", "legal aid", "medical", "immigration", "crisis line"}) {
    const bool found = std::any_of(c->referrals.begin(), c->referrals.end(),
                                   [&](const auto& r) { return r.service == service; });
    EXPECT_TRUE(found) << service;
  }
  for (const auto& r : c->referrals) {
    EXPECT_FALSE(r.name.empty() || r.offers.empty() || r.contact.empty() || r.region.empty() ||
                 r.languages.empty())
        << r.id;
  }
  const auto* legal = FindReferral(*c, "example-legal-aid");
  ASSERT_NE(legal, nullptr);
  EXPECT_NE(legal->contact.find('\n'), std::string::npos);  // line breaks are kept
}

TEST(HelplineConfig, ShippedHavendTomlPointsAtTheShippedHelplineFile) {
  const std::string config_path = HAVEN_SOURCE_DIR "/config/havend.toml";
  auto c = LoadConfigFile(config_path);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->helpline_file, "helpline.toml");
  const std::string resolved = ResolveHelplinePath(*c, config_path);
  EXPECT_EQ(fs::path(resolved), fs::path(HAVEN_SOURCE_DIR "/config/helpline.toml"));
  EXPECT_TRUE(LoadHelplineConfigFile(resolved).ok());
}

TEST(HelplineConfig, EmptyFileIsNeutral) {
  for (const char* text : {"", "# only a comment\n", "[helpline]\n[queue]\n[blocking]\n"}) {
    auto c = ParseHelplineConfig(text, "helpline.toml");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    const HelplineConfig d;
    EXPECT_TRUE(c->name.empty());
    EXPECT_TRUE(c->languages.empty());
    EXPECT_TRUE(c->priorities.empty());
    EXPECT_TRUE(c->categories.empty());
    EXPECT_TRUE(c->canned_responses.empty());
    EXPECT_TRUE(c->referrals.empty());
    EXPECT_EQ(c->max_active_per_counsellor, d.max_active_per_counsellor);
    EXPECT_EQ(c->max_block_hours, d.max_block_hours);
  }
  EXPECT_EQ(HelplineConfig{}.max_active_per_counsellor, 5u);
  EXPECT_EQ(HelplineConfig{}.max_block_hours, 72u);
}

TEST(HelplineConfig, BoundaryValuesAreAccepted) {
  const std::string text = "[queue]\nmax_active_per_counsellor = 100\n"
                           "[blocking]\nmax_hours = 8760\n"
                           "[[priorities]]\nlevel = 9\nlabel = \"" + std::string(120, 'x') + "\"\n"
                           "[[categories]]\nid = \"" + std::string(64, 'a') + "\"\nlabel = \"é\"\n"
                           "[[canned_responses]]\nid = \"a-1\"\ntext = \"" +
                           std::string(2000, 'y') + "\"\n";
  auto c = ParseHelplineConfig(text, "helpline.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_active_per_counsellor, 100u);
  EXPECT_EQ(c->max_block_hours, 8760u);
  // Lengths count characters, not bytes: 120 two-byte characters are a valid label.
  std::string accents;
  for (int i = 0; i < 120; ++i) accents += "é";
  EXPECT_TRUE(ParseHelplineConfig("[[categories]]\nid = \"a\"\nlabel = \"" + accents + "\"\n", "t")
                  .ok());
}

TEST(HelplineConfig, LanguageTags) {
  for (const char* good : {"en", "es", "ase", "pt-BR", "es-419", "zh-Hant-TW", "sr-Latn-RS"}) {
    EXPECT_TRUE(IsValidLanguageTag(good)) << good;
  }
  for (const char* bad : {"", "e", "english", "en_US", "en-", "-en", "en--US", "en US", "12",
                          "en-abcdefghi", "français"}) {
    EXPECT_FALSE(IsValidLanguageTag(bad)) << bad;
  }
  EXPECT_FALSE(IsValidLanguageTag("en-" + std::string(8, 'a') + "-" + std::string(8, 'b') + "-" +
                                  std::string(8, 'c') + "-" + std::string(8, 'd')));  // 38 chars
}

struct BadCase {
  std::string toml;
  std::string expected_in_message;
};

// A valid referral, with one line replaced or added by each case.
std::string Referral(const std::string& extra = "", const std::string& drop = "") {
  std::string out = "[[referrals]]\n";
  const std::pair<const char*, const char*> fields[] = {
      {"id", "id = \"shelter-1\"\n"},
      {"service", "service = \"shelter\"\n"},
      {"name", "name = \"Example House\"\n"},
      {"offers", "offers = \"A bed tonight\"\n"},
      {"contact", "contact = \"+1 555 0100\"\n"},
      {"region", "region = \"Example City\"\n"},
      {"languages", "languages = [\"en\"]\n"},
  };
  for (const auto& [key, line] : fields) {
    if (drop != key) out += line;
  }
  return out + extra;
}

TEST(HelplineConfig, ValidReferralTemplateParses) {
  auto c = ParseHelplineConfig(Referral(), "helpline.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->referrals.size(), 1u);
  EXPECT_EQ(c->referrals[0].languages, std::vector<std::string>{"en"});
}

TEST(HelplineConfig, BadInputNamesTheFileTheKeyAndTheFix) {
  const std::string long_text(2001, 'x');
  const BadCase cases[] = {
      // Unknown sections and keys.
      {"[helplines]\nname = \"x\"\n", "helpline.toml: helplines: unknown section"},
      {"name = \"x\"\n", "name: unknown section (or a setting outside any section)"},
      {"[helpline]\nnmae = \"x\"\n", "helpline.nmae: unknown setting; expected one of name, languages"},
      {"[queue]\nmax_active = 3\n", "queue.max_active: unknown setting"},
      {Referral("phone = \"1\"\n"), "referrals[0].phone: unknown setting; expected one of id, service"},
      {"[priorities]\nlevel = 1\n", "priorities: must be a list of entries, each starting with [[priorities]]"},
      {"helpline = 1\n", "helpline: must be a section, written [helpline]"},
      {"categories = [1]\n", "categories[0]: must be an entry written [[categories]]"},
      // Ids.
      {"[[categories]]\nid = \"a\"\nlabel = \"A\"\n[[categories]]\nid = \"a\"\nlabel = \"B\"\n",
       "categories[1].id: \"a\" is already used by categories[0]; ids must be unique within categories"},
      {"[[canned_responses]]\nid = \"Hello There\"\ntext = \"hi\"\n",
       "canned_responses[0].id: \"Hello There\" is not a valid id; use 1 to 64 characters of a-z, 0-9 and '-'"},
      {"[[categories]]\nid = \"" + std::string(65, 'a') + "\"\nlabel = \"A\"\n", "categories[0].id"},
      {"[[categories]]\nid = \"\"\nlabel = \"A\"\n", "categories[0].id: \"\" is not a valid id"},
      {"[[categories]]\nlabel = \"A\"\n", "categories[0].id: is missing; add id = "},
      {Referral() + Referral(), "referrals[1].id: \"shelter-1\" is already used by referrals[0]"},
      // Same id in different lists is fine, so this one fails for another reason.
      {"[[categories]]\nid = \"x\"\nlabel = \"X\"\n[[canned_responses]]\nid = \"x\"\ntext = \"\"\n",
       "canned_responses[0].text: must not be empty"},
      // Labels and texts.
      {"[[categories]]\nid = \"a\"\nlabel = \"\"\n", "categories[0].label: must not be empty"},
      {"[[categories]]\nid = \"a\"\nlabel = \"   \"\n", "categories[0].label: must not be empty"},
      {"[[categories]]\nid = \"a\"\n", "categories[0].label: is missing; add label = \"...\""},
      {"[[categories]]\nid = \"a\"\nlabel = \"" + std::string(121, 'x') + "\"\n",
       "categories[0].label: is 121 characters long; shorten it to at most 120"},
      {"[[categories]]\nid = \"a\"\nlabel = \"\"\"one\ntwo\"\"\"\n",
       "categories[0].label: must be a single line"},
      {"[[categories]]\nid = \"a\"\nlabel = \"bell\\u0007\"\n", "categories[0].label: must be a single line"},
      {"[[canned_responses]]\nid = \"a\"\ntext = \"" + long_text + "\"\n",
       "canned_responses[0].text: is 2001 characters long; shorten it to at most 2000"},
      {"[[canned_responses]]\nid = \"a\"\ntext = \"esc \\u001b[2J\"\n",
       "canned_responses[0].text: must not contain control characters other than line breaks"},
      {"[[canned_responses]]\nid = \"a\"\ntext = \"c1 \\u009b\"\n",
       "canned_responses[0].text: must not contain control characters"},
      {"[helpline]\nname = \"" + std::string(121, 'n') + "\"\n", "helpline.name: is 121 characters long"},
      {"[helpline]\nname = \"\"\n", "helpline.name: must not be empty"},
      {Referral("", "contact"), "referrals[0].contact: is missing"},
      {Referral("", "region"), "referrals[0].region: is missing"},
      {Referral("", "languages"), "referrals[0].languages: is missing; list the languages"},
      {"[[referrals]]\nid = \"r\"\nservice = \"s\"\nname = \"n\"\noffers = \"o\"\ncontact = \" \"\n",
       "referrals[0].contact: must not be empty"},
      {"[[referrals]]\nid = \"r\"\nservice = \"s\"\nname = \"n\"\noffers = \"" +
           std::string(501, 'o') + "\"\n",
       "referrals[0].offers: is 501 characters long; shorten it to at most 500"},
      // Language tags.
      {"[helpline]\nlanguages = [\"en\", \"english\"]\n",
       "helpline.languages[1]: \"english\" is not a BCP 47 language tag; use a tag such as \"en\""},
      {"[helpline]\nlanguages = [\"en_US\"]\n", "helpline.languages[0]: \"en_US\" is not a BCP 47"},
      {"[helpline]\nlanguages = [\"en\", \"EN\"]\n", "helpline.languages[1]: \"EN\" is already listed at helpline.languages[0]"},
      {"[helpline]\nlanguages = \"en\"\n", "helpline.languages: must be a list of language tags, such as [\"en\", \"es\"]"},
      {"[helpline]\nlanguages = [1]\n", "helpline.languages[0]: must be a language tag in quotes"},
      {Referral().substr(0, Referral().find("languages")) + "languages = [\"en\", \"x y\"]\n",
       "referrals[0].languages[1]: \"x y\" is not a BCP 47 language tag"},
      {Referral().substr(0, Referral().find("languages")) + "languages = []\n",
       "referrals[0].languages: must list at least one language"},
      // Numbers.
      {"[queue]\nmax_active_per_counsellor = 0\n",
       "queue.max_active_per_counsellor: must be between 1 and 100, got 0"},
      {"[queue]\nmax_active_per_counsellor = 101\n", "queue.max_active_per_counsellor: must be between 1 and 100"},
      {"[blocking]\nmax_hours = 0\n", "blocking.max_hours: must be between 1 and 8760, got 0"},
      {"[blocking]\nmax_hours = 8761\n", "blocking.max_hours: must be between 1 and 8760, got 8761"},
      {"[[priorities]]\nlevel = 10\nlabel = \"x\"\n", "priorities[0].level: must be between 0 and 9, got 10"},
      {"[[priorities]]\nlevel = -1\nlabel = \"x\"\n", "priorities[0].level: must be between 0 and 9, got -1"},
      {"[[priorities]]\nlevel = 5\nlabel = \"a\"\n[[priorities]]\nlevel = 5\nlabel = \"b\"\n",
       "priorities[1].level: level 5 is already used by priorities[0]; give each level one label"},
      {"[[priorities]]\nlabel = \"a\"\n", "priorities[0].level: is missing; add level = <a number between 0 and 9>"},
      // Wrong types.
      {"[queue]\nmax_active_per_counsellor = \"4\"\n",
       "queue.max_active_per_counsellor: must be a whole number without quotes, between 1 and 100"},
      {"[blocking]\nmax_hours = 1.5\n", "blocking.max_hours: must be a whole number"},
      {"[[categories]]\nid = 3\nlabel = \"x\"\n", "categories[0].id: must be text in double quotes"},
      {"[[categories]]\nid = \"a\"\nlabel = true\n", "categories[0].label: must be text in double quotes"},
      {"[helpline]\nname = [\"x\"]\n", "helpline.name: must be text in double quotes"},
      // TOML syntax errors: file, line and column.
      {"[helpline\nname = \"x\"\n", "helpline.toml:1:"},
      {"[helpline]\nname = \"x\"\nlanguages = [\"en\"\n", "helpline.toml:3:"},
      {"[helpline]\nname = \"x\"\nname = \"y\"\n", "helpline.toml:3:"},
  };
  for (const BadCase& bad : cases) {
    auto c = ParseHelplineConfig(bad.toml, "helpline.toml");
    ASSERT_FALSE(c.ok()) << bad.toml;
    EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(c.status().message().rfind("helpline.toml", 0), 0u) << c.status().message();
    EXPECT_NE(c.status().message().find(bad.expected_in_message), std::string::npos)
        << "input:\n" << bad.toml << "\nmessage: " << c.status().message();
  }
}

TEST(HelplineConfig, ErrorsGiveTheLineOfTheOffendingSetting) {
  const std::string text =
      "[[categories]]\n"   // 1
      "id = \"a\"\n"       // 2
      "label = \"A\"\n"    // 3
      "\n"                 // 4
      "[[categories]]\n"   // 5
      "id = \"b\"\n";      // 6
  auto c = ParseHelplineConfig(text + "label = \"\"\n", "helpline.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "helpline.toml: categories[1].label: must not be empty (line 7)");
  // A missing setting points at the start of its entry.
  c = ParseHelplineConfig(text, "helpline.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("categories[1].label: is missing"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("(line 5)"), std::string::npos) << c.status().message();
}

TEST(HelplineConfig, TooManyEntriesAreRefused) {
  std::string text;
  for (int i = 0; i <= 200; ++i) {
    text += "[[categories]]\nid = \"c" + std::to_string(i) + "\"\nlabel = \"C\"\n";
  }
  auto c = ParseHelplineConfig(text, "helpline.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("categories: has 201 entries; at most 200 are allowed"),
            std::string::npos)
      << c.status().message();
  text.resize(text.rfind("[[categories]]"));  // exactly 200
  EXPECT_TRUE(ParseHelplineConfig(text, "helpline.toml").ok());
}

TEST(HelplineConfig, MissingFileNamesTheSetting) {
  auto c = LoadHelplineConfigFile("/nonexistent/helpline.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent/helpline.toml"), std::string::npos);
  EXPECT_NE(c.status().message().find("files.helpline"), std::string::npos);
  // A directory is not a configuration (it would otherwise read as an empty, neutral one).
  EXPECT_FALSE(LoadHelplineConfigFile(HAVEN_SOURCE_DIR "/config").ok());
}

TEST(HelplinePath, EmptyMeansNeutral) {
  Config c;
  EXPECT_EQ(c.helpline_file, "");
  EXPECT_EQ(ResolveHelplinePath(c, "/etc/haven/havend.toml"), "");
  auto parsed = ParseConfig("[files]\nhelpline = \"\"\n", "havend.toml");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(ResolveHelplinePath(*parsed, "/etc/haven/havend.toml"), "");
}

TEST(HelplinePath, RelativeIsNextToHavendTomlNotTheDataDirectory) {
  auto c = ParseConfig("[server]\ndata_dir = \"/srv/haven\"\n[files]\nhelpline = \"helpline.toml\"\n",
                       "havend.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(ResolveHelplinePath(*c, "/etc/haven/havend.toml"), "/etc/haven/helpline.toml");
  EXPECT_EQ(ResolveHelplinePath(*c, "conf/havend.toml"), "conf/helpline.toml");
  EXPECT_EQ(ResolveHelplinePath(*c, "havend.toml"), "helpline.toml");  // the current directory
  EXPECT_EQ(ResolveHelplinePath(*c, ""), "helpline.toml");  // built-in defaults
  c->helpline_file = "../shared/helpline.toml";
  EXPECT_EQ(ResolveHelplinePath(*c, "/etc/haven/havend.toml"), "/etc/haven/../shared/helpline.toml");
}

TEST(HelplinePath, AbsoluteIsKept) {
  Config c;
  c.helpline_file = "/opt/helpline/helpline.toml";
  EXPECT_EQ(ResolveHelplinePath(c, "/etc/haven/havend.toml"), "/opt/helpline/helpline.toml");
}

TEST(HelplinePath, WrongTypeInHavendTomlIsRefused) {
  auto c = ParseConfig("[files]\nhelpline = 1\n", "havend.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("files.helpline: must be a string"), std::string::npos);
}

}  // namespace
}  // namespace haven::server
