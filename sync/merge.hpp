// Field merge: the pure decision at the heart of the protocol. Given what the server stores for
// one field and what a mutation brings (value, clock, and the clock of the value it replaced on
// the tablet), decide which value stays and whether a conflict must be kept.
#pragma once

#include "sync/hlc.hpp"

#include <boost/json/value.hpp>

#include <optional>

namespace fieldsync {

struct field_state {
    boost::json::value value;
    hlc clock;
};

struct field_write {
    boost::json::value value;
    hlc clock;
    std::optional<hlc> base; // clock of the value this write replaced on the tablet; none if the
                             // tablet had no value for the field
};

enum class merge_outcome {
    inserted,              // the field had no value: take the write
    clean_update,          // stored clock == base, or the stored value is the same device's
                           // earlier write: nobody else changed it, take the write
    duplicate,             // stored clock == write clock: this very write is already applied
    concurrent_same_value, // concurrent, same value: keep the higher clock, nothing to resolve
    concurrent_won,        // concurrent, write's clock is higher: take it, stored value -> conflict
    concurrent_lost,       // concurrent, stored clock is higher: keep it, write -> conflict
    stale_clean_update,    // stored clock == base but the write's clock is not after it (a broken
                           // tablet clock): take the write, the caller must restamp it
};

merge_outcome merge_field(const std::optional<field_state>& stored, const field_write& incoming);

// True if the outcome stores the write's value and clock. (concurrent_same_value stores the
// higher of the two clocks, which may be the write's: the engine handles that case itself.)
constexpr bool takes_write(merge_outcome o) noexcept {
    return o == merge_outcome::inserted || o == merge_outcome::clean_update ||
           o == merge_outcome::concurrent_won || o == merge_outcome::stale_clean_update;
}
// True if the outcome leaves a losing value that must be kept as an open conflict.
constexpr bool opens_conflict(merge_outcome o) noexcept {
    return o == merge_outcome::concurrent_won || o == merge_outcome::concurrent_lost;
}

std::string_view to_string(merge_outcome o) noexcept;

} // namespace fieldsync
