"""Run onnxruntime under the same seccomp rules systemd applies for MemoryDenyWriteExecute=yes.

Usage: ``python deploy/mdwe_probe.py [MODEL.onnx ...]`` (with no model it generates a
small int8 one, which needs the ``onnx`` package). Used by tests/test_deploy.py when
systemd is not PID 1 (containers, CI), so ``systemd-run -p MemoryDenyWriteExecute=yes``
cannot be used. systemd 252 (Debian bookworm) implements the option as a seccomp
filter (src/shared/seccomp-util.c, ``seccomp_memory_deny_write_execute``) that
fails with EPERM:

* ``mmap`` whose prot has both PROT_WRITE and PROT_EXEC,
* ``mprotect`` / ``pkey_mprotect`` whose prot has PROT_EXEC,
* ``shmat`` whose flags have SHM_EXEC.

This script installs exactly those rules with a hand-written BPF program, proves
the filter is live (a W+X anonymous mmap must fail), then imports onnxruntime,
builds an InferenceSession for each model path given (or a small generated int8
model) and runs it. Exit 0 = onnxruntime works under MemoryDenyWriteExecute.
Last it reports whether sounddevice's audio callback can be built under the
rules (``audio callback: ok`` / ``refused (...)``): with cffi's ABI-mode
callbacks it is refused, which is why the unit sets ``MemoryDenyWriteExecute=no``.

What this does not cover: newer systemd (>= 255) prefers the kernel's
PR_SET_MDWE when available, which additionally refuses mprotect() adding
PROT_EXEC only to mappings that were never executable; our filter already
refuses every mprotect(PROT_EXEC), so it is at least as strict for that call.
Only native x86_64 and aarch64 are handled.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000

# machine -> (AUDIT_ARCH, mmap, mprotect, pkey_mprotect, shmat)
ARCHES = {
    "x86_64": (0xC000003E, 9, 10, 329, 30),
    "aarch64": (0xC00000B7, 222, 226, 288, 196),
}

LD_W_ABS, JEQ_K, JSET_K, AND_K, RET_K = 0x20, 0x15, 0x45, 0x54, 0x06
OFF_NR, OFF_ARCH, OFF_ARG2 = 0, 4, 16 + 2 * 8  # struct seccomp_data, little-endian low word


def build_program(machine: str) -> list[tuple[int, int, int, int]]:
    audit, nr_mmap, nr_mprotect, nr_pkey, nr_shmat = ARCHES[machine]
    # Layout (index: instruction); jump offsets are relative to the next instruction.
    prog = [
        (LD_W_ABS, 0, 0, OFF_ARCH),          # 0
        (JEQ_K, 0, 13, audit),               # 1  foreign arch -> ALLOW (15); SystemCallArchitectures=native covers it
        (LD_W_ABS, 0, 0, OFF_NR),            # 2
        (JEQ_K, 4, 0, nr_mmap),              # 3  -> 8
        (JEQ_K, 6, 0, nr_mprotect),          # 4  -> 11
        (JEQ_K, 5, 0, nr_pkey),              # 5  -> 11
        (JEQ_K, 6, 0, nr_shmat),             # 6  -> 13
        (RET_K, 0, 0, SECCOMP_RET_ALLOW),    # 7
        (LD_W_ABS, 0, 0, OFF_ARG2),          # 8  mmap prot
        (AND_K, 0, 0, PROT_WRITE | PROT_EXEC),  # 9
        (JEQ_K, 5, 4, PROT_WRITE | PROT_EXEC),  # 10 -> 16 EPERM / 15 ALLOW
        (LD_W_ABS, 0, 0, OFF_ARG2),          # 11 mprotect prot
        (JSET_K, 3, 2, PROT_EXEC),           # 12 -> 16 / 15
        (LD_W_ABS, 0, 0, OFF_ARG2),          # 13 shmat flags
        (JSET_K, 1, 0, SHM_EXEC),            # 14 -> 16 / 15
        (RET_K, 0, 0, SECCOMP_RET_ALLOW),    # 15
        (RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),  # 16
    ]
    return prog


def install_filter() -> None:
    machine = platform.machine()
    if machine not in ARCHES:
        raise SystemExit(f"deploy_mdwe_probe: unsupported machine {machine!r}")
    prog = build_program(machine)
    raw = b"".join(struct.pack("<HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def filter_is_live() -> bool:
    """A W+X anonymous mapping and an mprotect(PROT_EXEC) must now both be refused with EPERM."""
    try:
        mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        return False
    except PermissionError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    rw, anon = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    page = libc.mmap(None, mmap.PAGESIZE, rw, anon, -1, 0)
    if page in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    rc = libc.mprotect(page, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC)
    return rc != 0 and ctypes.get_errno() == errno.EPERM


def small_int8_model() -> bytes:
    """A tiny conv + dynamically-quantized matmul + softmax graph (float in, float out)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w_conv = numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w_conv")
    w_q = numpy_helper.from_array(rng.integers(-127, 127, (4 * 8 * 8, 10)).astype(np.int8), "w_q")
    w_zp = numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zp")
    w_scale = numpy_helper.from_array(np.array(0.01, dtype=np.float32), "w_scale")
    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w_conv"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("DynamicQuantizeLinear", ["flat"], ["fq", "fs", "fzp"]),
        helper.make_node("MatMulInteger", ["fq", "w_q", "fzp", "w_zp"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["fs", "w_scale"], ["scale"]),
        helper.make_node("Mul", ["accf", "scale"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "mdwe_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [w_conv, w_q, w_zp, w_scale, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_models(paths: list[str], model_bytes: bytes | None) -> None:
    import numpy as np
    import onnxruntime as ort

    sources: list[tuple[str, object]] = [(p, p) for p in paths]
    if model_bytes is not None:
        sources.append(("<generated int8 model>", model_bytes))
    for name, src in sources:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
        feeds = {}
        for inp in sess.get_inputs():
            dims = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
            dtype = np.float32 if "float" in inp.type else np.int64
            feeds[inp.name] = np.random.default_rng(1).standard_normal(dims).astype(dtype)
        outs = sess.run(None, feeds)
        if not all(np.all(np.isfinite(o)) for o in outs if np.issubdtype(np.asarray(o).dtype, np.floating)):
            raise SystemExit(f"{name}: non-finite output under the filter")
        print(f"ok: {name} ran under MemoryDenyWriteExecute rules, outputs {[np.asarray(o).shape for o in outs]}")


def audio_callback_status() -> str:
    """``ok``, or ``refused (...)``: can sounddevice build its PortAudio callback here?

    sounddevice wraps the stream callback with cffi's ``ffi.callback()``, which
    needs a write+execute page; that is what the microphone path depends on.
    """
    try:
        import sounddevice as sd
    except OSError as e:  # no PortAudio library: nothing to open anyway
        return f"unknown (sounddevice not loadable: {e})"
    try:
        sd._ffi.callback("int(int)", lambda x: x)
    except MemoryError as e:
        return f"refused ({e})"
    return "ok"


def main(argv: list[str]) -> int:
    # Build the generated model before the filter: that is test scaffolding, not the service path.
    model_bytes = small_int8_model() if not argv else None
    install_filter()
    if not filter_is_live():
        print("filter not active: a W+X mmap succeeded", file=sys.stderr)
        return 3
    print(f"seccomp MemoryDenyWriteExecute rules active (pid {os.getpid()}, {platform.machine()})")
    run_models(argv, model_bytes)
    print(f"audio callback: {audio_callback_status()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
