// Pure validation helpers: GB 11643 check digits, ID numbers, calendar parsing, UTF-8, messages
// and forward compatibility.
#include "schema/catalog.hpp"
#include "schema/formats.hpp"
#include "schema/rules.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace fieldsync {
namespace {

namespace json = boost::json;

TEST(id_number, check_character_of_known_numbers) {
    // The example numbers printed in GB 11643-1999 itself.
    EXPECT_EQ(id_number_check_char("11010519491231002"), 'X');
    EXPECT_EQ(id_number_check_char("44052418800101001"), '4');
    // Numbers of the demo district (region 500234, Kaizhou's code before 2016), computed by hand:
    // sum of digit × weight (7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2) mod 11 → "10X98765432".
    EXPECT_EQ(id_number_check_char("50023419850312001"), '2');
    EXPECT_EQ(id_number_check_char("50023419800101502"), '8');
    EXPECT_EQ(id_number_check_char("50015420160704002"), 'X');
    EXPECT_EQ(id_number_check_char("50023419990228003"), '4');
}

TEST(id_number, parses_region_birth_date_and_gender) {
    std::string code;
    auto id = parse_id_number("500234198503120012", &code);
    ASSERT_TRUE(id) << code;
    EXPECT_EQ(id->region, "500234");
    EXPECT_EQ(id->birth_date, "1985-03-12");
    EXPECT_EQ(id->birth_day, *parse_date("1985-03-12"));
    EXPECT_TRUE(id->male);
    auto woman = parse_id_number("500234198001015028");
    ASSERT_TRUE(woman);
    EXPECT_FALSE(woman->male);
    EXPECT_TRUE(parse_id_number("11010519491231002X"));
}

TEST(id_number, each_failure_has_its_code) {
    auto code_of = [](std::string_view s) {
        std::string code;
        EXPECT_FALSE(parse_id_number(s, &code)) << s;
        return code;
    };
    EXPECT_EQ(code_of("500234198503120013"), "id_number_check_digit");
    EXPECT_EQ(code_of("50023419850312001X"), "id_number_check_digit");
    EXPECT_EQ(code_of("5002341985031200"), "id_number_length");
    EXPECT_EQ(code_of("5002341985031200123"), "id_number_length");
    EXPECT_EQ(code_of("11010519491231002x"), "id_number_characters");
    EXPECT_EQ(code_of("000234198503120012"), "id_number_region");
    EXPECT_EQ(code_of("500234198513020015"), "id_number_birth_date");
    EXPECT_EQ(code_of("500234199002290018"), "id_number_birth_date");
}

TEST(id_number, every_single_digit_typo_is_caught) {
    // The GB 11643 check character detects any one wrong digit.
    const std::string good = "500234198503120012";
    for (std::size_t i = 0; i < 17; ++i)
        for (char d = '0'; d <= '9'; ++d) {
            if (d == good[i])
                continue;
            std::string typo = good;
            typo[i] = d;
            EXPECT_FALSE(parse_id_number(typo)) << typo;
        }
}

TEST(dates, parse_real_calendar_dates_only) {
    EXPECT_EQ(parse_date("1970-01-01"), 0);
    EXPECT_EQ(parse_date("1970-01-02"), 1);
    EXPECT_EQ(parse_date("2000-03-01"), 11017);
    EXPECT_TRUE(parse_date("2000-02-29"));  // divisible by 400
    EXPECT_FALSE(parse_date("1900-02-29")); // divisible by 100
    EXPECT_TRUE(parse_date("2024-02-29"));
    EXPECT_FALSE(parse_date("2025-02-29"));
    EXPECT_FALSE(parse_date("2025-04-31"));
    EXPECT_FALSE(parse_date("2025-13-01"));
    EXPECT_FALSE(parse_date("2025-00-10"));
    EXPECT_FALSE(parse_date("2025-1-10"));
    EXPECT_FALSE(parse_date("2025/01/10"));
    EXPECT_FALSE(parse_date("1899-12-31"));
    EXPECT_FALSE(parse_date(""));
}

TEST(dates, civil_from_days_inverts_parse_date) {
    auto text = [](std::int64_t day) {
        auto c = civil_from_days(day);
        char buf[48];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.year, c.month, c.day);
        return std::string(buf);
    };
    EXPECT_EQ(text(0), "1970-01-01");
    EXPECT_EQ(text(11017), "2000-03-01");
    EXPECT_EQ(text(11016), "2000-02-29");
    EXPECT_EQ(text(-1), "1969-12-31");
    // Every day from 1900 to 2100: formatting the date and parsing it back gives the same day.
    for (std::int64_t day = *parse_date("1900-01-01"); day <= *parse_date("2100-12-31"); ++day)
        ASSERT_EQ(parse_date(text(day)), day) << text(day);
}

