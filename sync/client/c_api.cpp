// The C API over sync_client. Every entry point catches everything: no C++ exception may cross
// into a JNI or Swift caller.
#include "sync/client/fieldsync_client.h"
#include "sync/client/sync_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <cstring>

namespace json = boost::json;
using namespace fieldsync;
using namespace fieldsync::client;

struct fieldsync_client {
    std::unique_ptr<sync_client> impl;
};

namespace {

char* dup(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p)
        std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

int fail(char** error, int code, const std::string& message) {
    if (error)
        *error = dup(message);
    return code;
}

int from_errc(const boost::system::error_code& ec) {
    if (ec == errc::invalid_argument)
        return FIELDSYNC_INVALID_ARGUMENT;
    if (ec == errc::not_found)
        return FIELDSYNC_NOT_FOUND;
    if (ec == errc::unauthorized)
        return FIELDSYNC_UNAUTHORIZED;
    if (ec == errc::device_revoked)
        return FIELDSYNC_REVOKED;
    if (ec == errc::rate_limited)
        return FIELDSYNC_RATE_LIMITED;
    if (ec == errc::unsupported)
        return FIELDSYNC_OFFLINE;
    return FIELDSYNC_INTERNAL;
}

std::optional<json::object> parse_object(const char* text) {
    if (!text)
        return json::object{};
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object())
        return std::nullopt;
    return v.as_object();
}

std::int64_t int_opt(const json::object& o, const char* k, std::int64_t def) {
    const auto* v = o.if_contains(k);
    return v && v->is_int64() ? v->as_int64() : def;
}

std::string str_opt(const json::object& o, const char* k) {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

options make_options(const char* state_dir, const json::object& o) {
    options opts;
    opts.state_dir = state_dir;
    opts.ca_file = str_opt(o, "ca_file");
    opts.backoff.initial = std::chrono::milliseconds(int_opt(o, "backoff_initial_ms", 1000));
    opts.backoff.max = std::chrono::milliseconds(int_opt(o, "backoff_max_ms", 300000));
    opts.backoff.max_attempts = static_cast<int>(int_opt(o, "max_attempts", 8));
    opts.timeout = std::chrono::milliseconds(int_opt(o, "timeout_ms", 30000));
    opts.push_batch =
        static_cast<std::size_t>(std::max<std::int64_t>(1, int_opt(o, "push_batch", 200)));
    opts.pull_limit =
        static_cast<std::uint32_t>(std::max<std::int64_t>(1, int_opt(o, "pull_limit", 500)));
    return opts;
}

template <class F>
int guarded(char** error, F f) {
    try {
        return f();
    } catch (const std::exception& e) {
        return fail(error, FIELDSYNC_INTERNAL, e.what());
    } catch (...) {
        return fail(error, FIELDSYNC_INTERNAL, "unknown failure");
    }
}

} // namespace

extern "C" {

int fieldsync_client_enrol(const char* state_dir, const char* server_url, const char* code,
                           const char* options_json, fieldsync_client** out, char** error) {
    return guarded(error, [&] {
        if (!state_dir || !server_url || !code || !out)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT,
                        "state_dir, server, code and out are required");
        auto o = parse_object(options_json);
        if (!o)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "options are not a JSON object");
        std::string why;
        auto c = sync_client::enrol(make_options(state_dir, *o), server_url, code,
                                    str_opt(*o, "pin"), str_opt(*o, "label"), &why);
        if (!c)
            return fail(error, from_errc(c.error()), why);
        *out = new fieldsync_client{std::move(*c)};
        return static_cast<int>(FIELDSYNC_OK);
    });
}

int fieldsync_client_open(const char* state_dir, const char* options_json, fieldsync_client** out,
                          char** error) {
    return guarded(error, [&] {
        if (!state_dir || !out)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "state_dir and out are required");
        auto o = parse_object(options_json);
        if (!o)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "options are not a JSON object");
        std::string why;
        auto c = sync_client::open(make_options(state_dir, *o), &why);
        if (!c)
            return fail(error, from_errc(c.error()), why);
        *out = new fieldsync_client{std::move(*c)};
        return static_cast<int>(FIELDSYNC_OK);
    });
}

void fieldsync_client_close(fieldsync_client* c) {
    delete c;
}

