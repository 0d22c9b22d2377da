#include "server/review_api.hpp"

#include "schema/formats.hpp"
#include "sync/export.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

namespace fieldsync::server {

namespace json = boost::json;

namespace {

http_response json_reply(unsigned status, const json::value& v) {
    http_response r;
    r.status = status;
    r.body = json::serialize(v);
    return r;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char ch = s[i];
        if (ch == '+') {
            out += ' ';
        } else if (ch == '%') {
            auto hex = [](char h) {
                if (h >= '0' && h <= '9')
                    return h - '0';
                if (h >= 'a' && h <= 'f')
                    return h - 'a' + 10;
                if (h >= 'A' && h <= 'F')
                    return h - 'A' + 10;
                return -1;
            };
            int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
            int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                out += ch;
                continue;
            }
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += ch;
        }
    }
    return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
    std::map<std::string, std::string> out;
    while (!q.empty()) {
        auto amp = q.find('&');
        auto part = q.substr(0, amp);
        auto eq = part.find('=');
        if (!part.empty())
            out[percent_decode(part.substr(0, eq))] =
                eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1));
        if (amp == std::string_view::npos)
            break;
        q = q.substr(amp + 1);
    }
    return out;
}

std::uint32_t number_or(const std::map<std::string, std::string>& q, const char* key,
                        std::uint32_t def) {
    auto it = q.find(key);
    if (it == q.end() || it->second.empty() || it->second.size() > 9)
        return def;
    for (char ch : it->second)
        if (ch < '0' || ch > '9')
            return def;
    return static_cast<std::uint32_t>(std::stoul(it->second));
}

std::string get(const std::map<std::string, std::string>& q, const char* key) {
    auto it = q.find(key);
    return it == q.end() ? std::string() : it->second;
}

json::object summary_json(const record_summary& r) {
    return {{"collection", r.collection},
            {"id", r.id.to_string()},
            {"township", r.township},
            {"village", r.village},
            {"fields", r.fields},
            {"review", r.review},
            {"review_comment", r.review_comment},
            {"created_by", r.created_by},
            {"created_device", r.created_device},
            {"created_ms", r.created_ms},
            {"updated_ms", r.updated_ms},
            {"deleted", r.deleted},
            {"open_conflicts", r.open_conflicts}};
}

json::object figures_json(const figures& f) {
    json::object o;
    for (const auto& [k, v] : f)
        o[k] = v;
    return o;
}

json::object ack_json(const mutation_ack& a) {
    return encode(a).as_object();
}

std::string_view str_field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

// Splits "/v1/review/records/<id>/history" after `prefix` into the id and the action.
std::pair<std::string_view, std::string_view> id_and_action(std::string_view path,
                                                            std::string_view prefix) {
    auto rest = path.substr(prefix.size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos)
        return {rest, {}};
    return {rest.substr(0, slash), rest.substr(slash + 1)};
}

// A CSV or XLSX download of `table`; an error response if the workbook cannot be written.
http_response spreadsheet(const std::vector<std::vector<std::string>>& table,
                          std::string_view format, std::string_view sheet,
                          const std::string& file_stem) {
    http_response res;
    if (format == "csv") {
        res.body = to_csv(table);
        res.content_type = "text/csv; charset=utf-8";
    } else {
        auto x = to_xlsx(table, sheet);
        if (!x)
            return error_response(500, "internal", "the spreadsheet could not be written");
        res.body = std::move(*x);
        res.content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    }
    res.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + file_stem + "." +
                                                        std::string(format) + "\"");
    return res;
}

// A decimal row id from a path segment.
std::optional<std::int64_t> row_id(std::string_view text) {
    if (text.empty() || text.size() > 17)
        return std::nullopt;
    for (char ch : text)
        if (ch < '0' || ch > '9')
            return std::nullopt;
    return std::stoll(std::string(text));
}

// 503 for a change the writer did not commit: shutting_down while the server stops (the writer
// answers errc::unsupported), storage_failure otherwise. Nothing was stored, so the client retries
// unchanged after Retry-After, as on the sync API (docs/protocol.md "Errors").
http_response not_committed(boost::system::error_code ec, std::string_view storage_message) {
    auto res = ec == errc::unsupported
                   ? error_response(503, "shutting_down", "the server is stopping")
                   : error_response(503, "storage_failure", storage_message);
    res.headers.emplace_back("Retry-After", "5");
    return res;
}

