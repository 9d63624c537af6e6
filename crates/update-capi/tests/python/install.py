"""Installs an update through libupdate from Python with only ctypes (and the standard library).

    python3 install.py LIBUPDATE_SO ROOT GOOD_KEY WRONG_KEY OUT_DIR

Run by tests/programs.rs on a simulated device: ROOT runs 1.0.0 and its /srv/update holds a
bundle of 2.0.0 signed by GOOD_KEY. Exits 0 when every step did what it should, leaving each JSON
document it got in OUT_DIR/<name>.json (the test validates them against their schemas).
"""

import ctypes
import json
import os
import sys

UPDATE_ERROR_KIND_OK = 0
UPDATE_ERROR_KIND_USAGE = 2
UPDATE_ERROR_KIND_VERIFICATION = 6
UPDATE_PROGRESS_START, UPDATE_PROGRESS_ADVANCE, UPDATE_PROGRESS_FINISH = 0, 1, 2
UPDATE_INSTALL_NOREBOOT = 1
UPDATE_ABI_MAJOR = 1

# update_progress_fn: void (*)(void *user_data, int event, const char *phase, uint64_t done, uint64_t total)
PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_uint64)


class UpdateError(Exception):
    def __init__(self, kind, kind_name, message):
        super().__init__(f"{kind_name} ({kind}): {message}")
        self.kind, self.kind_name, self.message = kind, kind_name, message


