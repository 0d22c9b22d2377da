#include "sync/protocol.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

namespace fieldsync {

namespace json = boost::json;

bool scope::contains(std::string_view t, std::string_view v) const {
    if (whole_district())
        return true;
    if (t != township)
        return false;
    if (villages.empty())
        return true;
    return std::find(villages.begin(), villages.end(), v) != villages.end();
}

std::string scope::fingerprint() const {
    std::string text = township + "|";
    auto sorted = villages;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& v : sorted)
        text += v + ",";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < 6; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string_view to_string(ack_status s) noexcept {
    switch (s) {
    case ack_status::applied:
        return "applied";
    case ack_status::rejected:
        return "rejected";
    case ack_status::gap:
        return "gap";
    }
    return "unknown";
}

namespace {

constexpr std::size_t max_mutations_per_push = 10000;
constexpr std::uint32_t max_pull_limit = 5000;
// Mutation numbers stay exact in every JSON reader (2^53 - 1) and in SQLite's signed integers.
constexpr std::uint64_t max_mutation_seq = (std::uint64_t{1} << 53) - 1;

template <class T>
result<T> bad(std::string* why, std::string text) {
    if (why)
        *why = std::move(text);
    return errc::invalid_argument;
}

std::optional<std::uint64_t> positive(const json::value* v) {
    if (!v)
        return std::nullopt;
    if (v->is_uint64())
        return v->as_uint64() ? std::optional(v->as_uint64()) : std::nullopt;
    if (v->is_int64() && v->as_int64() > 0)
        return static_cast<std::uint64_t>(v->as_int64());
    return std::nullopt;
}

// Reads a mutation's content; on trouble marks it malformed instead of failing the push. With
// `own` (the same object, given up by the caller) the field values are moved out of it, not
// copied — only once every field was read, so that a malformed mutation keeps its payload whole.
void read_mutation_body(const json::object& o, mutation& m, json::object* own = nullptr) {
    auto malformed = [&](const char* code, std::string_view field = {}) {
        m.malformed_code = code;
        m.malformed_field = std::string(field);
        m.raw = o;
        m.fields.clear();
    };
    auto* coll = o.if_contains("collection");
    if (!coll || !coll->is_string())
        return malformed("unknown_collection");
    m.collection = std::string(coll->as_string());
    auto* id = o.if_contains("id");
    std::optional<uuid> u;
    if (id && id->is_string())
        u = uuid::parse(id->as_string());
    if (!u)
        return malformed("bad_record_id");
    m.id = *u;
    auto* fields = o.if_contains("fields");
    if (!fields || !fields->is_object() || fields->as_object().empty())
        return malformed("empty_mutation");
    // A clock and base given at the mutation are those of every field that gives none.
    std::optional<hlc> shared_clock, shared_base;
    if (auto* c = o.if_contains("clock")) {
        shared_clock = c->is_string() ? hlc::parse(c->as_string()) : std::nullopt;
        if (!shared_clock)
            return malformed("bad_clock");
    }
    if (auto* b = o.if_contains("base"); b && !b->is_null()) {
        shared_base = b->is_string() ? hlc::parse(b->as_string()) : std::nullopt;
        if (!shared_base)
            return malformed("bad_clock");
    }
    struct clocks {
        const json::value* value;
        hlc clock;
        std::optional<hlc> base;
    };
    std::vector<clocks> read;
    read.reserve(fields->as_object().size());
    for (const auto& kv : fields->as_object()) {
        if (!kv.value().is_object())
            return malformed("bad_clock", kv.key());
        const auto& fo = kv.value().as_object();
        auto* value = fo.if_contains("value");
        auto* clock = fo.if_contains("clock");
        if (!value)
            return malformed("bad_clock", kv.key());
        std::optional<hlc> c = shared_clock;
        if (clock)
            c = clock->is_string() ? hlc::parse(clock->as_string()) : std::nullopt;
        if (!c)
            return malformed("bad_clock", kv.key());
        clocks k{value, std::move(*c), shared_base};
        if (auto* base = fo.if_contains("base")) {
            k.base = std::nullopt;
            if (!base->is_null()) {
                auto b = base->is_string() ? hlc::parse(base->as_string()) : std::nullopt;
                if (!b)
                    return malformed("bad_clock", kv.key());
                k.base = std::move(*b);
            }
        }
        read.push_back(std::move(k));
    }
    m.fields.reserve(read.size());
    std::size_t i = 0;
    for (const auto& kv : fields->as_object()) {
        auto& k = read[i++];
        // `own` is the same object as `o`, not const: its values may be moved.
        m.fields.emplace_back(std::string(kv.key()),
                              own ? field_write{std::move(*const_cast<json::value*>(k.value)),
                                                std::move(k.clock), std::move(k.base)}
                                  : field_write{*k.value, std::move(k.clock), std::move(k.base)});
    }
}

// A mutation as a push carries it: a clock (and a base) shared by all its fields — a tablet
// stamps one save with one clock — is written once, at the mutation.
json::value encode_for_push(const mutation& m) {
    if (!m.malformed_code.empty() || m.fields.empty())
        return encode(m);
    const auto& first = m.fields.front().second;
    bool one_clock = true, one_base = true;
    for (const auto& [name, w] : m.fields) {
        one_clock = one_clock && w.clock == first.clock;
        one_base = one_base && w.base == first.base;
    }
    json::object fields;
    fields.reserve(m.fields.size());
    for (const auto& [name, w] : m.fields) {
        json::object f{{"value", w.value}};
        if (!one_clock)
            f["clock"] = w.clock.to_string();
        if (!one_base && w.base)
            f["base"] = w.base->to_string();
        fields[name] = std::move(f);
    }
    json::object o{{"seq", m.seq}, {"collection", m.collection}, {"id", m.id.to_string()}};
    if (one_clock)
        o["clock"] = first.clock.to_string();
    if (one_base && first.base)
        o["base"] = first.base->to_string();
    o["fields"] = std::move(fields);
    return o;
}

std::optional<hlc> clock_of(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    if (!v || !v->is_string())
        return std::nullopt;
    return hlc::parse(v->as_string());
}

} // namespace

namespace {
result<push_request> decode_push_from(const json::value& v, std::string* why, bool own);
} // namespace

result<push_request> decode_push(const json::value& v, std::string* why) {
    return decode_push_from(v, why, false);
}

result<push_request> decode_push(json::value&& v, std::string* why) {
    return decode_push_from(v, why, true);
}

namespace {
// `own`: `v` is the caller's to give up (decode_push(json::value&&)); values are moved out.
result<push_request> decode_push_from(const json::value& v, std::string* why, bool own) {
    if (!v.is_object())
        return bad<push_request>(why, "the push body must be a JSON object");
    const auto& o = v.as_object();
    push_request r;
    auto* sv = o.if_contains("schema_version");
    if (!sv || !sv->is_int64() || sv->as_int64() < 1 || sv->as_int64() > 1000000)
        return bad<push_request>(why, "\"schema_version\" must be a positive integer");
    r.schema_version = static_cast<int>(sv->as_int64());
    auto* ms = o.if_contains("mutations");
    if (!ms || !ms->is_array())
        return bad<push_request>(why, "\"mutations\" must be an array");
    const auto& arr = ms->as_array();
    if (arr.size() > max_mutations_per_push)
        return bad<push_request>(why, "at most " + std::to_string(max_mutations_per_push) +
                                          " mutations per push");
    r.mutations.reserve(arr.size());
    std::uint64_t prev = 0;
    for (const auto& e : arr) {
        if (!e.is_object())
            return bad<push_request>(why, "each mutation must be an object");
        mutation m;
        auto seq = positive(e.as_object().if_contains("seq"));
        if (!seq || *seq > max_mutation_seq)
            return bad<push_request>(why, "each mutation needs \"seq\", a positive integer "
                                          "below 2^53");
        if (*seq <= prev)
            return bad<push_request>(why, "mutation numbers must increase within a push");
        prev = m.seq = *seq;
        // The object is not const when `own`: decode_push(json::value&&) was given it.
        read_mutation_body(e.as_object(), m,
                           own ? const_cast<json::object*>(&e.as_object()) : nullptr);
        r.mutations.push_back(std::move(m));
    }
    return r;
}
} // namespace

result<pull_request> decode_pull(const json::value& v, std::string* why) {
    if (!v.is_object())
        return bad<pull_request>(why, "the pull body must be a JSON object");
    const auto& o = v.as_object();
    pull_request r;
    if (auto* c = o.if_contains("cursor"); c && !c->is_null()) {
        if (!c->is_string() || c->as_string().size() > 512)
            return bad<pull_request>(why, "\"cursor\" must be the string a pull returned");
        r.cursor = std::string(c->as_string());
    }
    if (auto* l = o.if_contains("limit"); l && !l->is_null()) {
        auto n = positive(l);
        if (!n)
            return bad<pull_request>(why, "\"limit\" must be a positive integer");
        r.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(*n, max_pull_limit));
    }
    if (auto* sc = o.if_contains("shared_clocks"); sc && !sc->is_null()) {
        if (!sc->is_bool())
            return bad<pull_request>(why, "\"shared_clocks\" must be true or false");
        r.shared_clocks = sc->as_bool();
    }
    return r;
}

