// The protocol's JSON codecs: strict decoding of requests (a malformed push is refused as a
// whole only when it cannot be numbered; a malformed mutation body is a per-mutation rejection),
// and encode → decode round trips of the responses a tablet reads.
#include "sync/protocol.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace fieldsync {
namespace {

namespace json = boost::json;

json::value parse(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    EXPECT_FALSE(ec) << text;
    return v;
}

const char* good_id = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b2";

json::object good_mutation(std::uint64_t seq) {
    return json::object{
        {"seq", seq},
        {"collection", "item"},
        {"id", good_id},
        {"fields",
         json::object{
             {"name", json::object{{"value", "x"}, {"clock", "5:0:tab-a"}, {"base", nullptr}}},
             {"count",
              json::object{{"value", 3}, {"clock", "5:0:tab-a"}, {"base", "4:1:tab-b"}}}}}};
}

json::object push_body(json::array mutations) {
    return json::object{{"schema_version", 1}, {"mutations", std::move(mutations)}};
}

TEST(protocol, decode_push_accepts_a_well_formed_push) {
    auto r = decode_push(push_body({good_mutation(1), good_mutation(2), good_mutation(7)}));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->mutations.size(), 3u);
    EXPECT_EQ(r->schema_version, 1);
    EXPECT_EQ(r->mutations[2].seq, 7u);
    const auto& m = r->mutations[0];
    EXPECT_TRUE(m.malformed_code.empty());
    EXPECT_EQ(m.collection, "item");
    EXPECT_EQ(m.id.to_string(), good_id);
    ASSERT_EQ(m.fields.size(), 2u);
    EXPECT_EQ(m.fields[0].first, "name");
    EXPECT_EQ(m.fields[0].second.clock, (hlc{5, 0, "tab-a"}));
    EXPECT_FALSE(m.fields[0].second.base);
    EXPECT_EQ(m.fields[1].second.base, (hlc{4, 1, "tab-b"}));
    // An empty push is fine (nothing to do).
    EXPECT_TRUE(decode_push(push_body({})));
}

TEST(protocol, decode_push_refuses_what_cannot_be_numbered) {
    auto with = [](json::array ms) { return push_body(std::move(ms)); };
    auto no_seq = good_mutation(1);
    no_seq.erase("seq");
    auto zero_seq = good_mutation(0);
    auto neg_seq = good_mutation(1);
    neg_seq["seq"] = -1;
    auto str_seq = good_mutation(1);
    str_seq["seq"] = "1";
    auto float_seq = good_mutation(1);
    float_seq["seq"] = 1.0;
    const std::vector<std::pair<json::value, const char*>> cases = {
        {json::value(nullptr), "not an object"},
        {json::array{}, "array body"},
        {json::object{{"mutations", json::array{}}}, "no schema_version"},
        {json::object{{"schema_version", 0}, {"mutations", json::array{}}}, "schema_version 0"},
        {json::object{{"schema_version", -3}, {"mutations", json::array{}}}, "negative"},
        {json::object{{"schema_version", "1"}, {"mutations", json::array{}}}, "string"},
        {json::object{{"schema_version", 1.5}, {"mutations", json::array{}}}, "fraction"},
        {json::object{{"schema_version", 1}}, "no mutations"},
        {json::object{{"schema_version", 1}, {"mutations", json::object{}}}, "mutations object"},
        {with({json::value(5)}), "mutation not an object"},
        {with({no_seq}), "missing seq"},
        {with({zero_seq}), "seq 0"},
        {with({neg_seq}), "negative seq"},
        {with({str_seq}), "string seq"},
        {with({float_seq}), "float seq"},
        {with({good_mutation(2), good_mutation(2)}), "repeated seq"},
        {with({good_mutation(3), good_mutation(2)}), "decreasing seq"},
        {with({good_mutation(1), good_mutation(2), good_mutation(1)}), "going back"},
    };
    for (const auto& [body, what] : cases) {
        std::string why;
        auto r = decode_push(body, &why);
        ASSERT_FALSE(r) << what;
        EXPECT_EQ(r.error(), make_error_code(errc::invalid_argument)) << what;
        EXPECT_FALSE(why.empty()) << what;
    }
}

TEST(protocol, decode_push_limits_the_number_of_mutations) {
    json::array ms;
    for (std::uint64_t i = 1; i <= 10000; ++i)
        ms.push_back(json::object{{"seq", i}});
    EXPECT_TRUE(decode_push(push_body(ms)));
    ms.push_back(json::object{{"seq", 10001}});
    std::string why;
    auto r = decode_push(push_body(ms), &why);
    ASSERT_FALSE(r);
    EXPECT_NE(why.find("10000"), std::string::npos) << why;
}

