#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace fieldsync::testing {

const catalog& test_catalog() {
    static const catalog c = [] {
        std::ifstream in(std::string(FIELDSYNC_TEST_DATA) + "/test_collections.json");
        std::stringstream ss;
        ss << in.rdbuf();
        std::string err;
        auto r = catalog::from_json(ss.str(), &err);
        if (!r)
            throw std::runtime_error("test catalog: " + err);
        return *r;
    }();
    return c;
}

temp_dir::temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("fieldsync-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

principal worker(std::string device, std::string township, std::vector<std::string> villages) {
    return principal{"user-" + device, std::move(device),
                     scope{std::move(township), std::move(villages)}};
}

namespace {
sql::connection open_migrated(const std::string& path) {
    sql::connection c(path, sql::open_mode::read_write_create);
    if (!migrate_server_database(c))
        throw std::runtime_error("migration failed");
    sql::transaction tx(c);
    for (const char* code : {"500101", town_a, town_b, village_a1, village_a2, village_b1})
        engine::put_division(c, code, code);
    tx.commit();
    return c;
}
} // namespace

server_harness::server_harness(const std::string& path, engine_config cfg, wall_clock wall)
    : db(open_migrated(path)), eng(test_catalog(), cfg, db, std::move(wall)) {}

push_result server_harness::push(const principal& who, const push_request& req) {
    sql::transaction tx(db);
    auto r = eng.push(db, who, req);
    tx.commit();
    return r;
}

pull_result server_harness::pull(const principal& who, const pull_request& req) {
    auto r = eng.pull(db, who, req);
    if (!r)
        throw std::runtime_error("pull failed: " + r.error().message());
    return *r;
}

void server_harness::sync(replica& r, const principal& who, std::size_t batch) {
    for (int guard = 0; guard < 10000; ++guard) {
        auto req = r.next_push(batch);
        if (req.mutations.empty())
            break;
        r.apply_push_result(req, push(who, req));
    }
    for (int guard = 0; guard < 10000; ++guard) {
        auto res = pull(who, r.next_pull(7));
        r.apply_pull_result(res);
        if (res.complete)
            break;
    }
}

std::int64_t server_harness::count(std::string_view sql_text) {
    sql::statement s(db.handle(), sql_text);
    return s.step() ? s.int64(0) : -1;
}

boost::json::object item(std::string name, const char* township, const char* village) {
    return boost::json::object{{"township", township}, {"village", village}, {"name", name}};
}

} // namespace fieldsync::testing

namespace fieldsync::testing {

namespace {
boost::json::object stored_column(server_harness& s, const uuid& id, const char* column) {
    sql::statement st(s.db.handle(),
                      std::string("SELECT ") + column + " FROM records WHERE id = ?");
    st.bind(1, id.span());
    if (!st.step())
        return {};
    boost::system::error_code ec;
    auto v = boost::json::parse(st.text(0), ec);
    return !ec && v.is_object() ? v.as_object() : boost::json::object{};
}
} // namespace

boost::json::object stored_fields(server_harness& s, const uuid& id) {
    return stored_column(s, id, "fields");
}

boost::json::object stored_clocks(server_harness& s, const uuid& id) {
    auto clocks = stored_column(s, id, "clocks"); // one clock per field, as tablets read them
    expand_clocks(clocks, stored_fields(s, id));
    return clocks;
}

std::optional<hlc> stored_clock(server_harness& s, const uuid& id, std::string_view field) {
    auto clocks = stored_clocks(s, id);
    const auto* c = clocks.if_contains(field);
    if (!c || !c->is_string())
        return std::nullopt;
    return hlc::parse(c->as_string());
}

std::string to_base64url(std::string_view bytes) {
    std::string out;
    std::uint32_t buf = 0;
    int bits = 0;
    for (unsigned char ch : bytes) {
        buf = buf << 8 | ch;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += base64url_alphabet[(buf >> bits) & 63];
        }
    }
    if (bits > 0)
        out += base64url_alphabet[(buf << (6 - bits)) & 63];
    return out;
}

std::string from_base64url(std::string_view text) {
    std::string out;
    std::uint32_t buf = 0;
    int bits = 0;
    for (char ch : text) {
        buf = buf << 6 |
              static_cast<std::uint32_t>(std::strchr(base64url_alphabet, ch) - base64url_alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buf >> bits) & 0xff);
        }
    }
    return out;
}

} // namespace fieldsync::testing
