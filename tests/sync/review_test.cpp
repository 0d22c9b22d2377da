// Township review: scoped listing and search, history, conflicts resolved as ordinary changes,
// quarantine repair, review states that reach the worker's tablet, masking and logged reveals.
#include "sync/district_fixture.hpp"

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <algorithm>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

const principal head_105{"head-105", "", scope{t105, {}}};
const principal head_106{"head-106", "", scope{t106, {}}};
const principal admin{"admin", "", scope{}};

struct reviewed_district : district {
    replica a{":memory:", catalog::builtin(), "tab-a", [this] { return wall; }};
    replica b{":memory:", catalog::builtin(), "tab-b", [this] { return wall; }};
    principal pa = field_worker("tab-a", t105);
    principal pb = field_worker("tab-b", t105);
    uuid p1;
    reviewed_district() {
        p1 = *a.create("person", person(t105, v105, "1985-03-12", true, "unemployed", 1));
        (void)*a.create("home_visit", visit(t105, v105, p1, "2025-07-10T10:00:00+08:00", true));
        sync(a, pa);
        sync(b, pb);
    }
};

TEST(review, listing_is_scoped_paged_filtered_and_masks_personal_numbers) {
    reviewed_district d;
    replica c(":memory:", catalog::builtin(), "tab-c", [&] { return d.wall; });
    (void)*c.create("person", person(t106, v106, "1990-02-02", false, "unemployed", 7));
    d.sync(c, field_worker("tab-c", t106));

    auto mine = d.office.list(d.db, head_105, {});
    ASSERT_TRUE(mine);
    EXPECT_EQ(mine->total, 2);
    for (const auto& r : mine->items)
        EXPECT_EQ(r.township, t105);
    auto all = d.office.list(d.db, admin, {});
    EXPECT_EQ(all->total, 3);

    record_query persons;
    persons.collection = "person";
    auto p = d.office.list(d.db, head_105, persons);
    ASSERT_EQ(p->items.size(), 1u);
    auto id = std::string(p->items[0].fields.at("id_number").as_string());
    EXPECT_EQ(id.size(), 18u);
    EXPECT_EQ(id.substr(6, 8), "********");
    EXPECT_EQ(id.substr(0, 6), "500154");

    record_query search;
    search.text = "测试1";
    EXPECT_EQ(d.office.list(d.db, head_105, search)->total, 1);
    record_query dated;
    dated.collection = "home_visit";
    dated.from = "2025-07-01";
    dated.to = "2025-07-09";
    EXPECT_EQ(d.office.list(d.db, head_105, dated)->total, 0);
    dated.to = "2025-07-31";
    EXPECT_EQ(d.office.list(d.db, head_105, dated)->total, 1);
    record_query paged;
    paged.limit = 1;
    auto first = d.office.list(d.db, head_105, paged);
    EXPECT_EQ(first->items.size(), 1u);
    EXPECT_EQ(first->total, 2);
    record_query bad;
    bad.collection = "spaceship";
    EXPECT_FALSE(d.office.list(d.db, head_105, bad));
}

TEST(review, other_townships_records_are_not_found_on_every_review_function) {
    reviewed_district d;
    EXPECT_EQ(d.office.get(d.db, head_106, d.p1).error(), make_error_code(errc::not_found));
    EXPECT_FALSE(d.office.history(d.db, head_106, d.p1));
    EXPECT_FALSE(d.write([&](auto& c) {
        return d.office.set_review_state(c, d.eng, head_106, d.p1, review_state::approved, "");
    }));
    EXPECT_FALSE(
        d.write([&](auto& c) { return d.office.reveal(c, head_106, d.p1, "id_number", 1); }));
    EXPECT_TRUE(d.office.get(d.db, head_105, d.p1));
    EXPECT_TRUE(d.office.get(d.db, admin, d.p1));
}

