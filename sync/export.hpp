// Exports of the district-month report and of record lists, as CSV (UTF-8 with a BOM, so that
// Excel shows Chinese correctly) and XLSX. Percentages are computed from the summed numerators
// and denominators of each row — the district row adds the townships' counts, it never averages
// their percentages.
//
// Thread-safety: pure functions of their arguments (XLSX uses a private temporary file).
#pragma once

#include "schema/catalog.hpp"
#include "schema/errc.hpp"
#include "sync/review.hpp"
#include "sync/rollups.hpp"

#include <string>
#include <vector>

namespace fieldsync {

// Chinese and English names of an indicator.
label indicator_label(std::string_view indicator);

// Coverage of `numerator` over `denominator` in percent with one decimal ("87.5"), "" if the
// denominator is zero.
std::string percent(std::int64_t numerator, std::int64_t denominator);

// The table of a district-month report: a header row, one row per township, the district total.
std::vector<std::vector<std::string>> report_table(const district_month& report, bool chinese);
// The table of a record list: declared fields of the collection as columns (values as given,
// so masked unless the caller revealed them; enumerations and the review state by what they
// are called in the language asked for, booleans as 是/否 or yes/no).
std::vector<std::vector<std::string>> records_table(const collection_decl& collection,
                                                    const std::vector<record_summary>& records,
                                                    bool chinese);

std::string to_csv(const std::vector<std::vector<std::string>>& table);
result<std::string> to_xlsx(const std::vector<std::vector<std::string>>& table,
                            std::string_view sheet_name);

} // namespace fieldsync
