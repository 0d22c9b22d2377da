#include "sync/replica.hpp"

#include "schema/rules.hpp"
#include "sync/engine.hpp"
#include "sync/store_util.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <map>

namespace fieldsync {

namespace json = boost::json;

namespace {

// Largest amount by which the tablet's clock may disagree with the server before the replica
// corrects its wall clock (network latency is far below this).
constexpr std::int64_t offset_tolerance_ms = 60 * 1000;

} // namespace

replica::replica(const std::string& path, const catalog& cat, std::string device_id,
                 wall_clock wall, std::uint64_t seed)
    : db_(path, sql::open_mode::read_write_create), cat_(cat), device_(std::move(device_id)),
      device_wall_(std::move(wall)),
      clock_(device_, [this] { return device_wall_() + offset_ms_; }), ids_(seed) {
    if (auto r = migrate_client_database(db_); !r)
        throw std::runtime_error("replica: database was written by a newer fieldsync");
    offset_ms_ = meta_int(db_, "clock_offset_ms");
    if (auto h = meta_text(db_, "hlc"))
        if (auto parsed = hlc::parse(*h))
            clock_.observe(*parsed);
}

void replica::save_clock() {
    meta_set(db_, "hlc", clock_.last().to_string());
    meta_set(db_, "clock_offset_ms", offset_ms_);
}

std::optional<std::string> replica::collection_of(const uuid& id) {
    {
        auto s = db_.cached("SELECT collection FROM records WHERE id = ?");
        s->bind_all(id.span());
        if (s->step())
            return std::string(s->text(0));
    }
    auto s = db_.cached("SELECT collection FROM outbox WHERE id = ? ORDER BY seq LIMIT 1");
    s->bind_all(id.span());
    if (s->step())
        return std::string(s->text(0));
    return std::nullopt;
}

std::optional<hlc> replica::current_clock(const uuid& id, std::string_view field) {
    {
        auto s = db_.cached("SELECT fields FROM outbox WHERE id = ? ORDER BY seq DESC");
        s->bind_all(id.span());
        while (s->step()) {
            auto o = parse_object(s->text(0));
            if (const auto* f = o.if_contains(field); f && f->is_object())
                if (const auto* c = f->as_object().if_contains("clock"); c && c->is_string())
                    return hlc::parse(c->as_string());
        }
    }
    auto s = db_.cached("SELECT clocks FROM records WHERE id = ?");
    s->bind_all(id.span());
    if (s->step()) {
        auto clocks = parse_object(s->text(0));
        if (const auto* c = clocks.if_contains(field); c && c->is_string())
            return hlc::parse(c->as_string());
    }
    return std::nullopt;
}

std::uint64_t replica::append_outbox(std::string_view collection, const uuid& id,
                                     const json::object& values) {
    sql::transaction tx(db_);
    auto seq = static_cast<std::uint64_t>(meta_int(db_, "next_seq", 1));
    hlc stamp = clock_.now();
    json::object fields;
    for (const auto& kv : values) {
        auto base = current_clock(id, kv.key());
        fields[kv.key()] =
            json::object{{"value", kv.value()},
                         {"clock", stamp.to_string()},
                         {"base", base ? json::value(base->to_string()) : json::value(nullptr)}};
    }
    auto s = db_.cached(
        "INSERT INTO outbox(seq, collection, id, fields, created_ms) VALUES(?, ?, ?, ?, ?)");
    s->bind_all(static_cast<std::int64_t>(seq), collection, id.span(), json::serialize(fields),
                stamp.ms);
    s->run();
    meta_set(db_, "next_seq", static_cast<std::int64_t>(seq + 1));
    save_clock();
    tx.commit();
    return seq;
}

namespace {

bool valid_text(const json::value& v, int depth = 0) {
    if (depth > 32)
        return false;
    if (v.is_string())
        return is_valid_utf8(v.as_string());
    if (v.is_array())
        return std::all_of(v.as_array().begin(), v.as_array().end(),
                           [&](const json::value& e) { return valid_text(e, depth + 1); });
    if (v.is_object())
        return std::all_of(v.as_object().begin(), v.as_object().end(), [&](const auto& kv) {
            return is_valid_utf8(kv.key()) && valid_text(kv.value(), depth + 1);
        });
    return true;
}

bool valid_edit(const json::object& fields) {
    if (fields.empty())
        return false;
    return std::all_of(fields.begin(), fields.end(), [](const auto& kv) {
        return is_field_name(kv.key()) && valid_text(kv.value());
    });
}

} // namespace

result<uuid> replica::create(std::string_view collection, const json::object& fields) {
    if (!valid_edit(fields) || fields.contains("_deleted"))
        return errc::invalid_argument;
    uuid id = ids_.make(device_wall_() + offset_ms_);
    append_outbox(collection, id, fields);
    return id;
}

result<void> replica::update(const uuid& id, const json::object& fields) {
    auto coll = collection_of(id);
    if (!coll)
        return errc::not_found;
    if (!valid_edit(fields))
        return errc::invalid_argument;
    append_outbox(*coll, id, fields);
    return {};
}

result<void> replica::remove(const uuid& id) {
    auto coll = collection_of(id);
    if (!coll)
        return errc::not_found;
    append_outbox(*coll, id, json::object{{"_deleted", true}});
    return {};
}

std::optional<local_record> replica::get(const uuid& id) {
    local_record r;
    r.id = id;
    bool found = false;
    {
        auto s = db_.cached("SELECT collection, fields FROM records WHERE id = ?");
        s->bind_all(id.span());
        if (s->step()) {
            found = true;
            r.collection = std::string(s->text(0));
            r.fields = parse_object(s->text(1));
        }
    }
    auto s = db_.cached("SELECT collection, fields FROM outbox WHERE id = ? ORDER BY seq");
    s->bind_all(id.span());
    while (s->step()) {
        if (!found)
            r.collection = std::string(s->text(0));
        found = true;
        r.pending = true;
        for (const auto& kv : parse_object(s->text(1)))
            if (const auto* o = kv.value().if_object())
                if (const auto* v = o->if_contains("value"))
                    r.fields[kv.key()] = *v;
    }
    if (!found)
        return std::nullopt;
    const auto* del = r.fields.if_contains("_deleted");
    if (del && del->is_bool() && del->as_bool())
        return std::nullopt;
    r.fields.erase("_deleted");
    return r;
}

std::vector<local_record> replica::list(std::string_view collection) {
    std::vector<uuid> ids;
    {
        auto s = db_.cached("SELECT id FROM records UNION SELECT id FROM outbox ORDER BY 1");
        while (s->step())
            if (auto u = uuid::from_blob(s->blob(0)))
                ids.push_back(*u);
    }
    std::vector<local_record> out;
    for (const auto& id : ids)
        if (auto r = get(id); r && (collection.empty() || r->collection == collection))
            out.push_back(std::move(*r));
    return out;
}

push_request replica::next_push(std::size_t max) {
    push_request req;
    req.schema_version = std::max(1, cat_.schema_version());
    auto s = db_.cached("SELECT seq, collection, id, fields FROM outbox ORDER BY seq LIMIT ?");
    s->bind_all(static_cast<std::int64_t>(max));
    while (s->step()) {
        mutation m;
        m.seq = static_cast<std::uint64_t>(s->int64(0));
        m.collection = std::string(s->text(1));
        m.id = uuid::from_blob(s->blob(2)).value_or(uuid{});
        for (const auto& kv : parse_object(s->text(3))) {
            const auto& o = kv.value().as_object();
            field_write w;
            w.value = o.at("value");
            w.clock = hlc::parse(o.at("clock").as_string()).value_or(hlc{});
            if (const auto& b = o.at("base"); b.is_string())
                w.base = hlc::parse(b.as_string());
            m.fields.emplace_back(std::string(kv.key()), std::move(w));
        }
        req.mutations.push_back(std::move(m));
    }
    return req;
}

void replica::learn_server_clock(const hlc& server, bool restamped) {
    std::int64_t local = device_wall_() + offset_ms_;
    if (restamped || std::abs(server.ms - local) > offset_tolerance_ms)
        offset_ms_ = server.ms - device_wall_();
    if (restamped && clock_.last() > server) {
        // Our clock ran ahead and the server replaced what we stamped: come back to its time.
        clock_.reset(server);
    }
    clock_.observe(server);
}

bool replica::apply_push_result(const push_request& sent, const push_result& res) {
    sql::transaction tx(db_);
    std::map<std::uint64_t, const mutation*> by_seq;
    for (const auto& m : sent.mutations)
        by_seq[m.seq] = &m;
    bool restamped = false;
    for (const auto& ack : res.acks) {
        if (ack.status == ack_status::gap)
            continue;
        auto it = by_seq.find(ack.seq);
        if (it == by_seq.end())
            continue;
        const mutation& m = *it->second;
        {
            auto s = db_.cached("SELECT 1 FROM outbox WHERE seq = ?");
            s->bind_all(static_cast<std::int64_t>(m.seq));
            if (!s->step())
                continue; // already handled (a repeated acknowledgement)
        }
        {
            auto s = db_.cached("DELETE FROM record_status WHERE id = ? AND mutation_seq < ?");
            s->bind_all(m.id.span(), static_cast<std::int64_t>(m.seq));
            s->run();
        }
        if (ack.status == ack_status::rejected) {
            auto s = db_.cached("INSERT OR REPLACE INTO record_status(id, kind, field, code, "
                                "message, mutation_seq, server_clock) VALUES(?, 'rejected', ?, "
                                "?, ?, ?, ?)");
            s->bind_all(m.id.span(), ack.field, ack.code, ack.message,
                        static_cast<std::int64_t>(m.seq),
                        res.server_clock.is_zero() ? std::string() : res.server_clock.to_string());
            s->run();
        } else {
            // Fold the accepted writes into the confirmed state.
            json::object fields, clocks;
            bool exists = false;
            {
                auto s = db_.cached("SELECT fields, clocks FROM records WHERE id = ?");
                s->bind_all(m.id.span());
                if (s->step()) {
                    exists = true;
                    fields = parse_object(s->text(0));
                    clocks = parse_object(s->text(1));
                }
            }
            for (const auto& field_entry : m.fields) {
                // Not a structured binding: clang 14 (the fuzz build) cannot capture one.
                const std::string& name = field_entry.first;
                const field_write& w = field_entry.second;
                bool lost =
                    std::any_of(ack.conflicts.begin(), ack.conflicts.end(),
                                [&](const conflict_note& c) { return c.field == name && !c.won; });
                bool kept = std::find(ack.kept.begin(), ack.kept.end(), name) != ack.kept.end();
                bool in_conflict =
                    std::any_of(ack.conflicts.begin(), ack.conflicts.end(),
                                [&](const conflict_note& c) { return c.field == name; });
                if (in_conflict) {
                    auto s = db_.cached("INSERT OR REPLACE INTO record_status(id, kind, field, "
                                        "code, message, mutation_seq) VALUES(?, 'conflict', ?, "
                                        "'concurrent_edit', '', ?)");
                    s->bind_all(m.id.span(), name, static_cast<std::int64_t>(m.seq));
                    s->run();
                }
                if (lost || kept)
                    continue; // the server's value stands; the next pull brings it
                hlc c = w.clock;
                for (const auto& [rf, rc] : ack.restamped)
                    if (rf == name) {
                        c = rc;
                        restamped = true;
                    }
                const auto* have = clocks.if_contains(name);
                auto have_clock =
                    have && have->is_string() ? hlc::parse(have->as_string()) : std::nullopt;
                if (have_clock && *have_clock > c)
                    continue; // a newer value (another device's, or our own later write
                              // confirmed by a pull after a lost answer) is already here
                fields[name] = w.value;
                clocks[name] = c.to_string();
            }
            const auto* del = fields.if_contains("_deleted");
            std::int64_t deleted = del && del->is_bool() && del->as_bool() ? 1 : 0;
            auto s = exists ? db_.cached("UPDATE records SET fields = ?, clocks = ?, deleted = ? "
                                         "WHERE id = ? AND collection = ?")
                            : db_.cached("INSERT INTO records(fields, clocks, deleted, id, "
                                         "collection) VALUES(?, ?, ?, ?, ?)");
            s->bind_all(json::serialize(fields), json::serialize(clocks), deleted, m.id.span(),
                        m.collection);
            s->run();
        }
        auto d = db_.cached("DELETE FROM outbox WHERE seq = ?");
        d->bind_all(static_cast<std::int64_t>(m.seq));
        d->run();
    }
    // Outbox entries the server applied but did not answer for in this push (their answer was
    // lost) stay: the next push resends them and the server repeats their exact acknowledgement,
    // which says whether each write stood. Dropping them here would lose that knowledge.
    learn_server_clock(res.server_clock, restamped);
    save_clock();
    bool renumbered = false;
    if (std::any_of(res.acks.begin(), res.acks.end(),
                    [](const mutation_ack& a) { return a.status == ack_status::gap; })) {
        // Only for an answer to the outbox as it is now: a stale one (another sync of the same
        // folder renumbered meanwhile) would move new mutations onto numbers already applied.
        bool current = false;
        if (!sent.mutations.empty()) {
            auto o = db_.cached("SELECT count(*) FROM outbox WHERE seq = ? AND id = ? AND seq = "
                                "(SELECT min(seq) FROM outbox)");
            o->bind_all(static_cast<std::int64_t>(sent.mutations.front().seq),
                        sent.mutations.front().id.span());
            current = o->step() && o->int64(0) == 1;
        }
        // renumber_outbox leaves an outbox that still holds last_applied + 1 alone.
        renumbered = current && renumber_outbox(res.last_applied + 1);
    }
    tx.commit();
    return renumbered;
}

bool replica::renumber_outbox(std::uint64_t first) {
    std::vector<std::int64_t> seqs;
    {
        auto s = db_.cached("SELECT seq FROM outbox ORDER BY seq");
        while (s->step())
            seqs.push_back(s->int64(0));
    }
    if (seqs.empty() || seqs.front() <= static_cast<std::int64_t>(first))
        return false; // nothing pending, or nothing missing
    // Moved down in order, so that no number is taken twice on the way (seq is the key).
    auto next = static_cast<std::int64_t>(first);
    for (auto old : seqs) {
        auto u = db_.cached("UPDATE outbox SET seq = ? WHERE seq = ?");
        u->bind_all(next++, old);
        u->run();
    }
    meta_set(db_, "next_seq", next);
    // Rejections carry the old numbers: any later applied write of the record now ends them.
    db_.exec("UPDATE record_status SET mutation_seq = 0");
    return true;
}

pull_request replica::next_pull(std::uint32_t limit) {
    pull_request r;
    r.cursor = meta_text(db_, "cursor").value_or("");
    r.limit = limit;
    r.shared_clocks = true; // decode_pull_result expands them
    return r;
}

// A rejection of this tablet's mutation is over once the township head repaired the record
// from the quarantine: the server wrote the rejected field (any field, for a rejection that
// names none) under "srv-<head>" with a clock after the rejection. (The worker's own correction
// clears it when its push is acknowledged.)
void replica::forget_repaired_rejections(const record_state& r) {
    std::vector<std::pair<std::string, std::string>> rejections; // field, server clock
    {
        auto s = db_.cached(
            "SELECT field, server_clock FROM record_status WHERE id = ? AND kind = 'rejected'");
        s->bind_all(r.id.span());
        while (s->step())
            rejections.emplace_back(s->text(0), s->text(1));
    }
    // The latest office clock of `field`, or of any field of the record's own when empty.
    auto office_write = [&](const std::string& field) {
        std::optional<hlc> latest;
        for (const auto& kv : r.clocks) {
            if (kv.key().starts_with("_") || !kv.value().is_string() ||
                (!field.empty() && kv.key() != field))
                continue;
            auto h = hlc::parse(kv.value().as_string());
            if (h && h->device.starts_with("srv-") && (!latest || *h > *latest))
                latest = std::move(h);
        }
        return latest;
    };
    for (const auto& [field, at] : rejections) {
        auto written = office_write(field);
        auto when = hlc::parse(at); // empty (stored before the clock was kept): any office write
        if (!written || (when && !(*written > *when)))
            continue;
        auto d = db_.cached("DELETE FROM record_status WHERE id = ? AND kind = 'rejected' AND "
                            "field = ?");
        d->bind_all(r.id.span(), field);
        d->run();
    }
}

void replica::apply_pull_result(const pull_result& res) {
    sql::transaction tx(db_);
    if (res.reset)
        db_.exec("DELETE FROM records");
    for (const auto& r : res.changes) {
        if (r.gone) {
            auto s = db_.cached("DELETE FROM records WHERE id = ?");
            s->bind_all(r.id.span());
            s->run();
            continue;
        }
        // Per field, the higher clock stays: the server's clocks only grow, so a pulled value
        // older than what is confirmed here can only come from a late, stale answer (or our own
        // write confirmed by its ack first) and must not move the tablet backwards.
        json::object fields = r.fields, clocks = r.clocks;
        {
            auto s = db_.cached("SELECT fields, clocks FROM records WHERE id = ?");
            s->bind_all(r.id.span());
            if (s->step()) {
                auto have_fields = parse_object(s->text(0));
                auto have_clocks = parse_object(s->text(1));
                for (const auto& kv : have_clocks) {
                    auto mine =
                        kv.value().is_string() ? hlc::parse(kv.value().as_string()) : std::nullopt;
                    const auto* theirs_text = clocks.if_contains(kv.key());
                    auto theirs = theirs_text && theirs_text->is_string()
                                      ? hlc::parse(theirs_text->as_string())
                                      : std::nullopt;
                    if (mine && (!theirs || *mine > *theirs)) {
                        clocks[kv.key()] = kv.value();
                        if (const auto* v = have_fields.if_contains(kv.key()))
                            fields[kv.key()] = *v;
                    }
                }
            }
        }
        const auto* del = fields.if_contains("_deleted");
        std::int64_t deleted = del && del->is_bool() && del->as_bool() ? 1 : 0;
        auto s = db_.cached("INSERT INTO records(id, collection, fields, clocks, deleted) "
                            "VALUES(?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                            "collection = excluded.collection, fields = excluded.fields, "
                            "clocks = excluded.clocks, deleted = excluded.deleted");
        s->bind_all(r.id.span(), r.collection, json::serialize(fields), json::serialize(clocks),
                    deleted);
        s->run();
        forget_repaired_rejections(r);
        for (const auto& kv : r.clocks)
            if (kv.value().is_string())
                if (auto h = hlc::parse(kv.value().as_string()))
                    clock_.observe(*h);
    }
    meta_set(db_, "cursor", res.cursor);
    learn_server_clock(res.server_clock, false);
    save_clock();
    tx.commit();
}

std::vector<record_issue> replica::issues() {
    std::vector<record_issue> out;
    auto s = db_.cached("SELECT id, kind, field, code, message FROM record_status ORDER BY id");
    while (s->step())
        out.push_back({uuid::from_blob(s->blob(0)).value_or(uuid{}), std::string(s->text(1)),
                       std::string(s->text(2)), std::string(s->text(3)), std::string(s->text(4))});
    return out;
}

std::size_t replica::pending_count() {
    auto s = db_.cached("SELECT count(*) FROM outbox");
    return s->step() ? static_cast<std::size_t>(s->int64(0)) : 0;
}

std::string replica::content_hash() {
    content_hasher h;
    for (const auto& r : list()) {
        // Clocks of the local view: confirmed clocks with pending writes' clocks on top.
        json::object clocks, fields = r.fields;
        {
            auto s = db_.cached("SELECT clocks, fields FROM records WHERE id = ?");
            s->bind_all(r.id.span());
            if (s->step()) {
                clocks = parse_object(s->text(0));
                auto stored = parse_object(s->text(1));
                if (const auto* d = stored.if_contains("_deleted"))
                    fields["_deleted"] = *d;
            }
        }
        auto s = db_.cached("SELECT fields FROM outbox WHERE id = ? ORDER BY seq");
        s->bind_all(r.id.span());
        while (s->step())
            for (const auto& kv : parse_object(s->text(0)))
                if (const auto* o = kv.value().if_object()) {
                    clocks[kv.key()] = o->at("clock");
                    fields[kv.key()] = o->at("value");
                }
        h.add(r.id, r.collection, fields, clocks);
    }
    return h.finish();
}

void replica::wipe() {
    sql::transaction tx(db_);
    db_.exec("DELETE FROM records; DELETE FROM outbox; DELETE FROM record_status; "
             "DELETE FROM meta WHERE key = 'cursor'");
    tx.commit();
    // Overwrite freed pages so nothing personal stays readable in the file.
    db_.exec("PRAGMA secure_delete = ON; VACUUM");
    // The WAL file may still hold old pages with personal data: fold it in and cut it to zero.
    db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

} // namespace fieldsync
