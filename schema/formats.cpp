#include "schema/formats.hpp"

#include <algorithm>

namespace fieldsync {

namespace json = boost::json;

namespace {

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view str_field(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

std::optional<rejection> id_number_format(const field_decl& f, std::string_view s) {
    std::string code;
    if (!parse_id_number(s, &code))
        return make_rejection(code, &f);
    return std::nullopt;
}

// 残疾人证号: the holder's 18-character ID number, then the category digit (1 visual, 2 hearing,
// 3 speech, 4 physical, 5 intellectual, 6 mental, 7 multiple) and the grade digit (1–4).
std::optional<rejection> cert_no_format(const field_decl& f, std::string_view s) {
    if (s.size() != 20)
        return make_rejection("cert_no_length", &f);
    std::string code;
    if (!parse_id_number(s.substr(0, 18), &code))
        return make_rejection("cert_no_id_part", &f);
    if (s[18] < '1' || s[18] > '7')
        return make_rejection("cert_no_category", &f);
    if (s[19] < '1' || s[19] > '4')
        return make_rejection("cert_no_grade", &f);
    return std::nullopt;
}

// Mainland mobile numbers (11 digits, 1[3-9]…) or landlines with an area code (0xx-xxxxxxx).
std::optional<rejection> phone_format(const field_decl& f, std::string_view s) {
    if (s.size() == 11 && all_digits(s) && s[0] == '1' && s[1] >= '3' && s[1] <= '9')
        return std::nullopt;
    auto dash = s.find('-');
    if (dash != std::string_view::npos) {
        auto area = s.substr(0, dash), local = s.substr(dash + 1);
        if (area.size() >= 3 && area.size() <= 4 && area[0] == '0' && all_digits(area) &&
            local.size() >= 7 && local.size() <= 8 && all_digits(local))
            return std::nullopt;
    }
    return make_rejection("phone_format", &f);
}

// The village code begins with its township's code (administrative division codes nest).
std::optional<rejection> village_in_township(const collection_decl& c, const json::object& r,
                                             const validation_context&) {
    if (c.village_field.empty())
        return std::nullopt;
    auto township = str_field(r, c.township_field);
    auto village = str_field(r, c.village_field);
    if (village.empty() || township.empty())
        return std::nullopt;
    if (!village.starts_with(township))
        return make_rejection("village_not_in_township", c.field(c.village_field));
    return std::nullopt;
}

// Birth date and gender, when present, must agree with the ID number.
std::optional<rejection> id_number_consistent(const collection_decl& c, const json::object& r,
                                              const validation_context&) {
    auto id = parse_id_number(str_field(r, "id_number"));
    if (!id)
        return std::nullopt; // the field check reports a malformed number
    auto birth = str_field(r, "birth_date");
    if (!birth.empty() && birth != id->birth_date)
        return make_rejection("birth_date_mismatch", c.field("birth_date"));
    auto gender = str_field(r, "gender");
    if (!gender.empty() && (gender == "male") != id->male)
        return make_rejection("gender_mismatch", c.field("gender"));
    return std::nullopt;
}

// The certificate number repeats the ID number and encodes category and grade.
std::optional<rejection> cert_matches_id(const collection_decl& c, const json::object& r,
                                         const validation_context&) {
    auto cert = str_field(r, "disability_cert_no");
    auto id = str_field(r, "id_number");
    if (cert.size() != 20)
        return std::nullopt;
    if (!id.empty() && cert.substr(0, 18) != id)
        return make_rejection("cert_no_id_mismatch", c.field("disability_cert_no"));
    static constexpr std::string_view categories[] = {
        "visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple"};
    auto category = str_field(r, "disability_category");
    if (!category.empty()) {
        auto idx = cert[18] - '1';
        if (idx < 0 || idx >= 7 || categories[idx] != category)
            return make_rejection("cert_no_category_mismatch", c.field("disability_category"));
    }
    if (const auto* g = r.if_contains("disability_grade"); g && g->is_int64())
        if (g->as_int64() != cert[19] - '0')
            return make_rejection("cert_no_grade_mismatch", c.field("disability_grade"));
    return std::nullopt;
}

std::optional<std::int64_t> int_field(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    if (!v)
        return std::nullopt;
    if (v->is_int64())
        return v->as_int64();
    if (v->is_uint64())
        return static_cast<std::int64_t>(v->as_uint64());
    if (v->is_double())
        return static_cast<std::int64_t>(v->as_double());
    return std::nullopt;
}

bool true_field(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v && v->is_bool() && v->as_bool();
}

constexpr std::int64_t day_ms = 86400000;

// The birth date inside an ID number cannot lie after today: a typo in digits 7–14 that still
// forms a real date (2052 for 2025) passes the format check but not this one. The server's clock
// (plus the clock bound) decides what "today" is; without a clock the rule is skipped.
std::optional<rejection> id_number_birth_not_future(const collection_decl& c, const json::object& r,
                                                    const validation_context& ctx) {
    if (!ctx.now_ms)
        return std::nullopt;
    auto id = parse_id_number(str_field(r, "id_number"));
    if (id && id->birth_day * day_ms > ctx.now_ms + ctx.future_slack_ms)
        return make_rejection("id_number_birth_in_future", c.field("id_number"));
    return std::nullopt;
}

// The graduates' ledger (一人一策) needs the year: a graduate without one cannot be counted in
// the year's cohort. Students still at university are entered with their expected year, so a
// few years ahead is allowed; a year before the person was 15 is a typo.
std::optional<rejection> graduation_consistent(const collection_decl& c, const json::object& r,
                                               const validation_context& ctx) {
    auto year = int_field(r, "graduation_year");
    if (true_field(r, "is_graduate") && !year)
        return make_rejection("graduation_year_missing", c.field("graduation_year"));
    if (!year)
        return std::nullopt;
    if (auto birth = parse_date(str_field(r, "birth_date")))
        if (*year < civil_from_days(*birth).year + 15)
            return make_rejection("graduation_year_too_early", c.field("graduation_year"));
    if (ctx.now_ms && *year > civil_from_days(ctx.now_ms / day_ms).year + 6)
        return make_rejection("graduation_year_too_late", c.field("graduation_year"));
    return std::nullopt;
}

// A household the village has put under return-to-poverty monitoring must say how the
// monitoring stands; "not monitored" contradicts it and would drop it from the monitoring list.
std::optional<rejection> household_monitoring_consistent(const collection_decl& c,
                                                         const json::object& r,
                                                         const validation_context&) {
    if (str_field(r, "poverty_status") == "under_monitoring" &&
        str_field(r, "monitoring_status") == "none")
        return make_rejection("monitoring_status_inconsistent", c.field("monitoring_status"));
    return std::nullopt;
}

// A visit is to someone: a person, a household, or both.
std::optional<rejection> visit_subject_present(const collection_decl& c, const json::object& r,
                                               const validation_context&) {
    if (str_field(r, "person").empty() && str_field(r, "household").empty())
        return make_rejection("visit_subject_missing", c.field("person"));
    return std::nullopt;
}

// The follow-up date is compared with the visit's local calendar date (the text before 'T'),
// which is the date the worker saw on the tablet.
std::optional<rejection> next_visit_after_visit(const collection_decl& c, const json::object& r,
                                                const validation_context&) {
    auto due = parse_date(str_field(r, "next_visit_due"));
    auto visited = str_field(r, "visited_at");
    if (!due || visited.size() < 10)
        return std::nullopt;
    auto day = parse_date(visited.substr(0, 10));
    if (day && *due <= *day)
        return make_rejection("next_visit_not_after_visit", c.field("next_visit_due"));
    return std::nullopt;
}

// The outcome is the worker's conclusion from the risk level: "no risk" at medium or high risk,
// or a flag or assistance at no risk at all, is a slip of the finger that would put the household
// on (or off) the monitoring list wrongly. Recommending assistance needs the measures written.
std::optional<rejection> monitoring_outcome_consistent(const collection_decl& c,
                                                       const json::object& r,
                                                       const validation_context&) {
    auto level = str_field(r, "risk_level");
    auto outcome = str_field(r, "outcome");
    bool high = level == "medium" || level == "high";
    bool acts = outcome == "flag_for_monitoring" || outcome == "assistance_recommended";
    if ((outcome == "no_risk" && high) || (acts && level == "none"))
        return make_rejection("outcome_contradicts_risk", c.field("outcome"));
    if (outcome == "assistance_recommended" && str_field(r, "measures").empty())
        return make_rejection("measures_missing", c.field("measures"));
    return std::nullopt;
}

// "四个一": a person who wants work is registered with how they want to work, and an assessment
// result counts only with the date it was made.
std::optional<rejection> registration_consistent(const collection_decl& c, const json::object& r,
                                                 const validation_context&) {
    if (true_field(r, "wants_work") && str_field(r, "work_mode").empty())
        return make_rejection("work_mode_missing", c.field("work_mode"));
    if (!str_field(r, "assessment_result").empty() && str_field(r, "assessed_at").empty())
        return make_rejection("assessed_at_missing", c.field("assessed_at"));
    return std::nullopt;
}

} // namespace

civil_date civil_from_days(std::int64_t days) noexcept {
    const std::int64_t z = days + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    return {static_cast<int>(yoe + era * 400 + (m <= 2)), m, d};
}

char id_number_check_char(std::string_view first17) noexcept {
    static constexpr int weights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static constexpr char checks[] = "10X98765432";
    int sum = 0;
    for (std::size_t i = 0; i < 17 && i < first17.size(); ++i)
        sum += (first17[i] - '0') * weights[i];
    return checks[sum % 11];
}

std::optional<id_number_info> parse_id_number(std::string_view s, std::string* code) {
    auto fail = [&](const char* c) -> std::optional<id_number_info> {
        if (code)
            *code = c;
        return std::nullopt;
    };
    if (s.size() != 18)
        return fail("id_number_length");
    if (!all_digits(s.substr(0, 17)) || !(all_digits(s.substr(17)) || s[17] == 'X'))
        return fail("id_number_characters");
    if (s[0] == '0')
        return fail("id_number_region");
    std::string date = std::string(s.substr(6, 4)) + "-" + std::string(s.substr(10, 2)) + "-" +
                       std::string(s.substr(12, 2));
    auto day = parse_date(date);
    if (!day)
        return fail("id_number_birth_date");
    if (id_number_check_char(s.substr(0, 17)) != s[17])
        return fail("id_number_check_digit");
    return id_number_info{std::string(s.substr(0, 6)), *day, date, (s[16] - '0') % 2 == 1};
}

std::map<std::string, format_check, std::less<>> builtin_formats() {
    return {
        {"id_number", id_number_format},
        {"cert_no", cert_no_format},
        {"phone", phone_format},
    };
}

std::map<std::string, record_rule, std::less<>> builtin_rules() {
    return {
        {"village_in_township", village_in_township},
        {"id_number_consistent", id_number_consistent},
        {"cert_matches_id", cert_matches_id},
        {"id_number_birth_not_future", id_number_birth_not_future},
        {"graduation_consistent", graduation_consistent},
        {"household_monitoring_consistent", household_monitoring_consistent},
        {"visit_subject_present", visit_subject_present},
        {"next_visit_after_visit", next_visit_after_visit},
        {"monitoring_outcome_consistent", monitoring_outcome_consistent},
        {"registration_consistent", registration_consistent},
    };
}

} // namespace fieldsync
