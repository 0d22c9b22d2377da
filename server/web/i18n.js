// Texts in Chinese (default) and English, and number/date formatting in the chosen language.
// The choice is kept in localStorage ("fs_lang") and sets <html lang>.

const zh = {
    app_title: '残疾人就业帮扶数据平台',
    skip: '跳到主要内容',
    lang_switch: 'English',
    lang_switch_label: 'Switch to English',
    login_title: '登录',
    login_intro: '乡镇负责人和区残联管理员请用账号密码登录。',
    username: '用户名',
    password: '密码',
    login: '登录',
    logging_in: '正在登录…',
    logout: '退出登录',
    bad_login: '用户名或密码不正确。',
    worker_forbidden: '外业人员请使用平板电脑，网页仅供乡镇负责人和区管理员使用。',
    rate_limited: '登录失败次数过多，请一分钟后再试。',
    session_expired: '登录已过期，请重新登录。',
    logged_out: '您已退出登录。',
    offline: '无法连接服务器。请检查网络后重试。',
    timeout: '服务器响应超时。请检查网络后重试。',
    server_error: '服务器出错（{code}）。请稍后重试。',
    retry: '重试',
    loading: '正在加载…',
    saved: '已保存。',
    signed_in_as: '{user}（{role}）',
    role_township_head: '乡镇负责人',
    role_district_admin: '区管理员',
    role_field_worker: '外业人员',
    nav_label: '主导航',
    nav_overview: '本月概况',
    nav_records: '记录',
    nav_conflicts: '冲突',
    nav_quarantine: '待修正',
    nav_district: '全区月报',
    nav_users: '用户',
    nav_tablets: '平板',
    nav_access_log: '访问日志',
    access_log_title: '访问日志',
    access_log_intro: '查看完整证件号码、电话号码和导出数据的记录。',
    no_access_log: '暂无记录。',
    when: '时间',
    action: '操作',
    detail: '说明',
    month: '月份',
    show: '显示',
    overview_title: '{township} · {month}概况',
    village: '村（社区）',
    township: '乡镇（街道）',
    total: '合计',
    district_total: '全区合计',
    four_ones: '“四个一”覆盖',
    coverage_of: '{n} / {d}',
    open_conflicts: '未解决冲突',
    quarantined: '待修正（隔离）',
    awaiting_review: '待审核记录',
    approval: '审批状态',
    approved: '已审批',
    not_approved: '未审批',
    revision: '版本',
    changed_since_approval: '审批后有变动',
    changed_yes: '有变动',
    changed_no: '无',
    approve_month: '审批本月数据',
    approve_month_confirm: '确认审批 {month} 的数据？审批后如有新数据会生成新版本。',
    month_approved: '{month}数据已审批（第 {revision} 版）。',
    confirm: '确认',
    cancel: '取消',
    records_title: '记录',
    filters: '筛选',
    collection: '类型',
    any: '全部',
    review_state: '审核状态',
    review_received: '待审核',
    review_has_issues: '有问题',
    review_approved: '已通过',
    search: '搜索',
    search_placeholder: '姓名、地址等',
    date_from: '起始日期',
    date_to: '截止日期',
    apply: '查询',
    reset: '重置',
    results: '共 {total} 条，显示第 {from}–{to} 条',
    no_results: '没有符合条件的记录。',
    prev: '上一页',
    next: '下一页',
    paging: '分页',
    summary: '摘要',
    updated: '更新时间',
    created_by: '填报人',
    open: '查看',
    record_title: '{collection}记录',
    back_to_records: '返回记录列表',
    fields: '字段',
    field: '字段',
    value: '值',
    reveal: '显示完整号码',
    reveal_label: '显示完整号码：{field}（此操作将被记录）',
    revealed: '已显示（此操作已记录）',
    history: '修改历史',
    history_entry: '{user} 通过 {device} 于 {at}',
    no_history: '没有修改记录。',
    review: '审核',
    mark_has_issues: '退回（有问题）',
    mark_approved: '通过',
    comment: '意见',
    comment_required: '退回时必须填写意见。',
    submit: '提交',
    review_saved: '审核结果已保存，外业人员下次同步时会收到。',
    current_review: '当前状态：{state}',
    review_comment: '意见：{comment}',
    conflicts_title: '未解决的冲突',
    conflict_heading: '{collection} · {field}',
    winner: '当前采用的值',
    loser: '另一个值',
    by_at: '{user}，{device}，{at}',
    keep_winner: '保留当前值',
    use_loser: '改用另一个值',
    enter_value: '输入正确的值',
    use_value: '使用输入的值',
    resolved: '冲突已解决。',
    no_conflicts: '没有未解决的冲突。',
    record: '记录',
    quarantine_title: '被拒绝、待修正的提交',
    no_quarantine: '没有待修正的提交。',
    repair: '修正',
    repair_entry: '修正 {user} 于 {at} 提交的记录',
    repair_title: '修正被拒绝的提交：{collection}',
    repair_meta: '{user}（平板 {device}）于 {at} 提交',
    repair_masked: '已隐藏；留空则按原值提交，填写则改为新值。',
    repair_json: 'JSON 格式。',
    repair_bad_json: '“{field}”不是有效的 JSON。',
    repair_bad_input: '“{field}”的格式不对。',
    repair_unknown_value: '{value}（本系统没有这个选项）',
    repair_nothing: '没有修改任何内容：请先修正被拒绝的字段。',
    repair_gone: '这条提交已处理或不存在',
    resubmit: '修正后重新提交',
    resubmitted: '已重新提交，记录已保存。',
    dismiss_title: '不予处理',
    dismiss_reason: '原因',
    dismiss_hint: '例如：重复登记、采集员已另行修正。',
    dismiss_reason_required: '请填写不予处理的原因。',
    dismiss: '不予处理',
    dismissed: '已标记为不予处理。',
    reason: '原因',
    received: '收到时间',
    user: '用户',
    district_title: '{month}全区月报',
    export_csv: '导出 CSV',
    export_xlsx: '导出 Excel',
    exports: '导出',
    chart_coverage: '各乡镇“四个一”基础信息核对覆盖率',
    chart_coverage_desc: '横条表示已核对人数占应核对人数的比例。',
    chart_trend: '全区月度趋势',
    chart_trend_desc: '入户走访和监测次数，按月。',
    charts: '图表',
    users_title: '用户',
    role: '角色',
    scope: '范围',
    status: '状态',
    disabled: '已停用',
    active: '正常',
    created: '创建时间',
    tablets_title: '平板',
    device: '设备',
    label: '名称',
    enrolled: '注册时间',
    last_push: '最近上传',
    never: '从未',
    revoked: '已吊销',
    revoke: '吊销',
    revoke_label: '吊销平板 {device}（{user}）',
    revoke_confirm: '确认吊销平板 {device}（{user}）？该平板下次同步时将被拒绝并删除本地数据。',
    tablet_revoked: '平板 {device} 已吊销。',
    new_code: '生成平板注册码',
    for_user: '外业人员',
    valid_minutes: '有效时间（分钟）',
    create_code: '生成',
    code_created: '注册码：{code}，有效期至 {until}。请用平板扫描二维码或输入注册码。',
    qr_alt: '注册码 {code} 的二维码',
    not_found: '没有找到（或不在您的管辖范围内）。',
    forbidden: '您没有权限执行此操作。',
    invalid_value: '值无效：{message}',
    yes: '是',
    no: '否',
    empty: '—',
    deleted: '已删除',
    trend_visits: '入户走访',
    trend_checks: '监测次数',
    page_not_found: '页面不存在。',
    page_error: '无法显示此页面',
    main_label: '主要内容',
    status_region: '状态消息',
};

