/*
 * Built by dist/deb/smoke.sh against the installed libupdate-dev (pkg-config libupdate), once
 * with libupdate.so.1 and once with libupdate.a:  smoke ROOT
 * ROOT is an empty directory: no update driver there, so asking for the status fails with the
 * kind `not-implemented` (the `update` command's exit code 4). Prints the library's version.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <update.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: smoke ROOT\n");
        return 2;
    }
    /* The library's major must be the header's, its minor at least the header's. */
    uint32_t abi = update_abi_version();
    if (abi >> 16 != UPDATE_ABI_MAJOR || abi < ((uint32_t)UPDATE_ABI_MAJOR << 16 | UPDATE_ABI_MINOR)) {
        fprintf(stderr, "smoke.c: library ABI %u.%u, header %u.%u\n", (unsigned)(abi >> 16),
                (unsigned)(abi & 0xffff), (unsigned)UPDATE_ABI_MAJOR, (unsigned)UPDATE_ABI_MINOR);
        return 1;
    }
    update_error *err = NULL;
    update_handle *h = update_open(argv[1], &err);
    int kind;
    if (h == NULL) {
        kind = update_error_kind(err);
    } else {
        char *json = NULL;
        kind = update_status(h, &json, &err);
        update_free_string(json);
        update_close(h);
    }
    if (kind != UPDATE_ERROR_KIND_NOT_IMPLEMENTED) {
        fprintf(stderr, "smoke.c: status of an empty root: %s (%d), expected not-implemented\n",
                update_error_kind_name(kind), kind);
        return 1;
    }
    printf("libupdate %s: ABI %u.%u, status of an empty root: %s\n", update_version(),
           (unsigned)(abi >> 16), (unsigned)(abi & 0xffff), update_error_kind_name(kind));
    update_error_free(err);
    return 0;
}