TEST(dates, parse_datetimes_with_offsets) {
    EXPECT_EQ(parse_datetime("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_datetime("1970-01-01T08:00:00+08:00"), 0);
    EXPECT_EQ(parse_datetime("1970-01-01T00:00:01.250Z"), 1250);
    EXPECT_EQ(*parse_datetime("2025-06-15T12:00:00+08:00"),
              *parse_datetime("2025-06-15T04:00:00Z"));
    EXPECT_FALSE(parse_datetime("2025-06-15T12:00:00"));
    EXPECT_FALSE(parse_datetime("2025-06-15T24:00:00Z"));
    EXPECT_FALSE(parse_datetime("2025-06-31T10:00:00Z"));
    EXPECT_FALSE(parse_datetime("2025-06-15T10:00:00+8:00"));
}

TEST(utf8, accepts_chinese_and_rejects_malformed_bytes) {
    EXPECT_TRUE(is_valid_utf8("开州区汉丰街道"));
    EXPECT_TRUE(is_valid_utf8("𠀀")); // outside the BMP (CJK extension B)
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_FALSE(is_valid_utf8("\xe5\xbc"));         // truncated
    EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));         // overlong '/'
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));     // surrogate
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\xff"));
    EXPECT_EQ(utf8_length("陈国平"), 3u);
    EXPECT_EQ(utf8_length("a陈b"), 3u);
}

TEST(field_names, lowercase_identifiers_only) {
    EXPECT_TRUE(is_field_name("id_number"));
    EXPECT_TRUE(is_field_name("_deleted"));
    EXPECT_FALSE(is_field_name("Name"));
    EXPECT_FALSE(is_field_name("9lives"));
    EXPECT_FALSE(is_field_name("a-b"));
    EXPECT_FALSE(is_field_name(std::string(65, 'a')));
}

TEST(messages, substitute_the_field_label) {
    field_decl f;
    f.name = "disability_grade";
    f.title = {"残疾等级", "Disability grade"};
    auto r = make_rejection("required_missing", &f);
    EXPECT_EQ(r.code, "required_missing");
    EXPECT_EQ(r.field, "disability_grade");
    EXPECT_EQ(r.message_zh, "请填写“残疾等级”");
    EXPECT_EQ(r.message_en, "\"Disability grade\" is required");
    auto check = make_rejection("id_number_check_digit");
    EXPECT_EQ(check.message_zh, "身份证号校验位错误，请核对");
}

TEST(messages, unknown_codes_get_a_generic_sentence) {
    auto r = make_rejection("no_such_code");
    EXPECT_NE(r.message_zh.find("no_such_code"), std::string::npos);
    EXPECT_NE(r.message_en.find("no_such_code"), std::string::npos);
}

TEST(rules, every_rule_named_by_a_declaration_exists) {
    for (const auto& [name, c] : catalog::builtin().collections()) {
        for (const auto& r : c.rules) {
            EXPECT_NE(find_rule(r), nullptr) << name << ": " << r;
        }
    }
    for (const char* f : {"id_number", "cert_no", "phone"})
        EXPECT_NE(find_format(f), nullptr) << f;
}

TEST(forward_compatibility, unknown_fields_are_kept_within_limits) {
    const auto& cat = catalog::builtin();
    const auto& person = *cat.find("person");
    validation_context ctx{&cat, nullptr, 0, 0};
    EXPECT_FALSE(validate_value(person, "wechat_group", json::value("郭家镇助残群"), ctx));
    EXPECT_FALSE(validate_value(person, "assistive_devices",
                                json::parse(R"([{"kind": "wheelchair", "since": 2019}])"), ctx));
    auto bad = validate_value(person, "future_note", json::value("\xff"), ctx);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->code, "invalid_utf8");
    auto big = validate_value(person, "future_blob", json::value(std::string(20000, 'a')), ctx);
    ASSERT_TRUE(big);
    EXPECT_EQ(big->code, "value_too_large");
    auto name = validate_value(person, "Future", json::value(1), ctx);
    ASSERT_TRUE(name);
    EXPECT_EQ(name->code, "bad_field_name");
}

TEST(forward_compatibility, the_value_limit_counts_the_value_as_sent_in_json) {
    // 16 KiB of JSON text: quotes and escapes count (a control character is written \u00XX).
    const auto& cat = catalog::builtin();
    const auto& person = *cat.find("person");
    validation_context ctx{&cat, nullptr, 0, 0};
    const std::size_t limit = cat.limits().max_value_bytes;
    auto check = [&](std::string text) {
        auto r = validate_value(person, "future_blob", json::value(text), ctx);
        return r ? r->code : std::string("ok");
    };
    EXPECT_EQ(check(std::string(limit - 2, 'a')), "ok");
    EXPECT_EQ(check(std::string(limit - 1, 'a')), "value_too_large");
    EXPECT_EQ(check(std::string((limit - 2) / 6, '\x01')), "ok");
    EXPECT_EQ(check(std::string((limit - 2) / 6 + 1, '\x01')), "value_too_large");
    EXPECT_EQ(check(std::string(3000, '"')), "ok"); // 6,002 bytes as \"
    EXPECT_EQ(check(std::string(9000, '"')), "value_too_large");
}

TEST(rules, future_checks_are_skipped_without_a_clock) {
    // Tablets validate offline with their own (possibly wrong) clock: now_ms 0 means "unknown".
    const auto& person = *catalog::builtin().find("person");
    validation_context ctx{&catalog::builtin(), nullptr, 0, 0};
    auto record = json::parse(R"({"township": "500154105", "village": "500154105201",
        "name": "x", "id_number": "500154205201010013", "gender": "male",
        "birth_date": "2052-01-01", "disability_category": "physical", "disability_grade": 3})")
                      .as_object();
    EXPECT_FALSE(validate_record(person, record, ctx));
    ctx.now_ms = *parse_datetime("2025-06-15T12:00:00+08:00");
    auto r = validate_record(person, record, ctx);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, "id_number_birth_in_future");
}

} // namespace
} // namespace fieldsync
