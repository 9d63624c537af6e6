/*
 * A C program that installs an update through libupdate, as a device application would.
 * Built with gcc against include/update.h and run by tests/programs.rs on a simulated device:
 *
 *   install ROOT GOOD_KEY WRONG_KEY
 *
 * ROOT is the device root (the source file:///srv/update holds a bundle of 2.0.0 signed by
 * GOOD_KEY; the device runs 1.0.0). Exits 0 when every step did what it should; otherwise prints
 * what failed on stderr and exits 1.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "update.h"

static int failures = 0;

#define EXPECT(cond, ...)                                            \
    do {                                                             \
        if (!(cond)) {                                               \
            fprintf(stderr, "install.c:%d: FAILED: ", __LINE__);    \
            fprintf(stderr, __VA_ARGS__);                            \
            fputc('\n', stderr);                                     \
            failures++;                                              \
        }                                                            \
    } while (0)

/* Fails the program unless `rc` is 0, printing the error. (`err` is passed by address: the
 * call has written it by the time this reads it.) */
static void ok(const char *what, int rc, update_error **err) {
    if (rc != UPDATE_ERROR_KIND_OK) {
        fprintf(stderr, "install.c: %s failed: %s (%d): %s\n", what, update_error_kind_name(rc), rc,
                update_error_message(*err));
        update_error_free(*err);
        exit(1);
    }
    EXPECT(*err == NULL, "%s: success leaves err NULL", what);
}

/* Progress as seen by the callback: per phase, the percentages must only go up. */
struct progress {
    int starts, advances, finishes;
    int phase_percent; /* last percentage of the current phase, -1 at its start */
    int reached_100;   /* phases whose known total was reached */
    int not_increasing;
    char first_phase[64];
};

static void on_progress(void *user_data, int event, const char *phase, uint64_t done, uint64_t total) {
    struct progress *p = user_data;
    switch (event) {
    case UPDATE_PROGRESS_START:
        if (p->starts++ == 0) snprintf(p->first_phase, sizeof p->first_phase, "%s", phase);
        p->phase_percent = -1;
        break;
    case UPDATE_PROGRESS_ADVANCE:
        p->advances++;
        if (total > 0) {
            int percent = (int)(done * 100 / total);
            if (percent <= p->phase_percent) p->not_increasing++;
            p->phase_percent = percent;
            if (percent == 100) p->reached_100++;
        }
        break;
    case UPDATE_PROGRESS_FINISH:
        p->finishes++;
        break;
    default:
        p->not_increasing += 1000; /* an unknown event */
    }
}

/* Cancels from another thread: the callback starts this thread at the first step of the install
 * and waits for it. */
struct canceller {
    update_handle *handle;
    int steps, rc, other_call_rc;
};

static void *cancel_thread(void *arg) {
    struct canceller *c = arg;
    char *json = NULL;
    /* Only update_cancel may come from another thread. */
    c->other_call_rc = update_status(c->handle, &json, NULL);
    update_free_string(json);
    c->rc = update_cancel(c->handle);
    return NULL;
}

