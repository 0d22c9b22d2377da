// Every case of tests/data/bad_inputs.json against a real fieldsyncd over TLS: the documented
// answer (status, error code, or the push's rejection code), and nothing changed besides what the
// case names (a quarantined mutation, or one record stored exactly as sent).
#include "server_fixture.hpp"

#include "server/auth.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <map>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
}

// Each character of `text` (all below U+0100) as one byte: how the catalogue spells raw bytes.
std::string latin1_bytes(std::string_view utf8) {
    std::string out;
    for (std::size_t i = 0; i < utf8.size(); ++i) {
        auto c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else {
            out += static_cast<char>(((c & 0x1f) << 6) |
                                     (static_cast<unsigned char>(utf8[++i]) & 0x3f));
        }
    }
    return out;
}

// What a bad input must not change: the records (ids, fields, clocks), their history, conflicts,
// the quarantine, users, tablets and enrolment codes.
struct snapshot {
    std::string records;
    std::int64_t history = 0, conflicts = 0, quarantine = 0, users = 0, devices = 0, codes = 0;
    std::int64_t record_count = 0;
};

class catalogue {
public:
    catalogue()
        : s_([](server::config& cfg) {
              cfg.max_body_bytes = 256 * 1024;
              cfg.header_timeout_ms = 2000;
              cfg.body_timeout_ms = 2000;
          }) {
        for (const char* user : {"fw_a", "fw_a1", "fw_b", "head_a", "admin"})
            logins_[user] = s_.enrol(user);
        // A tablet enrolled with a code that is then used up, and revoked afterwards.
        code_used_ = make_code(s_.dir.path().string(), "fw_a2");
        auto enrolled = s_.client()->post("/v1/enrol", json::value{{"code", code_used_}});
        EXPECT_EQ(enrolled.status, 200u) << enrolled.body;
        logins_["revoked"] = {"fw_a2", std::string(enrolled.json.at("device").as_string()),
                              std::string(enrolled.json.at("token").as_string())};
        auto revoked =
            s_.client()->post("/v1/admin/devices/" + logins_["revoked"].device + "/revoke",
                              json::object{}, logins_["admin"].token);
        EXPECT_EQ(revoked.status, 200u) << revoked.body;
        {
            sql::connection c(s_.dir.file("fieldsync.db"), sql::open_mode::read_write);
            sql::statement st(c.handle(), "INSERT INTO enrolment_codes(code_hash, username, "
                                          "created_ms, expires_ms) VALUES(?, 'fw_a', 1, 2)");
            st.bind_all(auth::sha256_hex(auth::normalize_code(code_expired_)));
            st.run();
        }
        own_id_ = make_record("fw_a", item("own"));
        other_id_ = make_record("fw_b", item("theirs", town_b, village_b1));
        cursor_a_ = pull_cursor("fw_a");
        cursor_b_ = pull_cursor("fw_b");
    }

    std::string make_record(const std::string& user, const json::object& fields) {
        const auto& l = logins_.at(user);
        replica r(":memory:", test_catalog(), l.device);
        auto id = r.create("item", fields);
        EXPECT_TRUE(id);
        auto c = s_.client();
        sync_over(*c, r, l.token);
        return id->to_string();
    }

    std::string pull_cursor(const std::string& user) {
        auto reply = s_.client()->post("/v1/sync/pull", json::object{}, logins_.at(user).token);
        EXPECT_EQ(reply.status, 200u);
        return std::string(reply.json.at("cursor").as_string());
    }

    snapshot take() const {
        snapshot out;
        sql::connection c(s_.dir.file("fieldsync.db"), sql::open_mode::read_only);
        sql::statement r(c.handle(),
                         "SELECT hex(id), fields, clocks, seq FROM records ORDER BY rid");
        while (r.step()) {
            ++out.record_count;
            out.records += std::string(r.text(0)) + std::string(r.text(1)) +
                           std::string(r.text(2)) + std::to_string(r.int64(3)) + "\n";
        }
        auto count = [&](const char* sql_text) {
            sql::statement st(c.handle(), sql_text);
            return st.step() ? st.int64(0) : -1;
        };
        out.history = count("SELECT count(*) FROM history");
        out.conflicts = count("SELECT count(*) FROM conflicts");
        out.quarantine = count("SELECT count(*) FROM quarantine");
        out.users = count("SELECT count(*) FROM users");
        out.devices = count("SELECT count(*) FROM devices WHERE revoked_ms IS NULL");
        out.codes = count("SELECT count(*) FROM enrolment_codes WHERE used_ms IS NULL");
        return out;
    }

    std::int64_t next_seq(const std::string& device) const {
        sql::connection c(s_.dir.file("fieldsync.db"), sql::open_mode::read_only);
        sql::statement st(c.handle(), "SELECT last_seq FROM devices WHERE device = ?");
        st.bind_all(device);
        return st.step() ? st.int64(0) + 1 : 1;
    }

