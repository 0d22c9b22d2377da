// Record ids: UUIDv7 (RFC 9562), made on the tablet. The first 48 bits are Unix milliseconds, so
// ids made later sort later and inserts append to the id index.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>

namespace fieldsync {

struct uuid {
    std::array<std::uint8_t, 16> bytes{};

    auto operator<=>(const uuid&) const = default;
    std::span<const std::uint8_t> span() const { return bytes; }
    std::string to_string() const;          // canonical lowercase 8-4-4-4-12
    void append_to(std::string& out) const; // the same, appended
    // Accepts the canonical form (either case); nothing else.
    static std::optional<uuid> parse(std::string_view text);
    static std::optional<uuid> from_blob(std::span<const std::uint8_t> blob);
    std::int64_t unix_ms() const; // the v7 timestamp
};

// Generator of UUIDv7s; monotonic within one generator even when the wall clock stalls.
// Thread-safety: not thread-safe.
class uuid_v7_generator {
public:
    explicit uuid_v7_generator(std::uint64_t seed = std::random_device{}());
    uuid make(std::int64_t unix_ms);

private:
    std::mt19937_64 rng_;
    std::int64_t last_ms_ = 0;
    std::uint16_t seq_ = 0; // 12-bit counter in rand_a for same-millisecond ids
};

} // namespace fieldsync
