// The auth store: password hashes, tokens, enrolment codes, scopes, revocation.
#include "server/auth.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

struct auth_db {
    auth_db() : c(":memory:", sql::open_mode::read_write_create) {
        if (!migrate_server_database(c))
            throw std::runtime_error("migration failed");
        for (const char* code : {"500101", town_a, town_b, village_a1, village_b1})
            engine::put_division(c, code, code);
    }
    auth::user add(const char* name, auth::role r, std::string town,
                   std::vector<std::string> villages = {}) {
        auth::user u{name, r, std::move(town), std::move(villages), false, 0};
        auto made = auth::add_user(c, u, "", 1000);
        EXPECT_TRUE(made) << made.error.message;
        return made ? *made.value : u;
    }
    sql::connection c;
};

TEST(auth, password_hash_verifies_only_the_right_password) {
    auto h = auth::hash_password("correct horse", 1000);
    EXPECT_TRUE(h.starts_with("pbkdf2-sha256$1000$"));
    EXPECT_TRUE(auth::verify_password("correct horse", h));
    EXPECT_FALSE(auth::verify_password("correct horsf", h));
    EXPECT_FALSE(auth::verify_password("correct horse", "pbkdf2-sha256$1000$zz$00"));
    EXPECT_NE(auth::hash_password("same", 1000), auth::hash_password("same", 1000)); // salted
}

TEST(auth, tokens_are_random_and_long) {
    auto a = auth::random_token(), b = auth::random_token();
    EXPECT_NE(a, b);
    EXPECT_EQ(a.size(), 4u + 43u); // "fst_" + 256 bits in base64url
}

TEST(auth, scope_must_fit_the_role_and_the_district) {
    auth_db db;
    auth::user u{"x", auth::role::district_admin, town_a, {}, false, 0};
    EXPECT_EQ(auth::add_user(db.c, u, "", 1).error.wire_code, "invalid_scope");
    u = {"x", auth::role::township_head, town_a, {village_a1}, false, 0};
    EXPECT_EQ(auth::add_user(db.c, u, "", 1).error.wire_code, "invalid_scope");
    u = {"x", auth::role::field_worker, "500101009", {}, false, 0};
    EXPECT_EQ(auth::add_user(db.c, u, "", 1).error.wire_code, "unknown_division");
    u = {"x", auth::role::field_worker, town_a, {village_b1}, false, 0};
    EXPECT_EQ(auth::add_user(db.c, u, "", 1).error.wire_code, "invalid_scope");
    u = {"Bad Name", auth::role::field_worker, town_a, {}, false, 0};
    EXPECT_EQ(auth::add_user(db.c, u, "", 1).error.wire_code, "invalid_username");
    db.add("w", auth::role::field_worker, town_a, {village_a1});
    EXPECT_EQ(auth::add_user(db.c, {"w", auth::role::field_worker, town_a, {}, false, 0}, "", 1)
                  .error.wire_code,
              "user_exists");
}

TEST(auth, enrolment_code_works_once_and_expires) {
    auth_db db;
    db.add("w", auth::role::field_worker, town_a);
    auto code = auth::create_enrolment_code(db.c, "w", 60000, 1000);
    ASSERT_TRUE(code);
    // Typed in lower case without dashes, with look-alike letters: still the code.
    std::string typed = auth::normalize_code(code.value->code);
    for (auto& ch : typed)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto e = auth::redeem_enrolment_code(db.c, typed, "tab", 2000);
    ASSERT_TRUE(e) << e.error.message;
    EXPECT_EQ(e.value->owner.username, "w");
    EXPECT_EQ(auth::redeem_enrolment_code(db.c, code.value->code, "tab", 2000).error.wire_code,
              "invalid_code");
    auto late = auth::create_enrolment_code(db.c, "w", 60000, 1000);
    EXPECT_EQ(auth::redeem_enrolment_code(db.c, late.value->code, "tab", 61000).error.wire_code,
              "invalid_code");
    // Only hashes are stored.
    sql::statement s(db.c.handle(), "SELECT count(*) FROM devices WHERE token_hash = ?");
    s.bind(1, std::string_view(e.value->token));
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.int64(0), 0);
}

TEST(auth, token_resolves_to_the_principal_until_revoked) {
    auth_db db;
    db.add("w", auth::role::field_worker, town_a, {village_a1});
    auto code = auth::create_enrolment_code(db.c, "w", 60000, 1000);
    auto e = auth::redeem_enrolment_code(db.c, code.value->code, "", 1000);
    auto id = auth::authenticate(db.c, e.value->token);
    ASSERT_TRUE(id);
    EXPECT_EQ(id.value->who.user, "w");
    EXPECT_EQ(id.value->who.device, e.value->device);
    EXPECT_EQ(id.value->who.where.township, town_a);
    EXPECT_EQ(id.value->who.where.villages, std::vector<std::string>{village_a1});
    EXPECT_EQ(auth::authenticate(db.c, e.value->token + "x").error.wire_code, "unauthorized");
    ASSERT_TRUE(auth::set_disabled(db.c, "w", true, 2000));
    EXPECT_EQ(auth::authenticate(db.c, e.value->token).error.wire_code, "user_disabled");
    ASSERT_TRUE(auth::set_disabled(db.c, "w", false, 2000));
    ASSERT_TRUE(auth::revoke_device(db.c, e.value->device, 3000));
    EXPECT_EQ(auth::authenticate(db.c, e.value->token).error.wire_code, "device_revoked");
}

} // namespace
} // namespace fieldsync