    std::string last_record_fields() const {
        sql::connection c(s_.dir.file("fieldsync.db"), sql::open_mode::read_only);
        sql::statement st(c.handle(), "SELECT fields FROM records ORDER BY rid DESC LIMIT 1");
        return st.step() ? std::string(st.text(0)) : "";
    }

    std::string substitute(std::string text, const tablet_login* who) {
        std::string loose = code_used_;
        replace_all(loose, "-", "");
        for (auto& ch : loose)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::string tampered = from_base64url(cursor_a_);
        auto dot1 = tampered.find('.', 3);
        auto dot2 = tampered.find('.', dot1 + 1);
        tampered.replace(
            dot1 + 1, dot2 - dot1 - 1,
            std::to_string(std::stoll(tampered.substr(dot1 + 1, dot2 - dot1 - 1)) + 1));
        std::string device = who ? who->device : "none";
        std::string seq = who ? std::to_string(next_seq(who->device)) : "1";
        replace_all(text, "\"{seq}\"", seq);
        // "{x<n>}" becomes n times 'x' (oversize fields). A plain scan: <regex> trips GCC 12's
        // -Wmaybe-uninitialized under -O2 with the sanitizers.
        for (std::size_t at = text.find("{x"); at != std::string::npos; at = text.find("{x", at)) {
            std::size_t end = at + 2;
            while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])))
                ++end;
            if (end == at + 2 || end >= text.size() || text[end] != '}') {
                at += 2;
                continue;
            }
            const auto n = std::stoul(text.substr(at + 2, end - at - 2));
            text.replace(at, end + 1 - at, std::string(n, 'x'));
            at += n;
        }
        const std::pair<const char*, std::string> values[] = {
            {"{seq}", seq},
            {"{clock}", std::to_string(system_wall_ms()) + ":0:" + device},
            {"{new_id}", ids_.make(system_wall_ms()).to_string()},
            {"{own_id}", own_id_},
            {"{other_id}", other_id_},
            {"{token}", who ? who->token : ""},
            {"{cursor_a_tampered}", to_base64url(tampered)},
            {"{cursor_a}", cursor_a_},
            {"{cursor_b}", cursor_b_},
            {"{code_used_loose}", loose},
            {"{code_used}", code_used_},
            {"{code_expired}", code_expired_},
        };
        for (const auto& [k, v] : values)
            replace_all(text, k, v);
        return text;
    }

    void run(const json::object& tc) {
        const std::string name(tc.at("name").as_string());
        SCOPED_TRACE(name);
        std::string as = "fw_a";
        if (const auto* a = tc.if_contains("as"))
            as = std::string(a->as_string());
        const tablet_login* who = logins_.count(as) ? &logins_.at(as) : nullptr;
        std::string token = who ? who->token : "";
        if (as == "unknown_token")
            token = "fst_" + std::string(43, 'A');
        if (as == "long_token")
            token = "fst_" + std::string(296, 'A');

        auto text_of = [&](const char* key) {
            return substitute(std::string(tc.at(key).as_string()), who);
        };
        auto parts_of = [&](const char* key) {
            std::string out;
            for (const auto& p : tc.at(key).as_array()) {
                std::string piece = substitute(std::string(p.at(0).as_string()), who);
                for (std::int64_t i = 0; i < p.at(1).as_int64(); ++i)
                    out += piece;
            }
            return out;
        };

        const snapshot before = take();
        auto c = s_.client();
        http_reply reply;
        try {
            if (tc.contains("raw") || tc.contains("raw_latin1") || tc.contains("raw_parts")) {
                c->send_raw(tc.contains("raw")          ? text_of("raw")
                            : tc.contains("raw_latin1") ? latin1_bytes(text_of("raw_latin1"))
                                                        : parts_of("raw_parts"));
                reply = c->read_reply();
            } else if (tc.at("method").as_string() == "GET") {
                reply = c->get(text_of("target"), token);
            } else {
                std::string body;
                if (tc.contains("body"))
                    body = text_of("body");
                else if (tc.contains("body_json"))
                    body = substitute(json::serialize(tc.at("body_json")), who);
                else if (tc.contains("body_latin1"))
                    body = latin1_bytes(text_of("body_latin1"));
                else if (tc.contains("body_parts"))
                    body = parts_of("body_parts");
                std::string type = "application/json";
                if (const auto* t = tc.if_contains("content_type"))
                    type = std::string(t->as_string());
                reply = c->post(text_of("target"), body, token, type);
            }
        } catch (const std::exception& e) {
            ADD_FAILURE() << "no answer: " << e.what();
            return;
        }

        const auto& expect = tc.at("expect");
        if (expect.is_null()) {
            std::cout << "[catalogue] " << name << ": " << reply.status << " "
                      << reply.body.substr(0, 300) << "\n";
        } else {
            const auto& e = expect.as_object();
            EXPECT_EQ(reply.status, e.at("status").to_number<unsigned>()) << reply.body;
            if (reply.status >= 400) {
                // Every error is the documented shape.
                ASSERT_TRUE(reply.json.is_object()) << reply.body;
                EXPECT_TRUE(reply.json.at("error").at("message").is_string()) << reply.body;
            }
            if (const auto* code = e.if_contains("code")) {
                EXPECT_EQ(reply.error_code(), code->as_string()) << reply.body;
            }
            if (const auto* ack = e.if_contains("ack")) {
                ASSERT_TRUE(reply.json.is_object()) << reply.body;
                const auto& acks = reply.json.at("acks").as_array();
                ASSERT_EQ(acks.size(), 1u) << reply.body;
                EXPECT_EQ(acks[0].at("status").as_string(), ack->as_string()) << reply.body;
                if (const auto* code = e.if_contains("ack_code")) {
                    EXPECT_EQ(json::value(acks[0].as_object().if_contains("code")
                                              ? acks[0].at("code")
                                              : json::value()),
                              json::value(*code))
                        << reply.body;
                }
            }
            if (const auto* reset = e.if_contains("reset")) {
                ASSERT_TRUE(reply.json.is_object()) << reply.body;
                EXPECT_EQ(reply.json.at("reset"), json::value(true)) << reply.body;
                EXPECT_EQ(reply.json.at("reset_reason").as_string(), reset->as_string());
            }
            if (const auto* excludes = e.if_contains("body_excludes")) {
                for (const auto& x : excludes->as_array()) {
                    // Ids appear in answers as text; the other township's must not.
                    auto needle = substitute(std::string(x.as_string()), who);
                    EXPECT_EQ(reply.body.find(needle), std::string::npos) << reply.body;
                }
            }
        }
        if (tc.contains("closes")) {
            EXPECT_TRUE(c->wait_closed());
        }

        const snapshot after = take();
        std::string changes = "nothing";
        if (const auto* ch = tc.if_contains("changes"))
            changes = std::string(ch->as_string());
        EXPECT_EQ(after.users, before.users);
        EXPECT_EQ(after.devices, before.devices);
        EXPECT_EQ(after.codes, before.codes);
        EXPECT_EQ(after.conflicts, before.conflicts);
        EXPECT_EQ(after.quarantine, before.quarantine + (changes == "quarantine" ? 1 : 0));
        if (changes == "record") {
            EXPECT_EQ(after.record_count, before.record_count + 1);
            EXPECT_EQ(after.history, before.history + 1);
            const auto& stored = tc.at("stored");
            auto fields = json::parse(last_record_fields());
            const auto* got = fields.as_object().if_contains(stored.at("field").as_string());
            ASSERT_NE(got, nullptr) << fields;
            EXPECT_EQ(*got, stored.at("value")) << "stored differently from what was sent";
        } else {
            EXPECT_EQ(after.records, before.records) << "records changed";
            EXPECT_EQ(after.history, before.history);
        }
    }

    server_fixture s_;
    std::map<std::string, tablet_login> logins_;
    std::string code_used_, code_expired_ = "XPRD-XPRD-XPRD";
    std::string own_id_, other_id_, cursor_a_, cursor_b_;
    uuid_v7_generator ids_;
};

