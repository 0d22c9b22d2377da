// The sync engine's targets: push and pull bodies and cursors against a small district in memory.
#include "fuzz_env.hpp"
#include "fuzz_targets.hpp"

#include "schema/catalog.hpp"
#include "schema/rules.hpp"
#include "sync/engine.hpp"
#include "sync/protocol.hpp"
#include "sync/rollups.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>

namespace fieldsync::fuzz {

namespace {

namespace json = boost::json;

// Committed before fuzzing starts, so that inputs meet existing records (updates, conflicts,
// references, another township's record) and earlier mutation numbers (duplicates).
// fz0: another tablet of 郭家镇; fzb: a tablet of 温泉镇; fz1: the fuzzed tablet (seq 1 and 2
// taken, 2 rejected so that its stored ack is replayed).
constexpr const char* seed_pushes[][2] = {
    {"fz0", R"({"schema_version":1,"mutations":[
{"seq":1,"collection":"household","id":"01900000-0000-7000-8000-000000000001","fields":{
 "township":{"value":"500154105","clock":"1753900000000:0:fz0","base":null},
 "village":{"value":"500154105201","clock":"1753900000000:0:fz0","base":null},
 "head_name":{"value":"王大山","clock":"1753900000000:0:fz0","base":null},
 "members":{"value":4,"clock":"1753900000000:0:fz0","base":null}}},
{"seq":2,"collection":"person","id":"01900000-0000-7000-8000-000000000002","fields":{
 "township":{"value":"500154105","clock":"1753900000001:0:fz0","base":null},
 "village":{"value":"500154105201","clock":"1753900000001:0:fz0","base":null},
 "household":{"value":"01900000-0000-7000-8000-000000000001","clock":"1753900000001:0:fz0","base":null},
 "name":{"value":"王小明","clock":"1753900000001:0:fz0","base":null},
 "id_number":{"value":"500154198001010032","clock":"1753900000001:0:fz0","base":null},
 "gender":{"value":"male","clock":"1753900000001:0:fz0","base":null},
 "birth_date":{"value":"1980-01-01","clock":"1753900000001:0:fz0","base":null},
 "disability_category":{"value":"physical","clock":"1753900000001:0:fz0","base":null},
 "disability_grade":{"value":3,"clock":"1753900000001:0:fz0","base":null},
 "employment_status":{"value":"unemployed","clock":"1753900000001:0:fz0","base":null}}},
{"seq":3,"collection":"home_visit","id":"01900000-0000-7000-8000-000000000003","fields":{
 "township":{"value":"500154105","clock":"1753900000002:0:fz0","base":null},
 "village":{"value":"500154105201","clock":"1753900000002:0:fz0","base":null},
 "person":{"value":"01900000-0000-7000-8000-000000000002","clock":"1753900000002:0:fz0","base":null},
 "visited_at":{"value":"2025-07-30T10:00:00+08:00","clock":"1753900000002:0:fz0","base":null},
 "worker":{"value":"李晓梅","clock":"1753900000002:0:fz0","base":null},
 "visit_type":{"value":"verification","clock":"1753900000002:0:fz0","base":null},
 "basic_info_verified":{"value":true,"clock":"1753900000002:0:fz0","base":null}}}]})"},
    {"fzb", R"({"schema_version":1,"mutations":[
{"seq":1,"collection":"person","id":"01900000-0000-7000-8000-000000000004","fields":{
 "township":{"value":"500154106","clock":"1753900000003:0:fzb","base":null},
 "village":{"value":"500154106201","clock":"1753900000003:0:fzb","base":null},
 "name":{"value":"赵四","clock":"1753900000003:0:fzb","base":null},
 "id_number":{"value":"500154199002020042","clock":"1753900000003:0:fzb","base":null},
 "gender":{"value":"female","clock":"1753900000003:0:fzb","base":null},
 "birth_date":{"value":"1990-02-02","clock":"1753900000003:0:fzb","base":null},
 "disability_category":{"value":"visual","clock":"1753900000003:0:fzb","base":null},
 "disability_grade":{"value":2,"clock":"1753900000003:0:fzb","base":null},
 "employment_status":{"value":"unemployed","clock":"1753900000003:0:fzb","base":null}}}]})"},
    {"fz1", R"({"schema_version":1,"mutations":[
{"seq":1,"collection":"person","id":"01900000-0000-7000-8000-000000000005","fields":{
 "township":{"value":"500154105","clock":"1753900000004:0:fz1","base":null},
 "village":{"value":"500154105201","clock":"1753900000004:0:fz1","base":null},
 "name":{"value":"钱五","clock":"1753900000004:0:fz1","base":null},
 "id_number":{"value":"500154197503030055","clock":"1753900000004:0:fz1","base":null},
 "gender":{"value":"male","clock":"1753900000004:0:fz1","base":null},
 "birth_date":{"value":"1975-03-03","clock":"1753900000004:0:fz1","base":null},
 "disability_category":{"value":"hearing","clock":"1753900000004:0:fz1","base":null},
 "disability_grade":{"value":1,"clock":"1753900000004:0:fz1","base":null},
 "employment_status":{"value":"unemployed","clock":"1753900000004:0:fz1","base":null}}},
{"seq":2,"collection":"person","id":"01900000-0000-7000-8000-000000000006","fields":{
 "township":{"value":"500154105","clock":"1753900000005:0:fz1","base":null},
 "id_number":{"value":"500154197503030056","clock":"1753900000005:0:fz1","base":null}}}]})"},
};

