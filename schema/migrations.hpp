// The numbered SQL migrations of schema/migrations/ (embedded). Migration N brings a database
// from PRAGMA user_version N-1 to N; they are applied by sync/store in one transaction each.
#pragma once

#include <string_view>
#include <vector>

namespace fieldsync {

struct migration {
    int version;           // from the file name: 0001_core.sql -> 1
    std::string_view name; // "0001_core.sql"
    std::string_view sql;
};

// All migrations of one set in version order; versions are contiguous from 1 (checked on first
// use). "migrations/" is the server database, "client_migrations/" the tablet replica.
const std::vector<migration>& migrations(std::string_view set = "migrations/");

} // namespace fieldsync