const en = {
    app_title: 'Disability employment support data',
    skip: 'Skip to main content',
    lang_switch: '中文',
    lang_switch_label: '切换到中文',
    login_title: 'Log in',
    login_intro: 'Township heads and district administrators log in with their username and password.',
    username: 'Username',
    password: 'Password',
    login: 'Log in',
    logging_in: 'Logging in…',
    logout: 'Log out',
    bad_login: 'Wrong username or password.',
    worker_forbidden: 'Field workers use their tablets; this page is for township heads and district administrators.',
    rate_limited: 'Too many failed logins. Please wait a minute and try again.',
    session_expired: 'Your session has expired. Please log in again.',
    logged_out: 'You have logged out.',
    offline: 'The server cannot be reached. Check the network and try again.',
    timeout: 'The server did not answer in time. Check the network and try again.',
    server_error: 'The server reported an error ({code}). Please try again later.',
    retry: 'Retry',
    loading: 'Loading…',
    saved: 'Saved.',
    signed_in_as: '{user} ({role})',
    role_township_head: 'township head',
    role_district_admin: 'district administrator',
    role_field_worker: 'field worker',
    nav_label: 'Main navigation',
    nav_overview: 'Month overview',
    nav_records: 'Records',
    nav_conflicts: 'Conflicts',
    nav_quarantine: 'Quarantine',
    nav_district: 'District month',
    nav_users: 'Users',
    nav_tablets: 'Tablets',
    nav_access_log: 'Access log',
    access_log_title: 'Access log',
    access_log_intro: 'Who revealed full ID or phone numbers and who exported data.',
    no_access_log: 'Nothing logged yet.',
    when: 'When',
    action: 'Action',
    detail: 'Detail',
    month: 'Month',
    show: 'Show',
    overview_title: '{township} · {month}',
    village: 'Village',
    township: 'Township',
    total: 'Total',
    district_total: 'District total',
    four_ones: '"Four ones" coverage',
    coverage_of: '{n} of {d}',
    open_conflicts: 'Open conflicts',
    quarantined: 'Quarantined',
    awaiting_review: 'Awaiting review',
    approval: 'Approval',
    approved: 'Approved',
    not_approved: 'Not approved',
    revision: 'Revision',
    changed_since_approval: 'Changed since approval',
    changed_yes: 'Changed',
    changed_no: 'No',
    approve_month: 'Approve this month',
    approve_month_confirm: 'Approve the figures of {month}? Later changes will open a new revision.',
    month_approved: '{month} approved (revision {revision}).',
    confirm: 'Confirm',
    cancel: 'Cancel',
    records_title: 'Records',
    filters: 'Filters',
    collection: 'Type',
    any: 'Any',
    review_state: 'Review state',
    review_received: 'Awaiting review',
    review_has_issues: 'Has issues',
    review_approved: 'Approved',
    search: 'Search',
    search_placeholder: 'Name, address, …',
    date_from: 'From',
    date_to: 'To',
    apply: 'Search',
    reset: 'Reset',
    results: '{total} records, showing {from}–{to}',
    no_results: 'No records match.',
    prev: 'Previous page',
    next: 'Next page',
    paging: 'Pages',
    summary: 'Summary',
    updated: 'Updated',
    created_by: 'Entered by',
    open: 'Open',
    record_title: '{collection} record',
    back_to_records: 'Back to the records',
    fields: 'Fields',
    field: 'Field',
    value: 'Value',
    reveal: 'Reveal',
    reveal_label: 'Reveal: {field} (this is logged)',
    revealed: 'Revealed (logged)',
    history: 'History',
    history_entry: '{user} on {device}, {at}',
    no_history: 'No changes recorded.',
    review: 'Review',
    mark_has_issues: 'Send back (has issues)',
    mark_approved: 'Approve',
    comment: 'Comment',
    comment_required: 'A comment is required when sending a record back.',
    submit: 'Submit',
    review_saved: 'Review saved; the field worker gets it on the next sync.',
    current_review: 'Current state: {state}',
    review_comment: 'Comment: {comment}',
    conflicts_title: 'Open conflicts',
    conflict_heading: '{collection} · {field}',
    winner: 'Value in use',
    loser: 'Other value',
    by_at: '{user}, {device}, {at}',
    keep_winner: 'Keep the value in use',
    use_loser: 'Use the other value',
    enter_value: 'Enter the correct value',
    use_value: 'Use the entered value',
    resolved: 'Conflict resolved.',
    no_conflicts: 'No open conflicts.',
    record: 'Record',
    quarantine_title: 'Rejected submissions awaiting repair',
    no_quarantine: 'Nothing in quarantine.',
    repair: 'Repair',
    repair_entry: 'Repair the submission of {user} at {at}',
    repair_title: 'Repair a rejected submission: {collection}',
    repair_meta: 'Sent by {user} (tablet {device}) at {at}',
    repair_masked: 'Hidden; leave empty to resubmit it as sent, or type a new value.',
    repair_json: 'JSON.',
    repair_bad_json: '“{field}” is not valid JSON.',
    repair_bad_input: '“{field}” is not in the right form.',
    repair_unknown_value: '{value} (not a choice this server knows)',
    repair_nothing: 'Nothing was changed: repair the rejected field first.',
    repair_gone: 'This submission was handled already or does not exist',
    resubmit: 'Resubmit repaired',
    resubmitted: 'Resubmitted; the record is stored.',
    dismiss_title: 'Dismiss',
    dismiss_reason: 'Reason',
    dismiss_hint: 'For example: registered twice, already corrected by the worker.',
    dismiss_reason_required: 'Give the reason for dismissing it.',
    dismiss: 'Dismiss',
    dismissed: 'Dismissed.',
    reason: 'Reason',
    received: 'Received',
    user: 'User',
    district_title: 'District figures, {month}',
    export_csv: 'Export CSV',
    export_xlsx: 'Export Excel',
    exports: 'Exports',
    chart_coverage: '"Four ones" basic-information verification coverage per township',
    chart_coverage_desc: 'Each bar is the share of persons verified among those to verify.',
    chart_trend: 'District monthly trend',
    chart_trend_desc: 'Home visits and monitoring checks per month.',
    charts: 'Charts',
    users_title: 'Users',
    role: 'Role',
    scope: 'Scope',
    status: 'Status',
    disabled: 'Disabled',
    active: 'Active',
    created: 'Created',
    tablets_title: 'Tablets',
    device: 'Device',
    label: 'Label',
    enrolled: 'Enrolled',
    last_push: 'Last upload',
    never: 'never',
    revoked: 'Revoked',
    revoke: 'Revoke',
    revoke_label: 'Revoke tablet {device} ({user})',
    revoke_confirm: 'Revoke tablet {device} ({user})? Its next sync is refused and it deletes its local data.',
    tablet_revoked: 'Tablet {device} revoked.',
    new_code: 'Create a tablet enrolment code',
    for_user: 'Field worker',
    valid_minutes: 'Valid for (minutes)',
    create_code: 'Create',
    code_created: 'Code {code}, valid until {until}. Scan the QR code with the tablet or type the code.',
    qr_alt: 'QR code for enrolment code {code}',
    not_found: 'Not found (or outside your area).',
    forbidden: 'You are not allowed to do this.',
    invalid_value: 'Invalid value: {message}',
    yes: 'yes',
    no: 'no',
    empty: '—',
    deleted: 'deleted',
    trend_visits: 'Home visits',
    trend_checks: 'Monitoring checks',
    page_not_found: 'No such page.',
    page_error: 'This page could not be shown',
    main_label: 'Main content',
    status_region: 'Status messages',
};

