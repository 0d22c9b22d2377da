// Runs tests/data/validation_cases.json through validate_value and validate_record in the order
// the engine does (every field of the record, then the record), against the built-in catalog and
// a small in-memory view of reference data. One test per case, named after it.
#include "schema/catalog.hpp"
#include "schema/rules.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace fieldsync {
namespace {

namespace json = boost::json;

class memory_references final : public reference_data {
public:
    bool division_exists(std::string_view code) const override {
        return divisions.count(std::string(code)) > 0;
    }
    bool record_exists(std::string_view collection, std::string_view id) const override {
        return records.count(std::string(collection) + "/" + std::string(id)) > 0;
    }
    std::set<std::string> divisions;
    std::set<std::string> records; // "collection/id"
};

const json::object& cases_document() {
    static const json::object doc = [] {
        std::ifstream in(std::string(FIELDSYNC_TEST_DATA) + "/validation_cases.json");
        std::stringstream ss;
        ss << in.rdbuf();
        return json::parse(ss.str()).as_object();
    }();
    return doc;
}

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return out;
}

struct fixture {
    memory_references refs;
    validation_context ctx;

    fixture() {
        const auto& doc = cases_document();
        for (const auto& d : doc.at("divisions").as_array())
            refs.divisions.insert(std::string(d.as_string()));
        for (const auto& [coll, ids] : doc.at("records").as_object())
            for (const auto& id : ids.as_array())
                refs.records.insert(std::string(coll) + "/" + std::string(id.as_string()));
        ctx.cat = &catalog::builtin();
        ctx.refs = &refs;
        ctx.now_ms = *parse_datetime(doc.at("now").as_string());
        ctx.future_slack_ms = 5 * 60 * 1000;
    }

    // The engine's order: each field's value, then the whole record.
    std::optional<rejection> validate(const collection_decl& c, const json::object& record,
                                      bool fields_too) const {
        if (fields_too)
            for (const auto& [name, value] : record)
                if (auto r = validate_value(c, name, value, ctx))
                    return r;
        return validate_record(c, record, ctx);
    }
};

TEST(validation_cases, every_collection_has_a_valid_example) {
    fixture f;
    const auto& valid = cases_document().at("valid").as_object();
    for (const auto& [name, decl] : catalog::builtin().collections()) {
        ASSERT_TRUE(valid.contains(name)) << name;
        auto r = f.validate(decl, valid.at(name).as_object(), true);
        EXPECT_FALSE(r) << name << ": " << (r ? r->code + " on " + r->field : "");
    }
}

TEST(validation_cases, every_rejection_has_zh_and_en_messages) {
    for (const auto& c : cases_document().at("cases").as_array()) {
        const auto& o = c.as_object();
        if (o.at("code").is_null())
            continue;
        auto r = make_rejection(o.at("code").as_string());
        // Codes without a table entry fall back to a generic sentence naming the code.
        EXPECT_EQ(r.message_zh.find("数据不符合要求"), std::string::npos) << r.code;
        EXPECT_FALSE(r.message_en.empty());
    }
}

class validation_case : public ::testing::TestWithParam<std::size_t> {};

TEST_P(validation_case, gives_the_expected_code) {
    fixture f;
    const auto& c = cases_document().at("cases").as_array().at(GetParam()).as_object();
    std::string name(c.at("name").as_string());
    std::string collection(c.at("collection").as_string());
    const auto* decl = catalog::builtin().find(collection);
    ASSERT_NE(decl, nullptr) << name;
    json::object record = cases_document().at("valid").at(collection).as_object();
    if (const auto* set = c.if_contains("set"))
        for (const auto& [field, value] : set->as_object()) {
            if (value.is_null())
                record.erase(field);
            else
                record[field] = value;
        }
    if (const auto* set = c.if_contains("set_hex"))
        for (const auto& [field, value] : set->as_object())
            record[field] = json::string(from_hex(value.as_string()));
    bool fields_too = !c.contains("mode") || c.at("mode") != "record_only";

    auto r = f.validate(*decl, record, fields_too);
    if (c.at("code").is_null()) {
        EXPECT_FALSE(r) << name << ": rejected with " << (r ? r->code + " on " + r->field : "");
        return;
    }
    ASSERT_TRUE(r) << name << ": accepted, expected " << c.at("code").as_string();
    EXPECT_EQ(r->code, c.at("code").as_string()) << name << " (" << r->message_en << ")";
    if (const auto* field = c.if_contains("field")) {
        EXPECT_EQ(r->field, field->as_string()) << name;
    }
    EXPECT_FALSE(r->message_zh.empty()) << name;
    EXPECT_FALSE(r->message_en.empty()) << name;
    // Messages name the field by its label, never by the code or the field's identifier.
    if (!r->field.empty() && decl->field(r->field)) {
        EXPECT_EQ(r->message_zh.find(r->field), std::string::npos) << r->message_zh;
    }
}

std::string case_name(const ::testing::TestParamInfo<std::size_t>& info) {
    const auto& c = cases_document().at("cases").as_array().at(info.param).as_object();
    std::string code = c.at("code").is_null() ? "accepted" : std::string(c.at("code").as_string());
    return std::to_string(info.param) + "_" + std::string(c.at("collection").as_string()) + "_" +
           code;
}

INSTANTIATE_TEST_SUITE_P(
    fixtures, validation_case,
    ::testing::Range<std::size_t>(0, cases_document().at("cases").as_array().size()), case_name);

} // namespace
} // namespace fieldsync
