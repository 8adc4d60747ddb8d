"""A seccomp filter that takes away the kernel interfaces a program has no use for.

Namespaces hide things but leave the whole kernel reachable. An unprivileged process may
still create a user namespace (and inside it gain CAP_SYS_ADMIN over fresh namespaces, the
usual first step of kernel exploits), trace other processes of its uid, or use io_uring, BPF
and the new mount API. Those calls fail with EPERM here; everything a Python program
legitimately does stays allowed (threads and fork use clone without namespace flags; clone3
answers ENOSYS so that libc falls back to clone, whose flags the filter can inspect).

The worker installs the filter on itself once, after building its namespaces, so every test
child inherits it for free (attaching a filter per child costs a BPF compile per test). The
worker still needs `unshare(CLONE_NEWPID)` and `setns(fd, CLONE_NEWPID)` for per-test PID
namespaces, so exactly those stay allowed: both need CAP_SYS_ADMIN, which no child has.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from bdc_ray.sandbox import linux

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_LD_ABS = 0x20
_JEQ = 0x15
_JGE = 0x35
_AND = 0x54
_RET = 0x06
_SYSCALL_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_CLONE_NEW_FLAGS = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_X86_64_CLONE, _X86_64_CLONE3, _X86_64_UNSHARE, _X86_64_SETNS = 56, 435, 272, 308
_X86_64_DENIED = {
    "ptrace": 101,
    "syslog": 103,
    "personality": 135,
    "pivot_root": 155,
    "chroot": 161,
    "acct": 163,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> bool:
    return platform.machine() == "x86_64"


def denied_calls() -> list[str]:
    return [*sorted(_X86_64_DENIED), "clone with namespace flags", "unshare and setns (except of a PID namespace)"]


def filter_program() -> bytes:
    """The BPF program, assembled once per worker."""
    code: list[tuple[object, ...]] = [
        (_LD_ABS, 0, 0, _ARCH),
        (_JEQ, 1, 0, _AUDIT_ARCH_X86_64),
        (_RET, 0, 0, _RET_KILL_PROCESS),  # a foreign syscall ABI: the numbers below mean nothing
        (_LD_ABS, 0, 0, _SYSCALL_NR),
        (_JGE, "deny", 0, _X32_SYSCALL_BIT),
        (_JEQ, "unshare", 0, _X86_64_UNSHARE),
        (_JEQ, "setns", 0, _X86_64_SETNS),
        (_JEQ, "clone", 0, _X86_64_CLONE),
        (_JEQ, "enosys", 0, _X86_64_CLONE3),
        *((_JEQ, "deny", 0, nr) for nr in sorted(_X86_64_DENIED.values())),
        (_RET, 0, 0, _RET_ALLOW),
        ("unshare", _LD_ABS, 0, 0, _ARG0),
        (_JEQ, "allow", "deny", linux.CLONE_NEWPID),
        ("setns", _LD_ABS, 0, 0, _ARG1),
        (_JEQ, "allow", "deny", linux.CLONE_NEWPID),
        ("clone", _LD_ABS, 0, 0, _ARG0),
        (_AND, 0, 0, _CLONE_NEW_FLAGS),
        (_JEQ, "allow", "deny", 0),
        ("allow", _RET, 0, 0, _RET_ALLOW),
        ("deny", _RET, 0, 0, _RET_ERRNO | errno.EPERM),
        ("enosys", _RET, 0, 0, _RET_ERRNO | errno.ENOSYS),
    ]
    return _assemble(code)


def _assemble(code: list[tuple[object, ...]]) -> bytes:
    """BPF with jump targets given as labels (a leading string names an instruction)."""
    labels = {insn[0]: pc for pc, insn in enumerate(code) if isinstance(insn[0], str)}
    out = []
    for pc, insn in enumerate(code):
        op, jt, jf, k = insn[1:] if isinstance(insn[0], str) else insn
        jt, jf = (labels[j] - pc - 1 if isinstance(j, str) else j for j in (jt, jf))
        out.append(struct.pack("HBBI", op, jt, jf, k))
    return b"".join(out)


def install(program: bytes) -> None:
    """Apply the filter to this process and all it will spawn (needs no_new_privs first)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    linux.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