// GET /v1/rollups/{month}[/export]: the district's report, or a township head's own township
// (its figures are then the total); `format` csv|xlsx for the export, empty for JSON.
http_response month_report(sql::connection& c, const std::string& month, bool admin,
                           const std::string& own_township, const std::string& format, bool zh) {
    auto report = rollups::report(c, month);
    if (!admin) {
        std::erase_if(report.townships,
                      [&](const township_month& t) { return t.township != own_township; });
        report.total = report.townships.empty() ? figures{} : report.townships[0].live;
    }
    if (!format.empty())
        return spreadsheet(report_table(report, zh), format, month, "rollups-" + month);
    json::array rows;
    for (const auto& t : report.townships) {
        json::object changes;
        for (const auto& [k, v] : t.changes)
            changes[k] = json::array{v.first, v.second};
        rows.push_back(json::object{{"township", t.township},
                                    {"name", t.name},
                                    {"live", figures_json(t.live)},
                                    {"approved", t.approved},
                                    {"revision", t.revision},
                                    {"changed_since_approval", t.changed_since_approval},
                                    {"approved_figures", figures_json(t.approved_figures)},
                                    {"changes", std::move(changes)}});
    }
    return json_reply(200, json::object{{"month", report.month},
                                        {"townships", std::move(rows)},
                                        {"total", figures_json(report.total)}});
}

// The answer to an expected failure of a review action.
void answer_error(const review_api::reply_fn& reply, boost::system::error_code ec) {
    if (ec == errc::not_found)
        return reply(error_response(404, "not_found", "not found in your scope"));
    if (ec == errc::too_large)
        return reply(error_response(413, "too_large", "the comment is too long"));
    reply(error_response(400, "invalid_argument", "check the request's values"));
}

// The answer to a server-side write: 200 with the ack, 422 with the rejection, or the error.
void answer_write(const review_api::reply_fn& reply, const result<mutation_ack>& r) {
    if (!r)
        return answer_error(reply, r.error());
    if (r->status != ack_status::applied) // the worker's sentence too, for the page in Chinese
        return reply(json_reply(422, json::object{{"error", json::object{{"code", r->code},
                                                                         {"message", r->message_en},
                                                                         {"message_zh", r->message},
                                                                         {"field", r->field}}}}));
    reply(json_reply(200, ack_json(*r)));
}

// Coverage in percent (one decimal, as in the exports), null without a denominator.
json::value coverage(const figures& f, const char* numerator, const char* denominator) {
    auto get = [&](const char* k) {
        auto it = f.find(k);
        return it == f.end() ? std::int64_t{0} : it->second;
    };
    auto text = percent(get(numerator), get(denominator));
    if (text.empty())
        return nullptr;
    return std::stod(text);
}

// The "four ones" of a figures set, flat and with their coverage, as the page shows them.
void add_four_ones(json::object& o, const figures& f) {
    auto get = [&](const char* k) {
        auto it = f.find(k);
        return it == f.end() ? std::int64_t{0} : it->second;
    };
    o["four_ones_base"] = get("four_ones_base");
    json::object cov;
    for (const char* kind : {"verified", "assessed", "registered", "served"}) {
        std::string indicator = std::string("four_ones_") + kind;
        o[kind] = get(indicator.c_str());
        cov[kind] = coverage(f, indicator.c_str(), "four_ones_base");
    }
    o["coverage"] = std::move(cov);
}

std::int64_t count_of(sql::connection& c, const char* sql_text, std::string_view township) {
    auto s = c.cached(sql_text);
    s->bind_all(township);
    return s->step() ? s->int64(0) : 0;
}

// Months from `from` to `to` inclusive ("YYYY-MM"), at most `max`; empty if not a valid range.
std::vector<std::string> month_range(std::string_view from, std::string_view to, std::size_t max) {
    std::vector<std::string> out;
    if (!is_month(from) || !is_month(to) || from > to)
        return out;
    int y = std::stoi(std::string(from.substr(0, 4)));
    int m = std::stoi(std::string(from.substr(5, 2)));
    for (;;) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04d-%02d", y, m);
        out.emplace_back(buf);
        if (out.back() == to)
            return out;
        if (out.size() >= max)
            return {};
        if (++m == 13) {
            m = 1;
            ++y;
        }
    }
}