TEST(review, history_shows_who_which_tablet_when_and_old_to_new) {
    reviewed_district d;
    ASSERT_TRUE(d.b.update(d.p1, {{"employment_status", "employed"}}));
    d.sync(d.b, d.pb);
    auto h = d.office.history(d.db, head_105, d.p1);
    ASSERT_TRUE(h);
    ASSERT_EQ(h->size(), 2u);
    EXPECT_EQ((*h)[1].user, "user-tab-b");
    EXPECT_EQ((*h)[1].device, "tab-b");
    EXPECT_EQ(json::serialize((*h)[1].changes),
              R"({"employment_status":["unemployed","employed"]})");
    // The creation shows the ID number masked.
    auto created = (*h)[0].changes.at("id_number").as_array();
    EXPECT_NE(std::string(created[1].as_string()).find("********"), std::string::npos);
}

TEST(review, a_conflict_is_resolved_by_an_ordinary_change_that_reaches_both_tablets) {
    reviewed_district d;
    ASSERT_TRUE(d.a.update(d.p1, {{"phone", "13800000001"}}));
    ASSERT_TRUE(d.b.update(d.p1, {{"phone", "13900000002"}}));
    d.sync(d.a, d.pa);
    d.sync(d.b, d.pb);
    auto open = d.office.conflicts(d.db, head_105);
    ASSERT_EQ(open.size(), 1u);
    EXPECT_EQ(open[0].field, "phone");
    EXPECT_EQ(open[0].winner_value.as_string().size(), 11u);
    EXPECT_NE(std::string(open[0].winner_value.as_string()).find("****"), std::string::npos);
    EXPECT_TRUE(d.office.conflicts(d.db, head_106).empty());
    auto loser_device = open[0].loser_device;

    auto ack = d.write([&](auto& c) {
        return d.office.resolve(c, d.eng, head_105, open[0].id, "loser", nullptr);
    });
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->status, ack_status::applied);
    EXPECT_TRUE(d.office.conflicts(d.db, head_105).empty());
    EXPECT_EQ(d.office.conflicts(d.db, head_105, "resolved").size(), 1u);
    d.sync(d.a, d.pa);
    d.sync(d.b, d.pb);
    auto expected = loser_device == "tab-a" ? "13800000001" : "13900000002";
    EXPECT_EQ(d.a.get(d.p1)->fields.at("phone").as_string(), expected);
    EXPECT_EQ(d.b.get(d.p1)->fields.at("phone").as_string(), expected);
    EXPECT_EQ(rollups::read(d.db, t105, "2025-07")["open_conflicts"], 0);
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

TEST(review, has_issues_with_a_comment_syncs_back_to_the_workers_tablet) {
    reviewed_district d;
    EXPECT_FALSE(d.write([&](auto& c) {
        return d.office.set_review_state(c, d.eng, head_105, d.p1, review_state::has_issues, "");
    })); // a comment is required
    auto ack = d.write([&](auto& c) {
        return d.office.set_review_state(c, d.eng, head_105, d.p1, review_state::has_issues,
                                         "残疾等级与证件不符，请核对");
    });
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->status, ack_status::applied);
    d.sync(d.a, d.pa);
    auto on_tablet = d.a.get(d.p1);
    EXPECT_EQ(on_tablet->fields.at("_review_state").as_string(), "has_issues");
    EXPECT_EQ(on_tablet->fields.at("_review_comment").as_string(), "残疾等级与证件不符，请核对");
    record_query q;
    q.review = "has_issues";
    EXPECT_EQ(d.office.list(d.db, head_105, q)->total, 1);
    // A tablet cannot set a review state itself.
    ASSERT_TRUE(d.a.update(d.p1, {{"_review_state", "approved"}}));
    auto res = d.write([&](auto& c) { return d.eng.push(c, d.pa, d.a.next_push()); });
    ASSERT_EQ(res.acks.size(), 1u);
    EXPECT_EQ(res.acks[0].code, "reserved_field");
}

std::string review_state_of(reviewed_district& d, const uuid& id) {
    auto r = d.office.get(d.db, head_105, id);
    const auto* s = r ? r->fields.if_contains("_review_state") : nullptr;
    return s && s->is_string() ? std::string(s->as_string()) : std::string("(none)");
}

// How many rejections of record `id` the tablet shows.
std::ptrdiff_t rejections_on(replica& r, const uuid& id) {
    auto all = r.issues();
    return std::count_if(all.begin(), all.end(),
                         [&](const record_issue& i) { return i.id == id && i.kind == "rejected"; });
}

