// The review and rollups API over real TLS: scope on every endpoint, conflicts resolved into
// ordinary changes that reach the tablets, review states that sync back, masking and logged
// reveals, quarantine handling, month reports, approvals and exports.
#include "fault_vfs.hpp"
#include "server_fixture.hpp"

#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

struct reviewed : server_fixture {
    tablet_login wa = enrol("fw_a"), wa2 = enrol("fw_a2"), wb = enrol("fw_b");
    tablet_login head = enrol("head_a"), admin = enrol("admin");
    std::unique_ptr<https_client> c = client();
    replica a{":memory:", test_catalog(), wa.device};
    replica a2{":memory:", test_catalog(), wa2.device};
    replica b{":memory:", test_catalog(), wb.device};
    uuid in_a, in_b;
    reviewed() {
        auto fields = item("王芳");
        fields["phone"] = "13812345678";
        in_a = *a.create("item", fields);
        in_b = *b.create("item", item("李强", town_b, village_b1));
        sync_over(*c, a, wa.token);
        sync_over(*c, a2, wa2.token);
        sync_over(*c, b, wb.token);
    }
    http_reply get(const std::string& target, const tablet_login& who) {
        return c->get(target, who.token);
    }
    http_reply post(const std::string& target, const json::value& body, const tablet_login& who) {
        return c->post(target, body, who.token);
    }
};

TEST(review_api, listings_are_scoped_and_mask_personal_numbers) {
    reviewed s;
    auto mine = s.get("/v1/review/records", s.head);
    ASSERT_EQ(mine.status, 200u) << mine.body;
    EXPECT_EQ(mine.json.at("total").as_int64(), 1);
    const auto& rec = mine.json.at("items").as_array()[0].as_object();
    EXPECT_EQ(rec.at("fields").at("phone").as_string(), "138****5678");
    EXPECT_EQ(mine.body.find("13812345678"), std::string::npos);
    EXPECT_EQ(s.get("/v1/review/records", s.admin).json.at("total").as_int64(), 2);
    EXPECT_EQ(s.get("/v1/review/records?q=%E7%8E%8B", s.head).json.at("total").as_int64(), 1);
    EXPECT_EQ(s.get("/v1/review/records?collection=nope", s.head).status, 400u);
    // Another township's record does not exist for this head, on every record endpoint.
    auto other = "/v1/review/records/" + s.in_b.to_string();
    EXPECT_EQ(s.get(other, s.head).status, 404u);
    EXPECT_EQ(s.get(other + "/history", s.head).status, 404u);
    EXPECT_EQ(s.post(other + "/review", json::value{{"state", "approved"}}, s.head).status, 404u);
    EXPECT_EQ(s.post(other + "/reveal", json::value{{"field", "phone"}}, s.head).status, 404u);
    EXPECT_EQ(s.get(other, s.admin).status, 200u);
    // Field workers review on their tablets, not here.
    EXPECT_EQ(s.get("/v1/review/records", s.wa).status, 403u);
    EXPECT_EQ(s.get("/v1/rollups/2026-11", s.wa).status, 403u);
    EXPECT_EQ(s.c->get("/v1/review/records").status, 401u);
}

TEST(review_api, reveal_is_explicit_and_logged_for_the_district) {
    reviewed s;
    auto target = "/v1/review/records/" + s.in_a.to_string() + "/reveal";
    auto r = s.post(target, json::value{{"field", "phone"}}, s.head);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json.at("value").as_string(), "13812345678");
    EXPECT_EQ(s.post(target, json::value{{"field", "name"}}, s.head).status, 400u);
    auto log = s.get("/v1/admin/access-log", s.admin);
    ASSERT_EQ(log.status, 200u);
    const auto& entries = log.json.at("entries").as_array();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].at("user").as_string(), "head_a");
    EXPECT_EQ(entries[0].at("field").as_string(), "phone");
    EXPECT_EQ(s.get("/v1/admin/access-log", s.head).status, 403u);
}

TEST(review_api, a_conflict_resolved_by_the_head_reaches_both_tablets) {
    reviewed s;
    ASSERT_TRUE(s.a.update(s.in_a, {{"count", 1}}));
    ASSERT_TRUE(s.a2.update(s.in_a, {{"count", 2}}));
    sync_over(*s.c, s.a, s.wa.token);
    sync_over(*s.c, s.a2, s.wa2.token);
    auto open = s.get("/v1/review/conflicts", s.head);
    ASSERT_EQ(open.status, 200u);
    const auto& list = open.json.at("conflicts").as_array();
    ASSERT_EQ(list.size(), 1u);
    auto id = list[0].at("id").as_int64();
    EXPECT_EQ(list[0].at("field").as_string(), "count");
    EXPECT_TRUE(s.get("/v1/review/conflicts", s.admin).json.at("conflicts").as_array().size() == 1);
    auto resolve = "/v1/review/conflicts/" + std::to_string(id) + "/resolve";
    EXPECT_EQ(s.post(resolve, json::value{{"choice", "value"}, {"value", -3}}, s.head).status,
              422u); // out of range: the conflict stays open
    auto ok = s.post(resolve, json::value{{"choice", "value"}, {"value", 5}}, s.head);
    ASSERT_EQ(ok.status, 200u) << ok.body;
    EXPECT_EQ(s.post(resolve, json::value{{"choice", "winner"}}, s.head).status, 404u);
    sync_over(*s.c, s.a, s.wa.token);
    sync_over(*s.c, s.a2, s.wa2.token);
    EXPECT_EQ(s.a.get(s.in_a)->fields.at("count").as_int64(), 5);
    EXPECT_EQ(s.a2.get(s.in_a)->fields.at("count").as_int64(), 5);
    EXPECT_TRUE(s.get("/v1/review/conflicts", s.head).json.at("conflicts").as_array().empty());
}

