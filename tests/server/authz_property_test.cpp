// Scope isolation as a property (issue #8, docs/reliability.md "Security"): for many seeds, a
// random district (townships, villages), random users (district admins, township heads, field
// workers scoped to a township or to some of its villages, disabled users, revoked tablets) and
// random field work pushed over real TLS (records created, edited, moved between villages,
// deleted, concurrent edits that open conflicts, invalid and out-of-scope pushes that are
// quarantined, review comments and reveals). Then every user calls every endpoint they can reach
// and every answer is checked against what the generator's own bookkeeping says the caller may
// see: no record id, content, conflict, history entry, quarantine entry or rollup figure from
// outside the caller's scope, and every write outside the scope is refused and changes nothing
// in the database.
//
// FIELDSYNC_AUTHZ_SEEDS=N runs seeds 1..N (default 12); FIELDSYNC_AUTHZ_SEED=S runs only S.
// A failure names its seed.
#include "server/auth.hpp"
#include "server_fixture.hpp"
#include "zip_text.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

const catalog& full_catalog() {
    static const catalog cat = [] {
        catalog c = catalog::builtin();
        std::ifstream in(std::string(FIELDSYNC_TEST_DATA) + "/test_collections.json");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::string err;
        if (!c.add(text, &err))
            throw std::runtime_error(err);
        return c;
    }();
    return cat;
}

// ---- the generator's model of the district ----

struct rec {
    uuid id;
    std::string collection, township, village, marker, creator, month, phone;
    bool deleted = false;
    bool has_issues = false;
    int round = 0; // the round it was acknowledged in
};

struct quarantined {
    std::string marker;   // a unique string inside the rejected payload
    std::string township; // whose head may see it
    std::string code;     // the expected rejection
};

struct user {
    std::string name;
    auth::role role = auth::role::field_worker;
    std::string township;
    std::vector<std::string> villages;
    bool disabled = false; // disabled before the reads
    std::string token;     // of the user's tablet (or browser-less admin client)
    std::string device;
    std::string revoked_token; // a second tablet, revoked
    std::unique_ptr<replica> tablet;
    std::unique_ptr<https_client> http;
    std::string early_cursor; // a pull cursor from after the first round

    bool admin() const { return role == auth::role::district_admin; }
    bool head() const { return role == auth::role::township_head; }
    bool worker() const { return role == auth::role::field_worker; }
    bool in_villages(const std::string& v) const {
        return villages.empty() || std::find(villages.begin(), villages.end(), v) != villages.end();
    }
    // The record's content may be shown to this user.
    bool sees(const rec& r) const {
        if (admin())
            return true;
        if (r.township != township)
            return false;
        return head() || in_villages(r.village);
    }
    // The record's id may be shown (a worker restricted to villages hears, by id only, of
    // township records that change outside them: docs/protocol.md, "gone").
    bool may_know_id(const rec& r) const { return admin() || r.township == township; }
    bool sees_quarantine(const quarantined& q) const {
        return admin() || (head() && q.township == township);
    }
};

// A mutation queued on a tablet and what the generator expects of it.
struct pending_op {
    uuid id;
    std::string expect_code; // "" applied, else the rejection code
    std::function<void()> on_applied;
};

struct world {
    explicit world(std::uint64_t s) : seed(s), rng(s * 7919 + 17) {}

    std::uint64_t seed;
    std::mt19937_64 rng;
    std::vector<std::string> townships;
    std::map<std::string, std::vector<std::string>> villages;
    std::vector<std::unique_ptr<user>> users;
    std::map<std::string, std::vector<pending_op>> pending; // by user
    std::vector<rec> records;
    std::vector<quarantined> quarantine;
    std::set<std::string> conflicted;       // record ids with an open conflict
    std::vector<std::string> conflict_rows; // one per concurrent edit (a record may have several)
    std::set<std::string> touched;          // record ids changed in the current round
    std::set<std::string> kept;             // referenced or in conflict: never deleted
    int round = 0;
    int next_marker = 0;
    long requests = 0;
    std::unique_ptr<temp_dir> dir;
    std::unique_ptr<server::server> srv;

    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng); }
    template <class T>
    const T& one(const std::vector<T>& v) {
        return v[static_cast<std::size_t>(pick(0, static_cast<int>(v.size()) - 1))];
    }
    std::string marker() {
        return "MK-" + std::to_string(seed) + "-" + std::to_string(++next_marker) + "-Q";
    }
    rec* find(const std::string& id) {
        for (auto& r : records)
            if (r.id.to_string() == id)
                return &r;
        return nullptr;
    }
    user& admin() {
        for (auto& u : users)
            if (u->admin() && !u->disabled)
                return *u;
        throw std::logic_error("no admin");
    }
    std::string db_path() const { return dir->file("fieldsync.db"); }
};

// ---- talking to the server: every answer is counted and scanned ----

struct call_result {
    http_reply reply;
    std::string text; // the body, or the text inside an XLSX workbook
};

// What `u` must never find in an answer: ids and contents of records outside their scope,
// quarantined payloads that are not theirs, and (outside reveals and tablet pulls) full phone
// numbers.
void scan(world& w, const user& u, const std::string& what, const std::string& text,
          bool may_show_phones) {
    for (const auto& r : w.records) {
        if (!u.may_know_id(r)) {
            EXPECT_EQ(text.find(r.id.to_string()), std::string::npos)
                << "seed " << w.seed << ": " << u.name << " (" << auth::to_string(u.role) << " "
                << u.township << ") got record " << r.id.to_string() << " of " << r.township << "/"
                << r.village << " from " << what;
        }
        if (!u.sees(r)) {
            EXPECT_EQ(text.find(r.marker), std::string::npos)
                << "seed " << w.seed << ": " << u.name << " got the content of a record of "
                << r.township << "/" << r.village << " from " << what;
            if (!r.phone.empty()) {
                EXPECT_EQ(text.find(r.phone), std::string::npos)
                    << "seed " << w.seed << ": " << u.name << " got a phone from " << what;
            }
        } else if (!r.phone.empty() && !may_show_phones) {
            EXPECT_EQ(text.find(r.phone), std::string::npos)
                << "seed " << w.seed << ": unmasked phone in " << what;
        }
    }
    for (const auto& q : w.quarantine)
        if (!u.sees_quarantine(q)) {
            EXPECT_EQ(text.find(q.marker), std::string::npos)
                << "seed " << w.seed << ": " << u.name << " got a quarantined payload of "
                << q.township << " from " << what;
        }
}

