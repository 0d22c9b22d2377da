// Validation of records against their collection declaration. Pure functions of values plus a
// read-only view of reference data; no I/O of their own.
//
// A rejection names a stable machine code (snake_case, part of the protocol), the field it is
// about, and a sentence in Chinese and English that a field worker can act on.
#pragma once

#include "schema/catalog.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync {

struct rejection {
    std::string code;  // stable, e.g. "id_number_check_digit"
    std::string field; // the field concerned, empty when about the whole record
    std::string message_zh;
    std::string message_en;
};

// Builds a rejection from the message table (schema/messages.cpp), substituting the field's
// label for {field}. Unknown codes get a generic message.
rejection make_rejection(std::string_view code, const field_decl* field = nullptr,
                         std::string_view detail = {});
rejection make_rejection(std::string_view code, std::string_view field_name);

// Read-only view of what validation needs to know beyond the record itself.
// Thread-safety: implementations are called from the thread running validation only.
class reference_data {
public:
    virtual ~reference_data() = default;
    // True if the division code (district, township or village) is known.
    virtual bool division_exists(std::string_view code) const = 0;
    // True if a live (not deleted) record with this id exists in the collection.
    virtual bool record_exists(std::string_view collection, std::string_view id) const = 0;
};

struct validation_context {
    const catalog* cat = nullptr;
    const reference_data* refs = nullptr; // null: reference checks are skipped
    std::int64_t now_ms = 0;              // server time, for "not in the future"
    std::int64_t future_slack_ms = 0;     // dates may lie this far ahead (the clock bound)
};

// A named format check for string fields ("id_number", "phone", …).
using format_check = std::function<std::optional<rejection>(const field_decl&, std::string_view)>;
// A named cross-field rule, run on the record as it would be after the mutation.
using record_rule = std::function<std::optional<rejection>(
    const collection_decl&, const boost::json::object&, const validation_context&)>;

const format_check* find_format(std::string_view name);
const record_rule* find_rule(std::string_view name);

// Checks one field value: type, range, enumeration, length, UTF-8, format. A null value is
// accepted here (clearing a field); `required` is checked on the whole record.
// Fields not declared (sent by a newer tablet) are accepted within the size limits.
std::optional<rejection> validate_value(const collection_decl& c, std::string_view field,
                                        const boost::json::value& v, const validation_context& ctx);

// Checks the record as it would be after applying a mutation: required fields, references,
// divisions and the collection's cross-field rules, in that order (the first failure answers).
std::optional<rejection> validate_record(const collection_decl& c,
                                         const boost::json::object& record,
                                         const validation_context& ctx);
// Only the reference and division checks of validate_record (nothing without ctx.refs). For a
// record that passed validate_record without ctx.refs at a time no later than ctx.now_ms (the
// rules' "not in the future" checks only pass more easily later), this gives validate_record's
// answer with them.
std::optional<rejection> validate_references(const collection_decl& c,
                                             const boost::json::object& record,
                                             const validation_context& ctx);

// True if `s` is a field name the engine accepts: lowercase identifier, at most 64 bytes.
bool is_field_name(std::string_view s) noexcept;
// True if `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view s) noexcept;
std::size_t utf8_length(std::string_view s) noexcept;
// True if some object in the JSON text `text`, which parsed as `parsed`, names a key twice. The
// parser keeps only the last of them, so such a body could mean something else to its sender.
bool has_duplicate_keys(std::string_view text, const boost::json::value& parsed);

// Calendar helpers shared by rules: "YYYY-MM-DD" → days since 1970-01-01, if a real date.
std::optional<std::int64_t> parse_date(std::string_view s) noexcept;
// ISO 8601 date-time with seconds and a Z or ±hh:mm offset → Unix milliseconds.
std::optional<std::int64_t> parse_datetime(std::string_view s) noexcept;

} // namespace fieldsync