TEST(review_api, has_issues_with_a_comment_reaches_the_workers_tablet) {
    reviewed s;
    auto target = "/v1/review/records/" + s.in_a.to_string() + "/review";
    EXPECT_EQ(s.post(target, json::value{{"state", "has_issues"}}, s.head).status, 400u);
    auto r =
        s.post(target, json::value{{"state", "has_issues"}, {"comment", "电话号码请核对"}}, s.head);
    ASSERT_EQ(r.status, 200u) << r.body;
    sync_over(*s.c, s.a, s.wa.token);
    auto rec = s.a.get(s.in_a);
    EXPECT_EQ(rec->fields.at("_review_state").as_string(), "has_issues");
    EXPECT_EQ(rec->fields.at("_review_comment").as_string(), "电话号码请核对");
    auto history = s.get("/v1/review/records/" + s.in_a.to_string() + "/history", s.head);
    ASSERT_EQ(history.status, 200u);
    EXPECT_EQ(history.json.at("history").as_array().size(), 2u);
}

TEST(review_api, a_review_the_disk_cannot_store_is_503_with_retry_after_and_stores_nothing) {
    fault_vfs::install(); // before the server opens its database
    reviewed s;
    auto target = "/v1/review/records/" + s.in_a.to_string() + "/review";
    const json::value approve{{"state", "approved"}};
    ::testing::internal::CaptureStderr(); // the writer's storage_failure log lines
    {
        fault_vfs::scoped fault(fault_vfs::fault::disk_full);
        auto r = s.post(target, approve, s.head);
        EXPECT_EQ(r.status, 503u) << r.body;
        EXPECT_EQ(r.error_code(), "storage_failure");
        EXPECT_EQ(r.header("Retry-After"), "5"); // as the sync API's 503s (docs/protocol.md)
    }
    ::testing::internal::GetCapturedStderr();
    auto history = "/v1/review/records/" + s.in_a.to_string() + "/history";
    EXPECT_EQ(s.get(history, s.head).json.at("history").as_array().size(), 1u); // nothing stored
    // Retried unchanged once there is space: applied.
    auto r = s.post(target, approve, s.head);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(s.get(history, s.head).json.at("history").as_array().size(), 2u);
}

TEST(review_api, quarantined_mutations_are_listed_in_scope_and_can_be_dismissed) {
    reviewed s;
    (void)*s.a.create("item", {{"township", town_a}, {"name", "x"}, {"count", 99999}});
    sync_over(*s.c, s.a, s.wa.token);
    auto q = s.get("/v1/review/quarantine", s.head);
    ASSERT_EQ(q.status, 200u);
    const auto& items = q.json.at("quarantine").as_array();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].at("code").as_string(), "out_of_range");
    auto id = std::to_string(items[0].at("id").as_int64());
    EXPECT_EQ(
        s.post("/v1/review/quarantine/" + id + "/dismiss", json::value{{"reason", ""}}, s.head)
            .status,
        400u);
    EXPECT_EQ(s.post("/v1/review/quarantine/" + id + "/dismiss",
                     json::value{{"reason", "重复录入"}}, s.head)
                  .status,
              200u);
    EXPECT_TRUE(s.get("/v1/review/quarantine", s.head).json.at("quarantine").as_array().empty());
}

TEST(review_api, month_report_approval_and_exports) {
    reviewed s;
    auto admin_view = s.get("/v1/rollups/2026-11", s.admin);
    ASSERT_EQ(admin_view.status, 200u) << admin_view.body;
    EXPECT_EQ(admin_view.json.at("townships").as_array().size(), 2u);
    auto head_view = s.get("/v1/rollups/2026-11", s.head);
    ASSERT_EQ(head_view.json.at("townships").as_array().size(), 1u);
    EXPECT_EQ(head_view.json.at("townships").as_array()[0].at("township").as_string(), town_a);
    EXPECT_EQ(s.get("/v1/rollups/2026-13", s.admin).status, 400u);
    EXPECT_EQ(s.post("/v1/rollups/2026-11/approve", json::object{}, s.admin).status, 403u);
    auto approved = s.post("/v1/rollups/2026-11/approve", json::object{}, s.head);
    ASSERT_EQ(approved.status, 200u) << approved.body;
    EXPECT_EQ(approved.json.at("revision").as_int64(), 1);
    auto after = s.get("/v1/rollups/2026-11", s.admin);
    bool found = false;
    for (const auto& t : after.json.at("townships").as_array())
        if (t.at("township").as_string() == town_a) {
            found = true;
            EXPECT_TRUE(t.at("approved").as_bool());
            EXPECT_EQ(t.at("revision").as_int64(), 1);
        }
    EXPECT_TRUE(found);
    auto csv = s.get("/v1/rollups/2026-11/export?format=csv", s.admin);
    ASSERT_EQ(csv.status, 200u);
    EXPECT_EQ(csv.body.substr(0, 3), "\xEF\xBB\xBF");
    EXPECT_NE(csv.body.find("全区合计"), std::string::npos);
    auto xlsx = s.get("/v1/rollups/2026-11/export?format=xlsx&lang=en", s.admin);
    ASSERT_EQ(xlsx.status, 200u);
    EXPECT_EQ(xlsx.body.substr(0, 2), "PK");
    auto records = s.get("/v1/review/export?collection=item&format=csv", s.head);
    ASSERT_EQ(records.status, 200u);
    EXPECT_NE(records.body.find("138****5678"), std::string::npos);
    EXPECT_EQ(records.body.find("13812345678"), std::string::npos);
    EXPECT_EQ(records.body.find("李强"), std::string::npos); // town_b's record
}

} // namespace
} // namespace fieldsync