https_client& client_of(world& w, user& u) {
    if (!u.http)
        u.http = std::make_unique<https_client>(w.srv->port(), w.srv->certificate_file());
    return *u.http;
}

call_result get(world& w, user& u, const std::string& target, const std::string& token = {}) {
    ++w.requests;
    call_result r{client_of(w, u).get(target, token.empty() ? u.token : token), {}};
    r.text = r.reply.body;
    if (r.reply.status == 200 && r.reply.content_type.find("spreadsheetml") != std::string::npos)
        r.text = zip_text(r.reply.body);
    scan(w, u, "GET " + target, r.text, false);
    return r;
}

call_result post(world& w, user& u, const std::string& target, const json::value& body,
                 const std::string& token = {}, bool may_show_phones = false) {
    ++w.requests;
    call_result r{client_of(w, u).post(target, body, token.empty() ? u.token : token), {}};
    r.text = r.reply.body;
    scan(w, u, "POST " + target, r.text, may_show_phones);
    return r;
}

std::set<std::string> ids_in(const json::value& v, std::string_view list, std::string_view key) {
    std::set<std::string> out;
    for (const auto& x : v.at(list).as_array())
        out.insert(std::string(x.at(key).as_string()));
    return out;
}

// ---- building the district ----

void build_district(world& w) {
    int towns = w.pick(2, 4);
    for (int t = 1; t <= towns; ++t) {
        std::string town = "500101" + std::string(t < 10 ? "00" : "0") + std::to_string(t);
        w.townships.push_back(town);
        int vs = w.pick(1, 3);
        for (int v = 1; v <= vs; ++v)
            w.villages[town].push_back(town + "00" + std::to_string(v));
    }
    auto add = [&](std::string name, auth::role role, std::string town,
                   std::vector<std::string> villages) {
        auto u = std::make_unique<user>();
        u->name = std::move(name);
        u->role = role;
        u->township = std::move(town);
        u->villages = std::move(villages);
        w.users.push_back(std::move(u));
    };
    add("admin1", auth::role::district_admin, "", {});
    if (w.chance(0.3))
        add("admin2", auth::role::district_admin, "", {});
    int n = 0;
    for (const auto& t : w.townships) {
        if (w.chance(0.85))
            add("head" + std::to_string(++n), auth::role::township_head, t, {});
        if (w.chance(0.3))
            add("head" + std::to_string(++n), auth::role::township_head, t, {});
    }
    int workers = w.pick(3, 7);
    for (int i = 1; i <= workers; ++i) {
        const auto& t = w.one(w.townships);
        std::vector<std::string> vs;
        if (w.chance(0.45))
            for (const auto& v : w.villages[t])
                if (vs.empty() || w.chance(0.4))
                    vs.push_back(v);
        if (vs.size() == w.villages[t].size() && w.chance(0.5))
            vs.pop_back(); // make most village lists a real restriction
        add("fw" + std::to_string(i), auth::role::field_worker, t, vs);
    }

    w.dir = std::make_unique<temp_dir>();
    {
        sql::connection c(w.db_path(), sql::open_mode::read_write_create);
        if (!migrate_server_database(c))
            throw std::runtime_error("migration failed");
        sql::transaction tx(c);
        engine::put_division(c, "500101", "district");
        for (const auto& t : w.townships) {
            engine::put_division(c, t, "T" + t);
            for (const auto& v : w.villages[t])
                engine::put_division(c, v, "V" + v);
        }
        for (const auto& u : w.users) {
            auth::user a;
            a.username = u->name;
            a.role = u->role;
            a.township = u->township;
            a.villages = u->villages;
            auto made = auth::add_user(c, a, "", system_wall_ms());
            if (!made)
                throw std::runtime_error(made.error.message);
        }
        tx.commit();
    }
    w.srv = std::make_unique<server::server>(test_config(w.dir->path().string()));
    w.srv->start();
    auto enrol = [&](user& u) {
        auto code = make_code(w.dir->path().string(), u.name);
        ++w.requests;
        auto r = client_of(w, u).post("/v1/enrol", json::value{{"code", code}, {"label", "t"}});
        if (r.status != 200)
            throw std::runtime_error("enrol " + u.name + ": " + r.body);
        return std::pair(std::string(r.json.at("device").as_string()),
                         std::string(r.json.at("token").as_string()));
    };
    for (auto& u : w.users) {
        std::tie(u->device, u->token) = enrol(*u);
        if (u->worker())
            u->tablet = std::make_unique<replica>(":memory:", full_catalog(), u->device,
                                                  system_wall_ms, w.rng());
        if (!u->admin() && w.chance(0.4)) {
            auto [device, token] = enrol(*u);
            u->revoked_token = token;
            auto r = post(w, w.admin(), "/v1/admin/devices/" + device + "/revoke", json::object{});
            if (r.reply.status != 200)
                throw std::runtime_error("revoke: " + r.reply.body);
        }
    }
}

// ---- field work ----

std::vector<std::string> allowed_villages(world& w, const user& u) {
    return u.villages.empty() ? w.villages[u.township] : u.villages;
}

// Live records `u` sees that nobody changed in this round yet.
std::vector<rec*> editable(world& w, const user& u, const std::string& collection = {}) {
    std::vector<rec*> out;
    for (auto& r : w.records)
        if (!r.deleted && u.sees(r) && !w.touched.count(r.id.to_string()) &&
            (collection.empty() || r.collection == collection))
            out.push_back(&r);
    return out;
}

void queue(world& w, user& u, uuid id, std::string expect, std::function<void()> on_applied = {}) {
    w.pending[u.name].push_back({id, std::move(expect), std::move(on_applied)});
}

