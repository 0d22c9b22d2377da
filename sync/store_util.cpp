#include "sync/store_util.hpp"

#include <boost/json/parse.hpp>

namespace fieldsync {

boost::json::object parse_object(std::string_view text, boost::json::storage_ptr sp) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, sp);
    if (ec || !v.is_object())
        return boost::json::object(sp);
    return std::move(v.as_object());
}

std::optional<std::string> meta_text(sql::connection& c, std::string_view key) {
    auto s = c.cached("SELECT value FROM meta WHERE key = ?");
    s->bind_all(key);
    if (!s->step())
        return std::nullopt;
    return std::string(s->text(0));
}

std::int64_t meta_int(sql::connection& c, std::string_view key, std::int64_t fallback) {
    auto s = c.cached("SELECT value FROM meta WHERE key = ?");
    s->bind_all(key);
    return s->step() ? s->int64(0) : fallback;
}

namespace {
constexpr const char* upsert = "INSERT INTO meta(key, value) VALUES(?, ?) "
                               "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
}

void meta_set(sql::connection& c, std::string_view key, std::string_view value) {
    auto s = c.cached(upsert);
    s->bind_all(key, value);
    s->run();
}

void meta_set(sql::connection& c, std::string_view key, std::int64_t value) {
    auto s = c.cached(upsert);
    s->bind_all(key, value);
    s->run();
}

} // namespace fieldsync
