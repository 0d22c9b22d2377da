// Tablets for the client tests: sync_clients enrolled against the server fixture (a real
// fieldsyncd on loopback over TLS), with instant retries and an injectable wall clock.
#pragma once

#include "server_fixture.hpp"
#include "sync/client/sync_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace fieldsync::testing {

// Seeds differ per tablet: two tablets with one seed would make the same UUIDv7 in the same
// millisecond (as no two real tablets do).
inline std::uint64_t next_seed() {
    static std::atomic<std::uint64_t> n{1000};
    return ++n;
}

inline client::options tablet_options(const std::string& dir, wall_clock wall = system_wall_ms,
                                      std::uint64_t seed = next_seed()) {
    client::options o;
    o.state_dir = dir;
    o.collections = &test_catalog();
    o.wall = std::move(wall);
    o.backoff.initial = std::chrono::milliseconds(1);
    o.backoff.max = std::chrono::milliseconds(8);
    o.backoff.max_attempts = 6;
    o.sleep = [](std::chrono::milliseconds) {}; // no test waits on a clock
    o.timeout = std::chrono::milliseconds(20000);
    o.push_batch = 50;
    o.pull_limit = 40;
    o.seed = seed;
    return o;
}

struct tablet {
    temp_dir dir;
    std::unique_ptr<client::sync_client> c;
    client::sync_client* operator->() { return c.get(); }
};

// Enrols a tablet of `user` on the fixture's server (or on `port`, e.g. a proxy in front of it),
// pinned to the server's certificate fingerprint.
inline std::unique_ptr<tablet> enrol_tablet(const server_fixture& f, const std::string& user,
                                            wall_clock wall = system_wall_ms,
                                            unsigned short port = 0,
                                            std::uint64_t seed = next_seed()) {
    auto t = std::make_unique<tablet>();
    auto code = make_code(f.dir.path().string(), user);
    std::string why;
    auto c =
        client::sync_client::enrol(tablet_options(t->dir.file("state"), std::move(wall), seed),
                                   "https://127.0.0.1:" + std::to_string(port ? port : f.port()),
                                   code, f.srv->fingerprint(), "test " + user, &why);
    if (!c)
        throw std::runtime_error("enrol " + user + ": " + why);
    t->c = std::move(*c);
    return t;
}

// Syncs until a sync completes (a flaky link may need several), at most `rounds` times.
inline client::sync_report sync_until_complete(client::sync_client& c, int rounds = 60) {
    client::sync_report last;
    for (int i = 0; i < rounds; ++i) {
        last = c.sync();
        if (last.outcome != client::sync_outcome::offline)
            return last;
    }
    return last;
}

inline boost::json::object item_fields(const std::string& name, const char* township = town_a,
                                       const char* village = village_a1) {
    return {{"township", township}, {"village", village}, {"name", name}};
}

} // namespace fieldsync::testing