json::array load_cases() {
    std::ifstream in(std::string(FIELDSYNC_TEST_DATA) + "/bad_inputs.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return json::parse(text).at("cases").as_array();
}

TEST(bad_input_catalogue, every_case_gets_its_answer_and_changes_nothing_else) {
    auto cases = load_cases();
    ASSERT_GT(cases.size(), 100u);
    std::set<std::string> names;
    catalogue cat;
    for (const auto& tc : cases) {
        EXPECT_TRUE(names.insert(std::string(tc.at("name").as_string())).second)
            << "duplicate case name " << tc.at("name");
        try {
            cat.run(tc.as_object());
        } catch (const std::exception& e) {
            ADD_FAILURE() << tc.at("name") << ": " << e.what();
        }
    }
    // Still serving: a tablet syncs after all of that.
    EXPECT_EQ(cat.s_.client()->get("/v1/healthz").status, 200u);
    auto fresh = cat.s_.enrol("fw_a");
    replica r(":memory:", test_catalog(), fresh.device);
    ASSERT_TRUE(r.create("item", item("after the catalogue")));
    sync_over(*cat.s_.client(), r, fresh.token);
    EXPECT_EQ(r.pending_count(), 0u);
    EXPECT_EQ(
        cat.s_.count("SELECT count(*) FROM records WHERE created_device = '" + fresh.device + "'"),
        1);
}

} // namespace
} // namespace fieldsync