TEST(review, a_workers_correction_puts_a_returned_record_back_into_review) {
    reviewed_district d;
    // An edit made offline before the head sent the record back, synced only afterwards, is
    // not a correction: the record stays sent back.
    ASSERT_TRUE(d.b.update(d.p1, {{"address", "三组"}}));
    d.wall += 60000; // a minute later the head sends it back
    ASSERT_TRUE(d.write([&](auto& c) {
        return d.office.set_review_state(c, d.eng, head_105, d.p1, review_state::has_issues,
                                         "电话号码请核对");
    }));
    d.sync(d.a, d.pa);
    ASSERT_EQ(d.a.get(d.p1)->fields.at("_review_state").as_string(), "has_issues");
    d.sync(d.b, d.pb); // tablet b comes back into signal
    ASSERT_EQ(d.b.get(d.p1)->fields.at("address").as_string(), "三组");
    EXPECT_EQ(review_state_of(d, d.p1), "has_issues");

    // The head's own change (a conflict resolved, a record repaired) leaves the state alone.
    ASSERT_EQ(d.write([&](auto& c) {
                   return d.eng.write(c, head_105, "person", d.p1, {{"address", "一组"}});
               }).status,
              ack_status::applied);
    EXPECT_EQ(review_state_of(d, d.p1), "has_issues");
    // A push that changes no value (the same name again) leaves it too.
    d.sync(d.a, d.pa);
    auto same = d.a.get(d.p1)->fields.at("name");
    ASSERT_TRUE(d.a.update(d.p1, {{"name", same}}));
    d.sync(d.a, d.pa);
    EXPECT_EQ(review_state_of(d, d.p1), "has_issues");

    // The worker's correction: back in the head's queue, the comment kept, in the same history
    // entry as the correction, and on the tablet after its pull.
    ASSERT_TRUE(d.a.update(d.p1, {{"phone", "13812345678"}}));
    d.sync(d.a, d.pa);
    EXPECT_EQ(review_state_of(d, d.p1), "received");
    auto rec = d.office.get(d.db, head_105, d.p1);
    EXPECT_EQ(rec->fields.at("_review_comment").as_string(), "电话号码请核对");
    record_query returned;
    returned.review = "has_issues";
    EXPECT_EQ(d.office.list(d.db, head_105, returned)->total, 0);
    record_query waiting;
    waiting.review = "received";
    waiting.collection = "person";
    EXPECT_EQ(d.office.list(d.db, head_105, waiting)->total, 1);
    auto h = d.office.history(d.db, head_105, d.p1);
    ASSERT_TRUE(h);
    const auto& last = h->back();
    EXPECT_EQ(last.user, "user-tab-a");
    ASSERT_TRUE(last.changes.contains("phone"));
    EXPECT_EQ(json::serialize(last.changes.at("_review_state")), R"(["has_issues","received"])");
    EXPECT_EQ(d.a.get(d.p1)->fields.at("_review_state").as_string(), "received");
    d.sync(d.b, d.pb);
    EXPECT_EQ(d.b.get(d.p1)->fields.at("_review_state").as_string(), "received");

    // An approved record that a worker changes afterwards is to be reviewed again as well.
    ASSERT_TRUE(d.write([&](auto& c) {
        return d.office.set_review_state(c, d.eng, head_105, d.p1, review_state::approved, "");
    }));
    EXPECT_EQ(review_state_of(d, d.p1), "approved");
    d.sync(d.b, d.pb);
    ASSERT_TRUE(d.b.update(d.p1, {{"employment_status", "employed"}}));
    d.sync(d.b, d.pb);
    EXPECT_EQ(review_state_of(d, d.p1), "received");
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

TEST(review, quarantine_can_be_repaired_and_resubmitted_or_dismissed) {
    reviewed_district d;
    auto bad = person(t105, v105, "1991-04-04", true, "unemployed", 9);
    bad["disability_grade"] = 7;
    auto rejected = *d.a.create("person", bad);
    auto bad2 = person(t105, v105, "1992-04-04", true, "unemployed", 10);
    bad2["phone"] = "12345";
    (void)*d.a.create("person", bad2);
    d.sync(d.a, d.pa, true);
    auto q = d.office.quarantine(d.db, head_105);
    ASSERT_EQ(q.size(), 2u);
    EXPECT_TRUE(d.office.quarantine(d.db, head_106).empty());
    // The repaired record: the payload's values with the grade corrected.
    json::object repaired = bad;
    repaired["disability_grade"] = 3;
    auto ack =
        d.write([&](auto& c) { return d.office.resubmit(c, d.eng, head_105, q[0].id, repaired); });
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->status, ack_status::applied) << ack->code;
    EXPECT_TRUE(d.office.get(d.db, head_105, rejected));
    EXPECT_FALSE(d.write([&](auto& c) { return d.office.dismiss(c, head_105, q[1].id, ""); }));
    EXPECT_TRUE(
        d.write([&](auto& c) { return d.office.dismiss(c, head_105, q[1].id, "重复登记"); }));
    EXPECT_TRUE(d.office.quarantine(d.db, head_105).empty());
    EXPECT_EQ(d.office.quarantine(d.db, head_105, "dismissed").size(), 1u);
}