void one_edit(world& w, user& u) {
    auto& tab = *u.tablet;
    int kind = w.pick(0, 99);
    auto villages = allowed_villages(w, u);
    if (kind < 35) { // a new item, sometimes with a phone and a reference
        rec r;
        r.collection = "item";
        r.township = u.township;
        r.village = w.one(villages);
        r.marker = w.marker();
        r.creator = u.name;
        json::object f{{"township", r.township},
                       {"village", r.village},
                       {"name", r.marker},
                       {"count", w.pick(0, 100)}};
        if (w.chance(0.4)) {
            r.phone = "139" + std::to_string(10000000 + w.pick(0, 89999999));
            f["phone"] = r.phone;
        }
        if (auto refs = editable(w, u, "item"); !refs.empty() && w.chance(0.3)) {
            auto* target = w.one(refs);
            w.touched.insert(target->id.to_string()); // nobody deletes it under the reference
            w.kept.insert(target->id.to_string());
            f["owner"] = target->id.to_string();
        }
        r.id = *tab.create("item", f);
        w.touched.insert(r.id.to_string());
        queue(w, u, r.id, "", [&w, r]() mutable {
            r.round = w.round;
            w.records.push_back(r);
        });
    } else if (kind < 50) { // a household and a visit to it (a rollup figure)
        rec h;
        h.collection = "household";
        h.township = u.township;
        h.village = w.one(villages);
        h.marker = w.marker();
        h.creator = u.name;
        h.id = *tab.create("household", {{"township", h.township},
                                         {"village", h.village},
                                         {"address", h.marker},
                                         {"members", w.pick(1, 6)}});
        rec v = h;
        v.collection = "home_visit";
        v.marker = w.marker();
        int month = w.pick(1, 10);
        v.month = std::string("2026-") + (month < 10 ? "0" : "") + std::to_string(month);
        v.id = *tab.create("home_visit", {{"township", v.township},
                                          {"village", v.village},
                                          {"household", h.id.to_string()},
                                          {"visited_at", v.month + "-10T10:00:00+08:00"},
                                          {"worker", u.name},
                                          {"visit_type", "routine"},
                                          {"notes", v.marker}});
        w.touched.insert(h.id.to_string());
        w.touched.insert(v.id.to_string());
        queue(w, u, h.id, "", [&w, h]() mutable {
            h.round = w.round;
            w.records.push_back(h);
        });
        queue(w, u, v.id, "", [&w, v]() mutable {
            v.round = w.round;
            w.records.push_back(v);
        });
    } else if (kind < 62) { // an edit
        auto mine = editable(w, u, "item");
        if (mine.empty())
            return;
        auto* r = w.one(mine);
        w.touched.insert(r->id.to_string());
        ASSERT_TRUE(tab.update(r->id, {{"count", w.pick(0, 1000)}}));
        queue(w, u, r->id, "");
    } else if (kind < 74) { // a move to another village of the caller's scope
        auto mine = editable(w, u);
        if (mine.empty() || villages.size() < 2)
            return;
        auto* r = w.one(mine);
        std::string to = w.one(villages);
        if (to == r->village || r->collection == "home_visit")
            return;
        w.touched.insert(r->id.to_string());
        ASSERT_TRUE(tab.update(r->id, {{"village", to}}));
        std::string id = r->id.to_string();
        queue(w, u, r->id, "", [&w, id, to] { w.find(id)->village = to; });
    } else if (kind < 84) { // a deletion (of a visit, or of an item nothing refers to)
        auto mine = editable(w, u);
        std::erase_if(mine, [&](rec* r) {
            return r->collection == "household" || w.kept.count(r->id.to_string());
        });
        if (mine.empty())
            return;
        auto* r = w.one(mine);
        w.touched.insert(r->id.to_string());
        ASSERT_TRUE(tab.remove(r->id));
        std::string id = r->id.to_string();
        queue(w, u, r->id, "", [&w, id] { w.find(id)->deleted = true; });
    } else if (kind < 92) { // an invalid record: quarantined for the own township
        std::string m = w.marker();
        auto id = *tab.create(
            "item",
            {{"township", u.township}, {"village", w.one(villages)}, {"name", m}, {"count", 5000}});
        w.quarantine.push_back({m, u.township, "out_of_range"});
        queue(w, u, id, "out_of_range");
    } else { // a record for another township or another village: out of scope
        std::string town = w.one(w.townships);
        std::string village = w.one(w.villages[town]);
        if (town == u.township && u.in_villages(village))
            return;
        std::string m = w.marker();
        auto id = *tab.create("item", {{"township", town}, {"village", village}, {"name", m}});
        w.quarantine.push_back({m, u.township, "out_of_scope"});
        queue(w, u, id, "out_of_scope");
    }
}

// Pushes the tablet's outbox and checks every acknowledgement against the expectation.
void push_all(world& w, user& u) {
    auto& tab = *u.tablet;
    auto& ops = w.pending[u.name];
    auto req = tab.next_push(1000);
    ASSERT_EQ(req.mutations.size(), ops.size()) << "seed " << w.seed;
    if (req.mutations.empty())
        return;
    auto r = post(w, u, "/v1/sync/push", encode(req), {}, true);
    ASSERT_EQ(r.reply.status, 200u) << "seed " << w.seed << " " << r.reply.body;
    auto res = decode_push_result(r.reply.json);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->acks.size(), ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
        const auto& ack = res->acks[i];
        ASSERT_EQ(req.mutations[i].id, ops[i].id);
        if (ops[i].expect_code.empty()) {
            ASSERT_EQ(ack.status, ack_status::applied)
                << "seed " << w.seed << " " << u.name << ": " << ack.code << " " << ack.field;
            if (ops[i].on_applied)
                ops[i].on_applied();
        } else {
            EXPECT_EQ(ack.status, ack_status::rejected) << "seed " << w.seed;
            EXPECT_EQ(ack.code, ops[i].expect_code) << "seed " << w.seed;
        }
    }
    tab.apply_push_result(req, *res);
    ops.clear();
}

void pull_all(world& w, user& u) {
    for (int guard = 0; guard < 1000; ++guard) {
        auto r = post(w, u, "/v1/sync/pull", encode(u.tablet->next_pull(50)), {}, true);
        ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
        auto res = decode_pull_result(r.reply.json);
        ASSERT_TRUE(res);
        u.tablet->apply_pull_result(*res);
        if (res->complete)
            return;
    }
    FAIL() << "pull never completed";
}

