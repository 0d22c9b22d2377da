#include "sync/review.hpp"

#include "sync/rollups.hpp"
#include "sync/store_util.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace fieldsync {

namespace json = boost::json;

std::string_view to_string(review_state s) noexcept {
    switch (s) {
    case review_state::received:
        return "received";
    case review_state::has_issues:
        return "has_issues";
    case review_state::approved:
        return "approved";
    }
    return "received";
}

std::optional<review_state> parse_review_state(std::string_view s) noexcept {
    for (auto r : {review_state::received, review_state::has_issues, review_state::approved})
        if (to_string(r) == s)
            return r;
    return std::nullopt;
}

std::string mask_value(std::string_view format, std::string_view v) {
    auto stars = [](std::size_t n) { return std::string(n, '*'); };
    if ((format == "id_number" || format == "cert_no") && v.size() > 10)
        return std::string(v.substr(0, 6)) + stars(v.size() - 10) +
               std::string(v.substr(v.size() - 4));
    if (format == "phone" && v.size() > 7)
        return std::string(v.substr(0, 3)) + stars(v.size() - 7) +
               std::string(v.substr(v.size() - 4));
    // Anything else personal: keep only the last two characters (bytes of ASCII text; other text
    // is fully masked so that no partial UTF-8 sequence is produced).
    bool ascii = std::all_of(v.begin(), v.end(), [](char ch) { return (ch & 0x80) == 0; });
    if (ascii && v.size() > 4)
        return stars(v.size() - 2) + std::string(v.substr(v.size() - 2));
    return stars(4);
}

