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

void prepare_district(sql::connection& c) {
    check(static_cast<bool>(migrate_server_database(c)), "migration");
    sql::transaction tx(c);
    meta_set(c, "epoch", "f0f0f0f0f0f0f0f0");
    meta_set(c, "cursor_secret", std::string(64, 'c'));
    engine::put_division(c, "500154", "测试区");
    engine::put_division(c, t105, "郭家镇");
    engine::put_division(c, v105, "青龙村");
    engine::put_division(c, t106, "温泉镇");
    engine::put_division(c, v106, "五通村");
    tx.commit();
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