// Indicator names (the rollup keys of docs/review-and-rollups.md).
const indicators = {
    zh: {
        home_visits: '入户走访',
        persons_visited: '走访人数',
        four_ones_base: '应覆盖人数',
        four_ones_verified: '基础信息核对',
        four_ones_assessed: '职业能力评估',
        four_ones_registered: '就业需求登记',
        four_ones_served: '就业服务',
        monitoring_checks: '监测次数',
        households_flagged: '标记监测户',
        graduates: '毕业生',
        graduates_registered: '毕业生已登记',
        graduates_served: '毕业生已服务',
        late_records: '迟报记录',
        open_conflicts: '未解决冲突',
    },
    en: {
        home_visits: 'Home visits',
        persons_visited: 'Persons visited',
        four_ones_base: 'Persons to cover',
        four_ones_verified: 'Verified',
        four_ones_assessed: 'Assessed',
        four_ones_registered: 'Registered',
        four_ones_served: 'Served',
        monitoring_checks: 'Monitoring checks',
        households_flagged: 'Households flagged',
        graduates: 'Graduates',
        graduates_registered: 'Graduates registered',
        graduates_served: 'Graduates served',
        late_records: 'Late records',
        open_conflicts: 'Open conflicts',
    },
};

// Record types (used when the server's catalog is not available).
const collections = {
    zh: {
        person: '残疾人',
        household: '家庭',
        home_visit: '入户走访',
        monitoring_check: '防返贫监测',
        needs_registration: '就业需求登记',
        employment_service: '就业服务',
    },
    en: {
        person: 'Person',
        household: 'Household',
        home_visit: 'Home visit',
        monitoring_check: 'Monitoring check',
        needs_registration: 'Needs registration',
        employment_service: 'Employment service',
    },
};

