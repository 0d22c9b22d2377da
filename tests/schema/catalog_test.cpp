// The built-in declarations (schema/collections/*.json) and the declaration parser's checks.
#include "schema/catalog.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fieldsync {
namespace {

TEST(catalog, builtin_declares_the_six_record_types) {
    const auto& cat = catalog::builtin();
    for (const char* name : {"person", "household", "home_visit", "monitoring_check",
                             "needs_registration", "employment_service"})
        EXPECT_NE(cat.find(name), nullptr) << name;
    EXPECT_GE(cat.schema_version(), 1);
}

TEST(catalog, every_collection_is_scoped_by_an_immutable_township) {
    for (const auto& [name, c] : catalog::builtin().collections()) {
        EXPECT_EQ(c.township_field, "township") << name;
        EXPECT_EQ(c.village_field, "village") << name;
        const auto* t = c.field("township");
        ASSERT_NE(t, nullptr) << name;
        EXPECT_TRUE(t->required && t->immutable) << name;
        EXPECT_EQ(t->level, division_level::township) << name;
        EXPECT_NE(std::find(c.rules.begin(), c.rules.end(), "village_in_township"), c.rules.end())
            << name;
    }
}

TEST(catalog, every_field_has_chinese_and_english_labels) {
    for (const auto& [name, c] : catalog::builtin().collections()) {
        EXPECT_NE(c.title.zh, c.title.en) << name;
        for (const auto& f : c.fields) {
            // parse_label falls back to the identifier for both when a label is missing.
            EXPECT_NE(f.title.zh, f.name) << name << "." << f.name;
            EXPECT_NE(f.title.en, f.name) << name << "." << f.name;
        }
    }
}

// Township heads read the page and the exports in Chinese: a value shown as its code
// ("not_in_labour_force") is one they must guess.
TEST(catalog, every_enumeration_value_is_called_something_in_chinese_and_english) {
    for (const auto& [name, c] : catalog::builtin().collections())
        for (const auto& f : c.fields) {
            ASSERT_EQ(f.values.size(), f.value_titles.size()) << name << "." << f.name;
            for (std::size_t i = 0; i < f.values.size(); ++i) {
                EXPECT_NE(f.value_titles[i].zh, f.values[i]) << name << "." << f.name;
                EXPECT_NE(f.value_titles[i].en, f.values[i]) << name << "." << f.name;
            }
        }
    const auto* grade = catalog::builtin().find("person")->field("disability_category");
    EXPECT_EQ(value_title(*grade, "physical", true), "肢体残疾");
    EXPECT_EQ(value_title(*grade, "physical", false), "Physical");
    EXPECT_EQ(value_title(*grade, "unheard_of", true), "unheard_of"); // an old or new code
}

TEST(catalog, id_and_phone_numbers_are_personal) {
    const auto* p = catalog::builtin().find("person");
    ASSERT_NE(p, nullptr);
    for (const char* f : {"id_number", "disability_cert_no", "phone"}) {
        ASSERT_NE(p->field(f), nullptr) << f;
        EXPECT_TRUE(p->field(f)->personal) << f;
    }
    EXPECT_FALSE(p->field("name")->personal);
    EXPECT_EQ(p->field("id_number")->format, "id_number");
    EXPECT_EQ(p->field("disability_cert_no")->format, "cert_no");
    EXPECT_EQ(p->field("phone")->format, "phone");
}

TEST(catalog, person_enumerations_match_the_brief) {
    const auto* p = catalog::builtin().find("person");
    ASSERT_NE(p, nullptr);
    // The order of categories is the certificate's digit 19 (1 visual … 7 multiple).
    EXPECT_EQ(p->field("disability_category")->values,
              (std::vector<std::string>{"visual", "hearing", "speech", "physical", "intellectual",
                                        "mental", "multiple"}));
    EXPECT_EQ(p->field("disability_grade")->min, 1.0);
    EXPECT_EQ(p->field("disability_grade")->max, 4.0);
    EXPECT_EQ(p->field("household")->ref, "household");
}

TEST(catalog, references_point_at_declared_collections) {
    const auto& cat = catalog::builtin();
    for (const auto& [name, c] : cat.collections()) {
        for (const auto& f : c.fields) {
            if (f.type == field_type::reference) {
                EXPECT_NE(cat.find(f.ref), nullptr) << name << "." << f.name;
            }
        }
    }
}

TEST(catalog, next_visit_may_lie_in_the_future_but_the_visit_may_not) {
    const auto* v = catalog::builtin().find("home_visit");
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(v->field("next_visit_due")->allow_future);
    EXPECT_FALSE(v->field("visited_at")->allow_future);
}

constexpr const char* minimal = R"({"collections": {"x": {
    "scope": {"township": "t"},
    "fields": {"t": {"type": "division", "level": "township", "required": true}%s}%s}}})";

