#include "server/pull_prefetch.hpp"

#include <algorithm>

namespace fieldsync::server {

std::string pull_prefetch::key(std::string_view device, std::string_view scope,
                               std::string_view cursor, std::uint32_t limit) {
    std::string k;
    k.reserve(device.size() + scope.size() + cursor.size() + 16);
    k.append(device).append(1, '\n').append(scope).append(1, '\n').append(cursor);
    k.append(1, '\n').append(std::to_string(limit));
    return k;
}

template <class Pred>
void pull_prefetch::drop_if(Pred pred) {
    for (auto it = slots_.begin(); it != slots_.end();) {
        if (pred(it->second)) {
            if (it->second.ready)
                bytes_ -= it->second.ready->body.size();
            it = slots_.erase(it);
        } else {
            ++it;
        }
    }
}

void pull_prefetch::expire(std::int64_t now_ms) {
    drop_if([&](const slot& s) { return now_ms - s.reserved_ms > settings_.keep_ms; });
}

bool pull_prefetch::reserve(const std::string& key, std::string_view device, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    expire(now_ms);
    if (slots_.contains(key))
        return false;
    // One prepared page per tablet: a tablet that started over drops what it no longer needs.
    drop_if([&](const slot& s) { return s.device == device; });
    if (bytes_ >= settings_.max_bytes)
        return false;
    slots_.emplace(key, slot{std::string(device), now_ms, std::nullopt});
    return true;
}

void pull_prefetch::fill(const std::string& key, page p) {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(key);
    if (it == slots_.end() || it->second.ready)
        return;
    if (bytes_ + p.body.size() > settings_.max_bytes) {
        slots_.erase(it);
        return;
    }
    bytes_ += p.body.size();
    it->second.ready = std::move(p);
}

void pull_prefetch::cancel(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(key);
    if (it != slots_.end() && !it->second.ready)
        slots_.erase(it);
}

std::optional<pull_prefetch::page> pull_prefetch::take(const std::string& key,
                                                       std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    expire(now_ms);
    auto it = slots_.find(key);
    if (it == slots_.end() || !it->second.ready)
        return std::nullopt;
    auto p = std::move(*it->second.ready);
    bytes_ -= p.body.size();
    slots_.erase(it);
    ++hits_;
    return p;
}

std::size_t pull_prefetch::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

std::uint64_t pull_prefetch::hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
}

} // namespace fieldsync::server