json::object label_json(const label& l) {
    return {{"zh", l.zh}, {"en", l.en}};
}

} // namespace

review_api::review_api(engine& eng, writer& w, rollups& monthly, std::size_t slice_weight)
    : engine_(eng), writer_(w), office_(eng.schema()), monthly_(monthly),
      slice_weight_(slice_weight) {}

std::string review_api::label_for(std::string_view path) {
    for (const char* fixed :
         {"/v1/admin/access-log", "/v1/review/records", "/v1/review/export", "/v1/review/conflicts",
          "/v1/review/quarantine", "/v1/review/overview", "/v1/rollups/trend", "/v1/divisions",
          "/v1/catalog"})
        if (path == fixed)
            return fixed;
    auto with_action = [&](std::string_view prefix, std::string_view label,
                           std::initializer_list<std::string_view> actions) -> std::string {
        auto [id, action] = id_and_action(path, prefix);
        (void)id;
        if (action.empty())
            return std::string(label);
        for (auto a : actions)
            if (action == a)
                return std::string(label) + "/" + std::string(a);
        return std::string(label) + "/other";
    };
    if (path.starts_with("/v1/review/records/"))
        return with_action("/v1/review/records/", "/v1/review/records/:id",
                           {"history", "review", "reveal"});
    if (path.starts_with("/v1/review/conflicts/"))
        return with_action("/v1/review/conflicts/", "/v1/review/conflicts/:id", {"resolve"});
    if (path.starts_with("/v1/review/quarantine/"))
        return with_action("/v1/review/quarantine/", "/v1/review/quarantine/:id",
                           {"resubmit", "dismiss"});
    if (path.starts_with("/v1/rollups/"))
        return with_action("/v1/rollups/", "/v1/rollups/:month", {"export", "approve"});
    return "/v1/review";
}

bool review_api::serves(std::string_view path) {
    return path.starts_with("/v1/review/") || path.starts_with("/v1/rollups/") ||
           path == "/v1/admin/access-log" || path == "/v1/divisions" || path == "/v1/catalog";
}