void field_work(world& w) {
    std::vector<user*> workers;
    std::vector<user*> heads;
    for (auto& u : w.users) {
        if (u->worker())
            workers.push_back(u.get());
        if (u->head())
            heads.push_back(u.get());
    }
    int rounds = w.pick(2, 3);
    for (w.round = 1; w.round <= rounds; ++w.round) {
        w.touched.clear();
        // A concurrent edit: two workers who both see a record change it differently.
        auto concurrent_edit = [&] {
            for (auto* a : workers)
                for (auto* b : workers) {
                    if (a == b)
                        continue;
                    auto shared = editable(w, *a, "item");
                    std::erase_if(shared, [&](rec* r) { return !b->sees(*r); });
                    if (shared.empty())
                        continue;
                    auto* r = w.one(shared);
                    w.touched.insert(r->id.to_string());
                    ASSERT_TRUE(a->tablet->update(r->id, {{"count", 1001 - 1}}));
                    ASSERT_TRUE(b->tablet->update(r->id, {{"count", 7}}));
                    queue(w, *a, r->id, "");
                    queue(w, *b, r->id, "");
                    w.conflicted.insert(r->id.to_string());
                    w.conflict_rows.push_back(r->id.to_string());
                    w.kept.insert(r->id.to_string());
                    return;
                }
        };
        if (w.chance(0.7))
            concurrent_edit();
        for (auto* u : workers) {
            int n = w.pick(2, 6);
            for (int i = 0; i < n; ++i) {
                one_edit(w, *u);
                if (::testing::Test::HasFatalFailure())
                    return;
            }
        }
        std::shuffle(workers.begin(), workers.end(), w.rng);
        for (auto* u : workers) {
            push_all(w, *u);
            if (::testing::Test::HasFatalFailure())
                return;
        }
        for (auto* u : workers) {
            pull_all(w, *u);
            if (::testing::Test::HasFatalFailure())
                return;
        }
        // Township heads comment on a record of theirs and reveal a phone (logged).
        for (auto* h : heads) {
            auto mine = editable(w, *h, "item");
            if (mine.empty())
                continue;
            auto* r = w.one(mine);
            auto res = post(w, *h, "/v1/review/records/" + r->id.to_string() + "/review",
                            json::object{{"state", "has_issues"}, {"comment", r->marker + " ?"}});
            ASSERT_EQ(res.reply.status, 200u) << res.reply.body;
            r->has_issues = true;
            for (auto* x : mine)
                if (!x->phone.empty()) {
                    auto rv = post(w, *h, "/v1/review/records/" + x->id.to_string() + "/reveal",
                                   json::object{{"field", "phone"}}, {}, true);
                    ASSERT_EQ(rv.reply.status, 200u) << rv.reply.body;
                    EXPECT_EQ(rv.reply.json.at("value").as_string(), x->phone);
                    break;
                }
        }
        // Everyone pulls again so that the next round's edits start from the newest state.
        for (auto* u : workers)
            pull_all(w, *u);
        if (w.round == 1)
            for (auto& u : w.users) {
                auto r = post(w, *u, "/v1/sync/pull", json::object{{"cursor", nullptr}}, {}, true);
                ASSERT_EQ(r.reply.status, 200u);
                // Only a complete first page gives a cursor covering everything so far.
                for (std::string cursor(r.reply.json.at("cursor").as_string());
                     !r.reply.json.at("complete").as_bool();) {
                    r = post(w, *u, "/v1/sync/pull", json::object{{"cursor", cursor}}, {}, true);
                    cursor = std::string(r.reply.json.at("cursor").as_string());
                }
                u->early_cursor = std::string(r.reply.json.at("cursor").as_string());
            }
    }
}

// ---- the reads ----

std::set<std::string> expected_ids(world& w, const user& u,
                                   const std::function<bool(const rec&)>& filter) {
    std::set<std::string> out;
    for (const auto& r : w.records)
        if (u.sees(r) && filter(r))
            out.insert(r.id.to_string());
    return out;
}

// Pulls to the end from `cursor`; checks each change against the caller's scope.
void check_pull(world& w, user& u, std::string cursor, bool from_scratch) {
    std::set<std::string> full;
    for (int guard = 0; guard < 1000; ++guard) {
        json::object body{{"limit", w.pick(3, 40)}};
        body["cursor"] = cursor.empty() ? json::value(nullptr) : json::value(cursor);
        auto r = post(w, u, "/v1/sync/pull", body, {}, true);
        ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
        auto res = decode_pull_result(r.reply.json);
        ASSERT_TRUE(res);
        EXPECT_FALSE(res->reset) << res->reset_reason;
        for (const auto& c : res->changes) {
            const rec* m = w.find(c.id.to_string());
            ASSERT_TRUE(m) << "seed " << w.seed << ": pull sent an unknown record";
            if (c.gone) {
                EXPECT_TRUE(u.may_know_id(*m)) << "seed " << w.seed;
                EXPECT_TRUE(c.fields.empty());
                EXPECT_FALSE(u.sees(*m)) << "seed " << w.seed << ": gone but in scope";
            } else {
                EXPECT_TRUE(u.sees(*m)) << "seed " << w.seed << ": " << u.name << " pulled "
                                        << m->township << "/" << m->village;
                full.insert(c.id.to_string());
            }
        }
        cursor = res->cursor;
        if (res->complete)
            break;
    }
    if (from_scratch) {
        EXPECT_EQ(full, expected_ids(w, u, [](const rec&) { return true; }))
            << "seed " << w.seed << ": " << u.name << "'s first pull is not exactly the scope";
    }
}