const texts = { zh, en };
let lang = 'zh';
try {
    const saved = localStorage.getItem('fs_lang');
    if (saved === 'en' || saved === 'zh') lang = saved;
} catch {
    // storage unavailable (private mode): stay with Chinese
}

export function currentLang() {
    return lang;
}

export function setLang(l) {
    lang = l === 'en' ? 'en' : 'zh';
    try {
        localStorage.setItem('fs_lang', lang);
    } catch {
        // not remembered; still switched for this page
    }
    applyLang();
}

export function applyLang() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('app_title');
}

// t('key', {name: value}) with {name} placeholders.
export function t(key, params) {
    let s = texts[lang][key] ?? texts.zh[key] ?? key;
    if (params)
        s = s.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
    return s;
}

export function indicatorName(key) {
    return indicators[lang][key] ?? key;
}

export function collectionName(key, catalog) {
    const c = catalog?.collections?.[key];
    if (c?.label) return c.label[lang] ?? c.label.zh ?? key;
    return collections[lang][key] ?? key;
}

export function collectionKeys() {
    return Object.keys(collections.zh);
}

export function fieldName(collection, field, catalog) {
    const f = catalog?.collections?.[collection]?.fields?.[field];
    if (f?.label) return f.label[lang] ?? f.label.zh ?? field;
    return field;
}

