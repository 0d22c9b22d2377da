/* The C API, from C: enrol, record, sync, statuses, and the error paths. */
#include "sync/client/fieldsync_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char* fst_server_start(void);
const char* fst_server_fingerprint(void);
const char* fst_make_code(const char* username);
long fst_server_count(const char* sql_text);
const char* fst_temp_dir(void);
void fst_server_stop(void);

static int failures = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            ++failures;                                                                            \
        }                                                                                          \
    } while (0)

int main(void) {
    const char* url = fst_server_start();
    char options[512];
    char* error = NULL;
    char* out = NULL;
    char* id = NULL;
    fieldsync_client* c = NULL;
    int rc;

    snprintf(options, sizeof options,
             "{\"pin\": \"%s\", \"backoff_initial_ms\": 1, \"backoff_max_ms\": 4, "
             "\"max_attempts\": 3, \"label\": \"C test\"}",
             fst_server_fingerprint());

    /* Error paths: bad arguments, bad JSON, bad code, no enrolment. */
    CHECK(fieldsync_client_enrol(NULL, url, "x", NULL, &c, NULL) == FIELDSYNC_INVALID_ARGUMENT);
    rc = fieldsync_client_enrol(fst_temp_dir(), url, "AAAA-BBBB-CCCC", "{not json", &c, &error);
    CHECK(rc == FIELDSYNC_INVALID_ARGUMENT);
    CHECK(error != NULL);
    fieldsync_string_free(error);
    error = NULL;
    rc = fieldsync_client_enrol(fst_temp_dir(), url, "AAAA-BBBB-CCCC", options, &c, &error);
    CHECK(rc == FIELDSYNC_UNAUTHORIZED);
    fieldsync_string_free(error);
    error = NULL;
    CHECK(fieldsync_client_open(fst_temp_dir(), NULL, &c, NULL) == FIELDSYNC_NOT_FOUND);

    rc = fieldsync_client_enrol(fst_temp_dir(), url, fst_make_code("fw_a"), options, &c, &error);
    CHECK(rc == FIELDSYNC_OK);
    if (rc != FIELDSYNC_OK) {
        fprintf(stderr, "enrol: %s\n", error ? error : "");
        return 1;
    }
    rc = fieldsync_client_create(c, "item",
                                 "{\"township\": \"500101001\", \"village\": \"500101001001\", "
                                 "\"name\": \"\xe5\xbc\xa0\xe4\xb8\x89\"}",
                                 &id, &error);
    CHECK(rc == FIELDSYNC_OK && id != NULL && strlen(id) == 36);
    CHECK(fieldsync_client_create(c, "item", "[1]", NULL, NULL) == FIELDSYNC_INVALID_ARGUMENT);
    CHECK(fieldsync_client_update(c, "not-an-id", "{}", NULL) == FIELDSYNC_INVALID_ARGUMENT);

    CHECK(fieldsync_client_status(c, &out, NULL) == FIELDSYNC_OK);
    CHECK(strstr(out, "\"pending\":1") != NULL);
    fieldsync_string_free(out);

    rc = fieldsync_client_sync(c, &out, &error);
    CHECK(rc == FIELDSYNC_OK);
    CHECK(out != NULL && strstr(out, "\"outcome\":\"complete\"") != NULL);
    fieldsync_string_free(out);
    CHECK(fst_server_count("SELECT count(*) FROM records") == 1);

    CHECK(fieldsync_client_update(c, id, "{\"count\": 5000}", NULL) == FIELDSYNC_OK);
    CHECK(fieldsync_client_sync(c, NULL, NULL) == FIELDSYNC_OK);
    CHECK(fieldsync_client_records(c, "item", &out, NULL) == FIELDSYNC_OK);
    CHECK(strstr(out, "\"status\":\"rejected\"") != NULL);
    CHECK(strstr(out, "\"code\":\"out_of_range\"") != NULL);
    CHECK(strstr(out, id) != NULL);
    fieldsync_string_free(out);
    CHECK(fieldsync_client_status(c, &out, NULL) == FIELDSYNC_OK);
    CHECK(strstr(out, "\"rejected\":1") != NULL);
    fieldsync_string_free(out);
    fieldsync_string_free(id);
    fieldsync_client_close(c);

    /* Reopen from the state folder; then the server goes away: offline, not a crash. */
    c = NULL;
    CHECK(fieldsync_client_open(fst_temp_dir(), options, &c, NULL) == FIELDSYNC_OK);
    fst_server_stop();
    rc = fieldsync_client_sync(c, &out, &error);
    CHECK(rc == FIELDSYNC_OFFLINE);
    CHECK(out != NULL && strstr(out, "\"outcome\":\"offline\"") != NULL);
    fieldsync_string_free(out);
    fieldsync_string_free(error);
    fieldsync_client_close(c);
    fieldsync_string_free(NULL);

    if (failures)
        fprintf(stderr, "%d checks failed\n", failures);
    else
        printf("c_api_test: all checks passed\n");
    return failures ? 1 : 0;
}