TEST(protocol, malformed_mutation_bodies_are_per_mutation_codes_not_a_failed_push) {
    auto with_fields = [](json::value fields) {
        auto m = good_mutation(1);
        m["fields"] = std::move(fields);
        return m;
    };
    auto no_coll = good_mutation(1);
    no_coll.erase("collection");
    auto num_coll = good_mutation(1);
    num_coll["collection"] = 5;
    auto no_id = good_mutation(1);
    no_id.erase("id");
    auto bad_id = good_mutation(1);
    bad_id["id"] = "0190a1b2c3d47e5f8a6b7c8d9e0fa1b2";
    auto num_id = good_mutation(1);
    num_id["id"] = 12;
    auto no_fields = good_mutation(1);
    no_fields.erase("fields");
    auto fv = [](json::object f) { return json::object{{"name", std::move(f)}}; };
    const std::vector<std::tuple<json::object, const char*, const char*>> cases = {
        {no_coll, "unknown_collection", ""},
        {num_coll, "unknown_collection", ""},
        {no_id, "bad_record_id", ""},
        {bad_id, "bad_record_id", ""},
        {num_id, "bad_record_id", ""},
        {no_fields, "empty_mutation", ""},
        {with_fields(json::object{}), "empty_mutation", ""},
        {with_fields(json::array{}), "empty_mutation", ""},
        {with_fields(json::object{{"name", "x"}}), "bad_clock", "name"},
        {with_fields(fv({{"clock", "5:0:tab-a"}})), "bad_clock", "name"},       // no value
        {with_fields(fv({{"value", "x"}})), "bad_clock", "name"},               // no clock
        {with_fields(fv({{"value", "x"}, {"clock", 5}})), "bad_clock", "name"}, // not text
        {with_fields(fv({{"value", "x"}, {"clock", "05:0:a"}})), "bad_clock", "name"},
        {with_fields(fv({{"value", "x"}, {"clock", "5:0:a"}, {"base", "soon"}})), "bad_clock",
         "name"},
        {with_fields(fv({{"value", "x"}, {"clock", "5:0:a"}, {"base", 4}})), "bad_clock", "name"},
    };
    for (const auto& [m, code, field] : cases) {
        std::string why;
        auto r = decode_push(push_body({good_mutation(1), m, good_mutation(3)}), &why);
        // Renumber: the malformed one is seq 2.
        ASSERT_FALSE(r) << "seq 1 twice must be refused: " << code;
        auto m2 = m;
        m2["seq"] = 2;
        r = decode_push(push_body({good_mutation(1), m2, good_mutation(3)}), &why);
        ASSERT_TRUE(r) << code << ": " << why;
        ASSERT_EQ(r->mutations.size(), 3u);
        EXPECT_TRUE(r->mutations[0].malformed_code.empty());
        EXPECT_TRUE(r->mutations[2].malformed_code.empty());
        const auto& bad = r->mutations[1];
        EXPECT_EQ(bad.seq, 2u);
        EXPECT_EQ(bad.malformed_code, code) << json::serialize(m2);
        EXPECT_EQ(bad.malformed_field, field) << json::serialize(m2);
        EXPECT_TRUE(bad.fields.empty());
        EXPECT_EQ(bad.raw, json::value(m2)); // kept as received, for the quarantine
        EXPECT_EQ(encode(bad), json::value(m2));
    }
}