json::value encode(const mutation& m) {
    if (!m.malformed_code.empty())
        return m.raw;
    json::object fields;
    for (const auto& [name, w] : m.fields) {
        json::object f;
        f["value"] = w.value;
        f["clock"] = w.clock.to_string();
        f["base"] = w.base ? json::value(w.base->to_string()) : json::value(nullptr);
        fields[name] = std::move(f);
    }
    return json::object{{"seq", m.seq},
                        {"collection", m.collection},
                        {"id", m.id.to_string()},
                        {"fields", std::move(fields)}};
}

json::value encode(const push_request& r) {
    json::array ms;
    ms.reserve(r.mutations.size());
    for (const auto& m : r.mutations)
        ms.push_back(encode_for_push(m));
    return json::object{{"schema_version", r.schema_version}, {"mutations", std::move(ms)}};
}

json::value encode(const pull_request& r) {
    json::object o{{"limit", r.limit}};
    o["cursor"] = r.cursor.empty() ? json::value(nullptr) : json::value(r.cursor);
    if (r.shared_clocks)
        o["shared_clocks"] = true;
    return o;
}

void append_json_string(std::string& out, std::string_view text) {
    // Copied as it is unless something in it needs escaping (a quote, a backslash, a control
    // character): Boost.JSON writes every other byte unchanged, UTF-8 (Chinese text) included.
    bool plain = std::all_of(text.begin(), text.end(), [](char ch) {
        return static_cast<unsigned char>(ch) >= 0x20 && ch != '"' && ch != '\\';
    });
    if (!plain) {
        out += json::serialize(json::string_view(text.data(), text.size()));
        return;
    }
    out += '"';
    out += text;
    out += '"';
}