void review_api::handle(const review_call& call, sql::connection& c, reply_fn reply) {
    auto fail = [&](unsigned status, std::string_view code, std::string_view message) {
        reply(error_response(status, code, message));
    };
    const auto& who = call.id.who;
    const bool admin = call.id.role == auth::role::district_admin;
    const bool head = call.id.role == auth::role::township_head;
    const auto q = parse_query(call.query);
    const auto path = call.path;
    const bool is_get = call.method == method::get;
    const bool is_post = call.method == method::post;

    if (!admin && !head) {
        fail(403, "forbidden",
             "review is for township heads and district admins; field workers see their "
             "records on the tablet");
        return;
    }

    // Runs `apply` on the writer; answers with `respond(result)` after the commit.
    auto write = [this, reply](auto apply, auto respond) {
        using out_t = decltype(apply(std::declval<sql::connection&>()));
        auto out = std::make_shared<std::optional<out_t>>();
        writer_.submit([out, apply](sql::connection& db) { *out = apply(db); },
                       [out, respond, reply](boost::system::error_code ec) {
                           if (ec || !*out)
                               return reply(not_committed(ec, "not stored; try again"));
                           respond(**out);
                       });
    };
    auto not_found = [&] { fail(404, "not_found", "no such record in your scope"); };
    auto from_errc = [reply](boost::system::error_code ec) { answer_error(reply, ec); };

    if (path == "/v1/admin/access-log") {
        if (!admin || !is_get) {
            fail(admin ? 405 : 403, admin ? "method_not_allowed" : "forbidden",
                 "the access log is for district admins (GET)");
            return;
        }
        json::array entries;
        for (auto& e : review::access_log(c, number_or(q, "limit", 200)))
            entries.push_back(std::move(e));
        reply(json_reply(200, json::object{{"entries", std::move(entries)}}));
        return;
    }

    // ---- What the web page needs besides the records ----
    if (path == "/v1/divisions" || path == "/v1/catalog" || path == "/v1/review/overview" ||
        path == "/v1/rollups/trend") {
        if (!is_get) {
            fail(405, "method_not_allowed", "use GET");
            return;
        }
    }
    if (path == "/v1/divisions") {
        // A head sees their township and its villages; an admin the district.
        json::array out;
        auto s = c.cached("SELECT code, level, name, parent FROM divisions ORDER BY code");
        while (s->step()) {
            std::string code(s->text(0));
            if (!admin && !code.starts_with(who.where.township))
                continue;
            out.push_back(json::object{
                {"code", code},
                {"level", s->int64(1)},
                {"name", s->text(2)},
                {"parent", s->is_null(3) ? json::value(nullptr) : json::value(s->text(3))}});
        }
        reply(json_reply(200, json::object{{"divisions", std::move(out)}}));
        return;
    }
    if (path == "/v1/catalog") {
        json::object collections;
        for (const auto& [name, decl] : engine_.schema().collections()) {
            json::object fields;
            for (const auto& f : decl.fields) {
                json::object fo{{"type", to_string(f.type)},
                                {"label", label_json(f.title)},
                                {"required", f.required},
                                {"personal", f.personal}};
                if (!f.values.empty()) {
                    json::array values;
                    json::object labels;
                    for (std::size_t i = 0; i < f.values.size(); ++i) {
                        values.emplace_back(f.values[i]);
                        labels[f.values[i]] = label_json(f.value_titles[i]);
                    }
                    fo["values"] = std::move(values);
                    fo["value_labels"] = std::move(labels);
                }
                if (!f.ref.empty())
                    fo["ref"] = f.ref;
                fields[f.name] = std::move(fo);
            }
            collections[name] = json::object{{"label", label_json(decl.title)},
                                             {"date_field", collected_date_field(name)},
                                             {"township_field", decl.township_field},
                                             {"village_field", decl.village_field},
                                             {"fields", std::move(fields)}};
        }
        json::object indicators;
        for (const auto& i : rollup_indicators())
            indicators[i] = label_json(indicator_label(i));
        reply(json_reply(200, json::object{{"collections", std::move(collections)},
                                           {"indicators", std::move(indicators)}}));
        return;
    }
    if (path == "/v1/review/overview") {
        std::string month = get(q, "month");
        std::string township = get(q, "township");
        if (!is_month(month)) {
            fail(400, "invalid_argument", "give month=YYYY-MM");
            return;
        }
        if (admin && township.empty()) {
            fail(400, "invalid_argument", "a district admin gives township=CODE");
            return;
        }
        if (!admin && township.empty())
            township = who.where.township;
        if (!admin && township != who.where.township) {
            fail(404, "not_found", "no such township in your scope");
            return;
        }
        {
            auto s = c.cached("SELECT 1 FROM divisions WHERE code = ? AND level = 9");
            s->bind_all(township);
            if (!s->step()) {
                fail(404, "not_found", "no such township in your scope");
                return;
            }
        }
        with_open_months(
            c, {month},
            [this, who, township, month](sql::connection& db) {
                return overview(db, who, township, month);
            },
            reply);
        return;
    }
    if (path == "/v1/rollups/trend") {
        auto months = month_range(get(q, "from"), get(q, "to"), 36);
        if (months.empty()) {
            fail(400, "invalid_argument",
                 "give from=YYYY-MM and to=YYYY-MM, from <= to, at most 36 months");
            return;
        }
        std::string township = who.where.township;
        with_open_months(
            c, months,
            [this, months, admin, township](sql::connection& db) {
                return trend(db, months, admin, township);
            },
            reply);
        return;
    }

    // ---- Records ----
    if (path == "/v1/review/records" || path == "/v1/review/export") {
        record_query rq;
        rq.collection = get(q, "collection");
        rq.village = get(q, "village");
        rq.worker = get(q, "worker");
        rq.review = get(q, "review");
        rq.text = get(q, "q");
        rq.from = get(q, "from");
        rq.to = get(q, "to");
        rq.include_deleted = get(q, "include_deleted") == "true";
        rq.limit = number_or(q, "limit", 50);
        rq.offset = number_or(q, "offset", 0);
        if (!is_get) {
            fail(405, "method_not_allowed", "use GET");
            return;
        }
        if (path == "/v1/review/export") {
            const auto* decl = engine_.schema().find(rq.collection);
            auto format = get(q, "format");
            if (!decl || (format != "csv" && format != "xlsx")) {
                fail(400, "invalid_argument", "give collection=NAME and format=csv|xlsx");
                return;
            }
            std::vector<record_summary> all;
            rq.limit = 500;
            rq.offset = 0;
            for (;;) {
                auto page = office_.list(c, who, rq);
                if (!page) {
                    fail(400, "invalid_argument", "check the filters (dates are YYYY-MM-DD)");
                    return;
                }
                all.insert(all.end(), page->items.begin(), page->items.end());
                if (page->items.size() < rq.limit || all.size() > 200000)
                    break;
                rq.offset += rq.limit;
            }
            reply(spreadsheet(records_table(*decl, all, get(q, "lang") != "en"), format,
                              rq.collection, rq.collection));
            return;
        }
        auto page = office_.list(c, who, rq);
        if (!page) {
            fail(400, "invalid_argument",
                 "check the filters: collection, review (received|has_issues|approved), dates "
                 "YYYY-MM-DD, q at most 200 characters");
            return;
        }
        json::array items;
        for (const auto& r : page->items)
            items.push_back(summary_json(r));
        reply(json_reply(200, json::object{{"items", std::move(items)},
                                           {"total", page->total},
                                           {"offset", rq.offset}}));
        return;
    }
    if (path.starts_with("/v1/review/records/")) {
        auto [id_text, action] = id_and_action(path, "/v1/review/records/");
        auto id = uuid::parse(id_text);
        if (!id) {
            not_found();
            return;
        }
        if (action.empty() && is_get) {
            auto r = office_.get(c, who, *id);
            if (!r)
                not_found();
            else
                reply(json_reply(200, summary_json(*r)));
            return;
        }
        if (action == "history" && is_get) {
            auto h = office_.history(c, who, *id);
            if (!h) {
                not_found();
                return;
            }
            json::array entries;
            for (const auto& e : *h)
                entries.push_back(json::object{{"seq", e.seq},
                                               {"user", e.user},
                                               {"device", e.device},
                                               {"at_ms", e.at_ms},
                                               {"changes", e.changes}});
            reply(json_reply(200, json::object{{"history", std::move(entries)}}));
            return;
        }
        if (action == "review" && is_post) {
            auto state = parse_review_state(str_field(call.body, "state"));
            if (!state) {
                fail(400, "invalid_argument",
                     "\"state\" must be received, has_issues or approved (has_issues needs a "
                     "\"comment\")");
                return;
            }
            std::string comment(str_field(call.body, "comment"));
            auto uid = *id;
            write(
                [this, who, uid, s = *state, comment](sql::connection& db) {
                    return office_.set_review_state(db, engine_, who, uid, s, comment);
                },
                [reply](const result<mutation_ack>& r) { answer_write(reply, r); });
            return;
        }
        if (action == "reveal" && is_post) {
            std::string field(str_field(call.body, "field"));
            auto uid = *id;
            write(
                [this, who, uid, field](sql::connection& db) {
                    return office_.reveal(db, who, uid, field, system_wall_ms());
                },
                [reply, from_errc](const result<std::string>& r) {
                    if (!r)
                        return from_errc(r.error());
                    reply(json_reply(200, json::object{{"value", *r}}));
                });
            return;
        }
        fail(405, "method_not_allowed", "not a method or action of records");
        return;
    }

    // ---- Conflicts ----
    if (path == "/v1/review/conflicts") {
        auto status = get(q, "status");
        if (status.empty())
            status = "open";
        if (!is_get || (status != "open" && status != "resolved")) {
            fail(400, "invalid_argument", "GET with status=open|resolved");
            return;
        }
        json::array items;
        for (const auto& e : office_.conflicts(c, who, status))
            items.push_back(json::object{{"id", e.id},
                                         {"collection", e.collection},
                                         {"record", e.record.to_string()},
                                         {"township", e.township},
                                         {"village", e.village},
                                         {"field", e.field},
                                         {"winner", json::object{{"value", e.winner_value},
                                                                 {"user", e.winner_user},
                                                                 {"device", e.winner_device},
                                                                 {"at_ms", e.winner_ms}}},
                                         {"loser", json::object{{"value", e.loser_value},
                                                                {"user", e.loser_user},
                                                                {"device", e.loser_device},
                                                                {"at_ms", e.loser_ms}}},
                                         {"opened_ms", e.opened_ms},
                                         {"status", e.status},
                                         {"resolved_by", e.resolved_by},
                                         {"resolution", e.resolution}});
        reply(json_reply(200, json::object{{"conflicts", std::move(items)}}));
        return;
    }
    if (path.starts_with("/v1/review/conflicts/")) {
        auto [id_text, action] = id_and_action(path, "/v1/review/conflicts/");
        auto conflict = row_id(id_text);
        if (!conflict || action != "resolve" || !is_post) {
            fail(404, "not_found", "POST /v1/review/conflicts/{id}/resolve");
            return;
        }
        std::string choice(str_field(call.body, "choice"));
        std::optional<json::value> entered;
        if (const auto* v = call.body.if_contains("value"))
            entered = *v;
        if (choice != "winner" && choice != "loser" && !(choice == "value" && entered)) {
            fail(400, "invalid_argument", "\"choice\" is winner, loser, or value (with \"value\")");
            return;
        }
        write(
            [this, who, cid = *conflict, choice, entered](sql::connection& db) {
                return office_.resolve(db, engine_, who, cid, choice,
                                       entered ? &*entered : nullptr);
            },
            [reply](const result<mutation_ack>& r) { answer_write(reply, r); });
        return;
    }

    // ---- Quarantine ----
    if (path == "/v1/review/quarantine") {
        auto status = get(q, "status");
        if (status.empty())
            status = "open";
        if (!is_get || (status != "open" && status != "resubmitted" && status != "dismissed")) {
            fail(400, "invalid_argument", "GET with status=open|resubmitted|dismissed");
            return;
        }
        json::array items;
        for (const auto& e : office_.quarantine(c, who, status))
            items.push_back(json::object{{"id", e.id},
                                         {"device", e.device},
                                         {"user", e.user},
                                         {"mutation_seq", e.mutation_seq},
                                         {"collection", e.collection},
                                         {"record_id", e.record_id},
                                         {"township", e.township},
                                         {"code", e.code},
                                         {"field", e.field},
                                         {"message", e.message_zh},
                                         {"message_en", e.message_en},
                                         {"received_ms", e.received_ms},
                                         {"status", e.status},
                                         {"note", e.note},
                                         {"payload", e.payload}});
        reply(json_reply(200, json::object{{"quarantine", std::move(items)}}));
        return;
    }
    if (path.starts_with("/v1/review/quarantine/")) {
        auto [id_text, action] = id_and_action(path, "/v1/review/quarantine/");
        auto entry = row_id(id_text);
        if (!entry || !is_post || (action != "resubmit" && action != "dismiss")) {
            fail(404, "not_found", "POST /v1/review/quarantine/{id}/resubmit|dismiss");
            return;
        }
        const std::int64_t qid = *entry;
        if (action == "dismiss") {
            std::string reason(str_field(call.body, "reason"));
            write([this, who, qid,
                   reason](sql::connection& db) { return office_.dismiss(db, who, qid, reason); },
                  [reply, from_errc](const result<void>& r) {
                      if (!r)
                          return from_errc(r.error());
                      reply(json_reply(200, json::object{{"status", "dismissed"}}));
                  });
            return;
        }
        const auto* fields = call.body.if_contains("fields");
        if (!fields || !fields->is_object()) {
            fail(400, "invalid_argument", "give the repaired record as \"fields\": {...}");
            return;
        }
        json::object repaired = fields->as_object();
        write(
            [this, who, qid, repaired](sql::connection& db) {
                return office_.resubmit(db, engine_, who, qid, repaired);
            },
            [reply](const result<mutation_ack>& r) { answer_write(reply, r); });
        return;
    }

    // ---- Rollups ----
    if (path.starts_with("/v1/rollups/")) {
        auto [month, action] = id_and_action(path, "/v1/rollups/");
        if (!is_month(month)) {
            fail(400, "invalid_argument", "the month is YYYY-MM");
            return;
        }
        if (action.empty() || action == "export") {
            if (!is_get) {
                fail(405, "method_not_allowed", "use GET");
                return;
            }
            std::string format;
            if (action == "export") {
                format = get(q, "format");
                if (format != "csv" && format != "xlsx") {
                    fail(400, "invalid_argument", "format=csv|xlsx");
                    return;
                }
            }
            // Complete figures: a month still being opened (or never opened) is computed first.
            with_open_months(
                c, {std::string(month)},
                [admin, township = who.where.township, m = std::string(month), format,
                 zh = get(q, "lang") != "en"](sql::connection& db) {
                    return month_report(db, m, admin, township, format, zh);
                },
                reply);
            return;
        }
        if (action == "approve" && is_post) {
            if (!head) {
                fail(403, "forbidden", "a township head approves their township's month");
                return;
            }
            if (auto why = not_openable(month, system_wall_ms());
                why && !rollups::is_open(c, month)) {
                fail(400, "invalid_argument", *why);
                return;
            }
            std::string township = who.where.township;
            std::string m(month);
            std::string user = who.user;
            write(
                [this, township, m, user](sql::connection& db) {
                    return monthly_.approve(db, township, m, user, system_wall_ms());
                },
                [reply, from_errc, township, m](const result<int>& r) {
                    if (!r)
                        return from_errc(r.error());
                    reply(json_reply(
                        200, json::object{{"township", township}, {"month", m}, {"revision", *r}}));
                });
            return;
        }
        fail(404, "not_found", "GET /v1/rollups/{month}[/export], POST …/approve");
        return;
    }
    fail(404, "not_found", "no such review endpoint");
    return;
}