// The server gives its parsed body up to the decoder, which moves the field values out instead
// of copying them: the same push comes out, and a mutation found malformed at its last field
// still keeps every value of its payload for the quarantine.
TEST(protocol, a_push_decoded_from_a_body_given_up_is_the_same_and_keeps_bad_payloads_whole) {
    auto late_bad = good_mutation(2);
    late_bad["fields"].as_object()["note"] =
        json::object{{"value", "写到一半"}, {"clock", "not a clock"}};
    const json::value body = push_body({good_mutation(1), late_bad, good_mutation(3)});
    auto copied = decode_push(body);
    json::value given = body;
    auto moved = decode_push(std::move(given));
    ASSERT_TRUE(copied);
    ASSERT_TRUE(moved);
    ASSERT_EQ(moved->mutations.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_EQ(encode(moved->mutations[i]), encode(copied->mutations[i])) << i;
    EXPECT_EQ(moved->mutations[1].malformed_code, "bad_clock");
    EXPECT_EQ(moved->mutations[1].raw, json::value(late_bad)); // "x" and 3 still in it
    EXPECT_EQ(moved->mutations[0].fields.at(0).second.value, "x");
    EXPECT_EQ(moved->mutations[0].fields.at(1).second.value, 3);
}

TEST(protocol, malformed_mutations_reach_the_engine_as_rejections_and_the_queue_moves_on) {
    using namespace fieldsync::testing;
    server_harness server;
    auto m1 = good_mutation(1);
    m1["fields"] = json::object{};
    auto m2 = good_mutation(2);
    m2["fields"] = json::object{
        {"township", json::object{{"value", town_a}, {"clock", "5:0:tab-a"}, {"base", nullptr}}},
        {"village", json::object{{"value", village_a1}, {"clock", "5:0:tab-a"}, {"base", nullptr}}},
        {"name", json::object{{"value", "ok"}, {"clock", "5:0:tab-a"}, {"base", nullptr}}}};
    auto req = decode_push(push_body({m1, m2}));
    ASSERT_TRUE(req);
    auto res = server.push(worker("tab-a"), *req);
    ASSERT_EQ(res.acks.size(), 2u);
    EXPECT_EQ(res.acks[0].status, ack_status::rejected);
    EXPECT_EQ(res.acks[0].code, "empty_mutation");
    EXPECT_EQ(res.acks[1].status, ack_status::applied);
    EXPECT_EQ(res.last_applied, 2u);
    EXPECT_EQ(server.count("SELECT count(*) FROM quarantine"), 1);
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 1);
}

TEST(protocol, decode_pull_strictness) {
    auto r = decode_pull(json::object{});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cursor, "");
    EXPECT_EQ(r->limit, 500u);
    r = decode_pull(json::object{{"cursor", nullptr}, {"limit", nullptr}});
    ASSERT_TRUE(r);
    r = decode_pull(json::object{{"cursor", "abc"}, {"limit", 20}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cursor, "abc");
    EXPECT_EQ(r->limit, 20u);
    r = decode_pull(json::object{{"limit", 1000000000000}});
    ASSERT_TRUE(r);
    EXPECT_LE(r->limit, 5000u); // capped
    const std::vector<json::value> bad = {
        json::value(nullptr),
        json::array{},
        json::object{{"cursor", 5}},
        json::object{{"cursor", std::string(513, 'A')}},
        json::object{{"cursor", json::array{}}},
        json::object{{"limit", 0}},
        json::object{{"limit", -1}},
        json::object{{"limit", "10"}},
        json::object{{"limit", 2.5}},
    };
    for (const auto& b : bad) {
        std::string why;
        EXPECT_FALSE(decode_pull(b, &why)) << json::serialize(b);
        EXPECT_FALSE(why.empty()) << json::serialize(b);
    }
}

TEST(protocol, push_request_round_trip) {
    push_request r;
    r.schema_version = 3;
    for (std::uint64_t s = 4; s < 7; ++s) {
        mutation m;
        m.seq = s;
        m.collection = "item";
        m.id = uuid_v7_generator(s).make(1764316800000);
        m.fields.emplace_back("name", field_write{json::value("张三"), hlc{5, 1, "tab-a"}, {}});
        m.fields.emplace_back("count",
                              field_write{json::value(s), hlc{5, 1, "tab-a"}, hlc{4, 0, "tab-b"}});
        m.fields.emplace_back("_deleted", field_write{json::value(true), hlc{5, 1, "tab-a"}, {}});
        r.mutations.push_back(std::move(m));
    }
    auto text = json::serialize(encode(r));
    auto back = decode_push(parse(text));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->schema_version, 3);
    ASSERT_EQ(back->mutations.size(), r.mutations.size());
    for (std::size_t i = 0; i < r.mutations.size(); ++i) {
        const auto &a = r.mutations[i], &b = back->mutations[i];
        EXPECT_EQ(a.seq, b.seq);
        EXPECT_EQ(a.collection, b.collection);
        EXPECT_EQ(a.id, b.id);
        ASSERT_EQ(a.fields.size(), b.fields.size());
        for (std::size_t k = 0; k < a.fields.size(); ++k) {
            EXPECT_EQ(a.fields[k].first, b.fields[k].first);
            EXPECT_EQ(a.fields[k].second.value, b.fields[k].second.value);
            EXPECT_EQ(a.fields[k].second.clock, b.fields[k].second.clock);
            EXPECT_EQ(a.fields[k].second.base, b.fields[k].second.base);
        }
    }
    EXPECT_EQ(json::serialize(encode(*back)), text);
}