void append_json(std::string& out, const json::value& v) {
    if (v.is_string())
        return append_json_string(out, v.get_string());
    if (v.is_null()) {
        out += "null";
        return;
    }
    json::serializer sr;
    sr.reset(&v);
    char buf[256];
    while (!sr.done())
        out += sr.read(buf, sizeof buf);
}

std::string share_clocks(std::span<const std::pair<std::string_view, std::string_view>> clocks) {
    // The most common clock (a record has a few dozen fields at most).
    std::string_view common;
    std::size_t best = 1;
    for (std::size_t i = 0; i < clocks.size(); ++i) {
        std::string_view c = clocks[i].second;
        if (c == common || clocks[i].first == shared_clock_key)
            continue;
        std::size_t n = 0;
        for (std::size_t j = i; j < clocks.size(); ++j)
            n += clocks[j].second == c;
        if (n > best) {
            best = n;
            common = c;
        }
    }
    std::string out;
    out.reserve(16 + (common.empty() ? 0 : common.size()) + (clocks.size() - best) * 48);
    out += '{';
    bool first = true;
    auto entry = [&](std::string_view key, std::string_view clock) {
        if (!first)
            out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        append_json_string(out, clock);
    };
    if (!common.empty())
        entry(shared_clock_key, common);
    for (const auto& [field, clock] : clocks)
        if (common.empty() || clock != common)
            entry(field, clock);
    out += '}';
    return out;
}

