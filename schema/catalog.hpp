// Collection declarations: the record types the engine accepts and the rules each field obeys.
// Declarations are data (schema/collections/*.json, embedded in the binary); the engine reads
// them through this catalog and knows no record type by name.
//
// Thread-safety: a catalog is immutable after construction and may be shared between threads.
#pragma once

#include "schema/errc.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fieldsync {

enum class field_type {
    string,      // UTF-8 text, optional max_length and format
    integer,     // 64-bit signed, optional min/max
    number,      // double, optional min/max
    boolean,     //
    date,        // "YYYY-MM-DD"
    datetime,    // ISO 8601 with offset, e.g. "2026-11-28T10:15:00+08:00"
    enumeration, // one string of `values`
    enum_set,    // array of distinct strings of `values`
    reference,   // UUID text of a record in `ref` collection
    division,    // administrative division code (level township: 9 digits, village: 12 digits)
    geo,         // {"lat": number, "lon": number, "accuracy_m"?: number}
    json,        // any JSON value within the size limits (free-form extension data)
};

enum class division_level { district = 6, township = 9, village = 12 };

struct label {
    std::string zh;
    std::string en;
};

struct field_decl {
    std::string name;
    field_type type = field_type::string;
    label title;                     // shown in messages: "身份证号" / "ID number"
    bool required = false;           // must be non-null once the record exists
    bool immutable = false;          // may not change after creation
    bool personal = false;           // masked in listings (ID and phone numbers)
    std::optional<double> min;       // integer/number range, string min length
    std::optional<double> max;       // integer/number range
    std::size_t max_length = 0;      // string: code points; 0 = the catalog default
    std::vector<std::string> values; // enumeration / enum_set
    std::vector<label> value_titles; // what each of `values` is called, in the same order (a
                                     // value without "value_labels" is called by its code)
    std::string format;              // string: a named format check ("id_number", "phone", …)
    std::string ref;                 // reference: target collection
    division_level level = division_level::village;
    bool allow_future = false; // date/datetime: may lie in the future (e.g. "next visit")
};

// What `value` of an enumeration field is called: its label, or the value itself.
std::string_view value_title(const field_decl& f, std::string_view value, bool zh) noexcept;

struct collection_decl {
    std::string name;
    label title;
    std::vector<field_decl> fields;
    std::string township_field;     // names the field holding the record's township code
    std::string village_field;      // optional: the village code field
    std::vector<std::string> rules; // named cross-field rules, see schema/rules.hpp

    const field_decl* field(std::string_view name) const noexcept;
};

struct catalog_limits {
    std::size_t max_string_length = 4000; // code points, for strings without their own max
    std::size_t max_value_bytes = 16384;  // serialized size of any one field value
    std::size_t max_fields = 200;         // fields in one record
    std::size_t max_field_name = 64;      // bytes of a field name
};

class catalog {
public:
    // Parses a declaration document ({"schema_version": N, "collections": {...}}). Several
    // documents can be merged by calling add() on an existing catalog.
    static result<catalog> from_json(std::string_view text, std::string* error = nullptr);
    // The declarations shipped in schema/collections/ (embedded).
    static const catalog& builtin();

    result<void> add(std::string_view text, std::string* error = nullptr);

    const collection_decl* find(std::string_view collection) const noexcept;
    const std::map<std::string, collection_decl, std::less<>>& collections() const noexcept {
        return collections_;
    }
    int schema_version() const noexcept { return schema_version_; }
    const catalog_limits& limits() const noexcept { return limits_; }
    catalog_limits& limits() noexcept { return limits_; }

private:
    std::map<std::string, collection_decl, std::less<>> collections_;
    int schema_version_ = 0;
    catalog_limits limits_;
};

std::string_view to_string(field_type t) noexcept;

} // namespace fieldsync