TEST(protocol, a_push_writes_a_clock_and_base_shared_by_all_fields_once) {
    auto round_trip = [](const mutation& m) {
        push_request r;
        r.schema_version = 1;
        r.mutations.push_back(m);
        auto doc = encode(r);
        auto back = decode_push(parse(json::serialize(doc)));
        EXPECT_TRUE(back);
        if (back) {
            const auto& b = back->mutations.at(0);
            EXPECT_TRUE(b.malformed_code.empty()) << b.malformed_code;
            EXPECT_EQ(b.fields.size(), m.fields.size());
            for (std::size_t k = 0; k < std::min(b.fields.size(), m.fields.size()); ++k) {
                EXPECT_EQ(b.fields[k].first, m.fields[k].first);
                EXPECT_EQ(b.fields[k].second.value, m.fields[k].second.value);
                EXPECT_EQ(b.fields[k].second.clock, m.fields[k].second.clock);
                EXPECT_EQ(b.fields[k].second.base, m.fields[k].second.base);
            }
        }
        return doc.at("mutations").at(0).as_object();
    };
    mutation create;
    create.seq = 1;
    create.collection = "item";
    create.id = uuid_v7_generator(1).make(1764316800000);
    for (const char* name : {"name", "count", "township"})
        create.fields.emplace_back(name, field_write{json::value(name), hlc{5, 0, "tab-a"}, {}});
    auto o = round_trip(create);
    EXPECT_EQ(o.at("clock"), "5:0:tab-a");
    EXPECT_FALSE(o.contains("base"));
    EXPECT_EQ(json::serialize(o.at("fields").at("name")), R"({"value":"name"})");

    // An edit: one clock, bases that differ (and one field the tablet had no value for).
    mutation edit = create;
    edit.fields[0].second.base = hlc{4, 0, "tab-b"};
    edit.fields[1].second.base = hlc{3, 0, "tab-a"};
    o = round_trip(edit);
    EXPECT_EQ(o.at("clock"), "5:0:tab-a");
    EXPECT_FALSE(o.contains("base"));
    EXPECT_EQ(o.at("fields").at("name").at("base"), "4:0:tab-b");
    EXPECT_FALSE(o.at("fields").at("township").as_object().contains("base"));

    // Same base everywhere, clocks that differ.
    mutation mixed = create;
    for (auto& [name, w] : mixed.fields)
        w.base = hlc{4, 0, "tab-b"};
    mixed.fields[2].second.clock = hlc{6, 0, "tab-a"};
    o = round_trip(mixed);
    EXPECT_FALSE(o.contains("clock"));
    EXPECT_EQ(o.at("base"), "4:0:tab-b");
    EXPECT_EQ(o.at("fields").at("township").at("clock"), "6:0:tab-a");
}

TEST(protocol, a_field_own_clock_and_base_win_over_the_mutation_ones) {
    auto decode_one = [](std::string_view mutation_json) {
        auto r = decode_push(parse(std::string(R"({"schema_version": 1, "mutations": [)") +
                                   std::string(mutation_json) + "]}"));
        EXPECT_TRUE(r);
        return r ? r->mutations.at(0) : mutation{};
    };
    auto m = decode_one(R"({"seq": 1, "collection": "item",
        "id": "019b0124-4990-702a-a342-b68f2f83087b", "clock": "5:0:tab-a", "base": "4:0:tab-b",
        "fields": {"name": {"value": "x"}, "count": {"value": 2, "clock": "6:0:tab-a", "base": null}}})");
    ASSERT_TRUE(m.malformed_code.empty()) << m.malformed_code;
    ASSERT_EQ(m.fields.size(), 2u);
    EXPECT_EQ(m.fields[0].second.clock, (hlc{5, 0, "tab-a"}));
    EXPECT_EQ(m.fields[0].second.base, (hlc{4, 0, "tab-b"}));
    EXPECT_EQ(m.fields[1].second.clock, (hlc{6, 0, "tab-a"}));
    EXPECT_EQ(m.fields[1].second.base, std::nullopt);

    // No clock anywhere, or a bad one at the mutation: the mutation is rejected, not the push.
    EXPECT_EQ(decode_one(R"({"seq": 1, "collection": "item",
        "id": "019b0124-4990-702a-a342-b68f2f83087b", "fields": {"name": {"value": "x"}}})")
                  .malformed_code,
              "bad_clock");
    EXPECT_EQ(decode_one(R"({"seq": 1, "collection": "item",
        "id": "019b0124-4990-702a-a342-b68f2f83087b", "clock": "yesterday",
        "fields": {"name": {"value": "x"}}})")
                  .malformed_code,
              "bad_clock");
    EXPECT_EQ(decode_one(R"({"seq": 1, "collection": "item",
        "id": "019b0124-4990-702a-a342-b68f2f83087b", "clock": "5:0:tab-a", "base": 7,
        "fields": {"name": {"value": "x"}}})")
                  .malformed_code,
              "bad_clock");
}