void check_review_reads(world& w, user& u, const std::set<std::string>& months) {
    auto all = [](const rec&) { return true; };
    auto list = [&](const std::string& query) {
        auto r = get(w, u, "/v1/review/records?include_deleted=true&limit=500" + query);
        EXPECT_EQ(r.reply.status, 200u) << query << " " << r.reply.body;
        return r.reply.status == 200 ? ids_in(r.reply.json, "items", "id")
                                     : std::set<std::string>{};
    };
    EXPECT_EQ(list(""), expected_ids(w, u, all)) << "seed " << w.seed << " " << u.name;
    for (const char* coll : {"item", "household", "home_visit", "person"})
        EXPECT_EQ(list(std::string("&collection=") + coll),
                  expected_ids(w, u, [&](const rec& r) { return r.collection == coll; }))
            << "seed " << w.seed;
    for (const auto& t : w.townships)
        for (const auto& v : w.villages[t])
            EXPECT_EQ(list("&village=" + v),
                      expected_ids(w, u, [&](const rec& r) { return r.village == v; }))
                << "seed " << w.seed << " village " << v;
    for (const auto& other : w.users)
        if (other->worker()) {
            EXPECT_EQ(list("&worker=" + other->name),
                      expected_ids(w, u, [&](const rec& r) { return r.creator == other->name; }))
                << "seed " << w.seed;
        }
    EXPECT_EQ(list("&review=has_issues"),
              expected_ids(w, u, [](const rec& r) { return r.has_issues; }));
    (void)list("&review=received");
    (void)list("&review=approved");
    (void)list("&collection=home_visit&from=2026-03-01&to=2026-06-30");
    // Free text: a record's own marker finds it in scope and nothing outside.
    for (int i = 0; i < 4 && !w.records.empty(); ++i) {
        const auto& r = w.one(w.records);
        auto found = list("&q=" + r.marker);
        EXPECT_EQ(found,
                  u.sees(r) ? std::set<std::string>{r.id.to_string()} : std::set<std::string>{})
            << "seed " << w.seed;
    }
    // Paging covers the scope exactly once.
    std::set<std::string> paged;
    for (int offset = 0; offset < 2000; offset += 7) {
        auto r =
            get(w, u,
                "/v1/review/records?include_deleted=true&limit=7&offset=" + std::to_string(offset));
        ASSERT_EQ(r.reply.status, 200u);
        auto page = ids_in(r.reply.json, "items", "id");
        paged.insert(page.begin(), page.end());
        if (page.size() < 7)
            break;
    }
    EXPECT_EQ(paged, expected_ids(w, u, all));

    // One record at a time, with history, for a sample of the district's records.
    std::vector<const rec*> sample;
    for (const auto& r : w.records)
        sample.push_back(&r);
    std::shuffle(sample.begin(), sample.end(), w.rng);
    sample.resize(std::min<std::size_t>(sample.size(), 24));
    for (const auto* rp : sample) {
        const auto& r = *rp;
        auto one = get(w, u, "/v1/review/records/" + r.id.to_string());
        auto hist = get(w, u, "/v1/review/records/" + r.id.to_string() + "/history");
        unsigned expect = u.sees(r) ? 200u : 404u;
        EXPECT_EQ(one.reply.status, expect) << "seed " << w.seed;
        EXPECT_EQ(hist.reply.status, expect) << "seed " << w.seed;
    }

    // Exports: the scope's live records, nothing else.
    for (const char* coll : {"item", "household", "home_visit"})
        for (const char* format : {"csv", "xlsx"}) {
            auto r = get(w, u,
                         std::string("/v1/review/export?collection=") + coll + "&format=" + format);
            ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
            for (const auto& id : expected_ids(
                     w, u, [&](const rec& x) { return x.collection == coll && !x.deleted; }))
                EXPECT_NE(r.text.find(id), std::string::npos)
                    << "seed " << w.seed << ": " << format << " export lacks a record in scope";
        }

    // Conflicts: only those of records in scope; all of them.
    auto conflicts = get(w, u, "/v1/review/conflicts?status=open");
    ASSERT_EQ(conflicts.reply.status, 200u);
    std::set<std::string> seen;
    for (const auto& c : conflicts.reply.json.at("conflicts").as_array()) {
        const rec* m = w.find(std::string(c.at("record").as_string()));
        ASSERT_TRUE(m);
        EXPECT_TRUE(u.sees(*m)) << "seed " << w.seed << ": conflict outside the scope";
        seen.insert(m->id.to_string());
    }
    std::set<std::string> expect_conflicts;
    for (const auto& id : w.conflicted)
        if (u.sees(*w.find(id)))
            expect_conflicts.insert(id);
    EXPECT_EQ(seen, expect_conflicts) << "seed " << w.seed;
    (void)get(w, u, "/v1/review/conflicts?status=resolved");

    // Quarantine: only entries filed under the caller's township (all of them for admins).
    for (const char* status : {"open", "resubmitted", "dismissed"}) {
        auto q = get(w, u, std::string("/v1/review/quarantine?status=") + status);
        ASSERT_EQ(q.reply.status, 200u);
        std::size_t n = 0;
        for (const auto& e : q.reply.json.at("quarantine").as_array()) {
            ++n;
            if (!u.admin()) {
                EXPECT_EQ(e.at("township").as_string(), u.township) << "seed " << w.seed;
            }
        }
        if (std::string(status) == "open") {
            std::size_t expect = 0;
            for (const auto& x : w.quarantine)
                expect += u.sees_quarantine(x);
            EXPECT_EQ(n, expect) << "seed " << w.seed;
        }
    }

    // Month figures: the caller's township only, with the visits the generator made.
    for (const auto& month : months) {
        auto r = get(w, u, "/v1/rollups/" + month);
        ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
        std::int64_t total = 0;
        for (const auto& row : r.reply.json.at("townships").as_array()) {
            std::string town(row.at("township").as_string());
            if (!u.admin()) {
                EXPECT_EQ(town, u.township) << "seed " << w.seed << ": another township's row";
            }
            std::int64_t visits = 0;
            for (const auto& x : w.records)
                visits += x.collection == "home_visit" && !x.deleted && x.township == town &&
                          x.month == month;
            const auto* live = row.at("live").as_object().if_contains("home_visits");
            EXPECT_EQ(live ? live->to_number<std::int64_t>() : 0, visits)
                << "seed " << w.seed << " " << town << " " << month;
            total += visits;
        }
        std::int64_t expect_total = 0;
        for (const auto& x : w.records)
            expect_total += x.collection == "home_visit" && !x.deleted && x.month == month &&
                            (u.admin() || x.township == u.township);
        EXPECT_EQ(total, expect_total) << "seed " << w.seed << " " << month;
        const auto* t = r.reply.json.at("total").as_object().if_contains("home_visits");
        EXPECT_EQ(t ? t->to_number<std::int64_t>() : 0, expect_total) << "seed " << w.seed;
        for (const char* format : {"csv", "xlsx"}) {
            auto e = get(w, u, "/v1/rollups/" + month + "/export?format=" + format);
            ASSERT_EQ(e.reply.status, 200u);
            if (!u.admin())
                for (const auto& other : w.townships)
                    if (other != u.township) {
                        EXPECT_EQ(e.text.find("T" + other), std::string::npos)
                            << "seed " << w.seed << ": another township in the " << format;
                    }
        }
    }
}