std::string share_clocks(const json::object& clocks) {
    std::vector<std::pair<std::string_view, std::string_view>> list;
    list.reserve(clocks.size());
    for (const auto& kv : clocks)
        if (kv.value().is_string() && kv.key() != shared_clock_key)
            list.emplace_back(kv.key(), kv.value().get_string());
    return share_clocks(list);
}

void expand_clocks(json::object& clocks, const json::object& fields) {
    auto it = clocks.find(shared_clock_key);
    if (it == clocks.end())
        return;
    json::value common = std::move(it->value());
    clocks.erase(it);
    for (const auto& kv : fields)
        if (!clocks.contains(kv.key()))
            clocks.emplace(kv.key(), common);
}

namespace {

// Calls f(key) for each key of the top-level JSON object `text` (valid JSON, as stored), without
// building its values. False if `text` is not an object or a key has escapes (then parse it).
template <class F>
bool for_each_top_level_key(std::string_view text, F f) {
    std::size_t i = text.find_first_not_of(" \t\r\n");
    if (i == std::string_view::npos || text[i] != '{')
        return false;
    int depth = 0;
    bool expect_key = false;
    for (; i < text.size(); ++i) {
        const char ch = text[i];
        if (ch == '"') {
            const std::size_t start = ++i;
            bool escaped = false;
            for (; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') {
                    escaped = true;
                    ++i;
                }
            if (i >= text.size())
                return false;
            if (depth == 1 && expect_key) {
                if (escaped)
                    return false;
                f(text.substr(start, i - start));
                expect_key = false;
            }
        } else if (ch == '{' || ch == '[') {
            expect_key = ++depth == 1;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0)
                return true;
        } else if (ch == ',' && depth == 1) {
            expect_key = true;
        }
    }
    return false;
}

} // namespace

std::string expanded_clocks_text(std::string_view fields_json, std::string_view clocks_json) {
    if (clocks_json.find("\"*\"") == std::string_view::npos)
        return std::string(clocks_json);    // one clock per field already
    auto clocks = json::parse(clocks_json); // small: "*" and the fields with their own clock
    auto* o = clocks.if_object();
    const json::value* common = o ? o->if_contains(shared_clock_key) : nullptr;
    if (!common)
        return std::string(clocks_json);
    // Each field of the stored record gets its clock, in the fields' order, without parsing the
    // fields' values: an older app's pull costs a scan of the text, not a parse.
    std::string common_text;
    append_json(common_text, *common);
    std::string out = "{";
    out.reserve(2 * fields_json.size() + 64);
    std::vector<std::string_view> names;
    names.reserve(32);
    const bool scanned = for_each_top_level_key(fields_json, [&](std::string_view name) {
        names.push_back(name);
        if (out.size() > 1)
            out += ',';
        out += '"'; // a key without escapes (else the scan fails): copied as it is
        out += name;
        out += "\":";
        if (const json::value* own = o->if_contains(name))
            append_json(out, *own);
        else
            out += common_text;
    });
    if (!scanned) {
        auto fields = json::parse(fields_json);
        if (!fields.is_object())
            throw std::runtime_error("stored fields are not a JSON object");
        expand_clocks(*o, fields.as_object());
        return json::serialize(clocks);
    }
    for (const auto& kv : *o) // clocks of no stored field (none are written so): kept
        if (kv.key() != shared_clock_key &&
            std::find(names.begin(), names.end(), std::string_view(kv.key())) == names.end()) {
            if (out.size() > 1)
                out += ',';
            append_json_string(out, kv.key());
            out += ':';
            append_json(out, kv.value());
        }
    out += '}';
    return out;
}

json::value encode(const mutation_ack& a) {
    json::object o{{"seq", a.seq}, {"status", to_string(a.status)}};
    if (!a.code.empty())
        o["code"] = a.code;
    if (!a.field.empty())
        o["field"] = a.field;
    if (!a.message.empty())
        o["message"] = a.message;
    if (!a.message_en.empty())
        o["message_en"] = a.message_en;
    if (!a.conflicts.empty()) {
        json::array cs;
        for (const auto& c : a.conflicts)
            cs.push_back(json::object{{"field", c.field}, {"won", c.won}});
        o["conflicts"] = std::move(cs);
    }
    if (!a.kept.empty()) {
        json::array ks;
        for (const auto& k : a.kept)
            ks.push_back(json::string(k));
        o["kept"] = std::move(ks);
    }
    if (!a.restamped.empty()) {
        json::object rs;
        for (const auto& [f, c] : a.restamped)
            rs[f] = c.to_string();
        o["restamped"] = std::move(rs);
    }
    return o;
}