mutation_ack rich_ack() {
    mutation_ack a;
    a.seq = 12;
    a.status = ack_status::applied;
    a.conflicts = {{"name", true}, {"count", false}};
    a.kept = {"count", "note"};
    a.restamped = {{"name", hlc{1764316800000, 2, "tab-a"}},
                   {"kind", hlc{1764316800001, 0, "tab-a"}}};
    return a;
}

void expect_same_ack(const mutation_ack& a, const mutation_ack& b) {
    EXPECT_EQ(a.seq, b.seq);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.code, b.code);
    EXPECT_EQ(a.field, b.field);
    EXPECT_EQ(a.message, b.message);
    EXPECT_EQ(a.message_en, b.message_en);
    ASSERT_EQ(a.conflicts.size(), b.conflicts.size());
    for (std::size_t i = 0; i < a.conflicts.size(); ++i) {
        EXPECT_EQ(a.conflicts[i].field, b.conflicts[i].field);
        EXPECT_EQ(a.conflicts[i].won, b.conflicts[i].won);
    }
    EXPECT_EQ(a.kept, b.kept);
    EXPECT_EQ(a.restamped, b.restamped);
}

TEST(protocol, ack_round_trip) {
    mutation_ack rejected;
    rejected.seq = 3;
    rejected.status = ack_status::rejected;
    rejected.code = "out_of_range";
    rejected.field = "count";
    rejected.message = "数量超出范围";
    rejected.message_en = "Count is out of range";
    mutation_ack gap;
    gap.seq = 9;
    gap.status = ack_status::gap;
    gap.code = "sequence_gap";
    mutation_ack plain;
    plain.seq = 1;
    for (const auto& a : {rich_ack(), rejected, gap, plain}) {
        auto text = json::serialize(encode(a));
        auto back = decode_ack(parse(text));
        ASSERT_TRUE(back) << text;
        expect_same_ack(a, *back);
        EXPECT_EQ(json::serialize(encode(*back)), text);
    }
    EXPECT_FALSE(decode_ack(parse(R"({"seq": 1, "status": "maybe"})")));
    EXPECT_FALSE(decode_ack(parse(R"({"seq": 0, "status": "applied"})")));
    EXPECT_FALSE(decode_ack(parse(R"({"status": "applied"})")));
    EXPECT_FALSE(decode_ack(parse(R"([1])")));
}

TEST(protocol, push_result_round_trip) {
    push_result r;
    mutation_ack gap;
    gap.seq = 14;
    gap.status = ack_status::gap;
    gap.code = "sequence_gap";
    gap.message = "上传顺序中断";
    r.acks = {rich_ack(), gap};
    r.last_applied = 12;
    r.server_clock = hlc{1764316800005, 0, "server"};
    auto text = json::serialize(encode(r));
    auto back = decode_push_result(parse(text));
    ASSERT_TRUE(back) << text;
    ASSERT_EQ(back->acks.size(), 2u);
    expect_same_ack(r.acks[0], back->acks[0]);
    expect_same_ack(r.acks[1], back->acks[1]);
    EXPECT_EQ(back->last_applied, 12u);
    EXPECT_EQ(back->server_clock, r.server_clock);
    EXPECT_EQ(json::serialize(encode(*back)), text);
    // Strict about what a client needs.
    EXPECT_FALSE(decode_push_result(parse(R"({"acks": [], "last_applied": 1})")));
    EXPECT_FALSE(decode_push_result(parse(R"({"acks": [], "server_clock": "1:0:s"})")));
    EXPECT_FALSE(
        decode_push_result(parse(R"({"acks": [], "last_applied": 1, "server_clock": "01:0:s"})")));
    EXPECT_FALSE(decode_push_result(
        parse(R"({"acks": [{"seq": 1}], "last_applied": 1, "server_clock": "1:0:s"})")));
    EXPECT_FALSE(
        decode_push_result(parse(R"({"acks": [], "last_applied": 1.5, "server_clock": "1:0:s"})")));
}

// The decoders promise errc::invalid_argument for anything malformed. A negative
// "last_applied" passes the is_int64() check and then `to_number<std::uint64_t>()` throws
// boost::system::system_error (value not representable) out of decode_push_result.
TEST(protocol, push_result_with_negative_last_applied_is_an_error_not_an_exception) {
    auto body = parse(R"({"acks": [], "last_applied": -1, "server_clock": "1:0:s"})");
    result<push_result> r = push_result{};
    EXPECT_NO_THROW(r = decode_push_result(body));
    EXPECT_FALSE(r);
}