// The web page's figures: a township's month by village, the trend, divisions, the catalog.
void check_page_reads(world& w, user& u, const std::set<std::string>& months) {
    auto others_named = [&](const call_result& r, const std::string& what) {
        if (u.admin())
            return;
        for (const auto& t : w.townships) {
            if (t == u.township)
                continue;
            EXPECT_EQ(r.text.find("T" + t), std::string::npos)
                << "seed " << w.seed << ": another township named in " << what;
            for (const auto& v : w.villages[t]) {
                EXPECT_EQ(r.text.find(v), std::string::npos)
                    << "seed " << w.seed << ": another township's village in " << what;
            }
        }
    };
    auto visits = [&](const std::string& town, const std::string& month,
                      const std::string& village) {
        std::int64_t n = 0;
        for (const auto& x : w.records)
            n += x.collection == "home_visit" && !x.deleted && x.township == town &&
                 (month.empty() || x.month == month) && (village.empty() || x.village == village);
        return n;
    };
    auto number = [](const json::value& figures, const char* key) -> std::int64_t {
        const auto* v = figures.as_object().if_contains(key);
        return v ? v->to_number<std::int64_t>() : 0;
    };
    auto divisions = get(w, u, "/v1/divisions");
    ASSERT_EQ(divisions.reply.status, 200u);
    for (const auto& d : divisions.reply.json.at("divisions").as_array()) {
        std::string code(d.at("code").as_string());
        if (!u.admin()) {
            EXPECT_TRUE(code.starts_with(u.township)) << "seed " << w.seed << ": division " << code;
        }
    }
    others_named(divisions, "/v1/divisions");
    EXPECT_EQ(get(w, u, "/v1/catalog").reply.status, 200u);

    for (const auto& month : months) {
        for (const auto& t : w.townships) {
            auto r = get(w, u, "/v1/review/overview?month=" + month + "&township=" + t);
            if (!u.admin() && t != u.township) {
                EXPECT_EQ(r.reply.status, 404u) << "seed " << w.seed << ": another overview";
                continue;
            }
            ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
            others_named(r, "/v1/review/overview");
            const auto& o = r.reply.json;
            EXPECT_EQ(number(o.at("live"), "home_visits"), visits(t, month, ""))
                << "seed " << w.seed << " overview " << t << " " << month;
            for (const auto& v : o.at("villages").as_array()) {
                std::string code(v.at("village").as_string());
                EXPECT_TRUE(code.starts_with(t)) << "seed " << w.seed;
                EXPECT_EQ(number(v.at("live"), "home_visits"), visits(t, month, code))
                    << "seed " << w.seed << " village " << code << " " << month;
            }
            std::int64_t conflicts = 0, quarantined = 0;
            for (const auto& id : w.conflict_rows)
                conflicts += w.find(id)->township == t;
            for (const auto& q : w.quarantine)
                quarantined += q.township == t;
            EXPECT_EQ(o.at("open_conflicts").to_number<std::int64_t>(), conflicts)
                << "seed " << w.seed;
            EXPECT_EQ(o.at("quarantined").to_number<std::int64_t>(), quarantined)
                << "seed " << w.seed;
        }
        if (!u.admin()) {
            auto mine = get(w, u, "/v1/review/overview?month=" + month);
            EXPECT_EQ(mine.reply.status, 200u) << mine.reply.body;
        }
    }
    auto trend = get(w, u, "/v1/rollups/trend?from=2026-01&to=2026-11");
    ASSERT_EQ(trend.reply.status, 200u) << trend.reply.body;
    others_named(trend, "/v1/rollups/trend");
    for (const auto& m : trend.reply.json.at("months").as_array()) {
        std::string month(m.at("month").as_string());
        std::int64_t expect = 0;
        for (const auto& t : w.townships)
            if (u.admin() || t == u.township)
                expect += visits(t, month, "");
        EXPECT_EQ(number(m.at("total"), "home_visits"), expect)
            << "seed " << w.seed << " trend " << month;
        if (!u.admin()) {
            EXPECT_FALSE(m.as_object().contains("townships")) << "seed " << w.seed;
        }
    }
}

// Everything a caller without review rights tries to read is refused with nothing in it.
void check_refused_reads(world& w, user& u, const std::string& token, unsigned status) {
    const auto& r = w.records.empty() ? std::string("00000000-0000-7000-8000-000000000000")
                                      : w.records.front().id.to_string();
    for (const std::string& target : std::vector<std::string>{
             "/v1/review/records", "/v1/review/records?include_deleted=true",
             "/v1/review/records/" + r, "/v1/review/records/" + r + "/history",
             "/v1/review/conflicts", "/v1/review/quarantine",
             "/v1/review/export?collection=item&format=csv", "/v1/rollups/2026-03",
             "/v1/rollups/2026-03/export?format=csv", "/v1/review/overview?month=2026-03",
             "/v1/rollups/trend?from=2026-01&to=2026-03", "/v1/divisions", "/v1/catalog",
             "/v1/admin/access-log", "/v1/admin/users", "/v1/admin/devices"}) {
        auto res = get(w, u, target, token);
        EXPECT_EQ(res.reply.status, status) << "seed " << w.seed << " " << u.name << " " << target;
    }
}