std::string doc(std::string fields, std::string extra = "") {
    std::string s = minimal;
    s.replace(s.find("%s"), 2, fields);
    s.replace(s.find("%s"), 2, extra);
    return s;
}

TEST(catalog, accepts_a_minimal_declaration) {
    std::string err;
    EXPECT_TRUE(catalog::from_json(doc(""), &err)) << err;
}

TEST(catalog, rejects_an_unknown_rule_or_format) {
    std::string err;
    EXPECT_FALSE(catalog::from_json(doc("", R"(, "rules": ["no_such_rule"])"), &err));
    EXPECT_NE(err.find("unknown rule"), std::string::npos) << err;
    EXPECT_FALSE(
        catalog::from_json(doc(R"(, "n": {"type": "string", "format": "no_such_format"})"), &err));
    EXPECT_NE(err.find("unknown format"), std::string::npos) << err;
}

TEST(catalog, rejects_a_reference_to_an_unknown_collection) {
    std::string err;
    EXPECT_FALSE(
        catalog::from_json(doc(R"(, "r": {"type": "reference", "ref": "nowhere"})"), &err));
    EXPECT_NE(err.find("nowhere"), std::string::npos) << err;
}

TEST(catalog, rejects_a_scope_without_a_required_township_division) {
    std::string err;
    EXPECT_FALSE(catalog::from_json(
        R"({"collections": {"x": {"scope": {"township": "t"},
            "fields": {"t": {"type": "division", "level": "township"}}}}})",
        &err));
    EXPECT_FALSE(catalog::from_json(
        R"({"collections": {"x": {"fields": {"t": {"type": "string"}}}}})", &err));
}

TEST(catalog, rejects_an_enum_without_values_and_reserved_names) {
    std::string err;
    EXPECT_FALSE(catalog::from_json(doc(R"(, "e": {"type": "enum"})"), &err));
    EXPECT_FALSE(catalog::from_json(doc(R"(, "_x": {"type": "string"})"), &err));
    EXPECT_FALSE(catalog::from_json(doc(R"(, "Bad": {"type": "string"})"), &err));
}

TEST(catalog, value_labels_name_declared_values_only) {
    std::string err;
    auto c = catalog::from_json(doc(R"(, "e": {"type": "enum", "values": ["a", "b"],
                      "value_labels": {"a": {"zh": "甲", "en": "A"}}})"),
                                &err);
    ASSERT_TRUE(c) << err;
    const auto* e = c->find("x")->field("e");
    EXPECT_EQ(value_title(*e, "a", true), "甲");
    EXPECT_EQ(value_title(*e, "b", true), "b"); // not labelled: its code
    EXPECT_FALSE(catalog::from_json(
        doc(R"(, "e": {"type": "enum", "values": ["a"], "value_labels": {"z": "Z"}})"), &err));
    EXPECT_NE(err.find("\"z\", which is not one of"), std::string::npos) << err;
    EXPECT_FALSE(catalog::from_json(
        doc(R"(, "e": {"type": "enum", "values": ["a"], "value_labels": {"a": 1}})"), &err));
    EXPECT_FALSE(
        catalog::from_json(doc(R"(, "s": {"type": "string", "value_labels": {"a": "A"}})"), &err));
}

TEST(catalog, rejects_a_collection_declared_twice) {
    auto c = catalog::from_json(doc(""));
    ASSERT_TRUE(c);
    std::string err;
    EXPECT_FALSE(c->add(doc(""), &err));
    EXPECT_NE(err.find("declared twice"), std::string::npos) << err;
}

} // namespace
} // namespace fieldsync
