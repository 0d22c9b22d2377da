// A user added straight to a server database, without a password (tablets enrol with codes), as
// the server fixtures and the HTTP fuzz target seed them. No GoogleTest here (the fuzz targets
// include it).
#pragma once

#include "server/auth.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fieldsync::testing {

// Throws std::runtime_error with auth::add_user's message if it refuses the user.
inline void seed_user(sql::connection& c, std::int64_t now_ms, const char* name, auth::role r,
                      std::string township, std::vector<std::string> villages = {}) {
    auth::user u;
    u.username = name;
    u.role = r;
    u.township = std::move(township);
    u.villages = std::move(villages);
    auto made = auth::add_user(c, u, "", now_ms);
    if (!made)
        throw std::runtime_error("seed user " + std::string(name) + ": " + made.error.message);
}

} // namespace fieldsync::testing