struct district {
    sql::connection db = open_fuzz_district(":memory:");
    engine eng{catalog::builtin(), engine_config{}, db, [] { return fixed_wall_ms; }};
    rollups sums;
    principal town{"fz_user", "fz1", scope{t105, {}}};
    principal village{"fz_user_v", "fz2", scope{t105, {v105}}};
    principal whole{"fz_admin", "fza", scope{}};
    scope other{t106, {}}; // a cursor of 温泉镇's workers, for the cursor target

    district() {
        eng.add_observer(&sums);
        for (const auto& [device, text] : seed_pushes) {
            std::string why;
            auto req = decode_push(json::parse(text), &why);
            check(static_cast<bool>(req), "seed push decodes: " + why);
            principal who{std::string("user-") + device, device,
                          scope{std::string_view(device) == "fzb" ? t106 : t105, {}}};
            sql::transaction tx(db);
            auto res = eng.push(db, who, *req);
            tx.commit();
            check(res.acks.size() == req->mutations.size(), "seed push acknowledged");
        }
        check(engine::last_seq(db) == 5, "seed records stored");
    }
};

district& env() {
    static district d;
    return d;
}

std::optional<json::value> parse_input(const std::uint8_t* data, std::size_t size) {
    json::parse_options opts;
    opts.max_depth = 32; // fieldsyncd's default max_json_depth
    boost::system::error_code ec;
    auto v = json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec, {}, opts);
    if (ec)
        return std::nullopt;
    return v;
}

std::int64_t count(sql::connection& c, const char* sql_text, std::int64_t arg) {
    sql::statement s(c.handle(), sql_text);
    s.bind(1, arg);
    return s.step() ? s.int64(0) : -1;
}

// A pull answer is truthful and stays in scope; its cursor is one this engine accepts.
void check_pull(district& d, const principal& who, const pull_request& req,
                const result<pull_result>& res) {
    if (!res) {
        check(res.error() == errc::bad_cursor, "a pull fails only for a bad cursor");
        check(!req.cursor.empty(), "a pull without a cursor never fails");
        return;
    }
    check(res->changes.size() <= std::max<std::uint32_t>(req.limit, 1), "page within the limit");
    std::uint64_t prev = 0;
    for (const auto& ch : res->changes) {
        check(ch.seq > prev, "changes in sequence order");
        prev = ch.seq;
        if (ch.gone) {
            check(ch.fields.empty(), "a gone marker carries no fields");
            continue;
        }
        if (!who.where.whole_district()) {
            const auto* t = ch.fields.if_contains("township");
            check(t && t->is_string() && t->as_string() == who.where.township,
                  "a pulled record is in the caller's township");
            if (!who.where.villages.empty()) {
                const auto* v = ch.fields.if_contains("village");
                check(v && v->is_string() && who.where.contains(who.where.township, v->as_string()),
                      "a pulled record is in the caller's villages");
            }
        }
    }
    auto cur = d.eng.decode_cursor(res->cursor);
    check(cur && cur->scope_fingerprint == who.where.fingerprint(), "the new cursor decodes");
    if (res->complete)
        check(cur->seq == engine::last_seq(d.db), "a complete page reaches the high-water mark");
    auto text = json::serialize(encode(*res));
    auto back = decode_pull_result(parse_output(text, "pull result is JSON"));
    check(static_cast<bool>(back), "the client decodes the pull result");
}

} // namespace

