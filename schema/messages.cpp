// Plain-language messages for every rejection code. {field} is replaced by the field's label.
// Codes are part of the protocol (docs/protocol.md): never rename one, add new ones instead.
#include "schema/rules.hpp"

#include <map>

namespace fieldsync {

namespace {

struct message {
    std::string_view zh;
    std::string_view en;
};

const std::map<std::string_view, message>& table() {
    static const std::map<std::string_view, message> t = {
        {"unknown_collection",
         {"记录类型未知，请更新平板应用", "Unknown record type; update the tablet app"}},
        {"collection_mismatch",
         {"记录编号已被另一类记录使用", "This record id belongs to a record of another type"}},
        {"bad_record_id", {"记录编号格式不正确", "The record id is not a valid UUID"}},
        {"bad_field_name", {"字段名“{field}”不合法", "Field name \"{field}\" is not allowed"}},
        {"bad_clock", {"“{field}”的时间戳不合法", "The clock of \"{field}\" is malformed"}},
        {"clock_device_mismatch",
         {"“{field}”的时间戳不属于本平板", "The clock of \"{field}\" names another tablet"}},
        {"reserved_field",
         {"字段“{field}”由区残联系统维护，平板不能修改",
          "Field \"{field}\" is kept by the server; a tablet cannot change it"}},
        {"empty_mutation", {"没有要保存的字段", "The change contains no fields"}},
        {"too_many_fields", {"字段过多", "The record has too many fields"}},
        {"value_too_large", {"“{field}”内容过长", "\"{field}\" is too large"}},
        {"wrong_type",
         {"“{field}”的类型不正确（应为{detail}）",
          "\"{field}\" has the wrong type (expected {detail})"}},
        {"invalid_utf8",
         {"“{field}”含有无法识别的字符", "\"{field}\" contains invalid characters"}},
        {"too_long", {"“{field}”太长", "\"{field}\" is too long"}},
        {"too_short", {"“{field}”太短", "\"{field}\" is too short"}},
        {"required_missing", {"请填写“{field}”", "\"{field}\" is required"}},
        {"immutable_field",
         {"“{field}”创建后不能修改", "\"{field}\" cannot be changed after the record is created"}},
        {"not_in_enum",
         {"“{field}”的取值不在可选范围内", "\"{field}\" is not one of the allowed values"}},
        {"duplicate_value", {"“{field}”中有重复的选项", "\"{field}\" lists a value twice"}},
        {"out_of_range", {"“{field}”超出允许范围", "\"{field}\" is out of range"}},
        {"bad_date",
         {"“{field}”不是有效日期（格式：2026-01-31）",
          "\"{field}\" is not a valid date (format 2026-01-31)"}},
        {"bad_datetime", {"“{field}”不是有效时间", "\"{field}\" is not a valid date and time"}},
        {"date_in_future",
         {"“{field}”不能晚于今天，请检查平板日期",
          "\"{field}\" lies in the future; check the tablet's date"}},
        {"bad_reference",
         {"“{field}”引用的记录编号不正确", "\"{field}\" does not name a valid record id"}},
        {"reference_missing",
         {"“{field}”引用的记录不存在，请先同步该记录",
          "The record named in \"{field}\" does not exist; sync it first"}},
        {"bad_division_code",
         {"“{field}”行政区划代码格式不正确",
          "\"{field}\" is not a division code of the right length"}},
        {"unknown_division",
         {"“{field}”不是本区的乡镇或村",
          "\"{field}\" is not a township or village of this district"}},
        {"village_not_in_township",
         {"所选村不属于该乡镇", "The village does not belong to the record's township"}},
        {"out_of_scope",
         {"该记录不属于您负责的乡镇或村，无法上传",
          "This record is outside your township or villages"}},
        {"scope_field_immutable",
         {"记录所属乡镇不能修改，请联系区残联",
          "A record's township cannot be changed; contact the district"}},
        {"id_number_length", {"身份证号应为18位", "The ID number must have 18 characters"}},
        {"id_number_characters",
         {"身份证号只能包含数字，最后一位可以是X",
          "The ID number must be digits, the last may be X"}},
        {"id_number_region", {"身份证号前6位地区码不正确", "The ID number's region code is wrong"}},
        {"id_number_birth_date",
         {"身份证号中的出生日期不正确", "The ID number's birth date is not a real date"}},
        {"id_number_check_digit",
         {"身份证号校验位错误，请核对", "ID number check digit is wrong; check the number"}},
        {"cert_no_length",
         {"残疾人证号应为20位", "The disability certificate number must have 20 characters"}},
        {"cert_no_id_part",
         {"残疾人证号前18位应为有效身份证号",
          "The first 18 characters of the certificate number must be a valid ID number"}},
        {"cert_no_category",
         {"残疾人证号第19位（残疾类别）应为1-7", "Certificate digit 19 (category) must be 1-7"}},
        {"cert_no_grade",
         {"残疾人证号第20位（残疾等级）应为1-4", "Certificate digit 20 (grade) must be 1-4"}},
        {"cert_no_id_mismatch",
         {"残疾人证号与身份证号不一致", "The certificate number does not match the ID number"}},
        {"cert_no_category_mismatch",
         {"残疾类别与残疾人证号不一致",
          "The disability category does not match the certificate number"}},
        {"cert_no_grade_mismatch",
         {"残疾等级与残疾人证号不一致",
          "The disability grade does not match the certificate number"}},
        {"birth_date_mismatch",
         {"出生日期与身份证号不一致", "The birth date does not match the ID number"}},
        {"gender_mismatch", {"性别与身份证号不一致", "The gender does not match the ID number"}},
        {"phone_format",
         {"电话号码格式不正确（手机11位，座机如023-12345678）",
          "The phone number is not valid (11-digit mobile or 023-12345678)"}},
        {"id_number_birth_in_future",
         {"身份证号中的出生日期晚于今天，请核对第7-14位",
          "The birth date in the ID number is after today; check digits 7-14"}},
        {"graduation_year_missing",
         {"高校毕业生请填写毕业年份", "Enter the graduation year for a university graduate"}},
        {"graduation_year_too_early",
         {"毕业年份早于15岁，请核对", "The graduation year is before the person was 15; check it"}},
        {"graduation_year_too_late",
         {"毕业年份太晚，请填写预计毕业年份",
          "The graduation year is too far ahead; enter the expected year"}},
        {"monitoring_status_inconsistent",
         {"该户已纳入监测，监测状态不能为“未监测”",
          "The household is under monitoring; its monitoring status cannot be \"none\""}},
        {"visit_subject_missing",
         {"请选择走访的残疾人或家庭", "Choose the person or household visited"}},
        {"next_visit_not_after_visit",
         {"下次走访日期应晚于本次走访日期", "The next visit must be after this visit's date"}},
        {"outcome_contradicts_risk",
         {"监测结论与风险等级不一致，请核对",
          "The outcome does not match the risk level; check both"}},
        {"measures_missing",
         {"建议帮扶时请填写帮扶措施", "Describe the measures when recommending assistance"}},
        {"work_mode_missing",
         {"有就业意愿的，请填写就业方式意向",
          "Enter the preferred work mode of a person who wants work"}},
        {"assessed_at_missing",
         {"填写评估结果时请填写评估日期", "Enter the assessment date with the assessment result"}},
    };
    return t;
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
    for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
        s.replace(pos, what.size(), with);
}

rejection build(std::string_view code, std::string_view name, std::string_view zh_label,
                std::string_view en_label, std::string_view detail) {
    rejection r{std::string(code), std::string(name), {}, {}};
    auto it = table().find(code);
    if (it == table().end()) {
        r.message_zh = "数据不符合要求（" + std::string(code) + "）";
        r.message_en = "The record is not valid (" + std::string(code) + ")";
        return r;
    }
    r.message_zh = std::string(it->second.zh);
    r.message_en = std::string(it->second.en);
    replace_all(r.message_zh, "{field}", zh_label);
    replace_all(r.message_en, "{field}", en_label);
    replace_all(r.message_zh, "{detail}", detail);
    replace_all(r.message_en, "{detail}", detail);
    return r;
}

} // namespace

rejection make_rejection(std::string_view code, const field_decl* field, std::string_view detail) {
    if (!field)
        return build(code, {}, {}, {}, detail);
    return build(code, field->name, field->title.zh, field->title.en, detail);
}

rejection make_rejection(std::string_view code, std::string_view field_name) {
    return build(code, field_name, field_name, field_name, {});
}

} // namespace fieldsync