TEST(protocol, pull_result_round_trip) {
    pull_result r;
    record_state a;
    a.collection = "item";
    a.id = uuid_v7_generator(1).make(1764316800000);
    a.fields = json::object{
        {"name", "张三"}, {"count", 2}, {"_deleted", true}, {"geo", json::object{{"lat", 29.5}}}};
    a.clocks =
        json::object{{"name", "5:0:tab-a"}, {"count", "6:0:tab-b"}, {"_deleted", "7:0:tab-a"}};
    record_state b;
    b.collection = "item";
    b.id = uuid_v7_generator(2).make(1764316800001);
    b.fields = json::object{{"name", "李四"}};
    b.clocks = json::object{{"name", "8:0:tab-c"}};
    r.changes = {a, b};
    r.cursor = "djEuYWJjLjEyLmZmZmYuMDA";
    r.complete = false;
    r.server_clock = hlc{1764316800009, 3, "server"};
    for (bool reset : {false, true}) {
        r.reset = reset;
        r.reset_reason = reset ? "scope_changed" : "";
        auto text = json::serialize(encode(r));
        auto back = decode_pull_result(parse(text));
        ASSERT_TRUE(back) << text;
        ASSERT_EQ(back->changes.size(), 2u);
        for (std::size_t i = 0; i < 2; ++i) {
            EXPECT_EQ(back->changes[i].collection, r.changes[i].collection);
            EXPECT_EQ(back->changes[i].id, r.changes[i].id);
            EXPECT_EQ(back->changes[i].fields, r.changes[i].fields);
            EXPECT_EQ(back->changes[i].clocks, r.changes[i].clocks);
        }
        EXPECT_EQ(back->cursor, r.cursor);
        EXPECT_EQ(back->complete, r.complete);
        EXPECT_EQ(back->reset, reset);
        EXPECT_EQ(back->reset_reason, r.reset_reason);
        EXPECT_EQ(back->server_clock, r.server_clock);
        EXPECT_EQ(json::serialize(encode(*back)), text);
    }
    EXPECT_FALSE(decode_pull_result(parse(R"({"changes": [], "cursor": "", "complete": true})")));
    EXPECT_FALSE(decode_pull_result(
        parse(R"({"changes": [], "cursor": 1, "complete": true, "server_clock": "1:0:s"})")));
    EXPECT_FALSE(decode_pull_result(
        parse(R"({"changes": [], "cursor": "", "complete": 1, "server_clock": "1:0:s"})")));
    EXPECT_FALSE(decode_pull_result(parse(
        R"({"changes": [{"collection": "item", "id": "x", "fields": {}, "clocks": {}}],
            "cursor": "", "complete": true, "server_clock": "1:0:s"})")));
    EXPECT_FALSE(decode_pull_result(parse(
        R"({"changes": [{"collection": "item", "id": "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b2",
            "fields": []}], "cursor": "", "complete": true, "server_clock": "1:0:s"})")));
}

TEST(protocol, engine_results_round_trip_through_json) {
    // Real acks from the engine (conflict, kept, restamped, rejected) survive the wire.
    using namespace fieldsync::testing;
    manual_clock wall;
    server_harness server(":memory:", {}, wall.fn());
    manual_clock wa, wb;
    replica a(":memory:", test_catalog(), "tab-a", wa.fn(), 1);
    replica b(":memory:", test_catalog(), "tab-b", wb.fn(), 2);
    auto id = *a.create("item", item("x"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    wa.ms += 5;
    ASSERT_TRUE(a.update(id, {{"count", 1}, {"note", "a"}}));
    wb.ms += 9;
    ASSERT_TRUE(b.update(id, {{"count", 2}}));
    wb.ms = wall.ms + 3600 * 1000; // b runs an hour ahead: restamped
    ASSERT_TRUE(b.update(id, {{"kind", "b"}}));
    ASSERT_TRUE(b.update(id, {{"count", 5000}})); // out of range: rejected
    server.sync(a, worker("tab-a"));
    auto req = b.next_push();
    auto res = server.push(worker("tab-b"), req);
    ASSERT_EQ(res.acks.size(), 3u);
    EXPECT_FALSE(res.acks[0].conflicts.empty());
    EXPECT_FALSE(res.acks[1].restamped.empty());
    EXPECT_EQ(res.acks[2].status, ack_status::rejected);
    auto text = json::serialize(encode(res));
    auto back = decode_push_result(parse(text));
    ASSERT_TRUE(back);
    ASSERT_EQ(back->acks.size(), res.acks.size());
    for (std::size_t i = 0; i < res.acks.size(); ++i)
        expect_same_ack(res.acks[i], back->acks[i]);
    EXPECT_EQ(back->last_applied, res.last_applied);
    b.apply_push_result(req, *back);
    auto pulled = server.pull(worker("tab-b"), b.next_pull(2));
    auto pulled_back = decode_pull_result(parse(json::serialize(encode(pulled))));
    ASSERT_TRUE(pulled_back);
    EXPECT_EQ(json::serialize(encode(*pulled_back)), json::serialize(encode(pulled)));
}

} // namespace
} // namespace fieldsync