namespace {
// Opens months a slice at a time, one writer job per slice, then answers from the last one.
struct month_opener : std::enable_shared_from_this<month_opener> {
    writer& w;
    rollups& monthly;
    std::vector<std::string> months;
    std::function<http_response(sql::connection&)> compute;
    review_api::reply_fn reply;
    std::size_t persons;
    std::size_t weight;
    std::optional<http_response> out;
    // Slices run behind the pushes waiting at each moment, and new persons (higher rids) join
    // the months' remaining count: under a long burst the chain could fall behind for good, so
    // past this long the rest is counted at once (one job, as before slices existed).
    std::chrono::steady_clock::time_point give_up_slicing =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);

    month_opener(writer& wr, rollups& m, std::vector<std::string> ms,
                 std::function<http_response(sql::connection&)> f, review_api::reply_fn r,
                 std::size_t p, std::size_t wt)
        : w(wr), monthly(m), months(std::move(ms)), compute(std::move(f)), reply(std::move(r)),
          persons(p), weight(wt) {}

    void next() {
        auto self = shared_from_this();
        if (std::chrono::steady_clock::now() > give_up_slicing)
            persons = 0;
        w.submit(
            [self](sql::connection& db) {
                if (self->monthly.open_months(db, self->months, self->persons))
                    self->out = self->compute(db);
            },
            [self](boost::system::error_code ec) {
                if (ec)
                    return self->reply(not_committed(ec, "try again"));
                if (self->out)
                    return self->reply(std::move(*self->out));
                self->next(); // the next slice queues behind the pushes waiting now
            },
            weight);
    }
};
} // namespace

