#include "schema/migrations.hpp"

#include "schema/embedded.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace fieldsync {

namespace {

std::vector<migration> load(std::string_view dir) {
    std::vector<migration> out;
    for (const auto& f : schema_files::files()) {
        if (!f.name.starts_with(dir) || !f.name.ends_with(".sql"))
            continue;
        auto name = f.name.substr(dir.size());
        out.push_back({std::stoi(std::string(name.substr(0, 4))), name, f.data});
    }
    std::sort(out.begin(), out.end(),
              [](const migration& a, const migration& b) { return a.version < b.version; });
    for (std::size_t i = 0; i < out.size(); ++i)
        if (out[i].version != static_cast<int>(i) + 1)
            throw std::logic_error("schema/" + std::string(dir) +
                                   ": versions must be 0001, 0002, … without gaps; found " +
                                   std::string(out[i].name));
    return out;
}

} // namespace

const std::vector<migration>& migrations(std::string_view set) {
    static const std::vector<migration> server = load("migrations/");
    static const std::vector<migration> client = load("client_migrations/");
    if (set == "client_migrations/")
        return client;
    if (set == "migrations/")
        return server;
    throw std::logic_error("unknown migration set " + std::string(set));
}

} // namespace fieldsync