static void cancel_at_first_step(void *user_data, int event, const char *phase, uint64_t done, uint64_t total) {
    (void)phase, (void)done, (void)total;
    struct canceller *c = user_data;
    if (event == UPDATE_PROGRESS_ADVANCE && c->steps++ == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, cancel_thread, c) == 0) pthread_join(t, NULL);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s ROOT GOOD_KEY WRONG_KEY\n", argv[0]);
        return 2;
    }
    const char *root = argv[1], *good_key = argv[2], *wrong_key = argv[3];
    update_error *err = NULL;
    char *json = NULL;
    int rc;

    /* The ABI this program was built for is the one it runs with. */
    uint32_t abi = update_abi_version();
    uint32_t minor = abi & 0xffff;
    EXPECT(abi >> 16 == UPDATE_ABI_MAJOR && minor + 1 > UPDATE_ABI_MINOR, "ABI %#x", abi);

    /* Bad arguments are errors with a kind and a message, never a crash. */
    EXPECT(update_open(NULL, &err) == NULL, "open(NULL) fails");
    EXPECT(update_error_kind(err) == UPDATE_ERROR_KIND_USAGE, "open(NULL): usage");
    EXPECT(strstr(update_error_message(err), "root") != NULL, "open(NULL) names the argument: %s",
           update_error_message(err));
    update_error_free(err);
    EXPECT(update_open("/nonexistent/device/root", &err) == NULL, "open(missing) fails");
    EXPECT(update_error_kind(err) == UPDATE_ERROR_KIND_IO, "open(missing): io, got %s",
           update_error_kind_name(update_error_kind(err)));
    update_error_free(err);
    EXPECT(update_status(NULL, &json, NULL) == UPDATE_ERROR_KIND_USAGE && json == NULL, "status(NULL handle)");

    update_handle *h = update_open(root, &err);
    if (h == NULL) ok("update_open", update_error_kind(err), &err);

    rc = update_config_set(h, "source", "\xff\xfe", &err);
    EXPECT(rc == UPDATE_ERROR_KIND_USAGE, "invalid UTF-8: usage, got %d", rc);
    EXPECT(strstr(update_error_message(err), "UTF-8") != NULL, "says UTF-8: %s", update_error_message(err));
    update_error_free(err);
    rc = update_config_set(h, "no-such-key", "1", &err);
    EXPECT(rc == UPDATE_ERROR_KIND_USAGE, "unknown key: usage, got %d", rc);
    update_error_free(err);

    /* The booted factory slot is good: mark-good is accepted. */
    ok("mark_good", update_mark_good(h, &err), &err);

    /* Config. */
    ok("config_set source", update_config_set(h, "source", "file:///srv/update", &err), &err);
    char *value = NULL;
    ok("config_get source", update_config_get(h, "source", &value, &err), &err);
    EXPECT(value && strcmp(value, "file:///srv/update") == 0, "source reads back: %s", value ? value : "NULL");
    update_free_string(value);

    /* The wrong key first: nothing verifies. */
    ok("key_add vendor (wrong)", update_key_add(h, "vendor", wrong_key, &err), &err);
    rc = update_check(h, &json, &err);
    EXPECT(rc == UPDATE_ERROR_KIND_VERIFICATION, "check with the wrong key: verification, got %s (%d)",
           update_error_kind_name(rc), rc);
    EXPECT(json == NULL, "a failed call returns no document");
    EXPECT(err && strlen(update_error_message(err)) > 0, "a message");
    fprintf(stderr, "install.c: wrong key: %s: %s\n", update_error_kind_name(update_error_kind(err)),
            update_error_message(err));
    update_error_free(err);
    err = NULL;
    rc = update_install(h, UPDATE_INSTALL_NOREBOOT, NULL, NULL, &json, &err);
    EXPECT(rc == UPDATE_ERROR_KIND_VERIFICATION, "install with the wrong key: verification, got %d", rc);
    update_error_free(err);

    /* The right key, a spare one added and deleted, the list. */
    ok("key_update vendor", update_key_update(h, "vendor", good_key, &err), &err);
    ok("key_add spare", update_key_add(h, "spare", wrong_key, &err), &err);
    ok("key_delete spare", update_key_delete(h, "spare", &err), &err);
    ok("key_list", update_key_list(h, &json, &err), &err);
    EXPECT(strstr(json, "\"vendor\"") && !strstr(json, "\"spare\""), "key list: %s", json);
    update_free_string(json);

    ok("check", update_check(h, &json, &err), &err);
    EXPECT(strstr(json, "\"libupdate/check/1\"") && strstr(json, "\"version\": \"2.0.0\""), "check: %s", json);
    update_free_string(json);

    /* An install cancelled from another thread stops with `cancelled`; nothing is pending. */
    struct canceller c = {h, 0, -1, -1};
    rc = update_install(h, UPDATE_INSTALL_NOREBOOT, cancel_at_first_step, &c, &json, &err);
    EXPECT(c.rc == UPDATE_ERROR_KIND_OK, "update_cancel from another thread: %d", c.rc);
    EXPECT(c.other_call_rc == UPDATE_ERROR_KIND_USAGE, "update_status from another thread: %d", c.other_call_rc);
    EXPECT(rc == UPDATE_ERROR_KIND_CANCELLED && json == NULL, "cancelled install: got %d", rc);
    EXPECT(c.steps == 1, "no progress after the cancel: %d steps", c.steps);
    fprintf(stderr, "install.c: cancelled: %s\n", update_error_message(err));
    update_error_free(err);
    err = NULL;
    ok("status after cancel", update_status(h, &json, &err), &err);
    EXPECT(strstr(json, "\"pending\": null"), "nothing pending after a cancel: %s", json);
    update_free_string(json);

    /* The install, with progress. */
    struct progress p = {0};
    ok("install", update_install(h, UPDATE_INSTALL_NOREBOOT, on_progress, &p, &json, &err), &err);
    EXPECT(strstr(json, "\"libupdate/install/1\""), "install: %s", json);
    update_free_string(json);
    printf("progress: %d phases (first \"%s\"), %d steps, %d phases at 100%%\n", p.starts, p.first_phase,
           p.advances, p.reached_100);
    EXPECT(p.starts > 0 && p.finishes == p.starts, "phases %d started, %d finished", p.starts, p.finishes);
    EXPECT(p.advances >= 2 && p.reached_100 > 0, "steps %d, at 100%% %d", p.advances, p.reached_100);
    EXPECT(p.not_increasing == 0, "percentages went down %d times", p.not_increasing);

    /* Status: 2.0.0 waits in B for the reboot. */
    ok("status", update_status(h, &json, &err), &err);
    const char *pending = strstr(json, "\"pending\": {");
    EXPECT(strstr(json, "\"libupdate/status/1\""), "status schema");
    EXPECT(pending && strstr(pending, "\"version\": \"2.0.0\""), "pending 2.0.0: %s", json);
    printf("%s\n", json);
    update_free_string(json);

    ok("history", update_history(h, &json, &err), &err);
    EXPECT(strstr(json, "\"libupdate/history/1\"") && strstr(json, "install"), "history: %s", json);
    update_free_string(json);

    /* Rollback needs a committed version in the other slot; 2.0.0 only waits for its reboot. */
    rc = update_rollback(h, &err);
    EXPECT(rc == UPDATE_ERROR_KIND_REFUSED, "rollback to an uncommitted slot: refused, got %d", rc);
    EXPECT(err && strstr(update_error_message(err), "roll back"), "rollback message: %s", update_error_message(err));
    update_error_free(err);
    err = NULL;

    EXPECT(update_cancel(h) == UPDATE_ERROR_KIND_OK, "cancel without an install does nothing");

    update_close(h);
    update_close(NULL);
    update_free_string(NULL);
    update_error_free(NULL);
    if (failures) {
        fprintf(stderr, "install.c: %d check(s) failed\n", failures);
        return 1;
    }
    printf("install.c: all checks passed\n");
    return 0;
}
