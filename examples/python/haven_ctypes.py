#!/usr/bin/env python3
"""Haven's C ABI (haven/haven.h) from Python through ctypes, the way a mobile
FFI (Kotlin/JNI, Swift) binds it: load libhaven.so, declare every prototype,
keep the callback object alive as long as the client, pass outputs first as
pointers. Standard library only.

Demo, as a survivor:

    python3 haven_ctypes.py [--lib /prefix/lib/libhaven.so.0] HOST PORT SERVER_KEY_HEX

opens a conversation, sends "hello from python", waits for the counsellor's
reply, then quick-exits and checks that the client is inert.
"""
import argparse
import ctypes
import ctypes.util
import os
import queue
import sys
import time

# haven_status
OK, E_INVALID_ARGUMENT, E_EXITED, E_WRONG_ROLE, E_NOT_FOUND, E_WRONG_STATE = range(6)
ROLE_SURVIVOR, ROLE_COUNSELLOR = 1, 2
# haven_event_type
(EVENT_CONNECTION_CHANGED, EVENT_CONVERSATION_CHANGED, EVENT_MESSAGE_RECEIVED,
 EVENT_MESSAGE_SENT, EVENT_QUEUE_CHANGED, EVENT_REQUEST_FAILED, EVENT_ENROLLED,
 EVENT_SECURE_SESSION_READY, EVENT_QUICK_EXIT_COMPLETED) = range(1, 10)
CONVERSATION_ACTIVE = 3


class Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("connection", ctypes.c_int),
        ("conversation", ctypes.c_uint64),
        ("state", ctypes.c_int),
        ("message", ctypes.c_uint64),
        ("text", ctypes.POINTER(ctypes.c_uint8)),
        ("text_len", ctypes.c_size_t),
        ("error", ctypes.c_int),
        ("error_message", ctypes.c_char_p),
    ]


class QueueEntry(ctypes.Structure):
    _fields_ = [
        ("conversation", ctypes.c_uint64),
        ("language", ctypes.c_char * 36),
        ("priority", ctypes.c_uint32),
        ("survivor_online", ctypes.c_int),
        ("position", ctypes.c_uint64),
    ]


EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(Event))


class HavenError(Exception):
    def __init__(self, lib, status, call):
        self.status = status
        # haven_last_error is per thread: read it right away, on this thread.
        detail = lib.haven_last_error().decode("utf-8", "replace")
        name = lib.haven_status_string(status).decode()
        super().__init__(f"{call}: {name} ({status}): {detail}")