namespace {

json::value parse_value(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    return ec ? json::value(nullptr) : v;
}

std::string_view str(const json::object& o, std::string_view k) {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

// WHERE clause parts restricting `records` (aliased r) to the caller's scope.
void scope_clause(const scope& where, std::string& sql_text, std::vector<std::string>& args) {
    if (where.whole_district())
        return;
    sql_text += " AND r.township = ?";
    args.push_back(where.township);
    if (!where.villages.empty()) {
        sql_text += " AND r.village IN (";
        for (std::size_t i = 0; i < where.villages.size(); ++i) {
            sql_text += i ? ", ?" : "?";
            args.push_back(where.villages[i]);
        }
        sql_text += ")";
    }
}

std::string like_pattern(std::string_view text) {
    std::string p = "%";
    for (char ch : text) {
        if (ch == '%' || ch == '_' || ch == '\\')
            p += '\\';
        p += ch;
    }
    return p + "%";
}

bool is_date(std::string_view s) {
    return parse_date(s).has_value();
}

} // namespace

void review::mask(std::string_view collection, json::object& fields) const {
    const auto* c = cat_.find(collection);
    if (!c)
        return;
    for (const auto& f : c->fields) {
        if (!f.personal)
            continue;
        if (auto* v = fields.if_contains(f.name); v && v->is_string())
            *v = mask_value(f.format, v->as_string());
    }
}

constexpr const char* summary_columns =
    "r.collection, r.id, r.township, coalesce(r.village, ''), r.fields, r.created_by, "
    "r.created_device, r.created_ms, r.updated_ms, r.deleted, "
    "(SELECT count(*) FROM conflicts k WHERE k.rid = r.rid AND k.status = 'open')";

namespace {

record_summary read_summary(sql::statement& s) {
    record_summary r;
    r.collection = std::string(s.text(0));
    r.id = uuid::from_blob(s.blob(1)).value_or(uuid{});
    r.township = std::string(s.text(2));
    r.village = std::string(s.text(3));
    r.fields = parse_object(s.text(4));
    r.created_by = std::string(s.text(5));
    r.created_device = std::string(s.text(6));
    r.created_ms = s.int64(7);
    r.updated_ms = s.int64(8);
    r.deleted = s.int64(9) != 0;
    r.open_conflicts = s.int64(10);
    auto state = str(r.fields, "_review_state");
    r.review = state.empty() ? "received" : std::string(state);
    r.review_comment = std::string(str(r.fields, "_review_comment"));
    return r;
}

} // namespace

result<record_page> review::list(sql::connection& c, const principal& who,
                                 const record_query& q) const {
    if ((!q.collection.empty() && !cat_.find(q.collection)) ||
        (!q.review.empty() && !parse_review_state(q.review)) ||
        (!q.from.empty() && !is_date(q.from)) || (!q.to.empty() && !is_date(q.to)) ||
        q.text.size() > 200)
        return errc::invalid_argument;
    std::string where = " WHERE 1";
    std::vector<std::string> args;
    scope_clause(who.where, where, args);
    if (!q.include_deleted)
        where += " AND r.deleted = 0";
    if (!q.collection.empty()) {
        where += " AND r.collection = ?";
        args.push_back(q.collection);
    }
    if (!q.village.empty()) {
        where += " AND r.village = ?";
        args.push_back(q.village);
    }
    if (!q.worker.empty()) {
        where += " AND r.created_by = ?";
        args.push_back(q.worker);
    }
    if (!q.review.empty()) {
        where += " AND coalesce(json_extract(r.fields, '$._review_state'), 'received') = ?";
        args.push_back(q.review);
    }
    if (!q.text.empty()) {
        where += " AND r.fields LIKE ? ESCAPE '\\'";
        args.push_back(like_pattern(q.text));
    }
    if (!q.from.empty() || !q.to.empty()) {
        auto df = q.collection.empty() ? std::string_view{} : collected_date_field(q.collection);
        std::string expr =
            df.empty() ? "date(r.created_ms / 1000, 'unixepoch')"
                       : "substr(json_extract(r.fields, '$." + std::string(df) + "'), 1, 10)";
        if (!q.from.empty()) {
            where += " AND " + expr + " >= ?";
            args.push_back(q.from);
        }
        if (!q.to.empty()) {
            where += " AND " + expr + " <= ?";
            args.push_back(q.to);
        }
    }
    record_page page;
    {
        sql::statement s(c.handle(), "SELECT count(*) FROM records r" + where);
        for (std::size_t i = 0; i < args.size(); ++i)
            s.bind(static_cast<int>(i + 1), std::string_view(args[i]));
        if (s.step())
            page.total = s.int64(0);
    }
    sql::statement s(c.handle(), std::string("SELECT ") + summary_columns + " FROM records r" +
                                     where +
                                     " ORDER BY r.updated_ms DESC, r.rid DESC LIMIT ? "
                                     "OFFSET ?");
    int i = 0;
    for (const auto& a : args)
        s.bind(++i, std::string_view(a));
    s.bind(++i, static_cast<std::int64_t>(std::min<std::uint32_t>(q.limit ? q.limit : 50, 500)));
    s.bind(++i, static_cast<std::int64_t>(q.offset));
    while (s.step()) {
        auto r = read_summary(s);
        mask(r.collection, r.fields);
        page.items.push_back(std::move(r));
    }
    return page;
}

result<record_summary> review::get(sql::connection& c, const principal& who, const uuid& id) const {
    sql::statement s(c.handle(),
                     std::string("SELECT ") + summary_columns + " FROM records r WHERE r.id = ?");
    s.bind(1, id.span());
    if (!s.step())
        return errc::not_found;
    auto r = read_summary(s);
    if (!who.where.contains(r.township, r.village))
        return errc::not_found;
    mask(r.collection, r.fields);
    return r;
}

result<std::vector<history_entry>> review::history(sql::connection& c, const principal& who,
                                                   const uuid& id) const {
    auto rec = get(c, who, id);
    if (!rec)
        return rec.error();
    std::vector<history_entry> out;
    auto s = c.cached("SELECT h.seq, h.user, h.device, h.at_ms, h.changes FROM history h JOIN "
                      "records r ON r.rid = h.rid WHERE r.id = ? ORDER BY h.seq");
    s->bind_all(id.span());
    const auto* coll = cat_.find(rec->collection);
    while (s->step()) {
        history_entry h;
        h.seq = static_cast<std::uint64_t>(s->int64(0));
        h.user = std::string(s->text(1));
        h.device = std::string(s->text(2));
        h.at_ms = s->int64(3);
        h.changes = parse_object(s->text(4));
        if (coll)
            for (auto& kv : h.changes) {
                const auto* f = coll->field(kv.key());
                if (!f || !f->personal || !kv.value().is_array())
                    continue;
                for (auto& v : kv.value().as_array())
                    if (v.is_string())
                        v = mask_value(f->format, v.as_string());
            }
        out.push_back(std::move(h));
    }
    return out;
}

std::vector<conflict_entry> review::conflicts(sql::connection& c, const principal& who,
                                              std::string_view status) const {
    std::string where = " WHERE k.status = ?";
    std::vector<std::string> args{std::string(status)};
    if (!who.where.whole_district()) {
        where += " AND k.township = ?";
        args.push_back(who.where.township);
    }
    sql::statement s(c.handle(),
                     "SELECT k.cid, k.collection, r.id, k.township, coalesce(k.village, ''), "
                     "k.field, k.winner_value, k.winner_clock, k.winner_user, k.winner_device, "
                     "k.loser_value, k.loser_clock, k.loser_user, k.loser_device, k.opened_ms, "
                     "k.status, coalesce(k.resolved_by, ''), coalesce(k.resolution, '') FROM "
                     "conflicts k JOIN records r ON r.rid = k.rid" +
                         where + " ORDER BY k.cid");
    for (std::size_t i = 0; i < args.size(); ++i)
        s.bind(static_cast<int>(i + 1), std::string_view(args[i]));
    std::vector<conflict_entry> out;
    while (s.step()) {
        conflict_entry e;
        e.id = s.int64(0);
        e.collection = std::string(s.text(1));
        e.record = uuid::from_blob(s.blob(2)).value_or(uuid{});
        e.township = std::string(s.text(3));
        e.village = std::string(s.text(4));
        if (!who.where.contains(e.township, e.village))
            continue;
        e.field = std::string(s.text(5));
        e.winner_value = parse_value(s.text(6));
        e.winner_ms = hlc::parse(s.text(7)).value_or(hlc{}).ms;
        e.winner_user = std::string(s.text(8));
        e.winner_device = std::string(s.text(9));
        e.loser_value = parse_value(s.text(10));
        e.loser_ms = hlc::parse(s.text(11)).value_or(hlc{}).ms;
        e.loser_user = std::string(s.text(12));
        e.loser_device = std::string(s.text(13));
        e.opened_ms = s.int64(14);
        e.status = std::string(s.text(15));
        e.resolved_by = std::string(s.text(16));
        e.resolution = std::string(s.text(17));
        if (const auto* coll = cat_.find(e.collection))
            if (const auto* f = coll->field(e.field); f && f->personal) {
                if (e.winner_value.is_string())
                    e.winner_value = mask_value(f->format, e.winner_value.as_string());
                if (e.loser_value.is_string())
                    e.loser_value = mask_value(f->format, e.loser_value.as_string());
            }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<quarantine_entry> review::quarantine(sql::connection& c, const principal& who,
                                                 std::string_view status) const {
    // Entries whose township could not be read are the district's to handle.
    std::string where = " WHERE status = ?";
    std::vector<std::string> args{std::string(status)};
    if (!who.where.whole_district()) {
        where += " AND township = ?";
        args.push_back(who.where.township);
    }
    sql::statement s(c.handle(), "SELECT qid, device, user, mutation_seq, collection, record_id, "
                                 "coalesce(township, ''), payload, code, field, message_zh, "
                                 "message_en, received_ms, status, coalesce(note, '') FROM "
                                 "quarantine" +
                                     where + " ORDER BY qid");
    for (std::size_t i = 0; i < args.size(); ++i)
        s.bind(static_cast<int>(i + 1), std::string_view(args[i]));
    std::vector<quarantine_entry> out;
    while (s.step()) {
        quarantine_entry e;
        e.id = s.int64(0);
        e.device = std::string(s.text(1));
        e.user = std::string(s.text(2));
        e.mutation_seq = static_cast<std::uint64_t>(s.int64(3));
        e.collection = std::string(s.text(4));
        e.record_id = std::string(s.text(5));
        e.township = std::string(s.text(6));
        e.payload = parse_value(s.text(7));
        e.code = std::string(s.text(8));
        e.field = std::string(s.text(9));
        e.message_zh = std::string(s.text(10));
        e.message_en = std::string(s.text(11));
        e.received_ms = s.int64(12);
        e.status = std::string(s.text(13));
        e.note = std::string(s.text(14));
        // Mask personal values inside the payload's field entries.
        if (auto* p = e.payload.if_object())
            if (auto* fields = p->if_contains("fields"); fields && fields->is_object())
                if (const auto* coll = cat_.find(e.collection))
                    for (auto& kv : fields->as_object()) {
                        const auto* f = coll->field(kv.key());
                        if (!f || !f->personal || !kv.value().is_object())
                            continue;
                        if (auto* v = kv.value().as_object().if_contains("value");
                            v && v->is_string())
                            *v = mask_value(f->format, v->as_string());
                    }
        out.push_back(std::move(e));
    }
    return out;
}

result<mutation_ack> review::resolve(sql::connection& c, engine& e, const principal& who,
                                     std::int64_t conflict_id, std::string_view choice,
                                     const json::value* entered) const {
    std::string collection, field, township, village, winner, loser;
    uuid record;
    {
        auto s = c.cached("SELECT k.collection, k.field, k.township, coalesce(k.village, ''), "
                          "k.winner_value, k.loser_value, r.id FROM conflicts k JOIN records r ON "
                          "r.rid = k.rid WHERE k.cid = ? AND k.status = 'open'");
        s->bind_all(conflict_id);
        if (!s->step())
            return errc::not_found;
        collection = std::string(s->text(0));
        field = std::string(s->text(1));
        township = std::string(s->text(2));
        village = std::string(s->text(3));
        winner = std::string(s->text(4));
        loser = std::string(s->text(5));
        record = uuid::from_blob(s->blob(6)).value_or(uuid{});
    }
    if (!who.where.contains(township, village))
        return errc::not_found;
    json::value value;
    if (choice == "winner")
        value = parse_value(winner);
    else if (choice == "loser")
        value = parse_value(loser);
    else if (choice == "value" && entered)
        value = *entered;
    else
        return errc::invalid_argument;
    auto ack = e.write(c, who, collection, record, json::object{{field, value}});
    if (ack.status != ack_status::applied)
        return ack; // the entered value failed validation: the conflict stays open
    std::string resolution = std::string(choice) + ": " + json::serialize(value);
    if (auto closed = e.close_conflict(c, who, conflict_id, resolution); !closed)
        return closed.error();
    return ack;
}

result<mutation_ack> review::set_review_state(sql::connection& c, engine& e, const principal& who,
                                              const uuid& id, review_state state,
                                              std::string_view comment) const {
    if (state == review_state::has_issues && comment.empty())
        return errc::invalid_argument; // the worker must be told what to fix
    if (comment.size() > 2000)
        return errc::too_large;
    auto rec = get(c, who, id);
    if (!rec)
        return rec.error();
    return e.write(c, who, rec->collection, id,
                   json::object{{"_review_state", to_string(state)},
                                {"_review_comment", comment},
                                {"_review_by", who.user}});
}

result<void> review::dismiss(sql::connection& c, const principal& who, std::int64_t qid,
                             std::string_view reason) const {
    if (reason.empty())
        return errc::invalid_argument;
    auto found = quarantine(c, who, "open");
    if (std::none_of(found.begin(), found.end(),
                     [&](const quarantine_entry& q) { return q.id == qid; }))
        return errc::not_found;
    auto s = c.cached("UPDATE quarantine SET status = 'dismissed', handled_by = ?, handled_ms = ?, "
                      "note = ? WHERE qid = ?");
    s->bind_all(who.user, system_wall_ms(), reason, qid);
    s->run();
    return {};
}

result<mutation_ack> review::resubmit(sql::connection& c, engine& e, const principal& who,
                                      std::int64_t qid, const json::object& repaired) const {
    auto found = quarantine(c, who, "open");
    auto it = std::find_if(found.begin(), found.end(),
                           [&](const quarantine_entry& q) { return q.id == qid; });
    if (it == found.end())
        return errc::not_found;
    auto id = uuid::parse(it->record_id);
    if (!id || !cat_.find(it->collection) || repaired.empty())
        return errc::invalid_argument;
    for (const auto& kv : repaired)
        if (kv.key().starts_with("_") && kv.key() != "_deleted")
            return errc::invalid_argument; // review fields are set_review_state's
    // The mutation as the tablet sent it (unmasked), with the repaired values over it: the head
    // corrects what was wrong and resubmits the rest unchanged (personal numbers they only see
    // masked included). Reserved fields the tablet should not have sent are left out, and so is
    // a field somebody changed after the value the tablet edited (its clock is no longer the
    // mutation's base): that later, acknowledged value stands.
    json::object stored_clocks;
    bool exists = false;
    {
        auto s = c.cached("SELECT fields, clocks FROM records WHERE id = ?");
        s->bind_all(id->span());
        if (s->step()) {
            exists = true;
            auto stored_fields = parse_value(s->text(0));
            auto clocks = parse_value(s->text(1));
            if (clocks.is_object() && stored_fields.is_object()) {
                stored_clocks = std::move(clocks.as_object());
                expand_clocks(stored_clocks, stored_fields.as_object());
            }
        }
    }
    auto clock_of = [](const json::value* v) {
        return v && v->is_string() ? hlc::parse(v->as_string()) : std::nullopt;
    };
    json::object fields;
    {
        auto s = c.cached("SELECT payload FROM quarantine WHERE qid = ?");
        s->bind_all(qid);
        if (s->step()) {
            auto payload = parse_value(s->text(0));
            if (const auto* p = payload.if_object())
                if (const auto* sent = p->if_contains("fields"); sent && sent->is_object())
                    for (const auto& kv : sent->as_object()) {
                        const auto* w = kv.value().if_object();
                        const auto* v = w ? w->if_contains("value") : nullptr;
                        if (!v || (kv.key().starts_with("_") && kv.key() != "_deleted") ||
                            repaired.contains(kv.key()))
                            continue;
                        if (exists && clock_of(stored_clocks.if_contains(kv.key())) !=
                                          clock_of(w->if_contains("base")))
                            continue;
                        fields[kv.key()] = *v;
                    }
        }
    }
    // null for a field the collection does not declare takes it out (a misnamed or extra field
    // the tablet sent: bad_field_name, too_many_fields); for a declared one it clears the value.
    const auto* coll = cat_.find(it->collection);
    for (const auto& kv : repaired)
        if (kv.value().is_null() && !coll->field(kv.key()) && kv.key() != "_deleted")
            fields.erase(kv.key());
        else
            fields[kv.key()] = kv.value();
    if (fields.empty())
        return errc::invalid_argument;
    auto ack = e.write(c, who, it->collection, *id, fields);
    if (ack.status != ack_status::applied)
        return ack;
    auto s = c.cached("UPDATE quarantine SET status = 'resubmitted', handled_by = ?, handled_ms = "
                      "? WHERE qid = ?");
    s->bind_all(who.user, system_wall_ms(), qid);
    s->run();
    return ack;
}

result<std::string> review::reveal(sql::connection& c, const principal& who, const uuid& id,
                                   std::string_view field, std::int64_t now_ms) const {
    std::string collection, township, village, fields;
    {
        auto s = c.cached("SELECT collection, township, coalesce(village, ''), fields FROM "
                          "records WHERE id = ?");
        s->bind_all(id.span());
        if (!s->step())
            return errc::not_found;
        collection = std::string(s->text(0));
        township = std::string(s->text(1));
        village = std::string(s->text(2));
        fields = std::string(s->text(3));
    }
    if (!who.where.contains(township, village))
        return errc::not_found;
    const auto* coll = cat_.find(collection);
    const auto* f = coll ? coll->field(field) : nullptr;
    if (!f || !f->personal)
        return errc::invalid_argument;
    auto value = std::string(str(parse_object(fields), field));
    log_access(c, who.user, "reveal", id.to_string(), field, {}, now_ms);
    return value;
}

void review::log_access(sql::connection& c, std::string_view user, std::string_view action,
                        std::string_view record_id, std::string_view field, std::string_view detail,
                        std::int64_t now_ms) {
    auto s = c.cached("INSERT INTO access_log(user, action, record_id, field, detail, at_ms) "
                      "VALUES(?, ?, ?, ?, ?, ?)");
    s->bind_all(user, action, record_id, field, detail, now_ms);
    s->run();
}

std::vector<json::object> review::access_log(sql::connection& c, std::uint32_t limit) {
    std::vector<json::object> out;
    auto s = c.cached("SELECT user, action, coalesce(record_id, ''), coalesce(field, ''), "
                      "coalesce(detail, ''), at_ms FROM access_log ORDER BY id DESC LIMIT ?");
    s->bind_all(static_cast<std::int64_t>(std::min<std::uint32_t>(limit, 10000)));
    while (s->step())
        out.push_back(json::object{{"user", s->text(0)},
                                   {"action", s->text(1)},
                                   {"record_id", s->text(2)},
                                   {"field", s->text(3)},
                                   {"detail", s->text(4)},
                                   {"at_ms", s->int64(5)}});
    return out;
}

} // namespace fieldsync