int fieldsync_client_create(fieldsync_client* c, const char* collection, const char* fields_json,
                            char** id_out, char** error) {
    return guarded(error, [&] {
        if (!c || !collection || !fields_json)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT,
                        "client, collection and fields are required");
        auto o = parse_object(fields_json);
        if (!o)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "fields are not a JSON object");
        auto id = c->impl->create(collection, *o);
        if (!id)
            return fail(error, from_errc(id.error()), "create: " + id.error().message());
        if (id_out)
            *id_out = dup(id->to_string());
        return static_cast<int>(FIELDSYNC_OK);
    });
}

int fieldsync_client_update(fieldsync_client* c, const char* id, const char* fields_json,
                            char** error) {
    return guarded(error, [&] {
        auto u = id ? uuid::parse(id) : std::nullopt;
        auto o = fields_json ? parse_object(fields_json) : std::nullopt;
        if (!c || !u || !o)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT,
                        "a client, a record id and a JSON object are required");
        auto r = c->impl->update(*u, *o);
        if (!r)
            return fail(error, from_errc(r.error()), "update: " + r.error().message());
        return static_cast<int>(FIELDSYNC_OK);
    });
}

int fieldsync_client_remove(fieldsync_client* c, const char* id, char** error) {
    return guarded(error, [&] {
        auto u = id ? uuid::parse(id) : std::nullopt;
        if (!c || !u)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "a client and a record id are required");
        auto r = c->impl->remove(*u);
        if (!r)
            return fail(error, from_errc(r.error()), "remove: " + r.error().message());
        return static_cast<int>(FIELDSYNC_OK);
    });
}

int fieldsync_client_sync(fieldsync_client* c, char** report_json, char** error) {
    return guarded(error, [&] {
        if (!c)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "no client");
        auto r = c->impl->sync();
        if (report_json)
            *report_json = dup(json::serialize(json::object{{"outcome", to_string(r.outcome)},
                                                            {"pushed", r.pushed},
                                                            {"applied", r.applied},
                                                            {"rejected", r.rejected},
                                                            {"conflicts", r.conflicts},
                                                            {"restamped", r.restamped},
                                                            {"pulled", r.pulled},
                                                            {"resets", r.resets},
                                                            {"reset_reason", r.reset_reason},
                                                            {"retries", r.retries},
                                                            {"error", r.error}}));
        switch (r.outcome) {
        case sync_outcome::complete:
            return static_cast<int>(FIELDSYNC_OK);
        case sync_outcome::offline:
            return fail(error, FIELDSYNC_OFFLINE, r.error);
        case sync_outcome::revoked:
            return fail(error, FIELDSYNC_REVOKED, r.error);
        case sync_outcome::unauthorized:
            return fail(error, FIELDSYNC_UNAUTHORIZED, r.error);
        case sync_outcome::user_disabled:
        case sync_outcome::refused:
            break;
        }
        return fail(error, FIELDSYNC_REFUSED, r.error);
    });
}

int fieldsync_client_records(fieldsync_client* c, const char* collection, char** json_out,
                             char** error) {
    return guarded(error, [&] {
        if (!c || !json_out)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "client and output are required");
        json::array out;
        for (const auto& r : c->impl->records(collection ? collection : "")) {
            out.push_back(json::object{{"id", r.id.to_string()},
                                       {"collection", r.collection},
                                       {"status", to_string(r.state)},
                                       {"field", r.field},
                                       {"code", r.code},
                                       {"message", r.message},
                                       {"fields", r.fields}});
        }
        *json_out = dup(json::serialize(out));
        return static_cast<int>(FIELDSYNC_OK);
    });
}

int fieldsync_client_status(fieldsync_client* c, char** json_out, char** error) {
    return guarded(error, [&] {
        if (!c || !json_out)
            return fail(error, FIELDSYNC_INVALID_ARGUMENT, "client and output are required");
        auto n = c->impl->counts();
        *json_out = dup(json::serialize(json::object{{"records", n.records},
                                                     {"pending", n.pending},
                                                     {"synced", n.synced},
                                                     {"rejected", n.rejected},
                                                     {"conflicts", n.conflicts},
                                                     {"returned", n.returned},
                                                     {"outbox", n.outbox},
                                                     {"device", c->impl->identity().device},
                                                     {"enrolled", c->impl->enrolled()}}));
        return static_cast<int>(FIELDSYNC_OK);
    });
}

void fieldsync_string_free(char* s) {
    std::free(s);
}

} // extern "C"
