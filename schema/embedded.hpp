// Files compiled into the binary by cmake/embed.cmake (migrations, declarations, web assets).
#pragma once

#include <span>
#include <string_view>

namespace fieldsync {

struct embedded_file {
    std::string_view name; // path relative to the embedding folder, e.g. "migrations/0001_core.sql"
    std::string_view data;
};

} // namespace fieldsync

namespace fieldsync::schema_files {
// SQL migrations and collection declarations from schema/.
std::span<const embedded_file> files();
} // namespace fieldsync::schema_files
