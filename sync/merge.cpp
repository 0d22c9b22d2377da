#include "sync/merge.hpp"

namespace fieldsync {

merge_outcome merge_field(const std::optional<field_state>& stored, const field_write& w) {
    if (!stored)
        return merge_outcome::inserted;
    if (stored->clock == w.clock)
        return merge_outcome::duplicate;
    // Clean if the tablet saw the stored value, or wrote it itself: a device's writes are
    // sequential, so it never conflicts with itself (this also keeps a later write clean when
    // the server restamped the earlier one).
    if ((w.base && *w.base == stored->clock) || stored->clock.device == w.clock.device)
        return w.clock > stored->clock ? merge_outcome::clean_update
                                       : merge_outcome::stale_clean_update;
    // The tablet did not see the stored value: another device wrote the field concurrently.
    if (stored->value == w.value)
        return merge_outcome::concurrent_same_value;
    return w.clock > stored->clock ? merge_outcome::concurrent_won : merge_outcome::concurrent_lost;
}

std::string_view to_string(merge_outcome o) noexcept {
    switch (o) {
    case merge_outcome::inserted:
        return "inserted";
    case merge_outcome::clean_update:
        return "clean_update";
    case merge_outcome::duplicate:
        return "duplicate";
    case merge_outcome::concurrent_same_value:
        return "concurrent_same_value";
    case merge_outcome::concurrent_won:
        return "concurrent_won";
    case merge_outcome::concurrent_lost:
        return "concurrent_lost";
    case merge_outcome::stale_clean_update:
        return "stale_clean_update";
    }
    return "unknown";
}

} // namespace fieldsync