json::value encode(const push_result& r) {
    json::array acks;
    acks.reserve(r.acks.size());
    for (const auto& a : r.acks)
        acks.push_back(encode(a));
    return json::object{{"acks", std::move(acks)},
                        {"last_applied", r.last_applied},
                        {"server_clock", r.server_clock.to_string()}};
}

json::value encode(const pull_result& r) {
    json::array changes;
    changes.reserve(r.changes.size());
    for (const auto& c : r.changes)
        changes.push_back(c.gone ? json::object{{"collection", c.collection},
                                                {"id", c.id.to_string()},
                                                {"gone", true}}
                                 : json::object{{"collection", c.collection},
                                                {"id", c.id.to_string()},
                                                {"fields", c.fields},
                                                {"clocks", c.clocks}});
    json::object o{{"changes", std::move(changes)},
                   {"cursor", r.cursor},
                   {"complete", r.complete},
                   {"server_clock", r.server_clock.to_string()}};
    if (r.reset) {
        o["reset"] = true;
        o["reset_reason"] = r.reset_reason;
    }
    return o;
}

void append_change(std::string& out, std::string_view collection, const uuid& id, bool gone,
                   std::string_view fields_json, std::string_view clocks_json) {
    out += "{\"collection\":";
    append_json_string(out, collection);
    out += ",\"id\":\"";
    id.append_to(out); // hex digits and dashes: nothing to escape
    out += '"';
    if (gone) {
        out += ",\"gone\":true}";
        return;
    }
    out += ",\"fields\":";
    out += fields_json;
    out += ",\"clocks\":";
    out += clocks_json;
    out += '}';
}

std::string serialize(const pull_result& r) {
    auto quoted = [](std::string& out, std::string_view text) {
        out += json::serialize(json::string_view(text.data(), text.size()));
    };
    std::string out;
    std::size_t size = 128 + r.changes_json.size();
    size += 256 * r.changes.size();
    out.reserve(size);
    out += "{\"changes\":[";
    out += r.changes_json;
    bool first = r.changes_json.empty();
    for (const auto& c : r.changes) {
        if (!first)
            out += ',';
        first = false;
        if (c.gone)
            append_change(out, c.collection, c.id, true, {}, {});
        else
            append_change(out, c.collection, c.id, false, json::serialize(c.fields),
                          json::serialize(c.clocks));
    }
    out += "],\"cursor\":";
    quoted(out, r.cursor);
    out += r.complete ? ",\"complete\":true" : ",\"complete\":false";
    out += ",\"server_clock\":";
    quoted(out, r.server_clock.to_string());
    if (r.reset) {
        out += ",\"reset\":true,\"reset_reason\":";
        quoted(out, r.reset_reason);
    }
    out += '}';
    return out;
}

