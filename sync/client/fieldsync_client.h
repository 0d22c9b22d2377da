/* fieldsync client, C API: what an Android (JNI) or iOS app calls. A thin layer over
 * fieldsync::client::sync_client (sync_client.hpp): an opaque handle, UTF-8 JSON text in and
 * out, integer status codes.
 *
 * Strings returned through `char**` are allocated by the library and must be released with
 * fieldsync_string_free(); on failure, `*error` (when non-null) receives a message to free the
 * same way. No function throws or aborts on bad input.
 *
 * Thread-safety: one handle is used by one thread at a time; distinct handles are independent.
 */
#ifndef FIELDSYNC_CLIENT_H
#define FIELDSYNC_CLIENT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fieldsync_client fieldsync_client;

typedef enum fieldsync_status {
    FIELDSYNC_OK = 0,
    FIELDSYNC_INVALID_ARGUMENT = 1, /* bad JSON, unknown id format, bad URL or pin */
    FIELDSYNC_NOT_FOUND = 2,        /* no enrolment in the state folder, no such record */
    FIELDSYNC_UNAUTHORIZED = 3,     /* bad enrolment code or unknown token: enrol again */
    FIELDSYNC_REVOKED = 4,          /* the tablet was revoked; its local data is wiped */
    FIELDSYNC_OFFLINE = 5,          /* the server could not be reached; retry later */
    FIELDSYNC_REFUSED = 6,          /* the server refused (forbidden, disabled user, bad request) */
    FIELDSYNC_RATE_LIMITED = 7,     /* too many failed enrolments: wait a minute */
    FIELDSYNC_INTERNAL = 8          /* an unexpected failure (local storage); message says what */
} fieldsync_status;

/* options_json (may be NULL): {"pin": "AB:CD:…", "ca_file": "...", "label": "...",
 * "backoff_initial_ms": 1000, "backoff_max_ms": 300000, "max_attempts": 8,
 * "timeout_ms": 30000, "push_batch": 200, "pull_limit": 500} */
int fieldsync_client_enrol(const char* state_dir, const char* server_url, const char* code,
                           const char* options_json, fieldsync_client** out, char** error);
int fieldsync_client_open(const char* state_dir, const char* options_json, fieldsync_client** out,
                          char** error);
void fieldsync_client_close(fieldsync_client* c);

/* Local edits. fields_json is a JSON object of field values. *id_out: the new record's id. */
int fieldsync_client_create(fieldsync_client* c, const char* collection, const char* fields_json,
                            char** id_out, char** error);
int fieldsync_client_update(fieldsync_client* c, const char* id, const char* fields_json,
                            char** error);
int fieldsync_client_remove(fieldsync_client* c, const char* id, char** error);

/* Push then pull with retries. *report_json: {"outcome", "pushed", "applied", "rejected",
 * "conflicts", "restamped", "pulled", "resets", "reset_reason", "retries", "error"}. The
 * return value is FIELDSYNC_OK only for a complete sync. */
int fieldsync_client_sync(fieldsync_client* c, char** report_json, char** error);

/* [{"id", "collection", "status": "pending|synced|rejected|conflict|returned", "field",
 * "code", "message", "fields": {...}}]; collection may be NULL for all. */
int fieldsync_client_records(fieldsync_client* c, const char* collection, char** json_out,
                             char** error);
/* {"records", "pending", "synced", "rejected", "conflicts", "returned", "outbox", "device",
 * "enrolled"} */
int fieldsync_client_status(fieldsync_client* c, char** json_out, char** error);

void fieldsync_string_free(char* s);

#ifdef __cplusplus
}
#endif

#endif /* FIELDSYNC_CLIENT_H */
