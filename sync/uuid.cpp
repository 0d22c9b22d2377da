#include "sync/uuid.hpp"

namespace fieldsync {

namespace {
int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
} // namespace

std::string uuid::to_string() const {
    std::string s;
    append_to(s);
    return s;
}

void uuid::append_to(std::string& out) const {
    static constexpr char hex[] = "0123456789abcdef";
    char text[36];
    std::size_t at = 0;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text[at++] = '-';
        text[at++] = hex[bytes[i] >> 4];
        text[at++] = hex[bytes[i] & 15];
    }
    out.append(text, sizeof text);
}

std::optional<uuid> uuid::parse(std::string_view t) {
    if (t.size() != 36)
        return std::nullopt;
    uuid u;
    std::size_t b = 0;
    for (std::size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (t[i] != '-')
                return std::nullopt;
            ++i;
            continue;
        }
        int hi = hexval(t[i]), lo = hexval(t[i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        u.bytes[b++] = static_cast<std::uint8_t>(hi << 4 | lo);
        i += 2;
    }
    return u;
}

std::optional<uuid> uuid::from_blob(std::span<const std::uint8_t> blob) {
    if (blob.size() != 16)
        return std::nullopt;
    uuid u;
    std::copy(blob.begin(), blob.end(), u.bytes.begin());
    return u;
}

std::int64_t uuid::unix_ms() const {
    std::int64_t ms = 0;
    for (int i = 0; i < 6; ++i)
        ms = ms << 8 | bytes[i];
    return ms;
}

uuid_v7_generator::uuid_v7_generator(std::uint64_t seed) : rng_(seed) {}

uuid uuid_v7_generator::make(std::int64_t unix_ms) {
    if (unix_ms <= last_ms_) {
        // Same or earlier millisecond: stay monotonic by counting in rand_a.
        unix_ms = last_ms_;
        if (++seq_ > 0xfff) {
            ++unix_ms;
            seq_ = 0;
        }
    } else {
        seq_ = 0;
    }
    last_ms_ = unix_ms;
    uuid u;
    auto ms = static_cast<std::uint64_t>(unix_ms);
    for (int i = 5; i >= 0; --i) {
        u.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms & 0xff);
        ms >>= 8;
    }
    std::uint64_t r = rng_();
    u.bytes[6] = static_cast<std::uint8_t>(0x70 | ((seq_ >> 8) & 0x0f));
    u.bytes[7] = static_cast<std::uint8_t>(seq_ & 0xff);
    u.bytes[8] = static_cast<std::uint8_t>(0x80 | (r & 0x3f));
    for (std::size_t i = 9; i < 16; ++i) {
        r >>= 8;
        if (r == 0)
            r = rng_();
        u.bytes[i] = static_cast<std::uint8_t>(r & 0xff);
    }
    return u;
}

} // namespace fieldsync
