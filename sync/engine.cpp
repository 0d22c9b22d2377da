#include "sync/engine.hpp"

#include "schema/migrations.hpp"
#include "schema/rules.hpp"
#include "sync/store_util.hpp"
#include "sync/writer.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_map>

namespace fieldsync {

namespace json = boost::json;

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> b(bytes);
    if (RAND_bytes(b.data(), static_cast<int>(bytes)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return hex(b.data(), b.size());
}

result<void> migrate(sql::connection& c, std::string_view set) {
    const auto& list = migrations(set);
    std::int64_t current = 0;
    {
        sql::statement s(c.handle(), "PRAGMA user_version");
        if (s.step())
            current = s.int64(0);
    }
    if (current > static_cast<std::int64_t>(list.size()))
        return errc::unsupported; // written by a newer fieldsync
    for (const auto& m : list) {
        if (m.version <= current)
            continue;
        sql::transaction tx(c);
        c.exec(m.sql);
        c.exec("PRAGMA user_version = " + std::to_string(m.version));
        tx.commit();
    }
    return {};
}

void sort_keys_into(const json::value& v, std::string& out) {
    switch (v.kind()) {
    case json::kind::object: {
        const auto& o = v.as_object();
        std::vector<std::pair<std::string_view, const json::value*>> kv;
        kv.reserve(o.size());
        for (const auto& e : o)
            kv.emplace_back(e.key(), &e.value());
        std::sort(kv.begin(), kv.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        out += '{';
        bool first = true;
        for (const auto& [k, val] : kv) {
            if (!first)
                out += ',';
            first = false;
            out += json::serialize(json::string(k));
            out += ':';
            sort_keys_into(*val, out);
        }
        out += '}';
        break;
    }
    case json::kind::array: {
        out += '[';
        bool first = true;
        for (const auto& e : v.as_array()) {
            if (!first)
                out += ',';
            first = false;
            sort_keys_into(e, out);
        }
        out += ']';
        break;
    }
    default:
        out += json::serialize(v);
    }
}

std::string_view str_of(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

mutation_ack rejected_ack(std::uint64_t seq, const rejection& r) {
    mutation_ack ack;
    ack.seq = seq;
    ack.status = ack_status::rejected;
    ack.code = r.code;
    ack.field = r.field;
    ack.message = r.message_zh;
    ack.message_en = r.message_en;
    return ack;
}

// One push, write or conflict resolution as the observers see it: on_batch_end when it
// succeeded, on_batch_abort when it left by an exception.
class observer_batch {
public:
    explicit observer_batch(const std::vector<change_observer*>& observers)
        : observers_(observers) {}
    observer_batch(const observer_batch&) = delete;
    observer_batch& operator=(const observer_batch&) = delete;
    ~observer_batch() {
        if (!done_)
            for (auto* o : observers_)
                o->on_batch_abort();
    }
    void end(sql::connection& c) {
        for (auto* o : observers_)
            o->on_batch_end(c);
        done_ = true;
    }

private:
    const std::vector<change_observer*>& observers_;
    bool done_ = false;
};

std::string user_of_device(sql::connection& c, std::string_view device) {
    auto s = c.cached("SELECT user FROM devices WHERE device = ?");
    s->bind_all(device);
    return s->step() ? std::string(s->text(0)) : std::string("unknown");
}

struct stored_record {
    std::int64_t rid = 0;
    std::string collection;
    std::string township;
    std::string village;
    json::object fields;
    json::object clocks;
};

std::optional<stored_record> load_record(sql::connection& c, const uuid& id,
                                         json::storage_ptr sp = {}) {
    auto s = c.cached(
        "SELECT rid, collection, township, village, fields, clocks FROM records WHERE id = ?");
    s->bind_all(id.span());
    if (!s->step())
        return std::nullopt;
    stored_record r;
    r.rid = s->int64(0);
    r.collection = std::string(s->text(1));
    r.township = std::string(s->text(2));
    r.village = std::string(s->text(3));
    r.fields = parse_object(s->text(4), sp);
    r.clocks = parse_object(s->text(5), sp);
    expand_clocks(r.clocks, r.fields);
    return r;
}

const char* base64url_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
    std::string out;
    std::uint32_t buf = 0;
    int bits = 0;
    for (unsigned char ch : in) {
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

std::optional<std::string> unbase64url(std::string_view in) {
    std::string out;
    std::uint32_t buf = 0;
    int bits = 0;
    for (char ch : in) {
        const char* p = std::strchr(base64url_alphabet, ch);
        if (!p || ch == '\0')
            return std::nullopt;
        buf = buf << 6 | static_cast<std::uint32_t>(p - base64url_alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buf >> bits) & 0xff);
        }
    }
    // One spelling per value: no dangling character and no stray bits in the last one (found by
    // fuzz_cursor: a cursor with a character appended was accepted as the same cursor).
    if (bits >= 6 || (buf & ((1u << bits) - 1)) != 0)
        return std::nullopt;
    return out;
}

} // namespace

std::string canonical_json(const json::value& v) {
    std::string out;
    sort_keys_into(v, out);
    return out;
}

// Validation's view of the database, inside the writer's transaction.
class db_references final : public reference_data {
public:
    explicit db_references(sql::connection& c) : c_(c) {}
    // Divisions change only by an administrator's action, never inside a push: one lookup per
    // code and push.
    bool division_exists(std::string_view code) const override {
        for (const auto& [known, exists] : divisions_)
            if (known == code)
                return exists;
        auto s = c_.cached("SELECT 1 FROM divisions WHERE code = ?");
        s->bind_all(code);
        bool exists = s->step();
        if (divisions_.size() < 64)
            divisions_.emplace_back(std::string(code), exists);
        return exists;
    }
    bool record_exists(std::string_view collection, std::string_view id) const override {
        auto u = uuid::parse(id);
        if (!u)
            return false;
        const auto& r = look_up(*u);
        return r.live && r.collection == collection;
    }
    // True if the live record `id` belongs to `township`. Usually answered from the lookup
    // record_exists made for the same id.
    bool in_township(const uuid& id, std::string_view township) const {
        const auto& r = look_up(id);
        return r.live && r.township == township;
    }
    // The push wrote record `id`: its next lookup reads the database again.
    void forget(const uuid& id) { seen_.erase(id); }

private:
    struct lookup {
        bool live = false;
        std::string collection;
        std::string township;
    };
    struct id_hash {
        std::size_t operator()(const uuid& id) const noexcept {
            std::uint64_t a, b; // a UUIDv7's time and random halves
            std::memcpy(&a, id.bytes.data(), 8);
            std::memcpy(&b, id.bytes.data() + 8, 8);
            return static_cast<std::size_t>(a ^ (b * 0x9e3779b97f4a7c15ULL));
        }
    };
    // Records looked up during this push (a visit names a person and a household; a push names
    // the same persons again and again), kept until the push writes them. (A list searched
    // linearly cost 1 % of the writer's time in push-new.)
    const lookup& look_up(const uuid& id) const {
        if (auto it = seen_.find(id); it != seen_.end())
            return it->second;
        if (seen_.size() >= 4096)
            seen_.clear();
        lookup r;
        auto s = c_.cached("SELECT collection, deleted, township FROM records WHERE id = ?");
        s->bind_all(id.span());
        if (s->step()) {
            r.live = s->int64(1) == 0;
            r.collection = std::string(s->text(0));
            r.township = std::string(s->text(2));
        }
        return seen_.emplace(id, std::move(r)).first->second;
    }

    sql::connection& c_;
    mutable std::vector<std::pair<std::string, bool>> divisions_;
    mutable std::unordered_map<uuid, lookup, id_hash> seen_;
};

result<void> migrate_server_database(sql::connection& c) {
    auto r = migrate(c, "migrations/");
    if (!r)
        return r;
    sql::transaction tx(c);
    if (!meta_text(c, "epoch"))
        meta_set(c, "epoch", random_hex(8));
    if (!meta_text(c, "cursor_secret"))
        meta_set(c, "cursor_secret", random_hex(32));
    tx.commit();
    return {};
}

result<void> migrate_client_database(sql::connection& c) {
    return migrate(c, "client_migrations/");
}

engine::engine(const catalog& cat, engine_config cfg, sql::connection& c, wall_clock wall)
    : cat_(cat), cfg_(cfg), clock_("server", std::move(wall)) {
    epoch_ = meta_text(c, "epoch").value_or("");
    secret_ = meta_text(c, "cursor_secret").value_or("");
    if (epoch_.empty() || secret_.empty())
        throw std::logic_error("engine: database not migrated (no epoch or cursor secret)");
    if (auto high = meta_text(c, "hlc_high"))
        if (auto h = hlc::parse(*high))
            clock_.observe(*h);
}

void engine::put_division(sql::connection& c, std::string_view code, std::string_view name) {
    std::string_view parent;
    if (code.size() == 12)
        parent = code.substr(0, 9);
    else if (code.size() == 9)
        parent = code.substr(0, 6);
    auto s = c.cached("INSERT INTO divisions(code, level, name, parent) VALUES(?, ?, ?, ?) "
                      "ON CONFLICT(code) DO UPDATE SET name = excluded.name");
    s->bind_all(code, static_cast<std::int64_t>(code.size()), name);
    s->bind(4, parent.empty() ? std::optional<std::string_view>() : std::optional(parent));
    s->run();
}

std::uint64_t engine::last_seq(sql::connection& c) {
    return static_cast<std::uint64_t>(meta_int(c, "last_seq"));
}

namespace {

// The text of each clock written, made once for a run of fields that share it (a new record's
// fields usually do). The texts stay where they are for the views handed out (room for `n`).
class clock_texts {
public:
    explicit clock_texts(std::size_t n) { texts_.reserve(n); }
    // `c` must outlive the next call (it is compared with the next clock).
    std::string_view of(const hlc& c) {
        if (!last_ || !(*last_ == c)) {
            texts_.push_back(c.to_string());
            last_ = &c;
        }
        return texts_.back();
    }

private:
    std::vector<std::string> texts_;
    const hlc* last_ = nullptr;
};

// One field's entry in a history record's changes: "name":[old,new].
void append_change_entry(std::string& text, std::string_view name, const json::value& before,
                         const json::value& after) {
    if (text.size() > 1)
        text += ',';
    append_json_string(text, name);
    text += ":[";
    append_json(text, before);
    text += ',';
    append_json(text, after);
    text += ']';
}

} // namespace

engine::prepared_push engine::prepare(const principal& who, const push_request& req) const {
    // The records' values in one arena per push, released at once with the preparation (on
    // the sync thread, after the acknowledgement) instead of value by value.
    json::storage_ptr sp = json::make_shared_resource<json::monotonic_resource>();
    prepared_push out;
    out.reserve(req.mutations.size());
    const std::int64_t now = clock_.wall_ms();
    for (std::size_t i = 0; i < req.mutations.size(); ++i) {
        const auto& m = req.mutations[i];
        auto& p = out.emplace_back(now, sp);
        if (!m.malformed_code.empty())
            continue; // rejected for that before its fields are looked at
        const collection_decl* coll = cat_.find(m.collection);
        if (!coll)
            continue;
        p.field_rejection = field_rejection(*coll, who, m, now, true);
        if (p.field_rejection || m.fields.empty())
            continue;
        // As apply_mutation writes a new record whose fields all keep their clocks. A clock the
        // writer would restamp (too far ahead; it only gets further ahead of a later "now"): no
        // texts, the writer makes its own.
        if (std::any_of(m.fields.begin(), m.fields.end(), [&](const auto& f) {
                return f.second.clock.ms > now + cfg_.max_clock_ahead_ms;
            }))
            continue;
        // A field named twice (never from a decoded push: its JSON object has unique keys)
        // would be merged into one by the writer: it makes its own texts then.
        bool twice = false;
        for (std::size_t a = 0; a < m.fields.size() && !twice; ++a)
            for (std::size_t b = a + 1; b < m.fields.size() && !twice; ++b)
                twice = m.fields[a].first == m.fields[b].first;
        if (twice)
            continue;
        std::vector<std::pair<std::string_view, std::string_view>> clock_list;
        clock_list.reserve(m.fields.size());
        clock_texts texts(m.fields.size());
        // The record as json::serialize writes an object of these fields in this order; the
        // pieces are written as Boost.JSON writes them (tested byte for byte), without
        // building the object.
        p.fields_text = "{";
        p.changes_text = "{";
        p.record.reserve(m.fields.size());
        for (const auto& [name, w] : m.fields) {
            p.record.emplace(name, w.value);
            if (p.fields_text.size() > 1)
                p.fields_text += ',';
            const std::size_t name_at = p.fields_text.size();
            append_json_string(p.fields_text, name);
            const std::size_t name_end = p.fields_text.size();
            p.fields_text += ':';
            const std::size_t value_at = p.fields_text.size();
            append_json(p.fields_text, w.value);
            clock_list.emplace_back(name, texts.of(w.clock));
            // As append_change_entry(changes, name, null, value), from the bytes just written.
            if (p.changes_text.size() > 1)
                p.changes_text += ',';
            p.changes_text.append(p.fields_text, name_at, name_end - name_at);
            p.changes_text += ":[null,";
            p.changes_text.append(p.fields_text, value_at);
            p.changes_text += ']';
        }
        p.fields_text += '}';
        p.changes_text += '}';
        p.clocks_text = share_clocks(clock_list);
        p.texts = true;
        const validation_context ctx{&cat_, nullptr, now, cfg_.max_clock_ahead_ms};
        p.record_valid = !validate_record(*coll, p.record, ctx);
    }
    return out;
}

push_result engine::push(sql::connection& c, const principal& who, const push_request& req,
                         const prepared_push* prepared) {
    push_result out;
    observer_batch batch(observers_);
    const std::int64_t now = clock_.wall_ms();
    std::uint64_t device_last = 0;
    {
        auto s = c.cached("SELECT last_seq FROM devices WHERE device = ?");
        s->bind_all(who.device);
        if (s->step()) {
            device_last = static_cast<std::uint64_t>(s->int64(0));
        } else {
            auto ins = c.cached("INSERT INTO devices(device, user, last_seq) VALUES(?, ?, 0)");
            ins->bind_all(who.device, who.user);
            ins->run();
        }
    }
    std::uint64_t change_seq = static_cast<std::uint64_t>(meta_int(c, "last_seq"));
    const std::uint64_t change_seq_before = change_seq;
    db_references refs(c);

    for (const auto& m : req.mutations) {
        if (m.seq <= device_last) {
            // Seen before: answer as the first time, change nothing.
            mutation_ack ack;
            ack.seq = m.seq;
            auto s = c.cached("SELECT ack FROM mutation_acks WHERE device = ? AND seq = ?");
            s->bind_all(who.device, static_cast<std::int64_t>(m.seq));
            if (s->step()) {
                boost::system::error_code ec;
                auto stored_ack = json::parse(s->text(0), ec);
                if (auto decoded =
                        ec ? result<mutation_ack>(errc::invalid_argument) : decode_ack(stored_ack))
                    ack = std::move(*decoded);
            }
            ++out.duplicates;
            out.acks.push_back(std::move(ack));
            continue;
        }
        if (m.seq > device_last + 1) {
            mutation_ack ack;
            ack.seq = m.seq;
            ack.status = ack_status::gap;
            ack.code = "sequence_gap";
            ack.message = "上传顺序中断，请从第" + std::to_string(device_last + 1) + "条重新上传";
            ack.message_en =
                "Mutations are missing; resend from number " + std::to_string(device_last + 1);
            out.acks.push_back(std::move(ack));
            break; // nothing after a gap is applied
        }
        const prepared_mutation* prep = nullptr;
        if (prepared && prepared->size() == req.mutations.size())
            prep = &(*prepared)[static_cast<std::size_t>(&m - req.mutations.data())];
        // Made at a later time than the writer's, it is not to be trusted now; nor made without
        // a clock (0: the "not in the future" checks were skipped).
        if (prep && (prep->prepared_ms > now || prep->prepared_ms == 0))
            prep = nullptr;
        mutation_ack ack = apply_mutation(c, who, m, refs, change_seq, now, out, true, prep);
        device_last = m.seq;
        bool plain = ack.status == ack_status::applied && ack.conflicts.empty() &&
                     ack.restamped.empty() && ack.kept.empty();
        if (!plain) {
            auto s = c.cached("INSERT INTO mutation_acks(device, seq, ack) VALUES(?, ?, ?)");
            s->bind_all(who.device, static_cast<std::int64_t>(m.seq), json::serialize(encode(ack)));
            s->run();
        }
        out.acks.push_back(std::move(ack));
    }

    {
        auto s = c.cached("UPDATE devices SET last_seq = ?, last_push_ms = ? WHERE device = ?");
        s->bind_all(static_cast<std::int64_t>(device_last), now, who.device);
        s->run();
    }
    if (change_seq != change_seq_before)
        meta_set(c, "last_seq", static_cast<std::int64_t>(change_seq));
    out.server_clock = clock_.now();
    meta_set(c, "hlc_high", out.server_clock.to_string());
    out.last_applied = device_last;
    batch.end(c);
    return out;
}

mutation_ack engine::reject(sql::connection& c, const principal& who, const mutation& m,
                            const rejection& r, std::int64_t now_ms) {
    json::value payload = encode(m);
    std::optional<std::string> township;
    if (const auto* coll = cat_.find(m.collection))
        for (const auto& [name, w] : m.fields)
            if (name == coll->township_field && w.value.is_string())
                township = std::string(w.value.as_string());
    // Filed under the pusher's own township when it names another one or none: a worker's
    // rejected pushes are their township head's to review, and nobody can fill another
    // township's quarantine (or show its head made-up records) by naming it.
    if (!who.where.whole_district() && township != who.where.township)
        township = who.where.township;
    auto s = c.cached(
        "INSERT INTO quarantine(device, user, mutation_seq, collection, record_id, township, "
        "payload, code, field, message_zh, message_en, received_ms) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    std::string record_id = m.malformed_code.empty() ? m.id.to_string() : std::string();
    if (!m.malformed_code.empty())
        if (const auto* raw = m.raw.if_object())
            record_id = std::string(str_of(*raw, "id").substr(0, 64));
    s->bind_all(who.device, who.user, static_cast<std::int64_t>(m.seq), m.collection.substr(0, 64),
                record_id, township, json::serialize(payload), r.code, r.field, r.message_zh,
                r.message_en, now_ms);
    s->run();
    return rejected_ack(m.seq, r);
}

std::optional<rejection> engine::field_rejection(const collection_decl& coll, const principal& who,
                                                 const mutation& m, std::int64_t now,
                                                 bool quarantine) const {
    validation_context ctx{&cat_, nullptr, now, cfg_.max_clock_ahead_ms};
    for (const auto& [name, w] : m.fields) {
        if (w.clock.device != who.device)
            return make_rejection("clock_device_mismatch", std::string_view(name));
        if (name.starts_with("_") && name != "_deleted" &&
            (quarantine || !name.starts_with("_review")))
            return make_rejection("reserved_field", std::string_view(name));
        if (name == "_deleted") {
            if (!w.value.is_bool())
                return make_rejection("wrong_type", std::string_view(name));
            continue;
        }
        if (auto r = validate_value(coll, name, w.value, ctx))
            return r;
    }
    return std::nullopt;
}

mutation_ack engine::apply_mutation(sql::connection& c, const principal& who, const mutation& m,
                                    db_references& refs, std::uint64_t& change_seq,
                                    std::int64_t now, push_result& out, bool quarantine,
                                    const prepared_mutation* prepared) {
    auto rejected = [&](const rejection& r) {
        ++out.rejected;
        return quarantine ? reject(c, who, m, r, now) : rejected_ack(m.seq, r);
    };
    if (!m.malformed_code.empty())
        return rejected(make_rejection(m.malformed_code, std::string_view(m.malformed_field)));
    const collection_decl* coll = cat_.find(m.collection);
    if (!coll)
        return rejected(make_rejection("unknown_collection"));
    if (prepared) {
        // Checked again with the writer's own time, so that the answer is the one it would give
        // by itself ("not in the future" moves with the clock). Rejections are rare.
        if (prepared->field_rejection)
            if (auto r = field_rejection(*coll, who, m, now, quarantine))
                return rejected(*r);
    } else if (auto r = field_rejection(*coll, who, m, now, quarantine)) {
        return rejected(*r);
    }

    // Scratch memory for this mutation's JSON (the stored record, the merged fields, clocks and
    // history): released at once when the mutation is done instead of value by value.
    alignas(std::max_align_t) unsigned char scratch[16384];
    json::monotonic_resource arena(scratch, sizeof scratch);
    json::storage_ptr sp(&arena);

    auto stored = load_record(c, m.id, sp);
    // A record outside the caller's scope gets one answer whatever else is wrong with the
    // mutation, so that rejections do not tell what it is (collection, township).
    if (stored && !who.where.contains(stored->township, stored->village))
        return rejected(make_rejection("out_of_scope"));
    if (stored && stored->collection != m.collection)
        return rejected(make_rejection("collection_mismatch"));

    // Merge each field against what is stored.
    struct decision {
        const std::string* name;
        const field_write* write;
        merge_outcome outcome;
        bool take;
        std::optional<hlc> restamped; // the server's clock for the write, when it restamps it
        std::optional<field_state> before;
        // The clock to store if taken.
        const hlc& clock() const { return restamped ? *restamped : write->clock; }
    };
    std::vector<decision> decisions;
    decisions.reserve(m.fields.size());
    // A new record prepared before the queue is the preparation's: without a stored record every
    // field is inserted (merge_field), and none is restamped when no clock is too far ahead.
    const bool use_prepared = prepared && prepared->texts && !stored &&
                              std::none_of(m.fields.begin(), m.fields.end(), [&](const auto& f) {
                                  return f.second.clock.ms > now + cfg_.max_clock_ahead_ms;
                              });
    json::object proposed = stored ? json::object(stored->fields, sp) : json::object(sp);
    if (!use_prepared)
        proposed.reserve(proposed.size() + m.fields.size()); // one allocation, no rehash
    mutation_ack ack;
    ack.seq = m.seq;
    for (const auto& [name, w] : m.fields) {
        std::optional<field_state> st;
        if (stored)
            if (const auto* ck = stored->clocks.if_contains(name); ck && ck->is_string())
                if (auto h = hlc::parse(ck->as_string())) {
                    const auto* v = stored->fields.if_contains(name);
                    st = field_state{v ? *v : json::value(nullptr), std::move(*h)};
                }
        std::optional<hlc> restamped;
        std::optional<field_write> moved; // the write with the server's clock
        if (w.clock.ms > now + cfg_.max_clock_ahead_ms) {
            auto s = clock_.now();
            restamped = hlc{s.ms, s.counter, who.device};
            moved = field_write{w.value, *restamped, w.base};
        }
        auto outcome = merge_field(st, moved ? *moved : w);
        if (outcome == merge_outcome::stale_clean_update && !restamped) {
            auto s = clock_.now();
            restamped = hlc{s.ms, s.counter, who.device};
        }
        const hlc& clock = restamped ? *restamped : w.clock;
        bool take = takes_write(outcome) ||
                    (outcome == merge_outcome::concurrent_same_value && clock > st->clock);
        if (!restamped)
            clock_.observe(w.clock);
        if (take && restamped)
            ack.restamped.emplace_back(name, clock);
        if (take && !use_prepared)
            proposed[name] = w.value;
        else if (!take && outcome != merge_outcome::duplicate)
            ack.kept.push_back(name);
        decisions.push_back({&name, &w, outcome, take, std::move(restamped), std::move(st)});
    }
    // A worker's change of a record the township head sent back (or approved) puts it back in
    // the head's queue: its review state returns to "received" (the comment stays, for the head
    // to compare), stamped by the server for this worker and shown in the same history entry.
    // Only a tablet's push (`quarantine`) does it: the head's own writes (a conflict resolved, a
    // record repaired) do not.
    static const std::string review_state_field = "_review_state";
    std::optional<field_write> review_reset;
    std::optional<hlc> reviewed_at; // the clock of a review state other than "received"
    if (quarantine && stored)
        if (const auto* state = stored->fields.if_contains(review_state_field);
            state && state->is_string() && state->get_string() != "received")
            if (const auto* ck = stored->clocks.if_contains(review_state_field);
                ck && ck->is_string())
                reviewed_at = hlc::parse(ck->as_string());
    // A field of the record's own changes value, written after the head set the review state
    // (an edit made before it, synced late, is not a correction of what the head saw).
    auto changes_content = [&] {
        return std::any_of(decisions.begin(), decisions.end(), [&](const decision& d) {
            return d.take && !d.name->starts_with("_") &&
                   (!d.before || d.before->value != d.write->value) && d.clock() > *reviewed_at;
        });
    };
    if (reviewed_at && changes_content()) {
        auto s = clock_.now();
        review_reset = field_write{json::value("received"),
                                   hlc{s.ms, s.counter, server_device(c, who.user)}, std::nullopt};
        std::optional<field_state> before =
            field_state{stored->fields.at(review_state_field), *reviewed_at};
        proposed[review_state_field] = review_reset->value;
        decisions.push_back({&review_state_field, &*review_reset, merge_outcome::clean_update, true,
                             std::nullopt, std::move(before)});
    }
    const json::object& record = use_prepared ? prepared->record : proposed;

    // Scope: a record stays in the township it was created in, and only its township's workers
    // may write it.
    std::string_view township = str_of(record, coll->township_field);
    std::string_view village =
        coll->village_field.empty() ? std::string_view{} : str_of(record, coll->village_field);
    if (stored && !stored->township.empty() && township != stored->township)
        return rejected(make_rejection("scope_field_immutable", coll->field(coll->township_field)));
    if (!township.empty() && !who.where.contains(township, village))
        return rejected(make_rejection("out_of_scope"));
    if (stored && !who.where.contains(stored->township, stored->village))
        return rejected(make_rejection("out_of_scope"));
    for (const auto& d : decisions)
        if (d.take && d.before && !d.before->value.is_null() && d.before->value != d.write->value)
            if (const auto* f = coll->field(*d.name); f && f->immutable)
                return rejected(make_rejection("immutable_field", f));

    validation_context ctx{&cat_, &refs, now, cfg_.max_clock_ahead_ms};
    if (auto r = use_prepared && prepared->record_valid ? validate_references(*coll, record, ctx)
                                                        : validate_record(*coll, record, ctx))
        return rejected(*r);
    if (township.empty())
        return rejected(make_rejection("required_missing", coll->field(coll->township_field)));
    // A reference never leaves the record's township: the township's head would see another
    // township's record id in it, and a rollup could move for a person of another township. A
    // record elsewhere is answered like a missing one, so that pushing references does not probe
    // other townships.
    for (const auto& d : decisions) {
        const auto* f = d.take ? coll->field(*d.name) : nullptr;
        if (!f || f->type != field_type::reference || !d.write->value.is_string())
            continue;
        auto ref = uuid::parse(d.write->value.as_string());
        if (!ref || !refs.in_township(*ref, township))
            return rejected(make_rejection("reference_missing", f));
    }

    bool any_taken =
        std::any_of(decisions.begin(), decisions.end(), [](const decision& d) { return d.take; });
    std::int64_t rid = stored ? stored->rid : 0;
    if (any_taken) {
        refs.forget(m.id);
        ++change_seq;
        // The stored clocks with this mutation's over them, and the history entry
        // {"field": [old, new], ...}, written as text straight away (building JSON objects for
        // them and serialising those was a fifth of a mutation's cost).
        // A new record whose fields all keep their own clocks is stored with the texts
        // prepared before the queue (the same as made here).
        std::string fields_text, clocks_text, changes_text;
        if (!use_prepared) {
            std::vector<std::pair<std::string_view, std::string_view>> clock_list;
            clock_list.reserve((stored ? stored->clocks.size() : 0) + decisions.size());
            if (stored)
                for (const auto& kv : stored->clocks)
                    if (kv.value().is_string())
                        clock_list.emplace_back(kv.key(), kv.value().get_string());
            clock_texts texts(decisions.size());
            changes_text = "{";
            for (const auto& d : decisions) {
                if (!d.take)
                    continue;
                std::string_view clock = texts.of(d.clock());
                auto it = std::find_if(clock_list.begin(), clock_list.end(),
                                       [&](const auto& e) { return e.first == *d.name; });
                if (it != clock_list.end())
                    it->second = clock;
                else
                    clock_list.emplace_back(*d.name, clock);
                append_change_entry(changes_text, *d.name,
                                    d.before ? d.before->value : json::value(nullptr),
                                    d.write->value);
            }
            changes_text += '}';
            fields_text = json::serialize(record);
            clocks_text = share_clocks(clock_list);
        }
        const std::string& fields_out = use_prepared ? prepared->fields_text : fields_text;
        const std::string& clocks_out = use_prepared ? prepared->clocks_text : clocks_text;
        const std::string& changes_out = use_prepared ? prepared->changes_text : changes_text;
        const auto* del = record.if_contains("_deleted");
        std::int64_t deleted = del && del->is_bool() && del->as_bool() ? 1 : 0;
        std::optional<std::string_view> village_col;
        if (!village.empty())
            village_col = village;
        if (!stored) {
            auto s =
                c.cached("INSERT INTO records(id, collection, township, village, seq, deleted, "
                         "fields, clocks, created_ms, updated_ms, created_by, created_device) "
                         "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            s->bind_all(m.id.span(), m.collection, township, village_col,
                        static_cast<std::int64_t>(change_seq), deleted,
                        sql::borrowed_text{fields_out}, sql::borrowed_text{clocks_out}, now, now,
                        who.user, who.device);
            s->run();
            rid = c.last_insert_rowid();
        } else {
            auto s = c.cached("UPDATE records SET village = ?, seq = ?, deleted = ?, fields = ?, "
                              "clocks = ?, updated_ms = ? WHERE rid = ?");
            s->bind_all(village_col, static_cast<std::int64_t>(change_seq), deleted,
                        sql::borrowed_text{fields_out}, sql::borrowed_text{clocks_out}, now, rid);
            s->run();
        }
        auto h = c.cached("INSERT INTO history(seq, rid, user, device, at_ms, mutation_seq, "
                          "changes) VALUES(?, ?, ?, ?, ?, ?, ?)");
        h->bind_all(static_cast<std::int64_t>(change_seq), rid, who.user, who.device, now,
                    m.seq ? std::optional<std::int64_t>(static_cast<std::int64_t>(m.seq))
                          : std::nullopt,
                    sql::borrowed_text{changes_out});
        h->run();
        for (auto* o : observers_)
            o->on_change(c, record_change{*coll, m.id, rid, change_seq, township, village,
                                          stored ? &stored->fields : nullptr, record, who, now});
    }

    for (const auto& d : decisions) {
        if (!opens_conflict(d.outcome))
            continue;
        // The losing value is kept for the township head; the winner is in the record.
        bool won = d.outcome == merge_outcome::concurrent_won;
        const field_state& other = *d.before;
        std::string other_user = user_of_device(c, other.clock.device);
        std::string my_value = json::serialize(d.write->value);
        std::string other_value = json::serialize(other.value);
        std::string my_clock = d.clock().to_string(), other_clock = other.clock.to_string();
        auto s = c.cached(
            "INSERT INTO conflicts(rid, collection, township, village, field, winner_value, "
            "winner_clock, winner_device, winner_user, loser_value, loser_clock, loser_device, "
            "loser_user, opened_seq, opened_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?)");
        s->bind_all(rid, m.collection, township, village, *d.name, won ? my_value : other_value,
                    won ? my_clock : other_clock, won ? who.device : other.clock.device,
                    won ? who.user : other_user, won ? other_value : my_value,
                    won ? other_clock : my_clock, won ? other.clock.device : who.device,
                    won ? other_user : who.user, static_cast<std::int64_t>(change_seq), now);
        s->run();
        ack.conflicts.push_back({*d.name, won});
        ++out.conflicts_opened;
        for (auto* o : observers_)
            o->on_conflicts(c, township, m.collection, +1);
    }
    ++out.applied;
    return ack;
}

void submit_push(writer& w, engine& e, principal who, push_request req,
                 std::function<void(result<push_result>)> done) {
    const std::size_t weight = std::max<std::size_t>(req.mutations.size(), 1);
    struct queued {
        principal who;
        push_request req;
        engine::prepared_push prepared;
    };
    // Prepared here, on the caller's thread, while the writer is busy with other pushes.
    auto prepared = e.prepare(who, req);
    auto state =
        std::make_shared<queued>(queued{std::move(who), std::move(req), std::move(prepared)});
    auto out = std::make_shared<push_result>();
    w.submit(
        [&e, state, out](sql::connection& c) {
            *out = e.push(c, state->who, state->req, &state->prepared);
        },
        [out, done = std::move(done)](boost::system::error_code ec) {
            if (ec)
                done(ec);
            else
                done(std::move(*out));
        },
        weight);
}

std::string engine::server_device(sql::connection& c, std::string_view user) {
    std::string device = "srv-" + std::string(user.substr(0, 60));
    auto s = c.cached("INSERT INTO devices(device, user, last_seq) VALUES(?, ?, 0) "
                      "ON CONFLICT(device) DO NOTHING");
    s->bind_all(device, user);
    s->run();
    return device;
}

mutation_ack engine::write(sql::connection& c, const principal& who, std::string_view collection,
                           const uuid& id, const json::object& fields) {
    principal server_side = who;
    server_side.device = server_device(c, who.user);
    mutation m;
    m.collection = std::string(collection);
    m.id = id;
    json::object clocks;
    if (auto stored = load_record(c, id))
        clocks = std::move(stored->clocks);
    auto stamp = clock_.now();
    stamp.device = server_side.device;
    for (const auto& kv : fields) {
        std::optional<hlc> base;
        if (const auto* ck = clocks.if_contains(kv.key()); ck && ck->is_string())
            base = hlc::parse(ck->as_string());
        m.fields.emplace_back(std::string(kv.key()), field_write{kv.value(), stamp, base});
    }
    push_result out;
    observer_batch batch(observers_);
    std::uint64_t change_seq = static_cast<std::uint64_t>(meta_int(c, "last_seq"));
    const auto before = change_seq;
    db_references refs(c);
    auto ack = apply_mutation(c, server_side, m, refs, change_seq, stamp.ms, out, false);
    if (change_seq != before)
        meta_set(c, "last_seq", static_cast<std::int64_t>(change_seq));
    meta_set(c, "hlc_high", clock_.last().to_string());
    batch.end(c);
    return ack;
}

result<void> engine::close_conflict(sql::connection& c, const principal& who,
                                    std::int64_t conflict_id, std::string_view resolution) {
    std::string township, village, collection;
    {
        auto s = c.cached("SELECT township, coalesce(village, ''), collection FROM conflicts "
                          "WHERE cid = ? AND status = 'open'");
        s->bind_all(conflict_id);
        if (!s->step())
            return errc::not_found;
        township = std::string(s->text(0));
        village = std::string(s->text(1));
        collection = std::string(s->text(2));
    }
    if (!who.where.contains(township, village))
        return errc::not_found; // not visible to the caller: indistinguishable from absent
    auto s = c.cached("UPDATE conflicts SET status = 'resolved', resolved_by = ?, resolved_ms = ?, "
                      "resolution = ? WHERE cid = ?");
    s->bind_all(who.user, clock_.wall_ms(), resolution, conflict_id);
    s->run();
    observer_batch batch(observers_);
    for (auto* o : observers_)
        o->on_conflicts(c, township, collection, -1);
    batch.end(c);
    return {};
}

std::string engine::derived_key(std::string_view purpose) const {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    std::string data = "fieldsync derived key: " + std::string(purpose);
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
    return hex(mac, len);
}

std::string engine::encode_cursor(std::uint64_t seq, const scope& where) const {
    std::string payload = "v1." + epoch_ + "." + std::to_string(seq) + "." + where.fingerprint();
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
    return base64url(payload + "." + hex(mac, 8));
}

result<engine::cursor_fields> engine::decode_cursor(std::string_view text) const {
    if (text.size() > 512)
        return errc::bad_cursor;
    auto raw = unbase64url(text);
    if (!raw)
        return errc::bad_cursor;
    // v1.<epoch>.<seq>.<fingerprint>.<mac>
    std::vector<std::string_view> parts;
    std::string_view rest = *raw;
    for (std::size_t pos; (pos = rest.find('.')) != std::string_view::npos;) {
        parts.push_back(rest.substr(0, pos));
        rest = rest.substr(pos + 1);
    }
    parts.push_back(rest);
    if (parts.size() != 5 || parts[0] != "v1")
        return errc::bad_cursor;
    cursor_fields f;
    f.epoch = std::string(parts[1]);
    auto r = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), f.seq);
    if (r.ec != std::errc{} || r.ptr != parts[2].data() + parts[2].size())
        return errc::bad_cursor;
    f.scope_fingerprint = std::string(parts[3]);
    if (f.epoch != epoch_)
        return f; // another database: the caller resets; the MAC key is not ours to check
    std::string payload(raw->substr(0, raw->size() - parts[4].size() - 1));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
    std::string expected = hex(mac, 8);
    if (expected.size() != parts[4].size() ||
        CRYPTO_memcmp(expected.data(), parts[4].data(), expected.size()) != 0)
        return errc::bad_cursor;
    return f;
}

result<pull_result> engine::pull(sql::connection& c, const principal& who, const pull_request& req,
                                 bool raw_json) {
    pull_result out;
    sql::transaction tx(c, sql::tx_mode::deferred);
    const auto high = static_cast<std::uint64_t>(meta_int(c, "last_seq")); // starts the snapshot
    if (durable_ && !durable_(high))
        return errc::storage_failure;
    const auto purged = static_cast<std::uint64_t>(meta_int(c, "purged_seq"));
    std::uint64_t after = 0;
    if (!req.cursor.empty()) {
        auto cur = decode_cursor(req.cursor);
        if (!cur)
            return cur.error();
        if (cur->epoch != epoch_) {
            out.reset = true;
            out.reset_reason = "database_changed";
        } else if (cur->scope_fingerprint != who.where.fingerprint()) {
            out.reset = true;
            out.reset_reason = "scope_changed";
        } else if (cur->seq < purged) {
            out.reset = true;
            out.reset_reason = "tombstones_expired";
        } else if (cur->seq > high) {
            // A genuine cursor from beyond this database's history: the database was restored
            // from a backup. Start the tablet over rather than leave it stuck.
            out.reset = true;
            out.reset_reason = "database_restored";
        } else {
            after = cur->seq;
        }
    }
    const std::uint32_t limit = std::clamp<std::uint32_t>(req.limit, 1, cfg_.max_pull_page);
    const bool district = who.where.whole_district();
    auto s = district ? c.cached("SELECT seq, collection, id, fields, clocks, village FROM records "
                                 "WHERE seq > ? AND seq <= ? ORDER BY seq")
                      : c.cached("SELECT seq, collection, id, fields, clocks, village FROM records "
                                 "WHERE township = ? AND seq > ? AND seq <= ? ORDER BY seq");
    if (district)
        s->bind_all(static_cast<std::int64_t>(after), static_cast<std::int64_t>(high));
    else
        s->bind_all(who.where.township, static_cast<std::int64_t>(after),
                    static_cast<std::int64_t>(high));
    std::uint64_t last = after;
    bool more = false;
    while (s->step()) {
        // A village-restricted caller is told, by id only, about records of the township that
        // changed outside its villages: one may have just moved away from them. A first pull has
        // nothing to drop.
        bool outside =
            !who.where.villages.empty() && !who.where.contains(who.where.township, s->text(5));
        if (outside && after == 0)
            continue;
        if (out.changes.size() + out.raw_count == limit) {
            more = true;
            break;
        }
        const auto seq = static_cast<std::uint64_t>(s->int64(0));
        const auto id = uuid::from_blob(s->blob(2)).value_or(uuid{});
        last = seq;
        if (raw_json) {
            // Straight from the row into the answer's text: no copy per record (but for a client
            // that reads only one clock per field).
            if (out.raw_count++ > 0)
                out.changes_json += ',';
            std::string expanded;
            if (!outside && !req.shared_clocks)
                expanded = expanded_clocks_text(s->text(3), s->text(4));
            append_change(out.changes_json, s->text(1), id, outside,
                          outside ? std::string_view{} : s->text(3),
                          outside             ? std::string_view{}
                          : req.shared_clocks ? s->text(4)
                                              : std::string_view(expanded));
            // Room for a page of rows like the first: regrowing the text as it fills cost a
            // third of a page's time.
            if (out.raw_count == 1)
                out.changes_json.reserve(
                    std::min<std::size_t>((out.changes_json.size() + 64) * limit, 16u << 20));
            continue;
        }
        record_state r;
        r.seq = seq;
        r.collection = std::string(s->text(1));
        r.id = id;
        r.gone = outside;
        if (!outside) {
            r.fields = parse_object(s->text(3));
            r.clocks = parse_object(s->text(4));
            expand_clocks(r.clocks, r.fields);
        }
        out.changes.push_back(std::move(r));
    }
    out.complete = !more;
    out.cursor = encode_cursor(more ? last : high, who.where);
    out.server_clock = clock_.now();
    return out;
}

std::size_t engine::purge_tombstones(sql::connection& c, std::int64_t now_ms) {
    std::int64_t cutoff = now_ms - cfg_.tombstone_retention_ms;
    // The record with the highest row id stays, tombstone or not: records.rid is not
    // AUTOINCREMENT, so the next new record would take a purged highest rid, and with it the
    // purged record's history (kept: the audit trail), which is found by rid.
    std::int64_t top_rid = 0;
    {
        auto s = c.cached("SELECT max(rid) FROM records");
        if (s->step() && !s->is_null(0))
            top_rid = s->int64(0);
    }
    std::int64_t horizon = 0;
    {
        auto s = c.cached(
            "SELECT max(seq) FROM records WHERE deleted = 1 AND updated_ms < ? AND rid < ?");
        s->bind_all(cutoff, top_rid);
        if (s->step() && !s->is_null(0))
            horizon = s->int64(0);
    }
    if (horizon == 0)
        return 0;
    auto s = c.cached("DELETE FROM records WHERE deleted = 1 AND updated_ms < ? AND rid < ?");
    s->bind_all(cutoff, top_rid);
    s->run();
    std::size_t n = static_cast<std::size_t>(c.changes());
    // A cursor at or past the newest purged tombstone has seen it; older ones may have missed one.
    meta_set(c, "purged_seq", std::max<std::int64_t>(horizon, meta_int(c, "purged_seq")));
    return n;
}

std::string engine::content_hash(sql::connection& c, const scope& where) {
    sql::transaction tx(c, sql::tx_mode::deferred);
    auto s = c.cached("SELECT id, collection, fields, clocks, township, village FROM records "
                      "WHERE deleted = 0 ORDER BY id");
    content_hasher h;
    while (s->step()) {
        if (!where.contains(s->text(4), s->text(5)))
            continue;
        auto fields = parse_object(s->text(2));
        auto clocks = parse_object(s->text(3));
        expand_clocks(clocks, fields);
        h.add(uuid::from_blob(s->blob(0)).value_or(uuid{}), s->text(1), fields, clocks);
    }
    return h.finish();
}

content_hasher::content_hasher() : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}

content_hasher::~content_hasher() {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void content_hasher::add(const uuid& id, std::string_view collection, const json::object& fields,
                         const json::object& clocks) {
    std::string line = id.to_string() + "|" + std::string(collection) + "|" +
                       canonical_json(fields) + "|" + canonical_json(clocks) + "\n";
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), line.data(), line.size());
}

std::string content_hasher::finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out, &len);
    EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
    return hex(out, len);
}

} // namespace fieldsync