namespace fieldsync {
namespace {

// The server writes pull answers directly (copying stored JSON text); a tablet must read exactly
// what encode() describes, for parsed and verbatim records, tombstone-free "gone" markers,
// resets, and strings that need escaping.
TEST(protocol, serialized_pull_result_reads_back_as_the_encoded_one) {
    pull_result r;
    r.cursor = "djEu\"quoted\"\\cursor";
    r.complete = false;
    r.server_clock = hlc{1764316800000, 3, "srv"};
    r.reset = true;
    r.reset_reason = "scope_changed";
    record_state parsed;
    parsed.collection = "person";
    parsed.id = *uuid::parse("01928f3e-7a00-7000-8000-000000000001");
    parsed.fields = json::object{{"name", "张三\n\"引号\""}, {"_deleted", false}, {"n", 3}};
    parsed.clocks = json::object{{"name", "1764316800000:0:t1"}};
    record_state raw = parsed; // as the engine writes it from a stored row (raw_json)
    raw.id = *uuid::parse("01928f3e-7a00-7000-8000-000000000002");
    append_change(r.changes_json, raw.collection, raw.id, false, json::serialize(raw.fields),
                  json::serialize(raw.clocks));
    r.raw_count = 1;
    record_state gone;
    gone.collection = "home_visit";
    gone.id = *uuid::parse("01928f3e-7a00-7000-8000-000000000003");
    gone.gone = true;
    r.changes = {parsed, gone};

    auto text = serialize(r);
    auto back = decode_pull_result(json::parse(text));
    ASSERT_TRUE(back) << text;
    ASSERT_EQ(back->changes.size(), 3u);
    EXPECT_EQ(back->changes[0].id, raw.id); // the verbatim text comes first
    EXPECT_EQ(back->changes[0].fields, parsed.fields);
    EXPECT_EQ(back->changes[0].clocks, parsed.clocks);
    EXPECT_EQ(back->changes[1].fields, parsed.fields);
    EXPECT_TRUE(back->changes[2].gone);
    EXPECT_EQ(back->cursor, r.cursor);
    EXPECT_TRUE(back->reset);
    EXPECT_EQ(back->reset_reason, "scope_changed");

    pull_result as_encoded = r;
    as_encoded.changes_json.clear();
    as_encoded.raw_count = 0;
    as_encoded.changes = {raw, parsed, gone};
    EXPECT_EQ(json::parse(text), encode(as_encoded));

    // A collection name that needs escaping is escaped.
    pull_result odd = r;
    odd.changes.clear();
    odd.changes_json.clear();
    append_change(odd.changes_json, "we\"ird", raw.id, true, {}, {});
    odd.raw_count = 1;
    auto odd_back = decode_pull_result(json::parse(serialize(odd)));
    ASSERT_TRUE(odd_back);
    EXPECT_EQ(odd_back->changes.at(0).collection, "we\"ird");

    r.reset = false;
    r.complete = true;
    r.changes.clear();
    r.changes_json.clear();
    r.raw_count = 0;
    EXPECT_EQ(json::parse(serialize(r)), encode(r));
}

TEST(protocol, shared_clocks_give_every_field_its_clock_back) {
    // A new record: every field has the same clock, stored and pulled as one entry.
    json::object fields{{"name", "张三"}, {"count", 2}, {"township", "t1"}};
    json::object clocks{{"name", "5:0:tab-a"}, {"count", "5:0:tab-a"}, {"township", "5:0:tab-a"}};
    auto shared = share_clocks(clocks);
    EXPECT_EQ(shared, R"({"*":"5:0:tab-a"})");
    auto back = json::parse(shared).as_object();
    expand_clocks(back, fields);
    EXPECT_EQ(back, clocks);

    // An edited record: the most common clock is shared, the others stay per field.
    clocks["count"] = "9:1:tab-b";
    fields["_deleted"] = false;
    clocks["_deleted"] = "9:1:tab-b";
    fields["note"] = nullptr;
    clocks["note"] = "7:0:tab-a";
    shared = share_clocks(clocks);
    back = json::parse(shared).as_object();
    EXPECT_EQ(back.size(), 4u); // "*" (name, township) + count, _deleted, note
    EXPECT_EQ(back.at("*"), "5:0:tab-a");
    expand_clocks(back, fields);
    EXPECT_EQ(back, clocks);
    EXPECT_EQ(json::parse(expanded_clocks_text(json::serialize(fields), shared)), clocks);

    // No clock shared by two fields: kept as it is; and the per-field form is still read.
    json::object distinct{{"name", "1:0:a"}, {"count", "2:0:a"}};
    EXPECT_EQ(json::parse(share_clocks(distinct)), distinct);
    auto same = distinct;
    expand_clocks(same, fields);
    EXPECT_EQ(same, distinct);
    EXPECT_EQ(expanded_clocks_text(json::serialize(fields), json::serialize(distinct)),
              json::serialize(distinct));
}

TEST(protocol, an_older_app_gets_each_stored_field_its_clock_whatever_the_values_hold) {
    // For a client that did not ask for shared clocks the server expands them from the stored
    // texts without parsing the values: values that look like JSON structure must not confuse it.
    const char* records[] = {
        R"({"name":"张三","count":2,"township":"t1"})",
        R"({"note":"a \"quoted\" {brace}, [bracket]: and \\ back","n":null,"b":true})",
        R"({"location":{"lat":31.1,"lon":108.3,"name":"x"},"list":[{"a":"}"},"],",[]],"z":-1.5E3})",
        R"({})",
        R"( { "spaced" : "v" , "other" : { "inner" : "w" } } )",
    };
    for (const char* text : records) {
        auto fields = json::parse(text).as_object();
        // Every field on the shared clock, one with its own, and a clock of no stored field.
        json::object clocks{{"*", "5:0:tab-a"}, {"gone_field", "1:0:tab-z"}};
        if (!fields.empty())
            clocks[fields.begin()->key()] = "7:1:tab-b";
        auto expected = clocks;
        expand_clocks(expected, fields);
        auto got = expanded_clocks_text(text, json::serialize(clocks));
        EXPECT_EQ(json::parse(got).as_object(), expected) << text << " -> " << got;
        // The stored text of a record written before clocks were shared passes unchanged.
        auto per_field = json::serialize(expected);
        EXPECT_EQ(expanded_clocks_text(text, per_field), per_field);
    }
}

