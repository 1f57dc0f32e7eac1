"""The EGL devices, listed as VirtualGL 3.1 walks them: run as a script, in a process of its own
(a driver that fails may take its loader down), by any Python 3 (standard library only).

VirtualGL's EGL back end (server/faker.cpp) takes eglQueryDevicesEXT's devices in order and
skips those that eglInitialize refuses on their EGL_PLATFORM_DEVICE_EXT display: `-d egl` is
the first one left, `-d eglN` the N-th one left (from 0). This lists every device, whether it
initialises, and what tells it apart: its UUID (EGL_EXT_device_persistent_id, in NVIDIA's
spelling of GPU UUIDs), its CUDA device (EGL_NV_device_cuda) and the DRM card node it names
(EGL_DRM_DEVICE_FILE_EXT, which VirtualGL matches `-d /dev/dri/cardN` against). It loads
VGL_EGLLIB when set, as VirtualGL does, else `libEGL.so.1` through the dynamic loader, so that
LD_LIBRARY_PATH applies as it does to `vglrun`.

It prints one JSON object on stdout: {"devices": [...]}, or {"error": why} with exit status 1
when the devices cannot be listed.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

EGL_EXTENSIONS = 0x3055
EGL_PLATFORM_DEVICE_EXT = 0x313F
EGL_DRM_DEVICE_FILE_EXT = 0x3233
EGL_CUDA_DEVICE_NV = 0x323A
EGL_DEVICE_UUID_EXT = 0x335C
UUID_SIZE = 16

_EGLBoolean = ctypes.c_uint
_EGLint = ctypes.c_int32
# EGLAttrib is an intptr_t.
_EGLAttrib = ctypes.c_ssize_t
_PROTOTYPES = {
    "eglQueryDevicesEXT": ctypes.CFUNCTYPE(
        _EGLBoolean, _EGLint, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(_EGLint)
    ),
    "eglQueryDeviceStringEXT": ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p, _EGLint),
    "eglQueryDeviceAttribEXT": ctypes.CFUNCTYPE(
        _EGLBoolean, ctypes.c_void_p, _EGLint, ctypes.POINTER(_EGLAttrib)
    ),
    "eglQueryDeviceBinaryEXT": ctypes.CFUNCTYPE(
        _EGLBoolean, ctypes.c_void_p, _EGLint, _EGLint, ctypes.c_void_p, ctypes.POINTER(_EGLint)
    ),
    "eglGetPlatformDisplayEXT": ctypes.CFUNCTYPE(
        ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.POINTER(_EGLint)
    ),
}


class EglError(Exception):
    """The devices cannot be listed, and why."""


def nvidia_uuid(raw: bytes) -> str:
    """16 bytes of a UUID as NVIDIA writes GPU UUIDs (nvidia-smi -L, CUDA_VISIBLE_DEVICES,
    /proc/driver/nvidia/gpus/*/information): GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx."""
    digits = raw.hex()
    return f"GPU-{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:32]}"


def _extensions(text: bytes | None) -> set[str]:
    return set((text or b"").decode(errors="replace").split())


def list_devices(library: str) -> list[dict[str, object]]:
    try:
        egl = ctypes.CDLL(library)
    except OSError as error:
        raise EglError(str(error)) from None
    egl.eglQueryString.restype = ctypes.c_char_p
    egl.eglQueryString.argtypes = [ctypes.c_void_p, _EGLint]
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglInitialize.restype = _EGLBoolean
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.POINTER(_EGLint), ctypes.POINTER(_EGLint)]
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    # VirtualGL's own test before it looks for devices.
    if "EGL_EXT_platform_device" not in _extensions(egl.eglQueryString(None, EGL_EXTENSIONS)):
        raise EglError(f"{library} lacks EGL_EXT_platform_device")
    functions: dict[str, Any] = {}
    for name, prototype in _PROTOTYPES.items():
        address = egl.eglGetProcAddress(name.encode())
        functions[name] = prototype(address) if address else None
    query_devices = functions["eglQueryDevicesEXT"]
    query_string = functions["eglQueryDeviceStringEXT"]
    platform_display = functions["eglGetPlatformDisplayEXT"]
    if not (query_devices and query_string and platform_display):
        raise EglError(f"{library} does not give the EGL device functions VirtualGL uses")
    count = _EGLint(0)
    if not query_devices(0, None, ctypes.byref(count)) or count.value < 1:
        raise EglError("no EGL devices")
    handles = (ctypes.c_void_p * count.value)()
    if not query_devices(count.value, handles, ctypes.byref(count)):
        raise EglError("eglQueryDevicesEXT failed")
    major, minor = _EGLint(0), _EGLint(0)
    devices: list[dict[str, object]] = []
    for handle in handles[: count.value]:
        display = platform_display(EGL_PLATFORM_DEVICE_EXT, handle, None)
        initialises = bool(display) and bool(
            egl.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor))
        )
        if initialises:
            egl.eglTerminate(display)
        # A device's extensions say which queries it answers: GLVND's eglGetProcAddress
        # gives a function for any name some vendor knows, not for what this device has.
        extensions = _extensions(query_string(handle, EGL_EXTENSIONS))
        devices.append(
            {
                "initialises": initialises,
                "uuid": _uuid(functions["eglQueryDeviceBinaryEXT"], handle, extensions),
                "cuda": _cuda_device(functions["eglQueryDeviceAttribEXT"], handle, extensions),
                # Asked whatever the device's extensions say, as VirtualGL asks it.
                "drm": _string(query_string(handle, EGL_DRM_DEVICE_FILE_EXT)),
            }
        )
    return devices


def _uuid(query_binary: Any, handle: int | None, extensions: set[str]) -> str | None:
    if not query_binary or "EGL_EXT_device_persistent_id" not in extensions:
        return None
    value = (ctypes.c_ubyte * UUID_SIZE)()
    size = _EGLint(0)
    if not query_binary(handle, EGL_DEVICE_UUID_EXT, UUID_SIZE, value, ctypes.byref(size)):
        return None
    return nvidia_uuid(bytes(value)) if size.value == UUID_SIZE else None


def _cuda_device(query_attrib: Any, handle: int | None, extensions: set[str]) -> int | None:
    if not query_attrib or "EGL_NV_device_cuda" not in extensions:
        return None
    value = _EGLAttrib(0)
    if not query_attrib(handle, EGL_CUDA_DEVICE_NV, ctypes.byref(value)):
        return None
    return value.value


def _string(text: bytes | None) -> str | None:
    return text.decode(errors="replace") if text else None


def main() -> None:
    library = os.environ.get("VGL_EGLLIB") or "libEGL.so.1"
    try:
        print(json.dumps({"devices": list_devices(library)}))
    except EglError as error:
        print(json.dumps({"error": str(error)}))
        sys.exit(1)


if __name__ == "__main__":
    main()
