#include "schema/errc.hpp"

#include <string>

namespace fieldsync {

std::string_view to_string(errc e) noexcept {
    switch (e) {
    case errc::ok:
        return "ok";
    case errc::invalid_argument:
        return "invalid_argument";
    case errc::not_found:
        return "not_found";
    case errc::conflict:
        return "conflict";
    case errc::unauthorized:
        return "unauthorized";
    case errc::forbidden:
        return "forbidden";
    case errc::device_revoked:
        return "device_revoked";
    case errc::sequence_gap:
        return "sequence_gap";
    case errc::bad_cursor:
        return "bad_cursor";
    case errc::too_large:
        return "too_large";
    case errc::storage_failure:
        return "storage_failure";
    case errc::corrupt_database:
        return "corrupt_database";
    case errc::unsupported:
        return "unsupported";
    case errc::expired:
        return "expired";
    case errc::rate_limited:
        return "rate_limited";
    }
    return "unknown";
}

namespace {
class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "fieldsync"; }
    std::string message(int ev) const override { return std::string(to_string(errc(ev))); }
};
} // namespace

const boost::system::error_category& fieldsync_category() noexcept {
    static const category c;
    return c;
}

} // namespace fieldsync