TEST(protocol, a_pull_asks_for_shared_clocks_only_when_the_client_reads_them) {
    auto plain = decode_pull(json::parse(R"({"cursor": null, "limit": 10})"));
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->shared_clocks); // an older app
    auto shared = decode_pull(json::parse(R"({"limit": 10, "shared_clocks": true})"));
    ASSERT_TRUE(shared);
    EXPECT_TRUE(shared->shared_clocks);
    EXPECT_TRUE(decode_pull(encode(*shared))->shared_clocks);
    std::string why;
    EXPECT_FALSE(decode_pull(json::parse(R"({"shared_clocks": "yes"})"), &why));
    EXPECT_NE(why.find("shared_clocks"), std::string::npos);

    // A pulled change in the shared form reads back with one clock per field.
    auto res = decode_pull_result(json::parse(
        R"({"changes": [{"collection": "item", "id": "019b0124-4990-702a-a342-b68f2f83087b",
            "fields": {"name": "张三", "count": 2}, "clocks": {"*": "5:0:tab-a", "count": "6:0:b"}}],
            "cursor": "c", "complete": true, "server_clock": "7:0:srv"})"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->changes.at(0).clocks, (json::object{{"name", "5:0:tab-a"}, {"count", "6:0:b"}}));
}

// Stored texts are written piecewise (append_json_string, append_json) and must read back, and
// hash, exactly as Boost.JSON's own serialisation would write them.
TEST(protocol, texts_written_piecewise_match_boost_json_byte_for_byte) {
    const std::vector<std::string> texts = {"",
                                            "plain ascii",
                                            "张三 入户走访：家中两人",
                                            "quote \" backslash \\ slash /",
                                            "tab\tnew line\nreturn\r",
                                            std::string("nul \0 and \x01 \x1f", 13),
                                            "del \x7f",
                                            "\xff\xfe not UTF-8",
                                            "emoji 😀",
                                            "\u2028 line separator"};
    for (const auto& t : texts) {
        std::string out;
        append_json_string(out, t);
        EXPECT_EQ(out, json::serialize(json::string_view(t))) << t;
        std::string via_value;
        append_json(via_value, json::value(json::string_view(t)));
        EXPECT_EQ(via_value, out) << t;
    }
}

} // namespace
} // namespace fieldsync