class Library:
    """The prototypes of include/update.h."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        handle, err_p, str_p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)
        c_str = ctypes.c_char_p
        protos = {
            "update_abi_version": (ctypes.c_uint32, []),
            "update_version": (c_str, []),
            "update_open": (handle, [c_str, err_p]),
            "update_close": (None, [handle]),
            "update_config_get": (ctypes.c_int, [handle, c_str, str_p, err_p]),
            "update_config_set": (ctypes.c_int, [handle, c_str, c_str, err_p]),
            "update_key_add": (ctypes.c_int, [handle, c_str, c_str, err_p]),
            "update_key_update": (ctypes.c_int, [handle, c_str, c_str, err_p]),
            "update_key_delete": (ctypes.c_int, [handle, c_str, err_p]),
            "update_key_list": (ctypes.c_int, [handle, str_p, err_p]),
            "update_check": (ctypes.c_int, [handle, str_p, err_p]),
            "update_install": (ctypes.c_int, [handle, ctypes.c_uint32, PROGRESS_FN, ctypes.c_void_p, str_p, err_p]),
            "update_cancel": (ctypes.c_int, [handle]),
            "update_status": (ctypes.c_int, [handle, str_p, err_p]),
            "update_history": (ctypes.c_int, [handle, str_p, err_p]),
            "update_mark_good": (ctypes.c_int, [handle, err_p]),
            "update_rollback": (ctypes.c_int, [handle, err_p]),
            "update_free_string": (None, [ctypes.c_void_p]),
            "update_error_free": (None, [ctypes.c_void_p]),
            "update_error_kind": (ctypes.c_int, [ctypes.c_void_p]),
            "update_error_message": (c_str, [ctypes.c_void_p]),
            "update_error_kind_name": (c_str, [ctypes.c_int]),
        }
        for name, (restype, argtypes) in protos.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = restype, argtypes
        self.lib = lib

    def call(self, name, *args, out=False):
        """Calls `name(*args[, &out], &err)`; returns the string result (or None) or raises UpdateError."""
        err = ctypes.c_void_p()
        text = ctypes.c_void_p()
        extra = [ctypes.byref(text)] if out else []
        rc = getattr(self.lib, name)(*args, *extra, ctypes.byref(err))
        if rc != UPDATE_ERROR_KIND_OK:
            assert not text.value, f"{name}: a failed call returns no string"
            e = self.error(err)
            assert e.kind == rc, f"{name}: the return value is the error's kind"
            raise e
        assert not err.value, f"{name}: success leaves err NULL"
        if not out or not text.value:
            return None
        try:
            return ctypes.string_at(text.value).decode()
        finally:
            self.lib.update_free_string(text)

    def error(self, err):
        kind = self.lib.update_error_kind(err)
        e = UpdateError(kind, self.lib.update_error_kind_name(kind).decode(), self.lib.update_error_message(err).decode())
        self.lib.update_error_free(err)
        return e


def expect_error(kind, f, *args, **kw):
    try:
        f(*args, **kw)
    except UpdateError as e:
        assert e.kind == kind, f"expected kind {kind}, got {e}"
        return e
    raise AssertionError(f"expected an error of kind {kind}")


def keep(out_dir, name, text):
    """Writes a document for the schema check and returns it parsed."""
    with open(os.path.join(out_dir, f"{name}.json"), "w", encoding="utf-8") as f:
        f.write(text)
    return json.loads(text)


def main():
    so, root, good_key, wrong_key = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode(), sys.argv[4].encode()
    out_dir = sys.argv[5]
    u = Library(so)
    abi = u.lib.update_abi_version()
    assert abi >> 16 == UPDATE_ABI_MAJOR, f"ABI {abi:#x}"
    print(f"libupdate {u.lib.update_version().decode()}, ABI {abi >> 16}.{abi & 0xFFFF}")

    # Bad arguments: an error kind and a message, never a crash.
    err = ctypes.c_void_p()
    assert u.lib.update_open(None, ctypes.byref(err)) is None
    e = u.error(err)
    assert e.kind == UPDATE_ERROR_KIND_USAGE and "root" in e.message, e

    handle = ctypes.c_void_p(u.lib.update_open(root, ctypes.byref(err)))
    if not handle.value:
        raise u.error(err)
    try:
        e = expect_error(UPDATE_ERROR_KIND_USAGE, u.call, "update_config_set", handle, b"source", b"\xff\xfe")
        assert "UTF-8" in e.message, e
        u.call("update_config_set", handle, b"source", b"file:///srv/update")
        assert u.call("update_config_get", handle, b"source", out=True) == "file:///srv/update"
        u.call("update_config_set", handle, b"schedule", b"daily 3")
        u.call("update_config_set", handle, b"verify", b"false")
        u.call("update_config_set", handle, b"tls.server-ca", b"/etc/ssl/ca.pem")
        got = {k: u.call("update_config_get", handle, k.encode(), out=True) for k in ["schedule", "verify", "tls.server-ca", "tls.client-key"]}
        print(f"config: {got}")
        assert got == {"schedule": "daily 3", "verify": "false", "tls.server-ca": "/etc/ssl/ca.pem", "tls.client-key": None}, got
        u.call("update_config_set", handle, b"tls.server-ca", b"none")
        u.call("update_config_set", handle, b"verify", b"true")
        e = expect_error(UPDATE_ERROR_KIND_USAGE, u.call, "update_config_get", handle, b"no-such-key", out=True)
        e = expect_error(UPDATE_ERROR_KIND_USAGE, u.call, "update_config_set", handle, b"schedule", b"sometimes")
        print(f"bad value: {e}")

        # The wrong key: nothing verifies.
        u.call("update_key_add", handle, b"vendor", wrong_key)
        e = expect_error(UPDATE_ERROR_KIND_VERIFICATION, u.call, "update_check", handle, out=True)
        assert e.kind_name == "verification" and "signature" in e.message, e
        print(f"wrong key: {e}")

        u.call("update_key_update", handle, b"vendor", good_key)
        keys = keep(out_dir, "key-list", u.call("update_key_list", handle, out=True))
        assert keys["schema"] == "libupdate/key-list/1", keys
        check = keep(out_dir, "check", u.call("update_check", handle, out=True))
        assert check["schema"] == "libupdate/check/1" and check["available"]["info"]["version"] == "2.0.0", check

        # The install, with a progress callback: per phase, percentages only go up.
        events = []

        @PROGRESS_FN
        def progress(user_data, event, phase, done, total):
            events.append((event, phase.decode(), done, total))

        report = keep(out_dir, "install", u.call("update_install", handle, UPDATE_INSTALL_NOREBOOT, progress, None, out=True))
        assert report["schema"] == "libupdate/install/1", report
        phases, percents, last = 0, [], None
        for event, phase, done, total in events:
            if event == UPDATE_PROGRESS_START:
                phases, last = phases + 1, -1
            elif event == UPDATE_PROGRESS_ADVANCE and total:
                percent = done * 100 // total
                assert percent > last, f"{phase}: {percent}% after {last}%"
                last = percent
                percents.append(percent)
        assert phases > 0 and len(percents) >= 2 and 100 in percents, events
        print(f"progress: {phases} phases, {len(percents)} steps, {percents[:5]}...")

        status = keep(out_dir, "status", u.call("update_status", handle, out=True))
        assert status["schema"] == "libupdate/status/1", status
        assert status["pending"] == {"slot": "B", "version": "2.0.0"}, status["pending"]
        history = keep(out_dir, "history", u.call("update_history", handle, out=True))
        assert history["schema"] == "libupdate/history/1", history
    finally:
        u.lib.update_close(handle)
    print("install.py: all checks passed")


if __name__ == "__main__":
    main()