// The head sees personal numbers masked and corrects only what was wrong: the rest of the
// mutation goes again as the tablet sent it, the full ID number included.
TEST(review, a_resubmission_needs_only_the_repaired_fields) {
    reviewed_district d;
    auto bad = person(t105, v105, "1992-04-04", true, "unemployed", 10);
    bad["phone"] = "12345";
    auto id = *d.a.create("person", bad);
    d.sync(d.a, d.pa, true);
    auto q = d.office.quarantine(d.db, head_105);
    ASSERT_EQ(q.size(), 1u);
    const auto& shown = q[0].payload.at("fields").at("id_number").at("value").as_string();
    EXPECT_NE(shown, bad.at("id_number").as_string()); // masked in the listing
    // Review fields are not resubmitted through the quarantine.
    EXPECT_EQ(
        d.write([&](auto& c) {
             return d.office.resubmit(c, d.eng, head_105, q[0].id, {{"_review_state", "approved"}});
         }).error(),
        make_error_code(errc::invalid_argument));
    // Still wrong: the entry stays open and nothing is stored.
    auto again = d.write([&](auto& c) {
        return d.office.resubmit(c, d.eng, head_105, q[0].id, {{"phone", "999"}});
    });
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, ack_status::rejected);
    EXPECT_EQ(d.office.quarantine(d.db, head_105).size(), 1u);
    auto ack = d.write([&](auto& c) {
        return d.office.resubmit(c, d.eng, head_105, q[0].id, {{"phone", "13812345678"}});
    });
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->status, ack_status::applied) << ack->code;
    EXPECT_TRUE(d.office.quarantine(d.db, head_105).empty());
    // A field this server does not know by that name (a typo in a newer app) is taken out
    // with null instead of being sent again.
    auto odd = person(t105, v105, "1993-05-05", false, "unemployed", 11);
    odd["Bad Name"] = "x"; // our replica refuses such a name: a raw push, as another app's
    mutation m;
    m.seq = 1;
    m.collection = "person";
    m.id = uuid_v7_generator(7).make(d.wall);
    const uuid odd_id = m.id;
    for (const auto& kv : odd)
        m.fields.emplace_back(std::string(kv.key()),
                              field_write{kv.value(), hlc{d.wall, 0, "tab-c"}, {}});
    push_request req;
    req.schema_version = 1;
    req.mutations.push_back(std::move(m));
    d.write([&](auto& c) { return d.eng.push(c, field_worker("tab-c", t105), req); });
    auto q2 = d.office.quarantine(d.db, head_105);
    ASSERT_EQ(q2.size(), 1u);
    EXPECT_EQ(q2[0].code, "bad_field_name");
    auto taken_out = d.write([&](auto& c) {
        return d.office.resubmit(c, d.eng, head_105, q2[0].id, {{"Bad Name", nullptr}});
    });
    ASSERT_TRUE(taken_out);
    EXPECT_EQ(taken_out->status, ack_status::applied) << taken_out->code;
    auto repaired_odd = d.office.get(d.db, head_105, odd_id);
    ASSERT_TRUE(repaired_odd);
    EXPECT_FALSE(repaired_odd->fields.contains("Bad Name"));
    auto full = d.write([&](auto& c) { return d.office.reveal(c, head_105, id, "id_number", 1); });
    ASSERT_TRUE(full);
    EXPECT_EQ(*full, bad.at("id_number").as_string());
    auto rec = d.office.get(d.db, head_105, id);
    EXPECT_EQ(rec->fields.at("name").as_string(), bad.at("name").as_string());
    EXPECT_EQ(rec->fields.at("disability_grade").as_int64(), 3);
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});

    // The worker's tablet stops showing it as rejected once it pulls the repaired record.
    EXPECT_EQ(rejections_on(d.a, id), 1);
    d.sync(d.a, d.pa);
    EXPECT_EQ(rejections_on(d.a, id), 0);
    ASSERT_TRUE(d.a.get(id));
    EXPECT_EQ(d.a.get(id)->fields.at("phone").as_string(), "13812345678");
}

