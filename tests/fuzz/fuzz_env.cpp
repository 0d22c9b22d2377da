#include "fuzz_env.hpp"

#include "fuzz_targets.hpp"
#include "schema/rules.hpp"
#include "sync/engine.hpp"
#include "sync/store_util.hpp"

#include <boost/json/parse.hpp>

#include <cstdio>
#include <cstdlib>

namespace fieldsync::fuzz {

void check(bool ok, std::string_view what) {
    if (ok)
        return;
    std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()),
                 what.data());
    std::abort();
}

sql::connection open_fuzz_district(const std::string& path) {
    sql::connection c = testing::open_district(path);
    sql::transaction tx(c);
    meta_set(c, "epoch", "f0f0f0f0f0f0f0f0");
    meta_set(c, "cursor_secret", std::string(64, 'c'));
    tx.commit();
    return c;
}

boost::json::value parse_output(std::string_view text, std::string_view what) {
    check(is_valid_utf8(text), what);
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 64;
    auto v = boost::json::parse(text, ec, {}, opts);
    check(!ec, what);
    return v;
}

} // namespace fieldsync::fuzz