int fuzz_push(const std::uint8_t* data, std::size_t size) {
    auto& d = env();
    auto v = parse_input(data, size);
    if (!v)
        return 0;
    std::string why;
    auto req = decode_push(*v, &why);
    if (!req) {
        check(!why.empty(), "a refused push says why");
        return 0;
    }
    sql::transaction tx(d.db); // never committed: every input meets the same district
    const auto before = engine::last_seq(d.db);
    auto res = d.eng.push(d.db, d.town, *req);
    check(res.acks.size() <= req->mutations.size(), "at most one ack per mutation");
    std::uint32_t gaps = 0;
    for (std::size_t i = 0; i < res.acks.size(); ++i) {
        const auto& a = res.acks[i];
        check(a.seq == req->mutations[i].seq, "acks in request order");
        if (a.status == ack_status::gap) {
            ++gaps;
            check(i + 1 == res.acks.size(), "nothing after a gap");
        }
        if (a.status != ack_status::applied)
            check(!a.code.empty() && !a.message.empty() && !a.message_en.empty(),
                  "a refusal has a code and messages");
    }
    check(res.applied + res.rejected + res.duplicates + gaps == res.acks.size(),
          "every ack counted once");
    const auto after = engine::last_seq(d.db);
    check(after - before <= res.applied, "a change only for an applied mutation");
    check(count(d.db, "SELECT count(*) FROM records WHERE seq > ? AND township <> '500154105'",
                static_cast<std::int64_t>(before)) == 0,
          "nothing written outside the worker's township");
    check(count(d.db, "SELECT count(*) FROM records WHERE seq > ?",
                static_cast<std::int64_t>(before)) <= static_cast<std::int64_t>(res.applied),
          "records changed only by applied mutations");
    auto text = json::serialize(encode(res));
    auto back = decode_push_result(parse_output(text, "push result is JSON"));
    check(static_cast<bool>(back), "the client decodes the push result");
    // The quarantine keeps what it was given as JSON text.
    sql::statement q(d.db.handle(), "SELECT payload FROM quarantine ORDER BY qid DESC LIMIT 1");
    if (res.rejected && q.step())
        parse_output(q.text(0), "quarantined payload is JSON");
    return 0;
}

int fuzz_pull(const std::uint8_t* data, std::size_t size) {
    auto& d = env();
    auto v = parse_input(data, size);
    if (!v)
        return 0;
    std::string why;
    auto req = decode_pull(*v, &why);
    if (!req) {
        check(!why.empty(), "a refused pull says why");
        return 0;
    }
    for (const principal* who : {&d.town, &d.village, &d.whole})
        check_pull(d, *who, *req, d.eng.pull(d.db, *who, *req));
    return 0;
}

int fuzz_cursor(const std::uint8_t* data, std::size_t size) {
    auto& d = env();
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto cur = d.eng.decode_cursor(text);
    if (!cur)
        return 0;
    auto mine = d.eng.decode_cursor(d.eng.encode_cursor(0, d.town.where));
    if (cur->epoch == mine->epoch) {
        // Accepted under our key: it must be exactly what encode_cursor issues for some scope
        // (no second spelling of a cursor, no forged one).
        bool issued = false;
        for (const scope* where : {&d.town.where, &d.village.where, &d.whole.where, &d.other})
            if (cur->scope_fingerprint == where->fingerprint())
                issued = d.eng.encode_cursor(cur->seq, *where) == text;
        check(issued, "an accepted cursor is one this server issued, spelled as issued");
    }
    pull_request req;
    req.cursor = std::string(text);
    req.limit = 3;
    for (const principal* who : {&d.town, &d.village, &d.whole})
        check_pull(d, *who, req, d.eng.pull(d.db, *who, req));
    return 0;
}

} // namespace fieldsync::fuzz