namespace {
// "YYYY-MM" of a time.
std::string month_at(std::int64_t ms) {
    auto d = civil_from_days(ms / 86400000);
    char text[16];
    std::snprintf(text, sizeof text, "%04d-%02d", d.year, d.month);
    return text;
}
} // namespace

std::optional<std::string> review_api::not_openable(std::string_view month, std::int64_t now_ms) {
    // From ten years back to the current month (a day ahead: the district's time zone is ahead
    // of UTC). Any other month that no record opened would cost a pass over every person (5 s at
    // ten times a full district) and, for good, a little on every later change of a person.
    const auto first = month_at(now_ms - 3653LL * 86400000);
    const auto last = month_at(now_ms + 86400000);
    if (month >= first && month <= last)
        return std::nullopt;
    return "figures are kept for the months that records were collected in, and computed on "
           "request for " +
           first + " to " + last;
}

void review_api::with_open_months(sql::connection& c, std::vector<std::string> months,
                                  std::function<http_response(sql::connection&)> compute,
                                  const reply_fn& reply) {
    if (std::all_of(months.begin(), months.end(),
                    [&](const std::string& m) { return rollups::is_open(c, m); }))
        return reply(compute(c));
    for (const auto& m : months)
        if (auto why = not_openable(m, system_wall_ms()); why && !rollups::is_open(c, m))
            return reply(error_response(400, "invalid_argument", *why));
    std::make_shared<month_opener>(writer_, monthly_, std::move(months), std::move(compute), reply,
                                   monthly_.config().open_slice_persons, slice_weight_)
        ->next();
}

