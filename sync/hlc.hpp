// Hybrid logical clocks: physical milliseconds, a logical counter, and the writing device's id
// as the final tie-break, so that any two clocks are totally and deterministically ordered.
//
// Text form (on the wire and in storage): "<ms>:<counter>:<device>", e.g. "1764316800000:3:t-17".
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync {

struct hlc {
    std::int64_t ms = 0;
    std::uint32_t counter = 0;
    std::string device;

    auto operator<=>(const hlc&) const = default;
    bool operator==(const hlc&) const = default;
    bool is_zero() const noexcept { return ms == 0 && counter == 0 && device.empty(); }

    std::string to_string() const;
    // Strict parse of the text form; device ids are 1–64 characters without ':' or control
    // characters.
    static std::optional<hlc> parse(std::string_view text);
};

using wall_clock = std::function<std::int64_t()>; // Unix milliseconds
std::int64_t system_wall_ms();

// A device's (or the server's) clock source.
// Thread-safety: not thread-safe; see synchronized_clock.
class hlc_clock {
public:
    explicit hlc_clock(std::string device, wall_clock wall = system_wall_ms);

    // A new clock for a local event, greater than every clock issued or observed before.
    hlc now();
    // Receive rule: afterwards now() returns clocks greater than `remote`.
    void observe(const hlc& remote);
    // Sets the state to `h` even if that moves it back. Only for a device whose clocks the
    // server has restamped (its clock ran ahead): everything it issued was replaced.
    void reset(const hlc& h) {
        ms_ = h.ms;
        counter_ = h.counter;
    }
    void set_wall(wall_clock wall) { wall_ = std::move(wall); }
    // The greatest clock issued or observed (the state to persist across restarts).
    hlc last() const { return {ms_, counter_, device_}; }
    const std::string& device() const noexcept { return device_; }
    std::int64_t wall_ms() const { return wall_(); }

private:
    std::string device_;
    wall_clock wall_;
    std::int64_t ms_ = 0;
    std::uint32_t counter_ = 0;
};

// hlc_clock behind a mutex, for the server where the writer and readers both stamp responses.
class synchronized_clock {
public:
    explicit synchronized_clock(std::string device, wall_clock wall = system_wall_ms)
        : clock_(std::move(device), std::move(wall)) {}
    hlc now() {
        std::lock_guard lock(mutex_);
        return clock_.now();
    }
    void observe(const hlc& h) {
        std::lock_guard lock(mutex_);
        clock_.observe(h);
    }
    hlc last() const {
        std::lock_guard lock(mutex_);
        return clock_.last();
    }
    std::int64_t wall_ms() const { return clock_.wall_ms(); }

private:
    mutable std::mutex mutex_;
    hlc_clock clock_; // guarded by mutex_
};

} // namespace fieldsync