// What a value of an enumeration field is called (the catalog's value_labels), or the code.
export function valueName(collection, field, value, catalog) {
    const l = catalog?.collections?.[collection]?.fields?.[field]?.value_labels?.[value];
    if (l) return l[lang] ?? l.zh ?? value;
    return value;
}

function locale() {
    return lang === 'zh' ? 'zh-CN' : 'en-GB';
}

export function num(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return t('empty');
    return new Intl.NumberFormat(locale()).format(n);
}

export function pct(n, d) {
    if (!d) return t('empty');
    return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(
        n / d
    );
}

// 2026年11月28日 / 28 November 2026 (China time: the district's dates are China dates).
export function date(ms) {
    if (ms === null || ms === undefined) return t('empty');
    return new Intl.DateTimeFormat(locale(), {
        year: 'numeric',
        month: 'long',
        day: 'numeric',
        timeZone: 'Asia/Shanghai',
    }).format(new Date(ms));
}

export function dateTime(ms) {
    if (ms === null || ms === undefined) return t('empty');
    return new Intl.DateTimeFormat(locale(), {
        year: 'numeric',
        month: 'long',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        hour12: false,
        timeZone: 'Asia/Shanghai',
    }).format(new Date(ms));
}

// A YYYY-MM-DD value of a record (a calendar date, shown as it is).
export function isoDate(s) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (!m) return s;
    return date(Date.UTC(+m[1], +m[2] - 1, +m[3], 4));
}

// 2026-11 → 2026年11月 / November 2026
export function monthName(ym) {
    const m = /^(\d{4})-(\d{2})$/.exec(ym || '');
    if (!m) return ym || '';
    return new Intl.DateTimeFormat(locale(), {
        year: 'numeric',
        month: 'long',
        timeZone: 'UTC',
    }).format(new Date(Date.UTC(+m[1], +m[2] - 1, 15)));
}

export function shortMonth(ym) {
    const m = /^(\d{4})-(\d{2})$/.exec(ym || '');
    if (!m) return ym || '';
    return new Intl.DateTimeFormat(locale(), { month: 'short', timeZone: 'UTC' }).format(
        new Date(Date.UTC(+m[1], +m[2] - 1, 15))
    );
}