void check_reads(world& w) {
    for (auto& up : w.users) {
        user& u = *up;
        SCOPED_TRACE("user " + u.name + " (" + std::string(auth::to_string(u.role)) + ")");
        if (!u.revoked_token.empty()) {
            check_refused_reads(w, u, u.revoked_token, 401u);
            auto p =
                post(w, u, "/v1/sync/pull", json::object{{"cursor", nullptr}}, u.revoked_token);
            EXPECT_EQ(p.reply.status, 401u);
            EXPECT_EQ(p.reply.error_code(), "device_revoked");
        }
        if (u.disabled) {
            check_refused_reads(w, u, u.token, 401u);
            auto p = post(w, u, "/v1/sync/pull", json::object{{"cursor", nullptr}});
            EXPECT_EQ(p.reply.status, 401u);
            EXPECT_EQ(p.reply.error_code(), "user_disabled");
            continue;
        }
        auto me = get(w, u, "/v1/me");
        ASSERT_EQ(me.reply.status, 200u);
        EXPECT_EQ(me.reply.json.at("scope").at("township").as_string(), u.township);

        check_pull(w, u, "", true);
        check_pull(w, u, u.early_cursor, false);
        for (const auto& t : w.townships) { // narrowing a pull to a township
            auto r = post(w, u, "/v1/sync/pull", json::object{{"cursor", nullptr}, {"township", t}},
                          {}, true);
            EXPECT_EQ(r.reply.status, u.admin() || t == u.township ? 200u : 403u)
                << "seed " << w.seed;
        }
        // A cursor with a forged MAC is refused; another user's cursor starts over in the
        // caller's own scope.
        std::string forged = u.early_cursor;
        forged.back() = forged.back() == '0' ? '1' : '0';
        EXPECT_EQ(post(w, u, "/v1/sync/pull", json::object{{"cursor", forged}}).reply.status, 400u)
            << "seed " << w.seed;
        for (const auto& other : w.users)
            if (other.get() != &u && !other->early_cursor.empty()) {
                auto r =
                    post(w, u, "/v1/sync/pull",
                         json::object{{"cursor", other->early_cursor}, {"limit", 500}}, {}, true);
                ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
                for (const auto& c : r.reply.json.at("changes").as_array())
                    if (!c.as_object().contains("gone")) {
                        EXPECT_TRUE(u.sees(*w.find(std::string(c.at("id").as_string()))))
                            << "seed " << w.seed << ": " << other->name << "'s cursor";
                    }
            }

        if (u.worker()) {
            check_refused_reads(w, u, u.token, 403u);
            continue;
        }
        // The months with visits (at most four of them) and one without.
        std::vector<std::string> with_data;
        for (const auto& r : w.records)
            if (!r.month.empty() &&
                std::find(with_data.begin(), with_data.end(), r.month) == with_data.end())
                with_data.push_back(r.month);
        std::shuffle(with_data.begin(), with_data.end(), w.rng);
        std::set<std::string> months{"2026-11"};
        for (std::size_t i = 0; i < with_data.size() && i < 4; ++i)
            months.insert(with_data[i]);
        check_review_reads(w, u, months);
        if (::testing::Test::HasFatalFailure())
            return;
        check_page_reads(w, u, months);
        if (::testing::Test::HasFatalFailure())
            return;
        auto log = get(w, u, "/v1/admin/access-log");
        auto users = get(w, u, "/v1/admin/users");
        auto devices = get(w, u, "/v1/admin/devices");
        for (const auto* r : {&log, &users, &devices})
            EXPECT_EQ(r->reply.status, u.admin() ? 200u : 403u) << "seed " << w.seed;
    }
}

// ---- the writes outside the scope ----

// The database as every other scope sees it: all tables that hold records, their review,
// conflicts, quarantine, figures, users, tablets and codes. Left out: the device's own sequence
// bookkeeping, the server clock, and quarantine rows filed under `own_township` (a worker's own
// rejected pushes are theirs to see).
std::string digest(world& w, const std::string& own_township) {
    sql::connection c(w.db_path(), sql::open_mode::read_only);
    std::string out;
    for (std::string q :
         {std::string("SELECT * FROM records ORDER BY id"), std::string("SELECT * FROM history"),
          std::string("SELECT * FROM conflicts"),
          "SELECT * FROM quarantine WHERE township IS NULL OR township <> '" + own_township + "'",
          std::string("SELECT * FROM rollups ORDER BY 1, 2, 3"),
          std::string("SELECT * FROM month_revisions"), std::string("SELECT * FROM access_log"),
          std::string("SELECT * FROM users"),
          std::string("SELECT device, user, token_hash, revoked_ms, label FROM devices"),
          std::string("SELECT * FROM enrolment_codes"), std::string("SELECT * FROM divisions")}) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(c.handle(), q.c_str(), -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error("digest: " + q);
        while (sqlite3_step(s) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(s); ++i) {
                const auto* t = sqlite3_column_blob(s, i);
                out.append(t ? static_cast<const char*>(t) : "<null>",
                           static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
                out += '|';
            }
            out += '\n';
        }
        sqlite3_finalize(s);
        out += "--\n";
    }
    return out;
}

