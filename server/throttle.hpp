// Slows down guessing of secrets (enrolment codes, web passwords). Failed attempts are counted
// per client address (an IPv6 address by its /64, which one subscriber usually holds): the first
// few are free, then every further failure locks that address out for a delay that doubles up to
// a ceiling; an address that stays quiet long enough starts over. One attacker therefore slows
// down only themself. A global ceiling on failures per minute across all addresses bounds a
// distributed guesser too (at the price that such an attack makes everyone wait for the rest of
// the minute). docs/reliability.md, "Security", states the numbers.
//
// Thread-safety: every member function may be called from any thread (one internal mutex).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace fieldsync::server {

class attempt_limiter {
public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

    struct policy {
        int free_failures = 5;                      // per address before any delay
        std::chrono::seconds first_delay{2};        // after the first non-free failure
        std::chrono::seconds max_delay{15 * 60};    // the doubling stops here
        std::chrono::seconds forget_after{15 * 60}; // quiet time after which an address restarts
        int global_per_minute = 600;                // failures per minute, all addresses
        std::size_t max_addresses = 10000;          // memory bound of the table
    };

    struct verdict {
        int failures = 0;          // this address's failures in the current run, this one included
        std::int64_t locked_s = 0; // seconds this address must now wait (0: none)
    };

    attempt_limiter() : attempt_limiter(policy{}) {}
    explicit attempt_limiter(policy p, clock_fn now = {});

    // Seconds the caller at `address` must wait before an attempt is heard (0: go ahead).
    std::int64_t retry_after(std::string_view address);
    // Records a failed attempt from `address`.
    verdict failed(std::string_view address);

    // The key failures are counted under: IPv4 as it is, IPv6 by its first 64 bits.
    static std::string key_of(std::string_view address);

private:
    struct entry {
        int failures = 0;
        std::chrono::steady_clock::time_point last_failure;
        std::chrono::steady_clock::time_point locked_until;
    };
    void prune(std::chrono::steady_clock::time_point now); // guarded by mutex_
    static std::int64_t seconds_until(std::chrono::steady_clock::time_point now,
                                      std::chrono::steady_clock::time_point then);

    const policy policy_;
    const clock_fn now_;
    std::mutex mutex_;
    std::map<std::string, entry, std::less<>> by_address_; // guarded by mutex_
    std::chrono::steady_clock::time_point minute_start_;   // guarded by mutex_
    int minute_failures_ = 0;                              // guarded by mutex_
};

} // namespace fieldsync::server