// Only the office's repair after the rejection ends it on the tablet: a colleague's later edit
// of the record, or an office change made before the rejection, does not. The repair keeps
// what was changed after the rejected edit.
TEST(review, a_rejection_stays_on_the_tablet_until_the_record_is_repaired) {
    reviewed_district d;
    ASSERT_EQ(d.write([&](auto& c) {
                   return d.eng.write(c, head_105, "person", d.p1, {{"address", "二组"}});
               }).status,
              ack_status::applied);
    d.sync(d.a, d.pa);
    d.sync(d.b, d.pb);
    ASSERT_TRUE(
        d.a.update(d.p1, {{"disability_grade", 9}, {"employment_status", "self_employed"}}));
    d.sync(d.a, d.pa, true);
    auto rejected = [&] { return rejections_on(d.a, d.p1); };
    ASSERT_EQ(rejected(), 1);
    ASSERT_TRUE(d.b.update(d.p1, {{"employment_status", "employed"}}));
    d.sync(d.b, d.pb);
    d.sync(d.a, d.pa); // pulls the colleague's edit (and the head's older address)
    EXPECT_EQ(rejected(), 1);
    // Nor does an office change of another field after the rejection.
    ASSERT_EQ(d.write([&](auto& c) {
                   return d.eng.write(c, head_105, "person", d.p1, {{"address", "四组"}});
               }).status,
              ack_status::applied);
    d.sync(d.a, d.pa);
    EXPECT_EQ(rejected(), 1);
    auto q = d.office.quarantine(d.db, head_105);
    ASSERT_EQ(q.size(), 1u);
    ASSERT_TRUE(d.write([&](auto& c) {
        return d.office.resubmit(c, d.eng, head_105, q[0].id, {{"disability_grade", 2}});
    }));
    d.sync(d.a, d.pa);
    EXPECT_EQ(rejected(), 0);
    EXPECT_EQ(d.a.get(d.p1)->fields.at("disability_grade").as_int64(), 2);
    // The colleague's later, acknowledged employment status is not overwritten by the old
    // mutation's value, and every copy agrees.
    EXPECT_EQ(d.a.get(d.p1)->fields.at("employment_status").as_string(), "employed");
    d.sync(d.b, d.pb);
    EXPECT_EQ(d.a.content_hash(), d.b.content_hash());
    EXPECT_EQ(d.a.content_hash(), d.eng.content_hash(d.db, scope{t105, {}}));
}

TEST(review, revealing_a_personal_number_is_explicit_and_logged) {
    reviewed_district d;
    auto full =
        d.write([&](auto& c) { return d.office.reveal(c, head_105, d.p1, "id_number", 42); });
    ASSERT_TRUE(full);
    EXPECT_EQ(full->size(), 18u);
    EXPECT_EQ(full->find('*'), std::string::npos);
    EXPECT_FALSE(d.write([&](auto& c) { return d.office.reveal(c, head_105, d.p1, "name", 43); }));
    auto log = review::access_log(d.db, 10);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].at("user").as_string(), "head-105");
    EXPECT_EQ(log[0].at("action").as_string(), "reveal");
    EXPECT_EQ(log[0].at("field").as_string(), "id_number");
    EXPECT_EQ(log[0].at("record_id").as_string(), d.p1.to_string());
    EXPECT_EQ(mask_value("phone", "13812345678"), "138****5678");
    EXPECT_EQ(mask_value("id_number", "500154198503120013"), "500154********0013");
}

} // namespace
} // namespace fieldsync