result<mutation_ack> decode_ack(const json::value& a, std::string* why) {
    if (!a.is_object())
        return bad<mutation_ack>(why, "ack must be an object");
    const auto& ao = a.as_object();
    mutation_ack k;
    auto seq = positive(ao.if_contains("seq"));
    auto* st = ao.if_contains("status");
    if (!seq || !st || !st->is_string())
        return bad<mutation_ack>(why, "ack lacks seq or status");
    k.seq = *seq;
    std::string_view s = st->as_string();
    if (s == "applied")
        k.status = ack_status::applied;
    else if (s == "rejected")
        k.status = ack_status::rejected;
    else if (s == "gap")
        k.status = ack_status::gap;
    else
        return bad<mutation_ack>(why, "unknown ack status");
    auto str = [&](const char* key) {
        auto* x = ao.if_contains(key);
        return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    k.code = str("code");
    k.field = str("field");
    k.message = str("message");
    k.message_en = str("message_en");
    if (auto* cs = ao.if_contains("conflicts"); cs && cs->is_array())
        for (const auto& c : cs->as_array())
            if (c.is_object()) {
                const auto& co = c.as_object();
                auto* f = co.if_contains("field");
                auto* w = co.if_contains("won");
                if (f && f->is_string() && w && w->is_bool())
                    k.conflicts.push_back({std::string(f->as_string()), w->as_bool()});
            }
    if (auto* ks = ao.if_contains("kept"); ks && ks->is_array())
        for (const auto& x : ks->as_array())
            if (x.is_string())
                k.kept.emplace_back(x.as_string());
    if (auto* rs = ao.if_contains("restamped"); rs && rs->is_object())
        for (const auto& kv : rs->as_object())
            if (kv.value().is_string())
                if (auto c = hlc::parse(kv.value().as_string()))
                    k.restamped.emplace_back(std::string(kv.key()), *c);
    return k;
}

result<push_result> decode_push_result(const json::value& v, std::string* why) {
    if (!v.is_object())
        return bad<push_result>(why, "push result must be an object");
    const auto& o = v.as_object();
    push_result r;
    auto* acks = o.if_contains("acks");
    auto last = o.if_contains("last_applied");
    auto clock = clock_of(o, "server_clock");
    if (!acks || !acks->is_array() || !last || !clock ||
        !(last->is_uint64() || (last->is_int64() && last->as_int64() >= 0)))
        return bad<push_result>(why, "push result lacks acks, last_applied or server_clock");
    r.last_applied =
        last->is_uint64() ? last->as_uint64() : static_cast<std::uint64_t>(last->as_int64());
    r.server_clock = *clock;
    for (const auto& a : acks->as_array()) {
        auto k = decode_ack(a, why);
        if (!k)
            return k.error();
        r.acks.push_back(std::move(*k));
    }
    return r;
}

result<pull_result> decode_pull_result(const json::value& v, std::string* why) {
    if (!v.is_object())
        return bad<pull_result>(why, "pull result must be an object");
    const auto& o = v.as_object();
    pull_result r;
    auto* changes = o.if_contains("changes");
    auto* cursor = o.if_contains("cursor");
    auto* complete = o.if_contains("complete");
    auto clock = clock_of(o, "server_clock");
    if (!changes || !changes->is_array() || !cursor || !cursor->is_string() || !complete ||
        !complete->is_bool() || !clock)
        return bad<pull_result>(why, "pull result lacks changes, cursor, complete or clock");
    r.cursor = std::string(cursor->as_string());
    r.complete = complete->as_bool();
    r.server_clock = *clock;
    if (auto* rs = o.if_contains("reset"); rs && rs->is_bool())
        r.reset = rs->as_bool();
    if (auto* rr = o.if_contains("reset_reason"); rr && rr->is_string())
        r.reset_reason = std::string(rr->as_string());
    r.changes.reserve(changes->as_array().size());
    for (const auto& c : changes->as_array()) {
        if (!c.is_object())
            return bad<pull_result>(why, "change must be an object");
        const auto& co = c.as_object();
        auto* coll = co.if_contains("collection");
        auto* id = co.if_contains("id");
        auto* fields = co.if_contains("fields");
        auto* clocks = co.if_contains("clocks");
        std::optional<uuid> u;
        if (id && id->is_string())
            u = uuid::parse(id->as_string());
        if (auto* gone = co.if_contains("gone"); gone && gone->is_bool() && gone->as_bool()) {
            if (!coll || !coll->is_string() || !u)
                return bad<pull_result>(why, "change lacks collection or id");
            record_state g{std::string(coll->as_string()), *u, {}, {}, 0, true};
            r.changes.push_back(std::move(g));
            continue;
        }
        if (!coll || !coll->is_string() || !u || !fields || !fields->is_object() || !clocks ||
            !clocks->is_object())
            return bad<pull_result>(why, "change lacks collection, id, fields or clocks");
        r.changes.push_back(record_state{std::string(coll->as_string()), *u, fields->as_object(),
                                         clocks->as_object(), 0, false});
        expand_clocks(r.changes.back().clocks, r.changes.back().fields);
    }
    return r;
}

} // namespace fieldsync
