// The named format checks and cross-field rules that collection declarations may use.
// Adding a check here and naming it in a declaration is all a new rule needs.
#pragma once

#include "schema/rules.hpp"

#include <map>
#include <string>

namespace fieldsync {

std::map<std::string, format_check, std::less<>> builtin_formats();
std::map<std::string, record_rule, std::less<>> builtin_rules();

// GB 11643-1999 check character of the first 17 digits of a resident ID number ('0'-'9' or 'X').
char id_number_check_char(std::string_view first17) noexcept;

// Facts read from a structurally valid 18-character ID number.
struct id_number_info {
    std::string region;     // 6-digit administrative code of the place of registration
    std::int64_t birth_day; // days since 1970-01-01
    std::string birth_date; // "YYYY-MM-DD"
    bool male;              // the 17th digit is odd for men
};
// Parses and fully checks an ID number; nullopt with `code` set to the rejection code if not.
std::optional<id_number_info> parse_id_number(std::string_view s, std::string* code = nullptr);

// A proleptic Gregorian calendar date.
struct civil_date {
    int year;
    int month; // 1-12
    int day;   // 1-31
};
// The date of a day number (days since 1970-01-01): the inverse of parse_date's day number
// (schema/rules.hpp). Howard Hinnant's civil_from_days.
civil_date civil_from_days(std::int64_t days) noexcept;

} // namespace fieldsync