def load(path=None):
    """Loads libhaven and declares the prototypes (a wrong restype or argtype
    would silently truncate 64-bit ids and pointers)."""
    path = path or os.environ.get("HAVEN_LIB") or ctypes.util.find_library("haven")
    if not path:
        raise OSError("libhaven not found: pass --lib or set HAVEN_LIB")
    # CDLL (not PyDLL) releases the GIL during every call: haven_client_free
    # joins the event thread, which may be waiting for the GIL to run a callback.
    lib = ctypes.CDLL(path)
    P, u8p, sz, u64 = ctypes.POINTER, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t, ctypes.c_uint64
    opts, client = ctypes.c_void_p, ctypes.c_void_p
    protos = {
        "haven_options_new": (ctypes.c_int, [P(ctypes.c_void_p), ctypes.c_int]),
        "haven_options_free": (None, [opts]),
        "haven_options_set_server": (ctypes.c_int, [opts, ctypes.c_char_p, ctypes.c_uint16, u8p, sz]),
        "haven_options_set_helpline_key": (ctypes.c_int, [opts, u8p, sz]),
        "haven_options_set_storage_dir": (ctypes.c_int, [opts, ctypes.c_char_p]),
        "haven_options_set_store_passphrase": (ctypes.c_int, [opts, ctypes.c_char_p, sz]),
        "haven_options_set_store_key": (ctypes.c_int, [opts, u8p, sz]),
        "haven_options_set_resumable": (ctypes.c_int, [opts, ctypes.c_int]),
        "haven_options_set_resumption_secret": (ctypes.c_int, [opts, ctypes.c_char_p, sz]),
        "haven_client_new": (ctypes.c_int, [P(ctypes.c_void_p), opts, EVENT_FN, ctypes.c_void_p]),
        "haven_client_free": (None, [client]),
        "haven_open_conversation": (ctypes.c_int, [P(u64), client, ctypes.c_char_p, ctypes.c_uint32, u8p, sz]),
        # char** out: c_void_p keeps the raw pointer for haven_string_free.
        "haven_resumption_secret": (ctypes.c_int, [P(ctypes.c_void_p), client]),
        "haven_redeem_invitation": (ctypes.c_int, [client, ctypes.c_char_p]),
        "haven_claim": (ctypes.c_int, [client, u64]),
        "haven_queue": (ctypes.c_int, [P(P(QueueEntry)), P(sz), client]),
        "haven_queue_free": (None, [P(QueueEntry)]),
        "haven_send": (ctypes.c_int, [P(u64), client, u64, u8p, sz]),
        "haven_close_conversation": (ctypes.c_int, [client, u64]),
        "haven_safety_number": (ctypes.c_int, [P(ctypes.c_void_p), client, u64]),
        "haven_connection_state_of": (ctypes.c_int, [client]),
        "haven_quick_exit": (None, [client]),
        "haven_exited": (ctypes.c_int, [client]),
        "haven_string_free": (None, [ctypes.c_void_p]),
        "haven_status_string": (ctypes.c_char_p, [ctypes.c_int]),
        "haven_last_error": (ctypes.c_char_p, []),
        "haven_version": (ctypes.c_char_p, []),
    }
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def _bytes(data):
    """(pointer, length) for a bytes object, as the C ABI takes buffers."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ctypes.c_uint8)), len(data)


class Client:
    """One haven_client. Events arrive on the SDK's thread; on_event gets a
    dict with the text COPIED (the C text is zeroed after the callback, and
    this copy is outside quick exit's reach: drop it when done)."""

    def __init__(self, lib, role, host, port, server_key, on_event):
        self._lib = lib
        self._handle = ctypes.c_void_p()
        self._on_event = on_event

        def trampoline(_user_data, event_ptr):
            e = event_ptr.contents
            text = ctypes.string_at(e.text, e.text_len).decode("utf-8", "replace") if e.text_len else ""
            self._on_event({"type": e.type, "connection": e.connection,
                            "conversation": e.conversation, "state": e.state,
                            "message": e.message, "text": text, "error": e.error})

        # Kept on self: if ctypes freed the thunk, the SDK would call freed code.
        self._callback = EVENT_FN(trampoline)

        options = ctypes.c_void_p()
        self._check(lib.haven_options_new(ctypes.byref(options), role), "haven_options_new")
        try:
            key_ptr, key_len = _bytes(server_key)
            self._check(lib.haven_options_set_server(options, host.encode(), port, key_ptr, key_len),
                        "haven_options_set_server")
            self._check(lib.haven_client_new(ctypes.byref(self._handle), options, self._callback, None),
                        "haven_client_new")
        finally:
            lib.haven_options_free(options)

    def _check(self, status, call):
        if status != OK:
            raise HavenError(self._lib, status, call)

    def open_conversation(self, language="en", priority=0):
        out = ctypes.c_uint64()
        self._check(self._lib.haven_open_conversation(ctypes.byref(out), self._handle,
                                                      language.encode(), priority, None, 0),
                    "haven_open_conversation")
        return out.value

    def send(self, conversation, text):
        out = ctypes.c_uint64()
        ptr, n = _bytes(text.encode("utf-8"))
        self._check(self._lib.haven_send(ctypes.byref(out), self._handle, conversation, ptr, n),
                    "haven_send")
        return out.value

    def safety_number(self, conversation):
        out = ctypes.c_void_p()
        self._check(self._lib.haven_safety_number(ctypes.byref(out), self._handle, conversation),
                    "haven_safety_number")
        try:
            return ctypes.string_at(out.value).decode()
        finally:
            self._lib.haven_string_free(out)  # zeroes, then frees

    def queue(self):
        entries, count = ctypes.POINTER(QueueEntry)(), ctypes.c_size_t()
        self._check(self._lib.haven_queue(ctypes.byref(entries), ctypes.byref(count), self._handle),
                    "haven_queue")
        try:
            return [(entries[i].conversation, entries[i].language.decode(), entries[i].priority)
                    for i in range(count.value)]
        finally:
            self._lib.haven_queue_free(entries)

    def quick_exit(self):
        self._lib.haven_quick_exit(self._handle)

    def exited(self):
        return bool(self._lib.haven_exited(self._handle))

    def close(self):
        """Joins the SDK's threads: never from inside on_event."""
        if self._handle:
            self._lib.haven_client_free(self._handle)
            self._handle = ctypes.c_void_p()


def demo(lib, host, port, server_key, timeout=30.0):
    events = queue.Queue()
    client = Client(lib, ROLE_SURVIVOR, host, port, server_key, events.put)

    def wait_for(predicate, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if predicate(e):
                return e
        raise TimeoutError(f"no {what} within {timeout} s")

    try:
        conversation = client.open_conversation("en", 0)
        print(f"libhaven {lib.haven_version().decode()}: conversation {conversation} requested", flush=True)
        wait_for(lambda e: e["type"] == EVENT_CONVERSATION_CHANGED and e["state"] == CONVERSATION_ACTIVE,
                 "counsellor")
        print("conversation: active", flush=True)
        client.send(conversation, "hello from python")
        reply = wait_for(lambda e: e["type"] == EVENT_MESSAGE_RECEIVED, "reply")
        print(f"counsellor: {reply['text']}", flush=True)

        client.quick_exit()
        wait_for(lambda e: e["type"] == EVENT_QUICK_EXIT_COMPLETED, "quick exit confirmation")
        assert client.exited()
        try:
            client.send(conversation, "after exit")
            raise AssertionError("send after quick exit succeeded")
        except HavenError as e:
            assert e.status == E_EXITED, e
        print("quick exit done", flush=True)
    finally:
        client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", help="path to libhaven.so (default: $HAVEN_LIB, then the loader path)")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("server_key", help="64 hex digits")
    args = parser.parse_args()
    demo(load(args.lib), args.host, args.port, bytes.fromhex(args.server_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