http_response review_api::overview(sql::connection& c, const principal& who,
                                   const std::string& township, const std::string& month) const {
    auto report = rollups::report(c, month);
    auto row = std::find_if(report.townships.begin(), report.townships.end(),
                            [&](const township_month& t) { return t.township == township; });
    if (row == report.townships.end())
        return error_response(404, "not_found", "no such township in your scope");
    // Every village of the township, with or without records, then any other code records name.
    std::map<std::string, std::string> names;
    {
        auto s = c.cached("SELECT code, name FROM divisions WHERE level = 12 AND substr(code, 1, "
                          "9) = ? ORDER BY code");
        s->bind_all(township);
        while (s->step())
            names.emplace(s->text(0), s->text(1));
    }
    auto per_village = monthly_.by_village(c, township, month);
    for (const auto& [code, f] : per_village)
        names.try_emplace(code, code);
    json::array villages;
    for (const auto& [code, name] : names) {
        auto it = per_village.find(code);
        figures f = it == per_village.end() ? figures{} : it->second;
        for (const auto& i : rollup_indicators())
            f.try_emplace(i, 0);
        json::object v{{"village", code}, {"name", code.empty() ? "" : name}};
        v["live"] = figures_json(f);
        add_four_ones(v, f);
        villages.push_back(std::move(v));
    }
    principal scoped = who;
    scoped.where = scope{township, {}};
    record_query waiting;
    waiting.review = "received";
    waiting.limit = 1;
    auto pending = office_.list(c, scoped, waiting);

    json::object o{{"month", month}, {"township", township}, {"name", row->name}};
    o["villages"] = std::move(villages);
    o["live"] = figures_json(row->live);
    o["totals"] = figures_json(row->live);
    add_four_ones(o, row->live);
    o["open_conflicts"] = count_of(
        c, "SELECT count(*) FROM conflicts WHERE township = ? AND status = 'open'", township);
    o["quarantined"] = count_of(
        c, "SELECT count(*) FROM quarantine WHERE township = ? AND status = 'open'", township);
    o["awaiting_review"] = pending ? static_cast<std::int64_t>(pending->total) : 0;
    o["approved"] = row->approved;
    o["revision"] = row->revision;
    o["changed_since_approval"] = row->changed_since_approval;
    json::object changes;
    for (const auto& [k, v] : row->changes)
        changes[k] = json::array{v.first, v.second};
    o["changes"] = std::move(changes);
    return json_reply(200, o);
}

http_response review_api::trend(sql::connection& c, const std::vector<std::string>& months,
                                bool admin, const std::string& township) const {
    json::array out;
    for (const auto& m : months) {
        auto report = rollups::report(c, m);
        json::object month{{"month", m}};
        if (admin) {
            month["total"] = figures_json(report.total);
            json::array townships;
            for (const auto& t : report.townships)
                townships.push_back(json::object{{"township", t.township},
                                                 {"name", t.name},
                                                 {"live", figures_json(t.live)},
                                                 {"approved", t.approved}});
            month["townships"] = std::move(townships);
        } else {
            auto row =
                std::find_if(report.townships.begin(), report.townships.end(),
                             [&](const township_month& t) { return t.township == township; });
            month["total"] = figures_json(row == report.townships.end() ? figures{} : row->live);
        }
        out.push_back(std::move(month));
    }
    return json_reply(
        200,
        json::object{{"from", months.front()}, {"to", months.back()}, {"months", std::move(out)}});
}

} // namespace fieldsync::server
