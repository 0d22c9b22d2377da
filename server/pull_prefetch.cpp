#include "server/pull_prefetch.hpp"

#include <algorithm>

namespace fieldsync::server {

std::string pull_prefetch::key(std::string_view device, std::string_view scope,
                               const pull_request& req) {
    std::string k;
    k.reserve(device.size() + scope.size() + req.cursor.size() + 16);
    k.append(device).append(1, '\n').append(scope).append(1, '\n').append(req.cursor);
    k.append(1, '\n').append(std::to_string(req.limit));
    k.append(req.shared_clocks ? "\ns" : "\nf");
    return k;
}

template <class Pred>
void pull_prefetch::drop_if(Pred pred, waiters& dropped) {
    for (auto it = slots_.begin(); it != slots_.end();) {
        if (pred(it->second)) {
            if (it->second.ready)
                bytes_ -= it->second.ready->body.size();
            if (it->second.then)
                dropped.push_back(std::move(it->second.then));
            it = slots_.erase(it);
        } else {
            ++it;
        }
    }
}

void pull_prefetch::expire(std::int64_t now_ms, waiters& dropped) {
    drop_if([&](const slot& s) { return now_ms - s.reserved_ms > settings_.keep_ms; }, dropped);
}

void pull_prefetch::drop_expired(std::int64_t now_ms) {
    waiters dropped;
    {
        std::lock_guard lock(mutex_);
        expire(now_ms, dropped);
    }
    tell_nothing(dropped);
}

void pull_prefetch::tell_nothing(waiters& dropped) {
    for (auto& w : dropped)
        w(std::nullopt);
}

bool pull_prefetch::reserve(const std::string& key, std::string_view device, std::int64_t now_ms) {
    waiters dropped;
    bool reserved = [&] {
        std::lock_guard lock(mutex_);
        expire(now_ms, dropped);
        if (slots_.contains(key))
            return false;
        // One prepared page per tablet: a tablet that started over drops what it no longer needs.
        drop_if([&](const slot& s) { return s.device == device; }, dropped);
        if (bytes_ >= settings_.max_bytes)
            return false;
        slots_.emplace(key, slot{std::string(device), now_ms, std::nullopt, {}});
        return true;
    }();
    tell_nothing(dropped);
    return reserved;
}

void pull_prefetch::fill(const std::string& key, page p) {
    waiter then;
    {
        std::lock_guard lock(mutex_);
        auto it = slots_.find(key);
        if (it == slots_.end() || it->second.ready)
            return;
        if (it->second.then) { // a request is waiting: the page goes straight to it
            then = std::move(it->second.then);
            slots_.erase(it);
            ++hits_;
            ++waited_;
        } else if (bytes_ + p.body.size() > settings_.max_bytes) {
            slots_.erase(it);
            return;
        } else {
            bytes_ += p.body.size();
            it->second.ready = std::move(p);
            return;
        }
    }
    then(std::move(p));
}

void pull_prefetch::cancel(const std::string& key) {
    waiter then;
    {
        std::lock_guard lock(mutex_);
        auto it = slots_.find(key);
        if (it == slots_.end() || it->second.ready)
            return;
        then = std::move(it->second.then);
        slots_.erase(it);
    }
    if (then)
        then(std::nullopt);
}

pull_prefetch::taken pull_prefetch::take(const std::string& key, std::int64_t now_ms, waiter then) {
    waiters dropped;
    taken out;
    {
        std::lock_guard lock(mutex_);
        expire(now_ms, dropped);
        auto it = slots_.find(key);
        if (it != slots_.end() && it->second.ready) {
            out.ready = std::move(*it->second.ready);
            bytes_ -= out.ready->body.size();
            slots_.erase(it);
            ++hits_;
        } else if (it != slots_.end() && then && !it->second.then) {
            it->second.then = std::move(then);
            out.waiting = true;
        }
    }
    tell_nothing(dropped);
    return out;
}

std::size_t pull_prefetch::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

std::uint64_t pull_prefetch::hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
}

std::uint64_t pull_prefetch::waited() const {
    std::lock_guard lock(mutex_);
    return waited_;
}

} // namespace fieldsync::server