std::uint64_t device_seq(world& w, const std::string& device) {
    sql::connection c(w.db_path(), sql::open_mode::read_only);
    sql::statement s(c.handle(), "SELECT last_seq FROM devices WHERE device = ?");
    s.bind(1, std::string_view(device));
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

std::vector<std::int64_t> row_ids(world& w, const std::string& sql_text) {
    sql::connection c(w.db_path(), sql::open_mode::read_only);
    sql::statement s(c.handle(), sql_text);
    std::vector<std::int64_t> out;
    while (s.step())
        out.push_back(s.int64(0));
    return out;
}

void check_writes(world& w) {
    for (auto& up : w.users) {
        user& u = *up;
        if (u.admin())
            continue;
        SCOPED_TRACE("writes of " + u.name);
        std::vector<const rec*> foreign;
        const rec* own = nullptr;
        for (const auto& r : w.records) {
            if (!u.sees(r))
                foreign.push_back(&r);
            else if (!r.deleted)
                own = &r;
        }
        std::shuffle(foreign.begin(), foreign.end(), w.rng);
        foreign.resize(std::min<std::size_t>(foreign.size(), 8));
        std::string before = digest(w, u.township);
        std::vector<std::string> tokens;
        tokens.push_back(u.token); // refused with 401 when the user is disabled
        if (!u.revoked_token.empty())
            tokens.push_back(u.revoked_token);
        for (const auto& token : tokens) {
            bool live = token == u.token && !u.disabled;
            unsigned refused = !live ? 401u : 403u;
            // Pushes: foreign records edited, deleted, re-created under the own township;
            // records made in another township; references to another township's records.
            push_request req;
            req.schema_version = 1;
            std::uint64_t seq = live ? device_seq(w, u.device) : 1000;
            auto stamp = hlc{system_wall_ms(), 0, live ? u.device : "t-none"};
            auto add = [&](std::string coll, uuid id, json::object fields) {
                mutation m;
                m.seq = ++seq;
                m.collection = std::move(coll);
                m.id = id;
                for (auto& kv : fields)
                    m.fields.emplace_back(std::string(kv.key()),
                                          field_write{kv.value(), stamp, std::nullopt});
                req.mutations.push_back(std::move(m));
            };
            std::size_t n_foreign = 0;
            for (const auto* f : foreign) {
                if (++n_foreign > 6)
                    break;
                add(f->collection, f->id, {{"count", 3}});
                add(f->collection, f->id, {{"_deleted", true}});
                add(f->collection, f->id,
                    {{"township", u.township.empty() ? w.townships[0] : u.township},
                     {"name", "x"}});
                if (f->collection == "item" && f->township != u.township && own)
                    add("item", uuid_v7_generator(w.rng()).make(system_wall_ms()),
                        {{"township", own->township},
                         {"village", own->village},
                         {"name", "x"},
                         {"owner", f->id.to_string()}});
            }
            for (const auto& t : w.townships)
                if (t != u.township)
                    add("item", uuid_v7_generator(w.rng()).make(system_wall_ms()),
                        {{"township", t}, {"village", w.villages[t][0]}, {"name", "x"}});
            if (!req.mutations.empty()) {
                auto r = post(w, u, "/v1/sync/push", encode(req), token);
                if (live && u.worker()) {
                    ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
                    auto res = decode_push_result(r.reply.json);
                    ASSERT_TRUE(res);
                    for (const auto& ack : res->acks) {
                        EXPECT_EQ(ack.status, ack_status::rejected) << "seed " << w.seed;
                        EXPECT_TRUE(ack.code == "out_of_scope" || ack.code == "reference_missing")
                            << "seed " << w.seed << ": " << ack.code;
                    }
                } else {
                    EXPECT_EQ(r.reply.status, refused) << "seed " << w.seed;
                }
            }
            // Review actions on foreign records, conflicts and quarantine entries.
            unsigned hidden = !live ? 401u : u.head() ? 404u : 403u;
            for (const auto* f : foreign) {
                auto id = f->id.to_string();
                EXPECT_EQ(post(w, u, "/v1/review/records/" + id + "/review",
                               json::object{{"state", "approved"}}, token)
                              .reply.status,
                          hidden)
                    << "seed " << w.seed;
                EXPECT_EQ(post(w, u, "/v1/review/records/" + id + "/reveal",
                               json::object{{"field", "phone"}}, token)
                              .reply.status,
                          hidden)
                    << "seed " << w.seed;
            }
            for (auto cid :
                 row_ids(w, "SELECT cid FROM conflicts WHERE township <> '" + u.township + "'"))
                EXPECT_EQ(post(w, u, "/v1/review/conflicts/" + std::to_string(cid) + "/resolve",
                               json::object{{"choice", "loser"}}, token)
                              .reply.status,
                          hidden)
                    << "seed " << w.seed;
            for (auto qid : row_ids(w, "SELECT qid FROM quarantine WHERE township IS NULL OR "
                                       "township <> '" +
                                           u.township + "'")) {
                auto q = "/v1/review/quarantine/" + std::to_string(qid);
                EXPECT_EQ(
                    post(w, u, q + "/dismiss", json::object{{"reason", "x"}}, token).reply.status,
                    hidden)
                    << "seed " << w.seed;
                EXPECT_EQ(post(w, u, q + "/resubmit",
                               json::object{{"fields", json::object{{"name", "y"}}}}, token)
                              .reply.status,
                          hidden)
                    << "seed " << w.seed;
            }
            // The admin API.
            unsigned admin_only = !live ? 401u : 403u;
            for (auto [target, body] : std::vector<std::pair<std::string, json::value>>{
                     {"/v1/admin/users",
                      json::object{{"username", "intruder"}, {"role", "district_admin"}}},
                     {"/v1/admin/users/" + u.name + "/scope",
                      json::object{{"township", w.townships.back()}}},
                     {"/v1/admin/users/admin1/disable", json::object{}},
                     {"/v1/admin/enrolment-codes", json::object{{"username", "admin1"}}},
                     {"/v1/admin/devices/" + w.admin().device + "/revoke", json::object{}}})
                EXPECT_EQ(post(w, u, target, body, token).reply.status, admin_only)
                    << "seed " << w.seed << " " << target;
        }
        EXPECT_EQ(digest(w, u.township), before)
            << "seed " << w.seed << ": " << u.name << "'s refused writes changed the database";
    }
}

// ---- one seed ----

void disable_some(world& w) {
    for (auto& u : w.users)
        if (!u->admin() && w.chance(0.2)) {
            auto r = post(w, w.admin(), "/v1/admin/users/" + u->name + "/disable", json::object{});
            ASSERT_EQ(r.reply.status, 200u) << r.reply.body;
            u->disabled = true;
        }
}

// The server's records agree with the generator's bookkeeping (else the checks above would
// test the bookkeeping, not the server).
void check_model(world& w) {
    auto& a = w.admin();
    auto r = get(w, a, "/v1/review/records?include_deleted=true&limit=500");
    ASSERT_EQ(r.reply.status, 200u);
    std::size_t n = 0;
    for (const auto& item : r.reply.json.at("items").as_array()) {
        ++n;
        const rec* m = w.find(std::string(item.at("id").as_string()));
        ASSERT_TRUE(m) << "seed " << w.seed << ": a record the generator did not make";
        EXPECT_EQ(item.at("township").as_string(), m->township);
        EXPECT_EQ(item.at("village").as_string(), m->village) << "seed " << w.seed;
        EXPECT_EQ(item.at("deleted").as_bool(), m->deleted) << "seed " << w.seed;
    }
    EXPECT_EQ(n, w.records.size());
}

long run_seed(std::uint64_t seed) {
    world w(seed);
    build_district(w);
    field_work(w);
    if (::testing::Test::HasFatalFailure())
        return w.requests;
    check_model(w);
    disable_some(w);
    check_reads(w);
    check_writes(w);
    w.srv->stop();
    return w.requests;
}

std::vector<std::uint64_t> seeds_to_run(std::uint64_t default_count) {
    if (const char* one = std::getenv("FIELDSYNC_AUTHZ_SEED"))
        return {std::stoull(one)};
    std::uint64_t n = default_count;
    if (const char* many = std::getenv("FIELDSYNC_AUTHZ_SEEDS"))
        n = std::stoull(many);
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = 1; s <= n; ++s)
        out.push_back(s);
    return out;
}

TEST(authz_property, no_endpoint_answers_outside_the_callers_scope) {
    long requests = 0;
    auto seeds = seeds_to_run(12); // ~4 s a seed under ASan on the shared machine
    for (auto seed : seeds) {
        SCOPED_TRACE("seed " + std::to_string(seed) +
                     " (rerun: FIELDSYNC_AUTHZ_SEED=" + std::to_string(seed) + ")");
        requests += run_seed(seed);
        if (HasFailure()) {
            ADD_FAILURE() << "seed " << seed << " failed";
            break;
        }
    }
    std::cout << "authz_property: " << seeds.size() << " seeds, " << requests << " requests\n";
}

} // namespace
} // namespace fieldsync
