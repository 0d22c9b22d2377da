#include "sync/hlc.hpp"

#include <charconv>
#include <chrono>
#include <limits>

namespace fieldsync {

std::int64_t system_wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string hlc::to_string() const {
    std::string s = std::to_string(ms);
    s += ':';
    s += std::to_string(counter);
    s += ':';
    s += device;
    return s;
}

std::optional<hlc> hlc::parse(std::string_view t) {
    auto c1 = t.find(':');
    if (c1 == std::string_view::npos)
        return std::nullopt;
    auto c2 = t.find(':', c1 + 1);
    if (c2 == std::string_view::npos)
        return std::nullopt;
    hlc h;
    auto ms_part = t.substr(0, c1), ctr_part = t.substr(c1 + 1, c2 - c1 - 1);
    auto dev = t.substr(c2 + 1);
    auto digits_only = [](std::string_view s) {
        if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0'))
            return false;
        for (char c : s)
            if (c < '0' || c > '9')
                return false;
        return true;
    };
    if (!digits_only(ms_part) || !digits_only(ctr_part))
        return std::nullopt;
    auto r1 = std::from_chars(ms_part.data(), ms_part.data() + ms_part.size(), h.ms);
    auto r2 = std::from_chars(ctr_part.data(), ctr_part.data() + ctr_part.size(), h.counter);
    if (r1.ec != std::errc{} || r2.ec != std::errc{})
        return std::nullopt;
    if (dev.empty() || dev.size() > 64)
        return std::nullopt;
    for (unsigned char c : dev)
        if (c == ':' || c < 0x21 || c == 0x7f)
            return std::nullopt;
    h.device = std::string(dev);
    return h;
}

hlc_clock::hlc_clock(std::string device, wall_clock wall)
    : device_(std::move(device)), wall_(std::move(wall)) {}

hlc hlc_clock::now() {
    std::int64_t w = wall_();
    if (w > ms_) {
        ms_ = w;
        counter_ = 0;
    } else if (counter_ == std::numeric_limits<std::uint32_t>::max()) {
        // The counter is spent (a remote clock may carry the largest one): move to the next
        // millisecond rather than wrap around and go backwards.
        ++ms_;
        counter_ = 0;
    } else {
        ++counter_;
    }
    return {ms_, counter_, device_};
}

void hlc_clock::observe(const hlc& r) {
    if (r.ms > ms_) {
        ms_ = r.ms;
        counter_ = r.counter;
    } else if (r.ms == ms_ && r.counter > counter_) {
        counter_ = r.counter;
    }
}

} // namespace fieldsync
