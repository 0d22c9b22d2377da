#include "server/throttle.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace fieldsync::server {

using std::chrono::steady_clock;

attempt_limiter::attempt_limiter(policy p, clock_fn now)
    : policy_(p), now_(now ? std::move(now) : clock_fn([] { return steady_clock::now(); })),
      minute_start_(now_()) {}

std::string attempt_limiter::key_of(std::string_view address) {
    std::string text(address.substr(0, 64));
    unsigned char b[16];
    if (inet_pton(AF_INET6, text.c_str(), b) != 1)
        return text; // IPv4 (or anything else) as it is
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(mapped, mapped + 12, b)) {
        char v4[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, b + 12, v4, sizeof v4))
            return v4;
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string key;
    for (int i = 0; i < 8; ++i) {
        key += hex[b[i] >> 4];
        key += hex[b[i] & 15];
        if (i % 2 == 1)
            key += ':';
    }
    return key + ":/64";
}

std::int64_t attempt_limiter::seconds_until(steady_clock::time_point now,
                                            steady_clock::time_point then) {
    if (then <= now)
        return 0;
    // Round up: a client that waits exactly Retry-After seconds must be heard.
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(then - now).count();
    return (ms + 999) / 1000;
}

void attempt_limiter::prune(steady_clock::time_point now) {
    if (by_address_.size() < policy_.max_addresses)
        return;
    std::erase_if(by_address_, [&](const auto& kv) {
        return kv.second.locked_until <= now &&
               now - kv.second.last_failure >= policy_.forget_after;
    });
    // Still full: forget the addresses with the oldest failures (an attacker with that many
    // addresses is held back by the global ceiling instead).
    while (by_address_.size() >= policy_.max_addresses) {
        auto oldest = std::min_element(by_address_.begin(), by_address_.end(),
                                       [](const auto& a, const auto& b) {
                                           return a.second.last_failure < b.second.last_failure;
                                       });
        by_address_.erase(oldest);
    }
}

std::int64_t attempt_limiter::retry_after(std::string_view address) {
    std::lock_guard lock(mutex_);
    auto now = now_();
    if (now - minute_start_ >= std::chrono::minutes(1)) {
        minute_start_ = now;
        minute_failures_ = 0;
    }
    std::int64_t wait = 0;
    if (minute_failures_ >= policy_.global_per_minute)
        wait = seconds_until(now, minute_start_ + std::chrono::minutes(1));
    if (auto it = by_address_.find(key_of(address)); it != by_address_.end())
        wait = std::max(wait, seconds_until(now, it->second.locked_until));
    return wait;
}

attempt_limiter::verdict attempt_limiter::failed(std::string_view address) {
    std::lock_guard lock(mutex_);
    auto now = now_();
    if (now - minute_start_ >= std::chrono::minutes(1)) {
        minute_start_ = now;
        minute_failures_ = 0;
    }
    ++minute_failures_;
    auto key = key_of(address);
    auto it = by_address_.find(key);
    if (it == by_address_.end()) {
        prune(now);
        it = by_address_.emplace(std::move(key), entry{}).first;
    }
    entry& e = it->second;
    if (e.failures > 0 && e.locked_until <= now && now - e.last_failure >= policy_.forget_after)
        e.failures = 0;
    ++e.failures;
    e.last_failure = now;
    verdict v;
    v.failures = e.failures;
    if (e.failures > policy_.free_failures) {
        auto delay = policy_.first_delay;
        for (int i = policy_.free_failures + 1; i < e.failures && delay < policy_.max_delay; ++i)
            delay *= 2;
        delay = std::min(delay, policy_.max_delay);
        e.locked_until = now + delay;
        v.locked_s = delay.count();
    }
    return v;
}

} // namespace fieldsync::server
