// Secrets at rest and in the log (issue #8, docs/reliability.md "Security"): a day of use — users
// with passwords, enrolments, device tokens, web logins (right and wrong passwords), pushes of
// persons with ID and phone numbers (some quarantined), review reads, reveals and exports — with
// fieldsyncd's stderr captured. Then the log, the database file, its -wal and every other file
// in the data folder are searched byte for byte for every token, enrolment code, password and
// session cookie; and every table is dumped to check that full ID and phone numbers sit only
// where the record's own data is kept (records, history, conflicts, quarantine).
#include "server/auth.hpp"
#include "server_fixture.hpp"
#include "stderr_capture.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;
namespace fs = std::filesystem;

// A valid GB 11643 ID number: region, birth date, sequence (odd: male), check character.
std::string id_number(const std::string& region, const std::string& birth, int seq) {
    std::string s = region + birth;
    std::string q = std::to_string(seq);
    s += std::string(3 - q.size(), '0') + q;
    static constexpr int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; ++i)
        sum += (s[i] - '0') * weights[i];
    return s + "10X98765432"[sum % 11];
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Every table, every row, every column as text: {table: dump}.
std::map<std::string, std::string> dump_tables(const std::string& db_path) {
    sql::connection c(db_path, sql::open_mode::read_only);
    std::vector<std::string> tables;
    {
        sql::statement s(c.handle(), "SELECT name FROM sqlite_schema WHERE type = 'table'");
        while (s.step())
            tables.emplace_back(s.text(0));
    }
    std::map<std::string, std::string> out;
    for (const auto& t : tables) {
        sqlite3_stmt* s = nullptr;
        std::string q = "SELECT * FROM \"" + t + "\"";
        if (sqlite3_prepare_v2(c.handle(), q.c_str(), -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error("dump " + t);
        std::string text;
        while (sqlite3_step(s) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(s); ++i) {
                const auto* b = sqlite3_column_blob(s, i);
                text.append(b ? static_cast<const char*>(b) : "",
                            static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
                text += '|';
            }
            text += '\n';
        }
        sqlite3_finalize(s);
        out[t] = std::move(text);
    }
    return out;
}

// A raw HTTPS request (the test client has no cookie support).
http_reply raw_request(https_client& c, const std::string& method, const std::string& target,
                       const std::string& body, const std::string& headers) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers;
    if (method == "POST")
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    req += "\r\n" + body;
    c.send_raw(req);
    return c.read_reply();
}

TEST(secrets, no_secret_in_clear_in_the_log_or_the_data_folder) {
    temp_dir logs;
    stderr_capture log(logs.file("fieldsyncd.log"));
    server_fixture server([](server::config& cfg) { cfg.log_requests = true; });
    const std::string data = server.dir.path().string();
    std::vector<std::pair<std::string, std::string>> secrets; // what, value
    auto secret = [&](std::string what, std::string value) {
        secrets.emplace_back(std::move(what), std::move(value));
    };

    // Tablets of every role, enrolled with one-time codes.
    std::map<std::string, tablet_login> t;
    for (const char* u : {"fw_a", "fw_a2", "head_a", "admin"}) {
        auto code = make_code(data, u);
        secret("enrolment code", code);
        secret("enrolment code (typed form)", auth::normalize_code(code));
        auto c = server.client();
        auto r = c->post("/v1/enrol", json::value{{"code", code}, {"label", "tablet"}});
        ASSERT_EQ(r.status, 200u) << r.body;
        t[u] = {u, std::string(r.json.at("device").as_string()),
                std::string(r.json.at("token").as_string())};
        secret("device token", t[u].token);
        secret("device token (without prefix)", t[u].token.substr(4));
    }
    auto c = server.client();
    // Users with passwords through the admin API; two share a password.
    const std::string shared_password = "Shared-Passw0rd-9731";
    const std::string own_password = "Only-Mine-Passw0rd-4410";
    for (auto [name, role, town, password] :
         std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
             {"head_p", "township_head", town_a, shared_password},
             {"head_q", "township_head", town_b, shared_password},
             {"admin_p", "district_admin", "", own_password}}) {
        auto r = c->post(
            "/v1/admin/users",
            json::value{
                {"username", name}, {"role", role}, {"township", town}, {"password", password}},
            t["admin"].token);
        ASSERT_EQ(r.status, 201u) << r.body;
    }
    secret("password", shared_password);
    secret("password", own_password);
    // An enrolment code made through the API and never used; one redeemed.
    for (int i = 0; i < 2; ++i) {
        auto r = c->post("/v1/admin/enrolment-codes", json::value{{"username", "fw_a1"}},
                         t["admin"].token);
        ASSERT_EQ(r.status, 201u) << r.body;
        std::string code(r.json.at("code").as_string());
        secret("enrolment code", code);
        secret("enrolment code (typed form)", auth::normalize_code(code));
        if (i == 0) {
            auto e = server.client()->post("/v1/enrol", json::value{{"code", code}});
            ASSERT_EQ(e.status, 200u);
            secret("device token", std::string(e.json.at("token").as_string()));
        }
    }
    // Failed enrolments (fewer than the free ones, so that the test does not wait).
    for (const char* guess : {"ABCD-EFGH-JKMN", "QQQQ-RRRR-SSSS"}) {
        auto r = server.client()->post("/v1/enrol", json::value{{"code", guess}});
        EXPECT_EQ(r.status, 401u);
        secret("guessed code", std::string(guess).substr(5));
        secret("guessed code (typed form)", auth::normalize_code(guess));
    }

    // Web logins, when the server has them: a right and two wrong passwords.
    std::string cookie_header, csrf;
    {
        std::string wrong = "Wrong-Guess-Passw0rd-1";
        auto bad = raw_request(
            *server.client(), "POST", "/v1/session",
            json::serialize(json::object{{"username", "head_p"}, {"password", wrong}}), "");
        secret("wrong password", wrong);
        auto bad2 = raw_request(
            *server.client(), "POST", "/v1/session",
            json::serialize(json::object{{"username", "nobody"}, {"password", wrong + "x"}}), "");
        secret("wrong password", wrong + "x");
        if (bad.status != 404) {
            EXPECT_EQ(bad.status, 401u) << bad.body;
            EXPECT_EQ(bad2.status, 401u) << bad2.body;
            auto ok = raw_request(*server.client(), "POST", "/v1/session",
                                  json::serialize(json::object{{"username", "head_p"},
                                                               {"password", shared_password}}),
                                  "");
            ASSERT_EQ(ok.status, 200u) << ok.body;
            auto set_cookie = ok.header("Set-Cookie");
            auto eq = set_cookie.find('='), semi = set_cookie.find(';');
            ASSERT_NE(eq, std::string::npos);
            std::string value = set_cookie.substr(eq + 1, semi - eq - 1);
            ASSERT_GE(value.size(), 20u);
            secret("session cookie", value);
            cookie_header = "Cookie: " + set_cookie.substr(0, semi) + "\r\n";
            if (const auto* o = ok.json.if_object())
                if (const auto* x = o->if_contains("csrf_token"); x && x->is_string())
                    csrf = std::string(x->as_string());
        } else {
            std::cout << "secrets: no web login on this server yet; sessions not checked\n";
        }
    }

    // Field work with ID and phone numbers; one person quarantined with a full ID number.
    std::vector<std::string> ids, phones;
    replica tab(":memory:", catalog::builtin(), t["fw_a"].device);
    for (int i = 0; i < 6; ++i) {
        std::string id = id_number("500234", "1985031" + std::to_string(i % 9 + 1), 11 + 2 * i);
        std::string phone = "1389654" + std::to_string(1000 + i);
        ids.push_back(id);
        phones.push_back(phone);
        json::object person{{"township", town_a},
                            {"village", village_a1},
                            {"name", "陈国平" + std::to_string(i)},
                            {"id_number", id},
                            {"disability_cert_no", id + "43"},
                            {"gender", "male"},
                            {"birth_date", "1985-03-1" + std::to_string(i % 9 + 1)},
                            {"disability_category", "physical"},
                            {"disability_grade", i == 5 ? 5 : 3},
                            {"phone", phone}};
        ASSERT_TRUE(tab.create("person", person));
    }
    sync_over(*c, tab, t["fw_a"].token);
    ASSERT_EQ(server.count("SELECT count(*) FROM records WHERE collection = 'person'"), 5);
    ASSERT_EQ(server.count("SELECT count(*) FROM quarantine"), 1);
    // An edit of an ID number: the old and the new value go to the record's history.
    {
        auto list = tab.list("person");
        ASSERT_FALSE(list.empty());
        std::string id = id_number("500234", "19850311", 99);
        ids.push_back(id);
        ASSERT_TRUE(tab.update(
            list[0].id,
            {{"id_number", id}, {"disability_cert_no", id + "43"}, {"birth_date", "1985-03-11"}}));
        sync_over(*c, tab, t["fw_a"].token);
    }

    // Review: listings, history, exports, reveals (logged), quarantine; by token and by cookie.
    std::vector<http_reply> review_answers;
    for (const std::string& target :
         {std::string("/v1/review/records?collection=person&include_deleted=true"),
          std::string("/v1/review/quarantine"), std::string("/v1/review/conflicts"),
          std::string("/v1/review/export?collection=person&format=csv")})
        review_answers.push_back(c->get(target, t["head_a"].token));
    auto persons = c->get("/v1/review/records?collection=person", t["head_a"].token);
    ASSERT_EQ(persons.status, 200u);
    for (const auto& item : persons.json.at("items").as_array()) {
        std::string rid(item.at("id").as_string());
        review_answers.push_back(
            c->get("/v1/review/records/" + rid + "/history", t["head_a"].token));
        auto rv = c->post("/v1/review/records/" + rid + "/reveal",
                          json::value{{"field", "id_number"}}, t["head_a"].token);
        EXPECT_EQ(rv.status, 200u) << rv.body;
    }
    if (!cookie_header.empty()) {
        auto viaweb = raw_request(*server.client(), "GET", "/v1/review/records?collection=person",
                                  "", cookie_header + "X-CSRF-Token: " + csrf + "\r\n");
        EXPECT_EQ(viaweb.status, 200u) << viaweb.body;
        review_answers.push_back(viaweb);
    }
    review_answers.push_back(c->get("/v1/admin/access-log", t["admin"].token));
    for (const auto& a : review_answers) {
        EXPECT_EQ(a.status, 200u) << a.body;
        for (const auto& id : ids)
            EXPECT_EQ(a.body.find(id), std::string::npos) << "a full ID number in " << a.body;
        for (const auto& p : phones)
            EXPECT_EQ(a.body.find(p), std::string::npos) << "a full phone number in " << a.body;
    }

    // Passwords: PBKDF2-HMAC-SHA256 with a per-user salt; the same password, different hashes.
    std::map<std::string, std::string> hashes;
    {
        sql::connection db(server.dir.file("fieldsync.db"), sql::open_mode::read_only);
        sql::statement s(db.handle(), "SELECT username, password_hash FROM users "
                                      "WHERE password_hash IS NOT NULL");
        while (s.step())
            hashes[std::string(s.text(0))] = std::string(s.text(1));
    }
    ASSERT_EQ(hashes.size(), 3u);
    for (const auto& [user, h] : hashes) {
        EXPECT_TRUE(h.starts_with("pbkdf2-sha256$210000$")) << user << ": " << h;
        auto salt = h.substr(21, h.find('$', 21) - 21);
        EXPECT_EQ(salt.size(), 32u) << "16-byte salt";
    }
    EXPECT_NE(hashes["head_p"], hashes["head_q"]) << "same password, same hash: no per-user salt";
    EXPECT_NE(hashes["head_p"].substr(0, 53), hashes["head_q"].substr(0, 53)) << "same salt";
    EXPECT_TRUE(auth::verify_password(shared_password, hashes["head_p"]));
    EXPECT_FALSE(auth::verify_password(shared_password + "!", hashes["head_p"]));

    // The files as the running server left them: the WAL is searched as it is, unmerged.
    log.restore();
    const std::string log_text = log.text();
    ASSERT_NE(log_text.find("\"route\""), std::string::npos) << "the request log was captured";

    // 1. Secrets: nowhere, byte for byte — the log and every file in the data folder.
    std::vector<std::pair<std::string, std::string>> files{{"stderr log", log_text}};
    std::size_t bytes = 0;
    for (const auto& e : fs::recursive_directory_iterator(server.dir.path()))
        if (e.is_regular_file())
            files.emplace_back(e.path().filename().string(), read_all(e.path()));
    bool saw_db = false;
    for (const auto& [name, text] : files) {
        bytes += text.size();
        saw_db |= name == "fieldsync.db";
        for (const auto& [what, value] : secrets)
            EXPECT_EQ(text.find(value), std::string::npos) << what << " in clear in " << name;
    }
    EXPECT_TRUE(saw_db);

    // 2. ID and phone numbers: never in the log; in the database only where the record's own
    // data lives. Other files of the data folder (certificate, key) never have them.
    std::set<std::string> allowed{"records", "history", "conflicts", "quarantine"};
    for (const auto& [name, text] : files) {
        if (name.starts_with("fieldsync.db"))
            continue; // by table, below
        for (const auto& id : ids)
            EXPECT_EQ(text.find(id), std::string::npos) << "an ID number in " << name;
        for (const auto& p : phones)
            EXPECT_EQ(text.find(p), std::string::npos) << "a phone number in " << name;
    }
    auto tables = dump_tables(server.dir.file("fieldsync.db"));
    bool in_records = false, in_quarantine = false, in_history = false;
    for (const auto& [table, text] : tables) {
        for (const auto& id : ids) {
            bool found = text.find(id) != std::string::npos;
            if (!allowed.count(table)) {
                EXPECT_FALSE(found) << "an ID number in table " << table;
            }
            in_records |= found && table == "records";
            in_quarantine |= found && table == "quarantine";
            in_history |= found && table == "history";
        }
        for (const auto& p : phones)
            if (!allowed.count(table)) {
                EXPECT_EQ(text.find(p), std::string::npos) << "a phone number in table " << table;
            }
    }
    EXPECT_TRUE(in_records && in_quarantine && in_history) << "the scan found what it looks for";
    std::cout << "secrets: " << secrets.size() << " secrets, " << ids.size() << " ID numbers, "
              << files.size() << " files (" << bytes << " bytes), " << tables.size()
              << " tables searched\n";
}

} // namespace
} // namespace fieldsync
